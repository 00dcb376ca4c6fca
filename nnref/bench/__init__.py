"""``nnref bench``: nnref against PyTorch's built-ins (and FAISS, scikit-learn), side by side in one process.

The sections, in the order they run (:data:`CONTENTS`; each a registered :class:`~nnref.bench.core.Section` whose
docstring says what it compares and why):

* ``floor``, ``functions`` (:mod:`.functions`) — each Function of the catalogue against its built-in twin;
* ``steps``, ``compile``, ``loader``, ``accuracy`` (:mod:`.training`) — whole training steps, the data path,
  time to an accuracy target;
* ``knn``, ``cost`` (:mod:`.neighbours`) — the neighbour search, and the lecture's O(p n) vs O(p);
* ``distributed`` (:mod:`.scaling`) — one process against a ``torchrun`` job of two;
* ``lab`` (:mod:`.lab`) — the lab's playground in headless Chromium: frames per second, latency, many pages;
* ``digits`` (:mod:`.digits`) — pictures of digits as people make them, before and after MNIST's preparation,
  and the draw-a-digit page's time from a stroke to the prediction and the neighbours;
* ``mnist`` (:mod:`.mnist`) — the lab's /mnist page in headless Chromium: time to an accuracy from Play, frames
  per second, a paused page, two pages at once;
* ``startup`` (:mod:`.startup`) — how soon the commands a student runs dozens of times answer, each a new process;
* ``classroom`` (:mod:`.classroom`) — a class on one server: 100 pages of the playground at once (websocket clients
  and three Chromium pages), the same set-up and each its own; ``--url`` loads a lab already running.

Sizes and repetitions come from one :class:`~nnref.bench.core.Profile` (``full``, or ``quick`` with
``--quick``).  Output: a markdown table per section, a JSON report (and the cost-claim plot, as PNG and in
TensorBoard) under ``runs/bench/``.

Importing this package is torch-free (``nnref bench --help`` lists :data:`CONTENTS`); the sections and the rest
of the names below load on first use.
"""

from __future__ import annotations

import importlib

#: The table of contents: every section, in the order ``nnref bench`` runs and prints them, and what it measures.
CONTENTS = {
    "floor": "each Function's forward + backward on a tiny input, where fixed costs show",
    "functions": "each Function against its built-in twin at an MNIST MLP's sizes",
    "steps": "a whole SGD step of softmax regression and the MLP against torch.nn layers",
    "compile": "the MLP step through torch.compile against the built-in eager and compiled",
    "loader": "an epoch of nnref's tensor-resident loader against torchvision's DataLoader",
    "accuracy": "wall time of training until a test-accuracy target",
    "knn": "nnref's KNN against FAISS's exact IndexFlatL2 and scikit-learn's brute force",
    "cost": "the lecture's cost claim: KNN O(p n) against softmax regression O(p)",
    "distributed": "one process against torchrun --nproc-per-node 2",
    "lab": "the lab's playground in headless Chromium: frames per second, latency, many pages",
    "digits": "pictures of digits as people make them, and the draw-a-digit page's latency",
    "mnist": "the lab's /mnist page: time to 90% / 96% from Play, frames per second, two pages at once",
    "startup": "how soon nnref --help, nnref train (to its first step) and nnref gradcheck answer",
    "classroom": "a class on one server: 100 playground pages at once, the same set-up and each its own",
}
#: The sections' names, in order.
ORDER = tuple(CONTENTS)

#: Every other public name, and the module that holds it (imported on first use: they need torch).
_LAZY = {
    **dict.fromkeys(
        ("SECTIONS", "PROFILES", "Profile", "run_bench", "side_by_side", "interleaved", "format_rows"), ".core"
    ),
    **dict.fromkeys(("bench_floor", "bench_functions"), ".functions"),
    **dict.fromkeys(("bench_cost", "bench_knn", "cost_figure", "format_cost"), ".neighbours"),
    "bench_distributed": ".scaling",
    **dict.fromkeys(
        ("RECIPES", "bench_compile", "bench_loader", "bench_time_to_accuracy", "bench_train_steps"), ".training"
    ),
    "builtin_twin": ".twins",
}

__all__ = ["CONTENTS", "ORDER", *_LAZY]


def _registered() -> None:
    """Import every section's module (each registers its sections), then order the registry as :data:`ORDER`."""
    from . import classroom, digits, functions, lab, mnist, neighbours, scaling, startup, training  # noqa: F401
    from .core import SECTIONS

    if tuple(SECTIONS) != ORDER:
        SECTIONS.update({name: SECTIONS.pop(name) for name in ORDER})


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    _registered()
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value
