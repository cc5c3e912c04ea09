"""``flatten``: (C, …) → (C·…,) in row-major order, as ``torch.flatten(x, 1)``; its gradient is the
incoming one reshaped back."""
import math

import numpy as np

from ..arrayops import Kernel
from ...writers.document import Display, Para
from .base import Backward, LayerError, LayerKind, kernel


@kernel(view=True)
def flatten(x):
    """(N, C, …) -> (N, C·…), row-major: a view of x."""
    return x.reshape(x.shape[0], -1)


@kernel(view=True)
def unflatten(delta, shape):
    """The gradient of flatten: (N, C·…) -> (N, *shape), a view of delta."""
    return delta.reshape((delta.shape[0],) + tuple(shape))


class Flatten(LayerKind):
    name = "flatten"
    doc = "(C, ...) -> (C·...,) in row-major order, as torch.flatten(x, 1)"
    kernels = ("flatten", "unflatten")

    def check(self, options, in_shapes):
        if len(in_shapes[0]) < 2:
            raise LayerError("type", "flatten needs an input with more than one axis")

    def output_shape(self, options, in_shapes):
        return (math.prod(in_shapes[0]),)

    def elements(self, layer, inputs, params, data, stage):
        return inputs[0].reshape(-1)

    def forward(self, layer, inputs, params, data):
        return inputs[0].reshape(len(inputs[0]), -1)

    def array_forward(self, layer, b, inputs, params, data, mode):
        return Kernel("flatten", inputs[0]), None

    def array_backward(self, layer, b, delta, inputs, params, data, need):
        if not need[0]:
            return [None]
        return [(Kernel("unflatten", delta, layer.in_shapes[0]), self.latex_backward(layer, b.tex(delta), []).inputs[0])]

    def explain_forward(self, lm, sheet):
        shape = lm.layer.in_shapes[0]
        names = "cij" if len(shape) == 3 else "cl"
        return [Display((self.latex_forward(lm.layer, sheet.out_tex(lm), [sheet.input_tex(lm)]),)),
                Para(f"In row-major order (the last axis fastest): element ({', '.join(names)}) "
                     f"of the {' × '.join(map(str, shape))} input becomes element {flat_index(shape, names)} of the vector.")]

    def latex_forward(self, layer, out, ins):
        return rf"{out} = \operatorname{{flatten}}({ins[0]})"

    def latex_backward(self, layer, delta, ins):
        shape = r" \times ".join(map(str, layer.in_shapes[0]))
        return Backward({}, (rf"\operatorname{{reshape}}_{{{shape}}}({delta})",))


FLATTEN = Flatten()


def flat_index(shape, names) -> str:
    """The 1-based row-major index of element (names) of ``shape``, in words and math: an axis of
    size 1 has index 1 and is left out, so (2, 1, 1) reads "$c$ (i = j = 1)", never a formula that
    is true only for this shape.

    >>> print(flat_index((4, 4, 4), "cij"), flat_index((2, 1, 1), "cij"))
    $(c - 1) \\cdot 16 + (i - 1) \\cdot 4 + j$ $c$ ($i = j = 1$)
    """
    strides = [int(np.prod(shape[i + 1:])) for i in range(len(shape))]
    kept = [(name, s) for name, s, m in zip(names, strides, shape) if m > 1]
    ones = [name for name, m in zip(names, shape) if m == 1]
    if not kept:
        where = "1"
    else:
        where = " + ".join([f"({name} - 1) \\cdot {s}" if s > 1 else f"({name} - 1)" for name, s in kept[:-1]]
                           + [kept[-1][0] if kept[-1][1] == 1 else f"({kept[-1][0]} - 1) \\cdot {kept[-1][1]} + 1"])
    return f"${where}$" + (f" (${' = '.join(ones)} = 1$)" if ones else "")
