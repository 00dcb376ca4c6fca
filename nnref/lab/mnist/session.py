"""One ``/mnist`` page's training: its model (``nnref.models.build_model``), the step ``nnref train`` runs on a CPU
(:class:`nnref.training.EagerStep` and SGD), batches from the server's shared MNIST, and the frames that show it.

A :class:`MnistSession` is used by one page, from one thread at a time (the server calls it between the messages
it reads).  A frame is one binary message (:func:`nnref.lab.session.encode`): a JSON header — step, images seen,
epoch, the training losses of the steps since the last frame, the validation loss, accuracy and confusion matrix
(re-measured every ``val_every`` seconds while playing: :data:`VAL_EVERY`, or longer while many pages play —
:mod:`.turns`), each layer's numbers, the gallery's top three, the test
accuracy (measured whenever the model is paused), the inspected digit — then the templates (one 28 × 28 picture per
row of W, or per first-layer filter) and the inspected digit's pictures as bytes.

Training runs on :data:`THREADS` thread: a page's models are small, and on a machine of two cores shared by two
pages (or by other work) the intra-op threads of one page would wait for a core another holds — seen by hand on
this project's machine as steps many times slower, not measured by the bench.  The server's pages take turns on one
trainer thread (:mod:`.turns`).  A page drops its gradients after each turn (the frames keep their numbers), and
hands the memory of a test evaluation back to the system (:func:`give_back_memory`).
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import json
import math
import threading
import time

import torch

from ...data import EpochBatches
from ...layers import Linear
from ...models import build_model
from ...run.evaluate import evaluate
from ...training import EagerStep, forward_loss_of
from ..session import encode
from ..state import BadMessage
from . import watch
from .checkpoint import checkpoint_bytes, config_of
from .dataset import MNISTViews
from .digit import look_inside
from .state import DEFAULTS, FIELDS, check_state

__all__ = ["MnistSession", "THREADS", "VAL_EVERY", "DIVERGED_LOSS", "give_back_memory"]

#: Intra-op threads of a page's training (see the module's docstring).
THREADS = 1
#: Seconds between two measures of the validation subset while playing (a page alone; see :mod:`.turns`).
VAL_EVERY = 0.2
#: The training loss (mean of the last :data:`WINDOW` steps) beyond which a run has diverged: ten times the loss
#: of guessing uniformly among the ten classes (ln 10 ≈ 2.30).
DIVERGED_LOSS, WINDOW = 10 * math.log(10), 20
_BUILD = threading.Lock()  # models are built from the global RNG, seeded: one page at a time


@contextlib.contextmanager
def _threads(n: int):
    before = torch.get_num_threads()
    if before != n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if before != n:
            torch.set_num_threads(before)


class MnistSession:
    """The live training of one page: ``configure`` with (partial) states, ``advance`` while playing or for one
    step, ``frame`` to draw, ``reset``, ``inspect``/``draw`` one digit, ``export`` the model.

    A recipe change (learning rate, momentum, batch size, weight decay) applies from the next step to the same
    weights; a network change (model, hidden layers, activation, seed), Reset and New weights give a new model at
    step 0, paused — a new ``generation`` of frames.  Reset gives the same initial weights; New weights the next
    seed's."""

    def __init__(self, views: MNISTViews, state: dict | None = None, notes: tuple[str, ...] = ()) -> None:
        self.views, self.notes = views, tuple(notes)
        self.state = {**DEFAULTS, **check_state(state or {})}
        self.init, self.version, self.generation = 0, 0, 0
        self.val_every = VAL_EVERY  # (set by the server's turns: longer while many pages play)
        self.inspected: tuple[torch.Tensor, int | None, str] | None = None
        self._build()

    # -- the model ----------------------------------------------------------------------------------
    def _build(self) -> None:
        """A new model with the initial weights of the seed and the "new weights" count, at step 0, paused."""
        s, seed = self.state, self.state["seed"] + 1000 * self.init
        with _BUILD, torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.model = build_model(s["model"], 784, 10, tuple(s["hidden"]), s["activation"])
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=s["lr"], momentum=s["momentum"], weight_decay=s["decay"]
        )
        self.step_fn = EagerStep(forward_loss_of(self.model), list(self.model.parameters()))
        self._new_batches(seed)
        self.steps, self.images, self.train_seconds, self.generation = 0, 0, 0.0, self.generation + 1
        self.playing, self.diverged = False, None
        self.new_losses: list[list] = []
        self.recent: collections.deque = collections.deque(maxlen=WINDOW)
        self.val: watch.Measure | None = None
        self.val_step, self.val_at, self.test = None, -math.inf, None
        self.gradient_numbers = watch.gradients(self.model)  # (none yet)

    def _new_batches(self, seed: int) -> None:
        self.sampler = EpochBatches(self.views.train_x.shape[0], self.state["batch"], seed=seed)
        self.batches = iter(self.sampler)

    def configure(self, changes: dict, version: int | None = None) -> None:
        """Lay a checked partial state over the current one and do what the changed fields' groups say."""
        new = {**self.state, **check_state(changes)}
        groups = {FIELDS[name].group for name in new if new[name] != self.state[name]}
        lower_rate, batch_changed = new["lr"] < self.state["lr"], new["batch"] != self.state["batch"]
        self.state = new
        if "network" in groups or (self.diverged and lower_rate):
            self._build()  # (after a divergence, a lower rate starts again from the same initial weights)
        elif "recipe" in groups:
            for group in self.optimizer.param_groups:
                group.update(lr=new["lr"], momentum=new["momentum"], weight_decay=new["decay"])
            if batch_changed:
                self._new_batches(self.state["seed"] + 1000 * self.init + self.steps)
        self.version = self.version + 1 if version is None else version

    def reset(self, new_weights: bool = False) -> None:
        """Back to step 0, paused: the same initial weights (or, with ``new_weights``, the next start's)."""
        self.init += new_weights
        self._build()

    # -- training -----------------------------------------------------------------------------------
    @property
    def epoch(self) -> float:
        return self.images / self.views.train_x.shape[0]

    def advance(self, seconds: float | None = None) -> int:
        """Training steps for ``seconds`` (at least one), or exactly one step (``None``); stops, paused, when the
        run diverges.  Returns the steps taken."""
        if self.diverged:
            return 0
        start = time.perf_counter()
        end, taken = start + (seconds or 0.0), 0
        with _threads(THREADS):
            while not self.diverged:
                taken += self._one_step()
                if seconds is None or time.perf_counter() >= end:
                    break
            self._keep_gradient_numbers()
        self.train_seconds += time.perf_counter() - start
        return taken

    def _keep_gradient_numbers(self) -> None:
        """The last step's gradient numbers for the frames, then the gradients dropped: a page that waits for its
        next turn holds its weights and momentum, not a third copy of its model."""
        self.gradient_numbers = watch.gradients(self.model)
        for p in self.model.parameters():
            p.grad = None

    def _one_step(self) -> int:
        idx = next(self.batches, None)
        if idx is None:  # the next epoch: a new permutation
            self.batches = iter(self.sampler)
            idx = next(self.batches)
        v = self.views
        loss, _ = self.step_fn(v.train_x.index_select(0, idx), v.train_y.index_select(0, idx))
        value = float(loss.detach())
        if not math.isfinite(value):  # (diverged(loss), without another pass over the loss: it is one number)
            return self._diverge("became NaN or infinite")
        self.step_fn.update(self.optimizer)
        self.steps, self.images = self.steps + 1, self.images + idx.numel()
        self.new_losses.append([self.steps, round(value, 5)])
        self.recent.append(value)
        mean = sum(self.recent) / len(self.recent)
        if len(self.recent) == WINDOW and mean > DIVERGED_LOSS:
            self._diverge(f"rose to {mean:.3g}, ten times that of guessing at random (ln 10 = 2.30)")
        return 1

    def _diverge(self, how: str) -> int:
        self.playing = False
        self.diverged = (
            f"Training diverged at step {self.steps:,} ({self.images:,} images): the training loss {how}. Lower "
            f"the learning rate (now {self.state['lr']:g}) to start again from the same initial weights, or press "
            "Reset."
        )
        return 0

    # -- one digit ----------------------------------------------------------------------------------
    def inspect(self, index: int | None) -> None:
        """Look inside test digit ``index`` of the gallery from now on (``None``: no digit)."""
        if index is None:
            self.inspected = None
            return
        if index >= self.views.gallery.shape[0]:
            raise BadMessage(f"index must be a test digit of the gallery, 0 to {self.views.gallery.shape[0] - 1}")
        image = self.views.gallery[index].float() / 255
        self.inspected = (image, int(self.views.gallery_y[index]), f"test digit {index + 1}")

    def draw(self, image: torch.Tensor) -> None:
        """Look inside a drawn digit (28, 28) from now on."""
        self.inspected = (image, None, "your drawing")

    # -- what the page draws -----------------------------------------------------------------------------
    def frame(self) -> bytes:
        """The binary frame (see the module's docstring)."""
        start = time.perf_counter()
        with _threads(THREADS):
            finite = self._measure()
            kind, count, pictures = watch.templates(self.model)
            header = {
                "type": "frame",
                "version": self.version,
                "generation": self.generation,
                "playing": self.playing,
                "step": self.steps,
                "images": self.images,
                "epoch": round(self.epoch, 4),
                "losses": self._take_losses(),
                "val": self._val_header(),
                "layers": self._layers(),
                "gallery": watch.top_three(self.model, self.views.gallery_x) if finite else None,
                "test": self.test,
                "templates": {"kind": kind, "count": count},
                "notices": [*self.notes, *([self.diverged] if self.diverged else [])],
                "diverged": self.diverged,
            }
            blobs = [pictures]
            if self.inspected is not None and finite:
                digit, digit_pictures = look_inside(self.model, self.inspected[0], self.inspected[1])
                header["digit"] = {**digit, "source": self.inspected[2]}
                blobs += digit_pictures
        header["ms"] = round((time.perf_counter() - start) * 1e3, 1)
        return encode(header if _all_finite(header) else _finite_numbers(header), blobs)

    def summary(self) -> dict:
        """This page as the teacher's tile shows it (:mod:`nnref.lab.classroom`): the model in words, the epoch,
        the validation accuracy, the last training losses, whether it plays or diverged."""
        s = self.state
        model = "softmax regression" if s["model"] == "softmax" else f"MLP {'-'.join(map(str, s['hidden']))}"
        if s["model"] == "mlp":
            model += f" {s['activation']}"
        accuracy = self.val.accuracy if self.val is not None and self.val_step is not None else None
        return {
            "setup": f"MNIST · {model} · lr {s['lr']:g}",
            "preset": None,
            "model": s["model"],
            "epoch": round(self.epoch, 3),
            "steps": self.steps,
            "accuracy": accuracy,
            "curve": [[i, round(v, 4)] for i, v in enumerate(self.recent)],
            "playing": self.playing,
            "diverged": bool(self.diverged),
        }

    def _measure(self) -> bool:
        """Re-measure the validation subset when due, and the test set whenever paused on a new step; whether the
        weights are finite (a diverged model's may not be: nothing is measured then)."""
        finite = all(torch.isfinite(p).all() for p in self.model.parameters())
        if not finite:
            return False
        v, now, mlp = self.views, time.perf_counter(), self.state["model"] == "mlp"
        if self.val_step != self.steps and (not self.playing or now - self.val_at >= self.val_every):
            self.val = watch.measure(self.model, v.val_x, v.val_y, self.state["activation"] if mlp else "softmax")
            self.val_step, self.val_at = self.steps, now
        if not self.playing and (self.test is None or self.test["step"] != self.steps):
            loss, accuracy, _ = evaluate(self.model, v.test_x, v.test_y)
            self.test = {"step": self.steps, "accuracy": accuracy, "loss": loss, "images": v.test_x.shape[0]}
            give_back_memory()  # (the test set's activations: up to 16 MiB a layer, in a thread's own heap)
        return True

    def _take_losses(self) -> list[list]:
        """The training losses [step, loss] since the last frame (every step's, at most 2,000: thinned evenly)."""
        losses, self.new_losses = self.new_losses, []
        return losses[:: max(1, math.ceil(len(losses) / 2000))]

    def _val_header(self) -> dict | None:
        if self.val is None:
            return None
        m = self.val
        return {
            "step": self.val_step,
            "loss": m.loss,
            "accuracy": m.accuracy,
            "confusion": m.confusion,
            "images": self.views.val_x.shape[0],
        }

    def _layers(self) -> list[dict]:
        """Per layer (the hidden ones, then the output): its size, activation, the mean and spread of its activations
        on the validation subset (the output's: the logits z) and of its weights' gradient of the last step, and its
        share of dead or saturated units."""
        linears = [m for m in watch.layers_of(self.model) if isinstance(m, Linear)]
        hidden = len(linears) - 1
        names = [f"hidden {i + 1}" for i in range(hidden)] + ["output"]
        activations = [self.state["activation"]] * hidden + ["softmax"]
        numbers = self.val.layers if self.val is not None else [{}] * len(linears)
        return [
            {"name": name, "inputs": m.in_features, "units": m.out_features, "activation": a, **n, **g}
            for name, m, a, n, g in zip(names, linears, activations, numbers, self.gradient_numbers)
        ]

    # -- the export ---------------------------------------------------------------------------------
    def export(self) -> tuple[str, bytes]:
        """(file name, bytes) of the model as an nnref checkpoint (:mod:`.checkpoint`), with its test accuracy and
        that on the validation subset measured now."""
        if not all(torch.isfinite(p).all() for p in self.model.parameters()):
            raise BadMessage("The model diverged: its weights are not finite. Press Reset before exporting it.")
        v = self.views
        with _threads(THREADS):
            test_loss, test_acc, _ = evaluate(self.model, v.test_x, v.test_y)
            _, val_acc, _ = evaluate(self.model, v.val_x, v.val_y)
        cfg = config_of(self.state, v.root, v.val_size, self.epoch)
        final = {
            "test_acc": test_acc,
            "test_loss": test_loss,
            "val_acc": val_acc,
            "val_images": v.val_x.shape[0],
            "train_seconds": self.train_seconds,
        }
        progress = {"step": self.steps, "epoch": self.epoch, "images": self.images}
        content = checkpoint_bytes(self.model, self.optimizer, cfg, progress, final, self.state)
        return f"nnref-mnist-{self.state['model']}-step{self.steps}.pt", content


def give_back_memory() -> None:
    """Hand the memory that freed tensors leave in the C allocator's heaps back to the system (glibc's
    ``malloc_trim``; elsewhere nothing): without it, each thread's heap keeps the largest activations it once
    held, and a server of many pages grows by them."""
    if _TRIM is not None:
        _TRIM(0)


def _malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None


_TRIM = _malloc_trim()


def _all_finite(header: dict) -> bool:
    """Whether JSON can say every number of the header as it is (the usual case: one quick check)."""
    try:
        json.dumps(header, allow_nan=False)
    except ValueError:
        return False
    return True


def _finite_numbers(value):
    """The header with every NaN or infinite number as None (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_numbers(v) for v in value]
    return value
