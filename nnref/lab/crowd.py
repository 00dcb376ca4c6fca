"""A class on one server: the pages of the lab train together.

Every playing page's networks (each a :class:`nnref.plane.Descent`) that share a shape — the same inputs, layers,
activation, classes, training points and rows per step — take their steps in one batched computation: their
weights stacked with a leading page dimension ``P``, each page with its own points, mini-batches, learning rate,
momentum, weight decay and L1 rate.  The Python cost of a step is paid once for the group instead of once per page.

nnref's Functions (or a student's, ``nnref lab --functions``) still compute every gradient, by their own
hand-written backward: the activations and the losses are element-wise (or row-wise), so they take the stacked
tensors as they are — (P, B, h), the losses on the P·B rows with ``reduction="none"``; the linear layer, a product
per page, runs its own forward and backward under ``torch.func.vmap`` over the page dimension
(:class:`PagedFunction`).  A set of Functions that cannot be batched falls back to training page by page, and
the log says so once.

A page's run does not depend on the crowd: its steps are its own Descent's (the same seed, the same batches, the
same SGD with momentum and weight decay as ``torch.optim.SGD``); the gradient of a step is its batch's mean loss,
as alone.  A page with no other of its shape takes its Descent's own steps.  Alone and among 99 others its weights
agree to float32 rounding, not bit for bit (the batched products sum in another order; the test allows 1e-6 per
weight after 100 steps).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

import torch
from torch.func import vmap

from .. import functional
from ..functional import value_checks
from ..models import MLP
from ..plane import Descent

__all__ = ["PagedFunction", "Group", "Crowd", "train_together", "batchable", "shape_of"]

log = logging.getLogger("nnref.lab")
_ACTIVATION = {"relu": functional.relu, "sigmoid": functional.sigmoid, "tanh": functional.tanh, "linear": None}


class _Context:
    """What a Function's ``setup_context`` and ``backward`` see of ``ctx``, for one page under vmap."""

    def __init__(self, saved=(), attributes=None, needs=()) -> None:
        self.saved_tensors, self.needs_input_grad = tuple(saved), tuple(needs)
        self.__dict__.update(attributes or {})

    def save_for_backward(self, *tensors) -> None:
        self.saved_tensors = tensors

    def mark_non_differentiable(self, *tensors) -> None:
        pass

    def set_materialize_grads(self, value: bool) -> None:
        pass


class PagedFunction(torch.autograd.Function):
    """``PagedFunction.apply(name, *args)``: nnref's Function ``name`` (or the student's in its place) on arguments
    with a leading page dimension P — its own forward, ``setup_context`` and backward, each under
    ``torch.func.vmap`` over the pages.  Linear: x (P, B, p), W (P, c, p), b (P, c) → z (P, B, c)."""

    @staticmethod
    def forward(ctx, name, *args):
        function, attributes = getattr(functional, name), {}

        def one_page(*page_args):
            out, inner = function.forward(*page_args), _Context()
            function.setup_context(inner, page_args, out)
            attributes.update({k: v for k, v in vars(inner).items() if k not in ("saved_tensors", "needs_input_grad")})
            return out, inner.saved_tensors

        dims = tuple(0 if isinstance(a, torch.Tensor) else None for a in args)
        out, saved = vmap(one_page, in_dims=dims)(*args)
        ctx.function, ctx.attributes = function, attributes
        ctx.save_for_backward(*saved)
        return out

    @staticmethod
    def backward(ctx, g):
        function, needs = ctx.function, ctx.needs_input_grad[1:]

        def one_page(g, *saved):
            grads = function.backward(_Context(saved, ctx.attributes, needs), g)
            grads = grads if isinstance(grads, tuple) else (grads,)
            return tuple(torch.zeros(()) if grad is None else grad for grad in grads)

        grads = vmap(one_page)(g, *ctx.saved_tensors)
        return (None, *[grad if need else None for grad, need in zip(grads, needs)])


def shape_of(d: Descent) -> tuple:
    """What must be equal for two descents to step together: the network's layer sizes and activation, the
    classes, the training points' count and the rows of a step."""
    sizes = tuple(tuple(m.weight.shape) for m in _linears(d.net))
    activation = d.net.activation_name if isinstance(d.net, MLP) else "none"
    n = d.X.shape[0]
    rows = n if not d.cfg.batch_size or d.cfg.batch_size >= n else d.cfg.batch_size
    return sizes, activation, d.classes, n, rows


