"""Numbers for a derivation: forward values, the loss, every backward step and every gradient.

Each local expression is evaluated in order, with the values of the symbols it refers to: float64
NumPy arrays over the examples of a batch, or exact SymPy numbers (Rationals from the digits the
spec was written with) when ``exact=True``. Gradients are of the batch-mean loss.

>>> from symbackprop.spec import Network
>>> from symbackprop.model import Model
>>> from symbackprop.derive import Derivation
>>> net = Network.from_dict({"network": {"layers": [1, 1], "activations": ["identity"],
...     "loss": "squared_error"}, "parameters": {"W1": [[2.0]], "b1": [0.5]},
...     "sample": {"x": [3], "y": [1]}})
>>> v = evaluate(Derivation(Model(net)))
>>> float(v.loss), v.gradients["W1"].tolist()
(30.25, [[33.0]])
"""
import math
from dataclasses import dataclass, field

import numpy as np
import sympy

from .derive import Derivation

# NumPy has no erf (gelu); math.erf element by element is exact and needs no scipy.
_erf = np.vectorize(math.erf, otypes=[np.float64])
LAMBDIFY_MODULES = [{"erf": _erf}, "numpy"]


@dataclass
class Values:
    """Per-example values of every symbol (arrays of shape (N,)), and their summaries."""
    env: dict                                  # Symbol -> (N,) array or list of exact numbers
    loss: object                               # the batch-mean loss
    forward: dict[str, np.ndarray]             # "z1", "a1", ...: (n_l,) or (N, n_l)
    gradients: dict[str, np.ndarray]           # "W1": its shape, of the mean loss
    exact: bool = False
    batch: int = 1
    per_example_loss: list = field(default_factory=list)

    def of(self, expr) -> object:
        """The batch mean of an expression in known symbols (a factor, a step)."""
        return _mean(_eval(expr, self.env, self.exact, self.batch), self.exact)


def _eval(expr, env, exact, batch):
    symbols = sorted(expr.free_symbols, key=lambda s: s.name)
    if exact:
        return [expr.xreplace({s: env[s][i] for s in symbols}) for i in range(batch)]
    if not symbols:
        return np.full(batch, float(expr))
    fn = sympy.lambdify(symbols, expr, LAMBDIFY_MODULES)
    with np.errstate(all="ignore"):  # a nan or inf is reported by require_finite, not as a warning
        return np.broadcast_to(np.asarray(fn(*[env[s] for s in symbols]), dtype=np.float64), (batch,))


def _mean(values, exact):
    if exact:
        return sympy.Add(*values) / len(values)
    return float(np.mean(values))


def evaluate(derivation: Derivation, exact: bool = False, parameters: dict | None = None) -> Values:
    """Every value of the forward and backward pass for the network's sample, at its parameters
    or at ``parameters`` (a dict of arrays like ``Network.parameters``)."""
    model, net = derivation.model, derivation.model.network
    if not net.has_numbers:
        raise ValueError("the spec has no [parameters] and [sample] to compute with")
    batch = net.x.shape[0]
    env = {}
    convert = (lambda v: sympy.Rational(repr(v))) if exact else float
    for name, index, s in model.parameters():
        raw = (np.asarray(parameters[name]).tolist() if parameters is not None
               else net.exact[name] if exact else net.parameters[name].tolist())
        value = raw[index[0]][index[1]] if len(index) == 2 else raw[index[0]]
        env[s] = [convert(value)] * batch if exact else np.full(batch, float(value))
    rows_x = net.exact["x"] if exact else net.x.tolist()
    rows_y = net.exact["y"] if exact else net.y.tolist()
    for k, s in enumerate(model.x):
        env[s] = [convert(r[k]) for r in rows_x] if exact else np.array([r[k] for r in rows_x], float)
    for j, s in enumerate(model.y):
        env[s] = [convert(r[j]) for r in rows_y] if exact else np.array([r[j] for r in rows_y], float)
    for s, definition in model.definitions.items():
        env[s] = _eval(definition, env, exact, batch)
    per_example = _eval(model.loss_def, env, exact, batch)
    for step in derivation.steps:
        env[step.symbol] = _eval(step.expr, env, exact, batch)
    forward = {}
    for layer in model.layers:
        for key, syms in ((f"z{layer.index}", layer.z), (f"a{layer.index}", layer.a)):
            forward[key] = _stack([env[s] for s in syms], net.batched, exact)
    shapes = net.parameter_shapes()
    grads = {name: np.empty(shape, dtype=object if exact else np.float64) for name, shape in shapes.items()}
    for step in derivation.gradients():
        grads[step.param][step.index] = _mean(env[step.symbol], exact)
    return Values(env, _mean(per_example, exact), forward, grads, exact, batch, list(per_example))


