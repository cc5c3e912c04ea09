"""The graph ``check`` works on: every quantity of one training step as a node with a small local
SymPy expression, in the order of computation.

Nodes come from the model (every stage: z, a, batch norm's mean, var and x̂), the loss, the
derivation's backward steps (∂C/∂a, ∂a/∂z, δ, ∂C/∂μ, ..., each gradient as Σ ∂z/∂w · δ over what
reads the weight) and, from :mod:`symbackprop.check.step`, one optimizer step from zero state and the
forward pass after it. With a batch of N examples and a model built for one example, each example
gets its own copy of the per-example symbols (``z1_0_e1``: example 2's), and a gradient is the mean
of the examples' gradients; a model built over the whole batch (batch norm) already holds every
example, its loss the batch mean.

:mod:`symbackprop.check.evaluate` computes the nodes' ranges and true values and replays a number with a
mistake made; :mod:`symbackprop.check.catalogue` says which mistakes each node may hold;
:mod:`symbackprop.check.slipbook` makes the layer entries' own.
"""
from dataclasses import dataclass, field

import numpy as np
import sympy

from .step import new_pass, optimizer_step
from ..derive.derivation import Derivation
from .intervals import Interval
from ..derive.model import Model
from ..entries.optimizers import Settings
from ..errors import SpecError

STEP_NAMES = {"dC/da": "dC/da{l}", "da/dz": "da{l}/dz{l}", "delta": "delta{l}"}


def index_text(index) -> str:
    """A 0-based index as people write it, 1-based as the math: (0, 1) -> "[1][2]"."""
    return "".join(f"[{i + 1}]" for i in index)


def step_quantity(kind: str, layer: int) -> str:
    """A backward step's name in hand files: delta2, dC/da2, da2/dz2, dC/dmean2, ..."""
    return STEP_NAMES.get(kind, kind + "{l}").format(l=layer)


@dataclass
class Node:
    symbol: sympy.Symbol
    expr: sympy.Expr
    quantity: str             # its name in a hand file, e.g. grad.W2
    kind: str                 # z, a, mean, ..., loss, dC/da, da/dz, delta, dC/dvar, ..., grad, state, param
    label: str                # "grad.W2[1][2]"
    order: tuple              # where results show it: (phase, ...)
    index: tuple = ()
    meta: dict = field(default_factory=dict)
    hyper: dict | None = None
    inputs: tuple = ()


