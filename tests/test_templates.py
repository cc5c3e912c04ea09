"""Worked examples by template (entries/template.py, numeric/templated.py): every shortcut gives the
very expressions and numbers of the route it replaces — SymPy's own derivative, xreplace, one
lambdify per expression — on the bundled examples' definitions and on made-up expressions."""
import numpy as np
import pytest
import sympy
from hypothesis import given, settings, strategies as st

from symbackprop.derive import derivation as D
from symbackprop.derive.model import Model
from symbackprop.entries.layers.pool import _first_max
from symbackprop.entries.registry import ACTIVATIONS, z as Z
from symbackprop.entries.template import placeholders, rename, substitute, template_key
from symbackprop.numeric import values as V
from symbackprop.numeric.templated import compile_one, evaluate_many
from symbackprop.spec.initial import numbers
from symbackprop.spec.network import load

r = sympy.symbols("a b c d e", real=True)


def _model(path):
    net = load(path)
    if not net.has_numbers:
        net, _ = numbers(net, 0, "derive")
    return Model(net)


@pytest.fixture(scope="module")
def cnn_exercise():
    return _model("examples/cnn-exercise.toml")


def test_key_is_shared_only_by_renamings_in_the_same_order():
    a, b, c, d, e = r
    assert template_key(2 * a + b)[0] == template_key(2 * c + d)[0]
    assert template_key(2 * a + b)[0] != template_key(a + 2 * b)[0]      # another tree
    assert template_key(a * b + 1)[0] != template_key(a * b + 2)[0]      # another number
    positive = sympy.Symbol("p", positive=True)
    assert template_key(a + 1)[0] != template_key(positive + 1)[0]        # other assumptions


def test_a_template_prints_as_its_original():
    a, b, c, d, e = r
    for expr in (d - a * b, (c - a) ** 2 / 256 + b, sympy.exp(-e) / (1 + sympy.exp(-e)) * a):
        template, ps = placeholders(expr, template_key(expr)[1])
        back = {p.name: s.name for p, s in zip(ps, template_key(expr)[1])}
        text = str(template)
        for p in sorted(back, reverse=True):
            text = text.replace(p, back[p])
        assert text == str(expr)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_substitute_is_xreplace_for_every_activation(name):
    act = ACTIVATIONS[name]
    u = sympy.Symbol("z7_0_1", real=True)
    if act.elementwise:
        assert act.apply([u]) == [act.expr.xreplace({Z: u})]
        assert sympy.srepr(act.apply([u])[0]) == sympy.srepr(act.expr.xreplace({Z: u}))
    assert substitute(act.derivative, Z, u) == act.derivative.xreplace({Z: u})
    assert substitute(act.derivative, Z, sympy.Integer(2)) == act.derivative.xreplace({Z: 2})   # not a symbol


def test_rename_rebuilds_the_same_tree():
    a, b, c, d, e = r
    relu = sympy.Piecewise((0, a <= 0), (a, True))
    for expr in (relu, a * b + c, sympy.sqrt(c + sympy.Rational(1, 10)) ** 3 * (a - b), _first_max([a, b, c, d])):
        mapping = dict(zip(sorted(expr.free_symbols, key=lambda s: s.name),
                           sympy.symbols("v1 v2 v3 v4", real=True)))
        assert sympy.srepr(rename(expr, mapping)) == sympy.srepr(expr.xreplace(mapping))


def test_first_max_unevaluated_is_sympys():
    a, b, c, d, e = r
    rows = sympy.symbols("a2_0_0_9_0 a2_0_0_10_0 a2_0_0_9_1 a2_0_0_10_1", real=True)   # "10" sorts before "9"
    for vals in ([a, b], [a, b, c], [a, b, c, d], [d, a, c, b, e], [b, a], list(rows), [e, *rows, a]):
        built = sympy.Piecewise(*[(v, sympy.And(*[v >= w for w in vals[i + 1:]])) for i, v in enumerate(vals[:-1])],
                                (vals[-1], True))
        assert sympy.srepr(_first_max(vals)) == sympy.srepr(built)
    assert _first_max([a, a, b]) == sympy.Piecewise((a, sympy.And(a >= a, a >= b)), (a, a >= b), (b, True))


