"""The values the catalogued mistakes give: for one quantity of a training step, each mistake of
the catalogue (:mod:`symbackprop.check.catalogue`, the one ``check`` names) made in its own
formula, every input right. What a multiple-choice question offers as its wrong answers, each
named by the mistake that gives it.

>>> from symbackprop.spec.network import load
>>> from symbackprop.check.graph import CheckGraph
>>> net = load("examples/seed.toml")
>>> graph = CheckGraph(net, net.optimizer, [], None)
>>> slips = Distractors(graph)
>>> [(text, round(v, 4)) for _, text, v in slips(graph.named[("dC/da2", (0,))])][:1]
[('the 2 of d/da (a − y)² dropped', -0.4111)]
"""
import math

from .catalogue import Catalogue
from .evaluate import Evaluator
from .intervals import bound


class Distractors:
    """Reads a check graph (built once) and gives each node's mistaken values."""

    def __init__(self, graph):
        self.graph = graph
        self.values = Evaluator(graph)
        self.catalogue = Catalogue(graph)
        _, self.env = self.values.ranges({})

    def __call__(self, symbol) -> list[tuple[int, str, float]]:
        """(rank, mistake, value) for each catalogued mistake of ``symbol``'s own formula that
        changes its value to a finite number, commonest first (the catalogue's rank), each value
        once (the first mistake that gives it names it)."""
        node = self.graph.nodes[symbol]
        right = self.env[symbol].mid
        out, seen = [], set()
        for rank, text, rewrite, _ in self.catalogue(node):
            alt = rewrite(node.expr)
            if alt == node.expr:
                continue
            value = bound(alt, self.values.env_of(node, self.env)).mid
            if not math.isfinite(value) or math.isclose(value, right, rel_tol=1e-12, abs_tol=1e-300):
                continue
            key = float(f"{value:.12g}")
            if key not in seen:
                seen.add(key)
                out.append((rank, text, value))
        return sorted(out, key=lambda item: item[0])
