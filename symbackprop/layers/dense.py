"""``dense``: z = W a + b on a vector input (``torch.nn.Linear``). W<i> is (units, inputs), b<i> (units,)."""
import numpy as np
import sympy

from ..arrayops import ColSum, Dot, T
from .base import Backward, Field, LayerError, LayerKind, positive_int, shape_text


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
            raise LayerError("type", f"dense needs a vector input, got shape {shape_text(in_shapes[0])} "
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

    def latex_forward(self, layer, out, ins):
        l = layer.index
        return rf"{out} = {sup('W', l)} {ins[0]} + {sup('b', l)}"

    def latex_backward(self, layer, delta, ins):
        l = layer.index
        return Backward({layer.param("W"): rf"{grad_tex(sup('W', l))} = {delta} \left({ins[0]}\right)^\top",
                         layer.param("b"): rf"{grad_tex(sup('b', l))} = {delta}"},
                        (rf"\left({sup('W', l)}\right)^\top {delta}",))


DENSE = Dense()
