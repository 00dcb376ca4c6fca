#!/usr/bin/env python
"""Why /mnist's ten templates stay noisy without weight decay, and what a small decay costs: softmax regression
trained as the page trains it (nnref.lab.mnist's session: SGD, learning rate 0.1, batch 64, seed 0), once per weight
decay, side by side in one run.

    python scripts/mnist_decay.py [--data-root ../shared/data] [--epochs 1 3] [--out docs/results/mnist-decay.log]

For each decay λ and number of epochs it prints the validation and test accuracy and the speckle of the templates:
the mean |w| of the pixels that no training digit lights (always 0: their gradient is 0, so without decay they keep
their random initial weights for ever), as a fraction of the mean |w| of the other pixels.  A template reads as a
digit when its speckle is small.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

from nnref.lab.mnist.dataset import SharedMNIST
from nnref.lab.mnist.session import MnistSession
from nnref.lab.mnist.state import DECAY

DECAYS = (0.0, 0.001, 0.003, 0.01, 0.03)


def _accuracy(model, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def measure(views, decay: float, epochs: list[int]) -> list[dict]:
    """One run of the page's softmax regression with weight decay ``decay``: a row per number of epochs."""
    session = MnistSession(views, {"decay": decay})
    dark = (views.train_x - views.train_x.min(0).values == 0).all(0)  # pixels no training digit lights
    rows, per_epoch = [], -(-views.train_x.shape[0] // session.state["batch"])
    for epoch in sorted(epochs):
        while session.steps < epoch * per_epoch:
            session.advance(None)  # one step, as the page's Step
        w = next(p for p in session.model.parameters() if p.dim() == 2).detach().abs()  # W: (10, 784)
        rows.append(
            {
                "decay": decay,
                "epochs": epoch,
                "val": _accuracy(session.model, views.val_x, views.val_y),
                "test": _accuracy(session.model, views.test_x, views.test_y),
                "speckle": float(w[:, dark].mean() / w[:, ~dark].mean()),
                "dark": int(dark.sum()),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", default=os.environ.get("NNREF_DATA_ROOT", "data"))
    parser.add_argument("--epochs", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    views = SharedMNIST(args.data_root, download=False).get()
    start = time.perf_counter()
    lines = [
        "softmax regression on MNIST as /mnist trains it (lr 0.1, batch 64, momentum 0, seed 0), one run per decay",
        f"{'decay':>8} {'epochs':>6} {'val acc':>8} {'test acc':>8} {'speckle':>8}",
    ]
    rows = [row for decay in DECAYS for row in measure(views, decay, args.epochs)]
    for r in rows:
        lines.append(f"{r['decay']:>8g} {r['epochs']:>6} {r['val']:>8.2%} {r['test']:>8.2%} {r['speckle']:>8.3f}")
    base = {r["epochs"]: r for r in rows if r["decay"] == 0}
    for r in rows:
        if r["decay"] == DECAY:
            none = base[r["epochs"]]
            lines.append(
                f"default decay {DECAY:g}, {r['epochs']} epoch(s): test accuracy {r['test'] - none['test']:+.2%}"
                f" against no decay; speckle {r['speckle']:.3f} against {none['speckle']:.3f}"
            )
    seconds = time.perf_counter() - start
    lines.append(f"({rows[0]['dark']} of 784 pixels are dark in every training digit; {seconds:.0f} s)")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
