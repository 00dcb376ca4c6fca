"""The machinery that runs the lecture: training on MNIST (:mod:`.train`, :mod:`.knn`), its configuration
(:mod:`.config`), checkpoints (:mod:`.checkpoint`), run logs (:mod:`.runlog`), ``torchrun`` (:mod:`.distributed`),
stop signals and fail points (:mod:`.interrupt`, :mod:`.stopsignals`, :mod:`.faults`), the fast step
(:mod:`.fast_steps`), evaluation and export (:mod:`.evaluate`, :mod:`.export`), the runs of a folder (:mod:`.runs`)
and TensorBoard in a browser (:mod:`.tbview`).

It builds on the lecture (:mod:`nnref.functional`, :mod:`nnref.models`, :mod:`nnref.data` …), never the other way.
"""
