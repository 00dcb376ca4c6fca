"""``nnref bench``: nnref against PyTorch's built-ins (and FAISS, scikit-learn), side by side in one process.

The sections, in the order they run (each a registered :class:`~nnref.bench.core.Section` whose docstring says
what it compares and why; ``nnref bench --help`` lists them):

* ``floor``, ``functions`` (:mod:`.functions`) — each Function of the catalogue against its built-in twin;
* ``steps``, ``compile``, ``loader``, ``accuracy`` (:mod:`.training`) — whole training steps, the data path,
  time to an accuracy target;
* ``knn``, ``cost`` (:mod:`.neighbours`) — the neighbour search, and the lecture's O(p n) vs O(p);
* ``distributed`` (:mod:`.scaling`) — one process against a ``torchrun`` job of two;
* ``lab`` (:mod:`.lab`) — the lab's playground in headless Chromium: frames per second, latency, many pages;
* ``digits`` (:mod:`.digits`) — pictures of digits as people make them, before and after MNIST's preparation,
  and the draw-a-digit page's time from a stroke to the prediction and the neighbours.

Sizes and repetitions come from one :class:`~nnref.bench.core.Profile` (``full``, or ``quick`` with
``--quick``).  Output: a markdown table per section, a JSON report (and the cost-claim plot, as PNG and in
TensorBoard) under ``runs/bench/``.
"""

from __future__ import annotations

from ..catalogue import builtin_twin
from . import digits, functions, lab, neighbours, scaling, training  # noqa: F401  (each registers its sections)
from .core import PROFILES, SECTIONS, Profile, format_rows, interleaved, run_bench, side_by_side
from .functions import bench_floor, bench_functions
from .neighbours import bench_cost, bench_knn, cost_figure, format_cost
from .scaling import bench_distributed
from .training import RECIPES, bench_compile, bench_loader, bench_time_to_accuracy, bench_train_steps

#: The table of contents: every section, in the order ``nnref bench`` runs and prints them.
ORDER = ("floor", "functions", "steps", "compile", "loader", "accuracy", "knn", "cost", "distributed", "lab",
         "digits")
SECTIONS.update({name: SECTIONS.pop(name) for name in ORDER})  # the registry, re-read in this order

__all__ = ["ORDER", "SECTIONS", "PROFILES", "Profile", "run_bench", "side_by_side", "interleaved", "format_rows",
           "builtin_twin", "bench_floor", "bench_functions", "bench_train_steps", "bench_compile", "bench_loader",
           "bench_knn", "bench_time_to_accuracy", "bench_cost", "bench_distributed", "cost_figure", "format_cost",
           "RECIPES"]
