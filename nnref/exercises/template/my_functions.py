"""Write the backward yourself: the lecture's layers and losses as torch.autograd.Functions.

Each Function below computes its forward pass and saves what its backward will need.  The backward is yours
to write.  It receives g, the gradient of the loss L with respect to what forward returned, and returns the
gradient of L with respect to each input of forward, in the order forward takes them (None for an input that
has no gradient: class labels, the reduction).  That is the lecture's chain rule,

    global gradient dL/d(input) = global gradient dL/d(output) × local gradient d(output)/d(input),

worked out for a whole batch at once.  Every gradient has the shape of its input.

Check your work after each backward you write; the checker says which gradient is wrong, where, and by how much:

    nnref gradcheck --functions my_functions.py
    nnref gradcheck --functions my_functions.py --only SigmoidFunction

Notation: n instances in the batch, p features, c classes (or neurons of a layer), N the number of elements of
a tensor (N = n for a vector of length n).  What forward saved comes back from ``ctx.saved_tensors``; whether an
input needs a gradient is ``ctx.needs_input_grad[i]`` (you may compute it anyway: PyTorch ignores it then).
"""

import torch


def reduce_losses(losses, reduction):
    """The losses of the batch, reduced: their mean over all N elements, their sum, or each one ("none")."""
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    return losses


# ------------------------------------------------------------------------------------------------------------
# Layers and activations
# ------------------------------------------------------------------------------------------------------------
class LinearFunction(torch.autograd.Function):
    """z = x Wᵀ + b: a layer of c neurons, z_i = w_i1 x_1 + … + w_ip x_p + b_i, for every instance x of a batch."""

    @staticmethod
    def forward(ctx, x, W, b):
        """x (n, p), W (c, p), b (c,) or None  →  z (n, c)."""
        z = x @ W.T
        if b is not None:
            z = z + b
        ctx.save_for_backward(x, W)
        return z

    @staticmethod
    def backward(ctx, g):
        """Return (dL/dx, dL/dW, dL/db), given g = dL/dz.

        Shapes:  g (n, c)    x (n, p)    W (c, p)    b (c,)
                 dL/dx (n, p)    dL/dW (c, p)    dL/db (c,)
        Saved:   x, W = ctx.saved_tensors

        Derive the local gradients of z with respect to W, b and x (the lecture's ∂z/∂W, "Gradient w.r.t. a
        Matrix?", and ∂z/∂b; ∂z/∂x works the same way), then chain each of them with g.  The lecture does it for
        one instance; a batch has n of them, and all n use the same W and b.
        When b is None (ctx.needs_input_grad[2] is False) return None for dL/db.
        """
        raise NotImplementedError


class SigmoidFunction(torch.autograd.Function):
    """a = σ(z) = 1 / (1 + e^(−z)), element by element: the neuron's activation (logistic regression)."""

    @staticmethod
    def forward(ctx, z):
        """z (n, c) (any shape)  →  a, shaped like z."""
        a = 1 / (1 + torch.exp(-z))
        ctx.save_for_backward(a)
        return a

    @staticmethod
    def backward(ctx, g):
        """Return dL/dz, given g = dL/da.

        Shapes:  g, a, dL/dz: all shaped like z.
        Saved:   (a,) = ctx.saved_tensors

        Derive the local gradient ∂a/∂z (the lecture derives it; write it with the output a, which you saved),
        then chain it with g, element by element.
        """
        raise NotImplementedError


