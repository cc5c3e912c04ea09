"""Numbers for a derivation: forward values, the loss, every backward step and every gradient.

Each local expression is evaluated in order, with the values of the symbols it refers to: float64
NumPy arrays over the examples of a batch, or exact SymPy numbers (Rationals from the digits the
spec was written with) when ``exact=True``. Gradients are of the batch-mean loss.

Float64 values come through the same numerically stable forms as the generated code
(:func:`symbackprop.codegen.rewrites.stabilize`: σ as ½ + ½ tanh(z/2), log(1 + eᶻ) as softplus, ...), printed
by its printer but without its clipping, so they are the true values. Where float64 still cannot
hold a step (e^{1e4} in ∂C/∂a of a saturated sigmoid, a softmax of |z| = 1e4), the whole pass is
redone in arbitrary precision (mpmath, 40 digits, unbounded exponents): forward values and
gradients are then correct float64 numbers whenever they are representable, and only a truly
non-finite result is an error.

>>> from symbackprop.spec.network import Network
>>> from symbackprop.derive.model import Model
>>> from symbackprop.derive.derivation import Derivation
>>> net = Network.from_dict({"network": {"layers": [1, 1], "activations": ["identity"],
...     "loss": "squared_error"}, "parameters": {"W1": [[2.0]], "b1": [0.5]},
...     "sample": {"x": [3], "y": [1]}})
>>> v = evaluate(Derivation(Model(net)))
>>> float(v.loss), v.gradients["W1"].tolist()
(30.25, [[33.0]])
"""
import math
import weakref
from dataclasses import dataclass, field

import mpmath
import numpy as np
import sympy

from ..derive.derivation import Derivation
from ..derive.model import Model
from ..entries.template import placeholders
from .templated import evaluate_many

# NumPy has no erf (gelu); math.erf element by element is exact and needs no scipy.
_erf = np.vectorize(math.erf, otypes=[np.float64])
LAMBDIFY_MODULES = [{"erf": _erf}, "numpy"]
# the names printing.StablePrinter's code refers to, set so that nothing is clipped: true values
_STABLE = {"np": np, "_erf": _erf, "DTYPE": np.float64, "EPS": 0.0, "EXP_LO": -math.inf, "EXP_HI": math.inf}
# decimal digits of the arbitrary-precision fallback, tried in turn: 1 − σ(z) at z = 1e4 is
# 10^-4343, which only the last keeps; beyond it a value counts as not finite
PRECISIONS = (40, 600, 5000, 12000)


@dataclass
class Values:
    """Per-example values of every symbol (arrays of shape (B,): B examples, or 1 for a model
    built over the whole batch), and their summaries."""
    env: dict                                  # Symbol -> (B,) array, or list of exact numbers
    loss: object                               # the batch-mean loss
    forward: dict[str, np.ndarray]             # "z1", "a1", ...: one example's shape, or (N, ...)
    gradients: dict[str, np.ndarray]           # "W1": its shape, of the mean loss
    exact: bool = False
    batch: int = 1
    per_example_loss: list = field(default_factory=list)
    precise: bool = False                      # computed in arbitrary precision (mpmath numbers)

    def of(self, expr) -> object:
        """The batch mean of an expression in known symbols (a factor, a step)."""
        return _mean(_Evaluator(self.exact, self.precise, self.batch).value(sympy.sympify(expr), self.env),
                     self.exact, self.precise)


    def each_of(self, exprs: list) -> list | None:
        """The per-example values (arrays of shape (B,)) of several expressions in known symbols,
        in float64 by template (one compiled function per distinct one): what a renderer shows of
        thousands of local derivatives. None where float64 cannot hold one of them, or where the
        values are exact or in arbitrary precision (compute those one by one)."""
        if self.exact or self.precise:
            return None
        try:
            return _Evaluator(False, False, self.batch).group([sympy.sympify(e) for e in exprs], self.env)
        except _Overflow:
            return None


class _Overflow(Exception):
    """float64 cannot hold a value: redo the pass in arbitrary precision."""


