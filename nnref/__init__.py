"""nnref: an introductory lecture on neural networks, as software on PyTorch.

Two wings (docs/architecture.md):

* **the lecture** — :mod:`nnref.functional` (the nine Functions, each forward beside its hand-written backward),
  :mod:`nnref.layers`, :mod:`nnref.models`, :mod:`nnref.knn`, :mod:`nnref.plane`, :mod:`nnref.gradcheck`,
  :mod:`nnref.data`, :mod:`nnref.digits`, :mod:`nnref.viz` … — what a student reads;
* **the machinery that runs it** — :mod:`nnref.run`: the training loop, checkpoints, run logs, ``torchrun``,
  signals, evaluation and export.

The lecture wing imports nothing from the run wing.  ``nnref`` on the command line is :mod:`nnref.cli`.
"""

from . import _deprecated

_deprecated.install()
