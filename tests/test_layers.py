"""Every layer kind, alone and in combinations: compiled gradients and the per-weight derivation
against central finite differences, for one example and a batch, and the routes against each other."""
import numpy as np
import pytest

from cases import BATCH_ONLY, GRAPHS, graph
from symbackprop.derive.derivation import Derivation
from symbackprop.derive.model import Model
from symbackprop.numeric.values import evaluate
from symbackprop.numeric.gradcheck import forward_pass, gradcheck

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



from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from symbackprop import Network  # noqa: E402


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(d=st.sampled_from([1, 2]), channels=st.integers(1, 2), size=st.integers(3, 6), kernel=st.integers(1, 3),
       stride=st.integers(1, 3), padding=st.integers(0, 2), pool=st.sampled_from([None, "max", "avg"]),
       norm=st.sampled_from([None, "batchnorm", "layernorm"]), seed=st.integers(0, 2**16))
def test_random_graphs_against_finite_differences(d, channels, size, kernel, stride, padding, pool, norm, seed):
    """Hypothesis over sizes, kernels, strides, paddings, a pooling and a normalization layer."""
    if kernel > size + 2 * padding:
        return
    layers = [dict(type=f"conv{d}d", channels=2, kernel=kernel, stride=stride, padding=padding, activation="tanh")]
    if norm:
        layers.append(dict(type=norm))
    if pool:
        layers.append(dict(type=f"{pool}pool{d}d", kernel=1 + (kernel - 1) % 2))
    layers += [dict(type="flatten"), dict(type="dense", units=2, activation="sigmoid")]
    try:
        net = Network.from_dict({"network": {"input": [channels] + [size] * d, "loss": "binary_cross_entropy"},
                                 "layer": layers})
    except Exception:        # a pool window larger than what the convolution left: refused, as it should be
        return
    rng = np.random.default_rng(seed)
    params = {k: (1.0 if k.startswith("gamma") else 0.0) + rng.normal(scale=0.6, size=s)
              for k, s in net.parameter_shapes().items()}
    X, Y = rng.normal(size=(3, *net.input)), rng.random((3, 2))
    grads = net.compile().gradients(params, X, Y)
    # h = 1e-5: a batch norm over nearly equal values (a padded border) amplifies h = 1e-6's rounding
    for check in gradcheck(net, grads, params, X, Y, h=1e-5):
        assert check.ok, check


def test_batch_norm_gradient_check_trap():
    """Σ BN(x) with β = 0 does not depend on x (the normalised values sum to 0), so its gradient is
    identically 0 — a gradient check on it passes whatever the rule. A loss that is not such a sum
    (squared error here) gives W1 a real gradient through μ and var, which must match."""
    from symbackprop.entries.layers.norm import norm_input_grad
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 3))
    mean, var = x.mean(0), x.var(0)
    rstd = 1 / np.sqrt(var + 1e-5)
    xhat = (x - mean) * rstd
    assert np.abs(norm_input_grad(np.ones_like(x), xhat, rstd, np.full(3, 2.0), (0,))).max() < 1e-12
    net = Network.from_dict({"network": {"input": [4], "loss": "squared_error"},
                             "layer": [dict(type="dense", units=3), dict(type="batchnorm")],
                             "parameters": {"W1": rng.normal(size=(3, 4)).tolist(), "b1": [0.1, 0.2, 0.3],
                                            "gamma2": [1.0, 0.5, 2.0], "beta2": [0.0, 0.0, 0.0]},
                             "sample": {"x": rng.normal(size=(5, 4)).tolist(), "y": rng.normal(size=(5, 3)).tolist()}})
    grads = net.compile().gradients(net.parameters, net.x, net.y)
    assert np.abs(grads["W1"]).max() > 1e-3
    np.testing.assert_allclose(grads["b1"], 0, atol=1e-12)     # a shift before batch norm is normalised away
    for check in gradcheck(net, grads, net.parameters, net.x, net.y):
        assert check.ok, check