class _Evaluator:
    """Evaluates expressions over B examples: float64 NumPy (stable forms), mpmath, or exact."""

    def __init__(self, exact: bool, precise: bool, batch: int):
        self.exact, self.precise, self.batch = exact, precise, batch
        self.cache: dict = {}

    def group(self, exprs: list, env: dict) -> list:
        """The values of several expressions at once: in float64 by template (one compiled
        function per distinct one), in arbitrary precision by one mpmath function."""
        if self.exact:
            return [self.value(e, env) for e in exprs]
        if not self.precise:
            return self._templated(exprs, env)
        key = tuple(exprs)
        if key not in self.cache:
            symbols = sorted(set().union(*(e.free_symbols for e in exprs)), key=lambda s: s.name)
            self.cache[key] = symbols, sympy.lambdify(symbols, exprs, [{"exp": _bounded_exp}, "mpmath"])
        symbols, fn = self.cache[key]
        try:
            rows = [[_real(v) for v in fn(*[env[s][b] for s in symbols])] for b in range(self.batch)]
        except (ZeroDivisionError, ValueError, OverflowError):
            raise _Overflow from None
        values = [np.array([row[i] for row in rows], dtype=object) for i in range(len(exprs))]
        if not all(mpmath.isfinite(x) for v in values for x in v):
            raise _Overflow
        return values

    def _templated(self, exprs, env) -> list:
        """float64: each distinct template compiled once per process (``_TEMPLATES``), and the
        expressions sharing it evaluated in one call (:mod:`symbackprop.numeric.templated`)."""
        try:
            with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
                values = evaluate_many(exprs, env, self.batch, _stable_template, _TEMPLATES)
        except (FloatingPointError, OverflowError, ZeroDivisionError):
            raise _Overflow from None
        if not all(np.isfinite(v).all() for v in values):
            raise _Overflow
        return values

    def value(self, expr, env):
        if self.exact:
            symbols = expr.free_symbols
            return [expr.xreplace({s: env[s][i] for s in symbols}) for i in range(self.batch)]
        return self.group([expr], env)[0]


_TEMPLATES: dict = {}      # template key -> its stable lambdified function, for the whole process


def _stable_template(expr, symbols):
    template, ps = placeholders(expr, symbols)
    return stable_function(ps, [template])


def stable_function(symbols, exprs):
    """``lambdify`` of ``exprs`` through the numerically stable forms of the generated code (see
    the module docstring): the true float64 values, without overflow where they are finite."""
    from ..codegen.printing import StablePrinter
    from ..codegen.rewrites import stabilize
    # terms and factors printed in SymPy's stored order ("none"): sorting them, as generated code
    # does for its readers, was most of the cost of compiling a batch-norm sum of 500 terms
    printer = StablePrinter({"order": "none", "fully_qualified_modules": False, "inline": True,
                             "allow_unknown_functions": True})
    return sympy.lambdify(symbols, [stabilize(e) for e in exprs], [_STABLE, "numpy"], printer=printer)


EXP_ARGUMENT = mpmath.mpf(2) ** 20   # past it (about 1e6) exp is inf, or 0: e^(1e6) is 10^434294


def _bounded_exp(x):
    """mpmath's exp, but inf (0) for an argument past ±2²⁰: exp(exp(exp(15))) would otherwise make
    mpmath build an exponent of millions of digits, for a value no float64 holds anyway."""
    if isinstance(x, mpmath.mpf) and abs(x) > EXP_ARGUMENT:
        return mpmath.inf if x > 0 else mpmath.mpf(0)
    return mpmath.exp(x)


def _real(v):
    """An mpmath result as a real number: NaN where it is complex (a root or log of a negative)."""
    if isinstance(v, mpmath.mpc):
        return v.real if v.imag == 0 else mpmath.mpf("nan")
    return mpmath.mpf(v) if not isinstance(v, mpmath.mpf) else v


def _mean(values, exact, precise=False):
    if exact:
        return sympy.Add(*values) / len(values)
    if precise:
        return mpmath.fsum(values) / len(values)
    return float(np.mean(values))


