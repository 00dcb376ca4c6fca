"""nnref: an introductory lecture on neural networks, as software on PyTorch.

``ls nnref/`` is the lecture's table of contents (docs/architecture.md):

* the Functions, each forward beside its hand-written backward — :mod:`nnref.functional`, each described once in
  :mod:`nnref.formulas`;
* the layers and models built from them — :mod:`nnref.layers`, :mod:`nnref.models`;
* the training step — :mod:`nnref.training`; k-nearest neighbours — :mod:`nnref.knn`;
* the plane of the playground — :mod:`nnref.plane` (its choices by name: :mod:`nnref.choices`);
* gradient checking — :mod:`nnref.gradcheck`; the worked example of backpropagation — :mod:`nnref.backprop`;
* the data — :mod:`nnref.data`, :mod:`nnref.digits`; the pictures — :mod:`nnref.viz`.

Everything else lives in named folders above the lecture: the command line (:mod:`nnref.cli`), the lab
(:mod:`nnref.lab`), the bench (:mod:`nnref.bench`), the machinery that runs training (:mod:`nnref.run`), the
exercises (:mod:`nnref.exercises`) and the fast paths (:mod:`nnref.fast`).  The lecture imports none of them.
"""
