"""The numbers of a check graph (:class:`~symbackprop.check.graph.CheckGraph`): each node's range
by interval arithmetic from the person's numbers where they wrote them, the exact values in
arbitrary precision where float intervals only bound them, and a number recomputed with a mistake
made in the formulas it was computed through (:meth:`Evaluator.replay`).
"""
import math
from collections import ChainMap

import sympy

from .intervals import Interval, bound


class Evaluator:
    """Reads a check graph; never changes it."""

    def __init__(self, graph):
        self.graph = graph

    def env_of(self, node, env):
        """The values ``node``'s expression reads: ``env`` and, for an optimizer's, its hyperparameters."""
        return ChainMap(node.hyper, env) if node.hyper else env

    def true_values(self, bump: frozenset = frozenset(), every: bool = False) -> dict | None:
        """Every node's exact value from the spec's numbers in arbitrary precision (the digits of
        numeric.PRECISIONS, tried in turn): where float intervals cannot hold a step — 1 − σ(z) at
        z = 1e4 — the interval arithmetic gives a range that is only a bound. None when even the
        last precision does not make every value finite. ``bump``: symbols raised by a hair (far
        below a float's digits) as they are computed, so that a tie they are in goes their way;
        ``every``: the leaves' values too."""
        import mpmath
        from ..numeric.values import PRECISIONS
        for digits in PRECISIONS:
            with mpmath.workdps(digits):
                hair = mpmath.mpf(10) ** (-(digits // 2))
                env = {s: mpmath.mpf(v.lo) * (1 + hair if s in bump else 1) + (hair if s in bump else 0)
                       for s, v in self.graph.leaves.items()}
                try:
                    for node in self.graph.order:
                        point = {**{s: mpmath.mpf(v.lo) for s, v in (node.hyper or {}).items()}, **env}
                        args, fn = self._mpmath(node)
                        value = fn(*[point[a] for a in args])
                        if isinstance(value, mpmath.mpc) or not mpmath.isfinite(value):
                            raise ZeroDivisionError
                        value = mpmath.mpf(value)
                        env[node.symbol] = value + hair * (1 + abs(value)) if node.symbol in bump else value
                except (ZeroDivisionError, ValueError, OverflowError, TypeError):
                    continue
                return {s: float(v) for s, v in env.items() if every or s in self.graph.nodes}
        return None

    def _mpmath(self, node):
        """``node``'s expression as an mpmath function of its sorted free symbols (made once)."""
        cache = self.__dict__.setdefault("_functions", {})
        if node.symbol not in cache:
            args = sorted(node.expr.free_symbols, key=str)
            cache[node.symbol] = (args, sympy.lambdify(args, node.expr, "mpmath"))
        return cache[node.symbol]

    def ranges(self, given: dict, exact: dict | None = None, written: dict | None = None):
        """Each node's range from its inputs (``derived``), and the values used downstream
        (``env``). A number the person wrote carries forward the part of its digits' interval
        that its own inputs allow (``derived``; where those were wrong, the part the exact value
        allows), joined with the number as written (``written``: a person computes on with the
        digits they wrote) — and its whole digits' interval only where neither part exists. So a
        written 1.8 whose inputs give exactly 1.8 stands for 1.8, not for [1.75, 1.85]."""
        env, derived = dict(self.graph.leaves), {}
        for node in self.graph.order:
            sym = node.symbol
            derived[sym] = bound(node.expr, self.env_of(node, env))
            env[sym] = derived[sym] if sym not in given else \
                carried(given[sym], derived[sym], (exact or {}).get(sym), (written or {}).get(sym))
        return derived, env

    def scope(self, sym, given) -> list:
        """The node, the unwritten nodes it was computed through, and the written ones at their
        edge: where a mistake could have entered this number."""
        seen, stack = {sym}, [sym]
        while stack:
            node = self.graph.nodes[stack.pop()]
            for i in node.inputs:
                if i not in seen:
                    seen.add(i)
                    if i not in given:
                        stack.append(i)
        return sorted(seen, key=self.graph.position.get)

    def replay(self, sym, alts: dict, scope, given, env):
        """``sym``'s range had each target of ``alts`` been computed by its alternative expression."""
        if sym in alts:
            return bound(alts[sym], self.env_of(self.graph.nodes[sym], env))
        local = dict(env)
        for target, alt in alts.items():
            local[target] = bound(alt, self.env_of(self.graph.nodes[target], env))
        changed = set(alts)
        for s in scope[min(scope.index(x) for x in alts) + 1:]:
            if s in alts or (s != sym and s in given):
                continue
            other = self.graph.nodes[s]
            if changed.intersection(other.inputs):
                r = bound(other.expr, self.env_of(other, local))
                if s == sym:
                    return r
                local[s] = r
                changed.add(s)
        return Interval(math.nan, math.nan)  # sym does not depend on the targets


def carried(mine: Interval, derived: Interval, exact: Interval | None, written: float | None) -> Interval:
    """What a written number stands for downstream: its digits' interval cut to what its inputs
    give (else to the exact value's range), joined with the number as written.

    >>> carried(Interval(1.75, 1.85), Interval.point(1.8), None, 1.8)
    Interval(lo=1.8, hi=1.8)
    >>> carried(Interval(0.5885, 0.5895), Interval(0.5886, 0.5889), None, 0.589)
    Interval(lo=0.5886, hi=0.589)
    """
    cut = mine.intersect(derived) or (exact is not None and mine.intersect(exact)) or None
    if cut is None:
        return mine
    if written is not None and math.isfinite(written) and mine.contains(written):
        cut = cut.join(Interval.point(written))
    return cut
