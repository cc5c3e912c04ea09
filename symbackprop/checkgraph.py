"""The graph ``check`` works on: every quantity of one training step as a node with a small local
SymPy expression, in the order of computation, and the interval ranges of those expressions.

Nodes come from the model (every stage: z, a, batch norm's mean, var and x̂), the loss, the
derivation's backward steps (∂C/∂a, ∂a/∂z, δ, ∂C/∂μ, ..., each gradient as Σ ∂z/∂w · δ over what
reads the weight), one optimizer step from zero state and the forward pass after it. With a batch
of N examples and a model built for one example, each example gets its own copy of the per-example
symbols (``z1_0_e1``: example 2's), and a gradient is the mean of the examples' gradients; a model
built over the whole batch (batch norm) already holds every example, its loss the batch mean.

:mod:`symbackprop.catalogue` says which mistakes each node may hold; :meth:`CheckGraph.replay`
recomputes a number with one of them made; :mod:`symbackprop.slipbook` makes the layer entries' own.
"""
import math
from collections import ChainMap
from dataclasses import dataclass, field

import numpy as np
import sympy

from .derive import Derivation
from .intervals import Interval, bound
from .model import Model
from .optimizers import HYPER, OPTIMIZERS, Settings, g, g_hat, m, m_hat, s as s_state, t, theta, v, v_hat

