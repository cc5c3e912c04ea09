"""Text output reads as mathematics, not as SymPy: conditionals as "A if c else B", |z|, z², Σ;
each activation's derivative simplified once (and proven equal to sympy.diff); a custom activation
named by its formula wherever people read it, the code-safe key only inside code."""
import ast
import re

import pytest
import sympy

from symbackprop import backprop
from symbackprop.entries.arrayops import ColSum, RowSum
from symbackprop.cli import main
from symbackprop.codegen.trainer import render
from symbackprop.entries.registry import ACTIVATIONS, Activation, simplest, z
from symbackprop.spec.formula import parse_formula
from symbackprop import Network
from symbackprop.writers.textprint import text

a, y, g = (sympy.Symbol(n, real=True) for n in "ayg")
RAW = re.compile(r"Piecewise|RowSum|ColSum|Abs\(|\*\*|sign\(|Heaviside|Eq\(")

CUSTOM = ["z/(1 + abs(z))", "z**3/(1 + z**2)", "atan(z)", "z*tanh(log(1 + exp(z)))", "max(z, 0)**2 + z/4"]


@pytest.mark.parametrize("expr, shown", [
    (sympy.Piecewise((sympy.Rational(1, 100), a <= 0), (1, True)), "1/100 if a ≤ 0 else 1"),
    (sympy.Piecewise((0, z <= 0), (z, z < 1), (1, True)), "0 if z ≤ 0 else z if z < 1 else 1"),
    (2 * sympy.Piecewise((0, z <= 0), (1, True)), "2*(0 if z ≤ 0 else 1)"),
    (1 / (1 + sympy.Abs(z)) ** 2, "1/(|z| + 1)²"),
    (a * (1 - a) ** 3, "a*(1 - a)³"),
    (a * RowSum(y) - y, "a*Σ_j y_j - y"),
    (a * (g - RowSum(a * g)), "a*(g - Σ_j a_j*g_j)"),
    (ColSum(a), "Σ_n a_n"),
], ids=["leaky", "three branches", "in a product", "abs and square", "cube", "rowsum", "rowsum of a product", "colsum"])
def test_text_reads_as_mathematics(expr, shown):
    assert text(expr) == shown


@pytest.mark.parametrize("formula", [act.name for act in ACTIVATIONS.values() if act.elementwise] + CUSTOM)
def test_simple_derivative_is_the_derivative(formula):
    act = ACTIVATIONS.get(formula) or Activation(formula, parse_formula(formula, {"z": z}, "f"), "f")
    simple = act.simple_derivative
    assert sympy.simplify(simple - act.derivative) == 0 or _agree_numerically(simple, act.derivative)
    assert sympy.count_ops(simple) <= sympy.count_ops(act.derivative)
    assert act.simple_derivative is simple                    # simplified once, then cached


def _agree_numerically(f, g):
    points = [-3.1, -1.7, -0.4, 0.3, 0.9, 2.2, 4.6]   # away from 0, where the kinks are
    return all(abs(complex(f.subs(z, p)) - complex(g.subs(z, p))) < 1e-12 for p in points)


def test_a_custom_activation_derivative_is_simplified():
    act = Activation("c", parse_formula("z/(1 + abs(z))", {"z": z}, "f"), "f")
    assert text(act.derivative) == "-z*sign(z)/(|z| + 1)² + 1/(|z| + 1)"
    assert text(act.simple_derivative) == "1/(|z| + 1)²"


def test_simplification_is_time_bounded():
    slow = sympy.exp(sympy.sin(z) ** 9 * sympy.cos(z) ** 7) * sympy.tan(z) ** 5
    import time
    start = time.perf_counter()
    result = simplest(sympy.diff(slow, z), seconds=0.2)
    assert time.perf_counter() - start < 2.0 and result.free_symbols == {z}


def test_derive_text_has_no_raw_sympy(capsys, tmp_path):
    spec = tmp_path / "net.toml"
    spec.write_text('[network]\nlayers = [2, 2, 1]\nactivations = ["leaky_relu", "z/(1 + abs(z))"]\n'
                    'loss = "half_squared_error"\n[parameters]\nW1 = [[0.5, -1.0], [1.0, 0.2]]\nb1 = [0.1, -0.2]\n'
                    'W2 = [[0.3, -0.4]]\nb2 = [0.05]\n[sample]\nx = [1.0, 2.0]\ny = [0.5]\n', encoding="utf-8")
    assert main(["derive", str(spec)]) == 0
    out = capsys.readouterr().out
    assert not RAW.search(out), RAW.search(out)
    assert "1/100 if a1[1] ≤ 0 else 1" in out
    assert "da2[1]/dz2[1] = 1/(|z2[1]| + 1)²" in out
    assert "(z/(|z| + 1))" in out.splitlines()[0] or "z/(|z| + 1)" in out.splitlines()[0]


def test_trainer_header_names_a_custom_activation_by_its_formula(tmp_path):
    network = Network.from_dict({"network": {"layers": [2, 3, 1], "activations": ["z/(1 + abs(z))", "sigmoid"],
                                             "loss": "squared_error"}})
    source = render(network)
    ast.parse(source)
    header = source.split("\nimport", 1)[0]
    assert "# Network:  2-3-1 network (f(z) = z/(|z| + 1), sigmoid; squared_error)" in header
    assert 'description="Train the 2-3-1 network (f(z) = z/(|z| + 1), sigmoid; squared_error)' in source
    assert "custom_" not in header.split("# The derivation")[0]   # the key stays inside the code


def test_repr_is_short_and_names_the_network():
    assert repr(backprop("examples/seed.toml")) == \
        "<Derived 3-2-1 sigmoid/sigmoid squared_error, 11 parameters, C = 0.16900>"
    net = {"network": {"layers": [2, 1], "activations": ["z/(1 + abs(z))"], "loss": "mse"}}
    assert repr(backprop(net)) == "<Derived 2-1 (z/(|z| + 1)) mse, 3 parameters>"
