"""``batchnorm`` and ``layernorm``: x̂ = (x − μ)/√(var + ε), z = γ x̂ + β.

* batchnorm (``F.batch_norm(..., training=True)``): μ and var per feature or channel, over the batch
  (and the positions, for (C, L) or (C, H, W) inputs), var the BIASED batch variance; γ, β of shape
  (C,). Its outputs couple the examples of a batch, so it needs a batch of at least 2 examples. A
  trainer keeps running statistics (momentum 0.1, the UNBIASED variance, as PyTorch) for
  ``predict``, which normalises with them.
* layernorm, ``over = "all"`` (the default; ``F.layer_norm(x, x.shape[1:])``): μ and var per
  example, over all its values; γ, β of the input's shape.
* layernorm, ``over = "last"`` (``F.layer_norm(x, (d,))``, a transformer's): μ and var per position,
  over the last axis (the d features of each step of a (T, d) input); γ, β of shape (d,), their
  gradients summed over the examples and the positions.

Backward in compact form (proven equal to SymPy's derivative of the element expressions, with μ
and var depending on x, in tests/test_layer_rules.py), with g = γ·δ and means over the same axes:

    ∂C/∂x = (g − mean(g) − x̂ · mean(g · x̂)) / √(var + ε),   ∂C/∂γ = Σ δ·x̂,   ∂C/∂β = Σ δ
"""
import math

import numpy as np
import sympy

from ..arrayops import Kernel
from ...errors import shown
from .base import Field, LayerError, LayerKind, Slip, fraction, index_tuples, kernel, positive_number, with_options


def choice(*allowed):
    """A field parser accepting one of the strings ``allowed``."""
    def parse(value):
        if value not in allowed:
            raise ValueError("expected " + " or ".join(f'"{a}"' for a in allowed) + f", got {shown(value)}")
        return value
    return parse
from .norm_text import NormText


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
    stat, count = kept(delta.shape, axes), delta.size // rstd.size
    if 0 in axes:           # batch norm: γ per channel (axis 1)
        g, scale = delta, rstd.reshape(stat) * gamma.reshape((1,) + gamma.shape + (1,) * (delta.ndim - 1 - gamma.ndim))
    else:                   # layer norm: γ over the normalised axes, the last ones
        g, scale = delta * gamma.reshape((1,) * (delta.ndim - gamma.ndim) + gamma.shape), rstd.reshape(stat)
    out = np.multiply(g, xhat, out=out)                              # g·x̂, for its mean
    mean_gx = axis_sum(out, axes).reshape(stat) / count
    mean_g = axis_sum(g, axes).reshape(stat) / count
    np.multiply(xhat, mean_gx, out=out)
    np.subtract(g, out, out=out)
    out -= mean_g
    out *= scale
    return out


