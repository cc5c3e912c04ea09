"""Backpropagation, symbolically: reverse accumulation over named intermediates.

Each quantity of the backward pass is a :class:`Step` — a named symbol (``delta2_0``) whose value is
a sum of products of :class:`Factor` s in chain order, each factor a local derivative taken by
``sympy.diff`` (∂C/∂a from the loss, ∂a/∂z from the activation, ∂z/∂w and ∂z/∂a from z = Wa + b).
So every gradient *is* its chain-rule product, ∂C/∂w = ∂z/∂w · ∂a/∂z · ∂C/∂a, and stays small.
:func:`expanded_gradient` is the other route, ``sympy.diff`` of the whole expanded loss: a test
oracle for small networks only.

>>> from symbackprop.spec.network import Network
>>> from symbackprop.derive.model import Model
>>> d = Derivation(Model(Network.from_dict({"network": {"layers": [1, 1],
...     "activations": ["sigmoid"], "loss": "squared_error"}})))
>>> [f.expr for f in d.gradient("W1", (0, 0)).terms[0]]
[x_0, da1_dz1_0, dC_da1_0]
>>> [d.by_symbol[f.expr].expr for f in d.gradient("W1", (0, 0)).terms[0][1:]]
[a1_0*(1 - a1_0), 2*a1_0 - 2*y_0]
"""
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import sympy

from .model import Model
from ..entries.template import placeholders, rename, substitute, template_key
from ..entries.registry import a as OUT, z as IN


@dataclass(frozen=True)
class Factor:
    """One local derivative: its LaTeX label (a fraction) and its expression — which is a named
    step's symbol when the factor is itself a step (∂C/∂a^{(1)}_1 of a hidden layer)."""
    label: str
    expr: sympy.Expr


@dataclass(frozen=True)
class Step:
    """A named quantity of the backward pass: symbol = Σ_terms Π_factors, in chain order."""
    symbol: sympy.Symbol
    label: str                      # its LaTeX, e.g. \delta^{(2)}_{1}
    kind: str                       # "dC/da", "da/dz", "delta" or "grad"
    layer: int
    index: tuple[int, ...]
    terms: tuple[tuple[Factor, ...], ...]
    param: str | None = None        # "W2", "b2" for gradients
    of: sympy.Symbol | None = None  # the symbol it is ∂C/∂ of (a z, an a, a weight, ...)
    sources: tuple = ()             # per term, the symbol whose definition its first factor
                                    # differentiates (None for the loss's and an activation's own)

    @property
    def expr(self) -> sympy.Expr:
        return sympy.Add(*[sympy.Mul(*[f.expr for f in term]) for term in self.terms])


def partial(top: str, bottom: str) -> str:
    """The LaTeX of ∂top/∂bottom."""
    return rf"\frac{{\partial {top}}}{{\partial {bottom}}}"


def _delta(z_label: str) -> str:
    r"""``z^{(2)}_{1}`` -> ``\delta^{(2)}_{1}``."""
    return r"\delta" + z_label[1:]


def _suffix(idx) -> str:
    return "".join(f"_{i}" for i in idx)


def _key(s) -> str:
    return s.name


_ZERO = ((Factor("0", sympy.Integer(0)),),)


def _terms_by_symbol(definition) -> dict | None:
    """For a sum (a convolution's, a batch mean's), its terms by the symbols they read: so that
    ∂/∂u differentiates only the few terms holding u, not all of them (the same derivative)."""
    if not definition.is_Add:
        return None
    by = {}
    for term in definition.args:
        for u in term.free_symbols:
            by.setdefault(u, []).append(term)
    return by


def _diff(definition, u, terms=None):
    """``sympy.diff(definition, u)``; for a sum, of the terms that read u only; for a case split
    (max-pool's), branch by branch as SymPy's rule does, without re-simplifying the conditions
    (which costs SymPy ~20 ms a window). Each term's derivative through :func:`_diff_term`."""
    if isinstance(definition, sympy.Piecewise):
        return sympy.Piecewise(*[(sympy.diff(e, u), c) for e, c in definition.args], evaluate=False)
    if terms is None:
        return _diff_term(definition, u)
    return sympy.Add(*[_diff_term(t, u) for t in terms[u]])   # the terms of a quantity nothing downstream reads


