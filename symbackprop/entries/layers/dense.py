"""``dense``: z = W a + b on a vector input (``torch.nn.Linear``). W<i> is (units, inputs), b<i> (units,).

On a sequence (T, D) (an embedding's or a recurrent layer's output) it is applied to each step's
row, over the last axis, as ``nn.Linear`` is: z_t = W a_t + b, the same W and b at every step, so
∂C/∂W = Σ_t δ_t a_tᵀ and ∂C/∂b = Σ_t δ_t (over the examples too) and ∂C/∂a_t = Wᵀ δ_t.
"""
import numpy as np
import sympy

from ..arrayops import ColSum, Dot, Kernel, T
from ...writers.document import Display, Para
from . import sequence_text
from .base import Backward, Field, LayerError, LayerKind, kernel, positive_int, rule_and_tables, shape_text

PAIRWISE_MAX = 16   # slips pairing two rows or two inputs are tried in layers up to this size
SUMS_WRITTEN = 16   # neurons whose weighted sums a worked example writes out (the first 3 past this)
GRADS_WRITTEN = 24  # elements of a parameter whose chain-rule products are written out (the first 2 past this)


def grad_tex(name: str) -> str:
    return rf"\frac{{\partial C}}{{\partial {name}}}"


def sup(prefix: str, index: int) -> str:
    """``W^{(2)}``: a parameter's LaTeX name."""
    return f"{prefix}^{{({index})}}"



@kernel()
def step_linear(x, W, b, out=None):
    """z_t = W x_t + b at every step: x (N, T, D) -> (N, T, units)."""
    n, t, d = x.shape
    z = np.dot(x.reshape(n * t, d), W.T).reshape(n, t, -1)
    z += b
    if out is None:
        return z
    out[...] = z
    return out


@kernel()
def step_weight_grad(delta, x, out=None):
    """∂C/∂W = Σ over examples and steps of δ_t x_tᵀ: (units, D)."""
    return np.dot(delta.reshape(-1, delta.shape[-1]).T, x.reshape(-1, x.shape[-1]), out=out)


@kernel()
def step_bias_grad(delta, out=None):
    """∂C/∂b = Σ over examples and steps of δ_t: (units,)."""
    return np.dot(np.ones(delta[..., 0].size, delta.dtype), delta.reshape(-1, delta.shape[-1]), out=out)


@kernel()
def step_input_grad(delta, W, out=None):
    """∂C/∂x_t = Wᵀ δ_t at every step: (N, T, D)."""
    n, t, u = delta.shape
    g = np.dot(delta.reshape(n * t, u), W).reshape(n, t, -1)
    if out is None:
        return g
    out[...] = g
    return out


