"""Check a hand calculation of one training step, number by number.

Plain data in — a :class:`~symbackprop.spec.network.Network` and a :class:`Hand` (the person's numbers, each
with the text it was written as) — and plain data out: one :class:`Result` per number given, with
one status:

* ``ok``: it matches the exact value within the precision it was written with, or it follows from
  the person's own earlier numbers, which were right but rounded;
* ``wrong``: it does not follow from the person's own earlier numbers — where an error enters;
* ``carried``: it follows from earlier numbers of theirs that were wrong;
* ``missing``: it was left blank (``""``, as in the skeletons ``symbackprop exercise`` writes).

How. Every quantity is a node with a small local SymPy expression: the model's z = Wa + b and
a = f(z), the loss, the derivation's backward steps (∂C/∂a, ∂a/∂z, δ, ∂C/∂W = a·δ), the optimizer's
assignments (from :mod:`symbackprop.entries.optimizers`, never retyped) and the forward pass after the step.
A written number stands for the interval its digits allow (0.29 → [0.285, 0.295]; an integer
without a decimal point is exact). Each node's range is computed by interval arithmetic
(:mod:`symbackprop.check.intervals`) from the person's numbers for its inputs where they wrote them, and
from what those imply where they did not; the parameters and the sample come from the spec. A number
follows when its own interval meets that range. Its inputs may have been carried with more digits
than were written: anything inside their intervals is accepted — but a number judged ``ok`` carries
forward only the intersection of its digits' interval with the interval its own inputs give (with
the exact value's, where its inputs were wrong), joined with the number as written: a written 1.8
whose inputs give exactly 1.8 stands for 1.8 downstream, not for [1.75, 1.85], so a later 4.001
where 4.004 is right is wrong; a later number computed from the rounded 1.8 itself is fine.

Ties (:mod:`symbackprop.check.ties`): where several elements share a max-pool window's maximum, their
gradients are judged jointly, as non-negative shares summing to the window's gradient — a file that
breaks that is ``wrong`` where it first breaks. A quantity the step does not change (``new.z1`` of
a layer ``train`` leaves alone) is the same quantity as before the step: unwritten, it is the
person's own pre-step number.

A ``wrong`` number gets a diagnosis where one fits: each mistake of the catalogue
(:mod:`symbackprop.check.catalogue`: the 2 of d/da (a − y)² dropped, σ′ at z, a factor dropped, the wrong
index, the learning rate left out, Adam without bias correction, updates not simultaneous, and each
layer entry's own: a convolution's kernel not flipped or transposed, max-pool's gradient to every element or every tied maximum, batch
norm's statistics taken as constants, dropout's 1/(1 − p) left out, ...) is a rewrite of a
local expression — the number's own, one of its written inputs as used there, or one it was
computed through without writing it down (there, when the quantity has several elements, the slip
is tried in all of them at once) — recomputed the same way. The mistakes that reproduce the number
are named; if no single one does, pairs in the same formula are tried. Where several fit, a mistake
already seen in this calculation wins, then one in the number's own formula, then the commoner.

Numbers: TOML numbers keep the text they were written with (the parser hands it over), strings
such as "0.50" are read the same way, Python floats (from :func:`parse_hand`) by their repr.

Conventions: one step of the optimizer from zero state, t = 1; the update is simultaneous — every
gradient is taken at the parameters before the step — and moves the parameters the ``[optimizer]``
trains (``train``, default all; ``train_biases = false`` keeps the biases); ``new.*`` is the
forward pass after that step of the spec's ``[optimizer]`` (which the hand file's own
``[optimizer]`` table, merged over the spec's, may change). With a batch, the loss and every
gradient are the batch mean's; per-example quantities have the example first, and ``dC/da``,
``delta`` are each example's own (of its loss C_n) unless a layer couples the examples (batch
norm), where they are of the batch-mean loss C, as ``explain`` shows them.

>>> from symbackprop.spec.network import Network
>>> net = Network.from_dict({"network": {"layers": [1, 1], "activations": ["sigmoid"],
...     "loss": "squared_error"}, "parameters": {"W1": [[0.5]], "b1": [0.0]},
...     "sample": {"x": [2], "y": [1]}})
>>> hand = parse_hand({"values": {"z1": 1.0, "a1": "0.73", "dC/da1": "-0.27"}}, net)
>>> [(r.label, r.status, r.diagnosis) for r in check(net, hand)]
[('z1[1]', 'ok', None), ('a1[1]', 'ok', None), ('dC/da1[1]', 'wrong', 'the 2 of d/da (a − y)² dropped')]
"""
import math
import re
from collections import Counter
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from .catalogue import Catalogue
from .evaluate import Evaluator
from .graph import CheckGraph, index_text
from ..errors import SpecError
from .hand import (DEPRECATED_ZERO_BASED, MAX_PARAMETERS, MAX_VALUES, Hand, Written, load_hand, model_of, parse_hand, quantities, usable)
from ..spec.inputs import as_network
from .intervals import Interval
from .ties import Ties
from ..entries.optimizers import OPTIMIZERS, Settings
from ..spec.network import Network

