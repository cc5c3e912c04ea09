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


# ---------------------------------------------------------------------------------- recurrent


@kernel(backend="torch")
def sigmoid(u):
    """σ(u): torch's own."""
    return torch.sigmoid(u)


@kernel(backend="torch")
def rnn_forward(x, W_ih, b_ih, W_hh, b_hh, relu, out=None):
    """h (N, T, hidden): h_t = f(x_t W_ihᵀ + b_ih + h_{t−1} W_hhᵀ + b_hh), h_0 = 0."""
    pre = torch.addmm(b_ih + b_hh, x.reshape(-1, x.shape[-1]), W_ih.T).reshape(x.shape[0], x.shape[1], -1)
    h = torch.empty_like(pre) if out is None else out
    for t in range(x.shape[1]):
        u = pre[:, t] if t == 0 else torch.addmm(pre[:, t], h[:, t - 1], W_hh.T)
        h[:, t] = torch.relu(u) if relu else torch.tanh(u)
    return h


@kernel(backend="torch")
def rnn_deltas(dh, h, W_hh, relu, out=None):
    """δ_t = (dh_t + W_hhᵀ δ_{t+1}) ⊙ f′(s_t), from the last step back (dh (N, hidden): h_T's alone)."""
    steps = h.shape[1]
    D = torch.empty_like(h) if out is None else out
    for t in range(steps - 1, -1, -1):
        own = dh[:, t] if dh.dim() == 3 else dh if t == steps - 1 else torch.zeros_like(h[:, t])
        g = own if t == steps - 1 else torch.addmm(own, D[:, t + 1], W_hh)
        D[:, t] = g * (h[:, t] > 0) if relu else g * (1 - h[:, t] * h[:, t])
    return D


@kernel(backend="torch")
def lstm_forward(x, W_ih, b_ih, W_hh, b_hh, out=None):
    """Each step's i, f, g, o, c, h, stacked on the last axis: (N, T, 6·hidden)."""
    n, steps, k = x.shape[0], x.shape[1], W_hh.shape[1]
    pre = torch.addmm(b_ih + b_hh, x.reshape(-1, x.shape[-1]), W_ih.T).reshape(n, steps, -1)
    S = pre.new_empty((n, steps, 6 * k)) if out is None else out
    for t in range(steps):
        u = pre[:, t] if t == 0 else torch.addmm(pre[:, t], S[:, t - 1, 5 * k:], W_hh.T)
        i, f, g, o = torch.sigmoid(u[:, :k]), torch.sigmoid(u[:, k:2 * k]), torch.tanh(u[:, 2 * k:3 * k]), torch.sigmoid(u[:, 3 * k:])
        c = i * g if t == 0 else f * S[:, t - 1, 4 * k:5 * k] + i * g
        S[:, t, :k], S[:, t, k:2 * k], S[:, t, 2 * k:3 * k], S[:, t, 3 * k:4 * k] = i, f, g, o
        S[:, t, 4 * k:5 * k], S[:, t, 5 * k:] = c, o * torch.tanh(c)
    return S


@kernel(backend="torch")
def lstm_deltas(dh, S, W_hh, out=None):
    """The gates' pre-activation gradients (N, T, 4·hidden), i f g o, from the last step back, the
    cell's gradient carried: δc_t = δh_t ⊙ o_t ⊙ (1 − tanh² c_t) + δc_{t+1} ⊙ f_{t+1}."""
    n, steps, k = S.shape[0], S.shape[1], S.shape[2] // 6
    D = S.new_empty((n, steps, 4 * k)) if out is None else out
    dc_next = None
    for t in range(steps - 1, -1, -1):
        i, f, g, o, c = S[:, t, :k], S[:, t, k:2 * k], S[:, t, 2 * k:3 * k], S[:, t, 3 * k:4 * k], S[:, t, 4 * k:5 * k]
        own = dh[:, t] if dh.dim() == 3 else dh if t == steps - 1 else torch.zeros_like(c)
        gh = own if t == steps - 1 else torch.addmm(own, D[:, t + 1], W_hh)
        tc = torch.tanh(c)
        dc = gh * o * (1 - tc * tc)
        if dc_next is not None:
            dc = dc + dc_next * S[:, t + 1, k:2 * k]
        prev = S[:, t - 1, 4 * k:5 * k] if t > 0 else torch.zeros_like(c)
        D[:, t, :k], D[:, t, k:2 * k] = dc * g * i * (1 - i), dc * prev * f * (1 - f)
        D[:, t, 2 * k:3 * k], D[:, t, 3 * k:] = dc * i * (1 - g * g), gh * tc * o * (1 - o)
        dc_next = dc
    return D


