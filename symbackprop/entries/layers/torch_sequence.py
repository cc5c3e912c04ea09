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
def carried(ws, count):
    """The carried state (h_0,) or (h_0, c_0) in ``ws["initial"]``, or Nones (zeros); whether the
    caller asked for the final state back (see recurrent.py)."""
    got = None if ws is None else ws.get("initial")
    return (tuple(got) if got is not None else (None,) * count), ws is not None and "initial" in ws


@kernel(carried, backend="torch")
def rnn_forward(x, W_ih, b_ih, W_hh, b_hh, relu, out=None, ws=None):
    """h (N, T, hidden): h_t = f(x_t W_ihᵀ + b_ih + h_{t−1} W_hhᵀ + b_hh), h_0 = 0 or carried."""
    (h0,), back = carried(ws, 1)
    pre = torch.addmm(b_ih + b_hh, x.reshape(-1, x.shape[-1]), W_ih.T).reshape(x.shape[0], x.shape[1], -1)
    h = torch.empty_like(pre) if out is None else out
    for t in range(x.shape[1]):
        prev = h[:, t - 1] if t else h0
        u = pre[:, t] if prev is None else torch.addmm(pre[:, t], prev, W_hh.T)
        h[:, t] = torch.relu(u) if relu else torch.tanh(u)
    if back:
        ws["final"] = (h[:, -1].clone(),)
    return h


@kernel(backend="torch")
def rnn_deltas(dh, h, W_hh, relu, out=None, ws=None):
    """δ_t = (dh_t + W_hhᵀ δ_{t+1}) ⊙ f′(s_t), from the last step back (dh (N, hidden): h_T's alone)."""
    steps = h.shape[1]
    D = torch.empty_like(h) if out is None else out
    for t in range(steps - 1, -1, -1):
        own = dh[:, t] if dh.dim() == 3 else dh if t == steps - 1 else torch.zeros_like(h[:, t])
        g = own if t == steps - 1 else torch.addmm(own, D[:, t + 1], W_hh)
        D[:, t] = g * (h[:, t] > 0) if relu else g * (1 - h[:, t] * h[:, t])
    return D


@kernel(backend="torch")
def tanh_by_sigmoid(u):
    """tanh(u) = 2σ(2u) − 1: torch's sigmoid is vectorised on every CPU, its tanh not on all (on an
    AVX-512 build here, float32 tanh ran 12x slower than sigmoid)."""
    return torch.sigmoid(2 * u).mul_(2).sub_(1)


@kernel(carried, tanh_by_sigmoid, backend="torch")
def lstm_forward(x, W_ih, b_ih, W_hh, b_hh, out=None, ws=None):
    """Each step's i, f, g, o, c, h, stacked on the last axis: (N, T, 6·hidden); h_0 = c_0 = 0 or
    carried. The gates of a step from one sigmoid: σ(u) on i, f, o; tanh(u) = 2σ(2u) − 1 on g."""
    n, steps, k = x.shape[0], x.shape[1], W_hh.shape[1]
    (h0, c0), back = carried(ws, 2)
    pre = torch.addmm(b_ih + b_hh, x.reshape(-1, x.shape[-1]), W_ih.T).reshape(n, steps, -1)
    S = pre.new_empty((n, steps, 6 * k)) if out is None else out
    scale = pre.new_ones((4 * k,))
    scale[2 * k:3 * k] = 2
    shift = 1 - scale                     # σ as it is on i, f, o; 2σ − 1 on g
    pre.mul_(scale)                       # the g block's 2u, for every step at once (×2 is exact) ...
    W_hhT = W_hh.T * scale                # ... and in the product's columns: addmm gives the scaled u
    u, tc = pre.new_empty((n, 4 * k)), pre.new_empty((n, k))
    for t in range(steps):                # each step writes into S: no temporaries and no copies
        prev = S[:, t - 1, 5 * k:] if t else h0
        if prev is None:
            u.copy_(pre[:, t])
        else:
            torch.addmm(pre[:, t], prev, W_hhT, out=u)
        gates = torch.addcmul(shift, u.sigmoid_(), scale, out=S[:, t, :4 * k])
        c_prev = S[:, t - 1, 4 * k:5 * k] if t else c0
        c = torch.mul(gates[:, :k], gates[:, 2 * k:3 * k], out=S[:, t, 4 * k:5 * k])
        if c_prev is not None:
            c.addcmul_(gates[:, k:2 * k], c_prev)
        o = gates[:, 3 * k:]
        torch.mul(c, 2, out=tc).sigmoid_()                        # tanh c = 2σ(2c) − 1: h = 2σ(2c)·o − o
        torch.mul(tc, o, out=S[:, t, 5 * k:]).mul_(2).sub_(o)
    if back:
        ws["final"] = (S[:, -1, 5 * k:].clone(), S[:, -1, 4 * k:5 * k].clone())
    return S


