"""The text and the catalogued mistakes of ``attention`` and ``posembed``
(symbackprop.entries.layers.attention): their rules in LaTeX, the statements' comments, and the slips
check looks for, each a rewrite of the entry's own definitions (``Frozen`` marks the factor a slip
leaves out of one path of a product, its derivative 0)."""
import functools

import numpy as np
import sympy

from ..arrayops import Frozen
from ...writers.document import Display, Para
from .attention_explain import AttentionExplain
from .base import Backward, Slip
from .dense import grad_tex, sup


def _d(name: str) -> str:
    """The gradient of a stage, ``\\mathrm{d}v^{(2)}_h``: ∂C/∂v_h."""
    return rf"\mathrm{{d}}{name}"


class AttentionText(AttentionExplain):
    """LaTeX, comments and slips of :class:`~symbackprop.entries.layers.attention.Attention` (mixed into it)."""

    def names(self, i: int) -> dict:
        return {p: sup(p, i) for p in ("q", "k", "v", "S", "A", "o")}

    def tex_projection(self, layer, p, x):
        i = layer.index
        b = rf" + {sup(f'b_{p}', i)}" if layer.opt["bias"] else ""
        return rf"{sup(p, i)} = {x} \left({sup(f'W_{p}', i)}\right)^\top{b}"

    def mask_tex(self, layer) -> str:
        return r" + M" if layer.opt["causal"] else ""

    def tex_weights(self, layer):
        i, dk = layer.index, self.sizes(layer)[3]
        n = self.names(i)
        return (rf"{n['A']}_h = \operatorname{{softmax}}\left({n['q']}_h \left({n['k']}_h\right)^\top / \sqrt{{{dk}}}"
                rf"{self.mask_tex(layer)}\right)")

    def tex_mix(self, layer):
        n = self.names(layer.index)
        return rf"{n['o']} = \left[{n['A']}_h {n['v']}_h\right]_{{h=1}}^{{{layer.opt['heads']}}}"

    def tex_do(self, layer, delta):
        return rf"{_d(sup('o', layer.index))} = {delta} {sup('W_o', layer.index)}"

    def latex_forward(self, layer, out, ins):
        i, (_, _, h, dk) = layer.index, self.sizes(layer)
        n = self.names(i)
        qkv = r",\ ".join(self.tex_projection(layer, p, ins[0]) for p in "qkv")
        b = rf" + {sup('b_o', i)}" if layer.opt["bias"] else ""
        mask = r",\ M_{ts} = -\infty \text{ for } s > t" if layer.opt["causal"] else ""
        return (rf"{qkv},\ {n['S']}_h = {n['q']}_h \left({n['k']}_h\right)^\top / \sqrt{{{dk}}},\ "
                rf"{self.tex_weights(layer)},\ {self.tex_mix(layer)},\ {out} = {n['o']} \left({sup('W_o', i)}\right)^\top{b}"
                rf"\quad (h = 1, \dots, {h};\ d_k = {dk}{mask})")

    def latex_backward(self, layer, delta, ins):
        i, (_, _, h, dk) = layer.index, self.sizes(layer)
        n = {p: _d(s) for p, s in self.names(i).items()}
        m = self.names(i)
        steps = (self.tex_do(layer, delta),
                 rf"{n['v']}_h = \left({m['A']}_h\right)^\top {n['o']}_h",
                 rf"{n['A']}_h = {n['o']}_h \left({m['v']}_h\right)^\top",
                 rf"{n['S']}_h = {m['A']}_h \odot \left({n['A']}_h - \operatorname{{rowsum}}\left({m['A']}_h \odot {n['A']}_h\right)\right)",
                 rf"{n['q']}_h = {n['S']}_h {m['k']}_h / \sqrt{{{dk}}}",
                 rf"{n['k']}_h = \left({n['S']}_h\right)^\top {m['q']}_h / \sqrt{{{dk}}}",
                 ) + ((rf"{n['q']} = \left[{n['q']}_1 \cdots {n['q']}_{{{h}}}\right] \quad \text{{(the heads joined; "
                       rf"likewise }} {n['k']}, {n['v']}\text{{)}}",) if h > 1 else ())
        grads = {layer.param("Wo"): rf"{grad_tex(sup('W_o', i))} = \textstyle\sum_{{n,t}} \left({delta}\right)^\top {m['o']}"}
        if layer.opt["bias"]:
            grads[layer.param("bo")] = rf"{grad_tex(sup('b_o', i))} = \textstyle\sum_{{n,t}} {delta}"
        for p in "qkv":
            grads[layer.param(f"W{p}")] = rf"{grad_tex(sup(f'W_{p}', i))} = \textstyle\sum_{{n,t}} \left({n[p]}\right)^\top {ins[0]}"
            if layer.opt["bias"]:
                grads[layer.param(f"b{p}")] = rf"{grad_tex(sup(f'b_{p}', i))} = \textstyle\sum_{{n,t}} {n[p]}"
        notes = [rf"$\mathrm{{d}}X$ is $\partial C/\partial X$; $X_h$ is head $h$'s $d_k = {dk}$ columns of $X$ "
                 r"(split before the products, joined after them)."]
        if layer.opt["causal"]:
            notes.append(r"A masked weight is exactly 0, so its $\mathrm{d}S$ (a multiple of it) is exactly 0: no "
                         r"gradient reaches a future key.")
        if layer.opt["bias"]:
            notes.append(rf"${grad_tex(sup('b_k', i))}$ is 0: $b_k$ adds $q_t \cdot b_k$ to every score of row $t$, "
                         r"and a softmax ignores a constant shift of its row.")
        return Backward(grads, (rf"{n['q']} {sup('W_q', i)} + {n['k']} {sup('W_k', i)} + {n['v']} {sup('W_v', i)}",),
                        tuple(notes), steps)

    # ---- check: the mistakes of attention's arithmetic
    def slips(self, layer, ctx):
        l, (t, _, h, dk), causal = layer.index, self.sizes(layer), layer.opt["causal"]
        q, k, v = (ctx.stages[p][0] for p in "qkv")
        S, A = (self.head_view(layer, ctx.stages[s][0]) for s in ("scores", "weights"))
        r = sympy.sqrt(dk)
        cols = lambda hh: range(hh * dk, (hh + 1) * dk)                                   # noqa: E731

        def staged(name, build):
            def defs():
                arr = build()
                arr = self.flat(layer, arr) if name != "o" else arr
                return {name: {idx: e for idx, e in np.ndenumerate(arr)}}
            return functools.cache(defs)

        def scores(term):
            """S'[h, t, s] = Σ_c term(h, t, s, c)."""
            def build():
                out = np.empty((h, t, t), dtype=object)
                for hh, a, b in np.ndindex(h, t, t):
                    out[hh, a, b] = sympy.Add(*[term(a, b, c) for c in cols(hh)])
                return out
            return staged("scores", build)

        def scaled(fq, fk):
            return scores(lambda a, b, c: q[a, c] * Frozen(k[b, c]) * fq + Frozen(q[a, c]) * k[b, c] * fk)

        def weights(den):
            """A'[h, t, s] = e^S / den(h, t, s) where allowed, else 0."""
            def build():
                out = np.empty((h, t, t), dtype=object)
                for hh, a, b in np.ndindex(h, t, t):
                    out[hh, a, b] = sympy.exp(S[hh, a, b]) / den(hh, a, b) if allowed_(a, b) else sympy.Integer(0)
                return out
            return staged("weights", build)

        allowed_ = lambda a, b: b <= a or not causal                                       # noqa: E731
        row = lambda hh, a, skip=None: sympy.Add(*[sympy.exp(S[hh, a, s]) for s in range(t)  # noqa: E731
                                                   if allowed_(a, s) and s != skip])
        which = f"layer {l}'s attention"
        out = [Slip({"inputs": (24, f"the softmax's backward without its row-sum term in {which} "
                                    "(dS = A ⊙ dA: the normaliser taken as a constant)")},
                    weights(lambda hh, a, b: Frozen(row(hh, a)))),
               Slip({"inputs": (26, f"the softmax's backward with the Jacobian's diagonal only in {which} "
                                    "(dS = A ⊙ (1 − A) ⊙ dA)")},
                    weights(lambda hh, a, b: sympy.exp(S[hh, a, b]) + Frozen(row(hh, a, skip=b)))),
               Slip({"inputs": (27, f"the 1/√d_k = 1/√{dk} left out of dQ in {which}")}, scaled(1, 1 / r)),
               Slip({"inputs": (27, f"the 1/√d_k = 1/√{dk} left out of dK in {which}")}, scaled(1 / r, 1)),
               Slip({"inputs": (29, f"the 1/√d_k applied twice in dQ and dK in {which} (÷ {dk}, not ÷ √{dk})")},
                    scaled(sympy.Rational(1, dk), sympy.Rational(1, dk))),
               Slip({"inputs": (21, f"A used instead of Aᵀ in dV = Aᵀ dO in {which}")},
                    staged("o", lambda: _mix_transposed(A, v, h))),
               Slip({"inputs": (28, f"K and Q swapped in {which}'s dQ = dS K and dK = dSᵀ Q (dS Q and dSᵀ K used)")},
                    scores(lambda a, b, c: (q[a, c] * Frozen(q[b, c]) + Frozen(k[a, c]) * k[b, c]) / r)),
               Slip({"inputs": (22, f"dSᵀ not transposed in {which}'s dK = dSᵀ Q (dS Q used)")},
                    scores(lambda a, b, c: (q[a, c] * Frozen(k[b, c]) + Frozen(q[b, c]) * k[a, c]) / r))]
        if causal and t > 1:
            after = f"the causal mask applied after the softmax in {which} (the weights not renormalised)"
            wrong = f"the causal mask on the wrong axis in {which} (keys before each query masked)"
            everything = lambda hh, a, b: sympy.Add(*[sympy.exp(S[hh, a, s]) for s in range(t)])   # noqa: E731

            def transposed():
                out = np.empty((h, t, t), dtype=object)
                for hh, a in np.ndindex(h, t):
                    keys = [s for s in range(t) if s >= a]
                    den = sympy.Add(*[sympy.exp(S[hh, a, s]) for s in keys])
                    for b in range(t):
                        out[hh, a, b] = sympy.exp(S[hh, a, b]) / den if b in keys else sympy.Integer(0)
                return out
            out += [Slip({"forward": (30, after), "inputs": (30, after)}, weights(everything)),
                    Slip({"forward": (31, wrong), "inputs": (31, wrong)}, staged("weights", transposed))]
        return out


