"""``dense``: z = W a + b on a vector input (``torch.nn.Linear``). W<i> is (units, inputs), b<i> (units,)."""
import numpy as np
import sympy

from ..arrayops import ColSum, Dot, T
from .base import Backward, Field, LayerError, LayerKind, positive_int

PAIRWISE_MAX = 16   # slips pairing two rows or two inputs are tried in layers up to this size


def grad_tex(name: str) -> str:
    return rf"\frac{{\partial C}}{{\partial {name}}}"


def sup(prefix: str, index: int) -> str:
    """``W^{(2)}``: a parameter's LaTeX name."""
    return f"{prefix}^{{({index})}}"


class Dense(LayerKind):
    name = "dense"
    doc = "z = W a + b on a vector input, as torch.nn.Linear; W (units, inputs), b (units,)"
    fields = (Field("units", positive_int, doc="output size"),)
    params = ("W", "b")
    affine = True
    unrolls = True
    vector_input = True

    def check(self, options, in_shapes):
        if len(in_shapes[0]) != 1:
            raise LayerError("type", f"dense needs a vector input, got shape {_shape(in_shapes[0])} "
                                     "(add a flatten layer before it)")

    def output_shape(self, options, in_shapes):
        return (options["units"],)

    def param_shapes(self, layer):
        return {"W": (layer.shape[0], layer.in_shapes[0][0]), "b": layer.shape}

    def fans(self, layer):
        return layer.in_shapes[0][0], layer.shape[0]

    def init(self, layer, prefix):
        return "weight" if prefix == "W" else "zeros"

    def elements(self, layer, inputs, params, data, stage):
        (x,), W, b = inputs, params["W"], params["b"]
        return np.array([sympy.Add(*[W[j, k] * x[k] for k in range(len(x))], b[j]) for j in range(len(b))], dtype=object)

    def forward(self, layer, inputs, params, data):
        return inputs[0] @ params["W"].T + params["b"]

    def array_forward(self, layer, b, inputs, params, data, mode):
        return Dot(inputs[0], T(params["W"])) + params["b"], None

    def array_backward(self, layer, b, delta, inputs, params, data, need):
        (x,), tex = inputs, self.latex_backward(layer, b.tex(delta), [b.tex(inputs[0])])
        b.grad(layer.param("W"), Dot(T(delta), x), tex.grads[layer.param("W")])
        b.grad(layer.param("b"), ColSum(delta), tex.grads[layer.param("b")])
        return [(Dot(delta, params["W"]), tex.inputs[0]) if need[0] else None]

    def slips(self, layer, ctx):
        l, (x,), W, b = layer.index, ctx.inputs, ctx.params["W"], ctx.params["b"]
        n_out, n_in = W.shape
        out = [ctx.rewrite({"forward": (30, f"the bias {ctx.label(b[j])} left out")}, {b[j]: 0}, element=(j,))
               for j in range(n_out)]
        swap = {W[j, k]: W[k, j] for j in range(n_out) for k in range(n_in) if j != k and k < n_out and j < n_in}
        if swap:
            out.append(ctx.rewrite({"forward": (21, f"W{l} transposed (W{l}[k][j] used for W{l}[j][k])"),
                                    "inputs": (21, f"W{l} transposed"),
                                    "params": (8, f"the index transposed (grad.W{l}[k][j] computed for grad.W{l}[j][k])")},
                                   swap, generic=False))
        if max(n_out, n_in) > PAIRWISE_MAX:
            return out
        for j in range(n_out):
            for j2 in range(n_out):
                if j2 != j:
                    rows = {W[j, k]: W[j2, k] for k in range(n_in)} | {b[j]: b[j2]}
                    out.append(ctx.rewrite({"forward": (22, f"row {j2 + 1} of W{l} used for row {j + 1}")}, rows,
                                           element=(j,), generic=False))
        for k in range(n_in):
            for k2 in range(n_in):
                if k2 != k:
                    text = f"{ctx.label(x[k2])} used in place of {ctx.label(x[k])}"
                    out.append(ctx.rewrite({"forward": (20, text), "params": (20, text)}, {x[k]: x[k2]}, generic=False))
            if ctx.pre and ctx.pre[0] is not None:
                out.append(ctx.rewrite({"params": (9, f"{ctx.label(ctx.pre[0][k])} used in place of {ctx.label(x[k])}")},
                                       {x[k]: ctx.pre[0][k]}, generic=False))
            out.append(ctx.rewrite({"params": (23, f"∂z/∂b taken as {ctx.label(x[k])} instead of 1")},
                                   {bj: bj * x[k] for bj in b}, generic=False))
        return out

    def latex_forward(self, layer, out, ins):
        l = layer.index
        return rf"{out} = {sup('W', l)} {ins[0]} + {sup('b', l)}"

    def latex_backward(self, layer, delta, ins):
        l = layer.index
        return Backward({layer.param("W"): rf"{grad_tex(sup('W', l))} = {delta} \left({ins[0]}\right)^\top",
                         layer.param("b"): rf"{grad_tex(sup('b', l))} = {delta}"},
                        (rf"\left({sup('W', l)}\right)^\top {delta}",))


def _shape(shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ")"


DENSE = Dense()