def _linears(net) -> list:
    return [m for m in net.modules() if hasattr(m, "weight") and hasattr(m, "bias")]


@dataclass
class _Recipe:
    lr: torch.Tensor  # (P,): each page's
    momentum: torch.Tensor
    weight_decay: torch.Tensor
    l1: torch.Tensor


class Group:
    """Descents of one shape (:func:`shape_of`), stepping together: :meth:`step` is one step of each.  Their
    weights and momentum are read from the descents when the group is made and written back by :meth:`finish`."""

    def __init__(self, descents: list[Descent]) -> None:
        self.descents = descents
        first = descents[0]
        self.activation = _ACTIVATION[first.net.activation_name] if isinstance(first.net, MLP) else None
        self.binary = first.classes == 2
        self.params = [torch.stack([p.detach() for p in ps]).requires_grad_() for ps in self._per_page()]
        self.buffers = [torch.stack(bs) for bs in zip(*[_momentum(d) for d in descents])]
        self.X = torch.stack([d.X for d in descents])  # (P, n, f)
        self.t = torch.stack([d.t for d in descents])  # (P, n)
        self.recipe = _Recipe(
            *(torch.tensor([getattr(d.cfg, k) for d in descents]) for k in ("lr", "momentum", "weight_decay", "l1"))
        )
        self.losses = torch.zeros(len(descents))

    def _per_page(self):
        return zip(*[list(d.net.parameters()) for d in self.descents])

    def _batches(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Each page's next batch, as its Descent draws it: inputs (P, B, f), targets (P, B), and each row's
        weight in the page's mean loss (P, B): 1/rows, 0 for the padding of a short last batch."""
        rows = [d.batch_indices(whole=True) for d in self.descents]
        lengths = torch.tensor([len(r) for r in rows])
        if bool((lengths == lengths[0]).all()):
            index = torch.stack(rows)
        else:  # a short last batch of an epoch: padded with row 0, which weighs nothing
            index = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)
        weight = (torch.arange(index.shape[1]) < lengths[:, None]) / lengths[:, None].float()
        x = torch.gather(self.X, 1, index.unsqueeze(-1).expand(-1, -1, self.X.shape[-1]))
        return x, torch.gather(self.t, 1, index), weight

    def step(self) -> None:
        """One step of every page: w ← w − α (momentum buffer), the buffer μ b + ∂L/∂w + λ w (torch.optim.SGD's)."""
        x, t, weight = self._batches()
        loss = self._loss(x, t, weight)
        grads = torch.autograd.grad(loss.sum(), self.params)
        r = self.recipe
        with torch.no_grad():
            for i, (p, g) in enumerate(zip(self.params, grads)):
                shape = (-1,) + (1,) * (p.dim() - 1)  # a weight (P, c, p) or a bias (P, c)
                lr, mu, wd = r.lr.view(shape), r.momentum.view(shape), r.weight_decay.view(shape)
                g = g + wd * p
                b = mu * self.buffers[i] + g
                self.buffers[i] = b * (mu != 0)  # no momentum: no buffer (torch starts a new one from the gradient)
                p -= lr * b
        self.losses = loss.detach()
        for d in self.descents:
            d.steps += 1

    def _loss(self, x, t, weight) -> torch.Tensor:
        """Each page's loss (P,): the mean loss of its batch, plus its L1 penalty on the weights."""
        P, B = weight.shape
        a = x
        for i in range(0, len(self.params), 2):
            a = PagedFunction.apply("LinearFunction", a, self.params[i], self.params[i + 1])
            if i + 2 < len(self.params) and self.activation is not None:
                a = self.activation(a)
        with value_checks(False):
            if self.binary:
                rows = functional.sigmoid_binary_cross_entropy(a.reshape(P * B), t.reshape(P * B), "none")
            else:
                rows = functional.softmax_cross_entropy(a.reshape(P * B, -1), t.reshape(P * B), "none")
        loss = (rows.view(P, B) * weight).sum(1)
        l1 = self.recipe.l1
        if bool((l1 != 0).any()):
            loss = loss + l1 * sum(W.abs().sum((1, 2)) for W in self.params[0::2])
        return loss

    def finish(self) -> None:
        """Write every page's weights and momentum back into its Descent."""
        with torch.no_grad():
            for ps, stacked in zip(self._per_page(), self.params):
                for p, value in zip(ps, stacked):
                    p.copy_(value)
            for j, d in enumerate(self.descents):
                _set_momentum(d, [b[j] for b in self.buffers])


