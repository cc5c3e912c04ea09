"""``check`` for layer graphs and batches: every kind's true numbers pass, and each catalogued
mistake of the layer entries — planted in a hand file built from the true values, with the
mistaken numbers computed here in plain NumPy from the textbook formulas — is named where it
enters, with what follows from it marked carried.

Expected values come from ``numeric.evaluate`` (the library's other route); the mistaken ones from
the loops below, which share no code with the entries' element expressions or kernels."""
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from symbackprop.check.judge import MAX_PARAMETERS, MAX_VALUES, Written, check, parse_hand, quantities
from symbackprop.check.graph import step_quantity
from symbackprop.derive.derivation import Derivation
from symbackprop.errors import SpecError
from symbackprop.derive.model import Model
from symbackprop.numeric.values import evaluate
from symbackprop import Network

sys.path.insert(0, str(Path(__file__).parent))
from cases import BATCH_ONLY, GRAPHS, graph  # noqa: E402


def build(shape, layers, loss, batch=None, seed=1, optimizer=None) -> Network:
    GRAPHS["_planted"] = (shape, layers, loss)
    try:
        net = graph("_planted", batch=batch, seed=seed)
    finally:
        del GRAPHS["_planted"]
    if optimizer is None:
        return net
    spec = {"network": {"input": list(net.input), "loss": net.loss.name}, "layer": layers,
            "parameters": {k: v.tolist() for k, v in net.parameters.items()},
            "sample": {"x": net.x.tolist() if batch else net.x[0].tolist(),
                       "y": net.y.tolist() if batch else net.y[0].tolist(), "seed": seed},
            "optimizer": optimizer}
    return Network.from_dict(spec)


def truth(net: Network) -> dict:
    """Every quantity check knows, by name, from numeric.evaluate: (N, ...) for a batch."""
    d = Derivation(Model(net))
    v = evaluate(d)
    T = {k: np.asarray(x, float) for k, x in v.forward.items()}
    T["loss"] = np.asarray(v.loss)
    shapes = quantities(net)
    for st in d.steps:
        if st.kind == "grad":
            continue
        name = step_quantity(st.kind, st.layer)
        arr = T.setdefault(name, np.zeros(shapes[name]))
        if d.model.examples == 1 and net.batched:
            for n, value in enumerate(v.env[st.symbol]):
                arr[(n, *st.index)] = value
        else:
            arr[st.index] = v.env[st.symbol][0]
    T |= {f"grad.{p}": g for p, g in v.gradients.items()}
    return T


def text(x) -> str:
    return f"{float(x):.5e}"


def written(values) -> object:
    values = np.asarray(values, float)
    return text(values) if values.ndim == 0 else np.vectorize(text, otypes=[object])(values).tolist()


def run(net, values: dict) -> dict:
    data = {"values": {k: written(v) for k, v in values.items()}}
    return {r.label: r for r in check(net, parse_hand(data, net))}


# ---- the mistaken numbers, by the textbook's loops (one example: no leading axis)

def conv_input_grad(delta, W, size, stride, pad, flip=False):
    """∂C/∂x[c, i] = Σ W[o, c, k] δ[o, s] over the (o, s, k) whose window position s·stride + k − pad is i;
    ``flip`` takes W[o, c, K − 1 − k] (the kernel not flipped, in the full-correlation view)."""
    O, C, *K = W.shape
    dx = np.zeros((C, *size))
    for o, *s in np.ndindex(*delta.shape):
        for c, *k in np.ndindex(C, *K):
            i = tuple(p * st + q - d for p, st, q, d in zip(s, stride, k, pad))
            if all(0 <= a < m for a, m in zip(i, size)):
                w = W[(o, c, *(kk - 1 - q for kk, q in zip(K, k)))] if flip else W[(o, c, *k)]
                dx[(c, *i)] += w * delta[(o, *s)]
    return dx


