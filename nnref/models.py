"""The lecture's parametric models, built only from nnref's Functions and layers.

They return *logits* from ``forward`` (the input of the output activation) and know their own loss: the fused,
stable one by default (``fused=True``), or the lecture's unfused path — output activation, then the loss on
probabilities — with ``fused=False``.

Every classifier in nnref — these and :class:`nnref.knn.KNNClassifier` — answers the same two questions
(:class:`Classifier`): ``predict(x)``, the class of each row, and ``predict_proba(x)``, the probability of each
class, so a caller never needs to ask which kind it holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
from torch import nn

from . import functional as F
from .layers import ACTIVATIONS, Linear, Sigmoid, Softmax

__all__ = ["Classifier", "LogisticRegression", "SoftmaxRegression", "MLP", "build_model"]


class Classifier(Protocol):
    """What every nnref classifier answers.  x (n, p) → ``predict`` (n,) class indices in [0, c),
    ``predict_proba`` (n, c) class probabilities (rows sum to 1); ``num_classes`` is c."""

    num_classes: int

    def predict(self, x: torch.Tensor) -> torch.Tensor: ...

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor: ...


class _Classifier(nn.Module):
    """What the parametric models share: from logits to probabilities, predictions and the loss.

    A binary model (``self.binary``) has one logit z per row, Pr(class 1) = σ(z), and binary cross-entropy;
    a multi-class model has c logits, softmax and cross-entropy.  ``self.activation`` is the output
    activation (Sigmoid or Softmax).
    """

    binary: bool
    num_classes: int

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities (n, c): softmax(z), or (1 − σ(z), σ(z)) for a binary model."""
        a = self.activation(self(x))
        return torch.stack([1 - a, a], dim=-1) if self.binary else a

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The class of each row (n,)."""
        return self.predictions(self(x))

    def loss(self, logits: torch.Tensor, y: torch.Tensor, fused: bool = True, reduction: str = "mean"):
        """The negative log-likelihood: fused and stable from logits, or (``fused=False``) the lecture's
        output activation followed by cross-entropy on probabilities."""
        if self.binary:
            if fused:
                return F.sigmoid_binary_cross_entropy(logits, y, reduction)
            return F.binary_cross_entropy(self.activation(logits), y, reduction)
        if fused:
            return F.softmax_cross_entropy(logits, y, reduction)
        return F.cross_entropy(self.activation(logits), y, reduction)

    def predictions(self, logits: torch.Tensor) -> torch.Tensor:
        """Class 1 where z ≥ 0 (a ≥ 0.5, the lecture's threshold neuron), else the largest logit."""
        return (logits >= 0).long() if self.binary else logits.argmax(dim=-1)


class LogisticRegression(_Classifier):
    """The sigmoid neuron: a = σ(x wᵀ + b) = Pr(label = 1 | x).

    Linear(p, 1) → Sigmoid, trained with binary cross-entropy.
    Shapes: x (n, p) → logits z (n,); ``predict_proba`` → (1 − a, a) (n, 2); labels y (n,) in {0, 1}.
    """

    binary = True
    num_classes = 2

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.linear = Linear(in_features, 1)
        self.activation = Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).squeeze(-1)

    @property
    def weight_images(self) -> torch.Tensor:
        """The learned weight vector w, one template (1, p)."""
        return self.linear.weight


class SoftmaxRegression(_Classifier):
    """a = softmax(x Wᵀ + b): Linear(p, c) → Softmax, trained with multi-class cross-entropy.

    Shapes: x (n, p) → logits z (n, c); ``predict_proba`` → a (n, c); labels y (n,) in [0, c).
    """

    binary = False

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.linear = Linear(in_features, num_classes)
        self.activation = Softmax()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)

    @property
    def weight_images(self) -> torch.Tensor:
        """One learned template per class: W (c, p)."""
        return self.linear.weight


class MLP(_Classifier):
    """A fully connected network: (Linear → activation) for each hidden size, then Linear → Softmax.

    ``hidden`` is an int or a sequence, e.g. 800 or (300, 100) — or empty: no hidden layer is logistic or
    softmax regression (the lab's network with every hidden layer removed); ``activation`` is "relu",
    "sigmoid", "tanh" or "linear".  Shapes: x (n, p) → logits (n, c).  With ``num_classes=1`` the output is one
    logit per row (shape (n,)) followed by a sigmoid, for binary tasks.
    """

    def __init__(
        self, in_features: int, hidden: int | Sequence[int], num_classes: int, activation: str = "relu"
    ) -> None:
        super().__init__()
        sizes = [hidden] if isinstance(hidden, int) else list(hidden)
        if any(not isinstance(h, int) or isinstance(h, bool) or h < 1 for h in sizes):
            raise ValueError(f"hidden must be positive layer sizes, got {hidden!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.hidden = tuple(sizes)
        self.activation_name = activation
        self.binary = num_classes == 1
        self.num_classes = 2 if self.binary else num_classes
        layers: list[nn.Module] = []
        width = in_features
        for h in sizes:
            layers += [Linear(width, h), ACTIVATIONS[activation]()]
            width = h
        layers.append(Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)
        self.activation = Sigmoid() if self.binary else Softmax()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.layers(x)
        return z.squeeze(-1) if self.binary else z

    def hidden_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The activation of every hidden layer: a list of (n, h) tensors (Playground's neuron pictures)."""
        outs = []
        for layer in self.layers:
            x = layer(x)
            if not isinstance(layer, Linear):
                outs.append(x)
        return outs

    @property
    def weight_images(self) -> torch.Tensor:
        """The first layer's filters: W1 (h1, p)."""
        return self.layers[0].weight


def build_model(
    name: str, in_features: int = 784, num_classes: int = 10, hidden: Sequence[int] = (800,), activation: str = "relu"
) -> nn.Module:
    """A parametric model by its command-line name ("logreg", "softmax", "mlp") for ``num_classes`` classes
    (2: one output logit).  KNN is not built here: it stores records (:mod:`nnref.knn`)."""
    if name == "logreg":
        return LogisticRegression(in_features)
    if name == "softmax":
        return SoftmaxRegression(in_features, num_classes)
    if name == "mlp":
        return MLP(in_features, tuple(hidden), 1 if num_classes == 2 else num_classes, activation)
    raise ValueError(f"{name!r} is not a parametric model")
