"""The catalogue of mistakes ``check`` names: for each node of the check graph, the slips a person
may have made in its own formula, each a rewrite of that formula.

Two sources, never a hand-typed number:

* mistakes about what every network shares, read off the node's expression and the registry: the
  loss's (the 2 of d/da (a − y)² dropped, ½ too many, the mean's 1/n), the activation's (σ′ at z,
  σ for σ′, the activation not applied), the chain rule's (a factor dropped, the sign flipped, the
  wrong δ), the batch mean's 1/N, the optimizer's (from its rules: the learning rate, bias
  correction, ε, β and 1 − β), and the step's (updates not simultaneous, a layer not updated);
* each layer entry's own slips (:meth:`~symbackprop.layers.base.LayerKind.slips`): its element
  definitions rewritten — a dense layer's bias left out or W transposed, a convolution's kernel not
  flipped, max-pool's gradient to every element, batch norm's statistics taken as constants, ... —
  tried on the stage's own values (``forward``), on the gradients passed back through them
  (``inputs``, by ``sympy.diff`` of the mistaken definitions) or on the parameters' gradients
  (``params``).

Each mistake is (rank, description, rewrite of the node's expression, generic): lower ranks are
commoner; a generic one can be made in every element of a quantity at once.
"""
import re
import unicodedata

import sympy

from .optimizers import HYPER, OPTIMIZERS, t, theta
from .registry import a as A, n as N, y as Y, z as Z

lr, beta1, beta2, eps, rho, wd, bc = (HYPER[k] for k in
                                      ("learning_rate", "beta1", "beta2", "eps", "rho", "weight_decay", "bias_correction"))
PEERS_MAX = 16        # a gradient's δ swapped for another element's: in quantities up to this size