__all__ = ["DEPRECATED_ZERO_BASED", "MAX_PARAMETERS", "MAX_VALUES", "Hand", "Result", "Written", "check",
           "conventions", "load_hand", "parse_hand", "quantities", "show_infinite", "usable"]

STATUSES = ("ok", "wrong", "carried", "missing")
SLACK = 1e-9          # relative: float noise, never a person's rounding
MAX_MATCHES = 2       # diagnoses named per number
ZERO_WIDTH = 1e-12    # an exact range this narrow around 0 is float rounding of an exact 0


# results ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Result:
    name: str                 # the quantity, e.g. "grad.W2"
    index: tuple[int, ...]    # 0-based, as into the arrays (the label is 1-based), () for the loss
    given: str                # as written
    value: float              # the number written
    expected: float           # the exact value (from the spec's numbers)
    status: str               # ok, wrong or carried
    diagnosis: str | None = None

    @property
    def label(self) -> str:
        return f"{self.name}{index_text(self.index)}"

    def to_json(self) -> dict:
        """The result as JSON data: ``index`` is 0-based, into the quantity's array (JSON keeps
        plain arrays), ``label`` the 1-based name people read (``grad.W2[1][2]``); ``given`` and
        ``expected`` are numbers, "inf" or "-inf" where the value is infinite (JSON has no
        infinity), and null where it is undefined (log of a negative)."""
        return {"name": self.name, "index": list(self.index), "label": self.label, "given": _json_number(self.value),
                "expected": _json_number(self.expected), "status": self.status, "diagnosis": self.diagnosis}


def _json_number(value: float):
    """A number for JSON, which has no infinity: "inf" or "-inf" for one, null for undefined."""
    return value if math.isfinite(value) else None if math.isnan(value) else show_infinite(value)


def show_infinite(value: float) -> str:
    """The words a table shows for a value that is not a finite number.

    >>> show_infinite(float("inf")), show_infinite(float("-inf")), show_infinite(float("nan"))
    ('inf', '-inf', 'undefined')
    """
    return "undefined" if math.isnan(value) else "inf" if value > 0 else "-inf"


def effective_optimizer(network: Network, hand: Hand) -> dict:
    """The optimizer table ``new.*`` and every ``<optimizer>.*`` number use: the spec's
    ``[optimizer]``, with the hand file's own table merged over it."""
    return {**network.optimizer, **hand.optimizer}


def conventions(network: Network, hand: Hand) -> list[str]:
    """What the numbers were checked against, one line each: the batch, the optimizers' settings,
    the step."""
    table = effective_optimizer(network, hand)
    settings = Settings.of({k: val for k, val in table.items() if k != "name"})
    used = list(dict.fromkeys(n.split(".")[0] for n, _ in hand.keys if n.split(".")[0] in OPTIMIZERS))
    wants_new = any(n.startswith("new.") for n, _ in hand.keys)
    if wants_new and table.get("name") in OPTIMIZERS and table["name"] not in used:
        used.append(table["name"])
    lines = []
    n = network.x.shape[0]
    if n > 1:
        own = ("of the batch-mean loss C (batch norm couples the examples)" if model_of(network).examples > 1
               else "each example's own, of its loss C_n")
        lines.append(f"a batch of {n}: per-example quantities have the example first ([1] to [{n}]); loss and "
                     f"grad.* are the batch mean's; dC/da, delta, ... are {own}")
    for name in used:
        hyper = ", ".join(f"{k} {val:g}" for k, val in settings.values(OPTIMIZERS[name]).items()
                          if val or k != "weight_decay")
        extra = ""
        if OPTIMIZERS[name].bias_corrected:
            extra += ", bias correction " + ("on" if settings.bias_correction else "off")
        if not settings.train_biases:
            extra += ", biases frozen"
        lines.append(f"{name}: {hyper}{extra}")
    trained = [p for p in network.parameter_shapes() if settings.trains(p)]
    everything = len(trained) == len(network.parameter_shapes())
    if used:
        lines.append("one step from zero state (t = 1), every gradient taken before the step"
                     + ("" if everything else f"; it updates {', '.join(trained) or 'nothing'} only"))
    if wants_new:
        which = "which updates every layer" if everything else f"which updates {', '.join(trained) or 'nothing'} only"
        lines.append(f"new.*: the forward pass after that {table.get('name')} step, {which}")
    return lines + list(hand.notes)