@kernel(backend="torch")
def gru_forward(x, W_ih, b_ih, W_hh, b_hh, out=None):
    """Each step's r, z, n, h and W_hn h_{t−1} + b_hn, stacked on the last axis: (N, T, 5·hidden)."""
    n, steps, k = x.shape[0], x.shape[1], W_hh.shape[1]
    gi = torch.addmm(b_ih, x.reshape(-1, x.shape[-1]), W_ih.T).reshape(n, steps, -1)
    S = gi.new_empty((n, steps, 5 * k)) if out is None else out
    for t in range(steps):
        gh = b_hh.expand(n, -1) if t == 0 else torch.addmm(b_hh, S[:, t - 1, 3 * k:4 * k], W_hh.T)
        r, z = torch.sigmoid(gi[:, t, :k] + gh[:, :k]), torch.sigmoid(gi[:, t, k:2 * k] + gh[:, k:2 * k])
        nn = torch.tanh(gi[:, t, 2 * k:] + r * gh[:, 2 * k:])
        h = (1 - z) * nn if t == 0 else (1 - z) * nn + z * S[:, t - 1, 3 * k:4 * k]
        S[:, t, :k], S[:, t, k:2 * k], S[:, t, 2 * k:3 * k], S[:, t, 3 * k:4 * k], S[:, t, 4 * k:] = r, z, nn, h, gh[:, 2 * k:]
    return S


@kernel(backend="torch")
def gru_deltas(dh, S, W_hh, out=None):
    """The pre-activation gradients (N, T, 6·hidden), from the last step back: the input side's r z n
    blocks, then the hidden side's (the n block times r)."""
    n, steps, k = S.shape[0], S.shape[1], S.shape[2] // 5
    D = S.new_empty((n, steps, 6 * k)) if out is None else out
    carry = None
    for t in range(steps - 1, -1, -1):
        r, z, nn, hn = S[:, t, :k], S[:, t, k:2 * k], S[:, t, 2 * k:3 * k], S[:, t, 4 * k:]
        own = dh[:, t] if dh.dim() == 3 else dh if t == steps - 1 else torch.zeros_like(nn)
        gh = own if carry is None else own + carry
        prev = S[:, t - 1, 3 * k:4 * k] if t > 0 else torch.zeros_like(nn)
        dn = gh * (1 - z) * (1 - nn * nn)
        dz = gh * (prev - nn) * z * (1 - z)
        dr = dn * hn * r * (1 - r)
        D[:, t, :k], D[:, t, k:2 * k], D[:, t, 2 * k:3 * k] = dr, dz, dn
        D[:, t, 3 * k:4 * k], D[:, t, 4 * k:5 * k], D[:, t, 5 * k:] = dr, dz, dn * r
        carry = torch.addmm(gh * z, D[:, t, 3 * k:], W_hh)
    return D


@kernel(backend="torch")
def prev_weight_grad(D, h, out=None):
    """∂C/∂W_hh = Σ over examples and steps t ≥ 2 of δ_t h_{t−1}ᵀ."""
    return torch.mm(D[:, 1:].reshape(-1, D.shape[-1]).T, h[:, :-1].reshape(-1, h.shape[-1]), out=out)


@kernel(view=True, backend="torch")
def seq_part(S, start, stop):
    """Blocks start:stop of the last axis of S (a view)."""
    return S[..., start:stop]


@kernel(view=True, backend="torch")
def last_step(h):
    """h_T: the last step of h (N, T, hidden), a view."""
    return h[:, -1]
