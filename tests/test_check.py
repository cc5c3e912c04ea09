"""``check``: the seed's slips found, planted mistakes named, right numbers passed, bad input refused.

Expected values come from numpy formulas written out here, or from the library's other routes
(``numeric.evaluate``, ``optimizers.step``) — never from the seed's printed numbers, which slip.
"""
import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from symbackprop.check.judge import Written, check, load_hand, parse_hand
from symbackprop.cli import main
from symbackprop.derive.derivation import Derivation
from symbackprop.errors import SpecError
from symbackprop.derive.model import Model
from symbackprop.numeric.values import evaluate
from symbackprop.entries.optimizers import OPTIMIZERS, Settings, step
from symbackprop import Network, load

sys.path.insert(0, str(Path(__file__).parent))
from cases import combinations, network as random_network  # noqa: E402

SEED, SEED_HAND = "examples/seed.toml", "examples/seed-hand.toml"
LR, B1, B2, EPS = 0.1, 0.9, 0.999, 1e-8


def sigmoid(u):
    return 1 / (1 + np.exp(-u))


def num(x, digits=6) -> str:
    """x written with ``digits`` significant digits, as a TOML float."""
    return f"{float(x):.{digits - 1}e}"


# ---------------------------------------------------------------------------------------------
# truth, from the library's other routes
def truth(net: Network, optimizer: str | None = None) -> dict:
    """Every quantity check knows, by name: numeric.evaluate, optimizers.step, and the new pass."""
    d = Derivation(Model(net))
    v = evaluate(d)
    T = {k: np.asarray(val, float) for k, val in v.forward.items()}
    T["loss"] = np.asarray(v.loss)
    names = {"dC/da": "dC/da{l}", "da/dz": "da{l}/dz{l}", "delta": "delta{l}"}
    for s in d.steps:
        if s.kind != "grad":
            name = names[s.kind].format(l=s.layer)
            T.setdefault(name, np.zeros(net.layers[s.layer]))[s.index] = float(v.env[s.symbol][0])
    for p, grad in v.gradients.items():
        T[f"grad.{p}"] = grad
    if optimizer:
        opt, settings = OPTIMIZERS[optimizer], Settings.of({k: x for k, x in net.optimizer.items() if k != "name"})
        new, state = step(opt, settings, net.parameters, v.gradients, opt.init_state(net.parameters), t=1)
        for p in net.parameters:
            T[f"{optimizer}.{p}"] = new[p]
            for st in state:
                T[f"{optimizer}.{st}.{p}"] = state[st][p]
        if net.optimizer.get("name") == optimizer:
            after = Network.from_dict({"network": _network_table(net), "sample": _sample(net),
                                       "parameters": {k: x.tolist() for k, x in new.items()}})
            v2 = evaluate(Derivation(Model(after)))
            T |= {f"new.{k}": np.asarray(x, float) for k, x in v2.forward.items()}
            T["new.loss"] = np.asarray(v2.loss)
    return T


def _network_table(net):
    return {"layers": list(net.layers), "activations": [a.name for a in net.activations], "loss": net.loss.name}


def _sample(net):
    return {"x": net.x[0].tolist(), "y": net.y[0].tolist()}


def spec(net: Network, **optimizer) -> Network:
    """``net`` with another [optimizer] table."""
    return Network.from_dict({"network": _network_table(net), "sample": _sample(net), "optimizer": optimizer,
                              "parameters": {k: x.tolist() for k, x in net.parameters.items()}})


def as_values(T: dict, names, digits=6) -> dict:
    """The named true quantities as a [values] table of written numbers."""
    out = {}
    for name in names:
        value = np.asarray(T[name], float)
        out[name] = num(value, digits) if value.ndim == 0 else np.vectorize(lambda x: num(x, digits), otypes=[object])(value).tolist()
    return out


def run(net: Network, values: dict, optimizer: dict | None = None) -> dict:
    """check on a hand given as data; results by label."""
    data = {"values": values} | ({"optimizer": optimizer} if optimizer else {})
    return {r.label: r for r in check(net, parse_hand(data, net))}


def toml_value(v) -> str:
    return "[" + ", ".join(toml_value(x) for x in v) + "]" if isinstance(v, list) else str(v)