def check(network, hand) -> list[Result]:
    """One Result per number in ``hand``: forward, loss, backward, optimizer, new pass order.
    ``network`` is a Network, a spec's data as a dict, or a spec path; ``hand`` a :class:`Hand`,
    a hand file's data as a dict, or its path."""
    network = as_network(network)
    if isinstance(hand, dict):
        hand = parse_hand(hand, network)
    elif isinstance(hand, (str, Path)):
        hand = load_hand(hand, network)
    elif not isinstance(hand, Hand):
        raise SpecError("hand", f"expected a hand file's path, a dict or a Hand, got {type(hand).__name__}")
    usable(network)
    table = effective_optimizer(network, hand)
    names = [n.split(".")[0] for n, _ in hand.keys if n.split(".")[0] in OPTIMIZERS]
    wants_new = any(n.startswith("new.") for n, _ in hand.keys)
    if wants_new:
        name = table.get("name")
        where = "values." + next(hand.keys[k] for k in hand.keys if k[0].startswith("new."))
        if name is None:
            raise SpecError(where, "new.* is the forward pass after one optimizer step: name the "
                                   "optimizer in an [optimizer] table (in the spec or the hand file)")
        names.append(name)                   # a known name: both [optimizer] tables are validated
    graph = CheckGraph(network, table, list(dict.fromkeys(names)), table.get("name") if wants_new else None,
                       model_of(network))
    return _Checker(graph).check(hand)


# statuses and diagnoses ---------------------------------------------------------------------------
@dataclass
class Baseline:
    """What :meth:`_Checker.baseline` finds from the spec's numbers alone."""
    exact: dict               # node -> its exact range
    truth: dict | None        # node -> its arbitrary-precision value, where float ranges were unbounded
    wide: set                 # nodes whose exact range is wide: a tie or a kink at the spec's numbers
    shown: dict               # node -> the value shown as expected where its range is wide
    ties: Ties | None
    tightened: bool           # the wide ranges were cut to the valid splits of the ties


