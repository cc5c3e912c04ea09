"""The mistakes of the training pass every network shares, for the mistake catalogue
(:mod:`symbackprop.check.catalogue`): the forward pass's (the activation's, the loss's) and the backward
pass's (the loss's derivative, the activation's, the chain rule's, the batch mean's), each read off
the node's expression and the registry entries. Each is (rank, description, rewrite, generic).
"""
import sympy

from .mistakes import Mistakes, fname, pretty, scale_parts, squared, steps_factor, sub, times, unsquare
from ..entries.registry import a as A, z as Z

PEERS_MAX = 16        # a gradient's δ swapped for another element's: in quantities up to this size


class ForwardMistakes(Mistakes):
    """A layer's output (the activation) and the loss."""

    def a(self, node):
        layer = node.meta["layer"].layer
        if not layer.has_z or not layer.activation.elementwise:
            return []
        g, idx, n = self.graph, node.meta["element"], node.meta["example"]
        z = g.sym(node.meta["layer"].stage("z").symbols[idx], n)
        if node.kind.startswith("new."):
            z = g.new_replace.get(z, z)
        f = fname(layer.activation)
        return [(31, "the activation not applied (a = z)", lambda e: z, True),
                (32, f"{f}(−z) computed instead of {f}(z)", sub({z: -z}), True)]

    def loss(self, node):
        loss, out = self.network.loss, []
        half, mean = scale_parts(loss, self.network.output_size)
        if squared(loss) and not half:
            out.append((10, "½(a − y)² used: a factor ½ too many", times(sympy.Rational(1, 2)), True))
        if squared(loss) and half:
            out.append((10, "the ½ of ½(a − y)² left out", times(2), True))
        if mean is not None:
            out.append((11, "not divided by the number of outputs n", times(mean), True))
        if squared(loss):
            out.append((12, "(a − y) not squared", unsquare, True))
        else:
            out.append((13, "the sign flipped", times(-1), True))
        if self.graph.N > 1:
            out.append((14, f"the batch mean's 1/N left out (the {self.graph.N} losses summed, not averaged)",
                        times(self.graph.N), True))
        steps = steps_factor(self.network)
        if steps is not None:
            out.append((15, "the mean over N·T taken over N only (the steps' losses summed, not averaged)",
                        times(steps), True))
        return out


class BackwardMistakes(Mistakes):
    """The backward steps: ∂C/∂a (and batch norm's ∂C/∂μ, ...), ∂a/∂z, δ and the gradients."""

    def dC_da(self, node):
        out, l = [], node.meta["layer"].index
        if l == self.network.depth:
            loss = self.network.loss
            half, mean = scale_parts(loss, self.network.output_size)
            if squared(loss) and not half:
                out.append((1, "the 2 of d/da (a − y)² dropped", times(sympy.Rational(1, 2)), True))
            if squared(loss) and half:
                out.append((1, "∂C/∂a doubled (d/da ½(a − y)² is a − y)", times(2), True))
            if mean is not None:
                out.append((2, "the 1/n of the mean left out", times(mean), True))
            out.append((5, "the sign flipped ((y − a) for (a − y))", times(-1), True))
            if self.graph.model.examples > 1:
                out.append((7, "the batch mean's 1/N left out", times(self.graph.N), True))
            steps = steps_factor(self.network)
            if steps is not None:
                out.append((8, "the mean over N·T taken over N only in ∂C/∂a", times(steps), True))
            return out
        return self.upstream(node)

    def upstream(self, node):
        """A gradient passed back from later layers: its sign, and those layers already updated."""
        out = [(5, "the sign flipped", times(-1), True)]
        new_with = self.graph.new_with
        if new_with is not None:
            after = self.graph.updated[new_with]
            later = {p: q for p, q in after.items() if p != q and p in node.expr.free_symbols}
            if later:
                names = sorted({self.model_label(p).split("[")[0] for p in later})
                out.append((42, f"the updates not simultaneous: {', '.join(names)} already updated when the "
                                f"gradients of layer {node.meta['layer'].index} were taken", sub(later), True))
        return out

    def da_dz(self, node):
        layer = node.meta["layer"]
        act, idx, n, g = layer.layer.activation, node.meta["element"], node.meta["example"], self.graph
        a, z = g.sym(layer.stage("a").symbols[idx], n), g.sym(layer.stage("z").symbols[idx], n)
        f = fname(act)
        out = [(2, f"the {f}′ factor missing", lambda e: sympy.Integer(1), True)]
        if act.output_form is not None and not act.output_form.has(sympy.Piecewise) and act.output_form.has(A):
            form = act.output_form
            out.append((3, f"{f}′ taken at z instead of a: {pretty(form.xreplace({A: Z}))}, not {pretty(form)}",
                        lambda e: form.xreplace({A: z}), True))
        elif act.output_form is None:
            out.append((3, f"{f}′ evaluated at a instead of z", lambda e: act.derivative.xreplace({Z: a}), True))
        out.append((4, f"{f}(z) used for {f}′(z)", lambda e: a, True))
        out.append((5, "the sign flipped", times(-1), True))
        return out

    def delta(self, node):
        out = [(5, "the sign flipped", times(-1), True)]
        nodes, label = self.graph.nodes, self.graph.label
        if node.expr.is_Mul:
            for factor in node.expr.args:
                if factor in nodes and nodes[factor].kind == "da/dz":
                    f = fname(node.meta["layer"].layer.activation)
                    out.append((2, f"the {f}′ factor {label(factor)} missing", sub({factor: 1}), True))
                elif factor in nodes:
                    out.append((6, f"the factor {label(factor)} dropped", sub({factor: 1}), True))
        return out

    def grad(self, node):
        g, terms = self.graph, node.meta["terms"]
        out = [(5, "the sign flipped", times(-1), True)]
        if g.renamed:
            out.append((7, "the batch mean's 1/N left out (the examples' gradients summed)", times(g.N), True))
        if len(terms) != 1:
            return out
        (f, src, n), = terms
        d = g.sym(g.step_of[src].symbol, n)
        out.append((6, f"the factor {g.label(d)} dropped", sub({d: 1}), True))
        peers = [p for p in g.nodes.values() if p.quantity == g.nodes[d].quantity and p.meta.get("example") == n]
        if len(peers) <= PEERS_MAX:
            for p in peers:
                if p.symbol != d:
                    out.append((20, f"{g.label(p.symbol)} used in place of {g.label(d)}", sub({d: p.symbol}), False))
        factor = g.ren(f, n)
        if factor != 1:
            out.append((6, f"the factor {g.label(factor)} (∂z/∂W) dropped", sub({factor: 1}), True))
        return out
