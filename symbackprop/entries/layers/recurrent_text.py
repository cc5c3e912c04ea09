"""The recurrent kinds' text: their forward rules and their backward recursion (BPTT) in matrix
form, as LaTeX, one example's column vectors (the code's rows are examples); and their catalogued
mistakes, each a rewrite of the entry's own definitions. Mixed into
:class:`~symbackprop.entries.layers.recurrent.Recurrent`."""
import numpy as np
import sympy

from . import sequence_text
from ..arrayops import Frozen
from .base import Backward, Slip, param_tex

READS_H = {"rnn": ("s",), "lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n", "h")}   # the stages reading h_(t−1)
STAGES = {"rnn": ("s", "h"), "lstm": ("i", "f", "g", "o", "c", "h"), "gru": ("r", "z", "n", "h")}


def _p(name: str, l: int) -> str:
    return param_tex(f"{name}{l}")


def _grad(name: str, l: int) -> str:
    return rf"\frac{{\partial C}}{{\partial {_p(name, l)}}}"


class RecurrentText:
    # ---- forward
    def latex_step(self, layer, x: str) -> str:
        """The forward rule of one step, for the kernel's statement (h_0 = 0, c_0 = 0)."""
        return r",\ ".join(self.latex_step_lines(layer, x))

    def latex_step_lines(self, layer, x: str) -> list[str]:
        """The forward rule of one step as its equations, each short enough for a line."""
        l = layer.index
        W_ih, W_hh, b_ih, b_hh = (_p(n, l) for n in ("W_ih", "W_hh", "b_ih", "b_hh"))
        lin = rf"{W_ih} {x}_t + {b_ih} + {W_hh} h^{{({l})}}_{{t-1}} + {b_hh}"
        if self.name == "rnn":
            f = r"\tanh" if layer.opt["nonlinearity"] == "tanh" else r"\operatorname{relu}"
            return [rf"s^{{({l})}}_t = {lin}", rf"h^{{({l})}}_t = {f}\left(s^{{({l})}}_t\right),\ h^{{({l})}}_0 = 0"]
        if self.name == "lstm":
            return [rf"\begin{{pmatrix}} i_t \\ f_t \\ g_t \\ o_t \end{{pmatrix}} = \begin{{pmatrix}} \sigma \\ \sigma \\ "
                    rf"\tanh \\ \sigma \end{{pmatrix}}\left({lin}\right)",
                    rf"c_t = f_t \odot c_{{t-1}} + i_t \odot g_t,\ h^{{({l})}}_t = o_t \odot \tanh c_t,\ h_0 = c_0 = 0"]
        return [rf"\begin{{pmatrix}} r_t \\ z_t \end{{pmatrix}} = \sigma\left({lin}\right)_{{r,z}}",
                rf"n_t = \tanh\left((W_{{ih}} {x}_t + b_{{ih}})_n + r_t \odot (W_{{hh}} h_{{t-1}} + b_{{hh}})_n\right)",
                rf"h^{{({l})}}_t = (1 - z_t) \odot n_t + z_t \odot h^{{({l})}}_{{t-1}},\ h_0 = 0"]

    def latex_forward(self, layer, out, ins):
        step = self.latex_step(layer, ins[0])
        if layer.opt["return"] == "last":
            return rf"{step},\quad {out} = h^{{({layer.index})}}_T"
        return rf"{step},\quad {out} = \left(h^{{({layer.index})}}_1, \dots, h^{{({layer.index})}}_T\right)"

    # ---- backward
    def latex_deltas(self, layer) -> str:
        """The recursion for δ_t (the pre-activations' gradient), from t = T down to 1."""
        l = layer.index
        W_hh = _p("W_hh", l)
        own = rf"\frac{{\partial C}}{{\partial h^{{({l})}}_t}}\Big|_{{\text{{own output}}}}"
        if self.name == "rnn":
            f = (r"\left(1 - (h^{(%d)}_t)^2\right)" % l if layer.opt["nonlinearity"] == "tanh"
                 else r"[h^{(%d)}_t > 0]" % l)
            return (rf"\delta^{{({l})}}_t = \Big({own} + \left({W_hh}\right)^\top \delta^{{({l})}}_{{t+1}}\Big) \odot {f},"
                    rf"\ \delta^{{({l})}}_{{T+1}} = 0")
        if self.name == "lstm":
            return (rf"\delta h_t = {own} + \left({W_hh}\right)^\top \delta^{{({l})}}_{{t+1}},\ "
                    rf"\delta c_t = \delta h_t \odot o_t \odot (1 - \tanh^2 c_t) + \delta c_{{t+1}} \odot f_{{t+1}},\ "
                    rf"\delta^{{({l})}}_t = \begin{{pmatrix}} \delta c_t \odot g_t \odot i_t(1 - i_t) \\ "
                    rf"\delta c_t \odot c_{{t-1}} \odot f_t(1 - f_t) \\ \delta c_t \odot i_t \odot (1 - g_t^2) \\ "
                    rf"\delta h_t \odot \tanh c_t \odot o_t(1 - o_t) \end{{pmatrix}}")
        return (rf"\delta h_t = {own} + \delta h_{{t+1}} \odot z_{{t+1}} + \left({W_hh}\right)^\top \delta^{{hh}}_{{t+1}},\ "
                rf"\delta n_t = \delta h_t \odot (1 - z_t) \odot (1 - n_t^2),\ "
                rf"\delta z_t = \delta h_t \odot (h_{{t-1}} - n_t) \odot z_t(1 - z_t),\ "
                rf"\delta r_t = \delta n_t \odot (W_{{hh}} h_{{t-1}} + b_{{hh}})_n \odot r_t(1 - r_t),\ "
                rf"\delta^{{ih}}_t = (\delta r_t, \delta z_t, \delta n_t),\ \delta^{{hh}}_t = (\delta r_t, \delta z_t, \delta n_t \odot r_t)")

    def latex_backward(self, layer, delta, ins):
        l = layer.index
        di, dh = (r"\delta^{ih}_t", r"\delta^{hh}_t") if self.name == "gru" else (rf"\delta^{{({l})}}_t",) * 2
        grads = {layer.param("W_ih"): rf"{_grad('W_ih', l)} = \sum_t {di} \left({ins[0]}_t\right)^\top",
                 layer.param("W_hh"): rf"{_grad('W_hh', l)} = \sum_{{t \ge 2}} {dh} \left(h^{{({l})}}_{{t-1}}\right)^\top",
                 layer.param("b_ih"): rf"{_grad('b_ih', l)} = \sum_t {di}",
                 layer.param("b_hh"): rf"{_grad('b_hh', l)} = \sum_t {dh}"}
        last = layer.opt["return"] == "last"
        notes = (f"$\\delta^{{({l})}}_t$ from the last step back: ${self.latex_deltas(layer)}$, where "
                 + (f"only $h_T$ has an output of its own (${delta}$; the other steps' own term is 0)." if last else
                    f"the own-output term of step $t$ is row $t$ of ${delta}$."),
                 "The weights are shared by every step: their gradients are sums of per-step terms, and "
                 "W_hh's pairs δ_t with h_{t−1} (h_0 = 0 adds nothing).")
        return Backward(grads, (rf"\left({_p('W_ih', l)}\right)^\top {di}",), notes)

    # ---- explain
    def explain_forward(self, lm, sheet):
        from ...writers.document import Display
        l, out = lm.index, sheet.out_tex(lm)
        seq = rf"h^{{({l})}}_T" if lm.layer.opt["return"] == "last" else rf"(h^{{({l})}}_1, \dots, h^{{({l})}}_T)"
        rule = Display((*self.latex_step_lines(lm.layer, sheet.input_tex(lm)), f"{out} = {seq}"))
        return [rule] + sequence_text.forward_steps(lm, sheet, STAGES[self.name],
                                                    "Step by step from $h_0 = 0$" + (", $c_0 = 0$" if self.name == "lstm" else "")
                                                    + ": each step reads the previous step's values by their names.")

    def explain_backward(self, lm, sheet, wanted):
        l = lm.index
        intro = (f"From the last step back. $\\partial C/\\partial h^{{({l})}}_t$ has two parts: the gradient from step "
                 f"$t$'s own output, and the one from step $t + 1$, which reads $h_t$ through $W_{{hh}}$"
                 + (" (and, for the GRU, directly through $z_{t+1} \\odot h_t$)" if self.name == "gru" else "")
                 + (" — the last step has only the first"
                    + ('; with return = "last" the other steps have only the second' if lm.layer.opt["return"] == "last" else "")
                    + ".")
                 + (" The cell's gradient likewise adds $\\partial C/\\partial c_{t+1} \\odot f_{t+1}$."
                    if self.name == "lstm" else ""))
        names = tuple(reversed(STAGES[self.name]))
        return sequence_text.backward_steps(lm, sheet, wanted, names, intro)

    # ---- check: the catalogued mistakes, rewrites of the entry's own definitions
    def slips(self, layer, ctx):
        l = layer.index
        out = [self._one_step(layer, ctx)]
        out += [self._dropped_future(layer, ctx), self._h_for_previous(layer, ctx)]
        if self.name == "rnn":
            s, h = ctx.stages["s"][0], ctx.stages["h"][0]
            if layer.opt["nonlinearity"] == "tanh":
                what = f"tanh′ written as 1 − s² (the pre-activation squared, not h²) in layer {l}"
                out.append(Slip({"inputs": (21, what), "params": (21, what)},
                                lambda: {"h": {idx: s[idx] - s[idx] ** 3 / 3 for idx in np.ndindex(*s.shape)}}))
                out.append(self._reciprocal_derivative(layer, ctx))
        if self.name == "lstm":
            out.append(self._cell_not_carried(layer, ctx))
            swap = self._permuted(ctx, (0, 1, 3, 2))
            out.append(ctx.slip({"forward": (23, f"the gates g and o in another order (i, f, o, g) in layer {l}; "
                                                 "PyTorch stacks i, f, g, o")}, params=swap, stages=("g", "o", "c", "h")))
        if self.name == "gru":
            what = f"the GRU's z and 1 − z swapped in layer {l}"
            out.append(Slip({"forward": (22, what), "inputs": (22, what)}, lambda: {"h": self._gru_swapped(ctx)}))
        for gate in {"lstm": ("i", "f", "o"), "gru": ("r", "z")}.get(self.name, ()):
            out.append(self._no_sigmoid(layer, ctx, gate))
        return out

    def _dropped_future(self, layer, ctx) -> Slip:
        """The gradient from step t + 1 dropped: the definitions that read h_(t−1) (the gates, and
        the GRU's h itself) read it as a stop-gradient, so ∂C/∂h_t keeps only its own output's part."""
        hs = ctx.stages["h"][0]

        def defs():
            frozen = {h: Frozen(h) for h in hs.ravel()}
            return {name: {idx: d.xreplace(frozen) for idx, d in np.ndenumerate(ctx.stages[name][1])}
                    for name in READS_H[self.name]}
        what = f"the gradient from step t + 1 dropped (∂C/∂h_t from its own output only) in layer {layer.index}"
        return Slip({"inputs": (18, what)}, defs)

    def _cell_not_carried(self, layer, ctx) -> Slip:
        """The LSTM's cell-state gradient not carried from t + 1: c_t's definition reads c_(t−1) as a
        stop-gradient, so ∂C/∂c_t keeps only the part through h_t (∂c_t/∂f_t is still c_(t−1))."""
        cs, defs_c = ctx.stages["c"]

        def defs():
            frozen = {c: Frozen(c) for c in cs.ravel()}
            return {"c": {idx: d.xreplace(frozen) for idx, d in np.ndenumerate(defs_c)}}
        what = f"the cell-state gradient not carried from step t + 1 (∂C/∂c_t through h_t only) in layer {layer.index}"
        return Slip({"inputs": (18, what)}, defs)

    def _h_for_previous(self, layer, ctx) -> Slip:
        """h_t used in place of h_(t−1) in ∂C/∂W_hh: beside each b_hh[r] (which sits where W_hh's row r
        meets h_(t−1)) goes Σ_m (W_hh[r, m] − Frozen(W_hh[r, m]))·(h_t[m] − h_(t−1)[m]), worth 0, whose
        derivative moves ∂/∂W_hh[r, m] from h_(t−1)[m] to h_t[m] and leaves every other one alone."""
        W, b, h = ctx.params["W_hh"], ctx.params["b_hh"], ctx.stages["h"][0]

        def defs():
            out = {}
            for t in range(h.shape[0]):
                moved = {b[r]: b[r] + sympy.Add(*[(W[r, m] - Frozen(W[r, m])) * (h[t, m] - (h[t - 1, m] if t else 0))
                                                  for m in range(h.shape[1])]) for r in range(b.shape[0])}
                for name in READS_H[self.name]:
                    for j, d in enumerate(ctx.stages[name][1][t]):
                        if d.has(*moved):
                            out.setdefault(name, {})[(t, j)] = d.xreplace(moved)
            return out
        what = f"h_t used in place of h_(t−1) in ∂C/∂W_hh (layer {layer.index})"
        return Slip({"params": (19, what)}, defs, generic=True)

    def _reciprocal_derivative(self, layer, ctx) -> Slip:
        """tanh′ written as 1/(1 − h²): h redefined as an antiderivative (by SymPy, in exponentials,
        which check's intervals know) of 1 / the entry's own ∂h/∂s, so that the derivative of the
        mistaken definition is the reciprocal of the right one."""
        (s, _), (h, h_defs) = ctx.stages["s"], ctx.stages["h"]

        def defs():
            u = sympy.Dummy("u", real=True)
            f = h_defs[(0,) * h_defs.ndim].xreplace({s[(0,) * s.ndim]: u})
            wrong = sympy.simplify((1 / sympy.diff(f, u)).rewrite(sympy.exp))
            H = sympy.integrate(wrong, u).rewrite(sympy.exp)
            return {"h": {idx: H.xreplace({u: s[idx]}) for idx in np.ndindex(*s.shape)}}
        what = f"tanh′ written as 1/(1 − h²) (the reciprocal of 1 − h²) in layer {layer.index}"
        return Slip({"inputs": (21, what), "params": (21, what)}, defs)

    def _one_step(self, layer, ctx) -> Slip:
        """A shared weight's gradient taken from the last step alone (assigned in the loop over the
        steps, not added): the steps before it read the parameters as constants."""
        frozen = {p: sympy.Symbol(f"{p.name}_const", real=True)
                  for arr in ctx.params.values() for p in arr.ravel()}
        T = ctx.stages["h"][0].shape[0]

        def defs():
            return {name: {idx: d.xreplace(frozen) for idx, d in np.ndenumerate(definitions) if idx[0] < T - 1}
                    for name, (symbols, definitions) in ctx.stages.items() if name != "h" or self.name == "gru"}
        what = f"the shared weights' gradients taken from the last step alone (assigned, not summed over the steps) in layer {layer.index}"
        return Slip({"params": (17, what)}, defs)

    def _no_sigmoid(self, layer, ctx, gate) -> Slip:
        """Gate ``gate``'s σ′ left out: its definition σ(u) read as u."""
        symbols, definitions = ctx.stages[gate]

        def defs():
            return {gate: {idx: sequence_text._squashed(d)[1] for idx, d in np.ndenumerate(definitions)}}
        what = f"the sigmoid derivative of gate {gate} left out in layer {layer.index}"
        return Slip({"inputs": (24, what), "params": (24, what)}, defs)

    def _permuted(self, ctx, order) -> dict:
        k = ctx.params["W_hh"].shape[1]
        rows = [r for block in order for r in range(block * k, (block + 1) * k)]
        return {name: ctx.params[name][rows] for name in ("W_ih", "W_hh", "b_ih", "b_hh")}

    def _gru_swapped(self, ctx) -> dict:
        z, n, h = ctx.stages["z"][0], ctx.stages["n"][0], ctx.stages["h"][0]
        out = {}
        for t, j in np.ndindex(*h.shape):
            prev = h[t - 1, j] if t > 0 else 0
            out[(t, j)] = z[t, j] * n[t, j] + (1 - z[t, j]) * prev
        return out
