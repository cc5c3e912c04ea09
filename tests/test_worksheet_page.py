"""The interactive worksheet page without a browser: its boxes, its limits, its printer.
(tests/test_worksheet_browser.py drives it in Chromium against check.)"""
import re

import pytest
import sympy

from symbackprop import Network, load
from symbackprop.errors import SpecError
from symbackprop.exercise import judging as judging_module, page as page_module
from symbackprop.exercise.jsprint import NoRule, formula, js
from symbackprop.exercise.judging import judging
from symbackprop.exercise.page import render

SEED_ASKED = ["z1", "a1", "z2", "a2", "loss", "dC/da2", "da2/dz2", "delta2", "grad.W2", "grad.b2", "delta1",
              "grad.W1", "grad.b1", "adam.m.W2", "adam.W2", "new.z2", "new.loss"]


@pytest.fixture(scope="module")
def seed():
    return load("examples/seed.toml")


def test_a_box_for_every_element_in_the_order_asked(seed):
    page = render(seed, SEED_ASKED, title="seed <exercise>")
    keys = re.findall(r'class="box" data-node="\d+" data-key="([^"]+)"', page)
    assert keys[:4] == ["z1[1]", "z1[2]", "a1[1]", "a1[2]"]
    assert len(keys) == 2 + 2 + 1 + 1 + 1 + 1 + 1 + 1 + 2 + 1 + 2 + 6 + 2 + 2 + 2 + 1 + 1
    assert "grad.W1[2][3]" in keys and "<title>seed &lt;exercise&gt;</title>" in page
    # offline: no address is loaded (KaTeX's fonts are data: URIs), and the export is a data: link
    assert not re.search(r'(src|href)="(https?:)?//', page) and "@import" not in page


def test_nothing_is_written_per_network(seed):
    """Every formula the page judges with is printed from check's graph: a node's and its mistakes'."""
    data, code, _ = judging(seed, SEED_ASKED)
    formulas = code.count("function (e) { return I.")
    assert formulas >= len(data["nodes"])
    used = {n["f"] for n in data["nodes"]} | {m[2] for n in data["nodes"] for m in n["m"] + n["pairs"]}
    assert used == set(range(code.count("\n[function (e)")))


def test_unknown_quantities_and_big_networks_are_refused(seed, monkeypatch):
    with pytest.raises(SpecError, match="unknown quantity 'grad.W9'"):
        render(seed, ["z1", "grad.W9"], title="x")
    monkeypatch.setattr(judging_module, "MAX_NODES", 10)
    with pytest.raises(SpecError, match="at most 10 numbers in one training step, this one has"):
        render(seed, SEED_ASKED, title="x")
    monkeypatch.setattr(judging_module, "MAX_NODES", 1500)
    monkeypatch.setattr(page_module, "MAX_PAGE_BYTES", 1000)
    with pytest.raises(SpecError, match=r"at most 1,000 \(ask for fewer"):
        render(seed, SEED_ASKED, title="x")


def test_new_pass_needs_an_optimizer():
    net = Network.from_dict({"network": {"layers": [1, 1], "activations": ["sigmoid"], "loss": "squared_error"},
                             "parameters": {"W1": [[0.5]], "b1": [0.0]}, "sample": {"x": [2], "y": [1]}})
    with pytest.raises(SpecError, match=r"name the optimizer"):
        render(net, ["new.loss"], title="x")


def test_the_printer_follows_check_s_interval_rules():
    a, b, c = sympy.symbols("a b c", real=True)
    places = {a: 0, b: 1}
    assert js(a * b + 2, places) == "I.sum([I.c(2.0), I.prod([e[0], e[1]])])"
    assert js(sympy.sqrt(a), places) == "I.sqrt(e[0])" and js(a ** 3, places) == "I.power(e[0], 3.0)"
    assert js(sympy.Rational(1, 10) * a, places).startswith("I.prod([I.cw(0.1), ")     # 1/10 is no float
    assert js(c * a, places, {c: 0.5}) == "I.prod([e[0], I.c(0.5)])"                     # a hyperparameter
    assert "I.piecewise(e, [[function (e) { return e[0]; }, function (e) { return I.cmp(\">\", e[0], I.c(0.0))" \
        in js(sympy.Piecewise((a, a > 0), (0, True)), places)
    assert formula(a * (1 - a), places).endswith("[[0, function (e) { return I.sum([I.c(1.0), I.prod([I.c(-2.0), e[0]])]); }]]]")
    assert formula(a * b, places).endswith(", null]")                                   # nothing repeated
    with pytest.raises(NoRule):
        js(sympy.gamma(a), places)
    with pytest.raises(NoRule):
        js(c, places)
