"""Test networks, driven by the registry: a new activation or loss adds its cases here by itself."""
import numpy as np

from symbackprop.entries.registry import ACTIVATIONS, LOSSES
from symbackprop import Network

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


# ---- layer graphs: every layer kind, alone and in combination (keys are case names)
GRAPHS = {
    "conv2d": ([2, 5, 5], [dict(type="conv2d", channels=3, kernel=3, stride=2, padding=1, activation="tanh"),
                           dict(type="flatten"), dict(type="dense", units=2)], "mse"),
    "conv2d-rect": ([1, 6, 5], [dict(type="conv2d", channels=2, kernel=[3, 2], stride=[1, 2], padding=[0, 1],
                                     activation="sigmoid"), dict(type="flatten"), dict(type="dense", units=2,
                                                                                       activation="softmax")],
                    "cross_entropy"),
    "conv1d": ([2, 7], [dict(type="conv1d", channels=3, kernel=3, stride=2, padding=1, activation="elu"),
                        dict(type="flatten"), dict(type="dense", units=2)], "half_squared_error"),
    "maxpool2d": ([2, 4, 5], [dict(type="maxpool2d", kernel=2), dict(type="flatten"),
                              dict(type="dense", units=3, activation="softmax")], "cross_entropy"),
    "maxpool2d-overlap": ([1, 4, 4], [dict(type="conv2d", channels=2, kernel=2, activation="tanh"),
                                      dict(type="maxpool2d", kernel=2, stride=1), dict(type="flatten"),
                                      dict(type="dense", units=1, activation="sigmoid")], "binary_cross_entropy"),
    "maxpool1d": ([2, 6], [dict(type="maxpool1d", kernel=3, stride=2), dict(type="flatten"),
                           dict(type="dense", units=2)], "squared_error"),
    "avgpool2d": ([2, 5, 4], [dict(type="avgpool2d", kernel=[2, 3], stride=[2, 1]), dict(type="flatten"),
                              dict(type="dense", units=2, activation="tanh")], "mse"),
    "avgpool1d": ([1, 7], [dict(type="conv1d", channels=2, kernel=2, activation="softplus"),
                           dict(type="avgpool1d", kernel=3, stride=2), dict(type="flatten"),
                           dict(type="dense", units=2)], "mse"),
    "batchnorm": ([4], [dict(type="dense", units=3), dict(type="batchnorm", activation="relu"),
                        dict(type="dense", units=2, activation="softmax")], "cross_entropy"),
    "batchnorm-conv": ([1, 4, 4], [dict(type="conv2d", channels=2, kernel=3, padding=1),
                                   dict(type="batchnorm", eps=0.001, activation="tanh"), dict(type="maxpool2d", kernel=2),
                                   dict(type="flatten"), dict(type="dense", units=2)], "mse"),
    "layernorm": ([5], [dict(type="dense", units=4), dict(type="layernorm", activation="tanh"),
                        dict(type="dense", units=2)], "squared_error"),
    "layernorm-image": ([2, 3, 3], [dict(type="layernorm"), dict(type="flatten"),
                                    dict(type="dense", units=2, activation="sigmoid")], "binary_cross_entropy"),
    "layernorm-last": ([2, 5], [dict(type="conv1d", channels=3, kernel=2, activation="tanh"),
                                dict(type="layernorm", over="last", eps=0.001, activation="gelu"), dict(type="flatten"),
                                dict(type="dense", units=2)], "mse"),
    "attention": ([3, 4], [dict(type="posembed", length=4), dict(type="attention", heads=2, causal=True),
                           dict(type="flatten"), dict(type="dense", units=2)], "mse"),
    "attention-one-head": ([3, 2], [dict(type="attention", heads=1, bias=False, activation="tanh"), dict(type="flatten"),
                                    dict(type="dense", units=1, activation="sigmoid")], "binary_cross_entropy"),
    "transformer-block": ([3, 4], [dict(type="layernorm", over="last"), dict(type="attention", heads=2, causal=True),
                                   dict(type="add", **{"from": 0}), dict(type="layernorm", over="last", activation="gelu"),
                                   dict(type="flatten"), dict(type="dense", units=2)], "mse"),
    "dropout": ([4], [dict(type="dense", units=5, activation="relu"), dict(type="dropout", rate=0.4),
                      dict(type="dense", units=2)], "mse"),
    "dropout-conv": ([1, 3, 3], [dict(type="conv2d", channels=2, kernel=2, activation="tanh"),
                                 dict(type="dropout", rate=0.25), dict(type="flatten"),
                                 dict(type="dense", units=2)], "mse"),
    "add": ([3], [dict(type="dense", units=3, activation="tanh"), dict(type="dense", units=3, activation="sigmoid"),
                  dict(type="add", **{"from": 1}), dict(type="dense", units=2)], "mse"),
    "add-input": ([3], [dict(type="dense", units=3, activation="relu"), dict(type="add", **{"from": 0}),
                        dict(type="dense", units=2, activation="softmax")], "cross_entropy"),
    # sequences: integer ids (a repeated id in every example), per-step outputs, class-index targets
    "embedding": ([3], [dict(type="embedding", vocab=4, dim=3), dict(type="dense", units=4, activation="softmax")],
                  "cross_entropy"),
    "embedding-flat": ([3], [dict(type="embedding", vocab=5, dim=2), dict(type="flatten"),
                             dict(type="dense", units=3, activation="tanh"), dict(type="dense", units=5,
                                                                                   activation="softmax")], "cross_entropy"),
    "rnn": ([3], [dict(type="embedding", vocab=4, dim=2), dict(type="rnn", hidden=3),
                  dict(type="dense", units=4, activation="softmax")], "cross_entropy"),
    "rnn-relu-last": ([3, 2], [dict(type="rnn", hidden=2, nonlinearity="relu", **{"return": "last"}),
                               dict(type="dense", units=2)], "mse"),
    "lstm": ([3], [dict(type="embedding", vocab=4, dim=2), dict(type="lstm", hidden=2),
                   dict(type="dense", units=4, activation="softmax")], "cross_entropy"),
    "lstm-last": ([3], [dict(type="embedding", vocab=3, dim=2), dict(type="lstm", hidden=2, **{"return": "last"}),
                        dict(type="dense", units=3, activation="softmax")], "cross_entropy"),
    "gru": ([3], [dict(type="embedding", vocab=4, dim=2), dict(type="gru", hidden=2),
                  dict(type="dense", units=4, activation="softmax")], "cross_entropy"),
    "gru-last": ([3, 2], [dict(type="gru", hidden=3, **{"return": "last"}), dict(type="dense", units=2)],
                 "half_squared_error"),
}
BATCH_ONLY = {"batchnorm", "batchnorm-conv"}
SEQUENCES = {"embedding", "embedding-flat", "rnn", "rnn-relu-last", "lstm", "lstm-last", "gru", "gru-last"}


