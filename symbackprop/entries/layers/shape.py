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
        strides = [int(np.prod(shape[i + 1:])) for i in range(len(shape))]
        where = " + ".join(f"({'cij'[i] if len(shape) == 3 else 'cl'[i]} - 1)" + (f" \\cdot {s}" if s > 1 else "")
                           for i, s in enumerate(strides)) + " + 1"
        return [Display((self.latex_forward(lm.layer, sheet.out_tex(lm), [sheet.input_tex(lm)]),)),
                Para(f"In row-major order (the last axis fastest): element ({', '.join('cij' if len(shape) == 3 else 'cl')}) "
                     f"of the {' × '.join(map(str, shape))} input becomes element ${where}$ of the vector.")]

    def latex_forward(self, layer, out, ins):
        return rf"{out} = \operatorname{{flatten}}({ins[0]})"

    def latex_backward(self, layer, delta, ins):
        shape = r" \times ".join(map(str, layer.in_shapes[0]))
        return Backward({}, (rf"\operatorname{{reshape}}_{{{shape}}}({delta})",))


FLATTEN = Flatten()
