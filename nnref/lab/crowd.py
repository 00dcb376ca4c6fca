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

A class's rounds (:class:`Crowd`) keep their groups while their pages stay: a group holds its pages' weights in one
tensor and each page's parameters are views of its row, so a weight typed by hand or a step of the page alone is
the group's at once.  The steps of a round go to the group furthest behind in epochs (a page of batch 1 takes 200
steps an epoch where a page of the whole set takes one: each gets the same epochs per second).  What a frame shows
— the losses and accuracies on both splits, the weights with the standardisation folded in — is measured for a
whole group in one pass (:meth:`Group.look`), and the weights go to the page as float32
(:func:`nnref.lab.session.decode`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import weakref
from dataclasses import dataclass

import torch
from torch.func import vmap

try:  # functorch's own entry points: what torch.func.vmap does, without flattening argument trees
    from torch._C import _functorch

    _functorch._add_batch_dim, _functorch._remove_batch_dim, _functorch._vmap_increment_nesting  # noqa: B018
except (ImportError, AttributeError):  # pragma: no cover - (an older or newer PyTorch: torch.func.vmap)
    _functorch = None

from .. import functional
from ..functional import value_checks
from ..models import MLP
from ..plane import Descent, features

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
            return (out, *inner.saved_tensors)

        out, *saved = per_page(one_page, args)
        ctx.function, ctx.attributes = function, attributes
        ctx.save_for_backward(*saved)
        return out

    @staticmethod
    def backward(ctx, g):
        function, needs = ctx.function, ctx.needs_input_grad[1:]

        def one_page(g, *saved):
            grads = function.backward(_Context(saved, ctx.attributes, needs), g)
            return grads if isinstance(grads, tuple) else (grads,)

        grads = per_page(one_page, (g, *ctx.saved_tensors))
        return (None, *[grad if need else None for grad, need in zip(grads, needs)])


def per_page(function, args: tuple) -> list:
    """``function`` of one page's arguments, run once for all pages: ``torch.func.vmap`` over the leading page
    dimension of every tensor in ``args`` (the others are passed as they are); returns its outputs (a tuple of
    tensors or None), each with the page dimension in front.

    The same as ``vmap(function)(*args)``, at a third of its Python cost (35 µs instead of 93 µs a call, measured
    on a linear layer of 100 pages): it enters functorch's vmap level itself instead of flattening argument trees —
    a layer of a step takes two calls, so a step of four layers saves 0.5 ms.  Where this PyTorch lacks those
    entry points, ``torch.func.vmap`` itself."""
    sizes = {a.shape[0] for a in args if isinstance(a, torch.Tensor)}
    (pages,) = sizes
    if _functorch is None:
        dims = tuple(0 if isinstance(a, torch.Tensor) else None for a in args)
        return list(vmap(lambda *a: tuple(_zeros_for_none(function(*a))), in_dims=dims)(*args))
    level = _functorch._vmap_increment_nesting(pages, "error")
    try:
        batched = [_functorch._add_batch_dim(a, 0, level) if isinstance(a, torch.Tensor) else a for a in args]
        outs = function(*batched)
        return [None if o is None else _functorch._remove_batch_dim(o, level, pages, 0) for o in outs]
    finally:
        _functorch._vmap_decrement_nesting()


def _zeros_for_none(outs) -> list:
    return [torch.zeros(()) if o is None else o for o in outs]


#: Each descent's network sizes and activation, and its test points standardised (read once, kept while it lives).
_NETWORKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_TESTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def shape_of(d: Descent) -> tuple:
    """What must be equal for two descents to step together: the network's layer sizes and activation, the
    classes, the training points' count and the rows of a step."""
    n = d.X.shape[0]
    rows = n if not d.cfg.batch_size or d.cfg.batch_size >= n else d.cfg.batch_size
    network = _NETWORKS.get(d)  # (a descent's network keeps its shape: read once)
    if network is None:
        sizes = tuple(tuple(m.weight.shape) for m in _linears(d.net))
        network = _NETWORKS[d] = sizes, d.net.activation_name if isinstance(d.net, MLP) else "none"
    return *network, d.classes, n, rows


def _linears(net) -> list:
    return [m for m in net.modules() if hasattr(m, "weight") and hasattr(m, "bias")]


@dataclass
class _Recipe:
    lr: torch.Tensor  # (P, 1): each page's
    momentum: torch.Tensor
    weight_decay: torch.Tensor
    l1: torch.Tensor


class Group:
    """Descents of one shape (:func:`shape_of`), stepping together: :meth:`step` is one step of each.

    The group holds every page's parameters in one tensor (P, N) — each page's weights and biases flattened, input
    side first — and their momentum in another; each descent's parameters become views of its row (so its own
    steps, the weights typed by hand and every read see the group's, and nothing is copied back), and its
    optimizer's momentum buffers views of the momentum's row.  :meth:`look` is what the pages' frames show, for
    the whole group at once.  ``tests``: each page's test points (X (m, 2), y (m,)), for :meth:`look`."""

    def __init__(self, descents: list[Descent], tests: list | None = None) -> None:
        self.descents, first = descents, descents[0]
        self.shape, self.steps_per_epoch = shape_of(first), first.steps_per_epoch
        self.cfgs = [d.cfg for d in descents]  # (a new recipe is a new cfg: see follow_recipes)
        self.activation = _ACTIVATION[first.net.activation_name] if isinstance(first.net, MLP) else None
        self.binary = first.classes == 2
        self.shapes = [tuple(p.shape) for p in first.net.parameters()]  # weight, bias, weight, bias, …
        ends = torch.tensor([math.prod(shape) for shape in self.shapes]).cumsum(0).tolist()
        self.bounds = list(zip([0, *ends[:-1]], ends))
        with torch.no_grad():
            self.flat = torch.stack([_flat(d.net.parameters()) for d in descents]).requires_grad_()
            self.buffer = torch.stack([_flat(_momentum(d)) for d in descents])
        self._lend()
        self.X = torch.stack([d.X for d in descents])  # (P, n, f)
        self.t = torch.stack([d.t for d in descents])  # (P, n)
        column = {k: torch.tensor([[getattr(d.cfg, k)] for d in descents]) for k in _Recipe.__annotations__}
        self.recipe = _Recipe(**column)
        self.has_momentum = self.recipe.momentum != 0
        self.losses = torch.zeros(len(descents))
        self.seen = [d.steps for d in descents]  # (a step of a page alone meanwhile: the group is made again)
        self._batching()
        self.tests = _standardised(descents, tests) if tests is not None else None

    def _lend(self) -> None:
        """Each descent's parameters and momentum buffers become views of its row of the group's."""
        values, buffers = self.flat.detach(), self.buffer
        for j, d in enumerate(self.descents):
            for p, (a, b), shape in zip(d.net.parameters(), self.bounds, self.shapes):
                p.data = values[j, a:b].view(shape)
                d.optimizer.state[p]["momentum_buffer"] = buffers[j, a:b].view(shape)  # (unread without momentum)

    def params(self) -> list[torch.Tensor]:
        """Every parameter of every page: (P, c, p) weights and (P, c) biases, views of the group's tensor."""
        P = len(self.descents)
        return [self.flat[:, a:b].view(P, *shape) for (a, b), shape in zip(self.bounds, self.shapes)]

    def same(self, descents: list[Descent]) -> bool:
        """Whether these descents are this group's, and nothing stepped them since its last step."""
        return len(descents) == len(self.descents) and all(
            d is mine and d.steps == seen for d, mine, seen in zip(descents, self.descents, self.seen)
        )

    def follow_recipes(self) -> None:
        """Each page's learning rate, momentum, weight decay and L1 rate as its descent now has them (a slider
        moved between two rounds): from the next step on, as for the page alone."""
        for j, d in enumerate(self.descents):
            if d.cfg is not self.cfgs[j]:
                for k in _Recipe.__annotations__:
                    getattr(self.recipe, k)[j, 0] = getattr(d.cfg, k)
                self.cfgs[j] = d.cfg
        self.has_momentum = self.recipe.momentum != 0

    def _batching(self) -> None:
        """Each page's mini-batches, drawn as its Descent draws them, for every page at once where the epoch splits
        into whole batches (else page by page: :meth:`_batches`)."""
        first = self.descents[0]
        n, rows = first.X.shape[0], shape_of(first)[4]
        self.rows, self.per_epoch = rows, max(1, n // rows)
        self.uniform = n % rows == 0
        if self.uniform:
            self.order = torch.stack([d._order if d._order is not None else torch.arange(n) for d in self.descents])
            self.position = torch.tensor([(d.steps - d._start) % d.steps_per_epoch for d in self.descents])
            self.offsets = torch.arange(rows)

    def _batches(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Each page's next batch, as its Descent draws it: inputs (P, B, f), targets (P, B), and each row's
        weight in the page's mean loss (P, B): 1/rows, 0 for the padding of a short last batch (None: all 1/B)."""
        if self.uniform:
            if self.per_epoch > 1:  # a new epoch's order for the pages at its start, from each page's generator
                for j in (self.position == 0).nonzero().flatten().tolist():
                    d = self.descents[j]
                    d._order = self.order[j] = torch.randperm(d.X.shape[0], generator=d.generator)
            index = torch.gather(self.order, 1, self.position[:, None] * self.rows + self.offsets)
            self.position = (self.position + 1) % self.per_epoch
            weight = None
        else:
            rows = [d.batch_indices(whole=True) for d in self.descents]
            lengths = torch.tensor([len(r) for r in rows])
            index = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)  # (a short batch: row 0 weighs nothing)
            weight = (torch.arange(index.shape[1]) < lengths[:, None]) / lengths[:, None].float()
        x = torch.gather(self.X, 1, index.unsqueeze(-1).expand(-1, -1, self.X.shape[-1]))
        return x, torch.gather(self.t, 1, index), weight

    def step(self) -> None:
        """One step of every page: w ← w − α (momentum buffer), the buffer μ b + ∂L/∂w + λ w (torch.optim.SGD's)."""
        x, t, weight = self._batches()
        loss = self._loss(x, t, weight)
        (grad,) = torch.autograd.grad(loss.sum(), self.flat)
        r, w = self.recipe, self.flat
        with torch.no_grad():
            if bool(r.weight_decay.any()):
                grad = grad + r.weight_decay * w
            step = torch.addcmul(grad, r.momentum, self.buffer)
            w.addcmul_(step, r.lr, value=-1)
            # (no momentum: the buffer is kept as it was, unread, as torch.optim.SGD keeps it)
            self.buffer.copy_(torch.where(self.has_momentum, step, self.buffer))
        self.losses = loss.detach()
        for d in self.descents:
            d.steps += 1
        self.seen = [d.steps for d in self.descents]

    def last_losses(self) -> list[float]:
        return self.losses.tolist()

    def _logits(self, x: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
        """The networks' forward pass, by the Functions: x (P, B, f) → logits (P, B, outputs)."""
        a = x
        for i in range(0, len(params), 2):
            a = PagedFunction.apply("LinearFunction", a, params[i], params[i + 1])
            if i + 2 < len(params) and self.activation is not None:
                a = self.activation(a)
        return a

    def _rows(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Each row's loss (P, B), by the loss Functions on the P·B rows."""
        P, B = t.shape
        with value_checks(False):
            if self.binary:
                return functional.sigmoid_binary_cross_entropy(z.reshape(P * B), t.reshape(P * B), "none").view(P, B)
            return functional.softmax_cross_entropy(z.reshape(P * B, -1), t.reshape(P * B), "none").view(P, B)

    def _loss(self, x, t, weight) -> torch.Tensor:
        """Each page's loss (P,): the mean loss of its batch, plus its L1 penalty on the weights."""
        params = self.params()
        rows = self._rows(self._logits(x, params), t)
        loss = rows.mean(1) if weight is None else (rows * weight).sum(1)
        l1 = self.recipe.l1[:, 0]
        if bool((l1 != 0).any()):
            loss = loss + l1 * sum(W.abs().sum((1, 2)) for W in params[0::2])
        return loss

    @torch.no_grad()
    def look(self) -> list[dict]:
        """What each page's frame shows of its network, for the whole group at once: whether its loss and weights
        are finite, its loss and accuracy on the training and the test points (``train_loss`` …), and its layers
        as the page draws them — the standardisation folded into the first layer (the plane's own coordinates,
        :meth:`nnref.plane.Descent.model`): ``floats``, every layer's weights then biases as float32 bytes (sent as
        they are: :func:`nnref.lab.session.decode`), and the layers' ``shapes``."""
        params = [p.detach() for p in self.params()]
        finite = (self.flat.isfinite().all(1) & self.losses.isfinite()).tolist()
        scores = self._scores(params)
        W, b, folded = _folded(params, *self._moments())
        floats = folded.numpy().astype("<f4")
        lines = torch.cat([W[:, 0], b[:, :1]], 1).tolist() if _draws_a_line(self.descents[0]) else [None] * len(finite)
        shapes = [list(shape) for shape in self.shapes[0::2]]
        return [
            {"finite": ok, "scores": score, "floats": floats[j].tobytes(), "shapes": shapes, "line": line}
            for j, (ok, score, line) in enumerate(zip(finite, scores, lines))
        ]

    def _scores(self, params: list[torch.Tensor]) -> list[dict]:
        x, t, n = self.X, self.t, self.X.shape[1]
        if self.tests is not None:
            x, t = torch.cat([x, self.tests[0]], 1), torch.cat([t, self.tests[1]], 1)
        z = self._logits(x, params)
        rows = self._rows(z, t)
        predicted = (z[..., 0] >= 0).long() if self.binary else z.argmax(-1)
        right = (predicted == t.long()).float()
        return _scores_of(rows, right, n)

    def _moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        if not hasattr(self, "_mean"):
            self._mean = torch.stack([d.mean for d in self.descents])
            self._std = torch.stack([d.std for d in self.descents])
        return self._mean, self._std


def _momentum(d: Descent) -> list[torch.Tensor]:
    """The descent's momentum buffers (zeros where its optimizer has none yet)."""
    state = d.optimizer.state
    return [
        state[p]["momentum_buffer"].detach()
        if state.get(p, {}).get("momentum_buffer") is not None
        else torch.zeros_like(p)
        for p in d.net.parameters()
    ]


def _flat(tensors) -> torch.Tensor:
    return torch.cat([t.detach().reshape(-1) for t in tensors])


def _standardised(descents: list[Descent], tests: list) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The test points of every page in its descent's inputs, standardised: (P, m, f) and (P, m); None when the
    pages have different numbers of them."""
    if len({len(y) for _, y in tests}) != 1:
        return None
    X = torch.stack([(features(X, d.names) - d.mean) / d.std for d, (X, _) in zip(descents, tests)])
    t = torch.stack([y.float() if d.classes == 2 else y.long() for d, (_, y) in zip(descents, tests)])
    return X, t


@torch.no_grad()
def look_alone(d: Descent, test: tuple[torch.Tensor, torch.Tensor]) -> dict:
    """What :meth:`Group.look` gives each page of a group, for a descent alone (by its own network)."""
    if _TESTS.get(d, (None,))[0] is not test[0]:  # (the test points in its inputs, standardised once)
        _TESTS[d] = (test[0], *_standardised([d], [test]))
    _, Xte, tte = _TESTS[d]
    n, net = d.X.shape[0], d.net
    with value_checks(False):
        z = net(torch.cat([d.X, Xte[0]]))
        t = torch.cat([d.t, tte[0]])
        rows = net.loss(z, t, reduction="none")
    right = (net.predictions(z) == t.long()).float()
    (scores,) = _scores_of(rows[None], right[None], n)
    params = [p.detach() for p in net.parameters()]
    W, b, folded = _folded(params, d.mean, d.std)
    line = [*W[0].tolist(), float(b[0])] if _draws_a_line(d) else None
    return {
        "finite": bool(folded.isfinite().all()) and scores["train_loss"] is not None,
        "scores": scores,
        "floats": folded.numpy().astype("<f4").tobytes(),
        "shapes": [list(p.shape) for p in params[0::2]],
        "line": line,
    }


def _scores_of(rows: torch.Tensor, right: torch.Tensor, n: int) -> list[dict]:
    """Each page's loss and accuracy on its training points (the first ``n`` of each row of ``rows``, its points'
    losses, and of ``right``, 1 where a point's class is predicted) and on its test points (the rest)."""
    parts = [rows[:, :n].mean(1), right[:, :n].mean(1)]
    if rows.shape[1] > n:
        parts += [rows[:, n:].mean(1), right[:, n:].mean(1)]
    else:  # (no test points: no test scores)
        parts += [torch.full_like(parts[0], math.nan)] * 2
    names = ("train_loss", "train_accuracy", "test_loss", "test_accuracy")
    rows_of_values = torch.stack(parts, 1).tolist()
    return [{k: (v if math.isfinite(v) else None) for k, v in zip(names, values)} for values in rows_of_values]


def _folded(params: list[torch.Tensor], mean: torch.Tensor, std: torch.Tensor) -> tuple:
    """The network in the plane's own coordinates (:meth:`nnref.plane.Descent.model`): the first layer's W / std and
    b − (W / std)·mean, and every parameter flattened into one row — for one page, or pages with a leading P."""
    W = params[0] / std.unsqueeze(-2)
    b = params[1] - (W @ mean.unsqueeze(-1)).squeeze(-1)
    lead = W.shape[:-2]
    return W, b, torch.cat([p.reshape(*lead, -1) for p in (W, b, *params[2:])], -1)


def _draws_a_line(d: Descent) -> bool:
    """The line of two classes on the inputs x1, x2 (:meth:`nnref.plane.PlaneModel.line`)."""
    return d.kind == "logreg" and d.classes == 2 and d.names == ("x1", "x2")


def train_together(
    descents: list[Descent],
    seconds: float = 0.0,
    steps: int | None = None,
    kept: dict | None = None,
    tests: dict | None = None,
    clock: dict | None = None,
) -> dict[int, float]:
    """Steps of every descent, the ones of one shape together: ``steps`` each, or for ``seconds`` (at least one
    step), each step to the group furthest behind in epochs (:func:`_rounds`).  Returns the last loss of each
    descent that stepped (by ``id``).

    ``kept``: the groups of the last call (shape → :class:`Group`), used again where they hold the same descents and
    nothing stepped them meanwhile, following their recipes as they now are (the class's rounds: a group is made
    only when its pages change).  ``tests``: each descent's test points by ``id``, for :meth:`Group.look`.
    ``clock``: each group's epochs, kept from call to call."""
    if not batchable():
        return _page_by_page(descents, seconds, steps)
    by_shape: dict[tuple, list[Descent]] = {}
    for d in descents:
        by_shape.setdefault(shape_of(d), []).append(d)
    kept = {} if kept is None else kept
    for shape in [shape for shape, g in kept.items() if not g.same(by_shape.get(shape, []))]:
        del kept[shape]
    batched = []
    for shape, members in by_shape.items():
        if len(members) == 1:
            batched.append(_Alone(members[0], shape))
        else:
            if shape not in kept:
                kept[shape] = Group(members, [tests[id(d)] for d in members] if tests is not None else None)
            kept[shape].follow_recipes()
            batched.append(kept[shape])
    with _one_thread():  # small products: a second intra-op thread only waits for a core (2 ms a softmax, loaded)
        stepped = _rounds(batched, seconds, steps, clock)
    for shape in [shape for shape in (clock or {}) if shape not in by_shape]:
        del clock[shape]
    return {id(d): loss for g in stepped for d, loss in zip(g.descents, g.last_losses())}


class _Alone:
    """A page with no other of its shape: its own Descent's step (the same steps; no stacking to pay for)."""

    def __init__(self, d: Descent, shape: tuple) -> None:
        self.descents, self.loss, self.shape = [d], float("nan"), shape
        self.steps_per_epoch = d.steps_per_epoch

    def step(self) -> None:
        self.loss = self.descents[0].step()

    def last_losses(self) -> list[float]:
        return [float(self.loss)]


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


def _rounds(groups: list, seconds: float, steps: int | None, clock: dict | None = None) -> list:
    """``steps`` steps of every group, or steps for ``seconds`` (at least one), each to the group furthest behind
    in epochs (``clock``: each group's epochs by its shape, kept from round to round; a new group starts level
    with the slowest): every page gets the same epochs per second, whatever its batch size — a page of batch 1
    takes 200 steps an epoch on 200 points, one of the whole set takes one.  Returns the groups that stepped."""
    if steps is not None:
        for _ in range(steps):
            for g in groups:
                g.step()
        return groups
    clock = {} if clock is None else clock
    start = min((clock[g.shape] for g in groups if g.shape in clock), default=0.0)
    for g in groups:
        clock.setdefault(g.shape, start)
    end, stepped = time.perf_counter() + seconds, {}
    while True:
        g = min(groups, key=lambda g: clock[g.shape])
        g.step()
        clock[g.shape] += 1 / g.steps_per_epoch
        stepped[id(g)] = g
        if time.perf_counter() >= end:
            return list(stepped.values())


def _page_by_page(descents: list[Descent], seconds: float, steps: int | None) -> dict[int, float]:
    end, done, losses = time.perf_counter() + seconds, 0, {}
    while True:
        for d in descents:
            losses[id(d)] = float(d.step())
        done += 1
        if (steps is not None and done >= steps) or (steps is None and time.perf_counter() >= end):
            return losses


class Crowd:
    """The class's training on the server: a playing page awaits its next frame from :meth:`train`; the class is
    trained together in rounds of ``seconds`` (:func:`train_together`, in a worker thread), one after the other
    while any page waits, and each page waiting gets its frame.  A round trains every page of the class that plays —
    those that waited for a frame within the last ``member`` seconds, not only those waiting now, whose last frames
    may still be on their way: a page's training does not stop while its frame travels, the groups stay whole, and
    a slower page is not trained less.  A paused page is not trained; a page that has gone is not either
    (:meth:`leave`).  Every ``report`` seconds the log says when the pages are being slowed: how many play, and
    the rounds (frames) per second each gets against ``alone`` (what a page alone gets)."""

    def __init__(self, seconds: float, alone: float = 20.0, report: float = 10.0, member: float = 1.0) -> None:
        self.seconds, self.alone, self.report, self.member = seconds, alone, report, member
        self.waiting: dict = {}
        self.members: dict = {}  # session → when it last waited for a frame
        self.task, self.overhead = None, 0.0
        self.groups: dict = {}  # the last round's groups (shape → Group), kept while their pages stay
        self.clock: dict = {}  # each group's epochs (shape → epochs): the steps go to the group furthest behind
        self.shown: dict = {}  # what the last round measured of its members not waiting then (session → ids, looks)
        self.rounds, self.pages, self.since = 0, 0, time.perf_counter()

    async def train(self, session) -> bytes:
        """Train ``session`` in the next round (with every other page waiting then): its next frame."""
        future = asyncio.get_running_loop().create_future()
        self.waiting[session] = future
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run())
        return await future

    def leave(self, session) -> None:
        """The page has gone (or will train by itself): the class's rounds no longer train it."""
        self.members.pop(session, None)
        self.waiting.pop(session, None)

    async def _run(self) -> None:
        last: set = set()
        begun = None  # when the last round's cycle began, and the training it was given
        while True:
            if begun is not None:  # all the cycle took but its training: the rounds' own cost, and the pages'
                cycle = time.perf_counter() - begun[0] - begun[1]
                self.overhead = max(0.0, 0.7 * self.overhead + 0.3 * cycle)
            begun = (time.perf_counter(), max(self.seconds, self.overhead))
            await self._gather(last)  # (the last round's pages come back for their next frame)
            if not self.waiting:  # (none came back: every page paused, left, or is slow to draw)
                return
            sessions, self.waiting = self.waiting, {}
            last, now = set(sessions), time.perf_counter()
            kept = {s: t for s, t in self.members.items() if now - t <= self.member}
            self.members = kept | dict.fromkeys(sessions, now)
            try:
                frames = await asyncio.to_thread(self._round, list(sessions), list(self.members), begun[1])
            except Exception as exc:  # a bug: every page of the round is told (their loops log it)
                frames = {}
                for future in sessions.values():
                    if not future.done():
                        future.set_exception(exc)
            for session, future in sessions.items():
                if not future.done():
                    future.set_result(frames[session])
            self._count(len(sessions) + self._late())

    def _late(self) -> int:
        """The pages that came back for a frame while the round ran, and were trained in it: their frame of it now
        (what the round measured of them), not one round later.  Returns how many."""
        late = [s for s in self.waiting if s in self.shown and self.shown[s][0] == [id(d) for d in s.training()]]
        for session in late:
            future = self.waiting.pop(session)
            if not future.done():
                future.set_result(session.frame(self.shown[session][1]))
        return len(late)

    async def _gather(self, last: set, most: float = 0.01) -> None:
        """Let the pages of the ``last`` round send their frames and come back before the next round starts (until
        all are back, or none came for a while, or ``most`` seconds): one round for the class, not many small ones."""
        end, idle = time.perf_counter() + most, 0
        while not last <= self.waiting.keys() and idle < 50 and time.perf_counter() < end:
            before = len(self.waiting)
            await asyncio.sleep(0)
            idle = 0 if len(self.waiting) > before else idle + 1

    def _round(self, sessions: list, members: list | None = None, budget: float | None = None) -> dict:
        """One round: every playing member's steps for ``budget`` seconds — at least ``seconds``, and as long as
        the rest of the last cycle took (the round's own cost, the frames' way to the pages and back: an average),
        so that training keeps at least half of the time — then the frame of each page waiting (``sessions``),
        made here in one thread rather than in a thread each: what a group's frames show is measured for the group
        at once (:meth:`Group.look`)."""
        members = sessions if members is None else members
        descents = [d for s in members for d in s.training()]
        tests = {id(d): s.test_points() for s in members for d in s.training()}
        budget = max(self.seconds, self.overhead) if budget is None else budget
        losses = train_together(descents, budget, kept=self.groups, tests=tests, clock=self.clock) if descents else {}
        looks = {id(d): look for g in self.groups.values() for d, look in zip(g.descents, g.look())}
        for d in descents:  # (a page with no other of its shape: its own look)
            if id(d) not in looks:
                looks[id(d)] = look_alone(d, tests[id(d)])
        waiting, frames, self.shown = set(sessions), {}, {}
        for s in members:
            shown = self._trained(s, losses, looks)
            if s in waiting:
                frames[s] = s.frame(shown)
            elif shown is not None:  # (its frame, should it come back before the next round: Crowd._late)
                self.shown[s] = ([id(d) for d in s.training()], shown)
        return frames

    @staticmethod
    def _trained(session, losses: dict, looks: dict) -> dict | None:
        """Tell the session it was trained, if it stepped in this round; what its frame shows of its networks, by
        kind, where the round measured it (None: the session measures it — made anew while the round ran, or
        not in a group)."""
        trained = session.training()
        if not trained:
            return None
        stepped = all(id(d) in losses for d in trained)
        seen = [looks.get(id(d)) for d in trained]
        if all(look is not None and look["finite"] for look in seen):
            if stepped:
                session.trained(finite=True)
            return dict(zip(session.descents, seen))
        if stepped:
            session.trained([losses[id(d)] for d in trained])
        return None

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
