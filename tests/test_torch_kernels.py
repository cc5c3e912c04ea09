"""Each torch kernel against its NumPy twin: same names and signatures, the same numbers on random
float64 data (into a fresh tensor and into ``out=``), ties in max-pooling routed to the same first
maximum. The torch kernels are run from their embedded source, as a generated module runs them."""
import inspect
import math

import numpy as np
import pytest

from symbackprop.entries.layers import KERNELS, LAYERS, TORCH_KERNELS, kernel_sources

torch = pytest.importorskip("torch")
F = torch.nn.functional


@pytest.fixture(scope="module")
def twins():
    namespace = {"torch": torch, "F": F, "math": math}
    exec(compile("\n\n".join(kernel_sources(TORCH_KERNELS, "torch")), "<torch kernels>", "exec"), namespace)
    return namespace


# the kernels generated code calls: each layer kind names its own (the NumPy ones may call helpers
# of their own, offset_view, patches, ..., which torch has no need of)
CALLED = sorted({name for kind in LAYERS.values() for name in kind.kernels})


def test_one_twin_per_kernel_with_the_same_signature():
    assert set(CALLED) <= set(TORCH_KERNELS)
    for name in CALLED:
        assert inspect.signature(TORCH_KERNELS[name]) == inspect.signature(KERNELS[name]), name
        assert TORCH_KERNELS[name].view == KERNELS[name].view, name


def test_each_kind_names_the_kernels_its_code_calls():
    from cases import GRAPHS, graph
    from symbackprop.entries.arrayops import Kernel
    from symbackprop.codegen.compiled import array_program
    from symbackprop.entries.layers.targets import LOSS_KERNELS
    import sympy
    for case in GRAPHS:
        net = graph(case, 3)
        program = array_program(net, backend=None)
        used = {e.kernel for s in program.statements for e in sympy.preorder_traversal(s.expr) if isinstance(e, Kernel)}
        named = {k for layer in net.graph for k in layer.kind.kernels} | set(LOSS_KERNELS)
        assert used <= named, (case, used - named)


rng = np.random.default_rng(0)


def r(*shape):
    return rng.standard_normal(shape)


def conv_cases():
    """(d, spatial size, kernel, stride, padding)."""
    return [(1, (7,), (3,), (2,), (1,)), (1, (6,), (2,), (1,), (0,)), (1, (9,), (3,), (3,), (4,)),
            (2, (5, 5), (3, 3), (2, 2), (1, 1)), (2, (6, 5), (3, 2), (1, 2), (0, 1)),
            (2, (7, 6), (2, 3), (3, 2), (2, 0)), (2, (8, 8), (5, 5), (1, 1), (0, 0))]


def calls():
    """(kernel, NumPy arguments): every kernel, on several shapes."""
    out = []
    for d, size, k, stride, pad in conv_cases():
        N, C, O = 3, 2, 3
        x, W, b = r(N, C, *size), r(O, C, *k), r(O)
        s_out = tuple((m + 2 * p - q) // s + 1 for m, p, q, s in zip(size, pad, k, stride))
        delta = r(N, O, *s_out)
        out += [("windows", (x, k, stride, pad)), ("conv_forward", (x, W, b, stride, pad)),
                ("conv_input_grad", (delta, W, size, stride, pad)), ("conv_weight_grad", (x, delta, k, stride, pad)),
                ("channel_sum", (delta,))]
    for d, size, k, stride in [(1, (7,), (3,), (2,)), (1, (6,), (2,), (2,)), (2, (4, 5), (2, 2), (2, 2)),
                               (2, (5, 5), (2, 3), (1, 1)), (2, (7, 6), (3, 2), (2, 3))]:
        x = r(2, 3, *size)
        s_out = tuple((m - q) // s + 1 for m, q, s in zip(size, k, stride))
        delta = r(2, 3, *s_out)
        ties = rng.integers(0, 3, x.shape).astype(float)   # many equal maxima in a window
        out += [("maxpool_forward", (x, k, stride)), ("maxpool_backward", (delta, x, k, stride)),
                ("maxpool_backward", (delta, ties, k, stride)), ("avgpool_forward", (x, k, stride)),
                ("avgpool_backward", (delta, size, k, stride))]
    for shape, axes, gshape in [((5, 4), (0,), (4,)), ((5, 4), (1,), (4,)), ((3, 2, 4, 4), (0, 2, 3), (2,)),
                                ((3, 2, 3, 3), (1, 2, 3), (2, 3, 3)), ((4, 2, 5), (0, 2), (2,))]:
        x, delta, gamma, beta = r(*shape), r(*shape), r(*gshape), r(*gshape)
        mean = x.mean(axis=axes)
        rstd = 1 / np.sqrt(x.var(axis=axes) + 1e-5)
        xhat = (x - np.expand_dims(mean, axes)) * np.expand_dims(rstd, axes)
        p_axes = axes if gshape == (shape[1],) else (0,)
        out += [("norm_mean", (x, axes)), ("norm_var", (x, mean, axes)), ("norm_apply", (x, mean, rstd, axes)),
                ("scale_shift", (xhat, gamma, beta)), ("axis_sum", (delta, p_axes)),
                ("product_sum", (delta, xhat, p_axes)), ("norm_input_grad", (delta, xhat, rstd, gamma, axes))]
    x = r(3, 2, 4, 5)
    out += [("flatten", (x,)), ("unflatten", (x.reshape(3, -1), (2, 4, 5)))]
    return out


CALLS = calls()


def tensors(args):
    return [torch.from_numpy(a.copy()) if isinstance(a, np.ndarray) else a for a in args]


@pytest.mark.parametrize("name, args", CALLS, ids=[f"{c[0]}-{i}" for i, c in enumerate(CALLS)])
def test_torch_kernel_equals_its_numpy_twin(twins, name, args):
    expected = KERNELS[name](*[a.copy() if isinstance(a, np.ndarray) else a for a in args])
    got = twins[name](*tensors(args))
    assert isinstance(got, torch.Tensor) and tuple(got.shape) == expected.shape, name
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-12, err_msg=name)
    if "out" in inspect.signature(KERNELS[name]).parameters:
        out = torch.full(expected.shape, float("nan"), dtype=torch.float64)
        returned = twins[name](*tensors(args), out=out)
        assert returned.data_ptr() == out.data_ptr(), f"{name} did not write into out"
        np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12, err_msg=name)
    if KERNELS[name].view:
        source = tensors(args)[0]
        assert twins[name](source, *args[1:]).data_ptr() == source.data_ptr()


def test_maxpool_ties_go_to_the_first_maximum(twins):
    """A window of equal values sends all of δ to its first element (row-major), as PyTorch does."""
    x = torch.zeros(1, 1, 2, 2, dtype=torch.float64)
    dx = twins["maxpool_backward"](torch.ones(1, 1, 1, 1, dtype=torch.float64), x, (2, 2), (2, 2))
    assert dx.flatten().tolist() == [1.0, 0.0, 0.0, 0.0]
