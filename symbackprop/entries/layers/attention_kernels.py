"""The NumPy kernels of ``attention`` and ``posembed`` (symbackprop.entries.layers.attention), batched
over the examples AND the heads: every product is one ``np.matmul`` of (N, heads, ·, ·) stacks (or
one ``np.dot`` of the (N·T, d) rows), never a loop over positions or heads.

Layout: a sequence batch is (N, T, d); :func:`split_heads` views it as (N, heads, T, d_k), head h
holding the columns h·d_k … (h + 1)·d_k − 1, as ``nn.MultiheadAttention`` splits them. ``scale`` is
1/√d_k, passed in (a number in generated code, SymPy's exact 1/√d_k in the tests' proofs).

The backward rules, in the order they run (A the softmax weights, dO the gradient of the heads'
joined output, each per head):

    dV = Aᵀ dO,   dA = dO Vᵀ,   dS = A ⊙ (dA − rowsum(A ⊙ dA)),   dQ = dS K / √d_k,   dK = dSᵀ Q / √d_k

A masked weight is exactly 0, so its dS is exactly 0 (0 times a finite number), whatever dA is.
"""
import numpy as np

from .base import kernel


@kernel(view=True)
def split_heads(x, heads):
    """(N, T, d) -> (N, heads, T, d/heads): a view, each head's columns."""
    n, t, d = x.shape
    return x.reshape(n, t, heads, d // heads).transpose(0, 2, 1, 3)


@kernel()
def project(x, W, b=None, out=None):
    """x Wᵀ + b over the last axis of x (N, T, d_in): one product of the (N·T, d_in) rows."""
    rows = x.reshape(-1, x.shape[-1])
    res = np.dot(rows, W.T, out=None if out is None else out.reshape(len(rows), W.shape[0]))
    if b is not None:
        res += b
    return res.reshape(x.shape[:-1] + (W.shape[0],)) if out is None else out


@kernel()
def project_weight_grad(delta, x, out=None):
    """Σ over the examples and positions of δ xᵀ: the (d_out, d_in) gradient of a projection's W."""
    return np.dot(delta.reshape(-1, delta.shape[-1]).T, x.reshape(-1, x.shape[-1]), out=out)


@kernel()
def project_input_grad(delta, W, out=None):
    """δ W: the gradient a projection passes back to its input (N, T, d_in)."""
    rows = delta.reshape(-1, delta.shape[-1])
    res = np.dot(rows, W, out=None if out is None else out.reshape(len(rows), W.shape[1]))
    return res.reshape(delta.shape[:-1] + (W.shape[1],)) if out is None else out


@kernel(split_heads)
def attn_weights(q, k, heads, causal, scale, out=None):
    """A = softmax(Q Kᵀ · scale) per head, each row over the keys (N, heads, T, T); ``causal``: the
    keys after the query get −∞ before the softmax, so their weights are exactly 0."""
    s = np.matmul(split_heads(q, heads), split_heads(k, heads).transpose(0, 1, 3, 2), out=out)
    s *= scale
    if causal:
        t = s.shape[-1]
        s[:, :, np.triu(np.ones((t, t), dtype=bool), 1)] = -np.inf
    s -= s.max(axis=-1, keepdims=True)
    np.exp(s, out=s)
    s /= s.sum(axis=-1, keepdims=True)
    return s


@kernel(split_heads)
def attn_mix(a, v, heads, out=None):
    """O = A V per head, the heads joined again: (N, T, d)."""
    n, t, d = v.shape
    if out is None:
        out = np.empty((n, t, d), dtype=np.result_type(a, v))
    np.matmul(a, split_heads(v, heads), out=split_heads(out, heads))
    return out


@kernel(split_heads)
def attn_value_grad(a, dout, heads, out=None):
    """dV = Aᵀ dO per head, joined: (N, T, d)."""
    if out is None:
        out = np.empty(dout.shape, dtype=np.result_type(a, dout))
    np.matmul(a.transpose(0, 1, 3, 2), split_heads(dout, heads), out=split_heads(out, heads))
    return out


@kernel(split_heads)
def attn_score_grad(a, dout, v, heads, out=None):
    """dS: dA = dO Vᵀ per head, then the softmax's backward row by row,
    dS = A ⊙ (dA − rowsum(A ⊙ dA)) (N, heads, T, T); a masked weight (0) gets exactly 0."""
    out = np.matmul(split_heads(dout, heads), split_heads(v, heads).transpose(0, 1, 3, 2), out=out)
    out -= (a * out).sum(axis=-1, keepdims=True)
    out *= a
    return out


@kernel(split_heads)
def attn_query_grad(ds, k, heads, scale, out=None):
    """dQ = dS K · scale per head, joined: (N, T, d)."""
    if out is None:
        out = np.empty(k.shape, dtype=np.result_type(ds, k))
    np.matmul(ds, split_heads(k, heads), out=split_heads(out, heads))
    out *= scale
    return out


@kernel(split_heads)
def attn_key_grad(ds, q, heads, scale, out=None):
    """dK = dSᵀ Q · scale per head, joined: (N, T, d)."""
    if out is None:
        out = np.empty(q.shape, dtype=np.result_type(ds, q))
    np.matmul(ds.transpose(0, 1, 3, 2), split_heads(q, heads), out=split_heads(out, heads))
    out *= scale
    return out


@kernel(project_input_grad)
def attn_input_grad(dq, dk, dv, Wq, Wk, Wv, out=None):
    """dx = dQ W_q + dK W_k + dV W_v: the three projections' paths back to the input, added."""
    out = project_input_grad(dq, Wq, out=out)
    out += project_input_grad(dk, Wk)
    out += project_input_grad(dv, Wv)
    return out


@kernel()
def pos_add(x, P, out=None):
    """x + P[:T]: each position's row of the positional embedding added (x (N, T, d), P (length, d))."""
    return np.add(x, P[:x.shape[1]], out=out)


@kernel()
def pos_grad(delta, length, out=None):
    """∂C/∂P: the rows 1 … T get δ summed over the examples, the rows after T (unused) 0."""
    if out is None:
        out = np.zeros((length, delta.shape[-1]), dtype=delta.dtype)
    else:
        out[delta.shape[1]:] = 0
    out[:delta.shape[1]] = delta.sum(axis=0)
    return out
