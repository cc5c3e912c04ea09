"""The registry: every activation and loss, each defined once as a SymPy expression.

Everything else — derivatives, LaTeX, generated code, the documentation table and the tests — is
derived from these entries. Adding an activation is adding one ``Activation(...)`` line below.

Conventions, written once here:

* Kinks are ``Piecewise`` branches whose left branch owns the kink point (``z <= 0``), so SymPy's
  derivative takes the left-hand value there: relu′(0) = 0 and leaky_relu′(0) = 0.01, as PyTorch
  and JAX take them (``diff(Max(z, 0))`` would give SymPy's Heaviside(0) = ½).
* ``output_form`` is f′(z) written in the activation's own output ``a = f(z)`` (σ′ = a(1 − a)), so
  code can reuse forward values. These are curated, never solved for, and each is proven equal to
  ``diff(expr, z)`` by the tests.

>>> ACTIVATIONS["sigmoid"].derivative
exp(-z)/(1 + exp(-z))**2
>>> LOSSES["squared_error"].total([a], [y])
(a - y)**2
"""
import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

import sympy
from sympy import Piecewise, Rational, exp, log, sqrt, erf, tanh

from .template import substitute
from ..writers.textprint import text

z = sympy.Symbol("z", real=True)        # an activation's input
a = sympy.Symbol("a", real=True)        # an activation's output, or a network output
y = sympy.Symbol("y", real=True)        # a target
n = sympy.Symbol("n", positive=True, integer=True)  # number of outputs


@dataclass(frozen=True)
class Activation:
    name: str
    expr: sympy.Expr                       # f(z), element-wise
    latex: str                             # the LaTeX name of f
    note: str = ""                         # its conventions, for the docs
    output_form: sympy.Expr | None = None  # f'(z) in terms of a = f(z), where one exists
    domain: tuple[float, float] = (-4.0, 4.0)  # where tests sample z
    kinks: tuple[float, ...] = ()          # where tests must not sample z
    vector: Callable[[list], list] | None = field(default=None, compare=False)  # not element-wise
    shift_invariant: bool = False          # f(z - c) = f(z) for a constant c: numbers may subtract max(z)

    @cached_property
    def derivative(self) -> sympy.Expr:
        """f'(z), by SymPy."""
        return sympy.diff(self.expr, z)

    @cached_property
    def simple_derivative(self) -> sympy.Expr:
        """f'(z) as people write it, for text and LaTeX: the shortest of SymPy's rewrites of
        ``derivative`` found within :data:`SIMPLIFY_SECONDS`, never with a function the derivative
        does not use (SymPy's simplify writes σ′ with cosh). Numbers and code use ``derivative``;
        the tests prove the two equal for every entry.

        >>> Activation("custom", z / (1 + sympy.Abs(z)), "f").simple_derivative
        (Abs(z) + 1)**(-2)
        """
        return simplest(self.derivative)

    def apply(self, inputs: list) -> list:
        """The layer's outputs for the list of its inputs."""
        if self.vector is not None:
            return self.vector(inputs)
        return [substitute(self.expr, z, u) for u in inputs]

    @property
    def elementwise(self) -> bool:
        return self.vector is None


SIMPLIFY_SECONDS = 2.0   # for a formula from a spec; the registry's entries take a few ms each


def simplest(expr: sympy.Expr, seconds: float = SIMPLIFY_SECONDS) -> sympy.Expr:
    """The shortest (by ``count_ops``) of ``expr`` and its rewrites by ``together``, ``factor``,
    ``cancel`` and, time allowing, ``simplify``; z·sign(z) is |z| first (z is real). A rewrite
    that brings in a function ``expr`` does not use is not taken."""
    if not expr.free_symbols:
        return expr
    known = {type(f) for f in expr.atoms(sympy.Function)} | {sympy.Abs}
    start = expr.replace(lambda e: e.is_Mul and sympy.sign(z) in e.args and z in e.args,
                         lambda e: e / (z * sympy.sign(z)) * sympy.Abs(z))
    candidates = [expr, start]
    for rewrite in (sympy.together, sympy.factor, sympy.cancel, sympy.simplify):
        found = _within(seconds, rewrite, start)
        if found is not None:
            candidates.append(found)
    fair = [c for c in candidates if {type(f) for f in c.atoms(sympy.Function)} <= known]
    return min(fair, key=lambda c: (sympy.count_ops(c), len(str(c))))


