"""The torch twins of the sequence kernels (``embedding.py``, ``dense.py``'s per-step ones,
``targets.py``, ``recurrent.py``): same names and signatures as the NumPy kernels, torch primitives,
no autograd — each backward kernel is the entry's rule written out. As in ``torch_kernels.py``,
``torch``, ``F`` and ``math`` are the generated module's names; this module never imports torch.
"""
# flake8: noqa: F821
from .base import kernel

# ---------------------------------------------------------------------------------- embedding


@kernel(backend="torch")
def ids_of(x, vocab):
    """The ids of ``x`` as int64, or a ValueError naming the first example and position whose value
    is not an integer in [0, vocab)."""
    ids = x.long()
    bad = (ids != x) | (ids < 0) | (ids >= vocab)
    if bool(bad.any()):
        at = tuple(int(i) for i in torch.nonzero(bad)[0])
        raise ValueError(f"X[{']['.join(map(str, at))}]: id {float(x[at])!r} is not an integer in [0, {vocab}) "
                         f"(example {at[0] + 1}, position {', '.join(str(i + 1) for i in at[1:]) or '-'})")
    return ids


@kernel(ids_of, backend="torch")
def embedding_forward(x, E, out=None):
    """Row x of E for every id of x, as nn.Embedding."""
    z = F.embedding(ids_of(x, E.shape[0]), E)
    return z if out is None else out.copy_(z)


@kernel(ids_of, backend="torch")
def embedding_grad(x, delta, vocab, out=None):
    """∂C/∂E: each position's δ row added into its id's row (index_add_: a repeated id sums)."""
    dim = delta.shape[-1]
    out = delta.new_zeros((vocab, dim)) if out is None else out.zero_()
    return out.index_add_(0, ids_of(x, vocab).reshape(-1), delta.reshape(-1, dim))


# ---------------------------------------------------------------------------------- dense, per step


@kernel(backend="torch")
def step_linear(x, W, b, out=None):
    """z_t = W x_t + b at every step: x (N, T, D) -> (N, T, units)."""
    z = F.linear(x, W, b)
    return z if out is None else out.copy_(z)


@kernel(backend="torch")
def step_weight_grad(delta, x, out=None):
    """∂C/∂W = Σ over examples and steps of δ_t x_tᵀ."""
    return torch.mm(delta.reshape(-1, delta.shape[-1]).T, x.reshape(-1, x.shape[-1]), out=out)


@kernel(backend="torch")
def step_bias_grad(delta, out=None):
    """∂C/∂b = Σ over examples and steps of δ_t."""
    return torch.sum(delta.reshape(-1, delta.shape[-1]), dim=0, out=out)


@kernel(backend="torch")
def step_input_grad(delta, W, out=None):
    """∂C/∂x_t = Wᵀ δ_t at every step."""
    g = torch.matmul(delta, W)
    return g if out is None else out.copy_(g)


# ---------------------------------------------------------------------------------- targets


@kernel(view=True, backend="torch")
def class_targets(Y, V, ignore, ndim):
    """One-hot rows of the class indices Y, zero where ignored and scaled by N·P/M; Y of ``ndim``
    axes as it is (see targets.py)."""
    if Y.dim() == ndim:
        return Y
    index = Y.long()
    kept = index != ignore[0] if ignore else torch.ones_like(index, dtype=torch.bool)
    bad = kept & ((index != Y) | (index < 0) | (index >= V))
    if bool(bad.any()):
        at = tuple(int(i) for i in torch.nonzero(bad)[0])
        raise ValueError(f"Y[{']['.join(map(str, at))}]: class {float(Y[at])!r} is not an integer in [0, {V})"
                         f"{f' nor ignore_index {ignore[0]}' if ignore else ''} (example {at[0] + 1}"
                         f"{', position ' + ', '.join(str(i + 1) for i in at[1:]) if len(at) > 1 else ''})")
    count = int(kept.sum())
    if count == 0:
        raise ValueError(f"Y: every target is ignore_index {ignore[0]}: no step counts in the mean")
    out = F.one_hot(torch.where(kept, index, 0), V).to(Y.dtype)
    return out.mul_(kept.unsqueeze(-1).to(Y.dtype) * (Y.numel() / count))
