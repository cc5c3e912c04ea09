"""Test networks, driven by the registry: a new activation or loss adds its cases here by itself."""
import numpy as np

from symbackprop.registry import ACTIVATIONS, LOSSES
from symbackprop.spec import Network

CUSTOM = "z/(1 + abs(z))"
HIDDEN = [name for name, act in ACTIVATIONS.items() if act.elementwise] + [CUSTOM]
# outputs each loss is defined for: log-losses need outputs in (0, 1)
OUTPUTS = {"binary_cross_entropy": ["sigmoid"], "cross_entropy": ["softmax", "sigmoid"]}
DEFAULT_OUTPUTS = ["identity", "tanh", "softmax"]


def combinations():
    """(hidden activation, output activation, loss): every activation and every loss at least once."""
    cases = []
    for loss in LOSSES:
        outputs = OUTPUTS.get(loss, DEFAULT_OUTPUTS)
        for i, hidden in enumerate(HIDDEN):
            cases.append((hidden, outputs[i % len(outputs)], loss))
    return cases


def targets(loss, rng, shape):
    if loss == "cross_entropy":
        return rng.random(shape) + 0.1     # not normalised: the gradient must hold for any targets
    if loss == "binary_cross_entropy":
        return rng.random(shape)
    return rng.normal(size=shape)


def network(hidden, output, loss, layers=(3, 2, 2), batch=None, seed=0) -> Network:
    """A small net with random parameters and a random sample (or batch of ``batch``)."""
    rng = np.random.default_rng(seed)
    params = {}
    for l in range(1, len(layers)):
        params[f"W{l}"] = rng.normal(scale=0.8, size=(layers[l], layers[l - 1])).tolist()
        params[f"b{l}"] = rng.normal(scale=0.3, size=layers[l]).tolist()
    shape = (batch or 1, layers[-1])
    x = rng.normal(size=(batch or 1, layers[0])).tolist()
    y = targets(loss, rng, shape).tolist()
    acts = [hidden] * (len(layers) - 2) + [output]
    return Network.from_dict({
        "network": {"layers": list(layers), "activations": acts, "loss": loss},
        "parameters": params,
        "sample": {"x": x if batch else x[0], "y": y if batch else y[0]}})