class _Checker:
    def __init__(self, graph: CheckGraph):
        self.graph = graph
        self.values = Evaluator(graph)
        self.catalogue = Catalogue(graph)

    def baseline(self) -> "Baseline":
        """What the spec's numbers alone decide, whatever the person wrote: each node's exact range
        (cut, at max-pool ties, to the valid splits), the arbitrary-precision values where float
        intervals only bound them, the nodes a tie or kink makes wide, and the tied windows."""
        g = self.graph
        exact, _ = self.values.ranges({})
        truth = None
        if not all(math.isfinite(r.lo) and math.isfinite(r.hi) for r in exact.values()):
            truth = self.values.true_values()     # saturated steps: float intervals only bound them
            if truth is not None:
                exact = {s: Interval.point(v) if math.isfinite(v) else exact[s] for s, v in truth.items()}
        wide = wide_nodes(exact)
        shown = truth or self._points(wide)
        ties = Ties(g, self.values) if wide else None
        tightened = False
        if ties and self._kinks_are_ties(wide, ties):    # max-pool ties: the tied gradients are shares of one whole
            tightened = True
            for s in wide:
                tight = ties.tight(s)
                if tight is not None:
                    exact[s] = exact[s].intersect(tight) or tight
        return Baseline(exact, truth, wide, shown, ties, tightened)

    def check(self, hand: Hand) -> list[Result]:
        g = self.graph
        given = {g.named[key]: w.interval for key, w in hand.values.items()}
        base = self.baseline()
        exact, truth, wide, shown, ties, tightened = (base.exact, base.truth, base.wide, base.shown, base.ties,
                                                      base.tightened)
        broken = ties.broken(given) if ties else set()
        derived, env = self.values.ranges(given, exact, {g.named[key]: w.value for key, w in hand.values.items()})
        if truth is not None or tightened:     # what none of the person's numbers feeds is the exact value
            fed = set(given)
            for node in g.order:
                if fed.intersection(node.inputs):
                    fed.add(node.symbol)
                else:
                    derived[node.symbol] = exact[node.symbol]
        status, tainted = {}, {}
        for node in g.order:
            sym = node.symbol
            upstream = any(tainted.get(i) for i in node.inputs)
            if sym not in given:
                tainted[sym] = upstream
                continue
            mine = _slack(given[sym])
            if sym in broken and mine.intersects(exact[sym]):
                status[sym] = "wrong"
            elif mine.intersects(exact[sym]):
                status[sym] = "ok"
            elif mine.intersects(derived[sym]):
                status[sym] = "carried" if upstream else "ok"
            else:
                status[sym] = "wrong"
            tainted[sym] = status[sym] != "ok"
        ordered = sorted(hand.values.items(), key=lambda kv: (g.nodes[g.named[kv[0]]].order, kv[0][1]))
        found = {g.named[key]: self.diagnose(g.named[key], given, env) for key, _ in ordered
                 if status[g.named[key]] == "wrong"}
        # where several mistakes in a number's own formula reproduce it, the one that reproduces
        # most of the quantity's wrong elements names it (a max-pool window's corner fits two routings)
        fits = Counter((g.nodes[sym].quantity, family) for sym, (cands, _) in found.items()
                       for family in {_family(c[2]) for c in cands})
        results, seen = [], set()
        for (name, index), written in ordered:
            sym, diagnosis = g.named[(name, index)], None
            if sym in found:
                cands, pairs = found[sym]
                cands = _kept(sorted(cands, key=lambda c: (c[0], -fits[name, _family(c[2])], c[1])), given[sym])
                # a mistake already seen in this calculation is the likelier explanation; else one
                # in this number's own formula
                cands = ([c for c in cands if c[1] in seen] or [c for c in cands if not c[0]] or cands)
                names = list(dict.fromkeys(text for _, _, text, _ in cands))[:1 if pairs else MAX_MATCHES]
                seen.update(rank for _, rank, _, _ in cands[:1])
                diagnosis = " or ".join(names) or None
            elif sym in wide and sym in shown and _slack(given[sym]).intersects(exact[sym]) \
                    and not _slack(given[sym]).contains(shown[sym]):
                diagnosis = "at a tie (a window's shared maximum, or a kink) any choice between the sides is right; expected: PyTorch's convention"
            results.append(Result(name, index, written.text, written.value, _expected(shown.get(sym), exact[sym]),
                                  status[sym], diagnosis))
        for name, index in hand.missing:       # asked and left blank: neither right nor wrong
            sym = g.named[(name, index)]
            results.append(Result(name, index, "", math.nan, _expected(shown.get(sym), exact[sym]), "missing"))
        return sorted(results, key=lambda r: (g.nodes[g.named[(r.name, r.index)]].order, r.index))

    def _kinks_are_ties(self, wide: set, ties) -> bool:
        """Whether every number made wide by a kink of its own (its inputs thin) is a tied
        max-pool element's gradient: then the routings of the ties bound every wide number."""
        own = {s for s in wide if not wide.intersection(self.graph.nodes[s].inputs)}
        return own <= ties.gradients()

    def _points(self, wide: set) -> dict:
        """The values to show as expected where a range is ``wide`` although the spec's numbers are
        exact: at a tie (a max-pool window, a relu at 0) the interval holds every branch, and the
        value is the convention's, from the arbitrary-precision pass (the first maximum, relu′(0) = 0)."""
        truth = (self.values.true_values() or {}) if wide else {}
        return {s: v for s, v in truth.items() if s in wide}

    def diagnose(self, sym, given, env) -> tuple[list, bool]:
        """The catalogued mistakes that reproduce the number as (made upstream?, rank, text, range),
        and whether they are pairs. A mistake is tried in one formula and, when it is not about one
        element, in every element of a quantity at once (a loss depends on all of them). Only the
        most specific are kept: a mistake whose range is far wider than another's matches by the
        looseness of the person's digits."""
        mine = _slack(given[sym])
        scope = self.values.scope(sym, given)
        catalogue = [(target, mistakes) for target in reversed(scope)
                     for mistakes in [self.catalogue(self.graph.nodes[target])] if mistakes]
        near = {sym, *self.graph.nodes[sym].inputs}  # element-specific slips and pairs: within reach only
        sizes = Counter(self.graph.nodes[x].quantity for x in scope)

        def singles():
            """Each slip in one formula — out of reach, only where it is the quantity's one element
            here — and each slip in every element of a quantity at once."""
            families = {}
            for target, mistakes in catalogue:
                node = self.graph.nodes[target]
                for rank, text, rewrite, generic in mistakes:
                    if not generic and target not in near:
                        continue
                    alt = rewrite(node.expr)
                    if alt == node.expr:
                        continue
                    if target in near or sizes[node.quantity] == 1:
                        yield rank, self._where(text, target, sym, given), {target: alt}
                    if generic:
                        key = (node.quantity, rank, re.sub(r"\[\d+\]", "", text))
                        families.setdefault(key, {})[target] = alt
            for (quantity, rank, text), alts in families.items():
                if len(alts) > 1:
                    yield rank, f"{text} (in every element of {quantity})", alts

        def pairs():  # two mistakes in the same formula
            for target, mistakes in catalogue:
                if target not in near:
                    continue
                expr = self.graph.nodes[target].expr
                generic = [mk for mk in mistakes if mk[3] and not getattr(mk[2], "slip", False)]
                for (r1, t1, f1, _), (r2, t2, f2, _) in combinations(generic, 2):
                    if f1(expr) != expr and f2(expr) != expr and f2(f1(expr)) != expr:
                        yield r1 + r2, self._where(f"{t1}, and {t2}", target, sym, given), {target: f2(f1(expr))}

        for tries in (singles, pairs):
            found = []
            for rank, text, alts in tries():
                r = self.values.replay(sym, alts, scope, given, env)
                if mine.intersects(r):
                    found.append((sym not in alts, rank, text, r))
            if found:
                return sorted(found, key=lambda f: f[:2]), tries is pairs
        return [], False

    def _where(self, text, target, sym, given):
        if target == sym:
            return text
        return f"{text} (in the {self.graph.labels[target]} used here)" if target in given else \
            f"{text} (in {self.graph.labels[target]})"


