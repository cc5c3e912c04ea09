"""Numbers for a spec without [parameters] or [sample] (issue 10, item 1), and gradcheck at a kink
(item 4)."""
import json
import pathlib

import numpy as np
import pytest

from symbackprop.cli import main
from symbackprop.codegen.trainer import render
from symbackprop.spec.initial import draw_parameters, draw_sample, with_numbers
from symbackprop import load
from test_generate import load_trainer

SPECS = ["examples/xor.toml", "examples/mnist.toml", "examples/cnn.toml", "examples/residual.toml", "examples/lenet.toml"]


@pytest.mark.parametrize("spec", SPECS)
def test_drawn_parameters_are_a_trainer_s_init_params(spec, tmp_path):
    net = load(spec)
    trainer = load_trainer(render(net), tmp_path)
    for seed in (0, 7):
        theirs, mine = trainer.init_params(seed), draw_parameters(net, seed)
        assert set(theirs) == set(mine)
        for name in mine:
            assert np.array_equal(theirs[name], mine[name]), (spec, seed, name)


def test_drawn_targets_are_in_the_loss_s_domain():
    for spec, check in (("examples/mnist.toml", lambda y: np.all(y.sum(1) == 1) and set(np.unique(y)) <= {0, 1}),
                        ("examples/xor.toml", lambda y: set(np.unique(y)) <= {0.0, 1.0}),
                        ("examples/seed.toml", lambda y: True)):
        x, y = draw_sample(load(spec), 3)
        assert x.shape == (4, *load(spec).input) and check(y), spec


def test_gradcheck_draws_what_is_missing_and_says_so(capsys):
    assert main(["gradcheck", "examples/mnist.toml", "--init", "3"]) == 0
    first = capsys.readouterr().err.splitlines()[0]
    assert first.startswith("symbackprop gradcheck: note: drew the parameters as a generated trainer's "
                            "init_params(3)") and "sample of 4" in first and first.endswith("(--init 3)")
    assert main(["gradcheck", "examples/cnn.toml"]) == 0           # a batch-norm CNN: seed 0 by default
    assert "init_params(0)" in capsys.readouterr().err.splitlines()[0]


@pytest.mark.parametrize("command", [["derive"], ["explain"], ["check", "examples/seed-hand.toml"]])
def test_commands_that_need_numbers_name_the_flag(command, capsys):
    argv = [command[0], "examples/xor.toml", *command[1:]]
    if command[0] == "derive":         # derive works without numbers; --init adds them
        assert main(argv) == 0 and "≈" not in capsys.readouterr().out
        assert main([*argv, "--init", "2"]) == 0
        out, err = capsys.readouterr()
        assert "≈" in out and "init_params(2)" in err
        return
    assert main(argv) == 2
    assert "--init SEED" in capsys.readouterr().err
    if command[0] == "explain":
        assert main([*argv, "--init", "0"]) == 0
        assert "init_params(0)" in capsys.readouterr().err


def test_with_numbers_keeps_what_the_spec_gave():
    net = load("examples/xor.toml")          # a sample, no parameters
    drawn = with_numbers(net, 1)
    assert np.array_equal(drawn.x, net.x) and drawn.parameters is not None


KINK = {"network": {"layers": [2, 3, 1], "activations": ["relu", "identity"], "loss": "squared_error"},
        "parameters": {"W1": [[1.0, -1.0], [0.5, 0.5], [-1.0, 2.0]], "b1": [0.0, 0.1, 0.0],
                       "W2": [[1.0, 2.0, -1.0]], "b2": [0.0]},
        "sample": {"x": [1.0, 1.0], "y": [2.0]}}


def test_gradcheck_at_a_kink_says_so_and_passes(tmp_path, capsys):
    """z1[1] = 1 - 1 = 0 exactly: relu's kink. Finite differences see the average of both sides
    (relative error 1 on the elements that feed it); that is the convention, not a wrong rule."""
    spec = tmp_path / "kink.json"
    spec.write_text(json.dumps(KINK))
    assert main(["gradcheck", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "z1[1] = 0 is relu's kink at 0: the derivative there is a convention (0), finite differences see both sides" in out
    assert "FAIL" not in out and "at kinks" in out


def test_a_wrong_gradient_beside_a_kink_still_fails():
    from symbackprop import Network
    from symbackprop.numeric.gradcheck import gradcheck
    net = Network.from_dict(KINK)
    grads = net.compile().gradients(net.parameters, net.x, net.y)
    grads["W1"][2, 0] *= 1.001           # an element no kink explains
    checks = {c.param: c for c in gradcheck(net, grads, net.parameters, net.x, net.y)}
    assert not checks["W1"].ok and checks["W1"].index == (2, 0) and checks["W1"].kinks


TIE = {"network": {"input": [1, 3, 3], "loss": "squared_error"},
       "layer": [{"type": "conv2d", "channels": 1, "kernel": 2}, {"type": "maxpool2d", "kernel": 2},
                 {"type": "flatten"}, {"type": "dense", "units": 1, "activation": "sigmoid"}],
       "parameters": {"W1": [[[[1.0, 0.0], [0.0, 0.0]]]], "b1": [0.1], "W4": [[0.6]], "b4": [0.2]},
       "sample": {"x": [[[1, 1, 0], [0, 0, 0], [0, 0, 0]]], "y": [1]}}


def test_gradcheck_at_a_max_pool_tie_says_so_and_passes(tmp_path, capsys):
    """z1 = [[1.1, 1.1], [0.1, 0.1]]: the window's maximum is tied. Moving W1[1,1,1,2] by ±h moves
    only z1[1,1,2], so the central difference sees half the slope of the winner's side; the
    derived gradient is PyTorch's convention (all to the first maximum), not a wrong rule."""
    spec = tmp_path / "tie.json"
    spec.write_text(json.dumps(TIE))
    assert main(["gradcheck", str(spec)]) == 0
    out = capsys.readouterr().out
    assert ("W1: a2[1,1,1] = 1.1 is the maximum of a window whose elements tie (to within the step): the "
            "gradient goes to the first in row-major order, as PyTorch's; finite differences see both sides") in out
    assert "FAIL" not in out and "at kinks" in out


def test_a_tie_sent_to_the_wrong_element_still_fails():
    """The tie explains only the elements whose difference straddles it: W1[1,1,1,1] moves both tied
    elements together and is compared as usual."""
    from symbackprop import Network
    from symbackprop.numeric.gradcheck import gradcheck
    net = Network.from_dict(TIE)
    grads = net.compile().gradients(net.parameters, net.x, net.y)
    grads["W1"][0, 0, 0, 0] *= 1.001
    checks = {c.param: c for c in gradcheck(net, grads, net.parameters, net.x, net.y)}
    assert not checks["W1"].ok and checks["W1"].index == (0, 0, 0, 0)