def _mix_transposed(A, v, heads):
    """o'[t, c] = Σ_s A[t, s] v[s, c], its gradient to v taken through A (not Aᵀ): ∂o'/∂v[s, c] = A[s, t]."""
    t, d = v.shape
    dk = d // heads
    out = np.empty((t, d), dtype=object)
    for a, c in np.ndindex(t, d):
        hh = c // dk
        out[a, c] = sympy.Add(*[A[hh, a, s] * Frozen(v[s, c]) + Frozen(A[hh, s, a]) * v[s, c] for s in range(t)])
    return out


class PosEmbedText:
    """LaTeX of :class:`~symbackprop.entries.layers.attention.PosEmbed` (mixed into it)."""

    def latex_forward(self, layer, out, ins):
        t = layer.shape[0]
        return rf"{out} = {ins[0]} + {sup('P', layer.index)}_{{1:{t}}} \quad \text{{(row $t$ of $P$ added at position $t$)}}"

    def latex_backward(self, layer, delta, ins):
        i, t, length = layer.index, layer.shape[0], layer.opt["length"]
        rest = rf" \text{{ for }} t \le {t}" + (rf",\ 0 \text{{ for }} t > {t}" if length > t else "")
        return Backward({layer.param("P"): rf"\left({grad_tex(sup('P', i))}\right)_t = \textstyle\sum_n {delta}_t{rest}"},
                        (delta,), ("each position's row of $P$ gets that position's gradient, summed over the examples"
                                   + (f"; rows {t + 1} to {length} are unused and get 0" if length > t else "") + ".",))

    def explain_backward(self, lm, sheet, wanted):
        name = lm.layer.param("P")
        if name not in wanted:
            return []
        rule = self.latex_backward(lm.layer, sheet.grad_tex(lm), [sheet.input_tex(lm)])
        return [Display((rule.grads[name],)), Para(rule.notes[0][0].upper() + rule.notes[0][1:])] + sheet.tables(
            rf"\partial C/\partial {sup('P', lm.index)}", sheet.values.gradients[name], f"grad.{name}", per_example=False)
