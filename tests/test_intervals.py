"""Interval arithmetic: every computed range holds every value the expression takes on the box."""
import math
import random

import pytest
import sympy

from symbackprop.check.intervals import EMPTY, Interval, bound, evaluate
from symbackprop.entries.registry import ACTIVATIONS, LOSSES, a, y, z
from symbackprop.entries.optimizers import OPTIMIZERS, HYPER, g, theta

u, w = sympy.symbols("u w", real=True)

EXPRESSIONS = [
    u + w, u - w, u * w, u / w, u**2, u**3, u**-2, sympy.sqrt(u * u + 1), sympy.exp(-u) * w,
    sympy.log(1 + u**2), sympy.tanh(u) * w, sympy.erf(u), sympy.Abs(u - w), sympy.Max(u, w),
    sympy.Min(u, 0), sympy.sin(u), sympy.cos(3 * u), sympy.atan(u), sympy.asinh(u),
    u * (1 - u), 1 / (1 + sympy.exp(-u)), u / (1 + sympy.Abs(u)), sympy.sign(u) * w,
    sympy.Piecewise((u / 100, u <= 0), (u, True)), sympy.Piecewise((0, u <= w), (u * w, True)),
    sympy.Piecewise((sympy.exp(u) - 1, u <= 0), (u, True)) * w,
]


def _boxes(rng, count=40):
    for _ in range(count):
        centre_u, centre_w = rng.uniform(-3, 3), rng.uniform(-3, 3)
        half_u, half_w = 10 ** rng.uniform(-6, 0), 10 ** rng.uniform(-6, 0)
        yield {u: Interval(centre_u - half_u, centre_u + half_u), w: Interval(centre_w - half_w, centre_w + half_w)}


@pytest.mark.parametrize("expr", EXPRESSIONS, ids=str)
def test_bound_contains_every_sampled_value(expr):
    rng = random.Random(str(expr))
    fn = sympy.lambdify((u, w), expr, "math")
    for box in _boxes(rng):
        r = bound(expr, box)
        for _ in range(25):
            pu = rng.uniform(box[u].lo, box[u].hi)
            pw = rng.uniform(box[w].lo, box[w].hi)
            try:
                value = fn(pu, pw)
            except (ZeroDivisionError, ValueError, OverflowError):
                continue
            assert r.lo <= value <= r.hi, (expr, box, pu, pw, value, r)
        for pu in (box[u].lo, box[u].hi):   # endpoints too: the extremes of monotone pieces
            for pw in (box[w].lo, box[w].hi):
                try:
                    value = fn(pu, pw)
                except (ZeroDivisionError, ValueError, OverflowError):
                    continue
                assert r.lo <= value <= r.hi


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_registry_activations_and_their_derivatives_are_bounded(name):
    act = ACTIVATIONS[name]
    if not act.elementwise:
        return
    rng = random.Random(name)
    for expr in (act.expr, act.derivative):
        fn = sympy.lambdify(z, expr, "math")
        for _ in range(30):
            c, h = rng.uniform(*act.domain), 10 ** rng.uniform(-5, -1)
            r = bound(expr, {z: Interval(c - h, c + h)})
            for p in (c - h, c, c + h, rng.uniform(c - h, c + h)):
                assert r.lo <= fn(p) <= r.hi


def test_losses_and_optimizer_rules_are_bounded():
    box = {a: Interval(0.2, 0.3), y: Interval(0.9, 0.9)}
    for loss in LOSSES.values():
        r = bound(loss.term, box)
        for p in (0.2, 0.25, 0.3):
            assert r.contains(float(loss.term.subs({a: p, y: 0.9})))
    env = {s: Interval.point(0.5) for s in HYPER.values()}
    env |= {theta: Interval(0.49, 0.51), g: Interval(-0.2, -0.1), sympy.Symbol("t", positive=True, integer=True): Interval.point(1)}
    for opt in OPTIMIZERS.values():
        for target, rhs in opt.rules:
            rhs = rhs.xreplace({s: sympy.Integer(0) for s in rhs.free_symbols
                                if s.name in ("m", "v", "s", "g_hat", "m_hat", "v_hat")})
            assert not bound(rhs, env).empty