def wide_nodes(exact: dict) -> set:
    """The nodes whose exact range is wider than float rounding although the spec's numbers are
    exact: a tie (a max-pool window's shared maximum) or a kink (relu at 0) leaves them open."""
    return {s for s, r in exact.items() if math.isfinite(r.lo) and math.isfinite(r.hi)
            and r.hi - r.lo > max(1e-9 * max(abs(r.lo), abs(r.hi)), 1e-12)}


def _expected(point, exact: Interval) -> float:
    """The value shown as expected: the convention's at a tie, else the exact range's middle — 0
    where that range holds 0 and is float rounding wide (terms that cancel exactly, as a bias's
    gradient before a batch norm: the middle would show 1e-16 of noise)."""
    if exact.contains(0.0) and exact.width <= ZERO_WIDTH:
        return 0.0
    return exact.mid if point is None else point


def _kept(found, given: Interval) -> list:
    """The most specific of the mistakes that reproduce a number, in the order given: one whose range
    is far wider than another's matches by the looseness of the person's digits; and the same number
    reached two ways (σ′ as z(1 − z), or z used for a in a(1 − a)) is one mistake, named by the first."""
    mine = _slack(given)
    narrowest = min(r.width for *_, r in found) if found else 0
    kept = []
    for upstream, rank, text, r in found:
        if r.width <= 4 * narrowest + mine.width and not any(_same(r, k) for *_, k in kept):
            kept.append((upstream, rank, text, r))
    return kept


def _family(text: str) -> str:
    """A mistake's words without element indices: the same slip in each element."""
    return re.sub(r"\[\d+\]", "", text)


def _same(p: Interval, q: Interval) -> bool:
    return abs(p.lo - q.lo) <= SLACK * abs(p.lo) + 1e-300 and abs(p.hi - q.hi) <= SLACK * abs(p.hi) + 1e-300


def _slack(interval: Interval) -> Interval:
    return interval.widen(SLACK * max(abs(interval.lo), abs(interval.hi)) + 1e-300)
