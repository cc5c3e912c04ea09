"""``maxpool1d``, ``maxpool2d``, ``avgpool1d``, ``avgpool2d``: windows of ``kernel`` with ``stride``
(default: the kernel), no padding; windows that do not fit are dropped (floor), as PyTorch's.

    max:  a[c, s] = max_k x[c, s·stride + k]   — its gradient goes to the FIRST maximum of the window
          in row-major order, as PyTorch routes it (the element expression is a Piecewise whose
          branches are tried in that order, so SymPy's derivative says the same at ties);
    avg:  a[c, s] = (1/|K|) Σ_k x[c, s·stride + k] — every element of the window gets δ/|K|.
"""
import functools
import math

import numpy as np
import sympy

from ..arrayops import Kernel
from dataclasses import replace

from ...writers.document import Display, Para, Table
from .base import (Backward, Slip, Field, LayerError, LayerKind, index_tuples, ints, kernel, rule_and_tables, shape_text, with_options)
from .conv import _size, batch_last, offset_view, windows


@kernel(batch_last, offset_view)
def window_views(a, size, stride, s_out, ws, key):
    """The view of ``a`` (N, C, *S) at each kernel offset, in row-major order; when ``a`` is stored
    with the examples innermost, of that storage, (C, *S_out, N), so that NumPy runs through memory
    in order. Kept in ``ws[key]`` while ``a`` is the same array."""
    got = ws.get(key)
    if got is not None and got[0] is a:
        return got[1]
    s = batch_last(a)
    views = [offset_view(a, off, stride, s_out) if s is None else
             s[(slice(None),) + tuple(slice(q, q + t * (m - 1) + 1, t) for q, t, m in zip(off, stride, s_out))]
             for off in np.ndindex(*size)]
    ws[key] = (a, views)
    return views