def conv_weight_grad(x, delta, K, stride, pad):
    """∂C/∂W[o, c, k] = Σ_s δ[o, s] x̃[c, s·stride + k], x̃ padded with zeros."""
    C = x.shape[0]
    dW = np.zeros((delta.shape[0], C, *K))
    for o, *s in np.ndindex(*delta.shape):
        for c, *k in np.ndindex(C, *K):
            i = tuple(p * st + q - d for p, st, q, d in zip(s, stride, k, pad))
            if all(0 <= a < m for a, m in zip(i, x.shape[1:])):
                dW[(o, c, *k)] += delta[(o, *s)] * x[(c, *i)]
    return dW


def pool_route(x, delta, K, stride, how):
    """Each window's δ sent where ``how`` says: "max" (the first maximum), "all", "mean", "first",
    "min" or "sum" (every element, avg-pool not divided)."""
    dx = np.zeros(x.shape)
    for c, *s in np.ndindex(*delta.shape):
        window = [tuple(p * st + q for p, st, q in zip(s, stride, k)) for k in np.ndindex(*K)]
        vals = [x[(c, *w)] for w in window]
        d = delta[(c, *s)]
        if how in ("all", "sum"):
            targets = [(w, d) for w in window]
        elif how == "mean":
            targets = [(w, d / len(window)) for w in window]
        else:
            pick = {"max": int(np.argmax(vals)), "min": int(np.argmin(vals)), "first": 0}[how]
            targets = [(window[pick], d)]
        for w, share in targets:
            dx[(c, *w)] += share
    return dx


def per_example(fn, *arrays):
    return np.stack([fn(*[a[n] for a in arrays]) for n in range(len(arrays[0]))])


# ---- the networks of the plants

CONV = ([1, 5, 5], [dict(type="conv2d", channels=2, kernel=2, activation="tanh"),
                    dict(type="conv2d", channels=2, kernel=3, stride=2, padding=1),
                    dict(type="flatten"), dict(type="dense", units=2)], "mse")
MAXPOOL = ([1, 4, 5], [dict(type="conv2d", channels=2, kernel=2, activation="tanh"),
                       dict(type="maxpool2d", kernel=2, stride=1), dict(type="flatten"), dict(type="dense", units=2)], "mse")
AVGPOOL = ([1, 7], [dict(type="conv1d", channels=2, kernel=2, activation="softplus"),
                    dict(type="avgpool1d", kernel=3, stride=2), dict(type="flatten"), dict(type="dense", units=2)], "mse")
BATCHNORM = ([4], [dict(type="dense", units=3), dict(type="batchnorm", eps=0.01, activation="relu"),
                   dict(type="dense", units=2)], "mse")
LAYERNORM = ([3], [dict(type="dense", units=4), dict(type="layernorm", eps=0.01, activation="tanh"),
                   dict(type="dense", units=2)], "mse")
DROPOUT = ([4], [dict(type="dense", units=5, activation="relu"), dict(type="dropout", rate=0.4),
                 dict(type="dense", units=2)], "mse")
ADD = ([3], [dict(type="dense", units=3, activation="tanh"), dict(type="dense", units=3, activation="sigmoid"),
             dict(type="add", **{"from": 1}), dict(type="dense", units=2)], "mse")


def _conv_plants(batch):
    net = build(*CONV, batch=batch)
    T, P = truth(net), net.parameters
    d2, a1 = T["delta2"], T["a1"]
    d2, a1 = (d2, a1) if batch else (d2[None], a1[None])
    size = a1.shape[2:]
    for how, phrase, args in [("flip", "kernel not flipped in the input gradient", dict(stride=(2, 2), pad=(1, 1), flip=True)),
                              ("stride", "stride 2 of layer 2 ignored in the backward pass", dict(stride=(1, 1), pad=(1, 1))),
                              ("padding", "padding 1 of layer 2 ignored in the backward pass", dict(stride=(2, 2), pad=(0, 0)))]:
        wrong = per_example(lambda d: conv_input_grad(d, P["W2"], size, **args), d2)
        wrong = wrong if batch else wrong[0]
        yield (f"conv {how}", net, {"delta2": T["delta2"], "dC/da1": wrong, "delta1": wrong * (1 - T["a1"] ** 2)},
               "dC/da1", phrase, ["delta1"], T)
    grads = per_example(lambda x, d: conv_weight_grad(x, d, (3, 3), (1, 1), (1, 1)), a1, d2)
    wrong = grads.mean(axis=0)
    yield ("conv stride in the kernel gradient", net, {"a1": T["a1"], "delta2": T["delta2"], "grad.W2": wrong},
           "grad.W2", "stride 2 of layer 2 ignored in the backward pass", [], T)


