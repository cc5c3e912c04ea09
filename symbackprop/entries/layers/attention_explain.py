"""explain's part for ``attention`` (symbackprop.entries.layers.attention): one head of example 1
written out where T ≤ 4 and d ≤ 4 — the scores, scaled and masked, each softmax row and its sum of
1, the weighted values; backward, the softmax's row form with numbers, why a masked weight gets no
gradient and why a constant shift of a row's scores changes nothing (a key bias's gradient is 0) —
and every array tabulated."""
import numpy as np

from ...writers.document import Display, Para
from .dense import sup

WRITTEN_T, WRITTEN_D = 4, 4     # the largest sequence and width whose head 1 is written out in full


class AttentionExplain:
    """The explain hooks of :class:`~symbackprop.entries.layers.attention.Attention` (mixed into it;
    uses its ``sizes``, ``names`` and LaTeX)."""

    def _written(self, layer) -> bool:
        t, d, h, dk = self.sizes(layer)
        return t <= WRITTEN_T and d <= WRITTEN_D

    def _heads(self, layer, arr):
        """A (N, T, T) stage of one head as (N, 1, T, T)."""
        return arr[:, None] if layer.opt["heads"] == 1 else arr

    def explain_forward(self, lm, sheet):
        layer, l = lm.layer, lm.index
        t, d, h, dk = self.sizes(layer)
        names = self.names(l)
        out = [Display((self.latex_forward(layer, sheet.out_tex(lm), [sheet.input_tex(lm)]),)),
               Para(f"The queries, keys and values: {t} × {d} each, one row a position"
                    + (f"; head $h$ takes the {dk} columns {_cols(1, dk)} for $h = 1$, and so on" if h > 1 else "") + ":")]
        for p in "qkv":
            out += sheet.tables(names[p], sheet.stage(lm, p), f"{p}{l}")
        one = self._written(layer)
        head = "head 1, example 1" if h > 1 else "example 1"
        rows = range(t) if one else range(1)
        out.append(Para(f"The scores $S = q_h k_h^\\top/\\sqrt{{d_k}}$, $d_k = {dk}$ ({head}"
                        + ("" if one else ", row 1 written out") + "):"))
        out.append(Display(tuple(self._score_line(lm, sheet, r, s) for r in rows for s in range(t))))
        if layer.opt["causal"]:
            out.append(Para("The causal mask adds $-\\infty$ to every score of a key after its query ($s > t$): "
                            "$e^{-\\infty} = 0$, so those weights are exactly 0 and each row's softmax runs over "
                            "the keys up to its own position."))
        out.append(Para("The softmax of each row over its keys (each row of weights sums to 1):"))
        out.append(Display(tuple(line for r in rows for line in self._softmax_lines(lm, sheet, r))))
        out += sheet.tables(names["S"], sheet.stage(lm, "scores"), f"scores{l}", what="head")
        out += sheet.tables(names["A"], sheet.stage(lm, "weights"), f"weights{l}", what="head")
        out.append(Para(f"The weighted values $o_{{t,j}} = \\sum_s A_{{t,s}} v_{{s,j}}$ ({head}"
                        + ("" if one else ", the first element") + "):"))
        cols = [(r, c) for r in rows for c in range(dk)] if one else [(0, 0)]
        out.append(Display(tuple(self._mix_line(lm, sheet, r, c) for r, c in cols)))
        out += sheet.tables(names["o"], sheet.stage(lm, "o"), f"o{l}")
        out.append(Para(f"Then ${sheet.out_tex(lm)} = {names['o']} (W_o^{{({l})}})^\\top"
                        + (f" + b_o^{{({l})}}$" if layer.opt["bias"] else "$") + ", each row as a dense layer's."))
        return out

    def _sym(self, lm, sheet, stage, idx):
        return sheet.at(lm.stage(stage).symbols, 0, idx)

    def _hidx(self, layer, r, s, head=0):
        return (r, s) if layer.opt["heads"] == 1 else (head, r, s)

    def _score_line(self, lm, sheet, r, s):
        n, names, layer = sheet.n, sheet.names, lm.layer
        dk = self.sizes(layer)[3]
        S = self._sym(lm, sheet, "scores", self._hidx(layer, r, s))
        pairs = [(self._sym(lm, sheet, "q", (r, c)), self._sym(lm, sheet, "k", (s, c))) for c in range(dk)]
        sym = " + ".join(f"{names[a]} {names[b]}" for a, b in pairs)
        num = " + ".join(f"{n.par(sheet.val(a))} \\times {n.par(sheet.val(b))}" for a, b in pairs)
        masked = r" \quad (\text{masked: } -\infty)" if layer.opt["causal"] and s > r else ""
        return rf"{names[S]} &= \frac{{{sym}}}{{\sqrt{{{dk}}}}} = \frac{{{num}}}{{\sqrt{{{dk}}}}} {n.eq(sheet.val(S))}{masked}"

    def _softmax_lines(self, lm, sheet, r):
        n, names, layer = sheet.n, sheet.names, lm.layer
        t = self.sizes(layer)[0]
        keys = [s for s in range(t) if s <= r or not layer.opt["causal"]]
        S = [self._sym(lm, sheet, "scores", self._hidx(layer, r, s)) for s in range(t)]
        A = [self._sym(lm, sheet, "weights", self._hidx(layer, r, s)) for s in range(t)]
        den_sym = " + ".join(f"e^{{{names[S[s]]}}}" for s in keys)
        den_num = " + ".join(f"e^{{{n.tex(sheet.val(S[s]))}}}" for s in keys)
        lines = []
        for s in range(t):
            if s not in keys:
                lines.append(rf"{names[A[s]]} &= \frac{{e^{{-\infty}}}}{{{den_sym}}} = 0")
                continue
            lines.append(rf"{names[A[s]]} &= \frac{{e^{{{names[S[s]]}}}}}{{{den_sym}}} = "
                         rf"\frac{{e^{{{n.tex(sheet.val(S[s]))}}}}}{{{den_num}}} {n.eq(sheet.val(A[s]))}")
        total = sum(sheet.val(A[s]) for s in keys)
        lines.append(rf"{' + '.join(names[A[s]] for s in range(t))} &= {n.sum([sheet.val(A[s]) for s in range(t)])} "
                     rf"{n.eq(total)}")
        return lines

    def _mix_line(self, lm, sheet, r, c):
        n, names, layer = sheet.n, sheet.names, lm.layer
        t = self.sizes(layer)[0]
        o = self._sym(lm, sheet, "o", (r, c))
        terms = [(self._sym(lm, sheet, "weights", self._hidx(layer, r, s)), self._sym(lm, sheet, "v", (s, c)))
                 for s in range(t)]
        sym = " + ".join(f"{names[a]} {names[v]}" for a, v in terms)
        num = " + ".join(f"{n.par(sheet.val(a))} \\times {n.par(sheet.val(v))}" for a, v in terms)
        return rf"{names[o]} &= {sym} = {num} {n.eq(sheet.val(o))}"

    def explain_backward(self, lm, sheet, wanted):
        layer, l = lm.layer, lm.index
        t, d, h, dk = self.sizes(layer)
        rule, names = self.latex_backward(layer, sheet.grad_tex(lm), [sheet.input_tex(lm)]), self.names(l)
        dnames = {p: f"\\mathrm{{d}}{s}" for p, s in names.items()}
        out = [Para("Backward through the attention, in the order the rules run (" + " ".join(rule.notes[:1]) + "):"),
               Display(tuple(_aligned(line) for line in rule.steps))]
        out += [Para(f"First the gradient of the heads' joined output, ${dnames['o']} = {sheet.grad_tex(lm)} W_o^{{({l})}}$:")]
        out += sheet.tables(dnames["o"], sheet.grad(lm, "o"), None)
        out += [Para(f"${dnames['v']} = A^\\top \\mathrm{{d}}o$ per head:")] + sheet.tables(dnames["v"], sheet.grad(lm, "v"), None)
        out += [Para(f"${dnames['A']} = \\mathrm{{d}}o\\, v^\\top$ per head:")]
        out += sheet.tables(dnames["A"], sheet.grad(lm, "weights"), None, what="head")
        out += self._softmax_backward(lm, sheet)
        out += sheet.tables(dnames["S"], sheet.grad(lm, "scores"), None, what="head")
        out += [Para(f"${dnames['q']} = \\mathrm{{d}}S\\, k / \\sqrt{{{dk}}}$ and ${dnames['k']} = \\mathrm{{d}}S^\\top q / "
                     f"\\sqrt{{{dk}}}$, per head:")]
        out += sheet.tables(dnames["q"], sheet.grad(lm, "q"), None) + sheet.tables(dnames["k"], sheet.grad(lm, "k"), None)
        params = [p for p in lm.params if p in wanted]
        if params:
            out.append(Para("Each projection's gradients sum over the examples and positions:"))
            out.append(Display(tuple(_aligned(rule.grads[p]) for p in params)))
            for p in params:
                out += sheet.tables(f"\\partial C/\\partial {_param_tex(p)}", sheet.values.gradients[p], f"grad.{p}",
                                    per_example=False)
        return out

    def _softmax_backward(self, lm, sheet):
        layer, n, names = lm.layer, sheet.n, sheet.names
        t, d, h, dk = self.sizes(layer)
        r = min(1, t - 1) if layer.opt["causal"] and t > 2 else 0 if layer.opt["causal"] else t - 1   # causal: a row with masked keys
        A = [self._sym(lm, sheet, "weights", self._hidx(layer, r, s)) for s in range(t)]
        dA = [sheet.steps[("dC/dweights", a)].symbol for a in A]
        dS = [sheet.steps[("dC/dscores", self._sym(lm, sheet, "scores", self._hidx(layer, r, s)))].symbol for s in range(t)]
        a, da, ds = ([sheet.val(x) for x in arr] for arr in (A, dA, dS))
        rowsum = sum(x * y for x, y in zip(a, da))
        which = f"row {r + 1}" + (" of head 1" if h > 1 else "") + ", example 1"
        lines = [rf"\textstyle\sum_s A_{{{r + 1},s}}\, \mathrm{{d}}A_{{{r + 1},s}} &= "
                 + " + ".join(f"{n.par(x)} \\times {n.par(y)}" for x, y in zip(a, da)) + f" {n.eq(rowsum)}"]
        for s in range(t):
            lines.append(rf"\mathrm{{d}}S_{{{r + 1},{s + 1}}} &= {names[A[s]]} \left(\mathrm{{d}}A_{{{r + 1},{s + 1}}} - "
                         rf"{n.par(rowsum)}\right) = {n.par(a[s])} \times ({n.tex(da[s])} - {n.par(rowsum)}) {n.eq(ds[s])}")
        out = [Para(f"The softmax's backward, row by row: $\\mathrm{{d}}S_{{t,s}} = A_{{t,s}}(\\mathrm{{d}}A_{{t,s}} - "
                    f"\\sum_{{s'}} A_{{t,s'}} \\mathrm{{d}}A_{{t,s'}})$ — each weight depends on every score of its row "
                    f"through the normaliser, which is what the row-sum term carries. {which[0].upper() + which[1:]}:"),
               Display(tuple(lines))]
        if layer.opt["causal"] and r < t - 1:
            out.append(Para(f"The masked weights ($s > {r + 1}$) are exactly 0, so their $\\mathrm{{d}}S$ is $0 \\times "
                            "(\\dots) = 0$ exactly, whatever $\\mathrm{d}A$ is: no gradient reaches a future key through "
                            "this row."))
        out.append(Para(f"The row's $\\mathrm{{d}}S$ sums to ${n.sum(ds)} {n.eq(sum(ds))}$, and it must be 0: "
                        "$\\sum_s \\mathrm{d}S_{t,s} = (1 - \\sum_s A_{t,s}) \\sum_s A_{t,s}\\mathrm{d}A_{t,s} = 0$ "
                        "because the weights sum to 1 — adding a constant to every score of a row changes no weight, "
                        "so its gradient along that direction is 0 (to rounding here)."
                        + (f" That is why ${_param_tex(layer.param('bk'))}$'s gradient is exactly 0: $b_k$ adds "
                           "$q_t \\cdot b_k/\\sqrt{d_k}$ to every score of row $t$, a constant shift of the row"
                           + _rounding(sheet.values.gradients[layer.param("bk")]) if layer.opt["bias"] else "")))
        return out


def _cols(first: int, last: int) -> str:
    return f"{first} to {last}" if last > first else str(first)


def _param_tex(name: str) -> str:
    head = name.rstrip("0123456789")
    return sup(f"{{{head[0]}_{head[1]}}}", int(name[len(head):]))     # {b_q}^{(2)}: room for an index


def _aligned(line: str) -> str:
    """A rule as a line of an aligned display: its first "=" the alignment point."""
    return line.replace(" = ", " &= ", 1)


def _rounding(values) -> str:
    """What the table of a gradient that is exactly 0 shows: 0, or float64's rounding of it."""
    worst = float(np.max(np.abs(values)))
    if worst == 0:
        return " (its table shows 0)."
    return f" (its table shows float64's rounding of that 0, at most {worst:.0e} in size)."