@pytest.mark.parametrize("path", ["examples/cnn-exercise.toml", "examples/batchnorm.toml", "examples/residual.toml"])
def test_every_local_derivative_is_sympys(path):
    model = _model(path)
    checked = 0
    for lm in model.layers:
        for stage in lm.stages:
            for definition in stage.defs.ravel():
                if isinstance(definition, sympy.Piecewise):
                    continue
                terms = D._terms_by_symbol(definition)
                for u in definition.free_symbols:
                    slow = sympy.diff(definition, u) if terms is None else sympy.Add(*[sympy.diff(t, u) for t in terms[u]])
                    assert sympy.srepr(D._diff(definition, u, terms)) == sympy.srepr(slow), (definition, u)
                    checked += 1
    assert checked > 40


def test_the_cached_derivative_is_renamed_back():
    a, b, c, d, e = r
    D._DIFFS.clear()
    first = D._diff_term((a - b) ** 2 / 256, a)
    second = D._diff_term((c - d) ** 2 / 256, c)             # from the cache
    assert len(D._DIFFS) == 1
    assert (first, second) == (sympy.diff((a - b) ** 2 / 256, a), sympy.diff((c - d) ** 2 / 256, c))
    assert D._diff_term(d - c, d) == 1


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-3, 3), min_size=4, max_size=4), st.integers(1, 5))
def test_stacked_evaluation_equals_one_lambdify_per_expression(xs, batch):
    a, b, c, d, e = r
    exprs = [2 * a * b + sympy.exp(c), 2 * c * d + sympy.exp(a), a - b, c - d, sympy.Integer(3),
             sympy.Piecewise((0, a <= 0), (a, True)), sympy.Piecewise((0, d <= 0), (d, True))]
    rng = np.random.default_rng(batch)
    env = {s: np.asarray(x + rng.standard_normal(batch), np.float64) for s, x in zip(r, xs + [0.5])}
    got = evaluate_many(exprs, env, batch, compile_one)
    for expr, value in zip(exprs, got):
        symbols = sorted(expr.free_symbols, key=lambda s: s.name)
        want = np.broadcast_to(sympy.lambdify(symbols, expr, "numpy")(*[env[s] for s in symbols]), (batch,))
        assert value.shape == (batch,)
        np.testing.assert_array_equal(value, want)      # bit for bit


def test_stable_values_bit_for_bit_against_per_expression_lambdify(cnn_exercise):
    from symbackprop.derive.derivation import Derivation
    d = Derivation(cnn_exercise)
    values = V.evaluate(d)
    env = dict(values.env)
    checked = 0
    for group in V._plan(d):
        for target, expr in group[:12]:
            if target is None:
                continue
            symbols = sorted(expr.free_symbols, key=lambda s: s.name)
            fn = V.stable_function(symbols, [expr])
            with np.errstate(all="ignore"):
                want = np.broadcast_to(np.asarray(fn(*[env[s] for s in symbols])[0], np.float64), (values.batch,))
            np.testing.assert_array_equal(env[target], want)
            checked += 1
    assert checked > 50


def test_progress_line_only_on_a_terminal():
    import io
    from symbackprop.writers.output import progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True
    pipe, tty = io.StringIO(), Terminal()
    progress("derive", "deriving 7,955 steps", pipe)
    progress("derive", "deriving 7,955 steps", tty)
    assert pipe.getvalue() == ""
    assert tty.getvalue() == "symbackprop derive: deriving 7,955 steps…\n"


def test_commands_announce_large_networks_on_a_terminal(monkeypatch, capsys):
    import sys
    from symbackprop.cli import main
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert main(["derive", "examples/cnn-exercise.toml", "--format", "json"]) == 0
    assert "deriving" not in capsys.readouterr().err               # 2 examples of a small net: quick
    lines = []
    monkeypatch.setattr("symbackprop.writers.output.progress", lambda command, text, stream=None: lines.append((command, text)))
    from symbackprop.commands import derive
    net = load("examples/cnn.toml")
    net, _ = numbers(net, 0, "derive")
    derive._announce(net, "deriving")
    assert lines and lines[0][0] == "derive" and "243 parameters" in lines[0][1]