def _momentum(d: Descent) -> list[torch.Tensor]:
    state = d.optimizer.state
    return [
        state[p]["momentum_buffer"].detach().clone()
        if state.get(p, {}).get("momentum_buffer") is not None
        else torch.zeros_like(p)
        for p in d.net.parameters()
    ]


def _set_momentum(d: Descent, buffers: list[torch.Tensor]) -> None:
    for p, b in zip(d.net.parameters(), buffers):
        if d.cfg.momentum:
            d.optimizer.state[p]["momentum_buffer"] = b.clone()
        else:
            d.optimizer.state.pop(p, None)


def train_together(descents: list[Descent], seconds: float = 0.0, steps: int | None = None) -> dict[int, float]:
    """Steps of every descent, the ones of one shape together: ``steps`` each, or rounds of one step of each group
    for ``seconds`` (at least one).  Returns each descent's last loss (by ``id``)."""
    if not batchable():
        return _page_by_page(descents, seconds, steps)
    groups: dict[tuple, list[Descent]] = {}
    for d in descents:
        groups.setdefault(shape_of(d), []).append(d)
    batched = [Group(members) if len(members) > 1 else _Alone(members[0]) for members in groups.values()]
    with _one_thread():  # small products: a second intra-op thread only waits for a core (2 ms a softmax, loaded)
        _rounds(batched, seconds, steps)
    for g in batched:
        g.finish()
    return {id(d): float(loss) for g in batched for d, loss in zip(g.descents, g.losses)}


class _Alone:
    """A page with no other of its shape: its own Descent's step (the same steps; no stacking to pay for)."""

    def __init__(self, d: Descent) -> None:
        self.descents, self.losses = [d], [float("nan")]

    def step(self) -> None:
        self.losses = [self.descents[0].step()]

    def finish(self) -> None:
        pass


@contextlib.contextmanager
def _one_thread():
    before = torch.get_num_threads()
    if before != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if before != 1:
            torch.set_num_threads(before)


_BATCHABLE: dict[tuple, bool] = {}


def batchable() -> bool:
    """Whether the Functions in use (nnref's, or a student's) give, batched over pages, what they give page by page:
    a two-page probe of every activation and loss, forward and backward.  Said once in the log when not."""
    key = tuple(getattr(functional, name) for name in functional.FUNCTIONS)
    if key not in _BATCHABLE:
        try:
            _BATCHABLE[key] = all(_probe(activation, binary) for activation in _ACTIVATION for binary in (True, False))
            reason = "they give other gradients batched than page by page"
        except Exception as exc:
            _BATCHABLE[key], reason = False, f"{type(exc).__name__}: {exc}"
        if not _BATCHABLE[key]:
            log.warning("nnref lab: the Functions cannot be batched over pages (%s): pages train one by one", reason)
    return _BATCHABLE[key]


def _probe(activation: str, binary: bool) -> bool:
    g = torch.Generator().manual_seed(0)
    x, W, b = torch.randn(2, 5, 3, generator=g), torch.randn(2, 4, 3, generator=g), torch.randn(2, 4, generator=g)
    t = torch.randint(0, 2 if binary else 4, (2, 5), generator=g)
    t = t.float() if binary else t
    act = _ACTIVATION[activation] or (lambda z: z)

    def losses(z, t):  # rows (n,) of a flat batch
        z = act(z)
        with value_checks(False):
            if binary:
                return functional.sigmoid_binary_cross_entropy(z.sum(-1), t, "none")
            return functional.softmax_cross_entropy(z, t, "none")

    W.requires_grad_()
    z = PagedFunction.apply("LinearFunction", x, W, b)
    together = torch.autograd.grad(losses(z.reshape(10, 4), t.reshape(10)).sum(), W)[0]
    alone = torch.stack(
        [torch.autograd.grad(losses(functional.linear(x[i], W[i], b[i]), t[i]).sum(), W)[0][i] for i in range(2)]
    )
    return torch.allclose(together, alone, rtol=1e-5, atol=1e-6)