class CheckGraph:
    """The nodes of one training step (``order``: in the order of computation), the leaves' values
    (parameters, sample, masks) as point intervals, and each node's name as results show it."""

    def __init__(self, network, table: dict, optimizers: list[str], new_with: str | None, model: Model | None = None):
        self.network = network
        self.model = model = model or Model(network)
        self.derivation = Derivation(model)
        self.settings = Settings.of({k: val for k, val in table.items() if k != "name"})
        if self.settings.clip_norm is not None and optimizers:
            raise SpecError("optimizer.clip_norm", "check does not work the clipped update by hand yet: leave "
                                                   "clip_norm out of the table check reads (explain shows the clipped step)")
        self.N = network.x.shape[0]
        self.renamed = model.examples == 1 and self.N > 1
        self.nodes: dict[sympy.Symbol, Node] = {}
        self.named: dict[tuple, sympy.Symbol] = {}
        self.labels: dict[sympy.Symbol, str] = {}
        self.leaves: dict[sympy.Symbol, Interval] = {}
        self.where = {s: (lm, stage, idx) for lm in model.layers for stage in lm.stages
                      for idx, s in np.ndenumerate(stage.symbols)}
        self.step_of = {st.of: st for st in self.derivation.steps if st.kind not in ("da/dz", "grad")}
        self._renaming()
        self._leaves()
        self._forward()
        self._backward()
        # optimizer name -> {parameter: its symbol after one step (itself where it is not trained)}
        self.updated: dict[str, dict] = {name: optimizer_step(self, rank, name) for rank, name in enumerate(optimizers)}
        # the new pass: each updated parameter and stage symbol -> its symbol after the step
        self.new_with = new_with
        self.new_replace = new_pass(self, self.updated[new_with]) if new_with is not None else {}
        for node in self.nodes.values():
            node.inputs = tuple(sorted((x for x in node.expr.free_symbols if x in self.nodes), key=str))
        self.order = list(self.nodes.values())
        self.position = {n.symbol: i for i, n in enumerate(self.order)}

    # names and copies per example --------------------------------------------------------------
    def _renaming(self):
        """σ_n: each per-example symbol of a one-example model -> example n's copy (identity for one example)."""
        self.sigma = [{}]
        if not self.renamed:
            return
        model = self.model
        own = [s for arr in (model.X, model.Y) for s in arr.ravel()]
        own += [s for lm in model.layers for arr in lm.data.values() for s in arr.ravel()]
        own += [s for stage in model.stages() for s in stage.symbols.ravel()]
        own += [st.symbol for st in self.derivation.steps]
        self.sigma = [{s: sympy.Symbol(f"{s.name}_e{n}", real=True) for s in own} for n in range(self.N)]

    def examples(self, per_example: bool) -> list:
        """The examples a model array stands for: each of the batch's (renamed), or just itself (None)."""
        return list(range(self.N)) if per_example and self.renamed else [None]

    def sym(self, s, n):
        return s if n is None else self.sigma[n].get(s, s)

    def ren(self, expr, n):
        return expr if n is None else expr.xreplace(self.sigma[n])

    def index(self, idx: tuple, per_example: bool, n) -> tuple:
        """A model array's element index as hand files write it: the example first for a batch."""
        if not per_example:
            return tuple(idx)
        rest = tuple(idx[1:])
        if not self.network.batched:
            return rest
        return (n, *rest) if n is not None else tuple(idx)

    def label(self, sym) -> str:
        """A symbol's name as results show it (``grad.W2[1][2]``), or the symbol's own."""
        return self.labels.get(sym, str(sym))

    # building ---------------------------------------------------------------------------------
    def add(self, symbol, expr, kind, name, index, order=None, **meta) -> Node:
        """A node for ``symbol`` (after those added so far, unless ``order`` says where results show it)."""
        label = f"{name}{index_text(index)}"
        order = order or (2 if kind.startswith("new.") else 0, len(self.nodes))
        node = Node(symbol, sympy.sympify(expr), name, kind, label, order, tuple(index), meta)
        self.nodes[symbol] = node
        self.named[(name, tuple(index))] = symbol
        self.labels[symbol] = label
        return node

    def _leaves(self):
        net, model = self.network, self.model
        for name, index, sym in model.parameters():
            self.leaves[sym] = Interval.point(float(net.parameters[name][index]))
            self.labels[sym] = f"{name}{index_text(index)}"
        arrays = [("x", model.X, net.x), ("y", model.Y, net.y)]
        arrays += [(name, symbols, net.masks[name]) for lm in model.layers for name, symbols in lm.data.items()]
        for name, symbols, values in arrays:
            for idx, s in np.ndenumerate(symbols):
                for n in self.examples(True):
                    at = idx if n is None else (n, *idx[1:])
                    sym = self.sym(s, n)
                    self.leaves[sym] = Interval.point(float(values[at]))
                    self.labels[sym] = name + index_text(self.index(idx, True, n))

    def _forward(self):
        for lm in self.model.layers:
            for stage, group in lm.element_groups():    # in the order of computation (a recurrence step by step)
                for n, idx in ((n, idx) for n in self.examples(stage.per_example) for idx in group):
                    s = stage.symbols[idx]
                    self.add(self.sym(s, n), self.ren(stage.defs[idx], n), stage.name, stage.quantity,
                             self.index(idx, stage.per_example, n), layer=lm, stage=stage.name, element=idx,
                             example=n, model_symbol=s)
        self.loss = sympy.Symbol("C", real=True)
        loss = self.model.loss_def
        if self.renamed:
            loss = sympy.Add(*[self.ren(loss, n) for n in range(self.N)]) / self.N
        self.add(self.loss, loss, "loss", "loss", ())

    def _backward(self):
        for step in self.derivation.steps:
            if step.kind == "grad":
                self._gradient(step)
                continue
            lm, stage, idx = self.where[step.of]
            name = step_quantity(step.kind, step.layer)
            terms = [(term[0].expr, src) for term, src in zip(step.terms, step.sources) if src is not None]
            for n in self.examples(stage.per_example):
                self.add(self.sym(step.symbol, n), self.ren(step.expr, n), step.kind, name,
                          self.index(idx, stage.per_example, n), layer=lm, stage=stage.name, element=idx, example=n,
                          step=step, u=step.of, terms=[(f, src, n) for f, src in terms])

    def _gradient(self, step):
        """∂C/∂w = Σ ∂z/∂w · δ over what reads w: with the δ the person wrote, or the one their
        factors imply; for a batch of a one-example model, the mean of the examples' sums."""
        terms = [(term[0].expr, src, n) for term, src in zip(step.terms, step.sources) if src is not None
                 for n in self.examples(True)]
        scale = sympy.Rational(1, self.N) if self.renamed else 1
        expr = scale * self.sum_terms(terms)
        lm = self.model.layers[step.layer - 1]
        self.add(step.symbol, expr, "grad", f"grad.{step.param}", step.index, layer=lm, step=step, u=step.of,
                  terms=terms, scale=scale, param=step.param)

    def sum_terms(self, terms) -> sympy.Expr:
        """Σ factor · ∂C/∂source over (factor, source, example) terms, in check's symbols."""
        return sympy.Add(*[self.ren(f, n) * self.sym(self.step_of[src].symbol, n) for f, src, n in terms])

