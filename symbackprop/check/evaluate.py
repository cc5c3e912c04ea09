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

    def true_values(self) -> dict | None:
        """Every node's exact value from the spec's numbers in arbitrary precision (the digits of
        numeric.PRECISIONS, tried in turn): where float intervals cannot hold a step — 1 − σ(z) at
        z = 1e4 — the interval arithmetic gives a range that is only a bound. None when even the
        last precision does not make every value finite."""
        import mpmath
        from ..numeric.values import PRECISIONS
        for digits in PRECISIONS:
            with mpmath.workdps(digits):
                env = {s: mpmath.mpf(v.lo) for s, v in self.graph.leaves.items()}
                try:
                    for node in self.graph.order:
                        point = {**{s: mpmath.mpf(v.lo) for s, v in (node.hyper or {}).items()}, **env}
                        args = sorted(node.expr.free_symbols, key=str)
                        value = sympy.lambdify(args, node.expr, "mpmath")(*[point[a] for a in args])
                        if isinstance(value, mpmath.mpc) or not mpmath.isfinite(value):
                            raise ZeroDivisionError
                        env[node.symbol] = mpmath.mpf(value)
                except (ZeroDivisionError, ValueError, OverflowError, TypeError):
                    continue
                return {s: float(v) for s, v in env.items() if s in self.graph.nodes}
        return None

    def ranges(self, given: dict):
        """Each node's range from its inputs (``derived``), and the values used downstream
        (``env``: the person's interval where they wrote the number, the derived range otherwise)."""
        env, derived = dict(self.graph.leaves), {}
        for node in self.graph.order:
            derived[node.symbol] = bound(node.expr, self.env_of(node, env))
            env[node.symbol] = given.get(node.symbol, derived[node.symbol])
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