def test_mean_value_form_is_tight_where_a_symbol_repeats():
    box = {a: Interval(0.5885, 0.5895)}
    r = bound(a * (1 - a), box)
    natural = evaluate(a * (1 - a), box)
    true_lo, true_hi = 0.5895 * 0.4105, 0.5885 * 0.4115
    assert r.lo <= true_lo and r.hi >= true_hi
    assert r.width < 1.1 * (true_hi - true_lo) < natural.width / 5


def test_piecewise_restricts_each_branch_to_its_region():
    relu = ACTIVATIONS["relu"].expr
    assert bound(relu, {z: Interval(-1, 2)}) == Interval(0, 2)
    assert bound(relu, {z: Interval(-1, -0.5)}) == Interval(0, 0)
    assert bound(relu, {z: Interval(1, 2)}) == Interval(1, 2)


def test_outward_rounding_keeps_the_true_value():
    tenth = Interval.point(0.1)
    total = tenth + tenth + tenth
    assert total.lo < 0.3 < total.hi or total.contains(0.30000000000000004)
    assert (Interval.point(1) / Interval.point(3)).contains(1 / 3)


def test_domain_errors_give_the_empty_interval_which_meets_nothing():
    assert bound(sympy.sqrt(u), {u: Interval(-2, -1)}).empty
    assert bound(sympy.log(u), {u: Interval(-2, -1)}).empty
    assert bound(sympy.log(u), {u: Interval(-2, 0)}) == Interval(-math.inf, -math.inf)  # log 0 = -inf
    assert bound(1 / u, {u: Interval(0, 0)}).empty
    assert bound(sympy.sqrt(u) + 1, {u: Interval(-2, -1)}).empty
    assert not EMPTY.intersects(Interval(-math.inf, math.inf))
    assert not Interval(0, 1).intersects(EMPTY)
    assert Interval(0, 1).join(EMPTY) == Interval(0, 1)
    # partly outside: the defined part
    assert bound(sympy.sqrt(u), {u: Interval(-1, 4)}).hi >= 2


def test_division_by_an_interval_holding_zero_is_unbounded():
    r = bound(1 / u, {u: Interval(-1, 1)})
    assert r.lo == -math.inf and r.hi == math.inf
    assert bound(1 / u, {u: Interval(0, 2)}).hi == math.inf


def test_mid_names_the_value_or_nan_never_a_made_up_zero():
    assert Interval.point(0.25).mid == 0.25
    assert Interval(1, 2).mid == 1.5
    assert Interval(math.inf, math.inf).mid == math.inf
    assert Interval(-math.inf, -math.inf).mid == -math.inf
    assert Interval(-1, math.inf).mid == -1 and Interval(-math.inf, 3).mid == 3
    assert math.isnan(EMPTY.mid)
    assert math.isnan(Interval(-math.inf, math.inf).mid)


def test_intervals_refuse_to_be_inverted():
    with pytest.raises(ValueError):
        Interval(2, 1)


def test_docstring_examples_run():
    import doctest
    import symbackprop.check.intervals
    assert doctest.testmod(symbackprop.check.intervals).failed == 0


def test_max_pool_case_splits_and_norm_roots_are_decided():
    """max-pool's element is a Piecewise whose conditions are Ands of comparisons: decided where
    the intervals do not overlap (the winner's value alone), joined where they do; batch norm's
    x̂ divides by √(var + ε)."""
    import sympy
    from symbackprop.check.intervals import Interval, bound
    from symbackprop.entries.layers.pool import _first_max
    a, b, c = sympy.symbols("a b c", real=True)
    expr = _first_max([a, b, c])
    env = {a: Interval(0.1, 0.2), b: Interval(0.5, 0.6), c: Interval(0.3, 0.4)}
    assert bound(expr, env) == Interval(0.5, 0.6)
    assert bound(sympy.diff(expr, b), env) == Interval(1.0, 1.0) and bound(sympy.diff(expr, a), env) == Interval(0.0, 0.0)
    tied = {a: Interval(0.1, 0.2), b: Interval(0.5, 0.6), c: Interval(0.55, 0.65)}
    assert bound(expr, tied) == Interval(0.5, 0.65)                  # b or c: both stay possible
    x, m, var = sympy.symbols("x m var", real=True)
    r = bound((x - m) / sympy.sqrt(var + sympy.Rational(1, 100)), {x: Interval.point(1.0), m: Interval.point(0.5),
                                                                   var: Interval.point(0.24)})
    assert r.lo <= 1.0 <= r.hi and r.width < 1e-12                 # 0.5 / √0.25
