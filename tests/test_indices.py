"""One index convention: everything a person reads or writes counts from 1 as the math does —
derive, explain, gradcheck, check's output and hand files (grad.W2[1][2] is the math's W²₁,₂).
Hand files of symbackprop 0.1, which counted from 0, are read as such when an index is 0, with a
deprecation note; JSON keeps plain (0-based) arrays."""
import json
import re

import numpy as np
import pytest

from symbackprop import backprop
from symbackprop.check.judge import DEPRECATED_ZERO_BASED, check, conventions, load_hand, parse_hand
from symbackprop.cli import main
from symbackprop.errors import SpecError
from symbackprop import load

SEED, SEED_HAND = "examples/seed.toml", "examples/seed-hand.toml"
W2 = backprop(SEED).gradients["W2"]            # (1, 2): the math's ∂C/∂W²₁,₁ and ∂C/∂W²₁,₂


def _written(x):
    return f"{x:.4g}"


def test_hand_files_are_1_based():
    net = load(SEED)
    hand = parse_hand({"values": {"grad.W2[1][2]": _written(W2[0, 1]), "grad.W2[1][1]": _written(W2[0, 0])}}, net)
    assert hand.notes == ()
    results = {r.label: r for r in check(net, hand)}
    assert results["grad.W2[1][2]"].status == results["grad.W2[1][1]"].status == "ok"
    assert results["grad.W2[1][2]"].expected == pytest.approx(W2[0, 1])
    # swapped, both are wrong: [1][2] is row 1, column 2
    swapped = parse_hand({"values": {"grad.W2[1][2]": _written(W2[0, 0])}}, net)
    assert [r.status for r in check(net, swapped)] == ["wrong"]


def test_an_index_past_the_end_names_the_convention():
    with pytest.raises(SpecError, match=r"values.grad.W2\[2\]\[1\]: index out of range .* count from 1"):
        parse_hand({"values": {"grad.W2[2][1]": "0.1"}}, load(SEED))


def test_0_based_hand_files_still_read_with_a_deprecation_note(tmp_path, capsys):
    net = load(SEED)
    old = parse_hand({"values": {"grad.W2[0][1]": _written(W2[0, 1]), "z1[1]": "0.3"}}, net)
    assert old.notes == (DEPRECATED_ZERO_BASED,)
    assert [(r.label, r.status) for r in check(net, old)] == [("z1[2]", "ok"), ("grad.W2[1][2]", "ok")]
    assert DEPRECATED_ZERO_BASED in conventions(net, old)
    hand = tmp_path / "old.toml"
    hand.write_text(f'[values]\n"grad.W2[0][1]" = {_written(W2[0, 1])}\n', encoding="utf-8")
    assert main(["check", SEED, str(hand)]) == 0
    assert "indices read as 0-based" in capsys.readouterr().out
    assert main(["check", SEED, str(hand), "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert "deprecated" in captured.err and json.loads(captured.out)[0]["index"] == [0, 1]


def test_the_seed_hand_file_has_1_based_comments():
    text = open(SEED_HAND, encoding="utf-8").read()
    assert "W2[1][2]" in text and "0-based" not in text
    assert load_hand(SEED_HAND, load(SEED)).notes == ()


def test_every_command_prints_1_based_indices(capsys):
    assert main(["derive", SEED]) == 0
    derive = capsys.readouterr().out
    assert "dC/dW2[1,2]" in derive and not re.search(r"\w\[(0|\d+,0)[\],]", derive)
    assert main(["gradcheck", SEED]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:-1]]
    assert {row[3] for row in rows} <= {"[1]", "[2]", "[1,1]", "[1,2]", "[1,3]", "[2,1]", "[2,2]", "[2,3]"}
    assert main(["check", SEED, SEED_HAND]) == 1
    labels = [line.split()[0] for line in capsys.readouterr().out.splitlines() if re.match(r"\S+\[", line)]
    assert "z1[1]" in labels and "grad.W2[1][2]" in labels and not any("[0]" in x for x in labels)
    assert main(["explain", SEED]) == 0
    explain = capsys.readouterr().out
    assert "W^{(2)}_{1,2}" in explain and "_{0" not in explain and ",0}" not in explain


def test_diagnoses_name_elements_1_based():
    net = load(SEED)
    v = backprop(SEED).values
    a1 = np.asarray(v.forward["a1"])
    delta2 = float(v.env[next(s.symbol for s in backprop(SEED).derivation.steps if s.kind == "delta" and s.layer == 2)][0])
    # the wrong input: a1[1] used for a1[2] in ∂C/∂W²₁,₂
    hand = parse_hand({"values": {"a1": [_written(u) for u in a1], "delta2": _written(delta2),
                                  "grad.W2[1][2]": _written(a1[0] * delta2)}}, net)
    wrong = [r for r in check(net, hand) if r.status == "wrong"]
    assert [r.label for r in wrong] == ["grad.W2[1][2]"] and "a1[1] used in place of a1[2]" in wrong[0].diagnosis
