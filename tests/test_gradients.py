"""Every activation and loss: the chain-rule derivation against finite differences, single examples
and batches, and against sympy.diff of the whole expanded loss."""
import numpy as np
import pytest
import sympy

from cases import HIDDEN, OUTPUTS, combinations, network
from symbackprop.entries.registry import LOSSES
from symbackprop.derive.derivation import Derivation, expanded_gradient
from symbackprop.derive.model import Model
from symbackprop.numeric.values import evaluate
from symbackprop.numeric.gradcheck import finite_differences, gradcheck

CASES = combinations()
IDS = [f"{h}-{o}-{l}" for h, o, l in CASES]


@pytest.mark.parametrize("hidden,output,loss", CASES, ids=IDS)
@pytest.mark.parametrize("batch", [None, 4])
def test_chain_rule_matches_finite_differences(hidden, output, loss, batch):
    net = network(hidden, output, loss, batch=batch)
    values = evaluate(Derivation(Model(net)))
    fd = finite_differences(net, net.parameters, net.x, net.y)
    for name, grad in values.gradients.items():
        assert grad.shape == net.parameters[name].shape
        np.testing.assert_allclose(grad, fd[name], rtol=2e-6, atol=1e-8, err_msg=name)


# every activation, as hidden and as output layer, and every loss: once each (the expanded route is slow)
AGREEMENT = [(h, h, "squared_error") for h in HIDDEN] + [
    ("tanh", output, loss) for loss in LOSSES for output in OUTPUTS.get(loss, ["softmax"])]


@pytest.mark.parametrize("hidden,output,loss", AGREEMENT, ids=[f"{h}-{o}-{l}" for h, o, l in AGREEMENT])
def test_chain_rule_agrees_with_expanded_diff(hidden, output, loss):
    """Two derivation routes, compared at random points of their common domain."""
    net = network(hidden, output, loss, layers=(2, 2, 2))
    model = Model(net)
    d = Derivation(model)
    rng = np.random.default_rng(1)
    symbols = sorted(model.expanded_loss.free_symbols, key=lambda s: s.name)
    points = []
    for _ in range(3):
        point = {s: rng.normal() for s in symbols}
        if loss in ("binary_cross_entropy", "cross_entropy"):
            point.update({s: rng.uniform(0.05, 0.95) for s in model.y})
        points.append(point)
    for name, index, symbol in model.parameters():
        chain = d.chain_gradient(name, index)
        expanded = expanded_gradient(model, symbol)
        # the math module: Python's conditional expressions handle the nested Piecewise of relu nets
        f_chain = sympy.lambdify(symbols, chain, "math", cse=True)
        f_expanded = sympy.lambdify(symbols, expanded, "math", cse=True)
        for point in points:
            args = [point[s] for s in symbols]
            assert f_chain(*args) == pytest.approx(f_expanded(*args), rel=1e-10, abs=1e-13), (name, index)


def test_chain_and_expanded_are_equal_exactly_for_the_seed_net():
    """Exact proof on one net: replace each exp(...) by a fresh symbol, then cancel (FACTS.md)."""
    net = network("sigmoid", "sigmoid", "squared_error", layers=(2, 2, 1))
    model = Model(net)
    d = Derivation(model)
    for name, index, symbol in model.parameters():
        diff = d.chain_gradient(name, index) - expanded_gradient(model, symbol)
        exps = sorted(diff.atoms(sympy.exp), key=sympy.default_sort_key, reverse=True)
        replaced = diff.xreplace({e: sympy.Symbol(f"E{i}", positive=True) for i, e in enumerate(exps)})
        assert sympy.cancel(replaced) == 0, (name, index)


def test_relu_derivative_at_zero_is_zero_as_in_pytorch():
    from symbackprop.entries.registry import ACTIVATIONS, z
    assert ACTIVATIONS["relu"].derivative.subs(z, 0) == 0
    assert ACTIVATIONS["leaky_relu"].derivative.subs(z, 0) == sympy.Rational(1, 100)
    assert ACTIVATIONS["elu"].derivative.subs(z, 0) == 1


def test_batch_gradient_is_the_mean_of_per_example_gradients():
    net = network("tanh", "sigmoid", "binary_cross_entropy", batch=3)
    grads = evaluate(Derivation(Model(net))).gradients
    singles = [evaluate(Derivation(Model(network_row(net, i)))).gradients for i in range(3)]
    for name in grads:
        np.testing.assert_allclose(grads[name], np.mean([g[name] for g in singles], axis=0), rtol=1e-13)


def network_row(net, i):
    from symbackprop import Network
    return Network.from_dict({
        "network": {"layers": list(net.layers), "activations": [a.name for a in net.activations],
                    "loss": net.loss.name},
        "parameters": {k: v.tolist() for k, v in net.parameters.items()},
        "sample": {"x": net.x[i].tolist(), "y": net.y[i].tolist()}})


def test_the_checker_fails_a_planted_wrong_derivative():
    net = network("sigmoid", "sigmoid", "squared_error")
    grads = evaluate(Derivation(Model(net))).gradients
    assert all(c.ok for c in gradcheck(net, grads, net.parameters, net.x, net.y))
    for name in grads:
        planted = {k: v.copy() for k, v in grads.items()}
        planted[name].flat[0] *= 1.001
        checks = {c.param: c for c in gradcheck(net, planted, net.parameters, net.x, net.y)}
        assert not checks[name].ok and checks[name].index == np.unravel_index(0, grads[name].shape)
        assert all(c.ok for p, c in checks.items() if p != name)


def test_gradcheck_command_exit_status(tmp_path, capsys, monkeypatch):
    from symbackprop.cli import main
    from symbackprop.commands import gradcheck as command
    assert main(["gradcheck", "examples/seed.toml"]) == 0
    assert "all gradients agree" in capsys.readouterr().out
    real = command.derived_gradients

    def planted(network):
        routes = real(network)
        routes[0][1]["W2"][0, 1] *= 1.001
        return routes
    monkeypatch.setattr(command, "derived_gradients", planted)
    assert main(["gradcheck", "examples/seed.toml"]) == 1
    assert "FAIL" in capsys.readouterr().out
