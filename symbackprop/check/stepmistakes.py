"""The mistakes of the optimizer's step, for the mistake catalogue (:mod:`symbackprop.check.catalogue`):
in its states and parameters (read off the optimizer's rules: the learning rate, bias correction,
ε, β and 1 − β, the weight decay) and in the forward pass after it (a layer not updated, an input
from before the step). Each is (rank, description, rewrite, generic).
"""
import sympy

from ..entries.optimizers import HYPER, OPTIMIZERS, t, theta
from .mistakes import Mistakes, sub, times, unsquare

lr, beta1, beta2, eps, rho, wd, bc = (HYPER[k] for k in
                                      ("learning_rate", "beta1", "beta2", "eps", "rho", "weight_decay", "bias_correction"))


class StepMistakes(Mistakes):
    """An optimizer's states and parameters after the step, and the new pass's nodes."""

    def new(self, node):
        """The pass after the step: a layer's parameters not updated, an input from before it."""
        meta, out = node.meta, []
        if meta.get("old_params"):
            l = meta["layer"].index
            where = ("a step updates every layer" if self.graph.settings.train is None else
                     "the step updates " + ", ".join(self.graph.settings.train)) \
                if l < self.network.depth else "the weights before the step used"
            names = sorted({self.model_label(p).split("[")[0] for p in meta["old_params"].values()})
            what = "weights and biases" if {n.rstrip("0123456789") for n in names} == {"W", "b"} else ", ".join(names)
            out.append((40, f"layer {l}'s {what} not updated ({where})", sub(meta["old_params"]), True))
        if meta.get("old_inputs"):
            sources = sorted({self.graph.label(u).split("[")[0] for u in meta["old_inputs"].values()})
            out.append((41, f"{', '.join(sources)} from before the step used", sub(meta["old_inputs"]), True))
        return out

    def state(self, node):
        out, free = [], node.expr.free_symbols
        for h in (beta1, beta2, rho):
            if h in free:
                out.append((60, f"{h.name} and 1 − {h.name} swapped", sub({h: 1 - h}), True))
        if node.expr.has(sympy.Pow):
            out.append((61, "the gradient not squared", unsquare, True))
        out.append((62, "the sign flipped", times(-1), True))
        return out + self.weight_decay(node)

    def param(self, node):
        free, out = node.expr.free_symbols, []
        if node.expr == node.meta["param"]:
            return out
        state = rooted_state(OPTIMIZERS[node.meta["optimizer"]])
        if lr in free:
            out.append((50, "the learning rate left out", sub({lr: 1}), True))
            out.append((51, "the learning rate applied twice", sub({lr: lr**2}), True))
        out.append((52, "the step added instead of subtracted (sign flipped)",
                    lambda e, p=node.meta["param"]: 2 * p - e, True))
        if bc in free:
            if self.graph.settings.bias_correction:
                out.append((49, "Adam without bias correction", sub({bc: 0}), True))
            else:
                out.append((49, "Adam with bias correction (the settings turn it off)", sub({bc: 1}), True))
        if _has_root_denominator(node.expr):
            out.append((54, f"ε inside the square root (√({state} + ε))", _root_denominator("inside"), True))
            out.append((55, f"the division by √{state} + ε left out", _root_denominator("drop"), True))
            out.append((56, f"divided by {state} + ε instead of √{state} + ε", _root_denominator("unroot"), True))
        if t in free:
            out.append((57, "the time step off by one (t = 2 for the first step)", sub({t: 2}), True))
        return out + self.weight_decay(node)

    def weight_decay(self, node):
        if wd in node.expr.free_symbols and node.hyper[wd].lo != 0:
            return [(58, "the weight decay left out", sub({wd: 0}), True)]
        return []


def _is_root(x) -> bool:
    return x.is_Pow and x.exp == sympy.S.Half


def _is_root_plus_eps(x) -> bool:
    return x.is_Add and eps in x.args and any(_is_root(a) for a in x.args)


def _has_root_denominator(e) -> bool:
    return any(_is_root_plus_eps(x) for x in sympy.preorder_traversal(e))


def _root_denominator(how):
    def fix(x):
        if how == "drop":
            return sympy.Integer(1)
        unrooted = [a.base if _is_root(a) else a for a in x.args]
        return sympy.sqrt(sympy.Add(*unrooted)) if how == "inside" else sympy.Add(*unrooted)
    return lambda e: e.replace(_is_root_plus_eps, fix)


def rooted_state(opt) -> str:
    """The name of the state whose square root divides ``opt``'s step (v in Adam, s in RMSProp),
    read off its θ rule with the temporaries (m̂, v̂) written out."""
    inline = {}
    for target, expr in opt.rules:
        inline[target] = expr.xreplace(inline)
    roots = [x.base for x in sympy.preorder_traversal(inline[theta]) if _is_root(x)]
    names = sorted({x.name for root in roots for x in root.free_symbols} & set(opt.state))
    return names[0] if names else "v"
