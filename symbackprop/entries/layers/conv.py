"""``conv1d``, ``conv2d``: cross-correlation with zero padding and a stride, as
``torch.nn.functional.conv1d/conv2d``. W<i> is (channels, in_channels, *kernel), b<i> (channels,).

    z[o, s] = b[o] + Σ_{c, k} W[o, c, k] · x̃[c, s·stride + k]        (x̃: x padded with zeros)

Backward, for δ = ∂C/∂z (each rule proven equal to SymPy's derivative of these elements in
tests/test_layer_rules.py):

    ∂C/∂W[o, c, k] = Σ_{n, s} δ[n, o, s] · x̃[n, c, s·stride + k]      (the input correlated with δ)
    ∂C/∂b[o]       = Σ_{n, s} δ[n, o, s]
    ∂C/∂x          = δ̂ ⋆ rot180(W)ᵀ, cropped by the padding             (δ̂: δ spread out by the stride
                                                                         and padded by kernel − 1)

The kernels compute each of these as one matrix product with a patch matrix (``patches``: every
window copied out by a loop over the kernel offsets, a whole slab at a time) — the input gradient
as Wᵀδ added back where each window sat, which is the correlation above — never by loops over
positions, and they run on object arrays of SymPy symbols too (tests/test_layer_rules.py).
"""
import math

import numpy as np
import sympy

from ..arrayops import Kernel
from ...writers.document import Display, Para
from .base import (Backward, Field, LayerError, LayerKind, index_tuples, ints, kernel, positive_int, rule_and_tables, shape_text, with_options, zeros)
from .dense import grad_tex, sup


@kernel()
def windows(x, size, stride, padding=None):
    """The windows a kernel of ``size`` visits over x (N, C, *S) with ``stride``, after zero
    ``padding``: a read-only view (N, C, *S_out, *size)."""
    d = len(size)
    if padding is not None and any(padding):
        x = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in padding])
    w = np.lib.stride_tricks.sliding_window_view(x, tuple(size), axis=tuple(range(2, 2 + d)))
    return w[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in stride)]


@kernel()
def offset_view(x, offset, stride, s_out):
    """The elements of x (N, C, *S) that kernel ``offset`` meets at every output position:
    x[:, :, offset + stride·s] for s < s_out, a strided view (N, C, *s_out)."""
    return x[(slice(None), slice(None)) + tuple(slice(q, q + t * (m - 1) + 1, t) for q, t, m in zip(offset, stride, s_out))]


