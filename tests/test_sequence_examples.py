"""The two sequence examples: the 3-step RNN whose hand file holds one classic slip that ``check``
finds, and the "manual backprop" lecture's network, whose hand file's numbers are its backward pass."""
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest

from symbackprop import load
from symbackprop.cli import main
from symbackprop.spec.initial import with_numbers

ROOT = Path(__file__).resolve().parent.parent


def test_the_rnn_hand_files_slip_is_found_where_it_enters(capsys):
    assert main(["check", str(ROOT / "examples/rnn3.toml"), str(ROOT / "examples/rnn3-hand.toml")]) == 1   # 1: mistakes found
    out = capsys.readouterr().out
    rows = {m.group(1): (m.group(2), m.group(3)) for m in re.finditer(r"^(\S+)\s+\S+\s+\S+\s+(ok|wrong|carried)[ \t]*(.*)$",
                                                                      out, re.M)}
    for t in (1, 2):                           # step 3 has no step after it: its dC/dh is right
        for j in (1, 2):
            status, why = rows[f"dC/dh2[{t}][{j}]"]
            assert status == "wrong" and "the gradient from step t + 1 dropped" in why
            assert rows[f"dC/ds2[{t}][{j}]"][0] == "carried"
    assert rows["dC/dh2[3][1]"][0] == rows["dC/ds2[3][2]"][0] == "ok"
    assert all(rows[f"grad.W_hh2[{j}][{k}]"][0] == "carried" for j in (1, 2) for k in (1, 2))
    assert "65 numbers: 47 ok, 4 wrong, 14 carried" in out


def test_the_lecture_networks_hand_file_is_its_backward_pass():
    """Every number of makemore-hand.toml is the compiled functions' value to its 4 digits — and
    those agree with PyTorch's nn.Embedding, BatchNorm1d (training) and F.cross_entropy. (``check``
    verifies the same file by the per-weight route, in minutes: the command is in its header.)"""
    torch = pytest.importorskip("torch")
    net = with_numbers(load(ROOT / "examples/makemore.toml"), 0)
    f = net.compile()
    C, grads = f.loss_and_gradients(net.parameters, net.x, net.targets.astype(np.float64))
    p = {k: torch.tensor(v, requires_grad=True) for k, v in net.parameters.items()}
    emb = torch.nn.functional.embedding(torch.tensor(net.x).long(), p["E1"])
    z3 = emb.flatten(1) @ p["W3"].T + p["b3"]
    z3.retain_grad()
    h = torch.tanh(torch.nn.functional.batch_norm(z3, None, None, p["gamma4"], p["beta4"], training=True, eps=1e-5))
    logits = h @ p["W5"].T + p["b5"]
    logits.retain_grad()
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor(net.targets))
    loss.backward()
    assert float(C) == pytest.approx(loss.item(), rel=1e-12)
    for name, g in grads.items():
        np.testing.assert_allclose(g, p[name].grad.numpy(), rtol=1e-9, atol=1e-14, err_msg=name)
    truth = {"loss": float(C), "delta5": logits.grad.numpy(), "delta3": z3.grad.numpy(),
             **{f"grad.{k}": v for k, v in grads.items()}}
    hand = tomllib.loads((ROOT / "examples/makemore-hand.toml").read_text())["values"]
    compared = 0
    for key, value in hand.items():
        name, idx = re.fullmatch(r"([^\[]+)((?:\[\d+\])*)", key).groups()
        if name not in truth:
            continue
        at = tuple(int(i) - 1 for i in re.findall(r"\d+", idx))
        want = np.asarray(truth[name])[at] if at else np.asarray(truth[name])
        got = np.asarray(value, dtype=float)
        np.testing.assert_allclose(got, want, rtol=6e-4, atol=1e-9, err_msg=key)
        compared += got.size
    assert compared > 80
