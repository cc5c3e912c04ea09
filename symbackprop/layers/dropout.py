"""``dropout`` (``rate`` p): inverted dropout, as ``F.dropout(training=True)``: z = x ⊙ M / (1 − p) with
a keep-mask M of 0s and 1s; its gradient is δ ⊙ M / (1 − p). ``predict`` (evaluation) leaves x as it is.

With numbers, the masks come from the spec's ``[masks]`` table (``M<i>``, in the layer's output
shape, with a leading example axis for a batch) or, without one, from a generator seeded by
``[sample] seed`` (default 0); compiled functions and trainers draw fresh masks each step.
"""
import sympy

from .base import Backward, Field, LayerKind, rate


class Dropout(LayerKind):
    name = "dropout"
    doc = "inverted dropout: kept values times 1/(1 - p), as F.dropout(training=True)"
    fields = (Field("rate", rate, doc="the probability p of dropping a value, 0 <= p < 1"),)

    def data_shapes(self, layer):
        return {"M": layer.shape}

    def scale(self, layer) -> sympy.Expr:
        return 1 / (1 - sympy.Rational(repr(layer.opt["rate"])))

    def elements(self, layer, inputs, params, data, stage):
        return inputs[0] * data["M"] * self.scale(layer)

    def forward(self, layer, inputs, params, data):
        return inputs[0] * data["M"] / (1 - layer.opt["rate"])

    def array_forward(self, layer, b, inputs, params, data, mode):
        if mode == "eval":
            return inputs[0], None
        return inputs[0] * data["M"] * sympy.Float(float(self.scale(layer))), None

    def array_backward(self, layer, b, delta, inputs, params, data, need):
        if not need[0]:
            return [None]
        return [(delta * data["M"] * sympy.Float(float(self.scale(layer))),
                 self.latex_backward(layer, b.tex(delta), []).inputs[0])]

    def latex_forward(self, layer, out, ins):
        return rf"{out} = {ins[0]} \odot M^{{({layer.index})}} / (1 - p), \quad p = {layer.opt['rate']:g}"

    def latex_backward(self, layer, delta, ins):
        return Backward({}, (rf"{delta} \odot M^{{({layer.index})}} / (1 - p)",))


DROPOUT = Dropout()