class Norm(NormText, LayerKind):
    params = ("gamma", "beta")
    affine = True
    kernels = ("norm_mean", "norm_var", "norm_apply", "scale_shift", "axis_sum", "product_sum", "norm_input_grad")

    def __init__(self, name: str, batch: bool):
        self.name, self.couples_batch = name, batch
        self.cancels_bias = batch           # the batch mean of each channel moves with its bias
        self.doc = ("training-mode batch normalization over the batch (and positions) per channel, biased "
                    "variance, as F.batch_norm(training=True); gamma, beta (C,)" if batch else
                    "normalizes each example over all its values, as F.layer_norm(x, x.shape[1:]); gamma, beta of the "
                    "input's shape; over = \"last\": each position over the last axis, as F.layer_norm(x, (d,)); "
                    "gamma, beta (d,)")
        self.fields = (Field("eps", positive_number, 1e-5, "default 1e-5"),)
        if not batch:   # over each example's values, or each position's features (a transformer's)
            self.fields += (Field("over", choice("all", "last"), "all",
                                  'default "all"; "last": per position over the last axis, gamma, beta (d,)'),)
        if batch:   # the weight of each batch in the running statistics a trainer keeps, as PyTorch's
            self.fields += (Field("momentum", fraction, 0.1, "default 0.1; 0 to 1"),)

    @staticmethod
    def last(layer) -> bool:
        """Whether a layer norm normalises each position over the last axis (``over = "last"``)."""
        return layer.opt.get("over") == "last"

    def stat_axes(self, ndim: int, last: bool = False) -> tuple[int, ...]:
        """The axes of a batch array (N, *shape) that μ and var reduce."""
        if last:
            return (ndim - 1,)
        return (0, *range(2, ndim)) if self.couples_batch else tuple(range(1, ndim))

    def param_axes(self, ndim: int, last: bool = False) -> tuple[int, ...]:
        """The axes γ's and β's gradients sum over."""
        if last:
            return tuple(range(ndim - 1))
        return self.stat_axes(ndim) if self.couples_batch else (0,)

    def axes_of(self, layer) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(statistics' axes, parameters' gradient axes) of a batch array of the layer."""
        ndim = len(layer.shape) + 1
        return self.stat_axes(ndim, self.last(layer)), self.param_axes(ndim, self.last(layer))

    def gamma_index(self, layer, idx) -> tuple:
        """The index into γ and β of the element ``idx`` of one example (of the batch, for batch norm)."""
        if self.couples_batch:
            return tuple(idx[1:2])
        return tuple(idx[-1:]) if self.last(layer) else tuple(idx)

    def sequence_output(self, options, in_sequence):
        return in_sequence[0] and not self.couples_batch      # a layer norm keeps a sequence's steps

    def check(self, options, in_shapes):
        if not self.couples_batch and options.get("over") == "last" and in_shapes[0][-1] == 1:
            raise LayerError("over", "layernorm over the last axis of size 1 normalises every value to 0; "
                                     "give that axis more than one value")
        if not self.couples_batch and math.prod(in_shapes[0]) == 1:
            raise LayerError("type", "layernorm of a single value per example normalises it to 0; "
                                     "give it more than one")

    def param_shapes(self, layer):
        shape = layer.shape[:1] if self.couples_batch else layer.shape[-1:] if self.last(layer) else layer.shape
        return {"gamma": shape, "beta": shape}

    def init(self, layer, prefix):
        return "ones" if prefix == "gamma" else "zeros"

    def elements(self, layer, inputs, params, data, stage):
        x, gamma, beta = inputs[0], params["gamma"], params["beta"]
        eps = sympy.Rational(repr(layer.opt["eps"]))
        if self.couples_batch:                        # x is (E, C, ...): per channel over examples and positions
            groups = [x[:, c].ravel() for c in range(x.shape[1])]
            per = lambda idx: idx[1:2]                # the channel of element (n, c, ...)
            shape = (len(groups),)
        elif self.last(layer):                        # x is one example: one group per position
            shape = x.shape[:-1]
            groups = [x[idx] for idx in index_tuples(shape)]
            per = lambda idx: idx[:-1]                # the position of element (..., j)
        else:                                         # x is one example: one group
            groups, per, shape = [x.ravel()], (lambda idx: ()), ()
        count = len(groups[0])
        mean = stage("mean", r"\mu", np.array([sympy.Add(*g) / count for g in groups], dtype=object).reshape(shape),
                     per_example=not self.couples_batch)
        var = stage("var", r"\mathrm{var}",
                    np.array([sympy.Add(*[(v - m) ** 2 for v in g]) / count
                              for g, m in zip(groups, mean.ravel())], dtype=object).reshape(shape),
                    per_example=not self.couples_batch)
        xhat_defs = np.empty(x.shape, dtype=object)
        for idx in index_tuples(x.shape):
            k = per(idx)
            xhat_defs[idx] = (x[idx] - mean[k]) / sympy.sqrt(var[k] + eps)
        xhat = stage("xhat", r"\hat{x}", xhat_defs)
        z = np.empty(x.shape, dtype=object)
        for idx in index_tuples(x.shape):
            p = self.gamma_index(layer, idx)
            z[idx] = gamma[p] * xhat[idx] + beta[p]
        return z

    def forward(self, layer, inputs, params, data):
        x = inputs[0]
        axes = self.axes_of(layer)[0]
        mean = norm_mean(x, axes)
        rstd = 1 / np.sqrt(norm_var(x, mean, axes) + layer.opt["eps"])
        xhat = norm_apply(x, mean, rstd, axes)
        if self.last(layer):
            return xhat * params["gamma"] + params["beta"]
        return scale_shift(xhat, params["gamma"], params["beta"])

    def array_forward(self, layer, b, inputs, params, data, mode):
        i, x, ndim, last = layer.index, inputs[0], len(layer.shape) + 1, self.last(layer)
        axes, eps = self.axes_of(layer)[0], sympy.Float(layer.opt["eps"])
        stat = layer.shape[:1] if self.couples_batch else ("N", *layer.shape[:-1]) if last else ("N",)
        over = ("the batch" + (" and positions" if ndim > 2 else "") if self.couples_batch
                else "the last axis" if last else "each example")
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
        if last:                # γ and β (d,) broadcast over the examples and positions as they are
            return xhat * params["gamma"] + params["beta"], None
        return Kernel("scale_shift", xhat, params["gamma"], params["beta"]), None

    def array_backward(self, layer, b, delta, inputs, params, data, need):
        i = layer.index
        xhat, tex = b.symbol(f"xhat{i}"), self.latex_backward(layer, b.tex(delta), [b.tex(inputs[0])])
        s_axes, p_axes = self.axes_of(layer)
        b.grad(layer.param("gamma"), Kernel("product_sum", delta, xhat, p_axes), tex.grads[layer.param("gamma")])
        b.grad(layer.param("beta"), Kernel("axis_sum", delta, p_axes), tex.grads[layer.param("beta")])
        if not need[0]:
            return [None]
        return [(Kernel("norm_input_grad", delta, xhat, b.symbol(f"rstd{i}"), params["gamma"], s_axes),
                 tex.inputs[0])]

    def count(self, layer) -> int:
        """How many values each mean and variance is over, for one example (batch norm: per channel)."""
        if self.last(layer):
            return layer.shape[-1]
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


BATCHNORM, LAYERNORM = Norm("batchnorm", batch=True), Norm("layernorm", batch=False)