@kernel(offset_view)
def patches(x, size, stride, padding, rows=False):
    """Every window of x (N, C, *S) after zero ``padding``, copied as (C, *size, N, *grid): entry
    (c, k, n, s) holds x̃[n, c, k + stride·s], so a kernel W (O, C, *size) meets all windows in ONE
    matrix product, W.reshape(O, -1) @ patches.reshape(C·|K|, -1). Built by a loop over the kernel
    offsets, each copying a whole slab. The grid is the output positions S_out; with ``rows``
    (stride 1), it runs over the padded input's full rows, (S_out[0], *P[1:]): each offset's slab
    is then one contiguous run of the flattened input (long copies instead of S_out[-1]-long
    pieces), and the positions past S_out along the later axes are extra windows to ignore (they
    wrap into the next row; the last few, past the input's end, are 0)."""
    if any(padding):
        x = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in padding])
    n, c, *padded = x.shape
    s_out = tuple((m - k) // t + 1 for m, k, t in zip(padded, size, stride))
    if not rows:
        cols = np.empty((c, *size, n, *s_out), x.dtype)
        for off in np.ndindex(*size):
            cols[(slice(None), *off)] = offset_view(x, off, stride, s_out).swapaxes(0, 1)
        return cols
    grid = (s_out[0], *padded[1:])
    steps = [1] * len(padded)                       # the flat index of one step along each axis
    for i in range(len(padded) - 1, 0, -1):
        steps[i - 1] = steps[i] * padded[i]
    run, total = s_out[0] * steps[0], padded[0] * steps[0]
    flat = x.reshape(n, c, total)
    cols = np.empty((c, *size, n, run), x.dtype)
    for off in np.ndindex(*size):
        shift = sum(q * t for q, t in zip(off, steps))
        have = min(run, total - shift)
        cols[(slice(None), *off, slice(None), slice(0, have))] = flat[:, :, shift:shift + have].swapaxes(0, 1)
        cols[(slice(None), *off, slice(None), slice(have, None))] = 0
    return cols.reshape((c, *size, n, *grid))


@kernel()
def batch_last(a):
    """The storage of an (N, C, *S) array laid out with the examples innermost, (C, *S, N), as a
    contiguous view; None when ``a`` is not laid out that way. Generated trainers keep their image
    arrays so: each kernel offset's window is then one run of S_out[-1]·N values per row."""
    s = a.transpose(tuple(range(1, a.ndim)) + (0,))
    return s if s.flags.c_contiguous else None


@kernel(batch_last)
def conv_plan(x, size, stride, padding, ws):
    """The patch matrix of x (N, C, *S) kept in the dict ``ws``, laid out (C, *size, *S_out, N) —
    entry (c, k, s, n) holds x̃[n, c, s·stride + k], so each kernel offset's slab is copied from
    one strided view — with that view, and a zero-bordered copy of x with the examples innermost
    when x is padded or not laid out so. Made when ``x`` (the array object) or the kernel changes;
    :func:`conv_patches` fills it."""
    plan = ws.get("plan")
    if plan is not None and plan["x"] is x and plan["size"] == tuple(size):
        return plan
    n, c, *shape = x.shape
    d = len(shape)
    padded = [m + 2 * p for m, p in zip(shape, padding)]
    s_out = [(m - k) // t + 1 for m, k, t in zip(padded, size, stride)]
    src, stage = batch_last(x), None
    if src is None or any(padding):
        src = np.zeros((c, *padded, n), x.dtype)      # the border stays 0
        inner = src[(slice(None),) + tuple(slice(p, p + m) for p, m in zip(padding, shape))]
        stage = (inner, x.transpose(tuple(range(1, d + 2)) + (0,)))
    cols = np.empty((c, *size, *s_out, n), x.dtype)
    st = src.strides
    view = np.lib.stride_tricks.as_strided(src, cols.shape, (st[0], *st[1:1 + d],
                                                             *(q * t for q, t in zip(st[1:1 + d], stride)), st[-1]))
    k, cols_n = c * math.prod(size), math.prod(s_out) * n
    # a skinny product (few channels, a small kernel: a LeNet's first layer) runs 2-3x faster in
    # blocks of whole output rows that stay in the cache
    row = cols_n // s_out[0]
    step = max(1, 4096 // row) * row if k < 32 else cols_n
    plan = ws["plan"] = {"x": x, "size": tuple(size), "stage": stage, "cols": cols, "view": view,
                         "mat": cols.reshape(k, cols_n), "s_out": tuple(s_out),
                         "blocks": [slice(i, min(i + step, cols_n)) for i in range(0, cols_n, step)]}
    return plan


@kernel()
def conv_patches(plan):
    """Fill the patch matrix of a :func:`conv_plan` from its input: once per pass."""
    if plan["stage"] is not None:
        np.copyto(*plan["stage"])
    np.copyto(plan["cols"], plan["view"])
    return plan["mat"]


@kernel(batch_last)
def rows_of(delta):
    """delta (N, O, *S) as the (O, |S|·N) matrix of its batch-last storage (a view when it is laid
    out so, else a copy)."""
    s = batch_last(delta)
    if s is None:
        s = np.ascontiguousarray(delta.transpose(tuple(range(1, delta.ndim)) + (0,)))
    return s.reshape(delta.shape[1], -1)


@kernel(patches, conv_plan, conv_patches, batch_last)
def conv_forward(x, W, b, stride, padding, out=None, ws=None):
    """z = W ⋆ x + b: x (N, C, *S), W (O, C, *K), b (O,) -> (N, O, *S_out), as one matrix product of
    the weights and the patches (with stride 1 over full rows, whose extra positions are dropped).
    With ``ws`` (a generated trainer's per-layer dict): the patches are kept there for
    :func:`conv_weight_grad`, and the product is written straight into ``out``'s storage when it is
    laid out with the examples innermost (:func:`batch_last`)."""
    o, d = W.shape[0], len(stride)
    if ws is not None:
        plan = conv_plan(x, W.shape[2:], stride, padding, ws)
        cols = conv_patches(plan)
        if out is None:
            out = np.empty((o, *plan["s_out"], x.shape[0]), x.dtype).transpose((d + 1,) + tuple(range(d + 1)))
        dst = batch_last(out)
        z = dst.reshape(o, -1) if dst is not None else np.empty((o, cols.shape[1]), x.dtype)
        w = W.reshape(o, -1)
        for part in plan["blocks"]:
            np.matmul(w, cols[:, part], out=z[:, part])
        z += b.reshape(o, 1)
        if dst is None:
            np.copyto(out, z.reshape((o, *plan["s_out"], -1)).transpose((d + 1,) + tuple(range(d + 1))))
        return out
    rows = d > 1 and all(t == 1 for t in stride)
    cols = patches(x, W.shape[2:], stride, padding, rows)
    z = (W.reshape(o, -1) @ cols.reshape(W[0].size, -1)).reshape((o,) + cols.shape[1 + d:])  # (O, N, *grid)
    s_out = tuple(m + 2 * p - k + 1 for m, p, k in zip(x.shape[2:], padding, W.shape[2:])) if rows else z.shape[2:]
    z = z[(slice(None), slice(None)) + tuple(slice(0, m) for m in s_out)]
    return np.add(z.swapaxes(0, 1), b.reshape((-1,) + (1,) * d), out=out)


@kernel(batch_last, rows_of)
def _conv_input_grad_kept(delta, W, size, stride, padding, out, ws):
    """conv_input_grad with the patch gradient Wᵀδ and the (padded) input gradient kept in ``ws``,
    both laid out with the examples innermost: the shares of each kernel offset are added back as
    one strided slab each."""
    n, o, *s_out = delta.shape
    c, k, d = W.shape[1], W.shape[2:], len(size)
    padded = tuple(m + 2 * p for m, p in zip(size, padding))
    dcols = ws.get("dcols")
    if dcols is None or dcols.shape != (c, *k, *s_out, n) or dcols.dtype != delta.dtype:
        dcols = ws["dcols"] = np.empty((c, *k, *s_out, n), delta.dtype)
    np.matmul(W.reshape(o, -1).T, rows_of(delta), out=dcols.reshape(c * math.prod(k), -1))
    if out is None:
        out = np.empty((c, *size, n), delta.dtype).transpose((d + 1,) + tuple(range(d + 1)))
    dx = batch_last(out) if not any(padding) else None
    direct = dx is not None
    if not direct:
        dx = ws.get("dx")
        if dx is None or dx.shape != (c, *padded, n) or dx.dtype != delta.dtype:
            dx = ws["dx"] = np.empty((c, *padded, n), delta.dtype)
    dx.fill(0)
    for off in np.ndindex(*k):
        at = dx[(slice(None),) + tuple(slice(q, q + t * (m - 1) + 1, t) for q, t, m in zip(off, stride, s_out))]
        np.add(at, dcols[(slice(None), *off)], out=at)
    if not direct:
        crop = dx[(slice(None),) + tuple(slice(p, p + m) for p, m in zip(padding, size))]
        np.copyto(out, crop.transpose((d + 1,) + tuple(range(d + 1))))
    return out


@kernel(offset_view, _conv_input_grad_kept)
def conv_input_grad(delta, W, size, stride, padding, out=None, ws=None):
    """∂C/∂x for ∂C/∂z = delta (N, O, *S_out): each window's share W(o, c, k)·δ(n, o, s), summed
    over o by ONE matrix product Wᵀδ, added back where the window sat (a loop over the kernel
    offsets: the transpose of the patches), then cropped by the padding. With stride 1, δ is laid
    out over the padded input's full rows (zeros past S_out), so each offset's shares land on one
    contiguous run of the flattened input, shifted by the offset's flat index."""
    n, o, *s_out = delta.shape
    c, k = W.shape[1], W.shape[2:]
    padded = tuple(m + 2 * p for m, p in zip(size, padding))
    if ws is not None:
        return _conv_input_grad_kept(delta, W, size, stride, padding, out, ws)
    flat = all(t == 1 for t in stride)
    grid = (s_out[0], *padded[1:]) if flat else tuple(s_out)        # the positions δ is laid out over
    spread = np.zeros((o, n) + grid, delta.dtype)
    spread[(slice(None), slice(None)) + tuple(slice(0, m) for m in s_out)] = delta.swapaxes(0, 1)
    shares = (W.reshape(o, -1).T @ spread.reshape(o, -1)).reshape((c, *k, n, -1))   # (C, *K, N, |grid|)
    if flat:
        run, total = shares.shape[-1], int(np.prod(padded))
        steps = [int(np.prod(padded[i + 1:])) for i in range(len(padded))]
        dx = np.zeros((c, n, total + sum((q - 1) * t for q, t in zip(k, steps)) + run), delta.dtype)
        for off in np.ndindex(*k):
            shift = sum(q * t for q, t in zip(off, steps))
            at = dx[:, :, shift:shift + run]
            np.add(at, shares[(slice(None), *off)], out=at)
        dx = dx[:, :, :total].reshape((c, n) + padded)
    else:
        dx = np.zeros((c, n) + padded, delta.dtype)
        for off in np.ndindex(*k):
            at = offset_view(dx, off, stride, s_out)
            np.add(at, shares[(slice(None), *off)].reshape((c, n, *s_out)), out=at)
    crop = dx[(slice(None), slice(None)) + tuple(slice(p, p + m) for p, m in zip(padding, size))].swapaxes(0, 1)
    if out is None:
        return np.ascontiguousarray(crop)
    out[...] = crop
    return out


@kernel(patches, conv_plan, conv_patches, rows_of)
def conv_weight_grad(x, delta, size, stride, padding, out=None, ws=None):
    """∂C/∂W for ∂C/∂z = delta: Σ over examples and positions of delta times the window it saw, one
    matrix product of delta (O, N·|grid|) and the patches (with stride 1 over full rows: delta is
    laid out over them with zeros at the extra positions). With ``ws``: the patches that
    :func:`conv_forward` kept there for this same ``x`` (built here if it did not), and the
    product taken as patches @ δᵀ, the orientation BLAS runs fastest here."""
    o, d = delta.shape[1], len(stride)
    if ws is not None:
        plan = ws.get("plan")
        if plan is None or plan["x"] is not x or plan["size"] != tuple(size):
            plan = conv_plan(x, size, stride, padding, ws)
            conv_patches(plan)
        cols, dm = plan["mat"], rows_of(delta)
        blocks = plan["blocks"]
        grad_t = np.matmul(cols[:, blocks[0]], dm[:, blocks[0]].T)                 # (C·|K|, O)
        for part in blocks[1:]:
            grad_t += cols[:, part] @ dm[:, part].T
        grad = grad_t.T.reshape((o, x.shape[1], *size))
        if out is None:
            return np.ascontiguousarray(grad)
        np.copyto(out, grad)
        return out
    rows = d > 1 and all(t == 1 for t in stride)
    cols = patches(x, size, stride, padding, rows)
    spread = np.zeros((o,) + cols.shape[1 + d:], delta.dtype)             # (O, N, *grid)
    spread[(slice(None), slice(None)) + tuple(slice(0, m) for m in delta.shape[2:])] = delta.swapaxes(0, 1)
    grad = (spread.reshape(o, -1) @ cols.reshape(-1, spread[0].size).T).reshape((o,) + cols.shape[:1 + d])
    if out is None:
        return grad
    out[...] = grad
    return out


@kernel(batch_last)
def channel_sum(delta, out=None):
    """Σ over the examples and positions, per channel (axis 1): a bias's gradient. As products with
    ones (the positions, then the examples): a reduction over the first and last axes at once
    runs ~10x slower. Laid out with the examples innermost, each channel is one contiguous row."""
    n, c = delta.shape[:2]
    rows = batch_last(delta) if delta.dtype != object else None
    if rows is not None:
        return np.sum(rows.reshape(c, -1), axis=1, out=out)
    per_example = delta.reshape(n * c, -1) @ np.ones(delta[0, 0].size, delta.dtype)
    return np.dot(np.ones(n, delta.dtype), per_example.reshape(n, c), out=out)


class Conv(LayerKind):
    doc = "cross-correlation as torch.nn.functional.conv{d}d; W (channels, in_channels, *kernel), b (channels,)"
    params = ("W", "b")
    affine = True
    kernels = ("conv_forward", "conv_input_grad", "conv_weight_grad", "channel_sum")

    def __init__(self, d: int):
        self.d = d
        self.name = f"conv{d}d"
        self.doc = self.doc.format(d=d)
        self.fields = (Field("channels", positive_int, doc="output channels"),
                       Field("kernel", ints(d, 1), doc="an int or a list"),
                       Field("stride", ints(d, 1), 1, "default 1"),
                       Field("padding", ints(d, 0), 0, "zeros on every side; default 0"))

    def check(self, options, in_shapes):
        shape = in_shapes[0]
        if len(shape) != self.d + 1:
            raise LayerError("type", f"{self.name} needs a (channels, {'length' if self.d == 1 else 'height, width'}) "
                                     f"input, got shape {shape_text(shape)}")
        for m, p, k in zip(shape[1:], options["padding"], options["kernel"]):
            if k > m + 2 * p:
                raise LayerError("kernel", f"{_size(options['kernel'])} is larger than the padded input "
                                           f"{_size(tuple(m + 2 * p for m, p in zip(shape[1:], options['padding'])))}")

    def output_shape(self, options, in_shapes):
        sizes = ((m + 2 * p - k) // s + 1 for m, p, k, s in
                 zip(in_shapes[0][1:], options["padding"], options["kernel"], options["stride"]))
        return (options["channels"], *sizes)

    def param_shapes(self, layer):
        return {"W": (layer.shape[0], layer.in_shapes[0][0], *layer.opt["kernel"]), "b": (layer.shape[0],)}

    def workspace(self, layer):
        """The padded input and the patch matrix (C·|K| rows, one column per output position)."""
        c, size = layer.in_shapes[0][0], layer.in_shapes[0][1:]
        padded = math.prod(m + 2 * p for m, p in zip(size, layer.opt["padding"]))
        return c * padded + c * math.prod(layer.opt["kernel"]) * math.prod(layer.shape[1:])

    def fans(self, layer):
        area = math.prod(layer.opt["kernel"])
        return layer.in_shapes[0][0] * area, layer.shape[0] * area

    def init(self, layer, prefix):
        return "weight" if prefix == "W" else "zeros"

    def elements(self, layer, inputs, params, data, stage):
        x, W, b = inputs[0], params["W"], params["b"]
        k, stride, pad = layer.opt["kernel"], layer.opt["stride"], layer.opt["padding"]
        size = x.shape[1:]
        z = np.empty(layer.shape, dtype=object)
        for o, *pos in index_tuples(layer.shape):
            terms = []
            for c in range(x.shape[0]):
                for off in np.ndindex(*k):
                    src = tuple(p * s + q - d for p, s, q, d in zip(pos, stride, off, pad))
                    if all(0 <= i < m for i, m in zip(src, size)):   # the padding's zeros add nothing
                        terms.append(W[(o, c, *off)] * x[(c, *src)])
            z[(o, *pos)] = sympy.Add(*terms, b[o])
        return z

    def forward(self, layer, inputs, params, data):
        return conv_forward(inputs[0], params["W"], params["b"], layer.opt["stride"], layer.opt["padding"])

    def array_forward(self, layer, b, inputs, params, data, mode):
        state = f"conv{layer.index}"         # the patches, kept for the weight gradient
        return Kernel("conv_forward", inputs[0], params["W"], params["b"], layer.opt["stride"], layer.opt["padding"],
                      state=state), None

    def array_backward(self, layer, b, delta, inputs, params, data, need):
        (x,), opt = inputs, layer.opt
        tex = self.latex_backward(layer, b.tex(delta), [b.tex(x)])
        state = f"conv{layer.index}"
        b.grad(layer.param("W"), Kernel("conv_weight_grad", x, delta, opt["kernel"], opt["stride"], opt["padding"], state=state),
               tex.grads[layer.param("W")])
        b.grad(layer.param("b"), Kernel("channel_sum", delta), tex.grads[layer.param("b")])
        if not need[0]:
            return [None]
        return [(Kernel("conv_input_grad", delta, params["W"], layer.in_shapes[0][1:], opt["stride"], opt["padding"], state=state),
                 tex.inputs[0])]

    def explain_forward(self, lm, sheet):
        layer, l = lm.layer, lm.index
        opt, x = layer.opt, sheet.input_tex(lm)
        out = [Display((self.latex_forward(layer, f"z^{{({l})}}", [x]),))]
        if any(opt["padding"]):
            padded = np.pad(sheet.inputs(lm)[0], [(0, 0)] + [(p, p) for p in opt["padding"]])
            out += [Para(f"$\\tilde{{{x}}}$ is ${x}$ with {_size(opt['padding'])} zero{'s' if max(opt['padding']) > 1 else ''} "
                         "on every side (the padding)" + (", example 1" if sheet.N > 1 else "") + ":")]
            out += sheet.tables(f"\\tilde{{{x}}}", padded[None], None, what="channel")
        first = sheet.at(lm.stage("z").symbols, 0, (0,) * (self.d + 1))
        k, C = "×".join(map(str, opt["kernel"])), layer.in_shapes[0][0]
        rows = ", ".join(f"{'rows' if i == 0 and self.d == 2 else 'columns' if self.d == 2 else 'positions'} 1 to {q}"
                         for i, q in enumerate(opt["kernel"]))
        src = f"\\tilde{{{x}}}" if any(opt["padding"]) else x          # x̃ only where there is padding
        channels = f"of each of the {C} input channels" if C > 1 else "of the input channel"
        out += [Para(f"One element written out: ${sheet.names[first]}$, output channel 1 at the first position, sums the "
                     f"{k} kernel {channels} times the window it covers "
                     f"({rows} of ${src}$" + (", where the padding's zeros add nothing and are left out" if any(opt['padding']) else "")
                     + f"), plus the bias; the next window is {_size(opt['stride'])} further on (the stride):"),
                Display(tuple(sheet.written_sum(first)))]
        return out

    def explain_backward(self, lm, sheet, wanted):
        layer, l, out = lm.layer, lm.index, []
        rule = self.latex_backward(layer, f"\\delta^{{({l})}}", [sheet.input_tex(lm)])
        for prefix, what in (("W", "The kernel's gradient sums, over every position $s$ it was applied at, $\\delta$ "
                                   "there times the input value the weight met (stride and padding as in the forward pass)"
                                   + ("; this is one example's, and the gradient of $C$ is the mean of the examples'"
                                      if sheet.N > 1 else "")),
                             ("b", "The bias's gradient sums $\\delta$ over the channel's positions")):
            name = layer.param(prefix)
            if name not in wanted:
                continue
            steps = [st for st in sheet.d.gradients() if st.param == name]
            out += [Para(what + ":"), Display((rule.grads[name],)),
                    Para("One element written out" + (" (for example 1, of its loss $C_1$; the gradient of $C$ is the "
                                                        "mean over the examples)" if sheet.N > 1 and sheet.E == 1 else "") + ":"),
                    Display(tuple(sheet.step_lines(steps[0])))]
            out += sheet.tables(f"\\partial C/\\partial {sup(prefix, l)}", sheet.values.gradients[name], f"grad.{name}",
                                per_example=False, what="kernel")
        return out

    def explain_input_gradient(self, lm, sheet, k, part=None):
        out = rule_and_tables(self, lm, sheet, k, part)
        if part is None:
            step = sheet.receiver_steps(lm, k)[0]
            out[2:2] = [Para("For one element, that correlation is the sum over the outputs whose window covers it of the "
                             "kernel weight that met it times their $\\delta$:"), Display(tuple(sheet.step_lines(step)))]
        return out

    def slips(self, layer, ctx):
        l, opt, W = layer.index, layer.opt, ctx.params["W"]
        flipped = W[(slice(None), slice(None)) + (slice(None, None, -1),) * self.d]
        out = [ctx.slip({"forward": (30, f"the bias b{l} left out")}, params={"b": zeros(ctx.params["b"].shape)}),
               ctx.slip({"inputs": (24, f"the kernel not flipped in the input gradient of layer {l} "
                                        f"(W{l} correlated with δ where rot180(W{l}) belongs)")}, params={"W": flipped})]
        if self.d == 2 and W.shape[2] == W.shape[3]:
            # the input gradient correlates δ with rot180(W); the slip uses the spatial transpose:
            # the forward kernel whose rot180 is Wᵀ, i.e. rot180(Wᵀ)
            anti = W.transpose(0, 1, 3, 2)[:, :, ::-1, ::-1]
            out.append(ctx.slip({"inputs": (24, f"the kernel transposed instead of rotated by 180° in the input gradient "
                                                f"of layer {l} (W{l}ᵀ correlated with δ where rot180(W{l}) belongs)")},
                                params={"W": anti}))
        if any(s > 1 for s in opt["stride"]):
            text = f"the stride {_size(opt['stride'])} of layer {l} ignored in the backward pass (taken as 1)"
            out.append(ctx.slip({"inputs": (25, text), "params": (25, text)}, layer=with_options(layer, stride=(1,) * self.d)))
        if any(opt["padding"]):
            text = f"the padding {_size(opt['padding'])} of layer {l} ignored in the backward pass (positions not shifted)"
            out.append(ctx.slip({"inputs": (25, text), "params": (25, text)}, layer=with_options(layer, padding=(0,) * self.d)))
        return out

    def _note(self, layer) -> str:
        opt = layer.opt
        return rf" \quad (\text{{stride }} {_size(opt['stride'], True)},\ \text{{padding }} {_size(opt['padding'], True)})"

    def latex_forward(self, layer, out, ins):
        l = layer.index
        return rf"{out} = {sup('W', l)} \star {ins[0]} + {sup('b', l)}" + self._note(layer)

    def latex_backward(self, layer, delta, ins):
        """The rule for one example (a batch's gradient is the mean of the examples'), indices from 1:
        ∂C/∂W[o,c,k] = Σ_s δ[o,s] x̃[c, stride·(s − 1) + k], x̃ named only where there is padding."""
        l, opt, x = layer.index, layer.opt, ins[0]
        padded = any(opt["padding"])
        src = rf"\tilde{{{x}}}" if padded else x
        grads = {layer.param("W"): rf"{grad_tex(sup('W', l))}_{{o,c,k}} = \textstyle\sum_{{s}} {delta}_{{o,s}}\, "
                                   rf"{src}_{{c,{_window_index(opt['stride'])}}}",
                 layer.param("b"): rf"{grad_tex(sup('b', l))}_{{o}} = \textstyle\sum_{{s}} {delta}_{{o,s}}"}
        strided = any(st > 1 for st in opt["stride"])
        note = (r"$\star$ is cross-correlation; indices count from 1 ($s$ runs over the output positions, $k$ over "
                r"the kernel's)" + (rf"; $\tilde{{{x}}}$ is ${x}$ padded with zeros" if padded else "")
                + rf"; $\hat{{{delta}}}$ is ${delta}$" + (rf" spread out by the stride ${_size(opt['stride'], True)}$ and"
                                                         if strided else "")
                + " padded by the kernel size less 1"
                + (rf", and the correlation is cropped by the padding ${_size(opt['padding'], True)}$" if padded else "")
                + ".")
        return Backward(grads, (rf"\hat{{{delta}}} \star \operatorname{{rot180}}\left({sup('W', l)}\right)^\top",), (note,))


def _window_index(stride) -> str:
    """The input index a kernel offset k meets at output position s (1-based, per axis where the
    strides differ): s + k - 1 for stride 1, 2(s - 1) + k for stride 2."""
    if len(set(stride)) == 1:
        st = stride[0]
        return "s + k - 1" if st == 1 else rf"{st}(s - 1) + k"
    return ", ".join(f"s_{i} + k_{i} - 1" if st == 1 else rf"{st}(s_{i} - 1) + k_{i}"
                     for i, st in enumerate(stride, 1))


def _size(values, tex=False) -> str:
    """3 for (3, 3), 3×5 for (3, 5)."""
    return (r" \times ".join if tex else "×".join)(map(str, values)) if len(set(values)) > 1 else str(values[0])


CONV1D, CONV2D = Conv(1), Conv(2)