def _pool_plants(batch):
    net = build(*MAXPOOL, batch=batch)
    T = truth(net)
    a1, g2 = (T["a1"], T["dC/da2"]) if batch else (T["a1"][None], T["dC/da2"][None])
    for how, phrase in [("all", "sent to every element of the window"), ("mean", "averaged over the window"),
                        ("first", "the wrong element (the window's first"), ("min", "the wrong element (the window's smallest")]:
        wrong = per_example(lambda x, d: pool_route(x, d, (2, 2), (1, 1), how), a1, g2)
        wrong = wrong if batch else wrong[0]
        yield (f"maxpool {how}", net, {"a1": T["a1"], "dC/da2": T["dC/da2"], "dC/da1": wrong,
                                       "delta1": wrong * (1 - T["a1"] ** 2)}, "dC/da1", phrase, ["delta1"], T)
    net = build(*AVGPOOL, batch=batch)
    T = truth(net)
    a1, g2 = (T["a1"], T["dC/da2"]) if batch else (T["a1"][None], T["dC/da2"][None])
    wrong = per_example(lambda x, d: pool_route(x, d, (3,), (2,), "sum"), a1, g2)
    wrong = wrong if batch else wrong[0]
    yield ("avgpool not divided", net, {"dC/da2": T["dC/da2"], "dC/da1": wrong, "delta1": wrong * (1 - np.exp(-T["a1"]))},
           "dC/da1", "not divided by the window size 3", ["delta1"], T)


EPS = 0.01     # large enough for ε left out to show in 6 digits


def _norm_plants():
    net = build(*BATCHNORM, batch=4)
    T, P = truth(net), net.parameters
    x, d, g = T["z1"], T["delta2"], P["gamma2"]
    var_u = x.var(axis=0, ddof=1)
    yield ("batchnorm independent statistics", net, {"delta2": d, "dC/da1": g * d / np.sqrt(T["var2"] + EPS),
                                                     "grad.W1": (g * d / np.sqrt(T["var2"] + EPS)).T @ net.x},
           "dC/da1", "backward without the terms through μ and var", ["grad.W1"], T)
    yield ("batchnorm unbiased variance", net, {"z1": x, "mean2": T["mean2"], "var2": var_u,
                                                "xhat2": (x - T["mean2"]) / np.sqrt(var_u + EPS)},
           "var2", "the unbiased variance", ["xhat2"], T)
    xhat = (x - T["mean2"]) / np.sqrt(T["var2"])
    yield ("batchnorm eps left out", net, {"z1": x, "mean2": T["mean2"], "var2": T["var2"], "xhat2": xhat,
                                           "z2": g * xhat + P["beta2"]}, "xhat2", "ε left out", ["z2"], T)
    # the 1/N of the batch mean: in a model over the batch, it sits in ∂C/∂a of the output
    yield ("batch mean 1/N in dC/da", net, {"a3": T["a3"], "dC/da3": 4 * T["dC/da3"], "delta3": 4 * T["dC/da3"]},
           "dC/da3", "the batch mean's 1/N left out", ["delta3"], T)
    net = build(*LAYERNORM, batch=2)
    T, P = truth(net), net.parameters
    d, g = T["delta2"], P["gamma2"]
    wrong = g * d / np.sqrt(T["var2"][:, None] + EPS)
    yield ("layernorm independent statistics", net, {"delta2": d, "dC/da1": wrong, "delta1": wrong},
           "dC/da1", "layer norm's backward without the terms through μ and var", ["delta1"], T)


