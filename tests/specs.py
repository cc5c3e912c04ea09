"""Specs the output tests share: the wide 4-8-8-3 net of issue 10 (one example and a batch of 8)
and a small batch of the seed's net."""
import numpy as np


def wide(batch: int, seed: int = 3) -> dict:
    """A 4-8-8-3 tanh/relu/softmax net with cross-entropy; ``batch`` examples (1: a single one)."""
    rng = np.random.default_rng(seed)
    sizes = [4, 8, 8, 3]
    params = {}
    for l in range(1, 4):
        params[f"W{l}"] = np.round(rng.normal(0, 0.5, (sizes[l], sizes[l - 1])), 3).tolist()
        params[f"b{l}"] = np.round(rng.normal(0, 0.1, sizes[l]), 3).tolist()
    x = np.round(rng.normal(0, 1, (batch, 4)), 2).tolist()
    y = np.eye(3)[rng.integers(0, 3, batch)].tolist()
    return {"network": {"layers": sizes, "activations": ["tanh", "relu", "softmax"], "loss": "cross_entropy"},
            "parameters": params, "sample": {"x": x[0] if batch == 1 else x, "y": y[0] if batch == 1 else y},
            "optimizer": {"name": "adam", "learning_rate": 0.01}}


SEED_BATCH = {"network": {"layers": [3, 2, 1], "activations": ["sigmoid", "sigmoid"], "loss": "squared_error"},
              "parameters": {"W1": [[0.2, -0.5, 0.1], [-0.3, 0.4, 0.2]], "b1": [0.3, -0.1],
                             "W2": [[0.5, 0.2]], "b2": [0.1]},
              "sample": {"x": [[2, 3, -1], [1, 0, 1], [0, -1, 2]], "y": [[1], [0], [1]]}}


def batch_of(n: int) -> dict:
    """The seed's net with a batch of ``n`` examples."""
    rng = np.random.default_rng(n)
    return {**SEED_BATCH, "sample": {"x": np.round(rng.normal(0, 1, (n, 3)), 2).tolist(),
                                     "y": rng.integers(0, 2, (n, 1)).astype(float).tolist()}}


def wide_input(n_in: int = 30, hidden: int = 6, seed: int = 0) -> dict:
    """An n_in-hidden-2 relu/sigmoid net, one example: matrices wider and taller than explain writes
    out in full."""
    rng = np.random.default_rng(seed)
    sizes = [n_in, hidden, 2]
    params = {}
    for l in (1, 2):
        params[f"W{l}"] = np.round(rng.normal(0, 0.3, (sizes[l], sizes[l - 1])), 3).tolist()
        params[f"b{l}"] = np.round(rng.normal(0, 0.1, sizes[l]), 3).tolist()
    return {"network": {"layers": sizes, "activations": ["relu", "sigmoid"], "loss": "binary_cross_entropy"},
            "parameters": params, "sample": {"x": np.round(rng.normal(size=n_in), 2).tolist(), "y": [0, 1]}}