def write_hand(path: Path, values: dict, optimizer: dict | None = None) -> Path:
    lines = []
    if optimizer:
        lines.append("[optimizer]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in optimizer.items()]
    lines.append("[values]")
    lines += [f'"{k}" = {toml_value(v)}' for k, v in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def seed():
    return load(SEED)


@pytest.fixture(scope="module")
def seed_truth(seed):
    return truth(seed, "adam") | truth(spec(seed, name="sgd", learning_rate=LR), "sgd")


# ---------------------------------------------------------------------------------------------
# the seed's own numbers
def test_seed_slips_by_independent_computation(seed):
    """What the seed's numbers are, worked out with numpy — the basis of the statuses below."""
    x, y = seed.x[0], seed.y[0][0]
    a1 = sigmoid(seed.parameters["W1"] @ x + seed.parameters["b1"])
    a2 = sigmoid(seed.parameters["W2"] @ a1 + seed.parameters["b2"])[0]
    dC_da, da_dz = 2 * (a2 - y), a2 * (1 - a2)
    true = a1 * da_dz * dC_da
    # both printed W2 gradients are half the true ones: the 2 of 2(a - y) is dropped in both
    # (the brief said the second keeps it; it does not). ∂C/∂b2 = -0.199 keeps it.
    assert true == pytest.approx([-0.05754, -0.11434], abs=1e-5)
    assert round(-0.411 * 0.242 * 0.289, 4) == -0.0287 and round(float(true[1]) / 2, 4) == -0.0572
    assert round(da_dz * dC_da, 3) == -0.199
    # the Adam state follows from the halved gradients: m = 0.1 g, v = 0.001 g²
    assert f"{0.001 * 0.0287**2:.2e}" == "8.24e-07" and f"{0.001 * 0.0572**2:.2e}" == "3.27e-06"
    # its updates are θ - lr·m: no √v division and no bias correction — no version of Adam
    for theta, m_, v_, printed in ((0.5, -0.00287, 8.24e-7, 0.5003), (0.2, -0.00572, 3.27e-6, 0.2006)):
        assert round(theta - LR * m_, 4) == printed
        with_bc = theta - LR * (m_ / 0.1) / (math.sqrt(v_ / 0.001) + EPS)
        without_bc = theta - LR * m_ / (math.sqrt(v_) + EPS)
        assert abs(with_bc - printed) > 0.09 and abs(without_bc - printed) > 0.3
    # ... and b2's 0.1021 is not even that (0.1 + 0.1·0.0199 = 0.10199)
    assert round(0.1 - LR * -0.0199, 4) != 0.1021


SEED_STATUS = {
    "z1[1]": "ok", "z1[2]": "ok", "a1[1]": "ok", "a1[2]": "ok", "z2[1]": "ok", "a2[1]": "ok",
    "loss": "ok",  # (0.589 - 1)² = 0.168921: from the rounded output, fine
    "dC/da2[1]": "ok", "da2/dz2[1]": "ok",
    "grad.W2[1][1]": "wrong", "grad.W2[1][2]": "wrong", "grad.b2[1]": "ok",
    "sgd.W2[1][1]": "carried", "sgd.W2[1][2]": "carried", "sgd.b2[1]": "ok",
    "adam.m.W2[1][1]": "carried", "adam.m.W2[1][2]": "carried", "adam.m.b2[1]": "ok",
    "adam.v.W2[1][1]": "carried", "adam.v.W2[1][2]": "carried", "adam.v.b2[1]": "ok",
    "adam.W2[1][1]": "wrong", "adam.W2[1][2]": "wrong", "adam.b2[1]": "wrong",
    # -0.9 and 0.3 are right to the one decimal written, and 0.289 follows from -0.9
    "new.z1[1]": "ok", "new.z1[2]": "ok", "new.a1[1]": "ok", "new.a1[2]": "ok",
    "new.z2[1]": "carried", "new.a2[1]": "carried", "new.loss": "carried",
}


def test_seed_hand_finds_each_slip_and_what_it_carries(seed, seed_truth):
    results = {r.label: r for r in check(seed, load_hand(SEED_HAND, seed))}
    assert {k: r.status for k, r in results.items()} == SEED_STATUS
    for label in ("grad.W2[1][1]", "grad.W2[1][2]"):
        assert results[label].diagnosis.startswith("the 2 of d/da (a − y)² dropped"), results[label].diagnosis
    for label in ("adam.W2[1][1]", "adam.W2[1][2]"):
        assert "without bias correction" in results[label].diagnosis
        assert "division by √v + ε left out" in results[label].diagnosis
    assert results["adam.b2[1]"].diagnosis is None
    # expected values are the true ones
    assert results["grad.W2[1][1]"].expected == pytest.approx(seed_truth["grad.W2"][0][0], rel=1e-12)
    assert results["adam.W2[1][2]"].expected == pytest.approx(seed_truth["adam.W2"][0][1], rel=1e-12)
    output_only = truth(spec(seed, name="sgd", learning_rate=LR, train=["W2", "b2"]), "sgd")  # as the hand file says
    assert results["new.loss"].expected == pytest.approx(float(output_only["new.loss"]), rel=1e-12)
    assert results["adam.v.W2[1][1]"].given == "8.24e-7"


def test_seed_hand_on_the_command_line(capsys):
    assert main(["check", SEED, SEED_HAND]) == 1
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1] == "31 numbers: 17 ok, 5 wrong, 9 carried"
    assert "grad.W2[1][1]    -0.0287" in out
    assert main(["check", SEED, SEED_HAND, "--format", "json"]) == 1
    rows = json.loads(capsys.readouterr().out)
    keys = {"name", "index", "label", "given", "expected", "status", "diagnosis"}
    assert len(rows) == 31 and all(set(r) == keys for r in rows)
    # JSON's index is into the plain arrays (0-based); its label is what people read (1-based)
    w = next(r for r in rows if r["name"] == "grad.W2" and r["index"] == [0, 1])
    assert w["label"] == "grad.W2[1][2]"
    assert w["given"] == -0.0572 and w["status"] == "wrong" and w["expected"] == pytest.approx(-0.114344, abs=1e-6)
    assert next(r for r in rows if r["name"] == "loss")["index"] == []


def _strict_json(text):
    def refuse(token):
        raise ValueError(f"bare {token} in the JSON")
    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("activation, loss, values, shown", [
    # a = relu(-2) = 0 and y = 1: the cross-entropy is -log 0 = inf, its gradient inf · 0 undefined
    ("relu", "binary_cross_entropy", {"z1": "-2", "a1": "0", "loss": "5", "grad.W1": [["1.0"]]},
     {"loss": ("inf", "inf"), "grad.W1[1][1]": ("undefined", None)}),
    # √z at z = -2 has no real value
    ("z**0.5", "squared_error", {"z1": "-2", "a1": "1"}, {"a1[1]": ("undefined", None)}),
], ids=["relu-bce", "sqrt-negative"])
def test_infinite_or_undefined_true_values_are_shown_as_such(tmp_path, capsys, activation, loss, values, shown):
    net = tmp_path / "net.toml"
    net.write_text(f'[network]\nlayers = [1, 1]\nactivations = ["{activation}"]\nloss = "{loss}"\n'
                   "[parameters]\nW1 = [[-1.0]]\nb1 = [0.0]\n[sample]\nx = [2]\ny = [1]\n", encoding="utf-8")
    hand = write_hand(tmp_path / "hand.toml", values)
    assert main(["check", str(net), str(hand)]) == 1
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()}
    for label, (text, _) in shown.items():
        assert rows[label][2] == text and rows[label][3] == "wrong", rows[label]
    assert main(["check", str(net), str(hand), "--format", "json"]) == 1
    rows = {r["label"]: r for r in _strict_json(capsys.readouterr().out)}
    for label, (_, data) in shown.items():
        assert rows[label]["expected"] == data and rows[label]["status"] == "wrong", rows[label]


