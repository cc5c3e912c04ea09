"""The hand files the worksheet page is driven with, grouped by the network each is checked on.

Each :class:`Sheet` is one page: a network, the quantities asked, and hands to type into it — the
example hand files, every planted mistake of tests/test_check.py and tests/test_check_layers.py,
and for each network the true numbers (6 digits), the true numbers rounded to 2 digits, and the
true numbers with random errors. A hand is {(quantity, 0-based index): text as typed}.
"""
import random
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from symbackprop import Network, load  # noqa: E402
from symbackprop.check.hand import parse_hand, quantities  # noqa: E402
from symbackprop.check.judge import _Checker, _expected  # noqa: E402
from symbackprop.exercise.judging import boxes, check_graph  # noqa: E402

GENERIC_UP_TO = 300     # numbers in a step: larger sheets get their planted hands only (the test's time)


@dataclass
class Sheet:
    name: str
    network: Network
    hands: list = field(default_factory=list)      # (id, {(quantity, index): text})
    spec: str | None = None                         # the spec's path, where the network is a file's

    def asked(self) -> list[str]:
        """Every quantity a hand names, in the order hand files list them."""
        names = {q for _, hand in self.hands for q, _ in hand}
        return [q for q in quantities(self.network) if q in names]


def hand_of(network, values: dict) -> dict:
    """A [values] table as typed numbers by element."""
    return {key: w.text for key, w in parse_hand({"values": values}, network).values.items()}


def with_optimizer(path: str, table: dict | None) -> Network:
    """The spec at ``path`` with ``table`` merged over its [optimizer] (as check merges a hand's)."""
    if not table:
        return load(path)
    spec = tomllib.loads((HERE.parent / path).read_text())
    spec["optimizer"] = {**spec.get("optimizer", {}), **table}
    return Network.from_dict(spec, path)


def _true_hands(sheet: Sheet, asked: list[str], rng: random.Random) -> None:
    """The true numbers of ``asked`` in 6 digits, rounded to 2, and with three random errors."""
    graph = check_graph(sheet.network, asked)
    if len(graph.order) > GENERIC_UP_TO:
        return
    base = _Checker(graph).baseline()
    exact = {(q, idx): _expected(base.shown.get(s), base.exact[s]) for q, _, els in boxes(sheet.network, graph, asked)
             for idx, s in els}
    six = {k: f"{v:.5e}" for k, v in exact.items()}
    sheet.hands.append(("true", six))
    sheet.hands.append(("rounded", {k: f"{v:.1e}" for k, v in exact.items()}))
    for n in range(1):
        wrong = dict(six)
        for key in rng.sample(sorted(wrong), min(3, len(wrong))):
            v = exact[key]
            wrong[key] = rng.choice([f"{-v:.4g}", f"{v * 1.1 + 0.01:.4g}", f"{v / 2:.3g}", f"{v + 1:.4g}"])
        sheet.hands.append((f"random errors {n + 1}", wrong))


def sheets() -> list[Sheet]:
    import test_check as tc
    import test_check_layers as tl
    rng = random.Random(23)
    out: dict = {}

    def sheet(key, network, name) -> Sheet:
        if key not in out:
            out[key] = Sheet(name, network)
        return out[key]

    # the example hand files
    for spec, hand_path in [("examples/seed.toml", "examples/seed-hand.toml"),
                            ("examples/cnn-exercise.toml", "examples/cnn-exercise-hand.toml"),
                            ("examples/batchnorm.toml", "examples/batchnorm-hand.toml"),
                            ("examples/rnn3.toml", "examples/rnn3-hand.toml"),
                            ("examples/attention.toml", "examples/attention-hand.toml")]:
        table = tomllib.loads((HERE.parent / hand_path).read_text()).get("optimizer")
        net = with_optimizer(spec, table)
        values = tomllib.loads((HERE.parent / hand_path).read_text(), parse_float=str)["values"]
        s = sheet((spec, str(table)), net, f"{spec} + {hand_path}")
        s.spec = spec
        s.hands.append((hand_path, hand_of(net, values)))
    # test_check's plants on the seed network and Mazur's
    for p in tc._plants():
        net_name, values, optimizer, label = p.values[:4]
        path = tc.SEED if net_name == "seed" else "examples/mazur.toml"
        net = with_optimizer(path, optimizer)
        s = sheet((path, str(optimizer)), net, f"{path} {optimizer or ''}")
        s.hands.append((p.id, hand_of(net, values)))
    # test_check_layers' plants: conv, pools, batch and layer norm, dropout, add (residual), batches
    for p in tl._plants():
        net, values = p.values[:2]
        s = sheet(id(net), net, p.id)
        s.hands.append((p.id, hand_of(net, {k: tl.written(v) for k, v in values.items()})))
    # a max-pool tie: either routing, a split, and all of it to both
    net, g = tl.tied_network()
    s = sheet("tie", net, "max-pool tie")
    t = tl.text
    for name, rows in [("first", [[g, 0], [0, 0]]), ("second", [[0, g], [0, 0]]), ("split", [[g / 2, g / 2], [0, 0]]),
                       ("both", [[g, g], [0, 0]]), ("double", [[2 * g, 0], [0, 0]])]:
        s.hands.append((f"tie {name}", hand_of(net, {"dC/da1": [[[t(v) for v in row] for row in rows]]})))
    # a saturated step: float intervals only bound it (1 − σ(1000) is 0 in floats), check's exact
    # values come from arbitrary precision, and what no number of the person's feeds is exact
    net = Network.from_dict({"network": {"layers": [1, 2, 1], "activations": ["relu", "sigmoid"],
                                         "loss": "binary_cross_entropy"},
                             "parameters": {"W1": [[2.0], [-1.0]], "b1": [0.5, 0.5], "W2": [[400.0, 3.0]], "b2": [0.0]},
                             "sample": {"x": [1], "y": [0]}, "optimizer": {"name": "sgd", "learning_rate": 0.001}})
    s = sheet("saturated", net, "saturated sigmoid")
    s.hands.append(("saturated loss", hand_of(net, {"z2": "1000", "loss": "1000", "grad.W2": [["2.5", "0"]],
                                                    "sgd.W2": [["399.9975", "3"]], "new.loss": "999.99"})))
    for s in out.values():
        asked = s.asked()
        _true_hands(s, asked, rng)
    return list(out.values())
