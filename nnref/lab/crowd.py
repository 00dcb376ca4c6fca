"""A class on one server: the pages of the lab train together.

Every playing page's networks (each a :class:`nnref.plane.Descent`) on as many training (and test) points take
their steps in one batched computation: their weights stacked with a leading page dimension ``P``, each page with
its own points, mini-batches, learning rate, momentum, weight decay and L1 rate.  The Python cost of a step is paid
once for the group instead of once per page.  Networks of one shape — the same inputs, layers, activation, classes
and rows per step — stack as they are (:class:`Group`); networks of different shapes are padded to one
(:class:`PaddedGroup`: zero inputs and neurons, identity layers, −∞ outputs, each page's activation and loss on its
own rows), and pages of different batch sizes take their steps at their own pace within it.

nnref's Functions (or a student's, ``nnref lab --functions``) still compute every gradient, by their own
hand-written backward: the activations and the losses are element-wise (or row-wise), so they take the stacked
tensors as they are — (P, B, h), the losses on the P·B rows with ``reduction="none"``; the linear layer, a product
per page, runs its own forward and backward under ``torch.func.vmap`` over the page dimension
(:class:`PagedFunction`).  A set of Functions that cannot be batched falls back to training page by page, and
the log says so once.

A page's run does not depend on the crowd: its steps are its own Descent's (the same seed, the same batches, the
same SGD with momentum and weight decay as ``torch.optim.SGD``); the gradient of a step is its batch's mean loss,
as alone.  A page with no other of its family takes its Descent's own steps.  Alone and among 99 others its weights
agree to float32 rounding, not bit for bit (the batched products sum in another order, padding adds exact zeros;
the test allows 1e-6 per weight after 100 steps).

A class's rounds (:class:`Crowd`) keep their groups while their pages stay: a group holds its pages' weights in one
tensor and each page's parameters are views of its row, so a weight typed by hand or a step of the page alone is
the group's at once.  The steps of a round go to the group furthest behind in epochs, and within a padded group to
the pages whose turn it is (a page of batch 1 takes 200 steps an epoch on 200 points, one of the whole set takes
one: each gets the same epochs per second).  What a frame shows — the losses and accuracies on both splits, the
weights with the standardisation folded in — is measured for a whole group in one pass (:meth:`Group.look`), and
the weights go to the page as float32 (:func:`nnref.lab.session.decode`).
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
from .._dispatch import LOWER, Function
from ..functional import value_checks
from ..models import MLP
from ..plane import Descent, features

__all__ = [
    "PagedFunction",
    "PagedLinearFunction",
    "paged_linear",
    "Group",
    "PaddedGroup",
    "Crowd",
    "train_together",
    "assemble",
    "own_functions",
    "batchable",
    "shape_of",
    "family_of",
]

log = logging.getLogger("nnref.lab")
_ACTIVATION = {"relu": functional.relu, "sigmoid": functional.sigmoid, "tanh": functional.tanh, "linear": None}
#: The activations that do something, in the order a padded group sorts its pages by (:func:`_code`).
_FUNCTIONS = [f for f in _ACTIVATION.values() if f is not None]


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


class PagedLinearFunction(Function):
    """nnref's :class:`~nnref.functional.LinearFunction` with a leading page dimension: z = x Wᵀ + b of every page
    at once, one batched product; its backward the same chain rule, one batched product a gradient.

    Shapes: x (P, B, p), W (P, c, p), b (P, c)  →  z (P, B, c).
    (Under vmap, LinearFunction's addmm becomes a batched addmm, slower on a CPU than the product and the sum
    written here; a student's LinearFunction, ``--functions``, still runs under vmap: :func:`paged_linear`.)
    """

    autocast = LOWER  # (LinearFunction's: the product in the autocast dtype)

    @staticmethod
    def forward(x, weight, bias):
        return torch.bmm(x, weight.transpose(1, 2)).add_(bias.unsqueeze(1))

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, weight, _ = inputs
        ctx.save_for_backward(x, weight)

    @staticmethod
    def backward(ctx, g):
        """With g = dL/dz (P, B, c), page by page as LinearFunction's:

        dL/dx = g W (P, B, p),  dL/dW = gᵀ x (P, c, p),  dL/db = Σ_rows g (P, c).
        """
        x, weight = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.bmm(g, weight)
        if ctx.needs_input_grad[1]:
            grad_w = torch.bmm(g.transpose(1, 2), x)
        if ctx.needs_input_grad[2]:
            grad_b = g.sum(1)
        return grad_x, grad_w, grad_b


_NNREF_LINEAR = functional.LinearFunction


def paged_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """The linear layer of every page: x (P, B, p), W (P, c, p), b (P, c) → (P, B, c) — by
    :class:`PagedLinearFunction` where the Functions are nnref's, else the student's under vmap
    (:class:`PagedFunction`)."""
    if functional.LinearFunction is _NNREF_LINEAR:
        return PagedLinearFunction.apply(x, weight, bias)
    return PagedFunction.apply("LinearFunction", x, weight, bias)


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


def family_of(d: Descent, tests: dict | None = None) -> tuple:
    """What must be equal for two descents to step together, padded to one shape (:class:`PaddedGroup`): the
    counts of their training points, and of their test points (``tests``: each descent's, by ``id``)."""
    return d.X.shape[0], None if tests is None else len(tests[id(d)][1])


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

    def __init__(self, descents: list[Descent], tests: list | None = None, key: tuple | None = None) -> None:
        self.descents, first = descents, descents[0]
        self.kinds = [shape_of(d) for d in descents]  # (a batch size changed: the group is made again)
        self.shape, self.steps_per_epoch = key or self.kinds[0], max(d.steps_per_epoch for d in descents)
        self.cfgs = [d.cfg for d in descents]  # (a new recipe is a new cfg: see follow_recipes)
        self.activation = _ACTIVATION[first.net.activation_name] if isinstance(first.net, MLP) else None
        self.binary = first.classes == 2
        self._layout()
        ends = torch.tensor([math.prod(shape) for shape in self.shapes]).cumsum(0).tolist()
        self.bounds = list(zip([0, *ends[:-1]], ends))
        with torch.no_grad():
            self.flat = torch.stack([self._row(d.net.parameters(), j) for j, d in enumerate(descents)])
            self.buffer = torch.stack([self._row(_momentum(d), j, identity=False) for j, d in enumerate(descents)])
            self.flat.requires_grad_()
        self._lend()
        self.X = torch.stack([self._inputs(d.X) for d in descents])  # (P, n, f)
        self.t = torch.stack([d.t.float() if self.mixed else d.t for d in descents])  # (P, n)
        column = {k: torch.tensor([[getattr(d.cfg, k)] for d in descents]) for k in _Recipe.__annotations__}
        self.recipe = _Recipe(**column)
        self.has_momentum = self.recipe.momentum != 0
        self.losses = torch.zeros(len(descents))
        self.seen = [d.steps for d in descents]  # (a step of a page alone meanwhile: the group is made again)
        self._batching()
        self.tests = _standardised(descents, tests, self._inputs, self.mixed) if tests is not None else None

    mixed = False  # (pages of one shape: no padding, one activation, one loss)

    def _layout(self) -> None:
        self.shapes = [tuple(p.shape) for p in self.descents[0].net.parameters()]  # weight, bias, weight, bias, …

    def _row(self, tensors, j: int, identity: bool = True) -> torch.Tensor:
        """Page ``j``'s parameters (or momentum buffers) as one row of the group's tensor."""
        return _flat(tensors)

    def _inputs(self, X: torch.Tensor) -> torch.Tensor:
        return X

    def _places(self, j: int) -> list[tuple]:
        """Where page ``j``'s parameters lie in its row: (start, end, shape in the row, slice of that shape)."""
        return [(a, b, shape, ...) for (a, b), shape in zip(self.bounds, self.shapes)]

    def _lend(self) -> None:
        """Each descent's parameters and momentum buffers become views of its row of the group's."""
        values, buffers = self.flat.detach(), self.buffer
        for j, d in enumerate(self.descents):
            for p, (a, b, shape, part) in zip(d.net.parameters(), self._places(j)):
                p.data = values[j, a:b].view(shape)[part]
                d.optimizer.state[p]["momentum_buffer"] = buffers[j, a:b].view(shape)[part]  # (unread if no momentum)

    def params(self, w: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Every parameter of every page: (P, c, p) weights and (P, c) biases, views of the group's tensor (or of
        ``w``, a copy of it)."""
        w, P = self.flat if w is None else w, len(self.descents)
        return [w[:, a:b].view(P, *shape) for (a, b), shape in zip(self.bounds, self.shapes)]

    def same(self, descents: list[Descent]) -> bool:
        """Whether these descents are this group's, and nothing stepped them since its last step."""
        return len(descents) == len(self.descents) and all(
            d is mine and d.steps == seen and shape_of(d) == kind
            for d, mine, seen, kind in zip(descents, self.descents, self.seen, self.kinds)
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

    def set_recipes(self, columns: list[list[float]]) -> None:
        """Every page's learning rate, momentum, weight decay and L1 rate, each a column (:meth:`recipes`): what
        the trainer process is sent of the server's :meth:`follow_recipes`."""
        for k, column in zip(_Recipe.__annotations__, columns):
            getattr(self.recipe, k)[:, 0] = torch.tensor(column)
        self.has_momentum = self.recipe.momentum != 0

    def recipes(self) -> list[list[float]]:
        """Every page's recipe, a column per field of :class:`_Recipe`."""
        return [getattr(self.recipe, k)[:, 0].tolist() for k in _Recipe.__annotations__]

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

    def step(self, paced: bool = True) -> None:
        """One step of every page: w ← w − α (momentum buffer), the buffer μ b + ∂L/∂w + λ w (torch.optim.SGD's).
        (``paced``: each page only as often as its epochs need — pages of one shape take every step.)"""
        x, t, weight = self._batches()
        if by_hand():
            weight = torch.full(t.shape, 1 / t.shape[1]) if weight is None else weight
            loss, grad = self._gradient(x, t, weight, self.flat.detach(), self._every_page())
        else:  # (a student's Function of the old style, forward(ctx, …): the autograd engine calls it)
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

    @torch.no_grad()
    def _gradient(self, x, t, weight, w, pages: _Pages) -> tuple[torch.Tensor, torch.Tensor]:
        """Each stepping page's loss (P',) and its gradient dL/dw (P', N) — ``pages``: which pages, the layers they
        compute and each one's activation (:meth:`PaddedGroup._pages`; every page of a group of one shape,
        :meth:`_every_page`) — the Functions' own forward, then their own
        backward in reverse order — the chain rule by hand, as the lecture writes it, each local gradient times the
        upstream one.  The same Functions and the same gradients as ``torch.autograd.grad`` of :meth:`_loss` (a test
        holds the two together), without the autograd engine's bookkeeping, which took more than half of a tick.

        Forward, layer by layer: z = x Wᵀ + b (:func:`_linear`), then each page's activation on its rows
        (:meth:`_activate`); the losses' rows and dL/dz (:meth:`_losses`).  Backward, from the last layer:
        dL/da → each activation's backward on its rows → dL/dz → the linear layer's backward: dL/dW, dL/db and
        the dL/da of the layer below.  The L1 penalty λ Σ|W| adds λ sign(W) to each page's own weights."""
        params, tape, a = self.params(w), [], x
        for k, runs in zip(pages.layers, [*pages.runs, []]):
            z, linear = _linear(a, params[2 * k], params[2 * k + 1], first=k == pages.layers[0])
            a, activations = self._activate(z, runs)
            tape.append((k, linear, activations))
        rows, g = self._losses(a, t, weight, pages)
        loss, grads = (rows * weight).sum(1), [None] * len(params)
        for k, linear, activations in reversed(tape):
            g = _through(activations, g)
            g, grads[2 * k], grads[2 * k + 1] = linear(g)
        if bool((pages.l1 != 0).any()):
            masks, l1 = self.params(pages.mask), pages.l1.view(-1, 1, 1)
            for k in pages.layers:
                W = params[2 * k]
                loss = loss + pages.l1 * (W.abs() * masks[2 * k]).sum((1, 2))
                grads[2 * k] = grads[2 * k] + l1 * W.sign() * masks[2 * k]
        P = len(w)
        parts = [w.new_zeros(P, b - a) if g is None else g.reshape(P, -1) for g, (a, b) in zip(grads, self.bounds)]
        return loss, torch.cat(parts, 1)

    @staticmethod
    def _activate(z: torch.Tensor, runs: list) -> tuple[torch.Tensor, tuple | None]:
        """Each page's activation on its own rows of z by its Function's forward (:func:`_by_runs`): a, and what
        backward needs (the split's ends, and each activation's Function and ctx)."""

        def forward(activation, piece):
            function = getattr(functional, _CLASSES[activation])
            out, ctx = _forward(function, piece)
            return out, (function, ctx)

        return _by_runs(z, runs, forward)

    @staticmethod
    def _losses(z: torch.Tensor, t: torch.Tensor, weight: torch.Tensor, pages: _Pages):
        """Each row's loss (P', B) and dL/dz (P', B, outputs) for L = Σ rows · weight: binary cross-entropy on the
        first output for the pages of two classes, the softmax's on their own outputs for the others (dL/dz of an
        output a page lacks, −∞ before the softmax: 0)."""
        (binary,), (multi,) = pages.binaries.nonzero().T, (~pages.binaries).nonzero().T
        rows, dz = z.new_zeros(t.shape), torch.zeros_like(z)
        if len(multi):
            zm, tm = (z + pages.out_mask)[multi], t[multi].long()
            function = functional.SoftmaxCrossEntropyFunction
            out, ctx = _forward(function, zm.flatten(0, 1), tm.flatten(), "none")
            rows[multi] = out.view(tm.shape)
            dz[multi] = function.backward(ctx, weight[multi].flatten())[0].view(zm.shape)  # (g = each row's weight)
        if len(binary):
            zb, tb = z[binary, :, 0], t[binary]
            function = functional.SigmoidBinaryCrossEntropyFunction
            out, ctx = _forward(function, zb.flatten(), tb.flatten(), "none")
            rows[binary] = out.view(tb.shape)
            dz[binary, :, 0] = function.backward(ctx, weight[binary].flatten())[0].view(tb.shape)
        return rows, dz

    def _every_page(self) -> _Pages:
        """Every page of a group of one shape, as :meth:`_gradient` reads them: all layers, one activation for all,
        no output or parameter padded away."""
        if not hasattr(self, "_every"):
            P, L = len(self.descents), len(self.shapes) // 2
            runs = [[(self.activation, 0, P)] if self.activation is not None else [] for _ in range(L - 1)]
            outputs, binaries = torch.zeros(P, 1, self.shapes[-1][0]), torch.full((P,), self.binary)
            self._every = (list(range(L)), runs, outputs, binaries, torch.ones(self.flat.shape))
        return _Pages(None, *self._every, self.recipe.l1[:, 0])

    def _logits(self, x: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
        """The networks' forward pass, by the Functions: x (P, B, f) → logits (P, B, outputs)."""
        a = x
        for i in range(0, len(params), 2):
            a = paged_linear(a, params[i], params[i + 1])
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
    def look(self, flat: torch.Tensor | None = None) -> list[dict]:
        """What each page's frame shows of its network, for the whole group at once: whether its loss and weights
        are finite, its loss and accuracy on the training and the test points (``train_loss`` …), and its layers
        as the page draws them — the standardisation folded into the first layer (the plane's own coordinates,
        :meth:`nnref.plane.Descent.model`): ``floats``, every layer's weights then biases as float32 bytes (sent as
        they are: :func:`nnref.lab.session.decode`), and the layers' ``shapes``.  ``flat``: a copy of the group's
        weights to measure (while a trainer process steps the group's own: :mod:`nnref.lab.trainer`)."""
        flat = self.flat.detach() if flat is None else flat
        params = self.params(flat)
        finite = (flat.isfinite().all(1) & self.losses.isfinite()).tolist()
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
        x, t = self._points()
        z = self._logits(x, params)
        right = (self._predicted(z) == t.long()).float()
        return _scores_of(self._rows(z, t), right, self.X.shape[1])

    def _points(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every page's training points, then its test points: inputs (P, n + m, f), classes (P, n + m)."""
        if not hasattr(self, "_all"):
            x, t = self.X, self.t
            self._all = (
                (x, t) if self.tests is None else (torch.cat([x, self.tests[0]], 1), torch.cat([t, self.tests[1]], 1))
            )
        return self._all

    def _predicted(self, z: torch.Tensor) -> torch.Tensor:
        """Each point's class: logits (P, B, outputs) → (P, B)."""
        return (z[..., 0] >= 0).long() if self.binary else z.argmax(-1)

    def _moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        if not hasattr(self, "_mean"):
            self._mean = torch.stack([d.mean for d in self.descents])
            self._std = torch.stack([d.std for d in self.descents])
        return self._mean, self._std


@dataclass
class _Pages:
    """What the computation needs of some of a padded group's pages (all of them, or those stepping now)."""

    index: torch.Tensor | None  # the pages' rows in the group's (None: every page)
    layers: list  # the group's layers they compute: their hidden ones, then the last (the rest: identity to all)
    runs: list  # for each hidden layer: (activation, first page, end) — pages of one activation lie together
    out_mask: torch.Tensor  # (P', 1, outputs): 0 where the page has the output, −∞ where not
    binaries: torch.Tensor  # (P',) a page of two classes (one output, binary cross-entropy)
    mask: torch.Tensor  # (P', N): 1 where the page has a parameter, 0 where padding
    l1: torch.Tensor  # (P',)


class PaddedGroup(Group):
    """Descents of one family (:func:`family_of`: the same training and test points' counts) but of different
    shapes — inputs, layers, widths, activations, classes, batch sizes — stepping together, each network padded to
    the group's widest: (P, N) weights as :class:`Group`'s, where a page's own weights fill a corner of each layer.

    Padding changes nothing a page computes: an input the page lacks is a column of zeros, a neuron it lacks has
    zero weights in and out (its updates masked, so they stay zero), a layer it lacks is the identity with no
    activation after it (its outputs are its inputs, bit for bit), an output it lacks is −∞ before the softmax
    (no probability, no gradient).  Each page's activation is applied to that page's rows, its loss — binary
    cross-entropy on one output, or the softmax's on its classes — chosen page by page.

    Pages of different batch sizes take steps at their own pace: the group ticks as often as the page of the most
    steps an epoch needs, and each page steps only on its share of the ticks (a page of batch 30 on one in thirty,
    where a page of batch 1 on all): every page gets the same epochs per second.  A tick computes only the pages
    stepping on it, their batches padded to the largest of theirs."""

    mixed = True

    def _layout(self) -> None:
        sizes = [kind[0] for kind in self.kinds]  # each page's (outputs, inputs) of each layer
        self.sizes, self.depths = sizes, [len(s) for s in sizes]
        L, F = max(self.depths), max(s[0][1] for s in sizes)
        out = max(s[-1][0] for s in sizes)
        H = max([F] + [c for s in sizes for c, _ in s[:-1]])
        self.L, self.F = L, F
        self.shapes = [(out, F), (out,)] if L == 1 else [(H, F), (H,)] + [(H, H), (H,)] * (L - 2) + [(out, H), (out,)]
        self.activations = _FUNCTIONS
        self.codes = torch.tensor([_code(kind) for kind in self.kinds])  # (the pages come sorted by it: _order)
        self.depth = torch.tensor(self.depths)
        outputs = torch.tensor([s[-1][0] for s in sizes])
        self.out_mask = torch.where(torch.arange(out) < outputs[:, None], 0.0, -math.inf).unsqueeze(1)
        self.binaries = torch.tensor([d.classes == 2 for d in self.descents])

    def _places(self, j: int) -> list[tuple]:
        """Page ``j``'s layers in the group's: its last layer is the group's last, the others the first ones."""
        places, depth = [], self.depths[j]
        for r, (c, p) in enumerate(self.sizes[j]):
            k = r if r < depth - 1 else self.L - 1
            (a, b), (e, f) = self.bounds[2 * k], self.bounds[2 * k + 1]
            places += [
                (a, b, self.shapes[2 * k], (slice(0, c), slice(0, p))),
                (e, f, self.shapes[2 * k + 1], slice(0, c)),
            ]
        return places

    def _row(self, tensors, j: int, identity: bool = True) -> torch.Tensor:
        """Page ``j``'s parameters in its padded row; ``identity``: the layers it lacks are the identity."""
        row = torch.zeros(self.bounds[-1][1])
        for (a, b, shape, part), t in zip(self._places(j), tensors):
            row[a:b].view(shape)[part] = t.detach()
        for k in range(self.depths[j] - 1, self.L - 1) if identity else ():
            (a, b), shape = self.bounds[2 * k], self.shapes[2 * k]
            row[a:b].view(shape).diagonal().fill_(1.0)
        return row

    def _inputs(self, X: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.pad(X, (0, self.F - X.shape[-1]))

    def _lend(self) -> None:
        super()._lend()
        ones = [
            self._row([torch.ones_like(p) for p in d.net.parameters()], j, False) for j, d in enumerate(self.descents)
        ]
        self.mask = torch.stack(ones)
        places = [self._places(j) for j in range(len(self.descents))]
        self.index = [
            torch.cat([torch.arange(a, b).view(s)[part].reshape(-1) for a, b, s, part in p]).numpy() for p in places
        ]

    def _pages(self, index: torch.Tensor | None) -> _Pages:
        """The constants of the pages ``index`` (None: all), and the layers and activations they compute — kept for
        each set of pages met (the sets a tick steps come back every epoch), but their L1 rates, read anew."""
        key = None if index is None else index.numpy().tobytes()
        known = self._known.get(key) if hasattr(self, "_known") else None
        if known is None:
            known = self._constants(index)
            self._known = {} if not hasattr(self, "_known") or len(self._known) > 1024 else self._known
            self._known[key] = known
        l1 = self.recipe.l1[:, 0] if index is None else self.recipe.l1[:, 0].index_select(0, index)
        return _Pages(index, *known, l1)

    def _constants(self, index: torch.Tensor | None) -> tuple:
        pick = (lambda t: t) if index is None else (lambda t: t.index_select(0, index))
        codes, depth, A = pick(self.codes), pick(self.depth), len(self.activations)
        deepest = max(int(depth.max()), 2) if self.L > 1 else 1  # (a layer of lines: the inputs passed on, as F)
        hidden = torch.arange(deepest - 1)[:, None, None]
        has = (codes == torch.arange(A)[:, None]) & (depth - 1 > hidden)  # (layers, activations, pages)
        counts, starts = has.sum(-1).tolist(), (codes < torch.arange(A)[:, None]).sum(-1).tolist()
        runs = [[(f, s, s + c[a]) for a, (f, s) in enumerate(zip(self.activations, starts)) if c[a]] for c in counts]
        layers = [*range(deepest - 1), self.L - 1]
        return layers, runs, pick(self.out_mask), pick(self.binaries), pick(self.mask)

    def _batching(self) -> None:
        """Each page's mini-batches, drawn as its Descent draws them (rows padded to the group's largest batch)."""
        ds, n = self.descents, self.descents[0].X.shape[0]
        self.n, self.rows_each = n, torch.tensor([kind[4] for kind in self.kinds])
        self.spe = torch.tensor([d.steps_per_epoch for d in ds])
        self.position = torch.tensor([(d.steps - d._start) % d.steps_per_epoch for d in ds])
        self.order = torch.stack([d._order if d._order is not None else torch.arange(n) for d in ds])
        self.count, self.ticks = torch.zeros(len(ds), dtype=torch.long), 0

    def _batches(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The next batch of each page stepping (``index``, (P',)): inputs (P', B, f), targets (P', B), and each
        row's weight in its page's mean loss (P', B), 0 for padding — B the largest of their batches."""
        position, spe, rows = self.position[index], self.spe[index], self.rows_each[index]
        for i in ((position == 0) & (spe > 1)).nonzero().flatten().tolist():
            j = int(index[i])
            d = self.descents[j]  # (a new epoch's order, from the page's own generator)
            d._order = self.order[j] = torch.randperm(self.n, generator=d.generator)
        offsets = torch.arange(int(rows.max()))
        columns = position[:, None] * rows[:, None] + offsets
        valid = (offsets < rows[:, None]) & (columns < self.n)
        rows_of = torch.gather(self.order[index], 1, columns.clamp(max=self.n - 1))
        self.position[index] = (position + 1) % spe
        x = self.X[index[:, None], rows_of]
        return x, self.t[index[:, None], rows_of], valid / valid.sum(1, keepdim=True)

    def step(self, paced: bool = True) -> None:
        """One tick of the group: a step of every page (``paced`` False), or of each page whose turn it is."""
        if paced:  # (a page of s steps an epoch takes s of each S ticks: when half its step is due)
            due = (2 * self.count + 1) * self.steps_per_epoch < 2 * (self.ticks + 1) * self.spe
            self.ticks += 1
            index = due.nonzero().flatten()
            self.count[index] += 1
        else:
            index = torch.arange(len(self.descents))
        pages = self._pages(index)
        x, t, weight = self._batches(index)
        w = self.flat.detach()[index]
        if by_hand():
            loss, grad = self._gradient(x, t, weight, w, pages)
        else:  # (a student's Function of the old style, forward(ctx, …): the autograd engine calls it)
            w.requires_grad_()
            loss = self._loss(x, t, weight, w, pages)
            (grad,) = torch.autograd.grad(loss.sum(), w)
        self._update(index, w.detach(), grad, pages.mask)
        self.losses[index] = loss.detach()
        stepped = index.tolist()
        for j in stepped:
            self.descents[j].steps += 1
        self.seen = [d.steps for d in self.descents]

    @torch.no_grad()
    def _update(self, index, w, grad, mask) -> None:
        """torch.optim.SGD's step for the pages ``index``, on their own parameters only (``mask``)."""
        lr, momentum = self.recipe.lr[index], self.recipe.momentum[index]
        decay, buffer = self.recipe.weight_decay[index], self.buffer[index]
        if bool(decay.any()):
            grad = grad + decay * w
        step = torch.addcmul(grad, momentum, buffer) * mask
        self.flat.detach().index_copy_(0, index, torch.addcmul(w, step, lr, value=-1))
        self.buffer.index_copy_(0, index, torch.where(self.has_momentum[index], step, buffer))

    def params(self, w: torch.Tensor | None = None) -> list[torch.Tensor]:
        """:meth:`Group.params`, of ``w`` (P', N) — some pages' rows — where given (one split: one backward)."""
        w = self.flat if w is None else w
        parts = w.split([b - a for a, b in self.bounds], 1)
        return [part.view(-1, *shape) for part, shape in zip(parts, self.shapes)]

    def _logits(self, x: torch.Tensor, params: list[torch.Tensor], pages: _Pages) -> torch.Tensor:
        """x (P', B, f) → logits (P', B, outputs): each page's activation on its own rows, after its own layers."""
        a = x
        for k, runs in zip(pages.layers, [*pages.runs, []]):
            a, _ = _by_runs(paged_linear(a, params[2 * k], params[2 * k + 1]), runs, lambda f, piece: (f(piece), None))
        return a

    def _rows(self, z: torch.Tensor, t: torch.Tensor, pages: _Pages) -> torch.Tensor:
        """Each row's loss (P', B): binary cross-entropy on the first output for the pages of two classes, the
        softmax's on their own outputs for the others — each loss on its own pages' rows only."""
        (binary,), (multi,) = pages.binaries.nonzero().T, (~pages.binaries).nonzero().T
        with value_checks(False):
            if not len(multi):
                return functional.sigmoid_binary_cross_entropy(z[..., 0].flatten(), t.flatten(), "none").view(t.shape)
            zm, tm = (z + pages.out_mask)[multi], t[multi].long()
            rows = functional.softmax_cross_entropy(zm.flatten(0, 1), tm.flatten(), "none").view(tm.shape)
            if not len(binary):
                return rows
            zb, tb = z[binary, :, 0], t[binary]
            bce = functional.sigmoid_binary_cross_entropy(zb.flatten(), tb.flatten(), "none").view(tb.shape)
        return t.new_zeros(t.shape).index_put((binary,), bce).index_put((multi,), rows)

    def _loss(self, x, t, weight, w, pages: _Pages) -> torch.Tensor:
        params = self.params(w)
        loss = (self._rows(self._logits(x, params, pages), t, pages) * weight).sum(1)
        if bool((pages.l1 != 0).any()):
            masks = self.params(pages.mask)
            loss = loss + pages.l1 * sum((params[2 * k].abs() * masks[2 * k]).sum((1, 2)) for k in pages.layers)
        return loss

    def _predicted(self, z: torch.Tensor, pages: _Pages) -> torch.Tensor:
        predicted, (multi,) = (z[..., 0] >= 0).long(), (~pages.binaries).nonzero().T
        predicted[multi] = (z[multi] + pages.out_mask[multi]).argmax(-1)
        return predicted

    def _scores(self, params: list[torch.Tensor]) -> list[dict]:
        (x, t), pages = self._points(), self._pages(None)
        z = self._logits(x, params, pages)
        right = (self._predicted(z, pages) == t.long()).float()
        return _scores_of(self._rows(z, t, pages), right, self.X.shape[1])

    @torch.no_grad()
    def look(self, flat: torch.Tensor | None = None) -> list[dict]:
        """:meth:`Group.look`: each page's own layers (the padding left out), the standardisation folded in."""
        flat = self.flat.detach() if flat is None else flat
        params = self.params(flat)
        finite = (flat.isfinite().all(1) & self.losses.isfinite()).tolist()
        scores = self._scores(params)
        floats = self._folded_rows(flat).numpy()
        looks = []
        for j, (d, ok, score) in enumerate(zip(self.descents, finite, scores)):
            values = floats[j, self.index[j]].astype("<f4")
            shapes = [list(shape) for shape in self.sizes[j]]
            line = values.tolist() if _draws_a_line(d) else None  # (one layer (1, 2): w1, w2, b)
            looks.append({"finite": ok, "scores": score, "floats": values.tobytes(), "shapes": shapes, "line": line})
        return looks

    def _folded_rows(self, flat: torch.Tensor) -> torch.Tensor:
        """Every page's row of ``flat`` with the standardisation folded into its first layer — the group's first,
        or for a page of one layer, the group's last (its first F columns: the inputs, passed on by the identity)."""
        rows, P = flat.clone(), len(self.descents)
        mean, std = self._moments()
        first = torch.tensor([0 if depth > 1 else self.L - 1 for depth in self.depths])
        for k in {0, self.L - 1}:
            (a, b), (e, f) = self.bounds[2 * k], self.bounds[2 * k + 1]
            W, bias = rows[:, a:b].view(P, *self.shapes[2 * k])[..., : self.F], rows[:, e:f]
            Wf = W / std.unsqueeze(-2)
            bf = bias - (Wf @ mean.unsqueeze(-1)).squeeze(-1)
            here = (first == k).view(P, 1)
            W.copy_(torch.where(here.unsqueeze(-1), Wf, W))
            bias.copy_(torch.where(here, bf, bias))
        return rows

    def _moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        if not hasattr(self, "_mean"):
            pad = torch.nn.functional.pad
            self._mean = torch.stack([pad(d.mean, (0, self.F - len(d.mean))) for d in self.descents])
            self._std = torch.stack([pad(d.std, (0, self.F - len(d.std)), value=1.0) for d in self.descents])
        return self._mean, self._std


#: The Function of each activation, by its name in nnref.functional (a student's, in use, is found there).
_CLASSES = {functional.relu: "ReLUFunction", functional.sigmoid: "SigmoidFunction", functional.tanh: "TanhFunction"}
_LOSSES = ("SoftmaxCrossEntropyFunction", "SigmoidBinaryCrossEntropyFunction")


def by_hand() -> bool:
    """Whether a padded group's steps may call the Functions' forward, setup_context and backward itself
    (:meth:`PaddedGroup._gradient`): every Function in use defines ``setup_context`` (nnref's do; a student's of the
    old style, forward(ctx, …), runs through the autograd engine instead)."""
    names = [*_CLASSES.values(), *_LOSSES, "LinearFunction"]
    return all(getattr(functional, n).setup_context is not torch.autograd.Function.setup_context for n in names)


def _forward(function, *args) -> tuple[torch.Tensor, _Context]:
    """A Function's forward on ``args``, and the ctx its backward reads (as ``apply`` would make it)."""
    out, ctx = function.forward(*args), _Context(needs=(True, False, False)[: len(args)])
    function.setup_context(ctx, args, out)
    return out, ctx


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, first: bool):
    """The linear layer of every page, forward (x (P, B, p), W (P, c, p), b (P, c) → z (P, B, c)), and its backward:
    g = dL/dz → (dL/dx, or None for the first layer, dL/dW, dL/db) — by :class:`PagedLinearFunction` where the
    Functions are nnref's, else the student's under vmap (:class:`PagedFunction`)."""
    needs = (not first, True, True)
    if functional.LinearFunction is _NNREF_LINEAR:
        z, ctx = _forward(PagedLinearFunction, x, weight, bias)
        ctx.needs_input_grad = needs
        return z, lambda g: PagedLinearFunction.backward(ctx, g)
    ctx = _Context(needs=(False, *needs))
    z = PagedFunction.forward(ctx, "LinearFunction", x, weight, bias)
    return z, lambda g: PagedFunction.backward(ctx, g)[1:]


def _by_runs(z: torch.Tensor, runs: list, each) -> tuple[torch.Tensor, tuple | None]:
    """``each(activation, rows)`` on each run of pages' rows of z — (activation, first page, end): pages of one
    activation lie together — the rest as they are, in one split and one cat (none where one activation covers every
    page).  Returns the result, and the split's ends with what ``each`` kept of each run (None: no activation)."""
    if not runs:
        return z, None
    ends = sorted({0, len(z)} | {e for _, s, e in runs} | {s for _, s, e in runs})
    pieces, kept = list(z.split([e - s for s, e in zip(ends, ends[1:])])), []
    for activation, start, _ in runs:
        i = ends.index(start)
        pieces[i], record = each(activation, pieces[i])
        kept.append((i, record))
    return (torch.cat(pieces) if len(pieces) > 1 else pieces[0]), (ends, kept)


def _through(activations: tuple | None, g: torch.Tensor) -> torch.Tensor:
    """dL/da → dL/dz through a layer's activations: each one's backward on its own rows, the rest as they are."""
    if activations is None:
        return g
    ends, kept = activations
    pieces = list(g.split([e - s for s, e in zip(ends, ends[1:])]))
    for i, (function, ctx) in kept:
        pieces[i] = function.backward(ctx, pieces[i])
    return torch.cat(pieces) if len(pieces) > 1 else pieces[0]


def _code(kind: tuple) -> int:
    """A network's activation, as a number: the order of :class:`PaddedGroup`'s pages (none last)."""
    activation = _ACTIVATION.get(kind[1])
    return _FUNCTIONS.index(activation) if activation is not None else len(_FUNCTIONS)


def _order(d: Descent) -> tuple:
    """Where a descent lies in its padded group: by activation, the deepest first (:class:`PaddedGroup`)."""
    kind = shape_of(d)
    return _code(kind), -len(kind[0])


def _momentum(d: Descent) -> list[torch.Tensor]:
    """The descent's momentum buffers (zeros where its optimizer has none yet)."""
    state = d.optimizer.state
    return [
        state[p]["momentum_buffer"].detach()
        if state.get(p, {}).get("momentum_buffer") is not None
        else torch.zeros_like(p)
        for p in d.net.parameters()
    ]


def _same(x):
    return x


def _flat(tensors) -> torch.Tensor:
    return torch.cat([t.detach().reshape(-1) for t in tensors])


def _standardised(descents: list[Descent], tests: list, inputs=None, floats: bool = False) -> tuple | None:
    """The test points of every page in its descent's inputs, standardised: (P, m, f) and (P, m); None when the
    pages have different numbers of them.  ``inputs``: each page's inputs padded to the group's (``floats``: every
    page's classes as floats)."""
    if len({len(y) for _, y in tests}) != 1:
        return None
    X = torch.stack([(inputs or _same)((features(X, d.names) - d.mean) / d.std) for d, (X, _) in zip(descents, tests)])
    t = torch.stack([y.float() if d.classes == 2 or floats else y.long() for d, (_, y) in zip(descents, tests)])
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
    """Steps of every descent, the ones of one family (:func:`family_of`) together — of one shape, a
    :class:`Group`; of several, a :class:`PaddedGroup` — ``steps`` each, or for ``seconds`` (at least one step),
    each step to the group furthest behind in epochs (:func:`_rounds`).  Returns the last loss of each descent of
    the groups that stepped (by ``id``).

    ``kept``: the groups of the last call (family → group), used again where they hold the same descents and
    nothing stepped them meanwhile, following their recipes as they now are (the class's rounds: a group is made
    only when its pages change).  ``tests``: each descent's test points by ``id``, for :meth:`Group.look`.
    ``clock``: each group's epochs, kept from call to call."""
    if not batchable():
        return _page_by_page(descents, seconds, steps)
    batched = assemble(descents, kept, tests)
    with _one_thread():  # small products: a second intra-op thread only waits for a core (2 ms a softmax, loaded)
        stepped = _rounds(batched, seconds, steps, clock)
    shapes = {g.shape for g in batched}
    for key in [key for key in (clock or {}) if key not in shapes]:
        del clock[key]
    return {id(d): loss for g in stepped for d, loss in zip(g.descents, g.last_losses())}


def assemble(descents: list[Descent], kept: dict | None = None, tests: dict | None = None, alone: bool = True) -> list:
    """The descents in their groups, one a family (:func:`family_of`): a :class:`Group` of one shape, a
    :class:`PaddedGroup` of several, and a descent with no other of its family by itself (``alone``: its own
    Descent's steps; else a group of one).  ``kept`` (family → group): the last call's groups, kept where they hold
    the same descents and nothing stepped them meanwhile, following their recipes as they now are; updated."""
    families: dict[tuple, list[Descent]] = {}
    for d in sorted(descents, key=_order):  # (stable: pages of one shape keep their order)
        families.setdefault(family_of(d, tests), []).append(d)
    kept = {} if kept is None else kept
    for key in [key for key, g in kept.items() if not g.same(families.get(key, []))]:
        del kept[key]
    batched = []
    for key, members in families.items():
        if len(members) == 1 and alone:
            kept.pop(key, None)
            batched.append(_Alone(members[0], key))
            continue
        if key not in kept:
            mine = [tests[id(d)] for d in members] if tests is not None else None
            uniform = len({shape_of(d) for d in members}) == 1
            kept[key] = (Group if uniform else PaddedGroup)(members, mine, key)
        kept[key].follow_recipes()
        batched.append(kept[key])
    return batched


class _Alone:
    """A page with no other of its shape: its own Descent's step (the same steps; no stacking to pay for)."""

    def __init__(self, d: Descent, shape: tuple) -> None:
        self.descents, self.loss, self.shape = [d], float("nan"), shape
        self.steps_per_epoch = d.steps_per_epoch

    def step(self, paced: bool = True) -> None:
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
_NNREF = dict(functional.FUNCTIONS)  # (nnref's own Functions, as imported)


def own_functions() -> bool:
    """Whether the Functions in use are nnref's own, not a student's (``nnref lab --functions``)."""
    return all(getattr(functional, name) is cls for name, cls in _NNREF.items())


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
                g.step(paced=False)
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

    def __init__(
        self, seconds: float, alone: float = 20.0, report: float = 10.0, member: float = 1.0, trainer=None
    ) -> None:
        self.seconds, self.alone, self.report, self.member = seconds, alone, report, member
        self.trainer = trainer  # a Trainer (nnref.lab.trainer): the steps in a process of their own, when ready
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

    def close(self) -> None:
        """The server stops: so does the trainer process."""
        if self.trainer is not None:
            self.trainer.close()

    async def _run(self) -> None:
        while True:
            await self._cycles()
            if self.trainer is not None and self.trainer.running:  # (no page came back: the trainer's round ends,
                await asyncio.to_thread(self.trainer.end)  # a paused class costs no CPU)
            if not self.waiting:  # (a page that came back meanwhile found this task running: its round now)
                return

    async def _cycles(self) -> None:
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
            beside = self._beside()
            try:
                if beside:
                    begun = (begun[0], 0.0)  # (the training is the trainer's: the whole cycle is the frames')
                    frames = await asyncio.to_thread(self._round_beside, list(sessions), list(self.members))
                else:
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
            if beside:  # (with the trainer: a round at most every `seconds` — a page alone's frames would
                await asyncio.sleep(max(0.0, now + self.seconds - time.perf_counter()))  # take its core)

    def _beside(self) -> bool:
        """Whether the class trains in the trainer process: there is one, it is up, and the Functions are nnref's
        (a student's are the server's alone).  Starts the process the first time."""
        trainer = self.trainer
        if trainer is None or trainer.failed or not own_functions() or not batchable():
            return False
        if trainer.process is None:
            trainer.start()
        return trainer.ready()

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
        descents, tests = self._playing(members)
        budget = max(self.seconds, self.overhead) if budget is None else budget
        losses = train_together(descents, budget, kept=self.groups, tests=tests, clock=self.clock) if descents else {}
        looks = {id(d): look for g in self.groups.values() for d, look in zip(g.descents, g.look())}
        return self._frames(sessions, members, descents, tests, losses, looks)

    def _round_beside(self, sessions: list, members: list) -> dict:
        """One round with the trainer process: the last round's steps end (written into the descents), the groups
        are made again where the pages changed, the next round's steps begin in the trainer, and meanwhile the
        frames are made here from a copy of the weights as they stood."""
        descents, tests = self._playing(members)
        if not self.trainer.running and descents:  # (the class's first round, or its first after a pause: steps
            self.trainer.begin(assemble(descents, self.groups, tests, alone=False))  # taken, then shown)
            time.sleep(self.seconds)
        losses = self.trainer.end()
        if self.trainer.failed:  # (the groups here never saw the trainer's batching: made again from the descents)
            self.groups.clear()
            return self._round(sessions, members)
        groups = assemble(descents, self.groups, tests, alone=False) if descents else []
        copies = [g.flat.detach().clone() for g in groups]
        self.trainer.begin(groups)
        looks = {id(d): look for g, flat in zip(groups, copies) for d, look in zip(g.descents, g.look(flat))}
        return self._frames(sessions, members, descents, tests, losses, looks)

    @staticmethod
    def _playing(members: list) -> tuple[list, dict]:
        descents = [d for s in members for d in s.training()]
        return descents, {id(d): s.test_points() for s in members for d in s.training()}

    def _frames(self, sessions, members, descents, tests, losses: dict, looks: dict) -> dict:
        """The frame of each page waiting (``sessions``), and what the round measured of the members not waiting."""
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