# ---------------------------------------------------------------------------------------------
# right numbers pass
CASES = combinations()


@pytest.mark.parametrize("i", range(0, len(CASES), 5), ids=lambda i: "-".join(CASES[i]))
def test_true_values_of_every_quantity_are_ok(i):
    hidden, output, loss = CASES[i]
    name = list(OPTIMIZERS)[i % len(OPTIMIZERS)]
    net = spec(random_network(hidden, output, loss, seed=i), name=name, learning_rate=0.1,
               weight_decay=0.01 if i % 2 else 0.0)
    T = truth(net, name)
    results = check(net, parse_hand({"values": as_values(T, T)}, net))
    assert {r.status for r in results} == {"ok"}, [(r.label, r.given, r.expected) for r in results if r.status != "ok"]
    for r in results:
        assert r.expected == pytest.approx(float(np.asarray(T[r.name])[r.index]), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("digits", [2, 3, 4])
def test_rounding_as_you_go_is_ok(seed, digits):
    """A careful person who rounds every number and computes on with the rounded ones."""
    r = lambda x: float(f"{x:.{digits - 1}e}")  # noqa: E731
    W1, b1, W2, b2 = (seed.parameters[k] for k in ("W1", "b1", "W2", "b2"))
    x, y = seed.x[0], 1.0
    z1 = [r(u) for u in W1 @ x + b1]
    a1 = [r(sigmoid(u)) for u in z1]
    z2 = r(W2[0] @ a1 + b2[0])
    a2 = r(sigmoid(z2))
    loss, dC, dadz = r((a2 - y) ** 2), r(2 * (a2 - y)), r(a2 * (1 - a2))
    delta = r(dC * dadz)
    gW = [r(a1[0] * delta), r(a1[1] * delta)]
    m_ = [r(0.1 * q) for q in gW]
    v_ = [r(0.001 * q * q) for q in gW]
    adam = [r(W2[0][k] - LR * (m_[k] / 0.1) / (math.sqrt(v_[k] / 0.001) + EPS)) for k in range(2)]
    sgd = [r(W2[0][k] - LR * gW[k]) for k in range(2)]
    values = {"z1": z1, "a1": a1, "z2": z2, "a2": a2, "loss": loss, "dC/da2": dC, "da2/dz2": dadz,
              "delta2": delta, "grad.W2": [gW], "adam.m.W2": [m_], "adam.v.W2": [v_], "adam.W2": [adam],
              "sgd.W2": [sgd]}
    written = {k: ([[f"{q:.{digits - 1}e}" for q in v[0]]] if k.endswith("W2") else
                   [f"{q:.{digits - 1}e}" for q in v] if isinstance(v, list) else f"{v:.{digits - 1}e}")
               for k, v in values.items()}
    results = run(seed, written)
    assert {r.status for r in results.values()} == {"ok"}, [(k, r.given, r.expected) for k, r in results.items()
                                                            if r.status != "ok"]


def test_more_digits_carried_than_written_is_ok(seed, seed_truth):
    T = seed_truth
    # a1 written to two places, the gradient computed with all of a1's digits
    values = {"a1": ["0.29", "0.57"], "delta2": num(T["delta2"][0]), "grad.W2": [[num(T["grad.W2"][0][0], 4), num(T["grad.W2"][0][1], 4)]],
              "loss": "0.16900", "a2": "0.59"}
    assert {r.status for r in run(seed, values).values()} == {"ok"}


def test_a_correct_hand_exits_0_and_element_keys_work(tmp_path, seed, seed_truth, capsys):
    T = seed_truth
    hand = write_hand(tmp_path / "hand.toml", {"a2": num(T["a2"][0], 3), "grad.W2[1][2]": num(T["grad.W2"][0][1], 3),
                                               "adam.W2[1]": [num(x, 4) for x in T["adam.W2"][0]]})
    assert main(["check", SEED, str(hand)]) == 0
    assert capsys.readouterr().out.strip().endswith("4 numbers: 4 ok, 0 wrong, 0 carried")


def test_written_numbers_keep_their_digits(tmp_path, seed):
    assert Written.parse("0.50", "k").interval.lo == pytest.approx(0.495)
    assert Written.parse("0.50", "k").interval.hi == pytest.approx(0.505)
    w = Written.parse("8.24e-7", "k")
    assert w.interval.lo == pytest.approx(8.235e-7) and w.interval.hi == pytest.approx(8.245e-7)
    assert Written.parse("3", "k").interval.width == 0 and Written.parse(-2, "k").value == -2
    assert Written.parse("1e-8", "k").interval.hi == pytest.approx(1.5e-8)
    assert Written.parse("\u22120.5", "k").value == -0.5
    hand = tmp_path / "h.toml"
    hand.write_text('[values]\na2 = 0.50\nloss = "0.1700"\ngrad.b2 = -2_0.0e-2\n', encoding="utf-8")
    h = load_hand(hand, seed)
    assert [w.text for w in h.values.values()] == ["0.50", "0.1700", "-20.0e-2"]
    assert h.values[("a2", (0,))].interval.width == pytest.approx(0.01)


def test_dotted_and_quoted_keys_are_the_same(tmp_path, seed):
    a = tmp_path / "a.toml"
    a.write_text('[values]\ngrad.W2 = [[-0.0575, -0.114]]\nadam.m.b2 = -0.0199\n', encoding="utf-8")
    b = tmp_path / "b.toml"
    b.write_text('[values]\n"grad.W2" = [[-0.0575, -0.114]]\n[values.adam.m]\nb2 = -0.0199\n', encoding="utf-8")
    assert check(seed, load_hand(a, seed)) == check(seed, load_hand(b, seed))


# ---------------------------------------------------------------------------------------------
# planted mistakes: each computed here from the true values, then named by check
MAZUR = Network.from_dict({
    "network": {"layers": [2, 2, 2], "activations": ["sigmoid", "sigmoid"], "loss": "half_squared_error"},
    "parameters": {"W1": [[0.15, 0.20], [0.25, 0.30]], "b1": [0.35, 0.35],
                   "W2": [[0.40, 0.45], [0.50, 0.55]], "b2": [0.60, 0.60]},
    "sample": {"x": [0.05, 0.10], "y": [0.01, 0.99]},
    "optimizer": {"name": "sgd", "learning_rate": 0.5, "train_biases": False}})


def _seed_plants(T, P):
    """(id, values, optimizer table or None, the mistaken label, phrase expected, other statuses
    (a list of labels carried, or a dict of label: status; the rest are ok))."""
    a1, a2, z1, z2, y = T["a1"], T["a2"][0], T["z1"], T["z2"][0], 1.0
    dC, dadz, d2, d1 = T["dC/da2"][0], T["da2/dz2"][0], T["delta2"][0], T["delta1"]
    W1, b1, W2, b2, x = P["W1"], P["b1"], P["W2"], P["b2"], P["x"]
    g = T["grad.W2"][0]
    m_hat, v_hat = g, g * g  # the first step's bias-corrected moments
    m_, v_ = (1 - B1) * g, (1 - B2) * g * g
    n = num
    yield ("2 dropped in dC/da", {"a2": n(a2), "dC/da2": n(a2 - y)}, None, "dC/da2[1]", "the 2 of d/da (a − y)² dropped", [])
    yield ("2 dropped in the product", {"a1": [n(u) for u in a1], "dC/da2": n(dC), "da2/dz2": n(dadz),
                                        "grad.W2[1][1]": n(a1[0] * dadz * (a2 - y), 4),
                                        "sgd.W2[1][1]": n(W2[0][0] - LR * a1[0] * dadz * (a2 - y), 5)},
           {"name": "sgd"}, "grad.W2[1][1]", "the 2 of d/da (a − y)² dropped", ["sgd.W2[1][1]"])
    yield ("sign flipped", {"a2": n(a2), "dC/da2": n(2 * (y - a2)), "da2/dz2": n(dadz), "delta2": n(2 * (y - a2) * dadz)},
           None, "dC/da2[1]", "sign flipped", ["delta2[1]"])
    yield ("sigma' missing", {"a1": [n(u) for u in a1], "dC/da2": n(dC), "da2/dz2": n(dadz), "grad.W2[1][2]": n(a1[1] * dC, 4)},
           None, "grad.W2[1][2]", "σ′ factor da2/dz2[1] missing", [])
    yield ("sigma' at z", {"z2": n(z2), "a2": n(a2), "dC/da2": n(dC), "da2/dz2": n(z2 * (1 - z2)),
                           "delta2": n(dC * z2 * (1 - z2))},
           None, "da2/dz2[1]", "σ′ taken at z instead of a", ["delta2[1]"])
    yield ("sigma for sigma'", {"a2": n(a2), "da2/dz2": n(a2)}, None, "da2/dz2[1]", "σ(z) used for σ′(z)", [])
    yield ("wrong input index", {"a1": [n(u) for u in a1], "delta2": n(d2), "grad.W2[1][2]": n(a1[0] * d2, 4)},
           None, "grad.W2[1][2]", "a1[1] used in place of a1[2]", [])
    yield ("z for a", {"z1": [n(u) for u in z1], "a1": [n(u) for u in a1], "delta2": n(d2), "grad.W2[1][1]": n(z1[0] * d2, 4)},
           None, "grad.W2[1][1]", "z1[1] used in place of a1[1]", [])
    yield ("factor dropped", {"delta1": [n(u) for u in d1], "grad.W1[1][2]": n(d1[0], 4)},
           None, "grad.W1[1][2]", "the factor x[2] (∂z/∂W) dropped", [])
    yield ("bias left out", {"z1": [n(u) for u in W1 @ x]}, None, "z1[1]", "the bias b1[1] left out", {"z1[2]": "wrong"})
    yield ("activation not applied", {"z2": n(z2), "a2": n(z2), "loss": n((z2 - y) ** 2)}, None, "a2[1]",
           "the activation not applied", ["loss"])
    yield ("sigma(-z)", {"z1": [n(u) for u in z1], "a1[1]": n(sigmoid(-z1[0]))}, None, "a1[1]", "σ(−z) computed instead of σ(z)", [])
    yield ("loss halved", {"a2": n(a2), "loss": n((a2 - y) ** 2 / 2)}, None, "loss", "½(a − y)²", [])
    yield ("learning rate left out", {"grad.W2": [[n(u) for u in g]], "sgd.W2[1][2]": n(W2[0][1] - g[1])},
           None, "sgd.W2[1][2]", "learning rate left out", [])
    yield ("learning rate twice", {"grad.b2": n(T["grad.b2"][0]), "sgd.b2": n(b2[0] - LR**2 * T["grad.b2"][0])},
           None, "sgd.b2[1]", "learning rate applied twice", [])
    yield ("step added", {"grad.b2": n(T["grad.b2"][0]), "sgd.b2": n(b2[0] + LR * T["grad.b2"][0])},
           None, "sgd.b2[1]", "added instead of subtracted", [])
    yield ("weight decay left out", {"grad.W2": [[n(u) for u in g]], "sgd.W2[1][1]": n(W2[0][0] - LR * g[0])},
           {"weight_decay": 0.5}, "sgd.W2[1][1]", "weight decay left out", [])
    yield ("no bias correction", {"adam.m.W2": [[n(u) for u in m_]], "adam.v.W2": [[n(u) for u in v_]],
                                  "adam.W2[1][1]": n(W2[0][0] - LR * m_[0] / (np.sqrt(v_[0]) + EPS))},
           None, "adam.W2[1][1]", "Adam without bias correction", [])
    yield ("bias correction though off", {"grad.W2": [[n(u) for u in g]],
                                          "adam.W2[1][1]": n(W2[0][0] - LR * m_hat[0] / (np.sqrt(v_hat[0]) + EPS))},
           {"bias_correction": False}, "adam.W2[1][1]", "Adam with bias correction", [])
    big = 1e-2
    yield ("eps inside the root", {"grad.W2": [[n(u) for u in g]],
                                   "adam.W2[1][2]": n(W2[0][1] - LR * m_hat[1] / np.sqrt(v_hat[1] + big))},
           {"eps": big}, "adam.W2[1][2]", "ε inside the square root", [])
    yield ("root division left out", {"grad.W2": [[n(u) for u in g]], "adam.W2[1][2]": n(W2[0][1] - LR * m_hat[1])},
           None, "adam.W2[1][2]", "division by √v + ε left out", [])
    yield ("v not rooted", {"grad.W2": [[n(u) for u in g]], "adam.W2[1][1]": n(W2[0][0] - LR * m_hat[0] / (v_hat[0] + EPS))},
           None, "adam.W2[1][1]", "divided by v + ε instead of √v + ε", [])
    t2 = W2[0][0] - LR * (m_[0] / (1 - B1**2)) / (np.sqrt(v_[0] / (1 - B2**2)) + EPS)
    yield ("time step off by one", {"adam.m.W2": [[n(u) for u in m_]], "adam.v.W2": [[n(u) for u in v_]], "adam.W2[1][1]": n(t2)},
           None, "adam.W2[1][1]", "time step off by one", [])
    yield ("beta swapped", {"grad.W2": [[n(u) for u in g]], "adam.m.W2[1][1]": n(B1 * g[0]),
                            "adam.W2[1][1]": n(W2[0][0] - LR * (B1 * g[0] / 0.1) / (abs(g[0]) + EPS))},
           None, "adam.m.W2[1][1]", "beta1 and 1 − beta1 swapped", ["adam.W2[1][1]"])
    gb = T["grad.b2"][0]
    yield ("g not squared", {"grad.b2": n(gb), "adam.v.b2": n((1 - B2) * gb)}, None, "adam.v.b2[1]", "gradient not squared", [])
    yield ("momentum lr left out", {"grad.b2": n(gb), "momentum.b2": n(b2[0] - gb)}, None, "momentum.b2[1]",
           "learning rate left out", [])
    yield ("rmsprop rho swapped", {"grad.b2": n(gb), "rmsprop.s.b2": n(0.9 * gb * gb)}, None, "rmsprop.s.b2[1]",
           "rho and 1 − rho swapped", [])
    # the seed's second pass: the hidden layer left as it was, written precisely enough to show
    yield ("hidden layer not updated", {"new.z1": ["-0.90000", "0.30000"], "new.a1": [n(u) for u in a1]},
           {"name": "sgd"}, "new.z1[1]", "layer 1's weights and biases not updated",
           {"new.z1[2]": "wrong", "new.a1[1]": "carried", "new.a1[2]": "carried"})


def _mazur_plants(T, P):
    n = num
    a1, a2, y, d2 = T["a1"], T["a2"], P["y"], T["delta2"]
    W2 = P["W2"]
    yield ("dC/da doubled", {"a2": [n(u) for u in a2], "dC/da2[2]": n(2 * (a2[1] - y[1]))}, None, "dC/da2[2]",
           "∂C/∂a doubled", [])
    yield ("transposed index", {"a1": [n(u) for u in a1], "delta2": [n(u) for u in d2], "grad.W2[1][2]": n(a1[0] * d2[1])},
           None, "grad.W2[1][2]", "index transposed", [])
    yield ("W transposed", {"delta2": [n(u) for u in d2], "dC/da1[1]": n(W2[0] @ d2)}, None, "dC/da1[1]", "W2 transposed", [])
    yield ("sigma' missing in delta", {"dC/da1": [n(u) for u in T["dC/da1"]], "delta1[2]": n(T["dC/da1"][1])}, None,
           "delta1[2]", "σ′ factor da1/dz1[2] missing", [])
    # Mazur's own slip (FACTS.md): his second-round error updates W2 before the hidden gradients
    sig = lambda u: 1 / (1 + np.exp(-u))  # noqa: E731
    x, W1, b1, b2 = P["x"], P["W1"], P["b1"], P["b2"]
    W2n = W2 - 0.5 * np.outer(d2, a1)
    W1n = W1 - 0.5 * np.outer((W2n.T @ d2) * a1 * (1 - a1), x)
    out = sig(W2n @ sig(W1n @ x + b1) + b2)
    yield ("updates not simultaneous", {"new.loss": n(0.5 * ((out - y) ** 2).sum(), 9)}, None, "new.loss",
           "updates not simultaneous", [])


def _plants():
    seed_net = load(SEED)
    T = truth(seed_net, "adam") | truth(spec(seed_net, name="sgd", learning_rate=LR), "sgd")
    P = {k: v for k, v in seed_net.parameters.items()} | {"x": seed_net.x[0]}
    for case in _seed_plants(T, P):
        yield pytest.param("seed", *case[1:], id=case[0])
    T = truth(MAZUR, "sgd")
    P = dict(MAZUR.parameters) | {"x": MAZUR.x[0], "y": MAZUR.y[0]}
    for case in _mazur_plants(T, P):
        yield pytest.param("mazur", *case[1:], id=case[0])


@pytest.mark.parametrize("net_name, values, optimizer, label, phrase, carried", list(_plants()))
def test_planted_mistake_is_named(net_name, values, optimizer, label, phrase, carried):
    net = load(SEED) if net_name == "seed" else MAZUR
    results = run(net, values, optimizer)
    r = results[label]
    assert r.status == "wrong" and phrase in (r.diagnosis or ""), (r.given, r.expected, r.diagnosis)
    others = carried if isinstance(carried, dict) else dict.fromkeys(carried, "carried")
    for other, res in results.items():
        want = "wrong" if other == label else others.get(other, "ok")
        assert res.status == want, (other, res.status, res.given, res.expected)


def test_planted_mistake_in_the_mse_mean():
    net = Network.from_dict({
        "network": {"layers": [2, 2], "activations": ["identity"], "loss": "mse"},
        "parameters": {"W1": [[0.3, -0.2], [0.1, 0.4]], "b1": [0.1, -0.1]},
        "sample": {"x": [1.0, 2.0], "y": [0.5, -0.5]}})
    a = np.array(net.parameters["W1"]) @ net.x[0] + net.parameters["b1"]
    r = run(net, {"a1": [num(u) for u in a], "dC/da1": [num(2 * (u - t)) for u, t in zip(a, net.y[0])]})
    assert r["dC/da1[1]"].status == "wrong" and "1/n of the mean left out" in r["dC/da1[1]"].diagnosis


def test_optimizer_behaviour_follows_its_rules_not_its_name(monkeypatch, seed, seed_truth):
    """An optimizer under a new name with Adam's rules gets Adam's bias-correction line and names
    v, the state under its root, in its mistakes."""
    from dataclasses import replace
    monkeypatch.setitem(OPTIMIZERS, "renamed", replace(OPTIMIZERS["adam"], name="renamed"))
    from symbackprop.check.judge import conventions
    g = seed_truth["grad.W2"][0]
    values = {"grad.W2": [[num(u) for u in g]], "renamed.W2[1][1]": num(seed.parameters["W2"][0][0] - LR * g[0] / (g[0] ** 2 + EPS))}
    hand = parse_hand({"values": values}, seed)
    assert "renamed: learning_rate 0.1, beta1 0.9, beta2 0.999, eps 1e-08, bias correction on" in conventions(seed, hand)
    r = {r.label: r for r in check(seed, hand)}["renamed.W2[1][1]"]
    assert r.status == "wrong" and "divided by v + ε instead of √v + ε" in r.diagnosis, r.diagnosis


@pytest.mark.parametrize("like, loss_of, dC_da_of, loss_phrase, dC_da_phrase", [
    ("squared_error", lambda d: (d**2).sum() / 2, lambda d: d, "½(a − y)² used", "the 2 of d/da (a − y)² dropped"),
    ("half_squared_error", lambda d: (d**2).sum(), lambda d: 2 * d, "the ½ of ½(a − y)² left out", "∂C/∂a doubled"),
    ("mse", lambda d: (d**2).sum(), lambda d: 2 * d, "not divided by the number of outputs n", "1/n of the mean left out"),
], ids=["like-squared_error", "like-half_squared_error", "like-mse"])
def test_a_new_squared_loss_gets_the_squared_losses_mistakes(monkeypatch, like, loss_of, dC_da_of, loss_phrase, dC_da_phrase):
    """The catalogue reads the loss's term and scale from its registry entry, not its name."""
    from dataclasses import replace
    from symbackprop.entries.registry import LOSSES
    monkeypatch.setitem(LOSSES, "renamed", replace(LOSSES[like], name="renamed"))
    net = Network.from_dict({
        "network": {"layers": [2, 2], "activations": ["identity"], "loss": "renamed"},
        "parameters": {"W1": [[0.3, -0.2], [0.1, 0.4]], "b1": [0.1, -0.1]},
        "sample": {"x": [1.0, 2.0], "y": [0.5, -0.5]}})
    a = np.array(net.parameters["W1"]) @ net.x[0] + net.parameters["b1"]
    d = a - net.y[0]
    r = run(net, {"a1": [num(u) for u in a], "loss": num(loss_of(d)), "dC/da1[1]": num(dC_da_of(d)[0])})
    assert r["loss"].status == "wrong" and loss_phrase in r["loss"].diagnosis, r["loss"].diagnosis
    assert r["dC/da1[1]"].status == "wrong" and dC_da_phrase in r["dC/da1[1]"].diagnosis, r["dC/da1[1]"].diagnosis


def test_activation_names_in_mistakes_come_from_the_registry_latex(monkeypatch, seed):
    from dataclasses import replace
    from symbackprop.entries.registry import ACTIVATIONS
    monkeypatch.setitem(ACTIVATIONS, "logistic", replace(ACTIVATIONS["sigmoid"], name="logistic"))
    net = Network.from_dict({"network": {"layers": [1, 1], "activations": ["logistic"], "loss": "squared_error"},
                             "parameters": {"W1": [[0.5]], "b1": [0.0]}, "sample": {"x": [2], "y": [1]}})
    r = run(net, {"z1": "1", "a1": num(sigmoid(-1.0))})
    assert r["a1[1]"].diagnosis == "σ(−z) computed instead of σ(z)"


# ---------------------------------------------------------------------------------------------
# bad input: exit 2, one line naming the key
BAD_HANDS = [
    ("[values]\nfoo = 1\n", "values.foo: unknown quantity"),
    ("[values]\nz3 = [1]\n", "values.z3: unknown quantity"),
    ("[values]\nsdg.W2 = [[1.0, 2.0]]\n", "did you mean 'sgd.W2'"),
    ("[values]\nadam.s.W2 = [[1.0, 2.0]]\n", "values.adam.s.W2: unknown quantity"),
    ('[values]\n"grad.W2[2][1]" = 1.0\n', "values.grad.W2[2][1]: index out of range"),
    ('[values]\n"loss[1]" = 1.0\n', "values.loss[1]: index out of range"),
    ('[values]\n"grad.W2[a]" = 1.0\n', "values.grad.W2[a]: unknown quantity"),
    ("[values]\ngrad.W2 = [-0.0287, -0.0572]\n", "values.grad.W2: expected shape (1, 2), got 2 entries"),
    ("[values]\na1 = [0.29]\n", "values.a1: expected shape (2,), got 1 entries"),
    ("[values]\na1 = [[0.29], [0.57]]\n", "values.a1[1]: expected a number, got [0.29]"),
    ("[values]\na1 = 0.29\n", "values.a1: expected shape (2,), got 0.29"),
    ("[values]\nloss = [0.17]\n", "values.loss: expected a number, got [0.17]"),
    ('[values]\na2 = "abc"\n', "values.a2: expected a number, got 'abc'"),
    ('[values]\na2 = "0.5.1"\n', "values.a2: expected a number"),
    ("[values]\na2 = true\n", "values.a2: expected a number, got True"),
    ("[values]\na2 = nan\n", "values.a2: expected a finite number, got nan"),
    ("[values]\na2 = -inf\n", "values.a2: expected a finite number, got -inf"),
    ("[values]\na2 = 1979-05-27\n", "values.a2: expected a number"),
    ("[values]\na2 = {x = 1}\n", "values.a2.x: unknown quantity"),
    ('[values]\na1 = [0.29, 0.57]\n"a1[1]" = 0.29\n', "values.a1[1]: a1[1] given twice"),
    ('[values]\n"grad.b2" = -0.2\n[values.grad]\nb2 = -0.2\n', "values.grad.b2: grad.b2[1] given twice"),
    ("[value]\na1 = [0.29, 0.57]\n", "value: unknown table in the hand file"),
    ("[optimizer]\nname = 'sgd'\n", "values: missing table"),
    ("values = 3\n", "values: expected a table"),
    ("[values]\n", "values: no numbers given"),
    ("[values]\na1 = [\n", "invalid TOML"),
    ("[optimizer]\nlr = 0.1\n[values]\na2 = 0.5\n", "optimizer.lr: unknown key"),
    ("[optimizer]\nname = 'sdg'\n[values]\na2 = 0.5\n", "optimizer.name: unknown optimizer 'sdg'"),
    ("[optimizer]\nlearning_rate = -1.0\n[values]\na2 = 0.5\n", "optimizer.learning_rate: expected a number greater than 0"),
    ("[optimizer]\nbias_correction = 1\n[values]\na2 = 0.5\n", "optimizer.bias_correction: expected true or false"),
]


@pytest.mark.parametrize("text, message", BAD_HANDS, ids=[m for _, m in BAD_HANDS])
def test_bad_hand_is_refused_in_one_line(tmp_path, capsys, text, message):
    hand = tmp_path / "hand.toml"
    hand.write_text(text, encoding="utf-8")
    assert main(["check", SEED, str(hand)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("symbackprop check: error: ") and message in err, err


def test_bad_spec_or_missing_file_is_refused(tmp_path, capsys):
    hand = write_hand(tmp_path / "hand.toml", {"new.z2": "0.38"})
    bare = tmp_path / "bare.toml"
    bare.write_text('[network]\nlayers = [3, 2, 1]\nactivations = "sigmoid"\nloss = "squared_error"\n'
                    "[parameters]\nW1 = [[0.2, -0.5, 0.1], [-0.3, 0.4, 0.2]]\nb1 = [0.3, -0.1]\nW2 = [[0.5, 0.2]]\n"
                    "b2 = [0.1]\n[sample]\nx = [2, 3, -1]\ny = [1]\n", encoding="utf-8")
    batch = tmp_path / "batch.toml"      # 1,400 examples of 3 values each: past check's 4,000
    batch.write_text(bare.read_text().replace("x = [2, 3, -1]\ny = [1]", f"x = {[[2, 3, -1]] * 1400}\ny = {[[1]] * 1400}"),
                     encoding="utf-8")
    nonumbers = tmp_path / "nonumbers.toml"
    nonumbers.write_text('[network]\nlayers = [3, 2, 1]\nactivations = "sigmoid"\nloss = "squared_error"\n', encoding="utf-8")
    for args, message in [((str(bare), str(hand)), "values.new.z2: new.* is the forward pass after one optimizer step"),
                          ((str(batch), str(hand)), "sample.x: check is for hand-sized calculations: at most 4000 values"),
                          ((str(nonumbers), str(hand)), "check needs the spec's [parameters] and [sample]"),
                          ((SEED, str(tmp_path / "missing.toml")), "missing.toml: no such file"),
                          (("examples/mnist.toml", str(hand)), "check is for hand-sized networks")]:
        assert main(["check", *args]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err


def test_docstring_examples_run():
    import doctest
    import symbackprop.check.judge
    result = doctest.testmod(symbackprop.check.judge)
    assert result.attempted > 0 and result.failed == 0


# ---------------------------------------------------------------------------------------------
# [optimizer] train: the parameters a step changes
def test_seed_second_pass_with_train_is_carried_without_it_names_the_frozen_layer(seed):
    """The notes' second pass keeps the hidden layer (their hand file says train = ["W2", "b2"]):
    new.z2 then follows from their wrong W2 (carried). Updating every layer instead, their
    -0.9 still rounds the updated z1; written to the digits the notes imply (-0.90000), it is wrong
    with the diagnosis check gives today, and what follows is carried."""
    hand = load_hand(SEED_HAND, seed)
    assert hand.optimizer["train"] == ["W2", "b2"]
    results = {r.label: r for r in check(seed, hand)}
    assert results["new.z2[1]"].status == "carried" and results["new.z1[1]"].status == "ok"
    assert results["new.z1[1]"].expected == pytest.approx(-0.9, abs=1e-15)   # layer 1 not updated
    assert {k: r.status for k, r in results.items()} == SEED_STATUS
    every = {k: v for k, v in hand.optimizer.items() if k != "train"}
    for z1, status in ((["-0.9", "0.3"], "ok"), (["-0.90000", "0.30000"], "wrong")):
        values = {"grad.W2": [["-0.0287", "-0.0572"]], "grad.b2": "-0.199", "sgd.W2": [["0.50287", "0.20572"]],
                  "sgd.b2": "0.1199", "new.z1": z1, "new.a1": ["0.289", "0.574"], "new.z2": "0.383312"}
        r = run(seed, values, every)
        assert r["new.z1[1]"].status == status
        if status == "wrong":
            assert r["new.z1[1]"].diagnosis == "layer 1's weights and biases not updated (a step updates every layer)"
            assert r["new.a1[1]"].status == r["new.z2[1]"].status == "carried"
        trained = run(seed, values, {**every, "train": ["W2", "b2"]})
        assert trained["new.z1[1]"].status == "ok" and trained["new.z2[1]"].status == "carried"


def test_train_names_parameters(tmp_path, capsys, seed):
    for table, message in ((["W3"], "'W3' is not a parameter of this network (its parameters: W1, b1, W2, b2)"),
                           ("W2", "expected a list of parameter names"), (["W2", "W2"], "expected a list")):
        with pytest.raises(SpecError, match=f"optimizer.train: {re.escape(message)}"):
            Network.from_dict({"network": {"layers": [3, 2, 1], "activations": "sigmoid", "loss": "squared_error"},
                               "optimizer": {"train": table}})
        with pytest.raises(SpecError, match=re.escape(message)):
            parse_hand({"values": {"a2": "0.5"}, "optimizer": {"train": table}}, seed)
    T = truth(spec(seed, name="sgd", learning_rate=LR, train=["W2"]), "sgd")
    assert np.array_equal(T["sgd.b2"], seed.parameters["b2"]) and np.array_equal(T["sgd.W1"], seed.parameters["W1"])
    r = run(seed, {"sgd.b2": "0.1", "sgd.W2": [[num(x) for x in T["sgd.W2"][0]]], "adam.m.W1[1][1]": "0"},
            {"name": "sgd", "train": ["W2"]})
    assert {x.status for x in r.values()} == {"ok"}