def _groups(pairs):
    """Consecutive (symbol, expression) pairs split where one reads a symbol of its own group:
    each group can be computed by one call."""
    groups, current, names = [], [], set()
    for target, expr in pairs:
        if current and expr.free_symbols & names:
            groups.append(current)
            current, names = [], set()
        current.append((target, expr))
        names.add(target)
    return groups + [current] if current else groups


_PLANS = weakref.WeakKeyDictionary()    # derivation -> its plan (building every step's expression costs seconds)


def _plan(derivation: Derivation) -> list:
    """The forward definitions, the loss and every backward step, in groups for one call each."""
    plan = _PLANS.get(derivation)
    if plan is None:
        model = derivation.model
        plan = _PLANS[derivation] = _groups(list(model.definitions.items()) + [(None, model.loss_def)]
                                            + [(s.symbol, s.expr) for s in derivation.steps])
    return plan


def inputs(model: Model, net, exact: bool = False, parameters: dict | None = None) -> tuple[dict, int]:
    """The values of every parameter, input, target and mask symbol, and the number B of value
    sets (the examples, or 1 for a model built over the whole batch)."""
    E, N = model.examples, net.x.shape[0]
    B = N if E == 1 else 1
    convert = (lambda v: sympy.Rational(repr(v))) if exact else float
    env = {}
    arrays = {name: (np.asarray(parameters[name]) if parameters is not None
                     else np.array(net.exact[name], dtype=object) if exact else net.parameters[name])
              for name in net.parameter_shapes()}
    for name, index, s in model.parameters():
        value = convert(arrays[name][index])
        env[s] = [value] * B if exact else np.full(B, value)
    data = [(model.X, np.array(net.exact["x"], dtype=object).reshape(net.x.shape) if exact else net.x),
            (model.Y, np.array(net.exact["y"], dtype=object).reshape(net.y.shape) if exact else net.y)]
    data += [(symbols, net.masks[name]) for lm in model.layers for name, symbols in lm.data.items()]
    for symbols, values in data:
        for idx in np.ndindex(*symbols.shape):
            column = values[(slice(None), *idx[1:])] if E == 1 else values[idx][None]
            env[symbols[idx]] = [convert(v) for v in column] if exact else np.asarray(column, dtype=np.float64)
    return env, B


def evaluate(derivation: Derivation, exact: bool = False, parameters: dict | None = None) -> Values:
    """Every value of the forward and backward pass for the network's sample, at its parameters
    or at ``parameters`` (a dict of arrays like ``Network.parameters``)."""
    model, net = derivation.model, derivation.model.network
    if not net.has_numbers:
        raise ValueError("the spec has no [parameters] and [sample] to compute with")
    start, B = inputs(model, net, exact, parameters)
    plan = _plan(derivation)
    env, precise = _precise_run(plan, start, exact, B)
    per_example = env.pop(None)
    summary = (lambda v: v) if exact else (lambda v: np.array(v, dtype=np.float64)) if precise else (lambda v: v)
    forward = {}
    for stage in model.stages():
        forward[stage.quantity] = summary(_stack(stage, env, net.batched, exact or precise, model.examples))
    shapes = net.parameter_shapes()
    grads = {name: np.empty(shape, dtype=object if exact else np.float64) for name, shape in shapes.items()}
    for step in derivation.gradients():
        g = _mean(env[step.symbol], exact, precise)
        grads[step.param][step.index] = g if exact else float(g)
    loss = _mean(per_example, exact, precise)
    return Values(env, loss if exact else float(loss), forward, grads, exact, B, list(per_example), precise)