@kernel(offset_view, window_views, batch_last)
def maxpool_forward(x, size, stride, out=None, ws=None):
    """The maximum of each window: x (N, C, *S) -> (N, C, *S_out), element-wise maxima of the
    strided views of each kernel offset (a loop over the offsets, not over the windows). With
    ``ws`` (a generated trainer's per-layer dict), x and the maxima are kept there for
    :func:`maxpool_backward`, and the views of x too (over its storage, where x and ``out`` are
    stored with the examples innermost)."""
    s_out = tuple((m - k) // t + 1 for m, k, t in zip(x.shape[2:], size, stride))
    if ws is not None and out is not None and x.dtype != object and batch_last(x) is not None \
            and batch_last(out) is not None:
        views, top = window_views(x, size, stride, s_out, ws, "views"), batch_last(out)
        views = [views[0]] * 2 if len(views) == 1 else views
        np.maximum(views[0], views[1], out=top)
        for v in views[2:]:
            np.maximum(top, v, out=top)
        ws["x"], ws["top"] = x, out
        return out
    offsets = list(np.ndindex(*size))
    first = offset_view(x, offsets[0], stride, s_out)
    if len(offsets) == 1:
        out = first.copy() if out is None else np.copyto(out, first) or out
    else:
        out = np.maximum(first, offset_view(x, offsets[1], stride, s_out), out=out)
        for off in offsets[2:]:
            np.maximum(out, offset_view(x, off, stride, s_out), out=out)
    if ws is not None:
        ws["x"], ws["top"], ws["views"] = x, out, None
    return out


@kernel(maxpool_forward, offset_view, window_views, batch_last)
def maxpool_backward(delta, x, size, stride, out=None, ws=None):
    """∂C/∂x: each window's δ to its first maximum in row-major order (PyTorch's choice at ties):
    the kernel offsets in that order, each taking the windows whose maximum it holds and that no
    earlier offset took. With ``ws``: the maxima :func:`maxpool_forward` kept there for this same
    x (the forward pass is not run again), the masks kept there between calls, and every array
    taken in its storage order where they are all stored with the examples innermost."""
    s_out = delta.shape[2:]
    kept = ws is not None and ws.get("x") is x
    top = ws["top"] if kept else maxpool_forward(x, size, stride)
    dx = np.zeros(x.shape, delta.dtype) if out is None else out
    fast = kept and ws.get("views") is not None and ws["views"][0] is x and batch_last(dx) is not None \
        and batch_last(top) is not None and delta.dtype != object
    if fast:                                          # storage order: (C, *S, N)
        xv, dv = ws["views"][1], window_views(dx, size, stride, s_out, ws, "dviews")
        top, dx_all = batch_last(top), batch_last(dx)
    else:
        offsets = list(np.ndindex(*size))
        xv, dv = [offset_view(x, off, stride, s_out) for off in offsets], [offset_view(dx, off, stride, s_out) for off in offsets]
        dx_all = dx
    if out is not None:
        dx_all.fill(0)                                # (dx[...] = 0 ran ~20x slower on a batch-last array)
    masks = ws.get("masks") if ws is not None else None
    if masks is None or masks[0].shape != top.shape or masks[2].dtype != delta.dtype:
        masks = (np.empty(top.shape, bool), np.empty(top.shape, bool), np.empty(top.shape, delta.dtype))
        if ws is not None:
            ws["masks"] = masks
    hit, free, share = masks                          # free: windows whose maximum no offset has taken yet
    if fast:
        d = batch_last(delta)
        delta = d if d is not None else np.copyto(share, delta.transpose(tuple(range(1, delta.ndim)) + (0,))) or share
    disjoint = all(t >= k for t, k in zip(stride, size))
    for i, (at_x, at) in enumerate(zip(xv, dv)):
        np.equal(at_x, top, out=hit)
        if i:
            np.logical_and(hit, free, out=hit)
        if delta.dtype == object:                     # a SymPy δ times a bool fails: 0/1 as numbers
            np.add(at, np.multiply(delta, hit.view(np.uint8)), out=at)
        elif disjoint:                                # δ times the 0/1 mask (copyto's where= ran ~30x slower)
            np.multiply(delta, hit, out=at)
        elif delta is share:
            np.add(at, np.multiply(delta, hit), out=at)
        else:
            np.add(at, np.multiply(delta, hit, out=share), out=at)
        if i + 1 < len(xv):
            if i:
                np.greater(free, hit, out=free)       # free and not hit
            else:
                np.logical_not(hit, out=free)
    return dx


@kernel(offset_view)
def avgpool_forward(x, size, stride, out=None):
    """The mean of each window: the views of each kernel offset summed, then divided by |K|."""
    s_out = tuple((m - k) // t + 1 for m, k, t in zip(x.shape[2:], size, stride))
    offsets = list(np.ndindex(*size))
    total = offset_view(x, offsets[0], stride, s_out)
    out = np.add(total, offset_view(x, offsets[1], stride, s_out), out=out) if len(offsets) > 1 else \
        (total.copy() if out is None else np.copyto(out, total) or out)
    for off in offsets[2:]:
        np.add(out, offset_view(x, off, stride, s_out), out=out)
    return np.divide(out, len(offsets), out=out)


@kernel(offset_view)
def avgpool_backward(delta, shape, size, stride, out=None):
    """∂C/∂x: δ/|K| to every element of each window (summed where windows overlap)."""
    dx = np.zeros(delta.shape[:2] + tuple(shape), delta.dtype) if out is None else out
    if out is not None:
        dx.fill(0)                                    # (dx[...] = 0 ran ~20x slower on a batch-last array)
    share = delta / np.prod(size)
    for off in np.ndindex(*size):
        at = offset_view(dx, off, stride, delta.shape[2:])
        np.add(at, share, out=at)
    return dx


class Pool(LayerKind):
    def __init__(self, mode: str, d: int):
        self.mode, self.d = mode, d
        self.name = f"{mode}pool{d}d"
        self.doc = (f"{'maximum' if mode == 'max' else 'mean'} of each window, as torch.nn.functional."
                    f"{mode}_pool{d}d; no padding, floor" + ("; gradient to the first maximum" if mode == "max" else ""))
        self.fields = (Field("kernel", ints(d, 1), doc="an int or a list"),
                       Field("stride", ints(d, 1), None, "default: the kernel"))
        self.kernels = (f"{mode}pool_forward", f"{mode}pool_backward")

    def normalize(self, options):
        return {**options, "stride": options["stride"] or options["kernel"]}

    def check(self, options, in_shapes):
        shape = in_shapes[0]
        if len(shape) != self.d + 1:
            raise LayerError("type", f"{self.name} needs a (channels, {'length' if self.d == 1 else 'height, width'}) "
                                     f"input, got shape {shape_text(shape)}")
        if any(k > m for k, m in zip(options["kernel"], shape[1:])):
            raise LayerError("kernel", f"{_size(options['kernel'])} is larger than the input {_size(shape[1:])}")

    def output_shape(self, options, in_shapes):
        return (in_shapes[0][0], *((m - k) // s + 1 for m, k, s in
                                   zip(in_shapes[0][1:], options["kernel"], options["stride"])))

    def elements(self, layer, inputs, params, data, stage):
        x, (k, stride) = inputs[0], (layer.opt["kernel"], layer.opt["stride"])
        out = np.empty(layer.shape, dtype=object)
        for c, *pos in index_tuples(layer.shape):
            vals = [x[(c, *(p * s + q for p, s, q in zip(pos, stride, off)))] for off in np.ndindex(*k)]
            out[(c, *pos)] = _first_max(vals) if self.mode == "max" else sympy.Add(*vals) / len(vals)
        return out

    def forward(self, layer, inputs, params, data):
        fn = maxpool_forward if self.mode == "max" else avgpool_forward
        return fn(inputs[0], layer.opt["kernel"], layer.opt["stride"])

    def array_forward(self, layer, b, inputs, params, data, mode):
        state = f"pool{layer.index}" if self.mode == "max" else None   # the maxima, kept for the backward pass
        return Kernel(f"{self.mode}pool_forward", inputs[0], layer.opt["kernel"], layer.opt["stride"], state=state), None

    def array_backward(self, layer, b, delta, inputs, params, data, need):
        if not need[0]:
            return [None]
        opt = layer.opt
        first = inputs[0] if self.mode == "max" else layer.in_shapes[0][1:]
        state = f"pool{layer.index}" if self.mode == "max" else None
        return [(Kernel(f"{self.mode}pool_backward", delta, first, opt["kernel"], opt["stride"], state=state),
                 self.latex_backward(layer, b.tex(delta), [b.tex(inputs[0])]).inputs[0])]

    def branches(self, layer, inputs):
        if self.mode != "max":
            return None
        x, size, stride = inputs[0], layer.opt["kernel"], layer.opt["stride"]
        s_out = tuple((m - k) // t + 1 for m, k, t in zip(x.shape[2:], size, stride))
        return np.argmax(np.stack([offset_view(x, off, stride, s_out) for off in np.ndindex(*size)]), axis=0)

    @property
    def kink_note(self):
        return ("the maximum of a window whose elements tie (to within the step): the gradient goes to the "
                "first in row-major order, as PyTorch's" if self.mode == "max" else "")

    def window(self, layer, out) -> list[tuple]:
        """The input elements of output element ``out`` (channel first), in row-major order."""
        c, *pos = out
        return [(c, *(p * s + q for p, s, q in zip(pos, layer.opt["stride"], off))) for off in np.ndindex(*layer.opt["kernel"])]

    def explain_forward(self, lm, sheet):
        layer, n = lm.layer, sheet.n
        x, a = sheet.inputs(lm)[0], sheet.stage(lm, "a")[0]
        what = "the maximum (the first, in row-major order, where several are equal)" if self.mode == "max" else "the mean"
        outs = list(np.ndindex(*layer.shape))
        shown = outs if len(outs) <= 12 else outs[:9] + [None] + outs[-2:]
        rows = []
        for out in shown:
            if out is None:
                rows.append(("⋮",) * 4)
                continue
            window = self.window(layer, out)
            values = [x[w] for w in window]
            win = window[int(np.argmax(values))]
            result = f"${n.tex(a[out])}$, from {_at(win)}" if self.mode == "max" else f"${n.tex(a[out])}$"
            rows.append((_at(out), ", ".join(_at(w) for w in window), ", ".join(f"${n.tex(v)}$" for v in values), result))
        head = "maximum (where it is)" if self.mode == "max" else f"mean (÷ {len(window)})"
        return [Display((self.latex_forward(layer, f"a^{{({lm.index})}}", [sheet.input_tex(lm)]),)),
                Para(f"Each window of ${sheet.input_tex(lm)}$ (kernel {'×'.join(map(str, layer.opt['kernel']))}, stride "
                     f"{_size(layer.opt['stride'])}; elements as (channel, {'row, column' if self.d == 2 else 'position'}), "
                     f"1-based) gives {what}"
                     + (", for example 1" if sheet.N > 1 else "") + ":"),
                Table(("output", "window", "values", head), tuple(rows))]

    def explain_input_gradient(self, lm, sheet, k, part=None):
        layer, n = lm.layer, sheet.n
        x, g = sheet.inputs(lm)[0], sheet.grad(lm, "a")[0]
        outs = list(np.ndindex(*layer.shape))
        shown = outs if len(outs) <= 12 else outs[:9] + [None] + outs[-2:]
        rows = []
        for out in shown:
            if out is None:
                rows.append(("⋮",) * 3)
                continue
            window = self.window(layer, out)
            if self.mode == "max":
                goes = f"all of it to {_at(window[int(np.argmax([x[w] for w in window]))])}; 0 to the rest"
            else:
                goes = f"${n.tex(g[out] / len(window))}$ to each of " + ", ".join(_at(w) for w in window)
            rows.append((_at(out), f"${n.tex(g[out])}$", goes))
        out = rule_and_tables(self, lm, sheet, k, part)
        out[2:2] = [Para("Where each window's gradient goes" + (" (example 1)" if sheet.N > 1 else "")
                         + "; an element in several windows adds up what each sends it:"),
                    Table(("output", f"$\\partial C/\\partial a^{{({lm.index})}}$", "goes to"), tuple(rows))]
        return out

    def slips(self, layer, ctx):
        l, K = layer.index, math.prod(layer.opt["kernel"])
        if K == 1:
            return []
        mean = replace(layer, kind=Pool("avg", self.d))          # the same windows, avg-pool's rule
        if self.mode == "avg":
            return [ctx.slip({"inputs": (26, f"the avg-pool gradient of layer {l} not divided by the window size {K}"),
                              "forward": (33, f"the window's sum taken for its mean (not divided by {K})")},
                             then=lambda d: d * K)]
        head = f"the max-pool gradient of layer {l}"
        x = ctx.inputs[0]

        def every_maximum():               # each window's maximum counted once per tied element
            return {ctx.out: {out: _every_max([x[w] for w in self.window(layer, out)]) for out in np.ndindex(*layer.shape)}}
        return [Slip({"inputs": (25, f"{head} sent to every tied maximum")}, functools.cache(every_maximum)),
                ctx.slip({"inputs": (26, f"{head} sent to every element of the window")}, layer=mean, then=lambda d: d * K),
                ctx.slip({"inputs": (26, f"{head} averaged over the window (δ/{K} to each element)"),
                          "forward": (33, "the window's mean taken for its maximum")}, layer=mean),
                ctx.slip({"inputs": (27, f"{head} sent to the wrong element (the window's first, not its maximum)")},
                         layer=with_options(layer, kernel=(1,) * self.d)),
                ctx.slip({"inputs": (28, f"{head} sent to the wrong element (the window's smallest)")},
                         inputs=[-ctx.inputs[0]], then=lambda d: -d)]

    def text_local_derivative(self, layer):
        return "1 if {x} is its window's first maximum, else 0" if self.mode == "max" else None

    def latex_forward(self, layer, out, ins):
        k, s = r" \times ".join(map(str, layer.opt["kernel"])), _size(layer.opt["stride"], True)   # 2 × 2 windows
        op = r"\max" if self.mode == "max" else r"\operatorname{mean}"
        return rf"{out} = {op}_{{{k}\ \text{{windows}}}} {ins[0]} \quad (\text{{stride }} {s})"

    def latex_backward(self, layer, delta, ins):
        if self.mode == "max":
            return Backward({}, (rf"\operatorname{{route}}({delta})",),
                            (rf"$\operatorname{{route}}$: each window's ${delta}$ goes to its first maximum (in row-major "
                             "order, as PyTorch breaks ties); the window's other elements get 0.",))
        k = math.prod(layer.opt["kernel"])
        return Backward({}, (rf"\operatorname{{spread}}({delta}) / {k}",),
                        (rf"$\operatorname{{spread}}$: each window's ${delta}$ goes to all {k} of its elements, "
                         "summed where windows overlap.",))


def _at(index) -> str:
    """An element as the tables name it, 1-based: (0, 1, 2) -> "(1, 2, 3)"."""
    return "(" + ", ".join(str(i + 1) for i in index) + ")"


def _every_max(vals):
    """A window's maximum in a form whose derivative sends δ to EVERY element equal to it: the sum,
    over the elements, of each where it is >= all the others (the slip of a tie routed to all)."""
    near = sympy.Rational(1, 10**9)          # equal to within float noise: computed values that tie
    return sympy.Add(*[sympy.Piecewise((v, sympy.And(*[v - w >= -near * (sympy.Abs(v) + sympy.Abs(w))
                                                        for j, w in enumerate(vals) if j != i])), (0, True))
                       for i, v in enumerate(vals)])


def _first_max(vals):
    """max(vals) as a Piecewise tried in order: value i where it is >= every later value, so the
    first of several equal maxima wins — and SymPy's derivative routes δ to it."""
    if len(vals) == 1:
        return vals[0]
    if len(set(vals)) == len(vals) and all(v.is_Symbol and v.is_real for v in vals):
        # distinct real symbols: no condition can be decided, so SymPy's evaluation (~20 ms a
        # window, re-proving each condition) returns these nodes, each in its canonical form
        # (b >= a as a <= b); build them so (tests/test_templates.py holds them equal)
        ge = lambda v, w: sympy.GreaterThan(v, w, evaluate=False).canonical
        branches = [(v, sympy.And(*[ge(v, w) for w in vals[i + 1:]], evaluate=False) if i < len(vals) - 2
                     else ge(v, vals[-1])) for i, v in enumerate(vals[:-1])]
        return sympy.Piecewise(*branches, (vals[-1], True), evaluate=False)
    branches = [(v, sympy.And(*[v >= w for w in vals[i + 1:]])) for i, v in enumerate(vals[:-1])]
    return sympy.Piecewise(*branches, (vals[-1], True))


MAXPOOL1D, MAXPOOL2D, AVGPOOL1D, AVGPOOL2D = Pool("max", 1), Pool("max", 2), Pool("avg", 1), Pool("avg", 2)
