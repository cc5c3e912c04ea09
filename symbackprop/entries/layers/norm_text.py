"""The text of ``batchnorm`` and ``layernorm`` (symbackprop.entries.layers.norm): their rules in LaTeX and
their part of a worked example — the statistics, x̂ and the output with numbers, the scale and
shift's gradients, and the input gradient's compact form with the batch coupling visible."""
import numpy as np

from ...writers.document import Display, Para
from .base import Backward, rule_and_tables
from .dense import grad_tex, sup


class NormText:
    """The LaTeX and explain hooks of :class:`~symbackprop.entries.layers.norm.Norm` (mixed into it; uses its
    ``couples_batch`` and ``stat_axes``)."""

    def explain_forward(self, lm, sheet):
        layer, l, n = lm.layer, lm.index, sheet.n
        x = sheet.input_tex(lm)
        last = self.last(layer)
        over = (f"per channel, over the batch's {sheet.N} examples" + (" and every position" if len(layer.shape) > 1 else "")
                + ": the batch statistics, which couple the examples" if self.couples_batch
                else "per position, over its last axis" if last else "per example, over all its values")
        mean, var, xhat = (lm.stage(s).symbols for s in ("mean", "var", "xhat"))
        first = (0,) if self.couples_batch else ()
        pick = ((lambda arr: arr[first]) if self.couples_batch                                      # noqa: E731
                else (lambda arr: sheet.at(arr, 0, (0,) * (len(layer.shape) - 1))) if last else (lambda arr: sheet.at(arr, 0)))
        stat = (lambda name: sheet.stage(lm, name))
        out = [Display((self.latex_forward(layer, f"z^{{({l})}}", [x]),)),
               Para(f"The mean $\\mu^{{({l})}}$ and the (biased) variance $\\mathrm{{var}}^{{({l})}}$, {over}"
                    + (" (channel 1 written out):" if self.couples_batch else " (example 1, position 1 written out):"
                       if last else " (example 1 written out):")),
               Display(tuple(sheet.mean_lines(pick(mean)) + sheet.mean_lines(pick(var))))]
        per = self.couples_batch
        out += sheet.tables("\\mu^{(%d)}" % l, stat("mean"), f"mean{l}", per_example=not per)
        out += sheet.tables("\\mathrm{var}^{(%d)}" % l, stat("var"), f"var{l}", per_example=not per)
        at0 = (0,) * (xhat.ndim - 1)
        e, u = sheet.at(xhat, 0, at0), sheet.at(lm.sources[0], 0, at0)
        m, v = pick(mean), pick(var)
        eps = _tex_number(layer.opt["eps"])
        out += [Para(f"Then $\\hat{{x}} = ({x} - \\mu)/\\sqrt{{\\mathrm{{var}} + \\epsilon}}$, one element written out:"),
                Display((rf"{sheet.names[e]} &= \frac{{{sheet.names[u]} - {sheet.names[m]}}}{{\sqrt{{{sheet.names[v]} + \epsilon}}}}"
                         rf" = \frac{{{n.par(sheet.val(u))} - {n.par(sheet.val(m))}}}{{\sqrt{{{n.tex(sheet.val(v))} + {eps}}}}} "
                         f"{n.eq(sheet.val(e))}",))]
        out += sheet.tables("\\hat{x}^{(%d)}" % l, stat("xhat"), f"xhat{l}")
        z = sheet.at(lm.stage("z").symbols, 0, at0)
        c = self.gamma_index(layer, (0, *at0) if self.couples_batch else at0)
        g, b = lm.params[layer.param("gamma")][c], lm.params[layer.param("beta")][c]
        out += [Para(r"and $z = \gamma \hat{x} + \beta$:"),
                Display((f"{sheet.names[z]} &= {sheet.names[g]} {sheet.names[e]} + {sheet.names[b]} = "
                         rf"{n.par(sheet.val(g))} \times {n.par(sheet.val(e))} {'-' if sheet.val(b) < 0 else '+'} "
                         f"{n.tex(abs(sheet.val(b)))} {n.eq(sheet.val(z))}",))]
        return out

    def explain_backward(self, lm, sheet, wanted):
        layer, l, out = lm.layer, lm.index, []
        rule = self.latex_backward(layer, f"\\delta^{{({l})}}", [sheet.input_tex(lm)])
        for prefix in ("gamma", "beta"):
            name = layer.param(prefix)
            if name not in wanted:
                continue
            steps = [st for st in sheet.d.gradients() if st.param == name]
            out += [Display((rule.grads[name],)), Display(tuple(sheet.step_lines(steps[0])))]
            out += sheet.tables(f"\\partial C/\\partial {_gamma_beta(l)[prefix == 'beta']}", sheet.values.gradients[name],
                                f"grad.{name}", per_example=False)
        if out:
            out.insert(0, Para("The scale and shift: each gradient sums over "
                               + ("the batch" + (" and the positions" if len(layer.shape) > 1 else "") if self.couples_batch
                                  else "the examples and positions" if self.last(layer) else "the examples") + ":"))
        return out

    def compact(self, lm, sheet):
        """The compact backward form's pieces, from one pass's numbers: g = γ·δ, its mean ḡ, the
        mean of g·x̂, and ∂C/∂x = (g − ḡ − x̂·mean(g·x̂)) / √(var + ε)."""
        layer = lm.layer
        delta, xhat, var = sheet.grad(lm, "z"), sheet.stage(lm, "xhat"), sheet.stage(lm, "var")
        gamma = sheet.param(layer.param("gamma"))
        axes = self.axes_of(layer)[0]
        g = delta * (gamma.reshape((1,) + gamma.shape + (1,) * (delta.ndim - 1 - gamma.ndim)) if self.couples_batch
                     else gamma.reshape((1,) * (delta.ndim - gamma.ndim) + gamma.shape))
        gbar, gx = g.mean(axis=axes, keepdims=True), (g * xhat).mean(axis=axes, keepdims=True)
        rstd = 1 / np.sqrt(np.expand_dims(var, axes) + layer.opt["eps"])
        return g, gbar, gx, rstd * (g - gbar - xhat * gx)

    def explain_input_gradient(self, lm, sheet, k, part=None):
        layer, n = lm.layer, sheet.n
        g, gbar, gx, _ = self.compact(lm, sheet)
        xhat, var = sheet.stage(lm, "xhat"), sheet.stage(lm, "var")
        first, src = (0,) * g.ndim, layer.sources[0]
        index = ",".join(["1"] * (g.ndim if sheet.net.batched else g.ndim - 1))
        written = (rf"\frac{{\partial C}}{{\partial a^{{({src})}}_{{{index}}}}} "
                   rf"&= \frac{{1}}{{\sqrt{{{n.tex(var.ravel()[0])} + {_tex_number(layer.opt['eps'])}}}}}\left({n.tex(g[first])} "
                   rf"- {n.par(gbar.ravel()[0])} - {n.par(xhat[first])} \times {n.par(gx.ravel()[0])}\right) "
                   rf"{n.eq(sheet.passed(lm, k, part)[first])}")
        coupling = (r"every example's gradient depends on the whole batch's $\delta$ through the two means: the batch "
                    "coupling" if self.couples_batch else r"each example's gradient depends on its own $\delta$ only")
        rule = rule_and_tables(self, lm, sheet, k, part)
        out = rule[:2] + [Para(r"In numbers, with $g = \gamma \odot \delta$: $\overline{g}$ and "
                               rf"$\overline{{g \odot \hat{{x}}}}$ are means like $\mu$'s, so {coupling}:")]
        for tex, arr in ((r"\overline{g}", gbar), (r"\overline{g \odot \hat{x}}", gx)):
            arr = (arr.reshape(arr.shape[1:2]) if self.couples_batch else arr.reshape(arr.shape[:-1]) if self.last(layer)
                   else arr.reshape(arr.shape[0]))
            out += sheet.tables(tex, arr, None, per_example=not self.couples_batch)
        out += [Para("The first element" + (" (example 1, channel 1)" if self.couples_batch else " (example 1)") + ":"),
                Display((written,))]
        return out + rule[2:]

    def latex_forward(self, layer, out, ins):
        i = layer.index
        G, B = _gamma_beta(i)
        over = r"\text{over the batch" + (r" and positions}" if len(layer.shape) > 1 else "}") if self.couples_batch \
            else r"\text{over the last axis, per position}" if self.last(layer) else r"\text{over each example}"
        return (rf"\hat{{x}}^{{({i})}} = \frac{{{ins[0]} - \mu^{{({i})}}}}{{\sqrt{{\mathrm{{var}}^{{({i})}} + \epsilon}}}},\ "
                rf"{out} = {G} \odot \hat{{x}}^{{({i})}} + {B} \quad "
                rf"(\mu, \mathrm{{var}}\ {over},\ \epsilon = {_tex_number(layer.opt['eps'])})")

    def latex_backward(self, layer, delta, ins):
        i = layer.index
        G, B = _gamma_beta(i)
        over = ("the batch" + (" and positions" if len(layer.shape) > 1 else "") if self.couples_batch
                else "the last axis (each position's features)" if self.last(layer) else "each example")
        return Backward(
            {layer.param("gamma"): rf"{grad_tex(G)} = \textstyle\sum {delta} \odot \hat{{x}}^{{({i})}}",
             layer.param("beta"): rf"{grad_tex(B)} = \textstyle\sum {delta}"},
            (rf"\frac{{1}}{{\sqrt{{\mathrm{{var}}^{{({i})}} + \epsilon}}}}\left(g - \overline{{g}} - \hat{{x}}^{{({i})}} "
             rf"\odot \overline{{g \odot \hat{{x}}^{{({i})}}}}\right)",),
            (rf"$g = {G} \odot {delta}$; $\overline{{\cdot}}$ is the mean over {over}, as for $\mu^{{({i})}}$; "
             r"the two mean terms are the paths through $\mu$ and $\mathrm{var}$, which depend on every value they are over.",))


def _gamma_beta(i: int) -> tuple[str, str]:
    return sup(r"\gamma", i), sup(r"\beta", i)


def _tex_number(x: float) -> str:
    mant, _, exp = f"{x:g}".partition("e")
    return rf"{mant} \times 10^{{{int(exp)}}}" if exp else mant
