"""``batchnorm`` and ``layernorm``: x̂ = (x − μ)/√(var + ε), z = γ x̂ + β.

* batchnorm (``F.batch_norm(..., training=True)``): μ and var per feature or channel, over the batch
  (and the positions, for (C, L) or (C, H, W) inputs), var the BIASED batch variance; γ, β of shape
  (C,). Its outputs couple the examples of a batch, so it needs a batch of at least 2 examples. A
  trainer keeps running statistics (momentum 0.1, the UNBIASED variance, as PyTorch) for
  ``predict``, which normalises with them.
* layernorm (``F.layer_norm(x, x.shape[1:])``): μ and var per example, over all its values; γ, β
  of the input's shape.

Backward in compact form (proven equal to SymPy's derivative of the element expressions, with μ
and var depending on x, in tests/test_layer_rules.py), with g = γ·δ and means over the same axes:

    ∂C/∂x = (g − mean(g) − x̂ · mean(g · x̂)) / √(var + ε),   ∂C/∂γ = Σ δ·x̂,   ∂C/∂β = Σ δ
"""
import math

import numpy as np
import sympy

from ..arrayops import Kernel
from ..document import Display, Para
from .base import (Backward, Field, LayerError, LayerKind, Slip, fraction, index_tuples, kernel, positive_number,
                   rule_and_tables, with_options)
from .dense import grad_tex, sup


@kernel()
def kept(shape, axes):
    """``shape`` with ``axes`` kept as 1s: where a statistic over them broadcasts back."""
    return tuple(1 if i in axes else m for i, m in enumerate(shape))


@kernel()
def axis_sum(delta, axes, out=None):
    """Σ over ``axes``: β's gradient. Over leading or trailing axes (and batch norm's examples and
    positions, (0, 2, ...)) as products with a ones vector: NumPy's reduction over the first axis
    of a (256, 256) array, or over the examples and positions at once, runs several times slower."""
    axes, nd, k = tuple(axes), delta.ndim, len(axes)
    if out is not None and not out.flags.c_contiguous:
        return delta.sum(axis=axes, out=out)
    if axes == (0,):                                    # the common case first: over the examples
        total = np.dot(np.ones(len(delta), delta.dtype), delta.reshape(len(delta), -1),
                       out=None if out is None else out.reshape(-1))
        return total.reshape(delta.shape[1:]) if out is None else out
    if nd > 2 and axes == (0, *range(2, nd)):           # per channel: the positions, then the examples
        n, c = delta.shape[:2]
        per = delta.reshape(n * c, -1) @ np.ones(delta[0, 0].size, delta.dtype)
        return np.dot(np.ones(n, delta.dtype), per.reshape(n, c), out=out)
    if axes == tuple(range(k)):
        rest = delta.shape[k:]
        flat = delta.reshape(-1, delta[(0,) * k].size)
        total = np.dot(np.ones(len(flat), delta.dtype), flat, out=None if out is None else out.reshape(-1))
    elif axes == tuple(range(nd - k, nd)):
        rest = delta.shape[:nd - k]
        flat = delta.reshape(-1, delta[(0,) * (nd - k)].size)
        total = np.dot(flat, np.ones(flat.shape[1], delta.dtype), out=None if out is None else out.reshape(-1))
    else:
        return delta.sum(axis=axes, out=out)
    return total.reshape(rest) if out is None else out


