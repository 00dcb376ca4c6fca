"""What can be chosen, by name, and the plane's default recipe: activations, distances, the plane's datasets, their
classes, noise and inputs, the class colours, and :class:`PlaygroundConfig`.

Defined once, here, without importing torch, so that the command line's parser (``nnref --help``) and the lab's
page can list them at once; the modules that implement them (:mod:`nnref.layers`, :mod:`nnref.knn`,
:mod:`nnref.plane`) take their names from here, and a test checks that each name has its implementation.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "PAGES_PER_CORE",
    "default_max_pages",
    "ACTIVATIONS",
    "METRICS",
    "DATASETS",
    "CLASSES",
    "NOISE",
    "FEATURES",
    "DOMAIN",
    "COLOURS",
    "CLASSIFIERS",
    "PlaygroundConfig",
    "check_classes",
]

#: Playground pages one core of the lab's server carries at full speed (issue 35's classroom measurement: see
#: docs/playground.md): ``nnref lab --max-pages`` defaults to this many per core of the machine.
PAGES_PER_CORE = 50


def default_max_pages() -> int:
    """``nnref lab``'s default page limit: what this machine can serve, :data:`PAGES_PER_CORE` per core."""
    import os

    return PAGES_PER_CORE * (os.cpu_count() or 1)


#: Hidden-layer activations, as the command line and the lab spell them ("linear" is TensorFlow Playground's
#: identity).
ACTIVATIONS = ("relu", "sigmoid", "tanh", "linear")

#: KNN's distances.
METRICS = ("euclidean", "manhattan", "cosine")

#: The lecture's 2-D datasets.
DATASETS = ("blobs", "xor", "circles", "spirals")
#: How many classes each dataset can have.
CLASSES = {"blobs": (2, 3, 4), "xor": (2, 4), "circles": (2, 3, 4), "spirals": (2, 3, 4)}


def check_classes(dataset: str, classes: int) -> None:
    """The one check of a dataset's class count (the plane, the lab's messages and its pages): a ``ValueError``
    naming the counts the dataset has.  Datasets not in :data:`CLASSES` (a page's own points) take any count."""
    if dataset in CLASSES and classes not in CLASSES[dataset]:
        raise ValueError(f"{dataset} has {' or '.join(map(str, CLASSES[dataset]))} classes, not {classes}")


#: Each dataset's default noise: the standard deviation of the Gaussian jitter of its points.
NOISE = {"blobs": 0.8, "xor": 0.2, "circles": 0.2, "spirals": 0.15}

#: The inputs a network of the plane can be given, in TensorFlow Playground's order.
FEATURES = ("x1", "x2", "x1^2", "x2^2", "x1x2", "sin x1", "sin x2")
#: The square of the plane that the lab shows and the playground draws (at least): x₁, x₂ ∈ [−6, 6].
DOMAIN = (-6.0, 6.0)

#: Class colours, as TensorFlow Playground's (orange, blue) and two more for three and four classes.
COLOURS = ("#f59322", "#0877bd", "#2ca25f", "#8856a7")

#: The plane's classifiers: the line (logistic regression, softmax regression for more classes), the MLP, KNN.
CLASSIFIERS = ("logreg", "mlp", "knn")


@dataclass
class PlaygroundConfig:
    """The recipe for the plane's models (the one measured over seeds: see README's playground table).

    Gradient descent with momentum on inputs standardised with the training set's mean and standard deviation,
    from Glorot-uniform weights; ``weight_decay`` is the L2 penalty (on every parameter, as ``torch.optim.SGD``
    applies it), ``l1`` an L1 penalty λ·Σ|w| on the weights.  ``batch_size`` 0 uses the whole training set in
    every step; otherwise each epoch visits the shuffled points in batches.  The MLP is trained from
    ``restarts`` random starts and the one with the lowest final training loss is kept (a small non-convex
    network can end in a poor local minimum: XOR with four tanh units does from several starts in ten).
    """

    steps: int = 5000
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 3e-4
    l1: float = 0.0
    restarts: int = 6
    batch_size: int = 0
    hidden: tuple[int, ...] = (8, 8)
    activation: str = "tanh"
    k: tuple[int, ...] = (1, 5, 15)
    metric: str = "euclidean"
    features: tuple[str, ...] = ("x1", "x2")
    snapshots: int = 10
    seed: int = 0
