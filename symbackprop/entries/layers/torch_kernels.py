"""The torch twins of the layer kernels: one per NumPy kernel of :mod:`symbackprop.entries.layers`, with the
same name and signature, computing the same rule with torch primitives (no autograd: each backward
kernel is the entry's derived rule, written out). ``generate --backend torch`` embeds the ones a
network uses, by source, in a module that has done ``import math``, ``import torch`` and ``import
torch.nn.functional as F``; this module itself never imports torch (symbackprop does not need it).
``tests/test_torch.py`` checks each twin against its NumPy kernel on random float64 data.

Grouped as the families are: convolution (``conv.py``), pooling (``pool.py``), normalization
(``norm.py``), shape (``shape.py``).
"""
# torch, F (torch.nn.functional) and math are the generated module's names
# flake8: noqa: F821
from .base import kernel

# ---------------------------------------------------------------------------------- convolution


@kernel(backend="torch")
def windows(x, size, stride, padding=None):
    """The windows a kernel of ``size`` visits over x (N, C, *S) with ``stride``, after zero
    ``padding``: a view (N, C, *S_out, *size), one ``Tensor.unfold`` per spatial axis."""
    if padding is not None and any(padding):
        x = F.pad(x, [p for p in reversed(padding) for _ in (0, 1)])
    for axis, (k, s) in enumerate(zip(size, stride)):
        x = x.unfold(2 + axis, k, s)
    return x


@kernel(backend="torch")
def conv_forward(x, W, b, stride, padding, out=None, ws=None):
    """z = W ⋆ x + b (cross-correlation, F.conv1d/conv2d): x (N, C, *S), W (O, C, *K), b (O,)."""
    conv = F.conv1d if len(stride) == 1 else F.conv2d
    z = conv(x, W, b, stride, padding)
    if ws is not None:                  # what the backward kernels of this pass hand to aten
        ws["x"], ws["W"] = x, W
    return z if out is None else out.copy_(z)


@kernel(backend="torch")
def conv_input_grad(delta, W, size, stride, padding, out=None, ws=None):
    """∂C/∂x for ∂C/∂z = delta (N, O, *S_out): delta spread out by the stride, padded by kernel − 1,
    correlated with the flipped kernel (W's channel axes swapped), and cropped by the padding — the
    crop folded into the padding (a negative pad crops). With ``ws`` holding this pass's forward
    input and kernel: ``aten.convolution_backward``, the kernel PyTorch's autograd runs."""
    d = len(stride)
    if ws is not None and ws.get("W") is W:
        grad = torch.ops.aten.convolution_backward(delta, ws["x"], W, None, list(stride), list(padding), [1] * d,
                                                   False, [0] * d, 1, [True, False, False])[0]
        return grad if out is None else out.copy_(grad)
    conv = F.conv1d if d == 1 else F.conv2d
    n, o, *s_out = delta.shape
    k = W.shape[2:]
    spread = delta
    if any(s > 1 for s in stride):
        spread = delta.new_zeros((n, o) + tuple((m - 1) * s + 1 for m, s in zip(s_out, stride)))
        spread[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in stride)] = delta
    # rows of the padded input that no window reached (when the stride does not divide) get 0
    rest = [(m + 2 * p - q) % s for m, p, q, s in zip(size, padding, k, stride)]
    before = [q - 1 - p for q, p in zip(k, padding)]
    after = [q - 1 + r - p for q, r, p in zip(k, rest, padding)]
    flipped = W.flip(tuple(range(2, 2 + d))).transpose(0, 1)
    if before == after and min(before) >= 0:
        full = conv(spread, flipped, None, 1, before)
    else:
        full = conv(F.pad(spread, [v for pair in zip(reversed(before), reversed(after)) for v in pair]), flipped)
    return full if out is None else out.copy_(full)