class Catalogue:
    def __init__(self, graph):
        from .slipbook import SlipBook
        self.graph = graph
        self.network = graph.network
        self.slips = SlipBook(graph)

    def __call__(self, node) -> list[tuple]:
        kind = node.kind.removeprefix("new.")
        method = getattr(self, f"_{kind.replace('/', '_')}", None)
        out = method(node) if method else []
        if node.kind.startswith("new.") and kind not in ("loss",):
            out = self._new(node) + out
        return out + self._slips(node)

    def _name(self, sym) -> str:
        return self.graph.labels.get(sym, str(sym))

    # the layers' own slips ---------------------------------------------------------------------
    def _slips(self, node) -> list:
        g, book, out = self.graph, self.slips, []
        lm = node.meta.get("layer")
        if lm is None or node.kind in ("da/dz", "state", "param"):
            return out
        if "stage" in node.meta and ("u" not in node.meta):            # a forward value
            for slip in book(lm):
                if "forward" in slip.where:
                    rank, text = slip.where["forward"]
                    out.append((rank, text, _lazy(lambda sl=slip: book.forward(node, sl)), slip.generic))
            return out
        place = "params" if node.kind == "grad" else "inputs"
        layers = {g.where[src][0].index: g.where[src][0] for _, src, _ in node.meta.get("terms", ())}
        for source in layers.values():
            for slip in book(source):
                if place in slip.where:
                    rank, text = slip.where[place]
                    out.append((rank, text, _lazy(lambda sl=slip, s=source: book.backward(node, sl, s)), slip.generic))
        return out

    # forward -----------------------------------------------------------------------------------
    def _a(self, node):
        layer = node.meta["layer"].layer
        if not layer.has_z or not layer.activation.elementwise:
            return []
        g, idx, n = self.graph, node.meta["element"], node.meta["example"]
        z = g.sym(node.meta["layer"].stage("z").symbols[idx], n)
        if node.kind.startswith("new."):
            z = g.new_replace.get(z, z)
        f = fname(layer.activation)
        return [(31, "the activation not applied (a = z)", lambda e: z, True),
                (32, f"{f}(−z) computed instead of {f}(z)", _sub({z: -z}), True)]

    def _new(self, node):
        """The pass after the step: a layer's parameters not updated, an input from before it."""
        meta, out = node.meta, []
        if meta.get("old_params"):
            l = meta["layer"].index
            where = ("a step updates every layer" if self.graph.settings.train is None else
                     "the step updates " + ", ".join(self.graph.settings.train)) \
                if l < self.network.depth else "the weights before the step used"
            names = sorted({self.slips.model_label(p).split("[")[0] for p in meta["old_params"].values()})
            what = "weights and biases" if {n.rstrip("0123456789") for n in names} == {"W", "b"} else ", ".join(names)
            out.append((40, f"layer {l}'s {what} not updated ({where})", _sub(meta["old_params"]), True))
        if meta.get("old_inputs"):
            sources = sorted({self._name(u).split("[")[0] for u in meta["old_inputs"].values()})
            out.append((41, f"{', '.join(sources)} from before the step used", _sub(meta["old_inputs"]), True))
        return out

    def _loss(self, node):
        loss, out = self.network.loss, []
        half, mean = scale_parts(loss, self.network.output_size)
        if squared(loss) and not half:
            out.append((10, "½(a − y)² used: a factor ½ too many", _times(sympy.Rational(1, 2)), True))
        if squared(loss) and half:
            out.append((10, "the ½ of ½(a − y)² left out", _times(2), True))
        if mean is not None:
            out.append((11, "not divided by the number of outputs n", _times(mean), True))
        if squared(loss):
            out.append((12, "(a − y) not squared", _unsquare, True))
        else:
            out.append((13, "the sign flipped", _times(-1), True))
        if self.graph.N > 1:
            out.append((14, f"the batch mean's 1/N left out (the {self.graph.N} losses summed, not averaged)",
                        _times(self.graph.N), True))
        return out

    # backward ----------------------------------------------------------------------------------
    def _dC_da(self, node):
        out, l = [], node.meta["layer"].index
        if l == self.network.depth:
            loss = self.network.loss
            half, mean = scale_parts(loss, self.network.output_size)
            if squared(loss) and not half:
                out.append((1, "the 2 of d/da (a − y)² dropped", _times(sympy.Rational(1, 2)), True))
            if squared(loss) and half:
                out.append((1, "∂C/∂a doubled (d/da ½(a − y)² is a − y)", _times(2), True))
            if mean is not None:
                out.append((2, "the 1/n of the mean left out", _times(mean), True))
            out.append((5, "the sign flipped ((y − a) for (a − y))", _times(-1), True))
            if self.graph.model.examples > 1:
                out.append((7, "the batch mean's 1/N left out", _times(self.graph.N), True))
            return out
        return self._upstream(node)

    def _upstream(self, node):
        """A gradient passed back from later layers: its sign, and those layers already updated."""
        out = [(5, "the sign flipped", _times(-1), True)]
        new_with = self.graph.new_with
        if new_with is not None:
            after = self.graph.updated[new_with]
            later = {p: q for p, q in after.items() if p != q and p in node.expr.free_symbols}
            if later:
                names = sorted({self.slips.model_label(p).split("[")[0] for p in later})
                out.append((42, f"the updates not simultaneous: {', '.join(names)} already updated when the "
                                f"gradients of layer {node.meta['layer'].index} were taken", _sub(later), True))
        return out

    def __getattr__(self, name):
        if name.startswith("_dC_d"):          # batch norm's ∂C/∂μ, ∂C/∂var, ∂C/∂x̂
            return self._upstream
        raise AttributeError(name)

    def _da_dz(self, node):
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
        out.append((5, "the sign flipped", _times(-1), True))
        return out

    def _delta(self, node):
        out = [(5, "the sign flipped", _times(-1), True)]
        nodes = self.graph.nodes
        if node.expr.is_Mul:
            for factor in node.expr.args:
                if factor in nodes and nodes[factor].kind == "da/dz":
                    f = fname(node.meta["layer"].layer.activation)
                    out.append((2, f"the {f}′ factor {self._name(factor)} missing", _sub({factor: 1}), True))
                elif factor in nodes:
                    out.append((6, f"the factor {self._name(factor)} dropped", _sub({factor: 1}), True))
        return out

    def _grad(self, node):
        g, terms = self.graph, node.meta["terms"]
        out = [(5, "the sign flipped", _times(-1), True)]
        if g.renamed:
            out.append((7, "the batch mean's 1/N left out (the examples' gradients summed)", _times(g.N), True))
        if len(terms) != 1:
            return out
        (f, src, n), = terms
        d = g.sym(g.step_of[src].symbol, n)
        out.append((6, f"the factor {self._name(d)} dropped", _sub({d: 1}), True))
        peers = [p for p in g.nodes.values() if p.quantity == g.nodes[d].quantity and p.meta.get("example") == n]
        if len(peers) <= PEERS_MAX:
            for p in peers:
                if p.symbol != d:
                    out.append((20, f"{self._name(p.symbol)} used in place of {self._name(d)}", _sub({d: p.symbol}), False))
        factor = g.ren(f, n)
        if factor != 1:
            out.append((6, f"the factor {self._name(factor)} (∂z/∂W) dropped", _sub({factor: 1}), True))
        return out

    # the optimizer -----------------------------------------------------------------------------
    def _state(self, node):
        out, free = [], node.expr.free_symbols
        for h in (beta1, beta2, rho):
            if h in free:
                out.append((60, f"{h.name} and 1 − {h.name} swapped", _sub({h: 1 - h}), True))
        if node.expr.has(sympy.Pow):
            out.append((61, "the gradient not squared", _unsquare, True))
        out.append((62, "the sign flipped", _times(-1), True))
        return out + self._weight_decay(node)

    def _param(self, node):
        free, out = node.expr.free_symbols, []
        if node.expr == node.meta["param"]:
            return out
        state = rooted_state(OPTIMIZERS[node.meta["optimizer"]])
        if lr in free:
            out.append((50, "the learning rate left out", _sub({lr: 1}), True))
            out.append((51, "the learning rate applied twice", _sub({lr: lr**2}), True))
        out.append((52, "the step added instead of subtracted (sign flipped)",
                    lambda e, p=node.meta["param"]: 2 * p - e, True))
        if bc in free:
            if self.graph.settings.bias_correction:
                out.append((49, "Adam without bias correction", _sub({bc: 0}), True))
            else:
                out.append((49, "Adam with bias correction (the settings turn it off)", _sub({bc: 1}), True))
        if _has_root_denominator(node.expr):
            out.append((54, f"ε inside the square root (√({state} + ε))", _root_denominator("inside"), True))
            out.append((55, f"the division by √{state} + ε left out", _root_denominator("drop"), True))
            out.append((56, f"divided by {state} + ε instead of √{state} + ε", _root_denominator("unroot"), True))
        if t in free:
            out.append((57, "the time step off by one (t = 2 for the first step)", _sub({t: 2}), True))
        return out + self._weight_decay(node)

    def _weight_decay(self, node):
        if wd in node.expr.free_symbols and node.hyper[wd].lo != 0:
            return [(58, "the weight decay left out", _sub({wd: 0}), True)]
        return []


