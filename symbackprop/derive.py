"""Backpropagation, symbolically: reverse accumulation over named intermediates.

Each quantity of the backward pass is a :class:`Step` — a named symbol (``delta2_0``) whose value is
a sum of products of :class:`Factor` s in chain order, each factor a local derivative taken by
``sympy.diff`` (∂C/∂a from the loss, ∂a/∂z from the activation, ∂z/∂w and ∂z/∂a from z = Wa + b).
So every gradient *is* its chain-rule product, ∂C/∂w = ∂z/∂w · ∂a/∂z · ∂C/∂a, and stays small.
:func:`expanded_gradient` is the other route, ``sympy.diff`` of the whole expanded loss: a test
oracle for small networks only.

>>> from symbackprop.spec import Network
>>> from symbackprop.model import Model
>>> d = Derivation(Model(Network.from_dict({"network": {"layers": [1, 1],
...     "activations": ["sigmoid"], "loss": "squared_error"}})))
>>> [f.expr for f in d.gradient("W1", (0, 0)).terms[0]]
[x_0, da1_dz1_0, dC_da1_0]
>>> [d.by_symbol[f.expr].expr for f in d.gradient("W1", (0, 0)).terms[0][1:]]
[a1_0*(1 - a1_0), 2*a1_0 - 2*y_0]
"""
from dataclasses import dataclass
from functools import cached_property

import sympy

from .model import Model
from .registry import a as OUT, z as IN


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

    @property
    def expr(self) -> sympy.Expr:
        return sympy.Add(*[sympy.Mul(*[f.expr for f in term]) for term in self.terms])


def partial(top: str, bottom: str) -> str:
    """The LaTeX of ∂top/∂bottom."""
    return rf"\frac{{\partial {top}}}{{\partial {bottom}}}"


class Derivation:
    """All steps of the backward pass for one example, output layer first."""

    def __init__(self, model: Model):
        self.model = model
        names = model.latex_names
        self.steps: list[Step] = []
        L = len(model.layers)
        net = model.network
        dC_da = [self._add(f"dC_da{L}_{j}", partial("C", names[s]), "dC/da", L, (j,),
                           ((Factor(partial("C", names[s]), sympy.diff(model.loss_def, s)),),))
                 for j, s in enumerate(model.output)]
        for layer in reversed(model.layers):
            l, act = layer.index, net.activations[layer.index - 1]
            if act.elementwise:
                da_dz = [self._add(f"da{l}_dz{l}_{j}", partial(names[layer.a[j]], names[layer.z[j]]),
                                   "da/dz", l, (j,), ((Factor(partial(names[layer.a[j]], names[layer.z[j]]),
                                                              self._local_derivative(act, layer, j)),),))
                         for j in range(len(layer.z))]
                delta = [self._add(f"delta{l}_{j}", rf"\delta^{{({l})}}_{{{j + 1}}}", "delta", l, (j,),
                                   ((self._as_factor(da_dz[j]), self._as_factor(dC_da[j])),))
                         for j in range(len(layer.z))]
                grad_terms = lambda j, dz: (dz, self._as_factor(da_dz[j]), self._as_factor(dC_da[j]))
            else:  # softmax: the full Jacobian, δ_i = Σ_j ∂a_j/∂z_i · ∂C/∂a_j
                delta = [self._add(f"delta{l}_{i}", rf"\delta^{{({l})}}_{{{i + 1}}}", "delta", l, (i,),
                                   tuple((Factor(partial(names[aj], names[zi]), sympy.diff(layer.a_def[j], zi)),
                                          self._as_factor(dC_da[j])) for j, aj in enumerate(layer.a)))
                         for i, zi in enumerate(layer.z)]
                grad_terms = lambda j, dz: (dz, self._as_factor(delta[j]))
            for j, zj in enumerate(layer.z):
                for k, w in enumerate(layer.W[j]):
                    dz = Factor(partial(names[zj], names[w]), sympy.diff(layer.z_def[j], w))
                    self._add(f"dC_dW{l}_{j}_{k}", partial("C", names[w]), "grad", l, (j, k),
                              (grad_terms(j, dz),), f"W{l}")
            for j, zj in enumerate(layer.z):
                dz = Factor(partial(names[zj], names[layer.b[j]]), sympy.diff(layer.z_def[j], layer.b[j]))
                self._add(f"dC_db{l}_{j}", partial("C", names[layer.b[j]]), "grad", l, (j,),
                          (grad_terms(j, dz),), f"b{l}")
            if l > 1:  # ∂C/∂a^{(l-1)}_k = Σ_j ∂z^{(l)}_j/∂a^{(l-1)}_k · δ^{(l)}_j
                dC_da = [self._add(f"dC_da{l - 1}_{k}", partial("C", names[ak]), "dC/da", l - 1, (k,),
                                   tuple((Factor(partial(names[zj], names[ak]), sympy.diff(layer.z_def[j], ak)),
                                          self._as_factor(delta[j])) for j, zj in enumerate(layer.z)))
                         for k, ak in enumerate(layer.inputs)]

    def _add(self, name, label, kind, layer, index, terms, param=None) -> Step:
        step = Step(sympy.Symbol(name, real=True), label, kind, layer, index, terms, param)
        self.model.latex_names[step.symbol] = label
        self.steps.append(step)
        return step

    @staticmethod
    def _as_factor(step: Step) -> Factor:
        return Factor(step.label, step.symbol)

    @staticmethod
    def _local_derivative(act, layer, j) -> sympy.Expr:
        """∂a_j/∂z_j: written in the layer's output where the registry has that form (proven
        equal to SymPy's derivative in the tests), SymPy's derivative in z otherwise."""
        if act.output_form is not None:
            return act.output_form.xreplace({OUT: layer.a[j]})
        return act.derivative.xreplace({IN: layer.z[j]})

    @cached_property
    def by_symbol(self) -> dict[sympy.Symbol, Step]:
        return {s.symbol: s for s in self.steps}

    def gradients(self) -> list[Step]:
        """The ∂C/∂W and ∂C/∂b steps in the model's parameter order (W1, b1, W2, ...)."""
        found = {(s.param, s.index): s for s in self.steps if s.kind == "grad"}
        return [found[(name, index)] for name, index, _ in self.model.parameters()]

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