@kernel(carried, tanh_by_sigmoid, backend="torch")
def lstm_deltas(dh, S, W_hh, out=None, ws=None):
    """The gates' pre-activation gradients (N, T, 4·hidden), i f g o, from the last step back, the
    cell's gradient carried: δc_t = δh_t ⊙ o_t ⊙ (1 − tanh² c_t) + δc_{t+1} ⊙ f_{t+1} (c_0 = 0 or
    carried). The factors free of δ for every step at once, then a product and four products a step."""
    n, steps, k = S.shape[0], S.shape[1], S.shape[2] // 6
    (_, c0), _ = carried(ws, 2)
    D = S.new_empty((n, steps, 4 * k)) if out is None else out
    i, f, g, o, c = (S[:, :, m * k:(m + 1) * k] for m in range(5))
    tc = tanh_by_sigmoid(c)
    A = o * (1 - tc * tc)
    prev = torch.cat([(torch.zeros_like(c[:, :1]) if c0 is None else c0.unsqueeze(1)), c[:, :-1]], dim=1)
    P = torch.stack([g * i * (1 - i), prev * f * (1 - f), i * (1 - g * g)], dim=2)
    Po = tc * o * (1 - o)
    D4 = D.view(n, steps, 4, k)
    dc = None
    for t in range(steps - 1, -1, -1):
        if t == steps - 1:
            gh = dh[:, t] if dh.dim() == 3 else dh
        else:
            gh = torch.addmm(dh[:, t], D[:, t + 1], W_hh) if dh.dim() == 3 else torch.mm(D[:, t + 1], W_hh)
        dc = gh * A[:, t] if dc is None else torch.addcmul(gh * A[:, t], dc, f[:, t + 1])
        torch.mul(P[:, t], dc.unsqueeze(1), out=D4[:, t, :3])
        torch.mul(gh, Po[:, t], out=D4[:, t, 3])
    return D


@kernel(carried, backend="torch")
def gru_forward(x, W_ih, b_ih, W_hh, b_hh, out=None, ws=None):
    """Each step's r, z, n, h and W_hn h_{t−1} + b_hn, stacked on the last axis: (N, T, 5·hidden);
    h_0 = 0 or carried."""
    n, steps, k = x.shape[0], x.shape[1], W_hh.shape[1]
    (h0,), back = carried(ws, 1)
    gi = torch.addmm(b_ih, x.reshape(-1, x.shape[-1]), W_ih.T).reshape(n, steps, -1)
    S = gi.new_empty((n, steps, 5 * k)) if out is None else out
    for t in range(steps):
        prev = S[:, t - 1, 3 * k:4 * k] if t else h0
        gh = b_hh.expand(n, -1) if prev is None else torch.addmm(b_hh, prev, W_hh.T)
        r, z = torch.sigmoid(gi[:, t, :k] + gh[:, :k]), torch.sigmoid(gi[:, t, k:2 * k] + gh[:, k:2 * k])
        nn = torch.tanh(gi[:, t, 2 * k:] + r * gh[:, 2 * k:])
        h = (1 - z) * nn if prev is None else (1 - z) * nn + z * prev
        S[:, t, :k], S[:, t, k:2 * k], S[:, t, 2 * k:3 * k], S[:, t, 3 * k:4 * k], S[:, t, 4 * k:] = r, z, nn, h, gh[:, 2 * k:]
    if back:
        ws["final"] = (S[:, -1, 3 * k:4 * k].clone(),)
    return S


@kernel(carried, backend="torch")
def gru_deltas(dh, S, W_hh, out=None, ws=None):
    """The pre-activation gradients (N, T, 6·hidden), from the last step back: the input side's r z n
    blocks, then the hidden side's (the n block times r); h_0 = 0 or carried."""
    n, steps, k = S.shape[0], S.shape[1], S.shape[2] // 5
    (h0,), _ = carried(ws, 1)
    D = S.new_empty((n, steps, 6 * k)) if out is None else out
    carry = None
    for t in range(steps - 1, -1, -1):
        r, z, nn, hn = S[:, t, :k], S[:, t, k:2 * k], S[:, t, 2 * k:3 * k], S[:, t, 4 * k:]
        own = dh[:, t] if dh.dim() == 3 else dh if t == steps - 1 else torch.zeros_like(nn)
        gh = own if carry is None else own + carry
        prev = S[:, t - 1, 3 * k:4 * k] if t > 0 else (torch.zeros_like(nn) if h0 is None else h0)
        dn = gh * (1 - z) * (1 - nn * nn)
        dz = gh * (prev - nn) * z * (1 - z)
        dr = dn * hn * r * (1 - r)
        D[:, t, :k], D[:, t, k:2 * k], D[:, t, 2 * k:3 * k] = dr, dz, dn
        D[:, t, 3 * k:4 * k], D[:, t, 4 * k:5 * k], D[:, t, 5 * k:] = dr, dz, dn * r
        carry = torch.addmm(gh * z, D[:, t, 3 * k:], W_hh)
    return D


@kernel(carried, backend="torch")
def prev_weight_grad(D, h, out=None, ws=None):
    """∂C/∂W_hh = Σ over examples and steps of δ_t h_{t−1}ᵀ: from step 2 on, and at step 1 with a
    carried h_0."""
    (h0, *_), _ = carried(ws, 2)
    prev = torch.empty_like(h)                  # h_{t−1} at step t: one copy of h, not of the larger D
    prev[:, 1:] = h[:, :-1]
    prev[:, 0] = 0 if h0 is None else h0
    return torch.mm(D.reshape(-1, D.shape[-1]).T, prev.reshape(-1, h.shape[-1]), out=out)


@kernel(view=True, backend="torch")
def seq_part(S, start, stop):
    """Blocks start:stop of the last axis of S (a view)."""
    return S[..., start:stop]


@kernel(view=True, backend="torch")
def last_step(h):
    """h_T: the last step of h (N, T, hidden), a view."""
    return h[:, -1]
