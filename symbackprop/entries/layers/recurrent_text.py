"""The recurrent kinds' text: their forward rules and their backward recursion (BPTT) in matrix
form, as LaTeX, one example's column vectors (the code's rows are examples); and their catalogued
mistakes, each a rewrite of the entry's own definitions. Mixed into
:class:`~symbackprop.entries.layers.recurrent.Recurrent`."""
import numpy as np
import sympy

from .base import Backward, Slip


def _p(name: str, l: int) -> str:
    head, _, tail = name.partition("_")
    return f"{head}_{{{tail}}}^{{({l})}}"


def _grad(name: str, l: int) -> str:
    return rf"\frac{{\partial C}}{{\partial {_p(name, l)}}}"


class RecurrentText:
    # ---- forward
    def latex_step(self, layer, x: str) -> str:
        """The forward rule of one step, for the kernel's statement (h_0 = 0, c_0 = 0)."""
        l = layer.index
        W_ih, W_hh, b_ih, b_hh = (_p(n, l) for n in ("W_ih", "W_hh", "b_ih", "b_hh"))
        lin = rf"{W_ih} {x}_t + {b_ih} + {W_hh} h^{{({l})}}_{{t-1}} + {b_hh}"
        if self.name == "rnn":
            f = r"\tanh" if layer.opt["nonlinearity"] == "tanh" else r"\operatorname{relu}"
            return rf"h^{{({l})}}_t = {f}\left(s^{{({l})}}_t\right),\ s^{{({l})}}_t = {lin},\ h^{{({l})}}_0 = 0"
        if self.name == "lstm":
            return (rf"\begin{{pmatrix}} i_t \\ f_t \\ g_t \\ o_t \end{{pmatrix}} = \begin{{pmatrix}} \sigma \\ \sigma \\ "
                    rf"\tanh \\ \sigma \end{{pmatrix}}\left({lin}\right),\ c_t = f_t \odot c_{{t-1}} + i_t \odot g_t,\ "
                    rf"h^{{({l})}}_t = o_t \odot \tanh c_t")
        return (rf"\begin{{pmatrix}} r_t \\ z_t \end{{pmatrix}} = \sigma\left({lin}\right)_{{r,z}},\ "
                rf"n_t = \tanh\left((W_{{ih}} {x}_t + b_{{ih}})_n + r_t \odot (W_{{hh}} h_{{t-1}} + b_{{hh}})_n\right),\ "
                rf"h^{{({l})}}_t = (1 - z_t) \odot n_t + z_t \odot h^{{({l})}}_{{t-1}}")

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

    # ---- check: the catalogued mistakes, rewrites of the entry's own definitions
    def slips(self, layer, ctx):
        out = [self._dropped_future(layer, ctx)]
        if self.name == "rnn" and layer.opt["nonlinearity"] == "tanh":
            out.append(self._tanh_slip(layer, ctx, ctx.stages["s"][0]))
        if self.name == "gru":
            out.append(Slip({"inputs": (22, f"the GRU's z and 1 − z swapped in layer {layer.index}"),
                             "params": (22, f"the GRU's z and 1 − z swapped in layer {layer.index}")},
                            lambda: {"h": self._gru_swapped(ctx)}))
        return out

    def _dropped_future(self, layer, ctx) -> Slip:
        """The gradient from step t + 1 dropped: each step's h_{t−1} taken as a constant."""
        hs = ctx.stages["h"][0]

        def defs():
            found = {}
            frozen = {h: sympy.Symbol(f"{h.name}_const", real=True) for h in hs.ravel()}
            for name, (symbols, definitions) in ctx.stages.items():
                found[name] = {idx: d.xreplace(frozen) for idx, d in np.ndenumerate(definitions)}
            return found
        what = f"the gradient from step t + 1 dropped (δh_t from its own output only) in layer {layer.index}"
        return Slip({"inputs": (18, what), "params": (18, what)}, defs)

    def _tanh_slip(self, layer, ctx, s) -> Slip:
        what = f"tanh′ written as 1 − s² (the pre-activation squared, not h²) in layer {layer.index}"
        return Slip({"inputs": (21, what), "params": (21, what)},
                    lambda: {"h": {idx: s[idx] - s[idx] ** 3 / 3 for idx in np.ndindex(*s.shape)}})

    def _gru_swapped(self, ctx) -> dict:
        z, n, h = ctx.stages["z"][0], ctx.stages["n"][0], ctx.stages["h"][0]
        out = {}
        for t, j in np.ndindex(*h.shape):
            prev = h[t - 1, j] if t > 0 else 0
            out[(t, j)] = z[t, j] * n[t, j] + (1 - z[t, j]) * prev
        return out