_DIFFS: dict = {}        # (template key, position of u) -> (the template's derivative, its placeholders)


def _diff_term(expr, u):
    """``sympy.diff(expr, u)``, the same expression, fast: a product that reads u once as a factor
    gives the other factors (the product rule's only nonzero term: a convolution's W·x, a dense
    layer's); anything else is differentiated once per template (:mod:`symbackprop.entries.template`) and renamed."""
    if expr is u:
        return sympy.Integer(1)
    if expr.is_Mul:
        rest = [f for f in expr.args if f is not u]
        if len(rest) == len(expr.args) - 1 and not any(u in f.free_symbols for f in rest):
            return sympy.Mul(*rest)
    key, symbols = template_key(expr)
    at = symbols.index(u)
    found = _DIFFS.get((key, at))
    if found is None:
        if len(_DIFFS) >= 20000:               # a long-lived process of many networks: start again
            _DIFFS.clear()
        template, ps = placeholders(expr, symbols)
        found = _DIFFS[(key, at)] = (sympy.diff(template, ps[at]), ps)
    derivative, ps = found
    return rename(derivative, dict(zip(ps, symbols)))


class Derivation:
    """All steps of the backward pass, output layer first.

    Reverse accumulation over the model's named arrays: for a symbol u, ∂C/∂u sums, over every
    later definition d that reads u, ∂d/∂u · ∂C/∂d. A layer's output read by two layers (an ``add``
    input) gets both paths' terms; a convolution's weight, read at every position, a term per
    position. An element-wise activation a = f(z) gets its own ∂a/∂z step (in the output a where
    the registry has that form), and δ = ∂a/∂z · ∂C/∂a, as the textbooks write it."""

    def __init__(self, model: Model):
        self.model = model
        self.steps: list[Step] = []
        self._of: dict[sympy.Symbol, Step] = {}          # symbol -> the step holding ∂C/∂symbol
        self._terms: dict[sympy.Symbol, list] = {}       # symbol -> its terms so far
        self._where = {s: (lm, stage, idx) for lm in model.layers for stage in lm.stages
                       for idx, s in np.ndenumerate(stage.symbols)}
        self._params = {s: (name, idx) for name, idx, s in model.parameters()}
        names = model.latex_names
        for s in model.output_array.ravel():
            self._terms[s] = [((Factor(partial("C", names[s]), sympy.diff(model.loss_def, s)),), None)]
        for lm in reversed(model.layers):
            self._layer(lm)

    def _layer(self, lm):
        names, layer = self.model.latex_names, lm.layer
        grads: dict[sympy.Symbol, list] = {}
        for stage, symbols, definitions in reversed(lm.chunks()):
            if stage.name == "z" and layer.has_z and layer.activation.elementwise:
                a = lm.stage("a")
                da_dz = [self._add(f"da{lm.index}_dz{lm.index}" + _suffix(self._index(s)),
                                   partial(names[a_], names[s]), "da/dz", s,
                                   ((Factor(partial(names[a_], names[s]), self._local_derivative(layer, a_, s)),),))
                         for s, a_ in zip(stage.symbols.ravel(), a.symbols.ravel())]
                deltas = [self._add(f"delta{lm.index}" + _suffix(self._index(s)), _delta(names[s]), "delta", s,
                                    ((self._as_factor(d), self._as_factor(self._of[a_])),))
                          for s, a_, d in zip(stage.symbols.ravel(), a.symbols.ravel(), da_dz)]
            else:
                pre = stage.name == "z" and layer.has_z      # a GRU's update gate z is not a pre-activation
                kind = "delta" if pre else f"dC/d{stage.name}"
                for s in symbols:
                    label = _delta(names[s]) if pre else partial("C", names[s])
                    found = self._terms.pop(s, ())
                    self._add(self._step_name(kind, s), label, kind, s, tuple(t for t, _ in found) or _ZERO,
                              sources=tuple(src for _, src in found) or (None,))
            if stage.name == "a" and layer.has_z and layer.activation.elementwise:
                continue          # a = f(z) element by element: δ above takes ∂a/∂z · ∂C/∂a
            for s, definition in zip(symbols, definitions):
                step = self._of[s]
                terms = _terms_by_symbol(definition)
                for u in sorted(definition.free_symbols, key=_key):
                    if u not in self._params and u not in self._where:
                        continue      # an input, a target or a mask: no gradient wanted
                    factor = Factor(partial(names[s], names[u]), layer.kind.local_form(lm, stage.name,
                                                                                     _diff(definition, u, terms)))
                    if u in self._params:
                        grads.setdefault(u, []).append((factor, step, s))
                    else:
                        self._terms.setdefault(u, []).append(((factor, self._as_factor(step)), s))
        for name, symbols in lm.params.items():
            for idx, w in np.ndenumerate(symbols):
                terms = grads.get(w, [])
                self._add(f"dC_d{name}" + _suffix(idx), partial("C", names[w]), "grad", w,
                          tuple(self._chain(f, st, len(terms)) for f, st, _ in terms) or _ZERO, param=name, index=idx,
                          sources=tuple(src for *_, src in terms) or (None,))

    def _chain(self, factor, step, count):
        """One term of a gradient: ∂z/∂w · ∂a/∂z · ∂C/∂a when the step is an element-wise δ and the
        weight is read once (a dense layer's, as the seed writes it), else ∂z/∂w · δ."""
        if count == 1 and step.kind == "delta" and len(step.terms) == 1 and len(step.terms[0]) == 2:
            return (factor, *step.terms[0])
        return (factor, self._as_factor(step))

    def _index(self, s) -> tuple[int, ...]:
        """A symbol's index in its array: the example first when the model has several."""
        lm, stage, idx = self._where[s]
        return idx[1:] if stage.per_example and self.model.examples == 1 else idx

    def _step_name(self, kind, s) -> str:
        lm, stage, _ = self._where[s]
        head = {"delta": f"delta{lm.index}", "dC/da": f"dC_da{lm.index}"}.get(kind, f"dC_d{stage.name}{lm.index}")
        return head + _suffix(self._index(s))

    def _add(self, name, label, kind, of, terms, param=None, index=None, sources=None) -> Step:
        layer = self._where[of][0].index if of in self._where else self._layer_of_param(param)
        step = Step(sympy.Symbol(name, real=True), label, kind, layer,
                    index if index is not None else self._index(of), tuple(terms), param, of,
                    tuple(sources) if sources is not None else (None,) * len(terms))
        self.model.latex_names[step.symbol] = label
        self.steps.append(step)
        self._of[of] = step
        return step

    def _layer_of_param(self, param) -> int:
        return next(lm.index for lm in self.model.layers if param in lm.params)

    @staticmethod
    def _as_factor(step: Step) -> Factor:
        return Factor(step.label, step.symbol)

    @staticmethod
    def _local_derivative(layer, a_, z_) -> sympy.Expr:
        """∂a_j/∂z_j: written in the layer's output where the registry has that form (proven
        equal to SymPy's derivative in the tests), SymPy's derivative in z otherwise."""
        act = layer.activation
        if act.output_form is not None:
            return substitute(act.output_form, OUT, a_)
        return substitute(act.derivative, IN, z_)

    @cached_property
    def by_symbol(self) -> dict[sympy.Symbol, Step]:
        return {s.symbol: s for s in self.steps}

    def gradients(self) -> list[Step]:
        """The gradient steps in the model's parameter order (W1, b1, W2, ...)."""
        found = {(s.param, s.index): s for s in self.steps if s.kind == "grad"}
        return [found[(name, tuple(index))] for name, index, _ in self.model.parameters()]

    def gradient(self, param: str, index: tuple[int, ...]) -> Step:
        return next(s for s in self.steps if s.param == param and s.index == index)

    def expand(self, expr: sympy.Expr) -> sympy.Expr:
        """``expr`` with every step and intermediate substituted, down to parameters and data."""
        # output forms refer to layer outputs a: the model's definitions expand those too
        return self.model.expand(expr, extra={s.symbol: s.expr for s in self.steps})

    def chain_gradient(self, param: str, index: tuple[int, ...]) -> sympy.Expr:
        """The chain-rule gradient fully substituted: comparable with :func:`expanded_gradient`."""
        return self.expand(self.gradient(param, index).symbol)


def expanded_gradient(model: Model, symbol: sympy.Symbol) -> sympy.Expr:
    """``sympy.diff`` of the whole expanded loss: the independent route, for small networks."""
    return sympy.diff(model.expanded_loss, symbol)
