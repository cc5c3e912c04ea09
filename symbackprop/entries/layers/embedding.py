"""``embedding``: integer ids -> rows of a table, as ``torch.nn.Embedding``. E<i> is (vocab, dim).

It is the first layer of a network whose input holds ids: ``[network] input = [T]`` (T ids an
example, output (T, dim), a sequence) or ``input = []`` (one id, output (dim,)). The element
expressions read E's row through :class:`~symbackprop.entries.arrayops.Indicator`:
e_{t,d} = Σ_v [x_t = v] E_{v,d}, so that ``sympy.diff`` gives ∂C/∂E_{v,d} = Σ_t [x_t = v] δ_{t,d}: the
rows' gradients *added* where an id repeats — the scatter-add of ``np.add.at`` / ``index_add_``,
which is what the array rule does (proven equal in tests/test_layer_rules.py).
"""
import numpy as np
import sympy

from ..arrayops import Indicator, Kernel
from ...writers.document import Display, Para
from . import sequence_text
from .base import Backward, Field, LayerError, LayerKind, kernel, positive_int, shape_text


@kernel()
def ids_of(x, vocab):
    """The ids of ``x`` as integers, or a ValueError naming the first example and position whose
    value is not an integer in [0, vocab)."""
    ids = x.astype(np.intp)
    bad = (ids != x) | (ids < 0) | (ids >= vocab)
    if bad.any():
        at = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"X[{']['.join(map(str, at))}]: id {x[at]!r} is not an integer in [0, {vocab}) "
                         f"(example {at[0] + 1}, position {', '.join(str(i + 1) for i in at[1:]) or '-'})")
    return ids


@kernel(ids_of)
def embedding_forward(x, E, out=None):
    """Row x of E for every id of x: (N, *S) -> (N, *S, dim), as nn.Embedding."""
    return np.take(E, ids_of(x, len(E)), axis=0, out=out)


@kernel(ids_of)
def embedding_grad(x, delta, vocab, out=None):
    """∂C/∂E (vocab, dim): each position's δ row added into the row of its id (np.add.at: a repeated
    id sums its rows; a row no id reads stays 0)."""
    dim = delta.shape[-1]
    if out is None:
        out = np.zeros((vocab, dim), dtype=delta.dtype)
    else:
        out[...] = 0
    np.add.at(out, ids_of(x, vocab).reshape(-1), delta.reshape(-1, dim))
    return out


class Embedding(LayerKind):
    name = "embedding"
    doc = "integer ids -> rows of E (vocab, dim), as torch.nn.Embedding; the first layer, input [T] or []"
    fields = (Field("vocab", positive_int, doc="how many ids (0 to vocab - 1)"),
              Field("dim", positive_int, doc="the size of each id's vector"))
    params = ("E",)
    reads_ids = True
    kernels = ("embedding_forward", "embedding_grad")

    def check(self, options, in_shapes):
        if len(in_shapes[0]) > 1:
            raise LayerError("type", f"embedding reads integer ids: network.input must be [T] (T ids an example) or [] "
                                     f"(one id), got {shape_text(in_shapes[0])}")

    def output_shape(self, options, in_shapes):
        return (*in_shapes[0], options["dim"])

    def sequence_output(self, options, in_sequence):
        return True

    def param_shapes(self, layer):
        return {"E": (layer.opt["vocab"], layer.opt["dim"])}

    def fans(self, layer):
        return 1, layer.opt["dim"]

    def init(self, layer, prefix):
        return "normal"          # N(0, 1), as nn.Embedding

    def init_scale(self, layer):
        return 1.0

    def elements(self, layer, inputs, params, data, stage):
        x, E = inputs[0], params["E"]
        out = np.empty(layer.shape, dtype=object)
        for t in np.ndindex(*x.shape):
            for d in range(E.shape[1]):
                out[(*t, d)] = sympy.Add(*[Indicator(x[t], v) * E[v, d] for v in range(E.shape[0])])
        return out

    def forward(self, layer, inputs, params, data):
        return embedding_forward(inputs[0], params["E"])

    def array_forward(self, layer, b, inputs, params, data, mode):
        return Kernel("embedding_forward", inputs[0], params["E"]), None

    def array_backward(self, layer, b, delta, inputs, params, data, need):
        tex = self.latex_backward(layer, b.tex(delta), [b.tex(inputs[0])])
        b.grad(layer.param("E"), Kernel("embedding_grad", inputs[0], delta, layer.opt["vocab"]), tex.grads[layer.param("E")])
        return [None]

    def latex_forward(self, layer, out, ins):
        l = layer.index
        if len(layer.in_shapes[0]) == 0:
            return rf"{out} = E^{{({l})}}_{{{ins[0]},:}}"
        return rf"{out}_{{t}} = E^{{({l})}}_{{{ins[0]}_t,:}}"

    def latex_backward(self, layer, delta, ins):
        l = layer.index
        over = "" if len(layer.in_shapes[0]) == 0 else "_t"
        return Backward({layer.param("E"): rf"\frac{{\partial C}}{{\partial E^{{({l})}}_{{v,:}}}} = "
                                           rf"\sum_{{n{',t' if over else ''}:\, {ins[0]}{over} = v}} {delta}{over}"},
                        (None,),
                        (rf"A repeated id adds its positions' gradients into its row (a scatter-add); a row no id reads gets 0.",))

    def explain_forward(self, lm, sheet):
        ids = sheet.inputs(lm)[0].astype(int).ravel()
        return [Display((self.latex_forward(lm.layer, sheet.out_tex(lm), [sheet.input_tex(lm)]),)),
                Para(f"Each id picks its row of the table (row v + 1 for id v): example 1's ids "
                     f"{', '.join(map(str, ids))} give the rows below.")]

    def slips(self, layer, ctx):
        """A repeated id's row gradient overwritten instead of added (``E_grad[x_t] = δ_t`` in a loop):
        only each id's last position counts — as if the earlier ones read E as a constant."""
        from .base import Slip
        x, E = ctx.inputs[0], ctx.params["E"]
        if x.ndim == 0:
            return []
        T, (V, D) = x.shape[0], E.shape

        def defs():
            later = lambda t, v: sympy.Mul(*[1 - Indicator(x[u], v) for u in range(t + 1, T)])  # noqa: E731
            return {ctx.out: {(t, d): sympy.Add(*[Indicator(x[t], v) * later(t, v) * E[v, d] for v in range(V)])
                              for t in range(T) for d in range(D)}}
        what = f"a repeated id's row overwritten instead of summed in ∂C/∂E{layer.index} (only its last position kept)"
        return [Slip({"params": (16, what)}, defs)]

    def explain_backward(self, lm, sheet, wanted):
        return sequence_text.embedding_backward(lm, sheet, wanted)


EMBEDDING = Embedding()
