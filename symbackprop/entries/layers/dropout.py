"""``dropout`` (``rate`` p): inverted dropout, as ``F.dropout(training=True)``: z = x ⊙ M / (1 − p) with
a keep-mask M of 0s and 1s; its gradient is δ ⊙ M / (1 − p). ``predict`` (evaluation) leaves x as it is.

With numbers, the masks come from the spec's ``[masks]`` table (``M<i>``, in the layer's output
shape, with a leading example axis for a batch) or, without one, from a generator seeded by
``[sample] seed`` (default 0); compiled functions and trainers draw fresh masks each step.
"""
import sympy

import numpy as np

from ...writers.document import Display, Para
from .base import Backward, Field, LayerKind, rate, rule_and_tables, with_options


class Dropout(LayerKind):
    name = "dropout"
    doc = "inverted dropout: kept values times 1/(1 - p), as F.dropout(training=True)"
    fields = (Field("rate", rate, doc="the probability p of dropping a value, 0 <= p < 1"),)

    def sequence_output(self, options, in_sequence):
        return in_sequence[0]

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

    def explain_forward(self, lm, sheet):
        layer, l, n = lm.layer, lm.index, sheet.n
        p, x, out = layer.opt["rate"], sheet.input_tex(lm), sheet.out_tex(lm)
        scale = float(self.scale(layer))
        mask = sheet.array(lm.data[layer.param("M")])
        e = sheet.at(lm.stage(out[0]).symbols, 0, (0,) * len(layer.shape))
        u = sheet.at(lm.sources[0], 0, (0,) * len(layer.shape))
        m = sheet.at(lm.data[layer.param("M")], 0, (0,) * len(layer.shape))
        kept = int(mask.sum())
        return [Display((self.latex_forward(layer, out, [x]),)),
                Para(f"The mask $M^{{({l})}}$ keeps a value where it is 1 and drops it where it is 0 ({kept} of "
                     f"{mask.size} kept here); the kept ones are scaled by $1/(1 - p) = 1/{1 - p:g} {n.eq(scale)}$, so "
                     "that each value's expectation is unchanged:")] \
            + sheet.tables(f"M^{{({l})}}", mask, None) \
            + [Para("One element:"),
               Display((f"{sheet.names[e]} &= {sheet.names[u]} \\, {sheet.names[m]} / (1 - p) = "
                        f"{n.par(sheet.val(u))} \\times {n.tex(sheet.val(m))} / {1 - p:g} {n.eq(sheet.val(e))}",))]

    def explain_input_gradient(self, lm, sheet, k, part=None):
        out = rule_and_tables(self, lm, sheet, k, part)
        p = lm.layer.opt["rate"]
        return out[:1] + [Para(f"The same mask and the same scale $1/{1 - p:g}$: a dropped value passes no gradient back.")] \
            + out[1:]

    def slips(self, layer, ctx):
        l, scale = layer.index, self.scale(layer)
        if scale == 1:
            return []
        out = f"dropout's 1/(1 − p) left out in layer {l}"
        return [ctx.slip({"forward": (31, out), "inputs": (31, out)}, layer=with_options(layer, rate=0.0)),
                ctx.slip({"inputs": (32, f"dropout's 1/(1 − p) applied to the gradient twice in layer {l}")},
                         data={"M": ctx.data["M"] * scale}),
                ctx.slip({"inputs": (33, f"dropout's mask left out of the gradient in layer {l}")},
                         data={"M": np.full(ctx.data["M"].shape, 1, dtype=object)})]

    def latex_forward(self, layer, out, ins):
        return rf"{out} = {ins[0]} \odot M^{{({layer.index})}} / (1 - p), \quad p = {layer.opt['rate']:g}"

    def latex_backward(self, layer, delta, ins):
        return Backward({}, (rf"{delta} \odot M^{{({layer.index})}} / (1 - p)",))


DROPOUT = Dropout()
