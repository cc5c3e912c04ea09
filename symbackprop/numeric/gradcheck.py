"""Verification by an independent route: central finite differences of a plain forward pass.

The forward pass here is the simplest one there is — each layer's forward kernel (z = a Wᵀ + b
for a dense layer; each kernel proven equal to its element expressions in the tests), each
activation lambdified from its registry expression — and shares no code with the backward rules
it checks. Errors are relative, ``|g - fd| / max(|g|, |fd|, floor)``; large parameters are checked
along random directions (as JAX's ``check_grads``) so big layers stay cheap.

>>> import numpy as np
>>> from symbackprop.spec.network import Network
>>> net = Network.from_dict({"network": {"layers": [1, 1], "activations": ["tanh"],
...     "loss": "half_squared_error"}})
>>> params = {"W1": np.array([[0.5]]), "b1": np.array([0.1])}
>>> X, Y = np.array([[2.0]]), np.array([[0.3]])
>>> fd = finite_differences(net, params, X, Y)
>>> round(float(fd["W1"][0, 0]), 6)
0.35956
"""
import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sympy

from .values import stable_function
from ..spec.network import Network

FLOOR = 1e-7          # below this, gradients are compared absolutely (relative to the floor)
DEFAULT_TOLERANCE = 1e-5
ELEMENTWISE_LIMIT = 4000  # parameters checked one by one; larger ones along random directions


@lru_cache(maxsize=None)
def _activation_function(activation, width: int):
    zs = [sympy.Symbol(f"u{i}", real=True) for i in range(width)]
    fn = stable_function(zs, activation.apply(zs))       # softplus(1e4) is 1e4, not inf
    return lambda columns: fn(*columns)


@lru_cache(maxsize=None)
def _elementwise_function(activation):
    u = sympy.Symbol("u0", real=True)
    return stable_function([u], activation.apply([u]))


def _activate(activation, z):
    flat = z.reshape(len(z), -1)
    if activation.shift_invariant:          # softmax(z) = softmax(z - max z): no exp overflows
        flat = flat - flat.max(axis=1, keepdims=True)
    if activation.elementwise:              # one function of one element, on the whole array at once
        return np.broadcast_to(np.asarray(_elementwise_function(activation)(flat)[0], np.float64), flat.shape).reshape(z.shape)
    cols = _activation_function(activation, flat.shape[1])(list(flat.T))
    return np.stack([np.broadcast_to(np.asarray(c, np.float64), flat.shape[:1]) for c in cols], axis=1).reshape(z.shape)


def forward_pass(network: Network, params: dict, X, masks: dict | None = None) -> dict[str, np.ndarray]:
    """{"z1": (N, ...), "a1": ..., ...}: the plainest forward pass, layer by layer — each layer's
    forward kernel (proven equal to its element expressions in the tests), then its activation
    lambdified from the registry. ``masks`` default to the network's own (its [masks] or drawn)."""
    masks = network.masks if masks is None else masks
    values = {0: np.asarray(X, np.float64)}
    out = {}
    for layer in network.graph:
        i = layer.index
        strip = lambda names: {name[: -len(str(i))]: np.asarray(v, np.float64) for name, v in names.items()}
        pre = layer.kind.forward(layer, [values[s] for s in layer.sources],
                                 strip({k: params[k] for k in layer.params}), strip({k: masks[k] for k in layer.data}))
        if layer.has_z:
            out[f"z{i}"] = pre
            # a sequence's softmax is over each step's last axis: one row per (example, step), which also
            # keeps the lambdified softmax as wide as the vocabulary, not T times it (a tiny GPT's: 1,040)
            rows = pre.reshape(-1, pre.shape[-1]) if layer.sequence else pre
            pre = _activate(layer.activation, rows).reshape(pre.shape)
        out[f"a{i}"] = values[i] = pre
    return out


def loss_function(network: Network):
    """C(params, X, Y): the batch-mean loss of :func:`forward_pass`. Where the last layer has a
    pre-activation, the loss is taken as a function of it, in the stable forms (log σ(z) as
    −softplus(−z)): log(1 − a) of a saturated a = σ(z) would lose every digit of 1 − a, and with
    them the finite differences."""
    from ..entries.registry import a as A, y as Yv, n as N
    last, width = network.graph[-1], network.output_size
    us, ys = [sympy.Symbol(f"u{j}", real=True) for j in range(width)], [sympy.Symbol(f"y{j}", real=True) for j in range(width)]
    outputs = last.activation.apply(us) if last.has_z else us
    per_example = stable_function(us + ys, [network.loss.total(outputs, ys)])

    def loss(params, X, Y):
        values = forward_pass(network, params, X)
        out = values[f"z{network.depth}" if last.has_z else f"a{network.depth}"]
        Y = np.asarray(Y, np.float64)
        return float(np.mean(per_example(*out.T, *Y.T)[0]))
    return loss


def finite_differences(network: Network, params: dict, X, Y, h: float = 1e-6,
                       directions: int = 0) -> dict:
    """Central differences of the loss for every element (``directions=0``), or, for each
    parameter, the directional derivatives along ``directions`` random unit vectors."""
    loss = loss_function(network)
    out = {}
    for name, value in params.items():
        def at(delta):
            shifted = dict(params)
            shifted[name] = value + delta
            return loss(shifted, X, Y)
        if directions:
            vecs = _directions(name, value.shape, directions)
            out[name] = np.array([(at(h * u) - at(-h * u)) / (2 * h) for u in vecs])
            continue
        grad = np.zeros_like(value, dtype=np.float64)
        for index in np.ndindex(value.shape):
            delta = np.zeros_like(value, dtype=np.float64)
            delta[index] = h
            grad[index] = (at(delta) - at(-delta)) / (2 * h)
        out[name] = grad
    return out


