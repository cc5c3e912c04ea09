"""What the parts of the mistake catalogue (:mod:`symbackprop.check.catalogue`) share: their base,
rewrites of a node's expression (a factor, a substitution, a square undone, a layer slip's own
recomputation) and what the wording of a mistake reads off the registry entries (the loss's shape,
the activation's name).
"""
import re
import unicodedata

import sympy

from ..entries.registry import a as A, n as N, y as Y


class Mistakes:
    """A part of the catalogue: one method per kind of node it knows, each giving that node's
    mistakes as (rank, description, rewrite, generic)."""

    def __init__(self, graph, model_label):
        self.graph = graph
        self.network = graph.network
        self.model_label = model_label      # a model symbol's name as hand files write it


def lazy(make):
    """A rewrite that ignores the expression it is given: the slip's own recomputation (or the
    expression unchanged when the slip does not touch it), made once. Not combined into pairs."""
    cache = []

    def rewrite(e):
        if not cache:
            cache.append(make())
        return e if cache[0] is None else cache[0]
    rewrite.slip = True
    return rewrite


def sub(mapping):
    return lambda e: e.xreplace(mapping)


def times(factor):
    return lambda e: e * factor


def unsquare(e):
    return e.replace(lambda x: x.is_Pow and x.exp == 2, lambda x: x.base)


def squared(loss) -> bool:
    """Whether the loss's term is (a − y)²: the squared losses share their mistakes."""
    return sympy.expand(loss.term - (A - Y) ** 2) == 0


def scale_parts(loss, outputs: int) -> tuple[bool, sympy.Expr | None]:
    """Whether the loss's scale holds a ½ (½(a − y)²), and the factor dividing by the number of
    outputs leaves out (n for a mean over n > 1 outputs; None for no mean)."""
    coeff, rest = loss.scale.as_coeff_Mul()
    mean = 1 / rest.xreplace({N: outputs}) if rest.has(N) and outputs > 1 else None
    return coeff == sympy.Rational(1, 2), mean


def steps_factor(network):
    """What the loss is multiplied by when a sequence's mean over the N·T steps is taken over the N
    examples only (the steps' losses summed): M / N for M counted steps, i.e. P / r (P steps an
    example, r its :attr:`~symbackprop.spec.network.Network.target_weight`); None for a vector
    output or a single step."""
    shape = network.output_shape
    if len(shape) < 2 or shape[0] < 2:
        return None
    r = network.target_weight
    factor = sympy.Integer(shape[0]) / sympy.Rational(r.numerator, r.denominator)
    return None if factor == 1 else factor


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