@kernel(axis_sum)
def norm_mean(x, axes, out=None):
    """μ: the mean over ``axes``."""
    total = axis_sum(x, axes, out=out)
    return np.divide(total, x.size // total.size, out=total)


@kernel(axis_sum, kept)
def norm_var(x, mean, axes, out=None):
    """var: the biased variance over ``axes``, about ``mean``."""
    c = x - mean.reshape(kept(x.shape, axes))
    total = axis_sum(np.multiply(c, c, out=c), axes, out=out)
    return np.divide(total, x.size // total.size, out=total)


@kernel(kept)
def norm_apply(x, mean, rstd, axes, out=None):
    """x̂ = (x − μ) · rstd, rstd = 1/√(var + ε)."""
    shape = kept(x.shape, axes)
    out = np.subtract(x, mean.reshape(shape), out=out)
    out *= rstd.reshape(shape)
    return out


@kernel()
def scale_shift(xhat, gamma, beta, out=None):
    """γ x̂ + β, γ and β laid over the axes after the example axis (from the channel axis on)."""
    shape = (1,) + gamma.shape + (1,) * (xhat.ndim - 1 - gamma.ndim)
    out = np.multiply(xhat, gamma.reshape(shape), out=out)
    out += beta.reshape(shape)
    return out


@kernel(axis_sum)
def product_sum(delta, xhat, axes, out=None):
    """Σ δ·x̂ over ``axes``: γ's gradient."""
    return axis_sum(delta * xhat, axes, out=out)


@kernel(axis_sum, kept)
def norm_input_grad(delta, xhat, rstd, gamma, axes, out=None):
    """∂C/∂x = rstd · (g − mean(g) − x̂ · mean(g·x̂)), g = γ·δ, means over ``axes``: the two mean
    terms come from μ's and var's own dependence on x. Where γ is constant along ``axes`` (batch
    norm: one γ per channel), γ comes out of the means: rstd·γ·(δ − mean(δ) − x̂·mean(δ·x̂))."""
    shape, stat = (1,) + gamma.shape + (1,) * (delta.ndim - 1 - gamma.ndim), kept(delta.shape, axes)
    count = delta.size // rstd.size
    if 1 not in axes:
        g, scale = delta, rstd.reshape(stat) * gamma.reshape(shape)
    else:
        g, scale = delta * gamma.reshape(shape), rstd.reshape(stat)
    out = np.multiply(g, xhat, out=out)                              # g·x̂, for its mean
    mean_gx = axis_sum(out, axes).reshape(stat) / count
    mean_g = axis_sum(g, axes).reshape(stat) / count
    np.multiply(xhat, mean_gx, out=out)
    np.subtract(g, out, out=out)
    out -= mean_g
    out *= scale
    return out


class Norm(LayerKind):
    params = ("gamma", "beta")
    affine = True
    kernels = ("norm_mean", "norm_var", "norm_apply", "scale_shift", "axis_sum", "product_sum", "norm_input_grad")

    def __init__(self, name: str, batch: bool):
        self.name, self.couples_batch = name, batch
        self.doc = ("training-mode batch normalization over the batch (and positions) per channel, biased "
                    "variance, as F.batch_norm(training=True); gamma, beta (C,)" if batch else
                    "normalizes each example over all its values, as F.layer_norm; gamma, beta of the input's shape")
        self.fields = (Field("eps", positive_number, 1e-5, "default 1e-5"),)
        if batch:   # the weight of each batch in the running statistics a trainer keeps, as PyTorch's
            self.fields += (Field("momentum", fraction, 0.1, "default 0.1; 0 to 1"),)

    def stat_axes(self, ndim: int) -> tuple[int, ...]:
        """The axes of a batch array (N, *shape) that μ and var reduce."""
        return (0, *range(2, ndim)) if self.couples_batch else tuple(range(1, ndim))

    def param_axes(self, ndim: int) -> tuple[int, ...]:
        """The axes γ's and β's gradients sum over."""
        return self.stat_axes(ndim) if self.couples_batch else (0,)

    def check(self, options, in_shapes):
        if not self.couples_batch and math.prod(in_shapes[0]) == 1:
            raise LayerError("type", "layernorm of a single value per example normalises it to 0; "
                                     "give it more than one")

    def param_shapes(self, layer):
        shape = layer.shape[:1] if self.couples_batch else layer.shape
        return {"gamma": shape, "beta": shape}

    def init(self, layer, prefix):
        return "ones" if prefix == "gamma" else "zeros"

    def elements(self, layer, inputs, params, data, stage):
        x, gamma, beta = inputs[0], params["gamma"], params["beta"]
        eps = sympy.Rational(repr(layer.opt["eps"]))
        if self.couples_batch:                        # x is (E, C, ...): per channel over examples and positions
            groups = [x[:, c].ravel() for c in range(x.shape[1])]
            per = lambda idx: idx[1]                  # the channel of element (n, c, ...)
        else:                                         # x is one example: one group
            groups = [x.ravel()]
            per = lambda idx: ()
        count = len(groups[0])
        shape = (len(groups),) if self.couples_batch else ()
        mean = stage("mean", r"\mu", np.array([sympy.Add(*g) / count for g in groups], dtype=object).reshape(shape),
                     per_example=not self.couples_batch)
        var = stage("var", r"\mathrm{var}",
                    np.array([sympy.Add(*[(v - mean[(i,) if shape else ()]) ** 2 for v in g]) / count
                              for i, g in enumerate(groups)], dtype=object).reshape(shape),
                    per_example=not self.couples_batch)
        xhat_defs = np.empty(x.shape, dtype=object)
        for idx in index_tuples(x.shape):
            k = per(idx)
            xhat_defs[idx] = (x[idx] - mean[k]) / sympy.sqrt(var[k] + eps)
        xhat = stage("xhat", r"\hat{x}", xhat_defs)
        z = np.empty(x.shape, dtype=object)
        for idx in index_tuples(x.shape):
            p = idx[1:2] if self.couples_batch else idx
            z[idx] = gamma[p] * xhat[idx] + beta[p]
        return z

    def forward(self, layer, inputs, params, data):
        x = inputs[0]
        axes = self.stat_axes(x.ndim)
        mean = norm_mean(x, axes)
        rstd = 1 / np.sqrt(norm_var(x, mean, axes) + layer.opt["eps"])
        return scale_shift(norm_apply(x, mean, rstd, axes), params["gamma"], params["beta"])

    def array_forward(self, layer, b, inputs, params, data, mode):
        i, x, ndim = layer.index, inputs[0], len(layer.shape) + 1
        axes, eps = self.stat_axes(ndim), sympy.Float(layer.opt["eps"])
        stat = layer.shape[:1] if self.couples_batch else ("N",)
        over = "the batch" + (" and positions" if ndim > 2 else "") if self.couples_batch else "each example"
        if mode == "eval" and self.couples_batch:
            mean, var = b.running(f"mean{i}", rf"\mu^{{({i})}}"), b.running(f"var{i}", rf"\mathrm{{var}}^{{({i})}}")
        else:
            mean = b.add(f"mean{i}", Kernel("norm_mean", x, axes), rf"\mu^{{({i})}} = \operatorname{{mean}}_{{\text{{{over}}}}} {b.tex(x)}", stat)
            var = b.add(f"var{i}", Kernel("norm_var", x, mean, axes),
                        rf"\mathrm{{var}}^{{({i})}} = \operatorname{{mean}}_{{\text{{{over}}}}} \left({b.tex(x)} - \mu^{{({i})}}\right)^2", stat)
            if self.couples_batch and mode == "train":
                per, momentum = math.prod(layer.shape[1:]), layer.opt["momentum"]
                b.stat(f"mean{i}", mean, stat, per, momentum)
                b.stat(f"var{i}", var, stat, per, momentum, unbiased=True)
        rstd = b.add(f"rstd{i}", 1 / sympy.sqrt(var + eps), rf"r^{{({i})}} = 1 / \sqrt{{\mathrm{{var}}^{{({i})}} + \epsilon}}", stat)
        xhat = b.add(f"xhat{i}", Kernel("norm_apply", x, mean, rstd, axes),
                     rf"\hat{{x}}^{{({i})}} = \left({b.tex(x)} - \mu^{{({i})}}\right) r^{{({i})}}", ("N", *layer.shape))
        return Kernel("scale_shift", xhat, params["gamma"], params["beta"]), None

    def array_backward(self, layer, b, delta, inputs, params, data, need):
        i, ndim = layer.index, len(layer.shape) + 1
        xhat, tex = b.symbol(f"xhat{i}"), self.latex_backward(layer, b.tex(delta), [b.tex(inputs[0])])
        p_axes = self.param_axes(ndim)
        b.grad(layer.param("gamma"), Kernel("product_sum", delta, xhat, p_axes), tex.grads[layer.param("gamma")])
        b.grad(layer.param("beta"), Kernel("axis_sum", delta, p_axes), tex.grads[layer.param("beta")])
        if not need[0]:
            return [None]
        return [(Kernel("norm_input_grad", delta, xhat, b.symbol(f"rstd{i}"), params["gamma"], self.stat_axes(ndim)),
                 tex.inputs[0])]

    def explain_forward(self, lm, sheet):
        layer, l, n = lm.layer, lm.index, sheet.n
        x = sheet.input_tex(lm)
        over = (f"per channel, over the batch's {sheet.N} examples" + (" and every position" if len(layer.shape) > 1 else "")
                + ": the batch statistics, which couple the examples" if self.couples_batch
                else "per example, over all its values")
        mean, var, xhat = (lm.stage(s).symbols for s in ("mean", "var", "xhat"))
        first = (0,) if self.couples_batch else ()
        pick = (lambda arr: arr[first]) if self.couples_batch else (lambda arr: sheet.at(arr, 0))   # noqa: E731
        stat = (lambda name: sheet.stage(lm, name))
        out = [Display((self.latex_forward(layer, f"z^{{({l})}}", [x]),)),
               Para(f"The mean $\\mu^{{({l})}}$ and the (biased) variance $\\mathrm{{var}}^{{({l})}}$, {over}"
                    + (" (channel 1 written out):" if self.couples_batch else " (example 1 written out):")),
               Display(tuple(sheet.mean_lines(pick(mean)) + sheet.mean_lines(pick(var))))]
        per = self.couples_batch
        out += sheet.tables("\\mu^{(%d)}" % l, stat("mean"), f"mean{l}", per_example=not per)
        out += sheet.tables("\\mathrm{var}^{(%d)}" % l, stat("var"), f"var{l}", per_example=not per)
        at0 = (0,) * (xhat.ndim - 1)
        e, u = sheet.at(xhat, 0, at0), sheet.at(lm.sources[0], 0, at0)
        m, v = pick(mean), pick(var)
        eps = _tex_number(layer.opt["eps"])
        out += [Para(f"Then $\\hat{{x}} = ({x} - \\mu)/\\sqrt{{\\mathrm{{var}} + \\epsilon}}$, one element written out:"),
                Display((rf"{sheet.names[e]} &= \frac{{{sheet.names[u]} - {sheet.names[m]}}}{{\sqrt{{{sheet.names[v]} + \epsilon}}}}"
                         rf" = \frac{{{n.par(sheet.val(u))} - {n.par(sheet.val(m))}}}{{\sqrt{{{n.tex(sheet.val(v))} + {eps}}}}} "
                         f"{n.eq(sheet.val(e))}",))]
        out += sheet.tables("\\hat{x}^{(%d)}" % l, stat("xhat"), f"xhat{l}")
        z = sheet.at(lm.stage("z").symbols, 0, at0)
        c = at0[:1] if self.couples_batch else at0
        g, b = lm.params[layer.param("gamma")][c], lm.params[layer.param("beta")][c]
        out += [Para(r"and $z = \gamma \hat{x} + \beta$:"),
                Display((f"{sheet.names[z]} &= {sheet.names[g]} {sheet.names[e]} + {sheet.names[b]} = "
                         rf"{n.par(sheet.val(g))} \times {n.par(sheet.val(e))} {'-' if sheet.val(b) < 0 else '+'} "
                         f"{n.tex(abs(sheet.val(b)))} {n.eq(sheet.val(z))}",))]
        return out

    def explain_backward(self, lm, sheet, wanted):
        layer, l, out = lm.layer, lm.index, []
        rule = self.latex_backward(layer, f"\\delta^{{({l})}}", [sheet.input_tex(lm)])
        for prefix in ("gamma", "beta"):
            name = layer.param(prefix)
            if name not in wanted:
                continue
            steps = [st for st in sheet.d.gradients() if st.param == name]
            out += [Display((rule.grads[name],)), Display(tuple(sheet.step_lines(steps[0])))]
            out += sheet.tables(f"\\partial C/\\partial {_gamma_beta(l)[prefix == 'beta']}", sheet.values.gradients[name],
                                f"grad.{name}", per_example=False)
        if out:
            out.insert(0, Para("The scale and shift: each gradient sums over "
                               + ("the batch" + (" and the positions" if len(layer.shape) > 1 else "") if self.couples_batch
                                  else "the examples") + ":"))
        return out

    def compact(self, lm, sheet):
        """The compact backward form's pieces, from one pass's numbers: g = γ·δ, its mean ḡ, the
        mean of g·x̂, and ∂C/∂x = (g − ḡ − x̂·mean(g·x̂)) / √(var + ε)."""
        layer = lm.layer
        delta, xhat, var = sheet.grad(lm, "z"), sheet.stage(lm, "xhat"), sheet.stage(lm, "var")
        gamma = sheet.param(layer.param("gamma"))
        axes = self.stat_axes(delta.ndim)
        g = delta * gamma.reshape((1,) + gamma.shape + (1,) * (delta.ndim - 1 - gamma.ndim))
        gbar, gx = g.mean(axis=axes, keepdims=True), (g * xhat).mean(axis=axes, keepdims=True)
        rstd = 1 / np.sqrt(np.expand_dims(var, axes) + layer.opt["eps"])
        return g, gbar, gx, rstd * (g - gbar - xhat * gx)

    def explain_input_gradient(self, lm, sheet, k, part=None):
        layer, n = lm.layer, sheet.n
        g, gbar, gx, _ = self.compact(lm, sheet)
        xhat, var = sheet.stage(lm, "xhat"), sheet.stage(lm, "var")
        first, src = (0,) * g.ndim, layer.sources[0]
        index = ",".join(["1"] * (g.ndim if sheet.net.batched else g.ndim - 1))
        written = (rf"\frac{{\partial C}}{{\partial a^{{({src})}}_{{{index}}}}} "
                   rf"&= \frac{{1}}{{\sqrt{{{n.tex(var.ravel()[0])} + {_tex_number(layer.opt['eps'])}}}}}\left({n.tex(g[first])} "
                   rf"- {n.par(gbar.ravel()[0])} - {n.par(xhat[first])} \times {n.par(gx.ravel()[0])}\right) "
                   rf"{n.eq(sheet.passed(lm, k, part)[first])}")
        coupling = (r"every example's gradient depends on the whole batch's $\delta$ through the two means: the batch "
                    "coupling" if self.couples_batch else r"each example's gradient depends on its own $\delta$ only")
        rule = rule_and_tables(self, lm, sheet, k, part)
        out = rule[:2] + [Para(r"In numbers, with $g = \gamma \odot \delta$: $\overline{g}$ and "
                               rf"$\overline{{g \odot \hat{{x}}}}$ are means like $\mu$'s, so {coupling}:")]
        for tex, arr in ((r"\overline{g}", gbar), (r"\overline{g \odot \hat{x}}", gx)):
            arr = arr.reshape(arr.shape[1:2]) if self.couples_batch else arr.reshape(arr.shape[0])
            out += sheet.tables(tex, arr, None, per_example=not self.couples_batch)
        out += [Para("The first element" + (" (example 1, channel 1)" if self.couples_batch else " (example 1)") + ":"),
                Display((written,))]
        return out + rule[2:]

    def count(self, layer) -> int:
        """How many values each mean and variance is over, for one example (batch norm: per channel)."""
        return math.prod(layer.shape[1:]) if self.couples_batch else math.prod(layer.shape)

    def slips(self, layer, ctx):
        name, l = ("batch norm" if self.couples_batch else "layer norm"), layer.index
        n = len(ctx.inputs[0]) * self.count(layer) if self.couples_batch else self.count(layer)
        stats = {st: {idx: s for idx, s in np.ndenumerate(ctx.stages[st][0])} for st in ("mean", "var")}
        unbiased = f"the unbiased variance (divided by n − 1 = {n - 1}) used in layer {l}; {name}'s is the biased one (÷ {n})"
        eps = f"ε left out of √(var + ε) in layer {l}"
        return [Slip({"inputs": (24, f"{name}'s backward without the terms through μ and var (layer {l}: "
                                     "the statistics taken as constants)")},
                     lambda: stats),
                ctx.scaled({"forward": (34, unbiased), "inputs": (34, unbiased)}, sympy.Rational(n, n - 1), stage="var"),
                ctx.slip({"forward": (35, eps), "inputs": (35, eps)}, layer=with_options(layer, eps=0.0), stages=("xhat",))]

    def latex_forward(self, layer, out, ins):
        i = layer.index
        G, B = _gamma_beta(i)
        over = r"\text{over the batch" + (r" and positions}" if len(layer.shape) > 1 else "}") if self.couples_batch \
            else r"\text{over each example}"
        return (rf"\hat{{x}}^{{({i})}} = \frac{{{ins[0]} - \mu^{{({i})}}}}{{\sqrt{{\mathrm{{var}}^{{({i})}} + \epsilon}}}},\ "
                rf"{out} = {G} \odot \hat{{x}}^{{({i})}} + {B} \quad "
                rf"(\mu, \mathrm{{var}}\ {over},\ \epsilon = {_tex_number(layer.opt['eps'])})")

    def latex_backward(self, layer, delta, ins):
        i = layer.index
        G, B = _gamma_beta(i)
        over = "the batch" + (" and positions" if len(layer.shape) > 1 else "") if self.couples_batch else "each example"
        return Backward(
            {layer.param("gamma"): rf"{grad_tex(G)} = \textstyle\sum {delta} \odot \hat{{x}}^{{({i})}}",
             layer.param("beta"): rf"{grad_tex(B)} = \textstyle\sum {delta}"},
            (rf"\frac{{1}}{{\sqrt{{\mathrm{{var}}^{{({i})}} + \epsilon}}}}\left(g - \overline{{g}} - \hat{{x}}^{{({i})}} "
             rf"\odot \overline{{g \odot \hat{{x}}^{{({i})}}}}\right)",),
            (rf"$g = {G} \odot {delta}$; $\overline{{\cdot}}$ is the mean over {over}, as for $\mu^{{({i})}}$; "
             r"the two mean terms are the paths through $\mu$ and $\mathrm{var}$, which depend on every value they are over.",))


def _gamma_beta(i: int) -> tuple[str, str]:
    return sup(r"\gamma", i), sup(r"\beta", i)


def _tex_number(x: float) -> str:
    mant, _, exp = f"{x:g}".partition("e")
    return rf"{mant} \times 10^{{{int(exp)}}}" if exp else mant


BATCHNORM, LAYERNORM = Norm("batchnorm", batch=True), Norm("layernorm", batch=False)
