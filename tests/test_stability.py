"""Numerical stability: with pre-activations up to |z| = 1e4 at every layer and outputs at 0 or 1,
the compiled forward, loss and gradients are finite and raise no floating-point warning
(``numpy.errstate(all="raise")``), for every activation × loss, in float64 and float32."""
import itertools
import math

import mpmath
import numpy as np
import pytest
import sympy

from symbackprop.entries.arrayops import Sigmoid, Softplus
from symbackprop.codegen.printing import code
from symbackprop.codegen.rewrites import stabilize
from symbackprop.entries.registry import ACTIVATIONS, LOSSES, z
from symbackprop.entries.registry import a as A_, y as Y_
from symbackprop import Network

PAIRS = list(itertools.product(ACTIVATIONS, LOSSES))
EXTREMES = np.array([-1e4, -800.0, -100.0, -40.0, -1.0, 0.0, 1.0, 40.0, 100.0, 800.0, 1e4])


def _namespace(dtype):
    """What the generated module defines for printed code: np, DTYPE, EPS, EXP_LO, EXP_HI, _erf."""
    info = np.finfo(dtype)
    return {"np": np, "math": math, "DTYPE": dtype, "EPS": float(info.eps),
            "EXP_LO": float(np.log(info.tiny)) / 3, "EXP_HI": float(np.log(info.max)) - 1.0,
            "_erf": lambda x: np.fromiter(map(math.erf, x.ravel().tolist()), x.dtype, x.size).reshape(x.shape)}


def _run(expr, values, dtype):
    z_ = np.asarray(values, dtype=dtype)
    with np.errstate(all="raise"):
        out = eval(code(expr), {**_namespace(dtype), "z": z_, "a": z_})  # our own printed code
    return np.broadcast_to(out, z_.shape)


def _cases(sizes_hidden, output, loss, dtype):
    """A net whose every layer sees |z| up to 1e4: X = ±1e4, W1 = I, W2 scaled by 1e4 / max|a1|."""
    hidden = output if ACTIVATIONS[output].elementwise else "tanh"
    X = np.array([[1e4, -1e4], [-1e4, 1e4], [0.0, 0.0], [1.0, -1.0]])
    Y = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    first = Network.from_dict({"network": {"layers": [2, 2], "activations": [hidden], "loss": "mse"}})
    P1 = {"W1": np.eye(2), "b1": np.zeros(2)}
    a1 = first.compile().forward(P1, X)
    s = 1e4 / max(float(np.max(np.abs(a1))), 1e-300)
    params = {**P1, "W2": np.array([[s, -s], [-s, s]]), "b2": np.zeros(2)}
    net = Network.from_dict({"network": {"layers": [2, 2, 2], "activations": [hidden, output], "loss": loss}})
    cast = lambda v: v.astype(dtype)
    return net.compile(dtype), {k: cast(v) for k, v in params.items()}, cast(X), cast(Y)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("pair", PAIRS, ids="+".join)
def test_extremes_are_finite_and_raise_no_warning(pair, dtype):
    output, loss = pair
    f, P, X, Y = _cases(2, output, loss, dtype)
    with np.errstate(all="raise"):
        out = f.forward(P, X)
        value = f.loss(P, X, Y)
        grads = f.gradients(P, X, Y)
    assert out.dtype == dtype and np.all(np.isfinite(out))
    assert np.isfinite(value) and value.dtype == dtype
    for name, g in grads.items():
        assert g.dtype == dtype and np.all(np.isfinite(g)), (name, g)


def test_saturated_outputs_reach_0_and_1():
    """The sigmoid case does saturate: its outputs are exactly 0 and 1 at z = ∓1e4."""
    f, P, X, Y = _cases(2, "sigmoid", "binary_cross_entropy", np.float64)
    out = f.forward(P, X)
    assert {0.0, 1.0} <= set(out.ravel().tolist())
    assert np.isfinite(f.loss(P, X, Y))


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("act", [a for a in ACTIVATIONS.values() if a.elementwise], ids=lambda a: a.name)
def test_printed_activation_and_derivative_at_extremes(act, dtype):
    for expr in (act.expr, act.derivative, act.output_form if act.output_form is not None else act.derivative):
        values = _run(stabilize(expr), EXTREMES, dtype)
        # constants and boolean masks are multiplied into arrays of the dtype, never upcasting them
        assert values.dtype == dtype or values.dtype == bool or expr.is_number, (act.name, expr, values.dtype)
        assert np.all(np.isfinite(values)), (act.name, expr, values)