def _dropout_add_plants(batch):
    net = build(*DROPOUT, batch=batch)
    T, P, M = truth(net), net.parameters, net.masks["M2"] if batch else net.masks["M2"][0]
    yield ("dropout scale left out", net, {"a1": T["a1"], "a2": T["a1"] * M, "z3": T["a1"] * M @ P["W3"].T + P["b3"]},
           "a2", "dropout's 1/(1 − p) left out", ["z3"], T)
    twice = T["dC/da2"] * M / 0.6 ** 2
    yield ("dropout scale twice", net, {"dC/da2": T["dC/da2"], "dC/da1": twice, "delta1": twice * (T["z1"] > 0)},
           "dC/da1", "applied to the gradient twice", ["delta1"], T)
    net = build(*ADD, batch=batch)
    T, P = truth(net), net.parameters
    main = T["delta2"] @ P["W2"]
    yield ("add residual dropped", net, {"delta2": T["delta2"], "dC/da3": T["dC/da3"], "dC/da1": main,
                                         "delta1": main * (1 - T["a1"] ** 2)},
           "dC/da1", "residual path's gradient dropped at the add of layer 3 (a1 given none of it)", ["delta1"], T)


def _batch_mean_plant():
    net = build(*ADD, batch=3, optimizer={"name": "sgd", "learning_rate": 0.1})
    T, P = truth(net), net.parameters
    summed = T["delta4"].T @ T["a3"]                                    # Σ over the batch, not the mean
    yield ("batch mean 1/N in a gradient", net, {"a3": T["a3"], "delta4": T["delta4"], "grad.W4": summed,
                                                 "sgd.W4": P["W4"] - 0.1 * summed},
           "grad.W4", "the batch mean's 1/N left out", ["sgd.W4"], T)


def _sigmoid(u):
    return 1 / (1 + np.exp(-u))


def _gru_swapped(x, P):
    """A GRU's h over the steps of x with h_t = z ⊙ n + (1 − z) ⊙ h_{t−1}: the two swapped."""
    k, h, out = P["W_hh2"].shape[1], np.zeros(P["W_hh2"].shape[1]), []
    for xt in x:
        gi, gh = P["W_ih2"] @ xt + P["b_ih2"], P["W_hh2"] @ h + P["b_hh2"]
        r, z = _sigmoid(gi[:k] + gh[:k]), _sigmoid(gi[k:2 * k] + gh[k:2 * k])
        n = np.tanh(gi[2 * k:] + r * gh[2 * k:])
        h = z * n + (1 - z) * h
        out.append(h)
    return np.array(out)


def _lstm_o_for_g(x, P):
    """An LSTM's g and c over the steps of x with the gate blocks read as i, f, o, g."""
    k, h, c, gs, cs = P["W_hh2"].shape[1], np.zeros(P["W_hh2"].shape[1]), np.zeros(P["W_hh2"].shape[1]), [], []
    for xt in x:
        u = P["W_ih2"] @ xt + P["b_ih2"] + P["W_hh2"] @ h + P["b_hh2"]
        i, f, o, g = _sigmoid(u[:k]), _sigmoid(u[k:2 * k]), _sigmoid(u[2 * k:3 * k]), np.tanh(u[3 * k:])
        c = f * c + i * g
        h = o * np.tanh(c)
        gs.append(g)
        cs.append(c)
    return np.array(gs), np.array(cs)


