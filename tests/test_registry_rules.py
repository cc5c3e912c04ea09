"""SymPy proves the curated rules: every ``output_form``, every fused output delta, the softmax
Jacobian-vector product, and the stable rewrites the printer applies. Driven by the registry: a new
activation or fusion is checked here without a new test."""
import itertools

import pytest
import sympy
from sympy import Piecewise, exp

from symbackprop.derive.matrix import FUSIONS, derive_matrix, softmax_jvp
from symbackprop.entries.arrayops import LogSumExp, RowSum, Sigmoid, Softmax, Softplus
from symbackprop.codegen.printing import code
from symbackprop.codegen.rewrites import RULES, log_domain, stabilize
from symbackprop.entries.registry import ACTIVATIONS, LOSSES, a, y, z
from symbackprop import Network

ELEMENTWISE = [act for act in ACTIVATIONS.values() if act.elementwise]
WITH_OUTPUT_FORM = [act for act in ELEMENTWISE if act.output_form is not None]


def _exp_free(expr, var=z):
    """expr with tanh written in exp and every exp(c*var) replaced by E**c (E a fresh positive
    symbol), so that ``cancel`` decides equality of exponential rational functions."""
    E = sympy.Symbol("E", positive=True)
    expr = expr.rewrite(exp) if expr.has(sympy.tanh) else expr
    expr = expr.replace(lambda e: isinstance(e, exp) and (e.args[0] / var).is_Rational,
                        lambda e: E ** (e.args[0] / var))
    return expr


def proven_equal(lhs, rhs, var=z) -> bool:
    """lhs == rhs as functions of var, by the exp-to-symbol substitution and ``cancel``."""
    diff = _exp_free(sympy.expand_log(lhs - rhs, force=True), var)
    if sympy.cancel(diff) == 0:
        return True
    return sympy.simplify(diff) == 0


def _branches(expr):
    """(condition, value) pairs of a Piecewise in z, or one pair for a plain expression."""
    if isinstance(expr, Piecewise):
        return [(c, v) for v, c in expr.args]
    return [(sympy.true, expr)]


def _regions(act):
    """Sample points on each side of every kink, and the kinks themselves (exact numbers)."""
    if not act.kinks:
        return []
    points = sorted(sympy.Rational(str(k)) for k in act.kinks)
    edges = [points[0] - 1] + [(p + q) / 2 for p, q in zip(points, points[1:])] + [points[-1] + 1]
    return edges + points


@pytest.mark.parametrize("act", WITH_OUTPUT_FORM, ids=lambda act: act.name)
def test_output_form_is_the_derivative(act):
    """f'(z) == output_form(a = f(z)): symbolically on each branch, exactly at the kinks."""
    if not act.kinks:
        assert proven_equal(act.output_form.xreplace({a: act.expr}), act.derivative), act.name
        return
    for point in _regions(act):
        value = act.expr.xreplace({z: point})
        assert act.output_form.xreplace({a: value}) == act.derivative.xreplace({z: point}), (act.name, point)
    # branch by branch: pick the branch of f, f' and the output form that holds at a sample point
    # of each region, and prove the three branch expressions agree symbolically there
    for point in _regions(act)[:len(act.kinks) + 1]:
        f_branch = next(v for c, v in _branches(act.expr) if c.xreplace({z: point}) == sympy.true)
        d_branch = next(v for c, v in _branches(act.derivative) if c.xreplace({z: point}) == sympy.true)
        a_value = f_branch.xreplace({z: point})
        o_branch = next(v for c, v in _branches(act.output_form) if c.xreplace({a: a_value}) == sympy.true)
        assert proven_equal(o_branch.xreplace({a: f_branch}), d_branch), (act.name, point)


@pytest.mark.parametrize("fusion", [f for f in FUSIONS if ACTIVATIONS[f.activation].elementwise],
                         ids=lambda f: f"{f.activation}+{f.loss}")
def test_elementwise_fusion_is_the_chain_rule(fusion):
    """δ = ∂ℓ(f(z), y)/∂z equals the table's fused form with a = f(z)."""
    act, loss = ACTIVATIONS[fusion.activation], LOSSES[fusion.loss]
    chain = sympy.diff(loss.term.xreplace({a: act.expr}), z)
    assert proven_equal(chain, fusion.delta.xreplace({a: act.expr}))
    # and it is the product the generic path would form
    product = loss.derivative.xreplace({a: act.expr}) * act.derivative
    assert proven_equal(product, fusion.delta.xreplace({a: act.expr}))


