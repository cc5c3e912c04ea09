"""Every layer kind, alone and in combinations: compiled gradients and the per-weight derivation
against central finite differences, for one example and a batch, and the routes against each other."""
import numpy as np
import pytest

from cases import BATCH_ONLY, GRAPHS, graph
from symbackprop.derive import Derivation
from symbackprop.model import Model
from symbackprop.numeric import evaluate
from symbackprop.verify import forward_pass, gradcheck

CASES = [(name, batch) for name in GRAPHS for batch in ((3,) if name in BATCH_ONLY else (None, 3))]
IDS = [f"{name}-{'batch' if batch else 'single'}" for name, batch in CASES]


@pytest.mark.parametrize("name, batch", CASES, ids=IDS)
def test_compiled_gradients_match_finite_differences(name, batch):
    net = graph(name, batch)
    f = net.compile()
    C, grads = f.loss_and_gradients(net.parameters, net.x, net.y, **_masks(net))
    assert set(grads) == set(net.parameter_shapes())
    for check in gradcheck(net, grads, net.parameters, net.x, net.y):
        assert check.ok, check


@pytest.mark.parametrize("name, batch", CASES, ids=IDS)
def test_per_weight_route_agrees_with_the_compiled_one(name, batch):
    net = graph(name, batch)
    values = evaluate(Derivation(Model(net)))
    C, grads = net.compile().loss_and_gradients(net.parameters, net.x, net.y, **_masks(net))
    assert values.loss == pytest.approx(float(C), rel=1e-10)
    for pname, g in grads.items():
        np.testing.assert_allclose(values.gradients[pname], g, rtol=1e-8, atol=1e-12, err_msg=pname)
    plain = forward_pass(net, net.parameters, net.x)
    for key, value in plain.items():      # every layer's forward values, three ways
        np.testing.assert_allclose(values.forward[key], value if batch else value[0], rtol=1e-10, atol=1e-12,
                                   err_msg=key)


def _masks(net):
    return {"masks": net.masks} if net.masks else {}


def test_a_weight_read_at_every_position_sums_over_them():
    """A conv weight's chain-rule product is a sum over the output positions it touched."""
    net = graph("conv2d", None)
    d = Derivation(Model(net))
    step = d.gradient("W1", (0, 0, 1, 1))   # the kernel's centre: every one of the 3x3 positions
    assert len(step.terms) == 9
    assert all(term[-1].label.startswith(r"\delta^{(1)}") for term in step.terms)
    corner = d.gradient("W1", (0, 0, 0, 0))  # the top-left tap misses the padding at the first row and column
    assert len(corner.terms) == 4


def test_a_residual_input_gets_both_paths():
    net = graph("add", None)
    d = Derivation(Model(net))
    first = [s for s in d.steps if s.kind == "dC/da" and s.layer == 1]
    assert first and all(len(s.terms) == 3 + 1 for s in first)   # 3 from dense 2, 1 from the add