# rewrites ---------------------------------------------------------------------------------------
def _lazy(make):
    """A rewrite that ignores the expression it is given: the slip's own recomputation (or the
    expression unchanged when the slip does not touch it), made once. Not combined into pairs."""
    cache = []

    def rewrite(e):
        if not cache:
            cache.append(make())
        return e if cache[0] is None else cache[0]
    rewrite.slip = True
    return rewrite


def _sub(mapping):
    return lambda e: e.xreplace(mapping)


def _times(factor):
    return lambda e: e * factor


def _unsquare(e):
    return e.replace(lambda x: x.is_Pow and x.exp == 2, lambda x: x.base)


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


def squared(loss) -> bool:
    """Whether the loss's term is (a − y)²: the squared losses share their mistakes."""
    return sympy.expand(loss.term - (A - Y) ** 2) == 0


def scale_parts(loss, outputs: int) -> tuple[bool, sympy.Expr | None]:
    """Whether the loss's scale holds a ½ (½(a − y)²), and the factor dividing by the number of
    outputs leaves out (n for a mean over n > 1 outputs; None for no mean)."""
    coeff, rest = loss.scale.as_coeff_Mul()
    mean = 1 / rest.xreplace({N: outputs}) if rest.has(N) and outputs > 1 else None
    return coeff == sympy.Rational(1, 2), mean


def fname(act) -> str:
    """The activation's name as its registry entry writes it in LaTeX, as plain text: σ for
    ``\\sigma``, relu for ``\\operatorname{relu}``, f for a formula from the spec."""
    def plain(match):
        try:
            return unicodedata.lookup(f"GREEK SMALL LETTER {match.group(1).upper()}")
        except KeyError:
            return match.group(1)
    name = re.sub(r"\\operatorname\{(\w+)\}", r"\1", act.latex)
    name = re.sub(r"\\([A-Za-z]+)", plain, name)
    return name if name.isidentifier() else act.name if act.name.isidentifier() else "f"


def pretty(expr) -> str:
    return str(expr).replace("**2", "²").replace("*", "").replace(" - ", " − ")