def _softmax_symbols(n):
    zs = sympy.symbols(f"z1:{n + 1}", real=True)
    total = sympy.Add(*[exp(u) for u in zs])
    return zs, [exp(u) / total for u in zs]


def _cancel_exps(expr, zs):
    """cancel() after exp(c_1 z_1 + ... ) -> E_1**c_1 * ...: decides rational functions of exps."""
    Es = dict(zip(zs, sympy.symbols(f"E1:{len(zs) + 1}", positive=True)))

    def as_powers(e):
        return sympy.Mul(*[Es[v] ** c for v, c in e.args[0].as_coefficients_dict().items()])
    return sympy.cancel(expr.replace(lambda e: isinstance(e, exp) and e.args[0].free_symbols <= set(zs), as_powers))


@pytest.mark.parametrize("fusion", [f for f in FUSIONS if not ACTIVATIONS[f.activation].elementwise],
                         ids=lambda f: f"{f.activation}+{f.loss}")
@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_softmax_fusion_is_the_chain_rule_for_any_targets(fusion, n):
    """softmax + cross-entropy: ∂C/∂z_i == a_i Σ_k y_k − y_i for any targets (no condition), which
    is a_i − y_i when they sum to 1 — and a − y alone would be wrong otherwise (n ≥ 2)."""
    loss = LOSSES[fusion.loss]
    zs, outs = _softmax_symbols(n)
    ys = list(sympy.symbols(f"y1:{n + 1}", real=True))
    C = sympy.Add(*[loss.term.xreplace({a: o, y: t}) for o, t in zip(outs, ys)])
    for i, zi in enumerate(zs):
        grad = sympy.diff(C, zi)
        fused = fusion.delta.xreplace({RowSum(y): sympy.Add(*ys)}).xreplace({a: outs[i], y: ys[i]})
        assert _cancel_exps(sympy.expand_log(grad - fused, force=True), zs) == 0
        if n >= 2:
            assert _cancel_exps(sympy.expand_log(grad - (outs[i] - ys[i]), force=True), zs) != 0


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_softmax_jacobian_vector_product(n):
    """Σ_j ∂a_j/∂z_i g_j == a_i (g_i − Σ_j a_j g_j), the form the code uses for softmax with any loss."""
    zs, outs = _softmax_symbols(n)
    gs = sympy.symbols(f"g1:{n + 1}", real=True)
    dot = sympy.Add(*[o * g for o, g in zip(outs, gs)])
    for i, zi in enumerate(zs):
        jvp = sympy.Add(*[sympy.diff(outs[j], zi) * gs[j] for j in range(n)])
        assert _cancel_exps(jvp - outs[i] * (gs[i] - dot), zs) == 0
    # the matrix module's formula is that expression, row-wise
    A, G = sympy.symbols("A G", real=True)
    assert softmax_jvp(A, G) == A * (G - RowSum(A * G))


def test_fusion_table_is_one_to_one_and_names_registry_entries():
    keys = [(f.activation, f.loss) for f in FUSIONS]
    assert len(keys) == len(set(keys))
    for act, loss in keys:
        assert act in ACTIVATIONS and loss in LOSSES


@pytest.mark.parametrize("act", ELEMENTWISE, ids=lambda act: act.name)
def test_output_forms_and_derivatives_use_only_their_variable(act):
    assert act.derivative.free_symbols <= {z}
    if act.output_form is not None:
        assert act.output_form.free_symbols <= {a}


@pytest.mark.parametrize("pair", list(itertools.product(ACTIVATIONS, LOSSES)), ids="+".join)
def test_every_pair_gets_an_output_delta(pair):
    act, loss = pair
    net = Network.from_dict({"network": {"layers": [2, 2], "activations": [act], "loss": loss}})
    out = derive_matrix(net).output
    fused = any((f.activation, f.loss) == pair for f in FUSIONS)
    assert out.kind == ("fused" if fused else "elementwise" if ACTIVATIONS[act].elementwise else "jacobian")
    if out.kind == "elementwise":
        assert out.delta == out.loss_gradient * (ACTIVATIONS[act].output_form
                                                 if ACTIVATIONS[act].output_form is not None
                                                 else ACTIVATIONS[act].derivative)


# ---------------------------------------------------------------------------- the printer's rewrites

def _unstable(expr):
    """The stable primitives written back in plain SymPy, to compare with the registry's forms."""
    u = sympy.Wild("u")
    expr = expr.replace(Sigmoid, lambda u: 1 / (1 + exp(-u)))
    expr = expr.replace(Softplus, lambda u: sympy.log(1 + exp(u)))
    expr = expr.replace(sympy.codegen.cfunctions.expm1, lambda u: exp(u) - 1)
    return expr