def _sequence_plants():
    """The recurrent layers' catalogued mistakes, the mistaken numbers from the textbook's BPTT loops."""
    net = build(*GRAPHS["rnn"])
    T, P = truth(net), net.parameters
    h, s, x, own = T["h2"], T["s2"], T["a1"], T["dC/da2"]
    dh = own.copy()                                              # no gradient from step t + 1
    ds = dh * (1 - h ** 2)
    yield ("rnn future gradient dropped", net, {"dC/da2": own, "dC/dh2": dh, "dC/ds2": ds, "grad.W_ih2": ds.T @ x},
           "dC/dh2", "the gradient from step t + 1 dropped", ["dC/ds2", "grad.W_ih2"], T)
    steps = h.shape[0]                                           # Σ over the steps: the mean over N only
    yield ("sequence loss mean over N only", net, {"loss": T["loss"] * steps}, "loss", "taken over N only", [], T)
    da = T["dC/da3"] * steps
    yield ("sequence dC/da mean over N only", net, {"dC/da3": da, "delta3": T["delta3"] * steps,
                                                    "grad.b3": (T["delta3"] * steps).sum(0)},
           "dC/da3", "the mean over N·T taken over N only", ["delta3", "grad.b3"], T)
    ds = T["dC/ds2"]
    yield ("rnn h_t for h_t-1 in dW_hh", net, {"dC/ds2": ds, "grad.W_hh2": ds.T @ h},
           "grad.W_hh2", "h_t used in place of h_(t−1)", [], T)
    wrong = T["dC/dh2"] * (1 - s ** 2)
    yield ("rnn tanh' from the pre-activation", net, {"dC/dh2": T["dC/dh2"], "dC/ds2": wrong, "grad.b_ih2": wrong.sum(0)},
           "dC/ds2", "tanh′ written as 1 − s²", ["grad.b_ih2"], T)
    wrong = T["dC/dh2"] / (1 - h ** 2)
    yield ("rnn tanh' as a reciprocal", net, {"dC/dh2": T["dC/dh2"], "dC/ds2": wrong, "grad.b_ih2": wrong.sum(0)},
           "dC/ds2", "tanh′ written as 1/(1 − h²)", ["grad.b_ih2"], T)
    yield ("rnn gradient of one step", net, {"dC/ds2": ds, "grad.W_ih2": np.outer(ds[-1], x[-1])},
           "grad.W_ih2", "taken from the last step alone", [], T)
    yield from _gated_plants()
    net = build(*GRAPHS["gru"])
    T, P = truth(net), net.parameters
    h = _gru_swapped(T["a1"], P)                                 # z and 1 − z swapped at every step, carried on
    yield ("gru z and 1 - z swapped", net, {"h2": h, "z3": h @ P["W3"].T + P["b3"]},
           "h2", "z and 1 − z swapped", ["z3"], T)
    net = build(*GRAPHS["lstm"])
    T, P = truth(net), net.parameters
    k = T["h2"].shape[1]
    g, c = _lstm_o_for_g(T["a1"], P)                              # the o block read as g (i, f, o, g): step 1's
    step1 = {f"{q}[1][{j + 1}]": v[0, j] for q, v in (("g2", g), ("c2", c)) for j in range(k)}
    yield ("lstm gates in another order", net, step1, "g2", "the gates g and o in another order", ["c2"], T)
    db = T["grad.b_ih2"].copy()
    db[:k] = T["dC/di2"].sum(0)                                   # ∂i/∂b taken as 1: σ′ left out
    yield ("lstm sigmoid derivative left out", net, {"dC/di2": T["dC/di2"], "grad.b_ih2": db},
           "grad.b_ih2", "the sigmoid derivative of gate i left out", [], T)


def _gated_plants():
    """The future gradient dropped and h_t for h_(t−1), for the LSTM and the GRU: dC/di2, ... are the
    gradients of the gates' values; δ_t, their pre-activations', stacked as the weights' rows."""
    net = build(*GRAPHS["lstm"])
    T = truth(net)
    h, c, own = T["h2"], T["c2"], T["dC/da2"]
    do = own * np.tanh(c)                                        # δh = own output only
    yield ("lstm future gradient dropped", net, {"dC/da2": own, "dC/dh2": own, "dC/do2": do},
           "dC/dh2", "the gradient from step t + 1 dropped", ["dC/do2"], T)
    i, f, g, o = (T[q] for q in ("i2", "f2", "g2", "o2"))
    dc = T["dC/dh2"] * T["o2"] * (1 - np.tanh(c) ** 2)                # δc without δc_(t+1) ⊙ f_(t+1)
    yield ("lstm cell gradient not carried", net, {"dC/dh2": T["dC/dh2"], "dC/dc2": dc, "dC/dg2": dc * T["i2"]},
           "dC/dc2", "the cell-state gradient not carried from step t + 1", ["dC/dg2"], T)
    delta = np.concatenate([T["dC/di2"] * i * (1 - i), T["dC/df2"] * f * (1 - f), T["dC/dg2"] * (1 - g ** 2),
                            T["dC/do2"] * o * (1 - o)], axis=1)
    yield ("lstm h_t for h_t-1 in dW_hh", net, {"dC/di2": T["dC/di2"], "grad.W_hh2": delta.T @ h},
           "grad.W_hh2", "h_t used in place of h_(t−1)", [], T)
    net = build(*GRAPHS["gru"])
    T = truth(net)
    h, r, z, n, own = T["h2"], T["r2"], T["z2"], T["n2"], T["dC/da2"]
    dn = own * (1 - z)
    yield ("gru future gradient dropped", net, {"dC/da2": own, "dC/dh2": own, "dC/dn2": dn},
           "dC/dh2", "the gradient from step t + 1 dropped", ["dC/dn2"], T)
    delta = np.concatenate([T["dC/dr2"] * r * (1 - r), T["dC/dz2"] * z * (1 - z), T["dC/dn2"] * (1 - n ** 2) * r], axis=1)
    yield ("gru h_t for h_t-1 in dW_hh", net, {"dC/dr2": T["dC/dr2"], "grad.W_hh2": delta.T @ h},
           "grad.W_hh2", "h_t used in place of h_(t−1)", [], T)