def _within(seconds: float, fn, *args):
    """``fn(*args)``, or None if it raises or takes longer than ``seconds`` (measured by
    SIGALRM where it can be: the main thread on POSIX, no timer of the caller's running; elsewhere
    ``simplify``, the one that can run long, is skipped)."""
    import signal
    import threading
    timed = (hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
             and signal.getitimer(signal.ITIMER_REAL)[0] == 0)   # never take over a caller's timer
    if not timed:
        return None if fn is sympy.simplify else _quiet(fn, *args)

    def stop(signum, frame):
        raise TimeoutError

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return _quiet(fn, *args)
    except TimeoutError:
        return None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _quiet(fn, *args):
    try:
        return fn(*args)
    except (ValueError, TypeError, NotImplementedError, RecursionError, sympy.PolynomialError):
        return None


def _softmax(inputs):
    total = sympy.Add(*[exp(u) for u in inputs])
    return [exp(u) / total for u in inputs]


_sigmoid = 1 / (1 + exp(-z))

ACTIVATIONS = {act.name: act for act in [
    Activation("identity", z, r"\operatorname{id}", output_form=sympy.Integer(1)),
    Activation("sigmoid", _sigmoid, r"\sigma", output_form=a * (1 - a)),
    Activation("tanh", tanh(z), r"\tanh", output_form=1 - a**2),
    Activation("relu", Piecewise((0, z <= 0), (z, True)), r"\operatorname{relu}",
               "relu'(0) = 0, as PyTorch and JAX take it",
               output_form=Piecewise((0, a <= 0), (1, True)), kinks=(0.0,)),
    Activation("leaky_relu", Piecewise((z / 100, z <= 0), (z, True)), r"\operatorname{lrelu}",
               "slope 0.01 for z <= 0; leaky_relu'(0) = 0.01, as PyTorch takes it",
               output_form=Piecewise((Rational(1, 100), a <= 0), (1, True)), kinks=(0.0,)),
    Activation("softplus", log(1 + exp(z)), r"\operatorname{softplus}",
               output_form=1 - exp(-a)),
    Activation("elu", Piecewise((exp(z) - 1, z <= 0), (z, True)), r"\operatorname{elu}",
               "alpha = 1; elu'(0) = 1", output_form=Piecewise((a + 1, a <= 0), (1, True)),
               kinks=(0.0,)),
    Activation("silu", z * _sigmoid, r"\operatorname{silu}", "z * sigmoid(z), also called swish"),
    Activation("gelu", z * (1 + erf(z / sqrt(2))) / 2, r"\operatorname{gelu}",
               "the exact erf form, z * Phi(z)"),
    Activation("softmax", exp(z), r"\operatorname{softmax}",
               "output layer only; a_j = exp(z_j) / sum_k exp(z_k)", vector=_softmax, shift_invariant=True),
]}


@dataclass(frozen=True)
class Loss:
    name: str
    term: sympy.Expr                 # the loss of one output a against its target y
    scale: sympy.Expr = sympy.Integer(1)  # the factor in front of the sum over the n outputs
    note: str = ""
    targets: tuple[float, float] = (-math.inf, math.inf)  # the targets y the loss is defined for

    def total(self, outputs: list, targets: list) -> sympy.Expr:
        """C for one example: scale * sum_j term(a_j, y_j)."""
        terms = [self.term.xreplace({a: o, y: t}) for o, t in zip(outputs, targets)]
        return self.scale.xreplace({n: len(terms)}) * sympy.Add(*terms)

    @cached_property
    def derivative(self) -> sympy.Expr:
        """dC/da_j for one output, without the scale, by SymPy."""
        return sympy.diff(self.term, a)

    def formula(self) -> sympy.Expr:
        """C as a sum over j = 1..n, for rendering."""
        j = sympy.Symbol("j", integer=True, positive=True)
        aj, yj = sympy.Indexed("a", j), sympy.Indexed("y", j)
        return self.scale * sympy.Sum(self.term.xreplace({a: aj, y: yj}), (j, 1, n))


LOSSES = {loss.name: loss for loss in [
    Loss("squared_error", (a - y) ** 2, note="the seed's C_0"),
    Loss("half_squared_error", (a - y) ** 2, Rational(1, 2)),
    Loss("mse", (a - y) ** 2, 1 / n),
    Loss("binary_cross_entropy", -(y * log(a) + (1 - y) * log(1 - a)), note="outputs in (0, 1)",
         targets=(0.0, 1.0)),
    Loss("cross_entropy", -y * log(a), note="after a softmax output", targets=(0.0, math.inf)),
]}


def activation_name(act) -> str:
    """An activation as people call it: its registry name, or the formula a spec gave for it
    (``z/(|z| + 1)``), never the code-safe key the generated code uses.

    >>> activation_name(ACTIVATIONS["tanh"])
    'tanh'
    """
    return act.name if ACTIVATIONS.get(act.name) is act else text(act.expr)
