"""Numbers to start from when a spec gives none: the parameters a generated trainer's
``init_params(seed)`` draws — the same rules, the same generator, the same order, so the same
numbers to the last bit — and a sample from the loss's target domain.

Each layer kind says which of its parameters are weights (``LayerKind.init``): He normal,
√(2/fan_in), before relu-like activations; Glorot uniform, √(6/(fan_in + fan_out)), before the
others (fans from the entry); biases and β are 0, γ is 1; an embedding's table standard normal
(``normal``, as nn.Embedding) and a recurrent layer's weights and biases uniform in ±1/√hidden
(``uniform``, as nn.RNN/LSTM/GRU), the scale from the entry's ``init_scale``.

>>> from symbackprop.spec.network import load
>>> net = with_numbers(load("examples/xor.toml"), seed=0)
>>> sorted(net.parameters), net.x.shape, net.y.shape
(['W1', 'W2', 'b1', 'b2'], (4, 2), (4, 1))
"""
import dataclasses
import math

import numpy as np

from . import limits

HE_INIT = frozenset({"relu", "leaky_relu", "elu", "silu", "gelu"})
SAMPLE_SIZE = limits.SAMPLE_DRAWN   # examples drawn for a spec without a [sample] (batch norm needs at least 2)


def rules(network) -> list[dict]:
    """How init_params fills each parameter, in order: name, shape, scheme (he, glorot, zeros,
    ones) and scale (as the code prints it)."""
    out = []
    for layer in network.graph:
        for prefix in layer.kind.params:
            if layer.param(prefix) not in layer.params:     # an attention without its biases
                continue
            name, scheme = layer.param(prefix), layer.kind.init(layer, prefix)
            rule = {"name": name, "shape": layer.params[name], "scheme": scheme, "scale": "0.0"}
            if scheme == "weight":
                fan_in, fan_out = layer.kind.fans(layer)
                he = layer.activation.name in HE_INIT
                rule.update(scheme="he" if he else "glorot",
                            scale=repr(math.sqrt(2.0 / fan_in)) if he else repr(math.sqrt(6.0 / (fan_in + fan_out))))
            elif scheme in ("normal", "uniform"):
                rule["scale"] = repr(float(layer.kind.init_scale(layer)))
            out.append(rule)
    return out


def draw_parameters(network, seed: int = 0) -> dict[str, np.ndarray]:
    """The parameters a generated trainer's ``init_params(seed)`` starts from, in float64."""
    rng = np.random.default_rng(seed)
    out = {}
    for rule in rules(network):
        shape, scale = rule["shape"], float(rule["scale"])
        if rule["scheme"] in ("he", "normal"):
            out[rule["name"]] = rng.standard_normal(shape) * scale
        elif rule["scheme"] in ("glorot", "uniform"):
            out[rule["name"]] = rng.uniform(-scale, scale, shape)
        else:
            out[rule["name"]] = (np.ones if rule["scheme"] == "ones" else np.zeros)(shape)
    return out


def draw_sample(network, seed: int = 0, size: int = SAMPLE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """``size`` inputs from a standard normal and targets from the loss's domain: one-hot rows for
    cross-entropy, 0s and 1s for binary cross-entropy, standard normal otherwise."""
    rng = np.random.default_rng([seed, 1])          # a stream of its own, apart from the parameters'
    first = network.graph[0]
    if first.kind.reads_ids:                        # ids, uniform over the vocabulary
        x = rng.integers(0, first.opt["vocab"], (size, *network.input)).astype(np.float64)
    else:
        x = rng.standard_normal((size, *network.input))
    n, shape = network.output_size, network.output_shape
    low, high = network.loss.targets
    if network.loss.name == "cross_entropy":
        y = np.eye(n)[rng.integers(0, n, (size, *shape[:-1]))]
    elif (low, high) == (0.0, 1.0):
        y = rng.integers(0, 2, (size, *shape)).astype(np.float64)
    else:
        y = rng.standard_normal((size, *shape))
    return x, y


def with_numbers(network, seed: int = 0):
    """``network`` with parameters (unless its spec gave them) and a sample (unless given) drawn
    from ``seed``; dropout masks drawn as for a spec's sample."""
    from .network import _masks
    params = network.parameters if network.parameters is not None else draw_parameters(network, seed)
    if network.x is not None:
        x, y, batched = network.x, network.y, network.batched
    else:
        (x, y), batched = draw_sample(network, seed), True
    exact = {**{k: v.tolist() for k, v in params.items()}, "x": x.tolist(), "y": y.tolist(), **network.exact}
    masks, source = network.masks, network.mask_source
    if masks is None and any(layer.data for layer in network.graph):
        masks, source = _masks(network.graph, {}, {"seed": seed}, len(x), batched)
    return dataclasses.replace(network, parameters=params, x=x, y=y, batched=batched, exact=exact,
                               masks=masks, mask_source=source)


def describe(network, drawn, seed: int) -> str:
    """The line a command prints when it drew numbers: what it drew, and how."""
    parts = []
    if network.parameters is None:
        parts.append(f"the parameters as a generated trainer's init_params({seed}) draws them")
    if network.x is None:
        parts.append(f"a sample of {len(drawn.x)} examples (inputs standard normal, targets in "
                     f"{network.loss.name}'s domain), seed {seed}")
    return "drew " + " and ".join(parts)


def numbers(network, seed: int | None, command: str, flag: str = "--init SEED"):
    """``(network, note)``: the network with its own numbers, or — given ``seed`` — with the missing
    ones drawn and a note saying so; without a seed, SpecError naming what is missing and ``flag``."""
    from ..errors import SpecError
    missing = [t for t, have in (("[parameters]", network.parameters is not None), ("[sample]", network.x is not None))
               if not have]
    if not missing:
        return network, None
    if seed is None:
        field = "parameters" if network.parameters is None else "sample"
        raise SpecError(field, f"missing: {command} needs the spec's {' and '.join(missing)}, or {flag} to draw them")
    drawn = with_numbers(network, seed)
    return drawn, describe(network, drawn, seed)