class Dense(LayerKind):
    name = "dense"
    doc = "z = W a + b on a vector input, as torch.nn.Linear; W (units, inputs), b (units,)"
    fields = (Field("units", positive_int, doc="output size"),)
    params = ("W", "b")
    affine = True
    unrolls = True
    vector_input = True
    kernels = ("step_linear", "step_weight_grad", "step_bias_grad", "step_input_grad")

    def check_sequence(self, options, in_shapes, in_sequence):
        if len(in_shapes[0]) != 1 and not (len(in_shapes[0]) == 2 and in_sequence[0]):
            raise LayerError("type", f"dense needs a vector input (or a sequence's (T, D), per step), got shape "
                                     f"{shape_text(in_shapes[0])} (add a flatten layer before it)")

    def sequence_output(self, options, in_sequence):
        return in_sequence[0]

    def output_shape(self, options, in_shapes):
        return (*in_shapes[0][:-1], options["units"])

    def param_shapes(self, layer):
        return {"W": (layer.shape[-1], layer.in_shapes[0][-1]), "b": layer.shape[-1:]}

    def fans(self, layer):
        return layer.in_shapes[0][-1], layer.shape[-1]

    def init(self, layer, prefix):
        return "weight" if prefix == "W" else "zeros"

    def elements(self, layer, inputs, params, data, stage):
        (x,), W, b = inputs, params["W"], params["b"]
        if x.ndim == 2:               # a sequence: the same rule at every step
            return np.array([self.elements(layer, [row], params, data, stage) for row in x], dtype=object)
        return np.array([sympy.Add(*[W[j, k] * x[k] for k in range(len(x))], b[j]) for j in range(len(b))], dtype=object)

    def forward(self, layer, inputs, params, data):
        return inputs[0] @ params["W"].T + params["b"]

    def array_forward(self, layer, b, inputs, params, data, mode):
        if layer.sequence:
            return Kernel("step_linear", inputs[0], params["W"], params["b"]), None
        return Dot(inputs[0], T(params["W"])) + params["b"], None

    def array_backward(self, layer, b, delta, inputs, params, data, need):
        (x,), tex = inputs, self.latex_backward(layer, b.tex(delta), [b.tex(inputs[0])])
        if layer.sequence:
            b.grad(layer.param("W"), Kernel("step_weight_grad", delta, x), tex.grads[layer.param("W")])
            b.grad(layer.param("b"), Kernel("step_bias_grad", delta), tex.grads[layer.param("b")])
            return [(Kernel("step_input_grad", delta, params["W"]), tex.inputs[0]) if need[0] else None]
        b.grad(layer.param("W"), Dot(T(delta), x), tex.grads[layer.param("W")])
        b.grad(layer.param("b"), ColSum(delta), tex.grads[layer.param("b")])
        return [(Dot(delta, params["W"]), tex.inputs[0]) if need[0] else None]

    def explain_forward(self, lm, sheet):
        if lm.layer.sequence:
            return sequence_text.dense_forward(lm, sheet)
        l, n, prev = lm.index, sheet.n, sheet.input_tex(lm)
        W, b = sheet.param(f"W{l}"), sheet.param(f"b{l}")
        x, z = sheet.inputs(lm)[0], sheet.stage(lm, "z")[0]
        rows = range(len(b)) if len(b) <= SUMS_WRITTEN else range(3)
        out = [Para(f"The weighted sums $z^{{({l})}} = W^{{({l})}} {prev} + b^{{({l})}}$:"),
               Display((f"z^{{({l})}} = {n.matrix(W)} {n.column(x)} + {n.column(b)} {n.all_eq(z)} {n.column(z)}",)),
               Display(tuple(line for j in rows for line in sheet.written_sum(sheet.at(lm.stage("z").symbols, 0, (j,)))))]
        if len(rows) < len(b):
            out.append(Para(f"The other {len(b) - len(rows)} neurons the same way."))
        return out

    def explain_backward(self, lm, sheet, wanted):
        if not wanted:
            return []
        if lm.layer.sequence:
            return sequence_text.parameter_sums(lm, sheet, wanted)
        l, n, prev = lm.index, sheet.n, sheet.input_tex(lm)
        out = [Para(f"Since $z^{{({l})}}_j = \\sum_k W^{{({l})}}_{{j,k}} {prev}_k + b^{{({l})}}_j$, "
                    f"$\\partial z^{{({l})}}_j / \\partial W^{{({l})}}_{{j,k}} = {prev}_k$ and "
                    f"$\\partial z^{{({l})}}_j / \\partial b^{{({l})}}_j = 1$. The gradients:")]
        lines, more = [], []
        for name in (p for p in lm.params if p in wanted):
            steps = [st for st in sheet.d.gradients() if st.param == name]
            shown = steps if len(steps) <= GRADS_WRITTEN else steps[:2]
            lines += [line for st in shown for line in sheet.step_lines(st)]
            if len(shown) < len(steps):
                more.append(f"the other {len(steps) - len(shown)} of ${sup(name[0], l)}$")
        out.append(Display(tuple(lines)))
        if more:
            out.append(Para("And " + ", ".join(more) + " the same way (the matrices below give every one)."))
        g = sheet.values.gradients
        mats = [f"\\frac{{\\partial C}}{{\\partial {sup(p[0], l)}}} = {n.matrix(g[p]) if g[p].ndim == 2 else n.column(g[p])}"
                for p in lm.params if p in wanted]
        out += [Para("As matrices, each of its parameter's shape" + (" (means over the batch)" if sheet.N > 1 else "") + ":"),
                Display((", \\qquad ".join(mats),))]
        return out

    def explain_input_gradient(self, lm, sheet, k, part=None):
        if lm.layer.sequence:
            return rule_and_tables(self, lm, sheet, k, part)
        l, src, n_out = lm.index, lm.layer.sources[0], lm.layer.shape[0]
        prev = sheet.input_tex(lm)
        out = [Para(f"Each ${prev}_k$ feeds every $z^{{({l})}}_j = \\sum_k W^{{({l})}}_{{j,k}} {prev}_k + b^{{({l})}}_j$, so "
                    f"$\\partial z^{{({l})}}_j / \\partial {prev}_k = W^{{({l})}}_{{j,k}}$ and $\\partial C/\\partial {prev}_k$ "
                    f"sums over the {n_out} neuron{'s' if n_out > 1 else ''} of layer {l}: "
                    f"$\\frac{{\\partial C}}{{\\partial {prev}_k}} = \\sum_j \\delta^{{({l})}}_j W^{{({l})}}_{{j,k}}$.")]
        if part is not None:
            return out + sheet.tables(rf"\partial C/\partial a^{{({src})}}", part, None)
        steps = sheet.receiver_steps(lm, 0)
        out += sheet.steps_display(steps)
        if len(steps) > 16:
            out += sheet.tables(rf"\partial C/\partial a^{{({src})}}", sheet.passed(lm, 0), f"dC/da{src}")
        return out

    def slips(self, layer, ctx):
        if layer.sequence:
            return []             # the per-step rule's slips: not catalogued yet
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
        if layer.sequence:
            return rf"{out}_t = {sup('W', l)} {ins[0]}_t + {sup('b', l)} \quad \text{{at every step }} t"
        return rf"{out} = {sup('W', l)} {ins[0]} + {sup('b', l)}"

    def latex_backward(self, layer, delta, ins):
        l = layer.index
        if layer.sequence:
            return Backward({layer.param("W"): rf"{grad_tex(sup('W', l))} = \sum_t {delta}_t \left({ins[0]}_t\right)^\top",
                             layer.param("b"): rf"{grad_tex(sup('b', l))} = \sum_t {delta}_t"},
                            (rf"\left({sup('W', l)}\right)^\top {delta}_t",),
                            ("The same W and b at every step: their gradients sum over the steps.",))
        return Backward({layer.param("W"): rf"{grad_tex(sup('W', l))} = {delta} \left({ins[0]}\right)^\top",
                         layer.param("b"): rf"{grad_tex(sup('b', l))} = {delta}"},
                        (rf"\left({sup('W', l)}\right)^\top {delta}",))


DENSE = Dense()