def _stack(columns, batched, exact):
    """Per-neuron columns of N values -> (n,) for one example, (N, n) for a batch."""
    if exact:
        rows = [list(r) for r in zip(*columns)]
        return np.array(rows if batched else rows[0], dtype=object)
    table = np.stack(columns, axis=1)
    return table if batched else table[0]


def require_finite(quantities: dict) -> None:
    """SpecError naming the first quantity that is not finite (an overflow, a log of a
    non-positive number, ...): such results are not printed as if they were answers."""
    from .errors import SpecError
    for name, value in quantities.items():
        try:
            finite = not np.iscomplexobj(value) and np.all(np.isfinite(np.asarray(value, dtype=np.float64)))
        except (TypeError, ValueError):      # exact values that are complex or undefined
            finite = False
        if not finite:
            raise SpecError(name, "is not a finite number for these parameters and this sample "
                                  "(overflow, or a function outside its domain)")


def evaluator(derivation: Derivation):
    """``evaluate``'s loss and gradients as a function of the parameters, for a training loop: each
    expression is lambdified once, on the first call, where ``evaluate`` lambdifies on every call.

    >>> from symbackprop.spec import Network
    >>> from symbackprop.model import Model
    >>> net = Network.from_dict({"network": {"layers": [1, 1], "activations": ["identity"],
    ...     "loss": "squared_error"}, "parameters": {"W1": [[2.0]], "b1": [0.5]},
    ...     "sample": {"x": [3], "y": [1]}})
    >>> loss, grads = evaluator(Derivation(Model(net)))({"W1": [[2.0]], "b1": [0.5]})
    >>> loss, grads["W1"].tolist()
    (30.25, [[33.0]])
    """
    model, net = derivation.model, derivation.model.network
    batch = net.x.shape[0]
    data = {s: net.x[:, k] for k, s in enumerate(model.x)} | {s: net.y[:, j] for j, s in enumerate(model.y)}
    plan = list(model.definitions.items()) + [(s.symbol, s.expr) for s in derivation.steps]
    compiled = {}

    def value(expr, env):
        if expr not in compiled:
            symbols = sorted(expr.free_symbols, key=lambda s: s.name)
            compiled[expr] = symbols, sympy.lambdify(symbols, expr, LAMBDIFY_MODULES)
        symbols, fn = compiled[expr]
        with np.errstate(all="ignore"):  # a nan or inf is the caller's to report
            return np.broadcast_to(np.asarray(fn(*[env[s] for s in symbols]), dtype=np.float64), (batch,))

    def run(parameters: dict):
        env = dict(data)
        for name, index, s in model.parameters():
            env[s] = np.full(batch, float(np.asarray(parameters[name])[index]))
        for target, expr in plan:
            env[target] = value(expr, env)
        grads = {name: np.empty(shape) for name, shape in net.parameter_shapes().items()}
        for step in derivation.gradients():
            grads[step.param][step.index] = float(np.mean(env[step.symbol]))
        return float(np.mean(value(model.loss_def, env))), grads

    return run
