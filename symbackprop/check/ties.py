"""Max-pool ties, judged jointly.

Where several elements share a window's maximum, any split of the window's gradient between them is
a valid subgradient (PyTorch gives it all to the first in row-major order): the tied elements'
gradients are non-negative shares that sum to the window's gradient. Interval arithmetic alone sees
each tied element's gradient anywhere between none and all of it, element by element, so sending
the whole gradient to every tied element would pass. Here:

* :meth:`Ties.broken` finds, in the order of computation, the written gradient of a tied element at
  which the shares written so far can no longer be completed to a valid split (their least shares
  sum past the whole, or every element is written and they fall short of it): ``wrong`` there;
* :meth:`Ties.tight` is a number's exact range over the valid splits: the value at PyTorch's
  routing plus, for each tied window, the hull of what routing it to each other tied element changes
  (each routing is the arbitrary-precision pass with that element raised by a hair). Everything after
  the max-pool's backward step is linear in the window's gradient, so the hull of the routings holds
  every split, and nothing more: a conv bias's gradient that sums a doubled window is outside it.

A window is found from the values, not from a layer kind: a forward node whose expression is a
Piecewise of its inputs (max-pool's "first maximum" form) whose exact value two or more inputs share.
"""
import math

import sympy

from .intervals import Interval

TOLERANCE = 1e-9      # of a share: float noise in the arbitrary-precision values, never a person's digits


class Ties:
    """The tied windows of a check graph at the spec's numbers, and their routings' values."""

    def __init__(self, graph, values):
        self.graph, self.groups, self.routings = graph, [], {}
        env = values.true_values(every=True)
        self.truth = env or {}
        if env is None:
            return
        for node in graph.order:
            e = node.expr
            if node.kind.startswith("new.") or not isinstance(e, sympy.Piecewise):
                continue
            choices = [v for v, _ in e.args]
            if not all(v.is_Symbol and v in env for v in choices):
                continue
            top = env[node.symbol]
            tied = [v for v in choices if abs(env[v] - top) <= 1e-12 * (1 + abs(top))]
            if len(tied) > 1:
                self.groups.append((node.symbol, tied))
        for window, tied in self.groups:
            self.routings[window] = [env] + [values.true_values(bump=frozenset({x})) or env for x in tied[1:]]
        # each tied element -> the node of dC/d(it): the gradient whose shares are judged
        self.gradient_of = {graph.sym(n.meta["u"], n.meta.get("example")): n.symbol for n in graph.order
                            if "u" in n.meta and n.kind != "grad" and not n.kind.startswith("new.")}

    def __bool__(self):
        return bool(self.groups)

    def gradients(self) -> set:
        """The nodes of the tied elements' gradients."""
        return {self.gradient_of[x] for _, tied in self.groups for x in tied if x in self.gradient_of}

    def tight(self, sym) -> Interval | None:
        """``sym``'s exact range over every valid split of the tied windows' gradients."""
        if sym not in self.truth:
            return None
        lo = hi = 0.0
        for window, _ in self.groups:
            changes = [r.get(sym, self.truth[sym]) - self.truth[sym] for r in self.routings[window]]
            lo, hi = lo + min(changes), hi + max(changes)
        at = self.truth[sym]
        r = Interval.hull(at + lo, at + hi)
        return r.widen(1e-12 * max(abs(r.lo), abs(r.hi)) + 1e-300)

    def broken(self, given: dict) -> set:
        """The written gradients of tied elements where a valid split first becomes impossible."""
        found = set()
        for window, tied in self.groups:
            shares = self._shares(window, tied)
            if shares is None:
                continue
            order = sorted(shares, key=self.graph.position.get)
            low, high, last = 0.0, 0.0, None
            for g in order:
                if g not in given:
                    high += 1
                    continue
                base, whole = shares[g]
                r = Interval.hull((given[g].lo - base) / whole, (given[g].hi - base) / whole)
                r = r.intersect(Interval(0.0, 1.0))
                if r is None:            # not a share at all: wrong element by element already
                    break
                low, high, last = low + r.lo, high + r.hi, g
                if low > 1 + TOLERANCE:
                    found.add(g)
                    break
            else:
                if last is not None and high < 1 - TOLERANCE:
                    found.add(last)
        return found

    def _shares(self, window, tied):
        """Each tied element's gradient node -> (its value with none of the window's gradient, the
        whole of it); None where the window's gradient is 0 or an element's gradient is not a node."""
        truth, routes = self.truth, self.routings[window]
        nodes = [self.gradient_of.get(x) for x in tied]
        if None in nodes:
            return None
        out = {}
        for i, g in enumerate(nodes):
            if i == 0:                         # PyTorch's routing gives it all; another gives it none
                base = routes[1][g]
                whole = truth[g] - base
            else:
                base = truth[g]
                whole = routes[i][g] - base
            if not math.isfinite(whole) or abs(whole) <= 1e-12 * (abs(base) + abs(whole)) or whole == 0:
                return None
            out[g] = (base, whole)
        return out