def _reference(fn, points):
    mpmath.mp.dps = 50
    return [float(fn(mpmath.mpf(p))) for p in points]


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-13), (np.float32, 2e-6)], ids=["float64", "float32"])
def test_stable_primitives_are_accurate(dtype, rtol):
    """σ, softplus and log σ against 50-digit references. Allowed absolute errors, by design: σ is
    0.5 + 0.5·tanh(z/2), so about half an eps; softplus's exp argument stops at EXP_LO, so values
    below exp(EXP_LO) = tiny**(1/3) come out as that floor instead of underflowing."""
    u = sympy.Symbol("z", real=True)
    floor = math.exp(_namespace(dtype)["EXP_LO"])
    half_eps = float(np.finfo(dtype).eps) / 2
    cases = [
        (Sigmoid(u), lambda x: 1 / (1 + mpmath.exp(-x)), half_eps),
        (Softplus(u), lambda x: mpmath.log1p(mpmath.exp(x)), floor),
        (stabilize(sympy.log(1 / (1 + sympy.exp(-u)))), lambda x: -mpmath.log1p(mpmath.exp(-x)), floor),
    ]
    for expr, ref, atol in cases:
        got = _run(expr, EXTREMES, dtype)
        want = np.array(_reference(ref, EXTREMES))
        ok = np.isclose(got, want, rtol=rtol, atol=atol * 1.01)
        assert ok.all(), (expr, EXTREMES[~ok], got[~ok], want[~ok])


def test_constants_do_not_upcast_float32():
    """√2 in gelu, 1/100 in leaky relu, π-like constants: printed as Python floats."""
    for act in ACTIVATIONS.values():
        if act.elementwise:
            printed = code(stabilize(act.derivative))
            assert "np.sqrt(2" not in printed and "np.pi" not in printed, printed
    x = np.linspace(-3, 3, 7, dtype=np.float32)
    assert _run(stabilize(ACTIVATIONS["gelu"].derivative), x, np.float32).dtype == np.float32


def test_binary_cross_entropy_from_z_is_one_softplus():
    """The rewrite c1·softplus(−u) + c2·softplus(u) → (c1 + c2)·softplus(u) − c1·u: proven by SymPy
    (softplus(−u) = softplus(u) − u), and it turns sigmoid + binary cross-entropy into softplus(z) − y·z."""
    u, y_ = sympy.Symbol("u", real=True), sympy.Symbol("y", real=True)
    lhs, rhs = sympy.log(1 + sympy.exp(-u)), sympy.log(1 + sympy.exp(u)) - u
    assert sympy.simplify(sympy.exp(lhs) - sympy.exp(rhs)) == 0
    merged = stabilize(LOSSES["binary_cross_entropy"].term.xreplace({A_: 1 / (1 + sympy.exp(-u)), Y_: y_}))
    assert merged.atoms(Softplus) == {Softplus(u)} and sympy.expand(merged - (Softplus(u) - y_ * u)) == 0


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_binary_cross_entropy_from_z_is_accurate(dtype):
    """softplus(z) − y·z against a 50-digit reference: absolute error within a few eps·max(1, |z|)
    (the y·z cancellation, as in every logits form of this loss), and no warning at |z| = 1e4."""
    u, y_ = sympy.Symbol("z", real=True), sympy.Symbol("a", real=True)  # _run binds z and a
    expr = stabilize(LOSSES["binary_cross_entropy"].term.xreplace({A_: 1 / (1 + sympy.exp(-u)), Y_: y_}))
    eps, floor = float(np.finfo(dtype).eps), math.exp(_namespace(dtype)["EXP_LO"])
    for target in (0.0, 1.0, 0.25):
        z_ = np.asarray(EXTREMES, dtype=dtype)
        with np.errstate(all="raise"):
            got = eval(code(expr), {**_namespace(dtype), "z": z_, "a": np.full_like(z_, target)})
        mpmath.mp.dps = 50
        want = np.array([float(mpmath.log1p(mpmath.exp(mpmath.mpf(float(p)))) - target * mpmath.mpf(float(p)))
                         for p in z_])
        ok = np.abs(got - want) <= 4 * eps * np.maximum(1, np.abs(want) + np.abs(z_)) + floor
        assert ok.all(), (target, z_[~ok], got[~ok], want[~ok])