class SoftmaxFunction(torch.autograd.Function):
    """a_i = e^(z_i) / Σ_j e^(z_j), row by row: coordinated outputs, probabilities that sum to 1."""

    @staticmethod
    def forward(ctx, z):
        """z (n, c) logits  →  a (n, c), each row a probability distribution."""
        e = torch.exp(z - z.max(dim=-1, keepdim=True).values)  # e^(z − max z): the same a, and e^z never overflows
        a = e / e.sum(dim=-1, keepdim=True)
        ctx.save_for_backward(a)
        return a

    @staticmethod
    def backward(ctx, g):
        """Return dL/dz, given g = dL/da.

        Shapes:  g (n, c)    a (n, c)    dL/dz (n, c)
        Saved:   (a,) = ctx.saved_tensors

        Every a_i depends on every z_j of its row: ∂a/∂z is a c × c matrix for each instance (the lecture's
        "Gradient of a vector w.r.t. a vector": derive ∂a_i/∂z_j for i = j and for i ≠ j), and
        dL/dz = dL/da × ∂a/∂z, a vector (1 by c) times a matrix (c by c), for each of the n rows.
        You may build the matrices, or simplify the product first.
        """
        raise NotImplementedError


class ReLUFunction(torch.autograd.Function):
    """a = max(z, 0), element by element: the rectified linear unit of multi-layer networks."""

    @staticmethod
    def forward(ctx, z):
        """z (n, c) (any shape)  →  a, shaped like z."""
        a = z.clamp(min=0)
        ctx.save_for_backward(z)
        return a

    @staticmethod
    def backward(ctx, g):
        """Return dL/dz, given g = dL/da.

        Shapes:  g, z, dL/dz: all shaped like z.
        Saved:   (z,) = ctx.saved_tensors

        Derive ∂a/∂z where z > 0 and where z < 0 (at z = 0 take the value for z < 0), then chain it with g,
        element by element.
        """
        raise NotImplementedError


class TanhFunction(torch.autograd.Function):
    """a = tanh(z) = (e^z − e^(−z)) / (e^z + e^(−z)), element by element: a sigmoid-shaped activation in (−1, 1)."""

    @staticmethod
    def forward(ctx, z):
        """z (n, c) (any shape)  →  a, shaped like z."""
        a = torch.tanh(z)
        ctx.save_for_backward(a)
        return a

    @staticmethod
    def backward(ctx, g):
        """Return dL/dz, given g = dL/da.

        Shapes:  g, a, dL/dz: all shaped like z.
        Saved:   (a,) = ctx.saved_tensors

        Derive ∂a/∂z (not in the lecture: differentiate the quotient above, or use tanh(z) = 2σ(2z) − 1) and
        write it with the output a, as the lecture does for the sigmoid; then chain it with g, element by element.
        """
        raise NotImplementedError


# ------------------------------------------------------------------------------------------------------------
# Losses: the negative log-likelihood.  reduction is "mean", "sum" or "none"; backward's g is then one number
# ("mean", "sum") or one per loss ("none"), and reduce_losses() above says how the losses were combined.
# ------------------------------------------------------------------------------------------------------------
class CrossEntropyFunction(torch.autograd.Function):
    """L = −log a_y: the multi-class cross-entropy of probabilities a and true labels y."""

    @staticmethod
    def forward(ctx, a, y, reduction):
        """a (n, c) probabilities, y (n,) int64 labels in [0, c)  →  L: one number, or (n,) for "none"."""
        a_y = a[torch.arange(len(y), device=a.device), y]  # each row's probability of its true label
        log_a_y = torch.log(a_y).clamp(min=-100)  # log 0 = −∞ would cost ∞: at most 100, as PyTorch does
        ctx.save_for_backward(a, y)
        ctx.reduction = reduction
        return reduce_losses(-log_a_y, reduction)

    @staticmethod
    def backward(ctx, g):
        """Return (dL/da, None, None), given g = dL/dL: one number, or (n,) for "none".

        Shapes:  a (n, c)    y (n,)    dL/da (n, c)
        Saved:   a, y = ctx.saved_tensors;  ctx.reduction

        Derive dL/da for one instance (the lecture's "Multi-Class Cross Entropy Loss": L = −log a_y depends on a
        single entry of a).  Then the batch: with "sum" L adds the n losses, with "mean" it averages them, with
        "none" each instance keeps its own loss and g has one entry per instance.  Chain with g.
        """
        raise NotImplementedError


