"""What the worksheet page needs to judge numbers as ``check`` does, generated from check's own graph.

:func:`judging` builds the :class:`~symbackprop.check.graph.CheckGraph` that ``check`` builds for a
hand file naming the asked quantities, and writes it out as data for ``symbackprop/static/judge.js``:

* every node's local formula as interval code (:mod:`.jsprint`), with the parameters, the sample and
  the masks as the leaves' values;
* what the spec's numbers alone decide (check's :meth:`~symbackprop.check.judge._Checker.baseline`):
  each node's exact range, which ranges a tie or a kink makes wide, the max-pool ties' shares, the
  expected value ("show the answer");
* each node's catalogued mistakes (:class:`~symbackprop.check.catalogue.Catalogue`): every rewrite of
  its formula that changes it, printed the same way, and the pairs of generic rewrites check tries.

What depends on the person's numbers — ranges carried forward, statuses, diagnoses — judge.js works
out as judge.py does, from these data. Nothing in it is written per network.
"""
import json
import math
from itertools import combinations

import numpy as np

from ..check.hand import model_of, quantities, usable
from ..check.judge import _Checker, _expected
from ..check.graph import CheckGraph
from ..entries.optimizers import OPTIMIZERS
from ..errors import SpecError
from .jsprint import formula

MAX_NODES = 1500          # quantities' elements in one page: each is judged, with its mistakes, on every keystroke


def check_graph(network, asked: list[str]) -> CheckGraph:
    """The graph ``check`` builds for a hand file that names ``asked`` (and no [optimizer] table)."""
    usable(network)
    table = dict(network.optimizer)
    names = [n.split(".")[0] for n in asked if n.split(".")[0] in OPTIMIZERS]
    new_with = None
    if any(n.startswith("new.") for n in asked):
        new_with = table.get("name")
        if new_with is None:
            raise SpecError("ask", "new.* is the forward pass after one optimizer step: name the optimizer "
                                   "in the spec's [optimizer] table")
        names.append(new_with)
    return CheckGraph(network, table, list(dict.fromkeys(names)), new_with, model_of(network))


def boxes(network, graph, asked: list[str]) -> list[tuple[str, tuple, list]]:
    """(quantity, shape, [(index, node symbol), ...]) for each asked quantity, in the order asked."""
    known, out = quantities(network), []
    for name in asked:
        if name not in known:
            raise SpecError("ask", f"unknown quantity {name!r} for this network")
        shape = known[name]
        elements = [(idx, graph.named.get((name, idx))) for idx in np.ndindex(*shape)]
        if any(s is None for _, s in elements):
            raise SpecError("ask", f"{name} is not a quantity check computes for this network")
        out.append((name, shape, elements))
    return out


def _interval(r) -> list:
    return [_num(r.lo), _num(r.hi)]


def _num(v: float):
    """A float for JSON: infinities and NaN as strings judge.js reads back."""
    return v if math.isfinite(v) else "NaN" if math.isnan(v) else "Infinity" if v > 0 else "-Infinity"


class _Formulas:
    """The distinct formulas, each printed once; a node or mistake refers to one by its number."""

    def __init__(self, places: dict):
        self.places, self.index, self.code = places, {}, []

    def __call__(self, expr, hyper) -> int:
        constants = {s: iv.lo for s, iv in (hyper or {}).items()}
        text = formula(expr, self.places, constants)
        if text not in self.index:
            self.index[text] = len(self.code)
            self.code.append(text)
        return self.index[text]


def judging(network, asked: list[str]) -> tuple[dict, str, list]:
    """(data, formulas, boxes): the page's judging data as JSON data, its formulas as one
    JavaScript array literal, and :func:`boxes`' quantities with each element's node number."""
    graph = check_graph(network, asked)
    if len(graph.order) > MAX_NODES:
        raise SpecError(network.source, f"the interactive worksheet is for hand-sized networks: at most "
                                        f"{MAX_NODES} numbers in one training step, this one has {len(graph.order)}")
    checker = _Checker(graph)
    base = checker.baseline()
    syms = list(graph.leaves) + [n.symbol for n in graph.order]
    places = {s: i for i, s in enumerate(syms)}
    formulas = _Formulas(places)
    ranked = sorted(range(len(graph.order)), key=lambda i: (graph.order[i].order, graph.order[i].index))
    position = {i: r for r, i in enumerate(ranked)}
    nodes = []
    for i, node in enumerate(graph.order):
        sym = node.symbol
        nodes.append({
            "s": places[sym], "f": formulas(node.expr, node.hyper), "in": [places[x] for x in node.inputs],
            "q": node.quantity, "label": node.label, "rank": position[i],
            "exact": _interval(base.exact[sym]), "expected": _num(_expected(base.shown.get(sym), base.exact[sym])),
            "tie": _num(base.shown[sym]) if sym in base.wide and sym in base.shown else None,
            **_mistakes(checker.catalogue(node), node, formulas)})
    data = {"leaves": [[places[s], _num(v.lo), _num(v.hi)] for s, v in graph.leaves.items()],
            "first": len(graph.leaves), "nodes": nodes, "override": base.truth is not None or base.tightened,
            "ties": _ties(base.ties, graph, places), "labels": {places[s]: label for s, label in graph.labels.items()}}
    code = "[\n" + ",\n".join(formulas.code) + "\n]"
    return data, code, [(q, shape, [(idx, places[s] - len(graph.leaves)) for idx, s in els])
                        for q, shape, els in boxes(network, graph, asked)]


def _mistakes(catalogue, node, formulas) -> dict:
    """``m``: [rank, text, formula, generic] for each catalogued mistake that changes the node's
    formula; ``pairs``: [rank, text, formula] for check's pairs of generic rewrites (not a layer's
    slips) in it."""
    expr, single, pairs = node.expr, [], []
    for rank, text, rewrite, generic in catalogue:
        alt = rewrite(expr)
        if alt != expr:
            single.append([rank, text, formulas(alt, node.hyper), bool(generic)])
    generic = [mk for mk in catalogue if mk[3] and not getattr(mk[2], "slip", False)]
    for (r1, t1, f1, _), (r2, t2, f2, _) in combinations(generic, 2):
        if f1(expr) != expr and f2(expr) != expr and f2(f1(expr)) != expr:
            pairs.append([r1 + r2, f"{t1}, and {t2}", formulas(f2(f1(expr)), node.hyper)])
    return {"m": single, "pairs": pairs}


def _ties(ties, graph, places) -> list:
    """Each tied max-pool window's element gradients, in the order of computation, as [node, share
    base, whole]: check's :meth:`~symbackprop.check.ties.Ties.broken` reads these."""
    out = []
    for window, tied in (ties.groups if ties else []):
        shares = ties._shares(window, tied)
        if shares is None:
            continue
        out.append([[places[g], _num(base), _num(whole)] for g, (base, whole) in
                    sorted(shares.items(), key=lambda kv: graph.position[kv[0]])])
    return out


def as_script(data: dict, code: str) -> str:
    """The judging data and formulas as one script, safe inside an HTML <script> element."""
    text = f"var FORMULAS = {code};\nvar DATA = {json.dumps(data, ensure_ascii=False, separators=(',', ':'))};\n"
    return text.replace("</", "<\\/")