def _same_numbers(lhs, rhs, points):
    for p in points:
        l, r = (sympy.N(e.xreplace({z: p}), 40) for e in (lhs, rhs))
        assert abs(l - r) <= sympy.Float("1e-18") * (1 + abs(r)), (lhs, rhs, p, l, r)  # constants are 20-digit floats


@pytest.mark.parametrize("act", ELEMENTWISE, ids=lambda act: act.name)
def test_stabilized_forms_keep_their_value(act):
    """The rewrite rules change the form, not the value: f, f′ and the output form, checked with
    40-digit arithmetic on both sides of every kink."""
    points = [sympy.Rational(p) for p in ("-7/2", "-1", "-1/3", "1/4", "3/2", "6")]
    _same_numbers(_unstable(stabilize(act.expr)), act.expr, points)
    _same_numbers(_unstable(stabilize(act.derivative)), act.derivative, points)


@pytest.mark.parametrize("pair", [(f.activation, f.loss) for f in FUSIONS if ACTIVATIONS[f.activation].elementwise],
                         ids="+".join)
def test_stable_loss_from_z_keeps_its_value(pair):
    act, loss = ACTIVATIONS[pair[0]], LOSSES[pair[1]]
    plain = loss.term.xreplace({a: act.expr, y: sympy.Rational(1, 3)})
    stable = stabilize(plain)
    assert not stable.has(sympy.log), stable  # every log became a softplus
    _same_numbers(_unstable(stable), plain, [sympy.Rational(p) for p in ("-20", "-2", "0", "1/2", "30")])


def test_rules_on_their_patterns():
    u = sympy.Symbol("u", real=True)
    assert stabilize(1 / (1 + exp(-u))) == Sigmoid(u)
    assert stabilize(sympy.log(1 + exp(u))) == Softplus(u)
    assert stabilize(sympy.log(1 / (1 + exp(-u)))) == -Softplus(-u)
    assert stabilize(sympy.log(1 - 1 / (1 + exp(-u)))) == -Softplus(u)
    assert stabilize(1 - Sigmoid(u)) == Sigmoid(-u)
    assert stabilize(sympy.log(Softmax(u))) == u - LogSumExp(u)
    assert stabilize(Piecewise((0, u <= 0), (u, True))) == sympy.Max(u, 0)
    assert stabilize(Piecewise((u / 100, u <= 0), (u, True))) == sympy.Max(u, u / 100)
    assert stabilize(exp(u) - 1) == sympy.codegen.cfunctions.expm1(u)
    assert not stabilize(sympy.sqrt(2) * u).has(sympy.sqrt)  # a Python float, not np.sqrt(2)
    assert len(RULES) == len(set(map(id, RULES)))


def test_relu_prints_as_maximum_and_its_derivative_as_a_mask():
    relu = ACTIVATIONS["relu"]
    assert code(stabilize(relu.expr)) == "np.maximum(0, z)"
    assert code(stabilize(relu.output_form)) == "(a > 0)"
    assert "select" not in code(stabilize(ACTIVATIONS["leaky_relu"].output_form))


def test_log_domain_guards_only_logs_of_the_output():
    assert log_domain(LOSSES["squared_error"].term, a) == a
    guarded = log_domain(LOSSES["binary_cross_entropy"].term, a)
    assert guarded.args[1:] == (1, 1)
    assert log_domain(LOSSES["cross_entropy"].term, a).args[1:] == (1, 0)


def test_the_proofs_can_fail():
    """A planted wrong rule is caught: the checks above are not vacuous."""
    sigmoid = ACTIVATIONS["sigmoid"]
    assert not proven_equal((a * (1 - a) * sympy.Rational(1001, 1000)).xreplace({a: sigmoid.expr}), sigmoid.derivative)
    bce = LOSSES["binary_cross_entropy"]
    chain = sympy.diff(bce.term.xreplace({a: sigmoid.expr}), z)
    assert not proven_equal(chain, (a - 2 * y).xreplace({a: sigmoid.expr}))


def test_shift_invariant_activations_are():
    """An entry marked shift_invariant gives the same outputs for z - c (verify subtracts max z)."""
    c = sympy.Symbol("c", real=True)
    zs = sympy.symbols("z0:3", real=True)
    for act in ACTIVATIONS.values():
        if act.shift_invariant:
            for a1, a2 in zip(act.apply(list(zs)), act.apply([u - c for u in zs])):
                assert sympy.simplify(a1 - a2) == 0, act.name