@kernel(backend="torch")
def conv_weight_grad(x, delta, size, stride, padding, out=None, ws=None):
    """∂C/∂W for ∂C/∂z = delta: Σ over examples and positions of delta times the window it saw —
    the padded input correlated with delta spread out by the stride, as one convolution over the
    examples (the example and channel axes swapped: delta is the kernel, dilated by the stride),
    cropped to the kernel's size. With ``ws`` holding this pass's forward input (this same x) and
    kernel: ``aten.convolution_backward``, the kernel PyTorch's autograd runs."""
    d = len(stride)
    if ws is not None and ws.get("x") is x and "W" in ws:
        grad = torch.ops.aten.convolution_backward(delta, x, ws["W"], None, list(stride), list(padding), [1] * d,
                                                   False, [0] * d, 1, [False, True, False])[1]
        return grad if out is None else out.copy_(grad)
    conv = F.conv1d if d == 1 else F.conv2d
    grad = conv(x.transpose(0, 1), delta.transpose(0, 1), None, 1, padding, stride)   # (C, O, >= K)
    grad = grad[(slice(None), slice(None)) + tuple(slice(0, k) for k in size)].transpose(0, 1)
    return grad.contiguous() if out is None else out.copy_(grad)


@kernel(backend="torch")
def channel_sum(delta, out=None):
    """Σ over the examples and positions, per channel (axis 1): a bias's gradient."""
    return torch.sum(delta, dim=(0, *range(2, delta.dim())), out=out)


# ---------------------------------------------------------------------------------- pooling


