"""The numbers of an exercise: the spec's own parameters and sample where it gives them, the rest
drawn from a seed.

``friendly`` (the default) draws numbers a person can work by hand: weights of one decimal
(±0.1 to ±0.9, fewer digits for a layer with many inputs), biases and batch norm's β of one decimal
from −0.5 to 0.5, γ from 0.5 to 1.5, integer inputs from −2 to 2, and targets in the loss's domain
(one-hot rows for cross-entropy, 0 or 1 for a target in [0, 1], else one decimal from 0 to 1). A
relu or identity layer fed such numbers gives numbers of one or two decimals. One example, or
two where a layer normalises over the batch. ``any`` draws as ``--init`` does (a generated
trainer's ``init_params(seed)``, a seeded normal sample).

A draw is one of a sequence (:func:`draws`): the exercise takes the first whose step has no tie
and no kink (:mod:`symbackprop.exercise.step`), so that every asked number has one right value, and
— in the first half of the tries — whose pre-activations stay within ±3 (no saturated sigmoid).

>>> from symbackprop.spec.document import read_spec
>>> data, _ = read_spec("examples/seed.toml")
>>> del data["parameters"]["W1"]
>>> drawn = next(draws(data, 7, "friendly"))
>>> drawn["parameters"]["W2"], len(drawn["parameters"]["W1"])
([[0.5, 0.2]], 2)
"""
import math

import numpy as np

from ..errors import SpecError
from ..spec.initial import draw_parameters, draw_sample, rules
from ..spec.network import Network

MODES = ("friendly", "any")
DRAWS = 60          # friendly draws offered, one after another
PROVIDED = ("x", "y")


def draws(data: dict, seed: int, mode: str):
    """The spec's data with ``[parameters]`` and ``[sample]`` completed, one draw after another
    (one only where nothing is drawn, or for ``any``): the spec's own numbers kept, the rest
    drawn from ``seed``. SpecError for a spec's tables that are not tables."""
    given = _table(data, "parameters")
    sample = _table(data, "sample")
    bare = Network.from_dict({k: v for k, v in data.items() if k not in ("parameters", "sample", "masks")},
                             source="spec")
    shapes = bare.parameter_shapes()
    for name in given:
        if name not in shapes:
            raise SpecError(f"parameters.{name}", f"unknown parameter (expected {', '.join(shapes)})")
    if mode == "any" or complete(data, shapes):
        params = draw_parameters(bare, seed)
        x, y = draw_sample(bare, seed)
        yield _filled(data, bare, given, sample, params, x, y, seed)
        return
    rng = np.random.default_rng([seed, 23])
    for _ in range(DRAWS):
        params, (x, y) = _friendly_parameters(bare, rng), _friendly_sample(bare, rng)
        yield _filled(data, bare, given, sample, params, x, y, seed)


def complete(data: dict, shapes) -> bool:
    """Whether the spec's data gives every parameter of ``shapes`` and the sample: nothing to draw."""
    given, sample = _table(data, "parameters"), _table(data, "sample")
    return all(p in given for p in shapes) and all(k in sample for k in PROVIDED)


def _filled(data, bare, given, sample, params, x, y, seed) -> dict:
    out = dict(data)
    out["parameters"] = {name: given[name] if name in given else _plain(params[name])
                         for name in bare.parameter_shapes()}
    filled = dict(sample)
    filled.setdefault("x", _plain(x) if len(x) > 1 else _plain(x[0]))
    filled.setdefault("y", _plain(y) if len(y) > 1 else _plain(y[0]))
    if any(layer.data for layer in bare.graph) and "masks" not in data:
        filled.setdefault("seed", seed)          # the dropout masks: drawn from the exercise's seed
    out["sample"] = filled
    return out


def _plain(array) -> list:
    """Nested lists of Python numbers, integers where the value is one (as a person writes 3, not 3.0)."""
    return np.vectorize(lambda v: int(v) if float(v).is_integer() and abs(v) < 2**53 else float(v),
                        otypes=[object])(np.asarray(array)).tolist()


def _table(data, name) -> dict:
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise SpecError(name, "expected a table")
    return table


def _friendly_parameters(network, rng) -> dict:
    out = {}
    for rule in rules(network):
        shape, scheme = rule["shape"], rule["scheme"]
        if scheme in ("he", "glorot"):
            top = int(min(9, max(2, round(15 * float(rule["scale"])))))
            tenths = rng.integers(1, top + 1, shape) * rng.choice([-1, 1], shape)
        elif scheme == "ones":
            tenths = rng.integers(5, 16, shape)
        else:
            tenths = rng.integers(-5, 6, shape)
        out[rule["name"]] = np.round(tenths / 10, 1)
    return out


def _friendly_sample(network, rng):
    n = 2 if any(layer.kind.couples_batch for layer in network.graph) else 1
    x = rng.integers(-2, 3, (n, *network.input)).astype(np.float64)
    outputs = network.output_size
    low, high = network.loss.targets
    if network.loss.name == "cross_entropy":
        y = np.eye(outputs)[rng.integers(0, outputs, n)]
    elif (low, high) == (0.0, 1.0):
        y = rng.integers(0, 2, (n, outputs)).astype(np.float64)
    else:
        y = np.round(rng.integers(0, 11, (n, outputs)) / 10, 1)
    return x, y


def decimals(value) -> int:
    """The decimals a number is written with in the shortest form that reads back as it:
    0.25 -> 2, 3 -> 0, 1e-08 -> 8.

    >>> decimals(0.25), decimals(3), decimals(-0.7)
    (2, 0, 1)
    """
    if isinstance(value, int) or float(value).is_integer():
        return 0
    mantissa, _, exponent = repr(float(value)).partition("e")
    return max(0, len(mantissa.partition(".")[2]) - int(exponent or 0))


def friendly_enough(values) -> bool:
    """Whether every number of ``values`` (nested lists) has at most two decimals."""
    return all(decimals(v) <= 2 for v in np.ravel(np.asarray(values, dtype=object)) if not math.isnan(float(v)))