def graph(name, batch=None, seed=0, scale=0.6) -> Network:
    """The case ``name`` of GRAPHS with random parameters and a random sample (or batch)."""
    return Network.from_dict(graph_spec(name, batch, seed, scale))


def graph_spec(name, batch=None, seed=0, scale=0.6) -> dict:
    """The spec (a dict, as JSON would give it) of ``graph(name, batch, seed)``."""
    shape, layers, loss = GRAPHS[name]
    spec = {"network": {"input": shape, "loss": loss}, "layer": [dict(l) for l in layers]}
    bare = Network.from_dict(spec)
    rng = np.random.default_rng(seed)
    spec["parameters"] = {}
    for pname, pshape in bare.parameter_shapes().items():
        base = 1.0 if pname.startswith("gamma") else 0.0
        spec["parameters"][pname] = (base + rng.normal(scale=scale, size=pshape)).tolist()
    if bare.reads_ids:                       # ids, the first one repeated in every example
        vocab = bare.graph[0].opt["vocab"]
        ids = rng.integers(0, vocab, size=(batch or 1, *shape))
        ids[..., -1] = ids[..., 0]
        x = ids.tolist()
    else:
        x = rng.normal(size=(batch or 1, *shape)).tolist()
    if loss == "cross_entropy" and bare.graph[-1].sequence or bare.reads_ids and loss == "cross_entropy":
        y = rng.integers(0, bare.output_size, size=(batch or 1, *bare.output_shape[:-1])).tolist()
    else:
        y = targets(loss, rng, (batch or 1, *bare.output_shape)).tolist()
    spec["sample"] = {"x": x if batch else x[0], "y": y if batch else y[0], "seed": seed}
    return spec
