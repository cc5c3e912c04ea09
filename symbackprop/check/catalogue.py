"""The catalogue of mistakes ``check`` names: for each node of the check graph, the slips a person
may have made in its own formula, each a rewrite of that formula.

Two sources, never a hand-typed number:

* mistakes about what every network shares, read off the node's expression and the registry: the
  loss's (the 2 of d/da (a − y)² dropped, ½ too many, the mean's 1/n), the activation's (σ′ at z,
  σ for σ′, the activation not applied), the chain rule's (a factor dropped, the sign flipped, the
  wrong δ), the batch mean's 1/N, the optimizer's (from its rules: the learning rate, bias
  correction, ε, β and 1 − β), and the step's (updates not simultaneous, a layer not updated);
* each layer entry's own slips (:meth:`~symbackprop.entries.layers.base.LayerKind.slips`): its element
  definitions rewritten — a dense layer's bias left out or W transposed, a convolution's kernel not
  flipped, max-pool's gradient to every element, batch norm's statistics taken as constants, ... —
  tried on the stage's own values (``forward``), on the gradients passed back through them
  (``inputs``, by ``sympy.diff`` of the mistaken definitions) or on the parameters' gradients
  (``params``).

Each mistake is (rank, description, rewrite of the node's expression, generic): lower ranks are
commoner; a generic one can be made in every element of a quantity at once. The shared ones are
:mod:`symbackprop.check.passmistakes`' (forward and backward pass) and :mod:`symbackprop.check.stepmistakes`'
(the optimizer's step and the pass after it), built from :mod:`symbackprop.check.mistakes`; the layer
entries' come through :mod:`symbackprop.check.slipbook`.
"""
from .passmistakes import BackwardMistakes, ForwardMistakes
from .mistakes import lazy
from .slipbook import SlipBook
from .stepmistakes import StepMistakes


class Catalogue:
    """A node's mistakes: those of its kind of node, then its layer entry's own."""

    def __init__(self, graph):
        self.graph = graph
        self.slips = SlipBook(graph)
        forward = ForwardMistakes(graph, self.slips.model_label)
        backward = BackwardMistakes(graph, self.slips.model_label)
        self.step = StepMistakes(graph, self.slips.model_label)
        # node kind (for the new pass's nodes, without "new.") -> its mistakes
        self.kinds = {"a": forward.a, "loss": forward.loss,
                      "dC/da": backward.dC_da, "da/dz": backward.da_dz, "delta": backward.delta,
                      "grad": backward.grad, "state": self.step.state, "param": self.step.param}
        self.upstream = backward.upstream      # any other ∂C/∂(stage): batch norm's ∂C/∂μ, ∂C/∂var, ∂C/∂x̂

    def __call__(self, node) -> list[tuple]:
        kind = node.kind.removeprefix("new.")
        method = self.kinds.get(kind) or (self.upstream if kind.startswith("dC/d") else None)
        out = method(node) if method else []
        if node.kind.startswith("new.") and kind != "loss":
            out = self.step.new(node) + out
        return out + self._slips(node)

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
                    out.append((rank, text, lazy(lambda sl=slip: book.forward(node, sl)), slip.generic))
            return out
        place = "params" if node.kind == "grad" else "inputs"
        layers = {g.where[src][0].index: g.where[src][0] for _, src, _ in node.meta.get("terms", ())}
        for source in layers.values():
            for slip in book(source):
                if place in slip.where:
                    rank, text = slip.where[place]
                    out.append((rank, text, lazy(lambda sl=slip, s=source: book.backward(node, sl, s)), slip.generic))
        return out