def _directions(name, shape, count):
    """``count`` random unit vectors of ``shape``, the same for the same parameter name."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    vecs = rng.standard_normal((count, *shape))
    return vecs / np.linalg.norm(vecs.reshape(count, -1), axis=1).reshape(count, *[1] * len(shape))


@dataclass(frozen=True)
class Check:
    """The worst disagreement for one parameter that no kink explains; ``kinks`` says which
    elements differ only because the finite differences straddle an activation's kink."""
    param: str
    max_error: float
    index: tuple
    analytic: float
    numeric: float
    tolerance: float
    kinks: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.max_error <= self.tolerance


KINKS_EXPLAINED = 20    # failing elements of one parameter looked at for a kink before giving up


def relative_error(analytic, numeric, floor: float = FLOOR):
    analytic, numeric = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    return np.abs(analytic - numeric) / np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), floor)


def gradcheck(network: Network, gradients: dict, params: dict, X, Y,
              tolerance: float = DEFAULT_TOLERANCE, h: float = 1e-6) -> list[Check]:
    """Compare ``gradients`` (dict of arrays in each parameter's shape) with finite differences.

    A central difference of a loss C carries a rounding error of about ε·|C|/h, whatever the true
    gradient: gradients smaller than that over the tolerance are compared absolutely against it
    (an exactly-zero gradient then passes; a wrong one of any size that matters still fails)."""
    big = network.parameter_count > ELEMENTWISE_LIMIT
    fd = finite_differences(network, params, X, Y, h, directions=3 if big else 0)
    loss = abs(loss_function(network)(params, X, Y))
    floor = max(FLOOR, 10 * np.finfo(np.float64).eps * max(1.0, loss) / (h * tolerance))
    checks = []
    for name in params:
        if big:
            vecs = _directions(name, params[name].shape, 3)
            analytic = np.array([np.sum(gradients[name] * u) for u in vecs])
        else:
            analytic = np.asarray(gradients[name], np.float64)
        err = relative_error(analytic, fd[name], floor)
        kinks = []
        if not big:          # an element whose differences straddle a kink is a convention, not a failure
            for index in sorted(zip(*np.nonzero(err > tolerance)), key=lambda i: -err[i])[:KINKS_EXPLAINED]:
                why = kink(network, params, X, name, index, h)
                if why is None:
                    break
                kinks.append(why)
                err[index] = 0.0
        worst = np.unravel_index(int(np.argmax(err)), err.shape)
        checks.append(Check(name, float(err[worst]), tuple(int(i) for i in worst),
                            float(analytic[worst]), float(fd[name][worst]), tolerance, tuple(dict.fromkeys(kinks))))
    return checks


def _label(key: str, where: tuple, examples: int) -> str:
    """z1[2,1] (of example 3): an element of a batch array, 1-based."""
    return f"{key}[{','.join(str(i + 1) for i in where[1:])}]" + (f" of example {where[0] + 1}" if examples > 1 else "")


def kink(network: Network, params: dict, X, name: str, index, h: float) -> str | None:
    """Why the central difference of parameter ``name[index]`` cannot be trusted, if it straddles
    a kink: of a layer (its ``branches`` differ at θ − h and θ + h: a max-pool's winner changes
    hands) or of an activation (the registry's ``kinks``: a pre-activation on one side of it at
    θ − h and on the other, or on it, at θ + h). None when it straddles none."""
    def shifted(sign):
        p = dict(params)
        p[name] = np.array(params[name], dtype=np.float64)
        p[name][tuple(index)] += sign * h
        return forward_pass(network, p, X)
    minus, plus = shifted(-1), shifted(1)
    at = forward_pass(network, params, X)
    for layer in network.graph:
        branches = [layer.kind.branches(layer, [np.asarray(X, np.float64) if s == 0 else values[f"a{s}"]
                                                for s in layer.sources]) for values in (minus, plus)]
        if branches[0] is not None and (branches[0] != branches[1]).any():
            key = f"z{layer.index}" if layer.has_z else f"a{layer.index}"
            where = tuple(int(i) for i in np.argwhere(branches[0] != branches[1])[0])
            return f"{_label(key, where, len(X))} = {at[key][where]:.3g} is {layer.kind.kink_note}; finite differences see both sides"
        for k in layer.activation.kinks if layer.has_z else ():
            key = f"z{layer.index}"
            # on or across the kink, and moved by this parameter (a z that sits at 0 elsewhere does not count)
            crossing = ((minus[key] - k) * (plus[key] - k) <= 0) & (minus[key] != plus[key])
            if crossing.any():
                where = tuple(int(i) for i in np.argwhere(crossing)[0])
                label = _label(key, where, len(X))
                convention = sympy.diff(layer.activation.expr, sympy.Symbol("z", real=True)).subs(
                    sympy.Symbol("z", real=True), k)
                return (f"{label} = {at[key][where]:.3g} is {layer.activation.name}'s kink at {k:g}: the derivative "
                        f"there is a convention ({convention}), finite differences see both sides")
    return None
