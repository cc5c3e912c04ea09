"""The sequence kinds against PyTorch in float64 (nn.Embedding, nn.RNN, nn.LSTM, nn.GRU and
F.cross_entropy with class indices and ignore_index): the loss and every gradient, by the compiled
functions of both backends and by the per-weight route, over hypothesis-drawn vocabularies, sizes,
lengths and batches — every example's ids with a repeat."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from symbackprop import Network
from symbackprop.derive.derivation import Derivation
from symbackprop.derive.model import Model
from symbackprop.numeric.values import evaluate
from test_layers_torch import torch_loss_and_grads

torch = pytest.importorskip("torch")


def sequence_net(kind, vocab, dim, hidden, steps, batch, ret, seed, ignore=None, nonlinearity="tanh"):
    """embedding -> kind (or nothing) -> dense -> softmax, class-index targets (some ``ignore``d)."""
    rng = np.random.default_rng(seed)
    layers = [dict(type="embedding", vocab=vocab, dim=dim)]
    if kind is not None:
        extra = {"nonlinearity": nonlinearity} if kind == "rnn" else {}
        layers.append(dict(type=kind, hidden=hidden, **{"return": ret}, **extra))
    layers.append(dict(type="dense", units=vocab, activation="softmax"))
    net = {"input": [steps], "loss": "cross_entropy"}
    if ignore is not None:
        net["ignore_index"] = ignore
    bare = Network.from_dict({"network": net, "layer": layers})
    ids = rng.integers(0, vocab, size=(batch, steps))
    ids[:, -1] = ids[:, 0]                                   # a repeated id in every example
    shape = (batch, *bare.output_shape[:-1])
    y = rng.integers(0, vocab, size=shape)
    if ignore is not None:
        y.ravel()[:: 3] = ignore                              # every third target left out of the mean
        y.ravel()[1] = 0
    params = {k: rng.normal(scale=0.7, size=s).tolist() for k, s in bare.parameter_shapes().items()}
    return Network.from_dict({"network": net, "layer": layers, "parameters": params,
                              "sample": {"x": ids.tolist(), "y": y.tolist()}})


def agree(net, per_weight=True):
    loss, theirs, _ = torch_loss_and_grads(net, net.parameters, net.x, net.y, {})
    for backend in ("numpy", "torch"):
        C, grads = net.compile(backend=backend).loss_and_gradients(net.parameters, net.x, net.targets.astype(np.float64))
        assert float(C) == pytest.approx(loss, rel=1e-12), backend
        for name, g in grads.items():
            np.testing.assert_allclose(np.asarray(g), theirs[name], rtol=1e-9, atol=1e-13, err_msg=f"{backend} {name}")
    if per_weight:
        values = evaluate(Derivation(Model(net)))
        assert values.loss == pytest.approx(loss, rel=1e-12)
        for name, g in values.gradients.items():
            np.testing.assert_allclose(g, theirs[name], rtol=1e-9, atol=1e-13, err_msg=f"per-weight {name}")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from([None, "rnn", "lstm", "gru"]), vocab=st.integers(2, 7), dim=st.integers(1, 4),
       hidden=st.integers(1, 4), steps=st.integers(2, 6), batch=st.integers(1, 4),
       ret=st.sampled_from(["sequence", "last"]), nonlinearity=st.sampled_from(["tanh", "relu"]),
       seed=st.integers(0, 2**16))
def test_every_sequence_kind_agrees_with_pytorch_over_sizes(kind, vocab, dim, hidden, steps, batch, ret, nonlinearity, seed):
    agree(sequence_net(kind, vocab, dim, hidden, steps, batch, ret, seed, nonlinearity=nonlinearity), per_weight=False)


@pytest.mark.parametrize("kind", [None, "rnn", "lstm", "gru"])
def test_ignore_index_is_left_out_of_the_mean_as_pytorch(kind):
    """Every third target is the ignored class 2: the mean is over the others, by every route."""
    net = sequence_net(kind, 4, 2, 2, 3, 2, "sequence", seed=7, ignore=2)
    assert 0 < np.count_nonzero(net.targets == 2) < net.targets.size
    agree(net)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_the_per_weight_route_agrees_with_pytorch_for_a_last_step_output(kind):
    agree(sequence_net(kind, 3, 2, 2, 3, 2, "last", seed=1))


def test_a_negative_ignore_index_as_pytorch_default():
    net = sequence_net("rnn", 3, 2, 2, 4, 2, "sequence", seed=4, ignore=-100)
    agree(net)


def test_repeated_ids_sum_their_rows_gradients():
    """One example of the same id three times: E's row for it gets the sum of the three positions'
    gradients (a scatter-add), the other rows 0."""
    from symbackprop.entries.layers.embedding import embedding_grad
    delta = np.arange(6.0).reshape(1, 3, 2)
    grad = embedding_grad(np.array([[2.0, 2.0, 2.0]]), delta, 4)
    np.testing.assert_array_equal(grad, [[0, 0], [0, 0], [6, 9], [0, 0]])
    E = torch.zeros(4, 2, dtype=torch.float64, requires_grad=True)
    (torch.nn.functional.embedding(torch.tensor([[2, 2, 2]]), E) * torch.tensor(delta)).sum().backward()
    np.testing.assert_array_equal(grad, E.grad.numpy())