class BinaryCrossEntropyFunction(torch.autograd.Function):
    """L = −y log a − (1 − y) log(1 − a), element by element: logistic regression's cross-entropy loss."""

    @staticmethod
    def forward(ctx, a, y, reduction):
        """a probabilities (n,) (any shape), y targets in [0, 1] shaped like a  →  L: one number, or a's shape."""
        log_a = torch.log(a).clamp(min=-100)  # clamped like PyTorch's: a = 0 costs 100, not ∞
        log_1_minus_a = torch.log1p(-a).clamp(min=-100)  # log(1 − a), accurate for a near 0
        ctx.save_for_backward(a, y)
        ctx.reduction = reduction
        return reduce_losses(-(y * log_a + (1 - y) * log_1_minus_a), reduction)

    @staticmethod
    def backward(ctx, g):
        """Return (dL/da, dL/dy, None), given g = dL/dL: one number, or shaped like a for "none".

        Shapes:  a, y, dL/da, dL/dy: all shaped like a (N elements).
        Saved:   a, y = ctx.saved_tensors;  ctx.reduction

        Derive dL/da (the lecture's ∂L/∂a, there for y = 0 and y = 1; here y may be any number in [0, 1]) and
        dL/dy (y is an input too: soft targets can need a gradient).  Then the reduction: "mean" averages over
        all N elements.  Chain with g.
        """
        raise NotImplementedError


class SoftmaxCrossEntropyFunction(torch.autograd.Function):
    """Softmax and the cross-entropy in one step: L = −log softmax(z)_y = log Σ_j e^(z_j) − z_y."""

    @staticmethod
    def forward(ctx, z, y, reduction):
        """z (n, c) logits, y (n,) int64 labels in [0, c)  →  L: one number, or (n,) for "none"."""
        m = z.max(dim=-1, keepdim=True).values  # log Σ e^z = m + log Σ e^(z − m): log-sum-exp, never overflows
        log_sum_exp = (m + torch.log(torch.exp(z - m).sum(dim=-1, keepdim=True))).squeeze(-1)
        z_y = z[torch.arange(len(y), device=z.device), y]
        ctx.save_for_backward(z, y)
        ctx.reduction = reduction
        return reduce_losses(log_sum_exp - z_y, reduction)

    @staticmethod
    def backward(ctx, g):
        """Return (dL/dz, None, None), given g = dL/dL: one number, or (n,) for "none".

        Shapes:  z (n, c)    y (n,)    dL/dz (n, c)
        Saved:   z, y = ctx.saved_tensors;  ctx.reduction

        Derive dL/dz for one instance: chaining the cross-entropy's dL/da with the softmax's ∂a/∂z (the two
        Functions above) simplifies to a short formula.  Then the batch and the reduction, as in
        CrossEntropyFunction, and g.  Compute the softmax you need from z as SoftmaxFunction.forward does.
        """
        raise NotImplementedError


class SigmoidBinaryCrossEntropyFunction(torch.autograd.Function):
    """σ and the binary cross-entropy in one step: L = −y log σ(z) − (1 − y) log(1 − σ(z)), element by element."""

    @staticmethod
    def forward(ctx, z, y, reduction):
        """z logits (n,) (any shape), y targets in [0, 1] shaped like z  →  L: one number, or z's shape.

        L = max(z, 0) − z y + log(1 + e^(−|z|)) is the same loss, and no e^… in it can overflow.
        """
        losses = z.clamp(min=0) - z * y + torch.log1p(torch.exp(-z.abs()))
        ctx.save_for_backward(z, y)
        ctx.reduction = reduction
        return reduce_losses(losses, reduction)

    @staticmethod
    def backward(ctx, g):
        """Return (dL/dz, dL/dy, None), given g = dL/dL: one number, or shaped like z for "none".

        Shapes:  z, y, dL/dz, dL/dy: all shaped like z (N elements).
        Saved:   z, y = ctx.saved_tensors;  ctx.reduction

        Derive dL/dz for one element: chaining the binary cross-entropy's dL/da with the sigmoid's ∂a/∂z
        simplifies to a short formula.  Derive dL/dy too (y is an input).  Then the reduction ("mean" averages
        over all N elements) and g.
        """
        raise NotImplementedError
