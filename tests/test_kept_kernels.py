"""The trainer's fast kernel paths (a per-layer ``ws`` dict: the patch matrix kept from the forward
pass for the weight gradient, the max-pool's maxima kept for its backward pass, image arrays stored
with the examples innermost) against the plain kernels (no ``ws``, C-ordered arrays) and against
PyTorch's autograd, in float64, over hypothesis-drawn shapes, strides, paddings, sizes whose
windows do not tile, both layouts, and ties."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from symbackprop.entries.layers import KERNELS

torch = pytest.importorskip("torch")
F = torch.nn.functional
K = KERNELS
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def batch_last(a):
    """A copy of ``a`` (N, C, *S) stored as (C, *S, N), as a generated trainer keeps its images."""
    order = tuple(range(1, a.ndim)) + (0,)
    store = np.ascontiguousarray(a.transpose(order))
    return store.transpose((a.ndim - 1,) + tuple(range(a.ndim - 1)))


def empty_like(shape, layout):
    a = np.empty(shape)
    return batch_last(a) if layout else a


@st.composite
def conv_case(draw):
    d = draw(st.sampled_from([1, 2]))
    k = tuple(draw(st.integers(1, 3)) for _ in range(d))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(d))
    pad = tuple(draw(st.integers(0, 2)) for _ in range(d))
    size = tuple(max(1, kk - 2 * p) + draw(st.integers(0, 5)) for kk, p in zip(k, pad))
    n, c, o = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    layouts = draw(st.tuples(st.booleans(), st.booleans(), st.booleans()))   # x, out, delta batch-last
    return d, n, c, o, size, k, stride, pad, layouts, draw(st.integers(0, 2**31))


def torch_conv(x, W, b, stride, pad):
    conv = F.conv1d if W.ndim == 3 else F.conv2d
    xt, Wt, bt = (torch.tensor(np.ascontiguousarray(a), requires_grad=True) for a in (x, W, b))
    return xt, Wt, bt, conv(xt, Wt, bt, stride, pad)


@SETTINGS
@given(conv_case())
def test_conv_kernels_with_kept_patches_match_the_plain_ones_and_torch(case):
    d, n, c, o, size, k, stride, pad, (x_bl, out_bl, delta_bl), seed = case
    rng = np.random.default_rng(seed)
    x, W, b = rng.standard_normal((n, c, *size)), rng.standard_normal((o, c, *k)), rng.standard_normal(o)
    xt, Wt, bt, zt = torch_conv(x, W, b, stride, pad)
    delta = rng.standard_normal(zt.shape)
    zt.backward(torch.tensor(delta))
    xs = batch_last(x) if x_bl else x
    ws = {}
    z = empty_like(zt.shape, out_bl)
    K["conv_forward"](xs, W, b, stride, pad, out=z, ws=ws)
    plain = K["conv_forward"](x, W, b, stride, pad)
    np.testing.assert_allclose(z, plain, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(z, zt.detach().numpy(), rtol=1e-10, atol=1e-10)
    ds = batch_last(delta) if delta_bl else delta
    dW = np.empty_like(W)
    K["conv_weight_grad"](xs, ds, k, stride, pad, out=dW, ws=ws)
    np.testing.assert_allclose(dW, K["conv_weight_grad"](x, delta, k, stride, pad), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dW, Wt.grad.numpy(), rtol=1e-10, atol=1e-10)
    dx = empty_like(x.shape, out_bl)
    K["conv_input_grad"](ds, W, size, stride, pad, out=dx, ws=ws)
    np.testing.assert_allclose(dx, K["conv_input_grad"](delta, W, size, stride, pad), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-10)
    db = np.empty(o)
    K["channel_sum"](ds, out=db)
    np.testing.assert_allclose(db, bt.grad.numpy(), rtol=1e-10, atol=1e-10)


def test_kept_patches_follow_new_values_in_the_same_arrays():
    """The workspace keeps the arrays, not the numbers: a second pass with new values in the same
    input array (a trainer's next batch) gives that pass's results, and a weight gradient asked for
    another input array builds its own patches."""
    rng = np.random.default_rng(1)
    x = batch_last(rng.standard_normal((3, 2, 6, 5)))
    W, b = rng.standard_normal((4, 2, 3, 3)), rng.standard_normal(4)
    ws, z, dW = {}, batch_last(np.empty((3, 4, 4, 3))), np.empty_like(W)
    delta = rng.standard_normal((3, 4, 4, 3))
    for _ in range(2):
        x[...] = rng.standard_normal(x.shape)
        K["conv_forward"](x, W, b, (1, 1), (0, 0), out=z, ws=ws)
        np.testing.assert_allclose(z, K["conv_forward"](np.ascontiguousarray(x), W, b, (1, 1), (0, 0)), rtol=1e-12)
        K["conv_weight_grad"](x, delta, (3, 3), (1, 1), (0, 0), out=dW, ws=ws)
        np.testing.assert_allclose(dW, K["conv_weight_grad"](np.ascontiguousarray(x), delta, (3, 3), (1, 1), (0, 0)), rtol=1e-12)
    other = rng.standard_normal(x.shape)
    K["conv_weight_grad"](other, delta, (3, 3), (1, 1), (0, 0), out=dW, ws=ws)
    np.testing.assert_allclose(dW, K["conv_weight_grad"](other, delta, (3, 3), (1, 1), (0, 0)), rtol=1e-12)


@st.composite
def pool_case(draw):
    d = draw(st.sampled_from([1, 2]))
    k = tuple(draw(st.integers(1, 3)) for _ in range(d))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(d))
    size = tuple(kk + draw(st.integers(0, 5)) for kk in k)        # windows that do not tile, too
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ties = draw(st.booleans())                                     # small integers: many tied maxima
    return d, n, c, size, k, stride, draw(st.booleans()), ties, draw(st.integers(0, 2**31))


@SETTINGS
@given(pool_case())
def test_maxpool_with_kept_maxima_matches_the_plain_kernels_and_torch(case):
    d, n, c, size, k, stride, layout, ties, seed = case
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, (n, c, *size)).astype(float) if ties else rng.standard_normal((n, c, *size))
    xs = batch_last(x) if layout else x
    ws = {}
    top = K["maxpool_forward"](xs, k, stride, out=empty_like(K["maxpool_forward"](x, k, stride).shape, layout), ws=ws)
    np.testing.assert_array_equal(top, K["maxpool_forward"](x, k, stride))
    delta = rng.standard_normal(top.shape)
    dx = empty_like(x.shape, layout)
    for _ in range(2):                                            # the kept masks, reused
        K["maxpool_backward"](delta, xs, k, stride, out=dx, ws=ws)
        np.testing.assert_array_equal(dx, K["maxpool_backward"](delta, x, k, stride))
    xt = torch.tensor(x, requires_grad=True)
    pool = F.max_pool1d if d == 1 else F.max_pool2d
    pool(xt, k, stride).backward(torch.tensor(delta))
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_torch_twins_with_ws_match_autograd():
    """The torch kernels given ``ws`` (aten.convolution_backward from the forward's input and
    kernel; the max-pool's maxima kept) against autograd, float64, stride 2 with a remainder,
    padding, and a tied max-pool."""
    from symbackprop.entries.layers import TORCH_KERNELS, kernel_sources
    import math
    names = ["conv_forward", "conv_weight_grad", "conv_input_grad", "maxpool_forward", "maxpool_backward"]
    ns = {"torch": torch, "F": F, "math": math}
    exec(compile("\n\n".join(kernel_sources(names, "torch")), "<torch kernels>", "exec"), ns)
    rng = np.random.default_rng(3)
    for d, size, k, stride, pad in [(2, (7, 6), (3, 2), (2, 2), (1, 0)), (1, (9,), (3,), (2,), (2,)), (2, (5, 5), (5, 5), (1, 1), (2, 2))]:
        x = torch.tensor(rng.standard_normal((3, 2, *size)), requires_grad=True)
        W = torch.tensor(rng.standard_normal((4, 2, *k)), requires_grad=True)
        b = torch.tensor(rng.standard_normal(4), requires_grad=True)
        z = (F.conv1d if d == 1 else F.conv2d)(x, W, b, stride, pad)
        delta = torch.tensor(rng.standard_normal(z.shape))
        z.backward(delta)
        ws = {}
        with torch.no_grad():
            np.testing.assert_allclose(ns["conv_forward"](x, W, b, stride, pad, ws=ws).numpy(), z.detach().numpy(), rtol=1e-12)
            out = torch.empty(W.shape, dtype=torch.float64)
            ns["conv_weight_grad"](x, delta, k, stride, pad, out=out, ws=ws)
            np.testing.assert_allclose(out.numpy(), W.grad.numpy(), rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(ns["conv_input_grad"](delta, W, size, stride, pad, ws=ws).numpy(), x.grad.numpy(),
                                       rtol=1e-10, atol=1e-12)
    x = torch.tensor(rng.integers(-1, 2, (2, 3, 5, 6)).astype(float), requires_grad=True)
    top = F.max_pool2d(x, (2, 2), (2, 2))
    delta = torch.tensor(rng.standard_normal(top.shape))
    top.backward(delta)
    ws = {}
    with torch.no_grad():
        ns["maxpool_forward"](x, (2, 2), (2, 2), ws=ws)
        assert ws["x"] is x
        np.testing.assert_array_equal(ns["maxpool_backward"](delta, x, (2, 2), (2, 2), ws=ws).numpy(), x.grad.numpy())