def _rounds(groups: list[Group], seconds: float, steps: int | None) -> None:
    end, done = time.perf_counter() + seconds, 0
    while True:
        for g in groups:
            g.step()
        done += 1
        if (steps is not None and done >= steps) or (steps is None and time.perf_counter() >= end):
            return


def _page_by_page(descents: list[Descent], seconds: float, steps: int | None) -> dict[int, float]:
    end, done, losses = time.perf_counter() + seconds, 0, {}
    while True:
        for d in descents:
            losses[id(d)] = float(d.step())
        done += 1
        if (steps is not None and done >= steps) or (steps is None and time.perf_counter() >= end):
            return losses


class Crowd:
    """The class's training on the server: a playing page awaits its next frame from :meth:`train`; the pages that
    wait are trained together in rounds of ``seconds`` (:func:`train_together`, in a worker thread), one after the
    other while any page waits.  A paused page waits for nothing and costs nothing.  Every ``report`` seconds the
    log says when the pages are being slowed: how many play, and the rounds (frames) per second each gets against
    ``alone`` (what a page alone gets)."""

    def __init__(self, seconds: float, alone: float = 20.0, report: float = 10.0) -> None:
        self.seconds, self.alone, self.report = seconds, alone, report
        self.waiting: dict = {}
        self.task, self.overhead = None, 0.0
        self.rounds, self.pages, self.since = 0, 0, time.perf_counter()

    async def train(self, session) -> bytes:
        """Train ``session`` in the next round (with every other page waiting then): its next frame."""
        future = asyncio.get_running_loop().create_future()
        self.waiting[session] = future
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run())
        return await future

    async def _run(self) -> None:
        last: set = set()
        while self.waiting:
            await self._gather(last)
            sessions, self.waiting = self.waiting, {}
            last = set(sessions)
            try:
                frames = await asyncio.to_thread(self._round, list(sessions))
            except Exception as exc:  # a bug: every page of the round is told (their loops log it)
                frames = {}
                for future in sessions.values():
                    if not future.done():
                        future.set_exception(exc)
            for session, future in sessions.items():
                if not future.done():
                    future.set_result(frames[session])
            self._count(len(sessions))

    async def _gather(self, last: set, most: float = 0.01) -> None:
        """Let the pages of the ``last`` round send their frames and come back before the next round starts (until
        all are back, or none came for a while, or ``most`` seconds): one round for the class, not many small ones."""
        end, idle = time.perf_counter() + most, 0
        while not last <= self.waiting.keys() and idle < 50 and time.perf_counter() < end:
            before = len(self.waiting)
            await asyncio.sleep(0)
            idle = 0 if len(self.waiting) > before else idle + 1

    def _round(self, sessions: list) -> dict:
        """One round: every waiting page's steps for at least ``seconds`` — longer when the round's own cost (the
        stacking, the pages' frames) is larger, so that training keeps at least half of it — then each page's
        frame, made here in one thread rather than in a thread each."""
        start = time.perf_counter()
        descents = [d for s in sessions for d in s.training()]
        losses = train_together(descents, max(self.seconds, self.overhead)) if descents else {}
        frames = {}
        for s in sessions:
            if s.training():
                s.trained([losses[id(d)] for d in s.descents.values()])
            frames[s] = s.frame()
        self.overhead = max(0.0, time.perf_counter() - start - max(self.seconds, self.overhead))
        return frames

    def _count(self, pages: int) -> None:
        self.rounds, self.pages = self.rounds + 1, self.pages + pages
        elapsed = time.perf_counter() - self.since
        if elapsed < self.report:
            return
        rate, playing = self.rounds / elapsed, self.pages / self.rounds
        if rate < 0.9 * self.alone:
            log.warning(
                "nnref lab: %.0f pages play at once: each gets %.1f frames/s, %.0f%% of a page alone's %.0f "
                "(this machine is the limit: lower --max-pages to keep each page faster)",
                playing,
                rate,
                100 * rate / self.alone,
                self.alone,
            )
        self.rounds, self.pages, self.since = 0, 0, time.perf_counter()