bc = HYPER["bias_correction"]
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
    def __init__(self, network, table: dict, optimizers: list[str], new_with: str | None, model: Model | None = None):
        self.network = network
        self.model = model = model or Model(network)
        self.derivation = Derivation(model)
        self.settings = Settings.of({k: val for k, val in table.items() if k != "name"})
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
        self.updated: dict[str, dict] = {}
        for rank, name in enumerate(optimizers):
            self._optimizer(rank, name)
        self.new_with, self.new_replace = new_with, {}
        if new_with is not None:
            self._new_pass(new_with)
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

    # building ---------------------------------------------------------------------------------
    def _add(self, symbol, expr, kind, name, index, order=None, **meta):
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
            for stage in lm.stages:
                for n in self.examples(stage.per_example):
                    for idx, s in np.ndenumerate(stage.symbols):
                        self._add(self.sym(s, n), self.ren(stage.defs[idx], n), stage.name, stage.quantity,
                                  self.index(idx, stage.per_example, n), layer=lm, stage=stage.name, element=idx,
                                  example=n, model_symbol=s)
        self.loss = sympy.Symbol("C", real=True)
        loss = self.model.loss_def
        if self.renamed:
            loss = sympy.Add(*[self.ren(loss, n) for n in range(self.N)]) / self.N
        self._add(self.loss, loss, "loss", "loss", ())

    def _backward(self):
        for step in self.derivation.steps:
            if step.kind == "grad":
                self._gradient(step)
                continue
            lm, stage, idx = self.where[step.of]
            name = step_quantity(step.kind, step.layer)
            terms = [(term[0].expr, src) for term, src in zip(step.terms, step.sources) if src is not None]
            for n in self.examples(stage.per_example):
                self._add(self.sym(step.symbol, n), self.ren(step.expr, n), step.kind, name,
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
        self._add(step.symbol, expr, "grad", f"grad.{step.param}", step.index, layer=lm, step=step, u=step.of,
                  terms=terms, scale=scale, param=step.param)

    def sum_terms(self, terms) -> sympy.Expr:
        """Σ factor · ∂C/∂source over (factor, source, example) terms, in check's symbols."""
        return sympy.Add(*[self.ren(f, n) * self.sym(self.step_of[src].symbol, n) for f, src, n in terms])

    def _optimizer(self, rank: int, name: str):
        """One step of ``name`` from zero state (t = 1), element by element, as nodes. The
        optimizer's own assignments are used as they are; its temporaries (g̃, m̂, v̂) are inlined.
        A parameter the settings do not train keeps its value and its zero state."""
        opt, settings = OPTIMIZERS[name], self.settings
        hyper = {HYPER[k]: Interval.point(val) for k, val in settings.values(opt).items()}
        for k, sym in HYPER.items():
            hyper.setdefault(sym, Interval.point(0.0))
        hyper[bc] = Interval.point(1.0 if settings.bias_correction else 0.0)
        hyper[t] = Interval.point(1.0)
        targets = [target for target, _ in opt.rules if target not in (g_hat, m_hat, v_hat)]
        for p_rank, (pname, index, psym) in enumerate(self.model.parameters()):
            grad = self.named[(f"grad.{pname}", index)]
            trained = settings.trains(pname)
            current = {theta: psym, g: grad, m: 0, v: 0, s_state: 0}
            for target, rhs in opt.rules:
                expr = rhs.xreplace(current)
                if target in (g_hat, m_hat, v_hat):
                    current[target] = expr
                    continue
                if not trained:
                    expr = psym if target == theta else sympy.Integer(0)
                quantity = f"{name}.{pname}" if target == theta else f"{name}.{target.name}.{pname}"
                sym = sympy.Symbol(f"{quantity}_{'_'.join(map(str, index))}", real=True)
                node = self._add(sym, expr, "param" if target == theta else "state", quantity, index,
                                 (1, rank, targets.index(target), p_rank), optimizer=name, param=psym,
                                 state=target.name, trained=trained)
                node.hyper = hyper
                current[target] = sym
            self.updated.setdefault(name, {})[psym] = current[theta] if trained else psym

    def _new_pass(self, name: str):
        """The forward pass with the parameters after one step of ``name``."""
        replace = {p: q for p, q in self.updated[name].items() if p != q}
        for lm in self.model.layers:
            own = {s for arr in lm.params.values() for s in arr.ravel()}
            old = {q: p for p, q in replace.items() if p in own}
            for stage in lm.stages:
                added = {}
                for n in self.examples(stage.per_example):
                    for idx, s in np.ndenumerate(stage.symbols):
                        base, expr = self.sym(s, n), self.ren(stage.defs[idx], n)
                        new = sympy.Symbol(f"new.{base.name}", real=True)
                        inputs = {replace[u]: u for u in expr.free_symbols if u in replace and u in self.nodes}
                        self._add(new, expr.xreplace(replace), f"new.{stage.name}", f"new.{stage.quantity}",
                                  self.index(idx, stage.per_example, n), layer=lm, stage=stage.name, element=idx,
                                  example=n, old_params=old, old_inputs=inputs)
                        added[base] = new
                replace.update(added)
        self.new_replace = replace
        sym = sympy.Symbol("new.C", real=True)
        self._add(sym, self.nodes[self.loss].expr.xreplace(replace), "new.loss", "new.loss", ())

    # evaluating -------------------------------------------------------------------------------
    def env_of(self, node, env):
        return ChainMap(node.hyper, env) if node.hyper else env

    def true_values(self) -> dict | None:
        """Every node's exact value from the spec's numbers in arbitrary precision (the digits of
        numeric.PRECISIONS, tried in turn): where float intervals cannot hold a step — 1 − σ(z) at
        z = 1e4 — the interval arithmetic gives a range that is only a bound. None when even the
        last precision does not make every value finite."""
        import mpmath
        from .numeric import PRECISIONS
        for digits in PRECISIONS:
            with mpmath.workdps(digits):
                env = {s: mpmath.mpf(v.lo) for s, v in self.leaves.items()}
                try:
                    for node in self.order:
                        point = {**{s: mpmath.mpf(v.lo) for s, v in (node.hyper or {}).items()}, **env}
                        args = sorted(node.expr.free_symbols, key=str)
                        value = sympy.lambdify(args, node.expr, "mpmath")(*[point[a] for a in args])
                        if isinstance(value, mpmath.mpc) or not mpmath.isfinite(value):
                            raise ZeroDivisionError
                        env[node.symbol] = mpmath.mpf(value)
                except (ZeroDivisionError, ValueError, OverflowError, TypeError):
                    continue
                return {s: float(v) for s, v in env.items() if s in self.nodes}
        return None

    def ranges(self, given: dict):
        """Each node's range from its inputs (``derived``), and the values used downstream
        (``env``: the person's interval where they wrote the number, the derived range otherwise)."""
        env, derived = dict(self.leaves), {}
        for node in self.order:
            derived[node.symbol] = bound(node.expr, self.env_of(node, env))
            env[node.symbol] = given.get(node.symbol, derived[node.symbol])
        return derived, env

    def scope(self, sym, given) -> list:
        """The node, the unwritten nodes it was computed through, and the written ones at their
        edge: where a mistake could have entered this number."""
        seen, stack = {sym}, [sym]
        while stack:
            node = self.nodes[stack.pop()]
            for i in node.inputs:
                if i not in seen:
                    seen.add(i)
                    if i not in given:
                        stack.append(i)
        return sorted(seen, key=self.position.get)

    def replay(self, sym, alts: dict, scope, given, env):
        """``sym``'s range had each target of ``alts`` been computed by its alternative expression."""
        if sym in alts:
            return bound(alts[sym], self.env_of(self.nodes[sym], env))
        local = dict(env)
        for target, alt in alts.items():
            local[target] = bound(alt, self.env_of(self.nodes[target], env))
        changed = set(alts)
        for s in scope[min(scope.index(x) for x in alts) + 1:]:
            if s in alts or (s != sym and s in given):
                continue
            other = self.nodes[s]
            if changed.intersection(other.inputs):
                r = bound(other.expr, self.env_of(other, local))
                if s == sym:
                    return r
                local[s] = r
                changed.add(s)
        return Interval(math.nan, math.nan)  # sym does not depend on the targets
