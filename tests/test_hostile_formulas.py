"""Hostile custom formulas: complex constants, max/min of many values, and formulas whose work
has no bound are refused in one line naming the limit — or, where valid, derived correctly."""
import re
import resource
import subprocess
import sys
import time

import pytest
import sympy

from symbackprop.spec import limits
from symbackprop.cli import main
from symbackprop.errors import SpecError
from symbackprop.spec.formula import MAX_ARGUMENTS, parse_formula

z = sympy.Symbol("z", real=True)


def one_neuron(tmp_path, formula, x=0.6):
    """A 1-1 network with the formula as its activation, W = 2.5, b = 0, so z = 2.5 x."""
    spec = tmp_path / "spec.toml"
    spec.write_text(f'[network]\nlayers = [1, 1]\nactivations = [{formula!r}]\nloss = "squared_error"\n'
                    f"[parameters]\nW1 = [[2.5]]\nb1 = [0.0]\n[sample]\nx = [{x}]\ny = [1]\n".replace("'", '"'))
    return spec


def one_line_error(capsys, argv):
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("formula", ["sqrt(-1)*z", "(-1)**0.5*z", "log(-1)*z", "(-1)**(1/3)*z",
                                     "z + sqrt(-2)", "log(-exp(z))", "z*(-8)**(1/3)"])
def test_a_formula_that_is_not_real_valued_is_refused(tmp_path, capsys, formula):
    for command in ("derive", "gradcheck", "explain"):
        err = one_line_error(capsys, [command, one_neuron(tmp_path, formula)])
        assert "network.activations[0]: " in err and "not real-valued" in err, err


@pytest.mark.parametrize("formula", ["z*log(pi - 3)", "z*sqrt(2)", "z*(8)**(1/3)", "z*exp(-1)"])
def test_real_constants_stay_allowed(tmp_path, capsys, formula):
    assert main(["derive", str(one_neuron(tmp_path, formula))]) == 0


@pytest.mark.parametrize("formula, derivative", [
    ("max(z, z**2, z**3, z**4, z**5)", lambda u: 5 * u**4),       # z = 1.5: z**5 is the largest
    ("min(z, z**2, z**3, z**4, z**5)", lambda u: 1.0),            # and z the smallest
    ("max(z, max(z**2, max(z**3, z**4)))", lambda u: 4 * u**3),
    ("max(z, 0.5*z, 0, -1)", lambda u: 1.0),
    ("min(z, 2 - z, 10, z**2)", lambda u: -1.0),
])
def test_max_and_min_of_several_values_derive_and_agree_with_finite_differences(tmp_path, capsys, formula,
                                                                               derivative):
    spec = one_neuron(tmp_path, formula)
    assert main(["derive", str(spec), "--format", "json"]) == 0
    import json
    result = json.loads(capsys.readouterr().out)
    u = 2.5 * 0.6
    a = float(parse_formula(formula, {"z": z}, "f").subs(z, u))
    assert result["gradients"]["b1"][0] == pytest.approx(2 * (a - 1) * derivative(u), rel=1e-12)
    assert main(["gradcheck", str(spec)]) == 0, capsys.readouterr()


@pytest.mark.parametrize("formula, value", [
    ("max(z, z**2, z**3)", lambda u: max(u, u**2, u**3)),
    ("min(z, z**2, z**3, 0.5)", lambda u: min(u, u**2, u**3, 0.5)),
    ("max(z, 1, 2, -z)", lambda u: max(u, 1, 2, -u)),
    ("min(max(z, -z, 0.25), z**2, 3)", lambda u: min(max(u, -u, 0.25), u**2, 3)),
])
@pytest.mark.parametrize("u", [-2.0, -0.5, 0.3, 1.5, 3.0])
def test_max_and_min_of_several_values_are_the_largest_and_smallest(formula, value, u):
    assert float(parse_formula(formula, {"z": z}, "f").subs(z, u)) == pytest.approx(value(u), rel=1e-15)


def test_a_tie_splits_the_derivative_as_two_argument_max_does():
    at_tie = {z: 1}                       # z and 2 - z tie at 1; the other arguments are smaller
    three = sympy.diff(parse_formula("max(z, 2 - z, -5)", {"z": z}, "f"), z).subs(at_tie)
    two = sympy.diff(parse_formula("max(z, 2 - z)", {"z": z}, "f"), z).subs(at_tie)
    assert three == two == 0


def test_the_derivative_of_max_of_many_values_holds_no_max():
    derivative = sympy.diff(parse_formula("max(z, z**2, z**3, z**4)", {"z": z}, "f"), z)
    assert not any(h.args[0].has(sympy.Max) for h in derivative.atoms(sympy.Heaviside))


def test_max_of_39_powers_is_refused_quickly_naming_the_limit(tmp_path, capsys):
    formula = "max(" + ", ".join(f"z**{i}" for i in range(1, 40)) + ")"
    started = time.perf_counter()
    err = one_line_error(capsys, ["derive", one_neuron(tmp_path, formula)])
    assert time.perf_counter() - started < 5
    assert f"max() of 39 values: at most {MAX_ARGUMENTS} (the limit)" in err, err


def test_a_formula_with_a_huge_derivative_is_refused_naming_the_limit():
    formula = "*".join(f"sin({k}*z)" for k in range(2, 42))       # 40 factors: 40 terms of 40
    assert len(formula) <= 400
    with pytest.raises(SpecError, match=r"its derivative has \d+ operations \(the limit is 500\)"):
        parse_formula(formula, {"z": z}, "network.activations[0]")


def test_the_clock_stops_long_work_and_names_the_limit():
    started = time.perf_counter()
    with pytest.raises(SpecError) as err:
        with limits.deadline(0.2, "network.activations[0]", "building the formula"):
            while True:
                pass
    assert time.perf_counter() - started < 2
    assert str(err.value) == "network.activations[0]: building the formula took longer than 0.2 s (the limit)"


@pytest.mark.parametrize("args", [["--exact"], []], ids=["exact", "floats"])
@pytest.mark.parametrize("x", [0.1, 0.0, 2.0, -3.0])
def test_a_tower_of_exponentials_is_refused_within_the_exact_time_bound(tmp_path, x, args):
    # the tower passes float64's range: its exact values grow to millions of digits in integer steps
    # that no clock interrupts (past 20 s), and the arbitrary-precision retry of the float pass built
    # exponents of millions of digits (past 100 s). Now the float pass comes first and exp past ±2²⁰
    # is infinite in it: the value is reported as not finite, well within the exact-arithmetic bound.
    spec = one_neuron(tmp_path, "exp(exp(exp(exp(exp(exp(z))))))", x=x)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run([sys.executable, "-m", "symbackprop", "derive", *args, str(spec)],
                            capture_output=True, text=True, timeout=60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)   # CPU time: the machine's load does not count
    assert after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime < limits.EXACT_SECONDS
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == ("symbackprop derive: error: a1: is not a finite number for these parameters "
                                     "and this sample (overflow, or a function outside its domain)")


@pytest.mark.parametrize("formula, problem", [
    ("z # <img src=x onerror=alert(1)>", "no comments"),
    ("z +\x0c1", "U+000C"),
    ("z\u202e", "U+202E"),
    ("z +\u00a01", "U+00A0"),
])
def test_a_formula_is_printable_text_without_comments(formula, problem):
    with pytest.raises(SpecError, match=re.escape(problem)):
        parse_formula(formula, {"z": z}, "network.activations[0]")