@kernel(backend="torch")
def maxpool_forward(x, size, stride, out=None, ws=None):
    """The maximum of each window: x (N, C, *S) -> (N, C, *S_out), the running maximum over the
    window's offsets (one strided view of x each; faster on the CPU than F.max_pool2d here)."""
    s_out = [(m - k) // s + 1 for m, k, s in zip(x.shape[2:], size, stride)]
    offsets = [()]
    for k in size:
        offsets = [off + (q,) for off in offsets for q in range(k)]
    views = [x[(Ellipsis,) + tuple(slice(q, q + s * (m - 1) + 1, s) for q, s, m in zip(off, stride, s_out))]
             for off in offsets]
    out = views[0].clone() if out is None else out.copy_(views[0])
    for view in views[1:]:
        torch.maximum(out, view, out=out)
    if ws is not None:                  # the maxima, for maxpool_backward of this pass
        ws["x"], ws["top"] = x, out
    return out


@kernel(maxpool_forward, backend="torch")
def maxpool_backward(delta, x, size, stride, out=None, ws=None):
    """∂C/∂x: each window's δ to its first maximum in row-major order (PyTorch's choice at ties):
    the window's offsets in that order, each taking what is left of δ where its element equals the
    maximum (x − max is exactly 0 there, and at most the largest number below 0 elsewhere)."""
    s_out = delta.shape[2:]
    offsets = [()]
    for k in size:
        offsets = [off + (q,) for off in offsets for q in range(k)]
    peak = ws["top"] if ws is not None and ws.get("x") is x else maxpool_forward(x, size, stride)
    below = -torch.finfo(x.dtype).tiny * torch.finfo(x.dtype).eps       # the largest number below 0
    dx = torch.zeros(x.shape, dtype=delta.dtype, device=delta.device) if out is None else out.zero_()
    rest = delta.clone()
    for off in offsets:
        at = (Ellipsis,) + tuple(slice(q, q + s * (m - 1) + 1, s) for q, s, m in zip(off, stride, s_out))
        routed = torch.ops.aten.threshold_backward(rest, x[at] - peak, below)   # rest where x = max
        dx[at] += routed
        rest -= routed
    return dx


@kernel(backend="torch")
def avgpool_forward(x, size, stride, out=None):
    """The mean of each window (F.avg_pool1d/avg_pool2d, no padding)."""
    z = (F.avg_pool1d if len(size) == 1 else F.avg_pool2d)(x, size, stride)
    return z if out is None else out.copy_(z)


@kernel(backend="torch")
def avgpool_backward(delta, shape, size, stride, out=None):
    """∂C/∂x: δ/|K| to every element of each window (summed where windows overlap)."""
    dx = delta.new_zeros(delta.shape[:2] + tuple(shape)) if out is None else out.zero_()
    share = delta / math.prod(size)
    offsets = [()]
    for k in size:
        offsets = [off + (q,) for off in offsets for q in range(k)]
    for off in offsets:
        at = (Ellipsis,) + tuple(slice(q, q + s * (m - 1) + 1, s) for q, s, m in zip(off, stride, delta.shape[2:]))
        dx[at] += share
    return dx


# ---------------------------------------------------------------------------------- normalization


@kernel(backend="torch")
def norm_mean(x, axes, out=None):
    """μ: the mean over ``axes``."""
    return torch.mean(x, dim=axes, out=out)


@kernel(backend="torch")
def norm_var(x, mean, axes, out=None):
    """var: the biased variance over ``axes``, about ``mean``."""
    c = x - mean.reshape([1 if i in axes else m for i, m in enumerate(x.shape)])
    return torch.mean(c.mul_(c), dim=axes, out=out)


@kernel(backend="torch")
def norm_apply(x, mean, rstd, axes, out=None):
    """x̂ = (x − μ) · rstd, rstd = 1/√(var + ε)."""
    shape = [1 if i in axes else m for i, m in enumerate(x.shape)]
    out = torch.sub(x, mean.reshape(shape), out=out)
    return out.mul_(rstd.reshape(shape))


@kernel(backend="torch")
def scale_shift(xhat, gamma, beta, out=None):
    """γ x̂ + β, γ and β laid over the axes after the example axis (from the channel axis on)."""
    shape = (1,) + tuple(gamma.shape) + (1,) * (xhat.dim() - 1 - gamma.dim())
    out = torch.mul(xhat, gamma.reshape(shape), out=out)
    return out.add_(beta.reshape(shape))


@kernel(backend="torch")
def axis_sum(delta, axes, out=None):
    """Σ over ``axes``: β's gradient."""
    return torch.sum(delta, dim=axes, out=out)


@kernel(backend="torch")
def product_sum(delta, xhat, axes, out=None):
    """Σ δ·x̂ over ``axes``: γ's gradient."""
    return torch.sum(delta * xhat, dim=axes, out=out)


@kernel(backend="torch")
def norm_input_grad(delta, xhat, rstd, gamma, axes, out=None):
    """∂C/∂x = rstd · (g − mean(g) − x̂ · mean(g·x̂)), g = γ·δ, means over ``axes``: the two mean
    terms come from μ's and var's own dependence on x. γ per channel (axis 1) for batch norm (whose
    ``axes`` hold the examples'), over the normalised last axes for layer norm."""
    if 0 in axes:
        shape = (1,) + tuple(gamma.shape) + (1,) * (delta.dim() - 1 - gamma.dim())
    else:
        shape = (1,) * (delta.dim() - gamma.dim()) + tuple(gamma.shape)
    g = delta * gamma.reshape(shape)
    out = torch.sub(g, g.mean(dim=axes, keepdim=True), out=out)
    out -= xhat * (g * xhat).mean(dim=axes, keepdim=True)
    return out.mul_(rstd.reshape([1 if i in axes else m for i, m in enumerate(delta.shape)]))


# ---------------------------------------------------------------------------------- shape


@kernel(view=True, backend="torch")
def flatten(x):
    """(N, C, …) -> (N, C·…), row-major: a view of x."""
    return x.reshape(x.shape[0], -1)


@kernel(view=True, backend="torch")
def unflatten(delta, shape):
    """The gradient of flatten: (N, C·…) -> (N, *shape), a view of delta."""
    return delta.reshape((delta.shape[0],) + tuple(shape))


# ---------------------------------------------------------------------------------- attention


@kernel(view=True, backend="torch")
def split_heads(x, heads):
    """(N, T, d) -> (N, heads, T, d/heads): a view, each head's columns."""
    n, t, d = x.shape
    return x.reshape(n, t, heads, d // heads).transpose(1, 2)


@kernel(backend="torch")
def project(x, W, b=None, out=None):
    """x Wᵀ + b over the last axis of x (N, T, d_in)."""
    res = F.linear(x, W, b)
    return res if out is None else out.copy_(res)


@kernel(backend="torch")
def project_weight_grad(delta, x, out=None):
    """Σ over the examples and positions of δ xᵀ: the (d_out, d_in) gradient of a projection's W."""
    return torch.mm(delta.reshape(-1, delta.shape[-1]).t(), x.reshape(-1, x.shape[-1]), out=out)


@kernel(backend="torch")
def project_input_grad(delta, W, out=None):
    """δ W: the gradient a projection passes back to its input (N, T, d_in)."""
    return torch.matmul(delta, W, out=out)


@kernel(split_heads, backend="torch")
def attn_weights(q, k, heads, causal, scale, out=None):
    """A = softmax(Q Kᵀ · scale) per head over the keys; ``causal``: later keys −∞ (weights exactly 0)."""
    s = torch.matmul(split_heads(q, heads), split_heads(k, heads).transpose(-1, -2)).mul_(scale)
    if causal:
        t = s.shape[-1]
        s.masked_fill_(torch.ones(t, t, dtype=torch.bool, device=s.device).triu_(1), float("-inf"))
    s = torch.softmax(s, dim=-1)
    return s if out is None else out.copy_(s)


@kernel(split_heads, backend="torch")
def attn_mix(a, v, heads, out=None):
    """O = A V per head, the heads joined again: (N, T, d)."""
    o = torch.matmul(a, split_heads(v, heads)).transpose(1, 2).reshape(v.shape)
    return o if out is None else out.copy_(o)


@kernel(split_heads, backend="torch")
def attn_value_grad(a, dout, heads, out=None):
    """dV = Aᵀ dO per head, joined: (N, T, d)."""
    dv = torch.matmul(a.transpose(-1, -2), split_heads(dout, heads)).transpose(1, 2).reshape(dout.shape)
    return dv if out is None else out.copy_(dv)


@kernel(split_heads, backend="torch")
def attn_score_grad(a, dout, v, heads, out=None):
    """dS = A ⊙ (dA − rowsum(A ⊙ dA)), dA = dO Vᵀ per head; a masked weight (0) gets exactly 0."""
    da = torch.matmul(split_heads(dout, heads), split_heads(v, heads).transpose(-1, -2))
    da -= (a * da).sum(dim=-1, keepdim=True)
    da *= a
    return da if out is None else out.copy_(da)


@kernel(split_heads, backend="torch")
def attn_query_grad(ds, k, heads, scale, out=None):
    """dQ = dS K · scale per head, joined: (N, T, d)."""
    dq = torch.matmul(ds, split_heads(k, heads)).mul_(scale).transpose(1, 2).reshape(k.shape)
    return dq if out is None else out.copy_(dq)


@kernel(split_heads, backend="torch")
def attn_key_grad(ds, q, heads, scale, out=None):
    """dK = dSᵀ Q · scale per head, joined: (N, T, d)."""
    dk = torch.matmul(ds.transpose(-1, -2), split_heads(q, heads)).mul_(scale).transpose(1, 2).reshape(q.shape)
    return dk if out is None else out.copy_(dk)


@kernel(project_input_grad, backend="torch")
def attn_input_grad(dq, dk, dv, Wq, Wk, Wv, out=None):
    """dx = dQ W_q + dK W_k + dV W_v."""
    out = project_input_grad(dq, Wq, out=out)
    out += torch.matmul(dk, Wk)
    out += torch.matmul(dv, Wv)
    return out


@kernel(backend="torch")
def pos_add(x, P, out=None):
    """x + P[:T]."""
    return torch.add(x, P[:x.shape[1]], out=out)


@kernel(backend="torch")
def pos_grad(delta, length, out=None):
    """∂C/∂P: rows 1 … T get δ summed over the examples, the rows after T 0."""
    if out is None:
        out = delta.new_zeros((length, delta.shape[-1]))
    else:
        out[delta.shape[1]:] = 0
    torch.sum(delta, dim=0, out=out[:delta.shape[1]])
    return out
