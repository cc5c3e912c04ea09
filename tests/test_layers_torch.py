"""PyTorch as a second, independent route: every layer kind's forward values and gradients against
torch.nn.functional and autograd (float64), over the case table and over hypothesis-drawn sizes,
kernels, strides and paddings; max-pool ties and batch-norm running statistics as PyTorch has them."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from cases import BATCH_ONLY, GRAPHS, graph
from symbackprop import Network

torch = pytest.importorskip("torch")
F = torch.nn.functional

ACTIVATIONS = {"identity": lambda z: z, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": F.relu,
               "leaky_relu": lambda z: F.leaky_relu(z, 0.01), "softplus": F.softplus, "elu": F.elu,
               "silu": F.silu, "gelu": F.gelu, "softmax": lambda z: torch.softmax(z, dim=1)}
LOSSES = {"squared_error": lambda a, y: ((a - y) ** 2).sum(-1), "half_squared_error": lambda a, y: 0.5 * ((a - y) ** 2).sum(-1),
          "mse": lambda a, y: ((a - y) ** 2).mean(-1),
          "binary_cross_entropy": lambda a, y: -(y * torch.log(a) + (1 - y) * torch.log(1 - a)).sum(-1),
          "cross_entropy": lambda a, y: -(y * torch.log(a)).sum(-1)}
RECURRENT = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}


def torch_layer(layer, x, p, masks, values):
    """One layer by PyTorch's own functions (the test's oracle: it names the kinds)."""
    kind, opt, i = layer.kind.name, layer.opt, layer.index
    if kind == "dense":
        return x @ p[f"W{i}"].T + p[f"b{i}"]
    if kind.startswith("conv"):
        return getattr(F, kind)(x, p[f"W{i}"], p[f"b{i}"], stride=opt["stride"], padding=opt["padding"])
    if kind.startswith("maxpool"):
        return getattr(F, f"max_pool{kind[-2:]}")(x, opt["kernel"], opt["stride"])
    if kind.startswith("avgpool"):
        return getattr(F, f"avg_pool{kind[-2:]}")(x, opt["kernel"], opt["stride"])
    if kind == "flatten":
        return torch.flatten(x, 1)
    if kind == "batchnorm":
        return F.batch_norm(x, None, None, p[f"gamma{i}"], p[f"beta{i}"], training=True, eps=opt["eps"])
    if kind == "layernorm":
        return F.layer_norm(x, x.shape[-1:] if opt["over"] == "last" else x.shape[1:], p[f"gamma{i}"], p[f"beta{i}"],
                            eps=opt["eps"])
    if kind == "dropout":
        return x * torch.tensor(masks[f"M{i}"]) / (1 - opt["rate"])
    if kind == "add":
        return x + values[opt["from"]]
    if kind == "embedding":
        return torch.nn.functional.embedding(x.long(), p[f"E{i}"])
    if kind in RECURRENT:       # PyTorch's module, its parameters the spec's (autograd reaches them through the copies)
        extra = {"nonlinearity": opt["nonlinearity"]} if kind == "rnn" else {}
        module = RECURRENT[kind](x.shape[-1], opt["hidden"], batch_first=True, **extra).double()
        for ours, theirs in (("W_ih", "weight_ih_l0"), ("W_hh", "weight_hh_l0"), ("b_ih", "bias_ih_l0"), ("b_hh", "bias_hh_l0")):
            delattr(module, theirs)
            setattr(module, theirs, p[f"{ours}{i}"])
        module._flat_weights = [getattr(module, name) for name in module._flat_weights_names]
        h = module(x)[0]
        return h if opt["return"] == "sequence" else h[:, -1]
    if kind == "posembed":
        return x + p[f"P{i}"][:x.shape[1]]
    if kind == "attention":
        return torch_attention(x, opt, {s: p.get(f"{s}{i}") for s in ("Wq", "Wk", "Wv", "Wo", "bq", "bk", "bv", "bo")})
    raise AssertionError(kind)


def torch_attention(x, opt, p):
    """nn.MultiheadAttention(d, heads, batch_first=True) with our weights copied into its layout
    (in_proj_weight = Wq, Wk, Wv stacked; out_proj = Wo, bo), run functionally so that autograd
    reaches our tensors; the causal mask as a boolean attn_mask (True: masked)."""
    n, t, d = x.shape
    mha = torch.nn.MultiheadAttention(d, opt["heads"], batch_first=True, bias=opt["bias"], dtype=torch.float64)
    with torch.no_grad():           # the layout itself: our stacked weights load into the module
        mha.in_proj_weight.copy_(torch.cat([p["Wq"], p["Wk"], p["Wv"]]))
        mha.out_proj.weight.copy_(p["Wo"])
        if opt["bias"]:
            mha.in_proj_bias.copy_(torch.cat([p["bq"], p["bk"], p["bv"]]))
            mha.out_proj.bias.copy_(p["bo"])
    in_w = torch.cat([p["Wq"], p["Wk"], p["Wv"]])
    in_b = torch.cat([p["bq"], p["bk"], p["bv"]]) if opt["bias"] else None
    mask = torch.ones(t, t, dtype=torch.bool).triu(1) if opt["causal"] else None
    xt = x.transpose(0, 1)
    out, _ = F.multi_head_attention_forward(xt, xt, xt, d, opt["heads"], in_w, in_b, None, None, False, 0.0,
                                            p["Wo"], p["bo"], training=False, attn_mask=mask, need_weights=False)
    module_out, _ = mha(x.detach(), x.detach(), x.detach(), attn_mask=mask, need_weights=False)
    np.testing.assert_allclose(module_out.detach().numpy(), out.transpose(0, 1).detach().numpy(), rtol=1e-12, atol=1e-12)
    return out.transpose(0, 1)


def torch_loss_and_grads(net, params, X, Y, masks):
    p = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
    values = {0: torch.tensor(X)}
    for layer in net.graph:
        z = torch_layer(layer, values[layer.sources[0]], p, masks, values)
        values[layer.index] = ACTIVATIONS[layer.activation.name](z)
    if net.targets is not None:       # class indices: F.cross_entropy on the flattened (N·T, V) logits
        loss = F.cross_entropy(z.reshape(-1, z.shape[-1]), torch.tensor(net.targets).reshape(-1),
                               ignore_index=-100 if net.ignore_index is None else net.ignore_index)
    else:
        loss = LOSSES[net.loss.name](values[net.depth], torch.tensor(Y)).mean()
    loss.backward()
    return float(loss.detach()), {k: v.grad.numpy() for k, v in p.items()}, {k: v.detach().numpy() for k, v in values.items()}


CASES = [(name, batch) for name in GRAPHS for batch in ((4,) if name in BATCH_ONLY else (None, 4))]


@pytest.mark.parametrize("name, batch", CASES, ids=[f"{n}-{b or 1}" for n, b in CASES])
def test_every_layer_kind_agrees_with_pytorch(name, batch):
    net = graph(name, batch, seed=3)
    masks = {"masks": net.masks} if net.masks else {}
    loss, theirs, _ = torch_loss_and_grads(net, net.parameters, net.x, net.y, net.masks or {})
    targets = [net.y] if net.targets is None else [net.y, net.targets.astype(np.float64)]   # one-hot rows, and the indices
    for Y in targets:
        C, grads = net.compile().loss_and_gradients(net.parameters, net.x, Y, **masks)
        assert float(C) == pytest.approx(loss, rel=1e-12)
        for pname, g in grads.items():
            np.testing.assert_allclose(g, theirs[pname], rtol=1e-9, atol=1e-13, err_msg=pname)


def _conv_net(d, channels, size, out_channels, kernel, stride, padding, pool):
    layers = [dict(type=f"conv{d}d", channels=out_channels, kernel=kernel, stride=stride, padding=padding,
                   activation="tanh")]
    if pool:
        layers.append(dict(type=f"{pool}pool{d}d", kernel=1 + (kernel - 1) % 2, stride=1 + stride % 2))
    layers += [dict(type="flatten"), dict(type="dense", units=2)]
    return {"network": {"input": [channels] + [size] * d, "loss": "mse"}, "layer": layers}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(d=st.sampled_from([1, 2]), channels=st.integers(1, 3), size=st.integers(3, 7), out_channels=st.integers(1, 3),
       kernel=st.integers(1, 4), stride=st.integers(1, 3), padding=st.integers(0, 2),
       pool=st.sampled_from([None, "max", "avg"]), batch=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_convolution_and_pooling_over_sizes_kernels_strides_and_paddings(d, channels, size, out_channels, kernel,
                                                                       stride, padding, pool, batch, seed):
    if kernel > size + 2 * padding:
        return
    spec = _conv_net(d, channels, size, out_channels, kernel, stride, padding, pool)
    try:
        net = Network.from_dict(spec)
    except Exception:           # the pool window larger than the conv output: refused, as it should be
        return
    rng = np.random.default_rng(seed)
    params = {k: rng.normal(scale=0.7, size=s) for k, s in net.parameter_shapes().items()}
    X = rng.normal(size=(batch, *net.input))
    Y = rng.normal(size=(batch, net.output_size))
    C, grads = net.compile().loss_and_gradients(params, X, Y)
    loss, theirs, values = torch_loss_and_grads(net, params, X, Y, {})
    assert float(C) == pytest.approx(loss, rel=1e-11)
    for pname, g in grads.items():
        np.testing.assert_allclose(g, theirs[pname], rtol=1e-9, atol=1e-12, err_msg=pname)


def test_max_pool_ties_route_as_pytorch():
    """Equal values in overlapping windows: the gradient goes where PyTorch sends it (its first
    maximum in row-major order), through the kernel the generated code embeds."""
    from symbackprop.entries.layers.pool import maxpool_backward
    X = np.array([[[[1, 1, 0, 2], [1, 1, 2, 2], [0, 3, 3, 0], [3, 3, 0, 1]]]], dtype=float)
    x = torch.tensor(X, requires_grad=True)
    pooled = F.max_pool2d(x, 2, 1)
    weights = torch.arange(1.0, 10.0, dtype=torch.float64).reshape(pooled.shape)
    (pooled * weights).sum().backward()
    np.testing.assert_array_equal(maxpool_backward(weights.numpy(), X, (2, 2), (1, 1)), x.grad.numpy())


def test_batch_norm_running_statistics_and_predict_as_pytorch(tmp_path):
    """A trainer's running mean and (unbiased) variance after some steps, and predict() with them,
    equal torch's BatchNorm in training then evaluation mode."""
    from symbackprop.codegen.trainer import render
    from test_generate import load_trainer
    net = graph("batchnorm-conv", 4, seed=1)
    trainer = load_trainer(render(net, optimizer="sgd", learning_rate=0.01), tmp_path)
    params = {k: v.copy() for k, v in net.parameters.items()}
    state = trainer.init_state(params)
    rng = np.random.default_rng(5)
    batches = [rng.normal(size=(4, 1, 4, 4)) for _ in range(3)]
    running_mean, running_var = torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
    for X in batches:
        z1 = F.conv2d(torch.tensor(X), torch.tensor(params["W1"]), torch.tensor(params["b1"]), padding=1)
        F.batch_norm(z1, running_mean, running_var, torch.tensor(params["gamma2"]), torch.tensor(params["beta2"]),
                     training=True, momentum=0.1, eps=0.001)
        trainer.step(params, state, X, rng.normal(size=(4, 2)))
        # the step changed the parameters: torch saw the ones before it, as the trainer's statistics did
    np.testing.assert_allclose(state["running"]["mean2"], running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(state["running"]["var2"], running_var.numpy(), rtol=1e-12)
    X = rng.normal(size=(3, 1, 4, 4))
    z1 = F.conv2d(torch.tensor(X), torch.tensor(params["W1"]), torch.tensor(params["b1"]), padding=1)
    bn = torch.tanh(F.batch_norm(z1, running_mean, running_var, torch.tensor(params["gamma2"]),
                                 torch.tensor(params["beta2"]), training=False, eps=0.001))
    out = torch.flatten(F.max_pool2d(bn, 2), 1) @ torch.tensor(params["W5"]).T + torch.tensor(params["b5"])
    np.testing.assert_allclose(trainer.predict(params, state, X), out.numpy(), rtol=1e-12)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(t=st.integers(1, 5), dk=st.integers(1, 3), heads=st.integers(1, 3), batch=st.integers(1, 3),
       causal=st.booleans(), bias=st.booleans(), block=st.booleans(), seed=st.integers(0, 2**16))
def test_attention_over_lengths_widths_heads_and_batches(t, dk, heads, batch, causal, bias, block, seed):
    """posembed → attention (→ a pre-norm residual block around it) → dense, against
    nn.MultiheadAttention's layout, F.layer_norm and autograd in float64."""
    d = dk * heads
    if block and d == 1:
        return                  # a layer norm over one feature is refused (every value would be 0)
    layers = [dict(type="posembed", length=t + 1)]
    if block:
        layers += [dict(type="layernorm", over="last"), dict(type="attention", heads=heads, causal=causal, bias=bias),
                   dict(type="add", **{"from": 1}), dict(type="layernorm", over="last", activation="gelu")]
    else:
        layers += [dict(type="attention", heads=heads, causal=causal, bias=bias, activation="tanh")]
    net = Network.from_dict({"network": {"input": [t, d], "loss": "mse"}, "layer": layers + [dict(type="flatten"),
                                                                                       dict(type="dense", units=2)]})
    rng = np.random.default_rng(seed)
    params = {k: rng.normal(scale=0.7, size=s) + (k.startswith("gamma")) for k, s in net.parameter_shapes().items()}
    X, Y = rng.normal(size=(batch, t, d)), rng.normal(size=(batch, 2))
    C, grads = net.compile().loss_and_gradients(params, X, Y)
    loss, theirs, values = torch_loss_and_grads(net, params, X, Y, {})
    assert float(C) == pytest.approx(loss, rel=1e-11)
    for pname, g in grads.items():
        np.testing.assert_allclose(g, theirs[pname], rtol=1e-9, atol=1e-12, err_msg=pname)
    np.testing.assert_allclose(net.compile().forward(params, X), values[net.depth], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("causal", [False, True])
def test_one_head_is_scaled_dot_product_attention_between_the_projections(causal):
    """With one head, the layer's forward is F.scaled_dot_product_attention(q, k, v, is_causal)
    between the projections, and its weights are softmax(q kᵀ/√d) with the future masked."""
    from symbackprop.entries.layers.attention_kernels import attn_mix, attn_weights, project
    rng = np.random.default_rng(1)
    x, W = rng.normal(size=(3, 4, 2)), {p: rng.normal(size=(2, 2)) for p in "qkvo"}
    b = {p: rng.normal(size=2) for p in "qkvo"}
    q, k, v = (project(x, W[p], b[p]) for p in "qkv")
    a = attn_weights(q, k, 1, causal, 1 / np.sqrt(2))
    ours = project(attn_mix(a, v, 1), W["o"], b["o"])
    sdpa = F.scaled_dot_product_attention(*(torch.tensor(u) for u in (q, k, v)), is_causal=causal)
    theirs = sdpa.numpy() @ W["o"].T + b["o"]
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)
    if causal:
        assert np.all(a[:, 0][:, np.triu_indices(4, 1)[0], np.triu_indices(4, 1)[1]] == 0)


def test_masked_positions_get_exactly_zero_gradient():
    """Causal attention: every masked weight and its dS are exactly 0 (not just small). And with a
    loss that reads position 1 only, no gradient reaches a later position: the positional
    embedding's rows 2 to 4 get exactly 0 from the compiled NumPy and torch functions alike, as
    PyTorch's autograd gives the input."""
    from symbackprop.entries.layers.attention_kernels import attn_score_grad, attn_weights
    rng = np.random.default_rng(2)
    q, k, v, dout = (rng.normal(size=(2, 4, 4)) for _ in range(4))
    a = attn_weights(q, k, 2, True, 1 / np.sqrt(2))
    ds = attn_score_grad(a, dout, v, 2)
    upper = np.triu(np.ones((4, 4), dtype=bool), 1)
    assert np.all(ds[:, :, upper] == 0) and np.all(a[:, :, upper] == 0) and np.all(ds[:, :, 1:][:, :, ~upper[1:]] != 0)
    net = Network.from_dict({"network": {"input": [4, 4], "loss": "mse"},
                             "layer": [dict(type="posembed", length=4), dict(type="attention", heads=2, causal=True),
                                       dict(type="flatten"), dict(type="dense", units=1)]})
    params = {name: rng.normal(size=s) for name, s in net.parameter_shapes().items()}
    params["W4"][:, 4:] = 0                              # the loss reads position 1 of the attention's output only
    X, Y = rng.normal(size=(3, 4, 4)), rng.normal(size=(3, 1))
    for backend in ("numpy", "torch"):
        _, grads = net.compile(backend=backend).loss_and_gradients(params, X, Y)
        dP = np.asarray(grads["P1"])
        assert np.all(dP[1:] == 0) and np.all(dP[0] != 0), backend
    xt = torch.tensor(X, requires_grad=True)
    p = {k: torch.tensor(v) for k, v in params.items()}
    y = torch_attention(xt + p["P1"], {"heads": 2, "causal": True, "bias": True},
                        {s: p[f"{s}2"] for s in ("Wq", "Wk", "Wv", "Wo", "bq", "bk", "bv", "bo")})
    (torch.flatten(y, 1) @ p["W4"].T).pow(2).sum().backward()
    assert torch.all(xt.grad[:, 1:] == 0) and torch.all(xt.grad[:, 0] != 0)
