"""``add`` (``from`` = K): the previous layer's output plus layer K's (K = 0: the network input) — a
residual connection. Both inputs receive the gradient δ, so where the two paths rejoin upstream
their gradients add."""
from ...writers.document import Display, Para
from .base import Backward, Field, LayerError, LayerKind, layer_ref, rule_and_tables, shape_text, zeros


class Add(LayerKind):
    name = "add"
    doc = "the previous layer's output plus layer `from`'s (0: the network input): a residual connection"
    fields = (Field("from", layer_ref, doc="the position of the other layer (0 is the network input)"),)

    def sources(self, options, index):
        return (index - 1, options["from"])

    def sequence_output(self, options, in_sequence):
        return any(in_sequence)                                 # a residual around sequence layers

    def check(self, options, in_shapes):
        if in_shapes[0] != in_shapes[1]:
            raise LayerError("from", f"layer {options['from']}'s output has shape {shape_text(in_shapes[1])}, "
                                     f"the previous layer's {shape_text(in_shapes[0])}: they must match")

    def elements(self, layer, inputs, params, data, stage):
        return inputs[0] + inputs[1]

    def forward(self, layer, inputs, params, data):
        return inputs[0] + inputs[1]

    def array_forward(self, layer, b, inputs, params, data, mode):
        return inputs[0] + inputs[1], None

    def array_backward(self, layer, b, delta, inputs, params, data, need):
        d = b.tex(delta)
        return [(delta, d) if n else None for n in need]

    def explain_forward(self, lm, sheet):
        layer, n = lm.layer, sheet.n
        ins = [sheet.input_tex(lm, k) for k in range(2)]
        first = (0,) * len(layer.shape)
        e = sheet.at(lm.stage("z" if layer.has_z else "a").symbols, 0, first)
        u, v = (sheet.at(src, 0, first) for src in lm.sources)
        return [Display((self.latex_forward(layer, sheet.out_tex(lm), ins),)),
                Para(f"Both paths, added element by element (the second, ${ins[1]}$, skips the layers between): one element:"),
                Display((f"{sheet.names[e]} &= {sheet.names[u]} + {sheet.names[v]} = {n.tex(sheet.val(u))} "
                         f"{'-' if sheet.val(v) < 0 else '+'} {n.tex(abs(sheet.val(v)))} {n.eq(sheet.val(e))}",))]

    def explain_input_gradient(self, lm, sheet, k, part=None):
        out = rule_and_tables(self, lm, sheet, k, part, notes=False)
        which = "main" if k == 0 else "skip"
        return [Para(f"An add passes its gradient to both inputs unchanged ($\\partial a^{{({lm.index})}}/\\partial "
                     f"{sheet.input_tex(lm, k)} = 1$); this is the {which} path's share:")] + out

    def slips(self, layer, ctx):
        l, (main, skip) = layer.index, layer.sources
        name = lambda k: "x" if k == 0 else f"a{k}"      # noqa: E731
        return [ctx.slip({"inputs": (24, f"the residual path's gradient dropped at the add of layer {l} "
                                         f"({name(skip)} given none of it)")}, inputs=[ctx.inputs[0], zeros(ctx.inputs[1].shape)]),
                ctx.slip({"inputs": (25, f"the main path's gradient dropped at the add of layer {l} "
                                         f"({name(main)} given none of it)")}, inputs=[zeros(ctx.inputs[0].shape), ctx.inputs[1]])]

    def latex_forward(self, layer, out, ins):
        return rf"{out} = {ins[0]} + {ins[1]}"

    def latex_backward(self, layer, delta, ins):
        return Backward({}, (delta, delta), (rf"both inputs receive ${delta}$; where a layer's output feeds two "
                                             "layers, its gradient is the sum of both paths'.",))


ADD = Add()