def _precise_run(plan, start, exact, B) -> tuple[dict, bool]:
    """``_run`` in float64, else at each of PRECISIONS in turn; at the last, whatever is not finite
    stays so (NaN), for require_finite to report. Returns (values, whether in arbitrary precision)."""
    try:
        return _run(plan, start, exact, False, B), False
    except _Overflow:
        pass
    for digits in PRECISIONS:
        with mpmath.workdps(digits):
            env = {s: np.array([mpmath.mpf(float(x)) for x in v], dtype=object) for s, v in start.items()}
            try:
                return _run(plan, env, False, True, B), True
            except _Overflow:
                continue
    with mpmath.workdps(PRECISIONS[-1]):
        env = {s: np.array([mpmath.mpf(float(x)) for x in v], dtype=object) for s, v in start.items()}
        return _run(plan, env, False, True, B, strict=False), True


def _run(plan, env, exact, precise, B, strict=True) -> dict:
    env = dict(env)
    ev = _Evaluator(exact, precise, B)
    for group in plan:
        try:
            values = ev.group([e for _, e in group], env)
        except _Overflow:
            if strict:
                raise
            values = [np.array([mpmath.mpf("nan")] * B, dtype=object) for _ in group]
        for (target, _), value in zip(group, values):
            env[target] = value
    return env


def _stack(stage, env, batched, objects, examples):
    """A stage's values in its shape: (N, *shape) for a batch, one example's shape otherwise."""
    symbols = stage.symbols
    if not stage.per_example:
        return np.array([env[s][0] for s in symbols.ravel()], dtype=object if objects else np.float64).reshape(symbols.shape)
    if examples > 1:          # built over the batch: one value per symbol
        table = np.array([env[s][0] for s in symbols.ravel()], dtype=object if objects else np.float64)
        return table.reshape(symbols.shape)
    columns = [env[s] for s in symbols.reshape(len(symbols), -1)[0]]
    table = np.array([list(r) for r in zip(*columns)], dtype=object) if objects else np.stack(columns, axis=1)
    table = table.reshape((len(columns[0]), *symbols.shape[1:]))
    return table if batched else table[0]


def require_finite(quantities: dict) -> None:
    """SpecError naming the first quantity that is not finite (an overflow, a log of a
    non-positive number, ...): such results are not printed as if they were answers."""
    from ..errors import SpecError
    for name, value in quantities.items():
        try:
            finite = not np.iscomplexobj(value) and np.all(np.isfinite(np.asarray(value, dtype=np.float64)))
        except (TypeError, ValueError, OverflowError):      # exact values that are complex or undefined
            finite = False
        if not finite:
            raise SpecError(name, "is not a finite number for these parameters and this sample "
                                  "(overflow, or a function outside its domain)")


def evaluator(derivation: Derivation):
    """``evaluate``'s loss and gradients as a function of the parameters, for a training loop: each
    expression is lambdified once, on the first call, where ``evaluate`` lambdifies on every call.

    >>> from symbackprop.spec.network import Network
    >>> from symbackprop.derive.model import Model
    >>> net = Network.from_dict({"network": {"layers": [1, 1], "activations": ["identity"],
    ...     "loss": "squared_error"}, "parameters": {"W1": [[2.0]], "b1": [0.5]},
    ...     "sample": {"x": [3], "y": [1]}})
    >>> loss, grads = evaluator(Derivation(Model(net)))({"W1": [[2.0]], "b1": [0.5]})
    >>> loss, grads["W1"].tolist()
    (30.25, [[33.0]])
    """
    model, net = derivation.model, derivation.model.network
    plan = _plan(derivation)
    fast, grad_steps = {}, derivation.gradients()

    def run(parameters: dict):
        start, B = inputs(model, net, parameters={k: np.asarray(v, dtype=np.float64) for k, v in parameters.items()})
        try:
            ev = fast.setdefault("ev", _Evaluator(False, False, B))
            env = dict(start)
            for group in plan:
                for (target, _), value in zip(group, ev.group([e for _, e in group], env)):
                    env[target] = value
            precise = False
        except _Overflow:
            env, precise = _precise_run(plan, start, False, B)
        grads = {name: np.empty(shape) for name, shape in net.parameter_shapes().items()}
        for step in grad_steps:
            grads[step.param][step.index] = float(_mean(env[step.symbol], False, precise))
        return float(_mean(env[None], False, precise)), grads

    return run