def _embedding_plant():
    net = build(*GRAPHS["embedding"])                    # the first id repeated at the last position
    T, P = truth(net), net.parameters
    ids, grad = net.x[0].astype(int), np.zeros_like(P["E1"])
    for t, v in enumerate(ids):
        grad[v] = T["dC/da1"][t]                         # assigned: a repeated id keeps its last position's
    assert ids[0] == ids[-1]
    yield ("embedding repeated id overwritten", net, {"dC/da1": T["dC/da1"], "grad.E1": grad},
           "grad.E1", "a repeated id's row overwritten instead of summed", [], T)


ATTENTION = ([3, 4], [dict(type="attention", heads=2, causal=True), dict(type="flatten"), dict(type="dense", units=2)], "mse")


def heads_of(x, h):
    """(T, d) -> (h, T, d/h): head h's columns."""
    t, d = x.shape
    return x.reshape(t, h, d // h).transpose(1, 0, 2)


def joined(x):
    """(h, T, d_k) -> (T, h·d_k)."""
    return x.transpose(1, 0, 2).reshape(x.shape[1], -1)


def _attention_plants():
    """Attention's catalogued mistakes, the mistaken numbers by the textbook's loops over heads and
    positions (one example)."""
    net = build(*ATTENTION)
    T, h = truth(net), 2
    q, k, v = (heads_of(T[p], h) for p in ("q1", "k1", "v1"))
    A, dA, dO, S = T["weights1"], T["dC/dweights1"], heads_of(T["dC/do1"], h), T["scores1"]
    x, (t, dk) = net.x[0], q.shape[1:]

    def dS_of(rule):
        out = np.zeros(A.shape)
        for hh, a in np.ndindex(h, t):
            total = sum(A[hh, a, s] * dA[hh, a, s] for s in range(t))
            for b in range(t):
                out[hh, a, b] = rule(A[hh, a, b], dA[hh, a, b], total)
        return out

    def products(left, right, transpose=False, scale=1 / np.sqrt(dk)):
        """Σ_s left[h, t, s] right[h, s, j] (or left[h, s, t] when ``transpose``) · scale, joined."""
        out = np.zeros(right.shape)
        for hh, a, j in np.ndindex(*right.shape):
            out[hh, a, j] = scale * sum((left[hh, s, a] if transpose else left[hh, a, s]) * right[hh, s, j] for s in range(t))
        return joined(out)

    def grads(p, dp, bias=True):
        return {f"dC/d{p}1": dp, f"grad.W{p}1": dp.T @ x, **({f"grad.b{p}1": dp.sum(axis=0)} if bias else {})}
    dS = T["dC/dscores1"]
    for name, rule, phrase in [("no row-sum", lambda a, da, r: a * da, "without its row-sum term"),
                               ("diagonal", lambda a, da, r: a * (1 - a) * da, "the Jacobian's diagonal only")]:
        wrong = dS_of(rule)
        yield (f"attention softmax {name}", net, {"dC/dweights1": dA, "dC/dscores1": wrong, "dC/dq1": products(wrong, k),
                                                  "grad.Wq1": products(wrong, k).T @ x},
               "dC/dscores1", phrase, ["dC/dq1", "grad.Wq1"], T)
    # (b_k's gradient stays 0 with dK scaled: Σ_s dK_s = Σ_t q_t Σ_s dS_ts = 0, so it is left out there)
    for name, planted, value, phrase, bias in [
            ("no scale in dQ", "q", products(dS, k, scale=1), "left out of dQ", True),
            ("no scale in dK", "k", products(dS, q, transpose=True, scale=1), "left out of dK", False),
            ("scale twice", "q", products(dS, k, scale=1 / dk), "applied twice", True),
            ("K and Q swapped", "q", products(dS, q), "K and Q swapped", True),
            ("dS not transposed", "k", products(dS, q), "dSᵀ not transposed", True)]:
        yield (f"attention {name}", net, {"dC/dscores1": dS, **grads(planted, value, bias)}, f"dC/d{planted}1", phrase,
               [f"grad.W{planted}1"] + [f"grad.b{planted}1"] * bias, T)
    yield ("attention A for Aᵀ in dV", net, {"dC/do1": T["dC/do1"], **grads("v", products(A, dO, scale=1))}, "dC/dv1",
           "A used instead of Aᵀ", ["grad.Wv1", "grad.bv1"], T)
    e = np.exp(S)
    after = np.tril(e) / e.sum(axis=-1, keepdims=True)                     # masked after the softmax
    upper = np.triu(e) / np.triu(e).sum(axis=-1, keepdims=True)           # the keys before each query masked
    for name, wrong, phrase in [("mask after softmax", after, "applied after the softmax"),
                                ("mask on the wrong axis", upper, "on the wrong axis")]:
        yield (f"attention {name}", net, {"scores1": S, "weights1": wrong, "o1": products(wrong, v, scale=1)},
               "weights1", phrase, ["o1"], T)


def _plants():
    for case in [*_conv_plants(None), *_conv_plants(2), *_pool_plants(None), *_pool_plants(2), *_norm_plants(),
                 *_dropout_add_plants(None), *_dropout_add_plants(2), *_batch_mean_plant(), *_sequence_plants(),
                 *_embedding_plant(), *_attention_plants()]:
        yield pytest.param(*case[1:], id=case[0] + (" (batch)" if case[1].batched else ""))


@pytest.mark.parametrize("net, values, planted, phrase, carried, T", list(_plants()))
def test_planted_layer_mistake_is_named(net, values, planted, phrase, carried, T):
    results = run(net, values)
    statuses = Counter()
    for label, r in results.items():
        true = float(np.asarray(T[r.name])[r.index]) if r.name in T else r.expected
        right = Written.parse(r.given, label).interval.widen(1e-12 * abs(true)).contains(true)
        # a mistaken number is wrong, or ok where it still follows from the person's rounded inputs
        want = {"ok"} if right else {"wrong", "ok"} if r.name == planted else {"carried", "ok"} if r.name in carried \
            else {"ok"}
        assert r.status in want, (label, r.status, want, r.given, r.expected, r.diagnosis)
        if r.status == "wrong":
            assert phrase in (r.diagnosis or ""), (label, r.given, r.expected, r.diagnosis)
        statuses[r.name, r.status, right] += 1
    mistaken = statuses[planted, "wrong", False] + statuses[planted, "ok", False]
    assert statuses[planted, "wrong", False] >= max(1, mistaken * 3 // 4), statuses
    for name in carried:
        assert statuses[name, "carried", False] >= statuses[name, "ok", False], statuses


@pytest.mark.parametrize("name", list(GRAPHS))
def test_true_numbers_of_every_kind_are_ok(name):
    """Every quantity of every layer kind (and of a batch of 3), written to 6 digits: all ok."""
    for batch in ([3] if name in BATCH_ONLY else [None, 3]):
        net = graph(name, batch=batch)
        T = truth(net)
        results = check(net, parse_hand({"values": {k: written(v) for k, v in T.items()}}, net))
        assert len(results) == sum(np.asarray(v).size for v in T.values())
        bad = [(r.label, r.given, r.expected) for r in results if r.status != "ok"]
        assert not bad, (name, batch, bad[:5])


def test_batch_indices_name_the_example_first():
    net = graph("dropout", batch=3)
    T = truth(net)
    r = run(net, {"a1": T["a1"]})
    assert list(r)[:6] == ["a1[1][1]", "a1[1][2]", "a1[1][3]", "a1[1][4]", "a1[1][5]", "a1[2][1]"]
    one = check(net, parse_hand({"values": {"a1[2][3]": text(T["a1"][1, 2] + 1)}}, net))
    assert [(x.label, x.index, x.status) for x in one] == [("a1[2][3]", (1, 2), "wrong")]
    assert quantities(net)["delta1"] == (3, 5) and quantities(net)["grad.W1"] == (5, 4)
    with pytest.raises(SpecError, match=r"values.a1\[4\]\[1\]: index out of range for a1 of shape \(3, 5\)"):
        parse_hand({"values": {"a1[4][1]": "0.5"}}, net)


def test_seconds_for_a_few_thousand_parameters():
    """The limits hold what they promise: a 2,900-parameter net checks in seconds."""
    assert (MAX_PARAMETERS, MAX_VALUES) == (3000, 4000)
    net = build([40], [dict(type="dense", units=50, activation="tanh"), dict(type="dense", units=16)], "mse")
    assert 2800 < net.parameter_count <= MAX_PARAMETERS
    T = truth(net)
    start = time.perf_counter()
    results = run(net, {k: T[k] for k in ("a1", "delta2", "grad.W2", "grad.W1")})
    assert time.perf_counter() - start < 30                  # ~5 s on a quiet machine
    assert {r.status for r in results.values()} == {"ok"} and len(results) == 50 + 16 + 800 + 2000


def tied_network():
    """A conv → max-pool net whose z1 window holds 1.1 twice (positions (1, 1) and (1, 2)), and g,
    that window's gradient ∂C/∂a2."""
    net = Network.from_dict({
        "network": {"input": [1, 3, 3], "loss": "squared_error"},
        "layer": [{"type": "conv2d", "channels": 1, "kernel": 2}, {"type": "maxpool2d", "kernel": 2},
                  {"type": "flatten"}, {"type": "dense", "units": 1, "activation": "sigmoid"}],
        "parameters": {"W1": [[[[1.0, 0.0], [0.0, 0.0]]]], "b1": [0.1], "W4": [[0.6]], "b4": [0.2]},
        "sample": {"x": [[[1, 1, 0], [0, 0, 0], [0, 0, 0]]], "y": [1]}})
    a4 = 1 / (1 + np.exp(-(0.6 * 1.1 + 0.2)))
    return net, 2 * (a4 - 1) * a4 * (1 - a4) * 0.6


def test_at_a_max_pool_tie_either_routing_is_right_and_expected_is_pytorch_s():
    """z1's first window holds 1.1 twice. The interval arithmetic cannot tell which element wins, so
    either routing of the window's gradient is right; the expected column shows PyTorch's (all to
    the first maximum), not the midpoint of the two, and says why a number unlike it is ok."""
    net, g = tied_network()                                      # ∂C/∂a2, all of it to one element
    first = {"dC/da1": [[[g, 0], [0, 0]]]}
    second = {"dC/da1": [[[0, g], [0, 0]]]}
    for hand in (first, second):
        results = check(net, parse_hand({"values": {"dC/da1": [[[text(v) for v in row] for row in hand["dC/da1"][0]]]}}, net))
        assert [r.status for r in results] == ["ok"] * 4
        assert [r.expected for r in results] == pytest.approx([g, 0, 0, 0], rel=1e-12, abs=1e-15)
        notes = [r.label for r in results if r.diagnosis and "at a tie" in r.diagnosis]
        assert notes == ([] if hand is first else ["dC/da1[1][1][1]", "dC/da1[1][1][2]"])
    split = check(net, parse_hand({"values": {"dC/da1": [[[text(g / 2), text(g / 2)], ["0", "0"]]]}}, net))
    assert [r.status for r in split] == ["ok"] * 4       # a convex combination: a subgradient too
    wrong = check(net, parse_hand({"values": {"dC/da1": [[[text(2 * g), "0"], ["0", "0"]]]}}, net))
    assert [r.status for r in wrong] == ["wrong", "ok", "ok", "ok"]
