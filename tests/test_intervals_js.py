"""symbackprop/static/intervals.js gives the ranges symbackprop/check/intervals.py gives.

Expressions of every kind check's formulas hold (the interval tests' list, the registry's
activations, their derivatives and the losses), printed by the worksheet's printer
(symbackprop/exercise/jsprint.py), bounded on random boxes — points, narrow and wide boxes, boxes
across 0 and unbounded ones — by both: the endpoints must be the same floats (within a few float
steps where a transcendental function's library differs; where erf is in it, which JavaScript lacks
and intervals.js computes to 1e-13, to 1e-12 of the values around it).
And a written number's interval, from its digits, is the same in both, to the bit.
Runs with node where it is installed, else in headless Chromium."""
import math
import os
import random
import sys
from pathlib import Path

import pytest
import sympy

sys.path.insert(0, os.path.dirname(__file__))  # tests/ is no package
from jsrun import available, run_js  # noqa: E402
from test_intervals import EXPRESSIONS, u, w  # noqa: E402

from symbackprop.check.hand import Written  # noqa: E402
from symbackprop.check.intervals import Interval, bound  # noqa: E402
from symbackprop.entries.registry import ACTIVATIONS, LOSSES, a, y, z  # noqa: E402
from symbackprop.errors import SpecError  # noqa: E402
from symbackprop.exercise.jsprint import NoRule, formula  # noqa: E402

pytestmark = pytest.mark.skipif(not available(), reason="neither node nor chromium on PATH")

INTERVALS_JS = (Path(__file__).parent.parent / "symbackprop" / "static" / "intervals.js").read_text()
TRANSCENDENTAL = (sympy.exp, sympy.log, sympy.tanh, sympy.atan, sympy.asinh, sympy.sin, sympy.cos, sympy.erf)
SHOW = "function (r) { return [String(r.lo), String(r.hi)]; }"


def _expressions():
    out = [(e, (u, w)) for e in EXPRESSIONS]
    for act in ACTIVATIONS.values():
        if act.elementwise:
            out += [(act.expr, (z,)), (act.derivative, (z,))]
    out += [(loss.term, (a, y)) for loss in LOSSES.values()]
    return out


def _box(rng, symbols):
    kind = rng.choice(["point", "narrow", "wide", "zero", "unbounded"])
    box = {}
    for s in symbols:
        c = rng.uniform(-3, 3)
        if kind == "point":
            box[s] = Interval.point(c)
        elif kind == "narrow":
            box[s] = Interval(c - 10 ** rng.uniform(-9, -3), c + 10 ** rng.uniform(-9, -3))
        elif kind == "wide":
            box[s] = Interval(c - rng.uniform(0, 4), c + rng.uniform(0, 4))
        elif kind == "zero":
            box[s] = Interval(-rng.uniform(0, 1e-3), rng.uniform(0, 1e-3))
        else:
            box[s] = rng.choice([Interval(c, math.inf), Interval(-math.inf, c)])
    return box


def _close(p: float, q: float, transcendental: str) -> bool:
    if p == q or (math.isnan(p) and math.isnan(q)):
        return True
    if not (math.isfinite(p) and math.isfinite(q)):
        return False
    if transcendental == "erf":
        return abs(p - q) <= 1e-12 * (1 + max(abs(p), abs(q)))     # erf's 1e-13, times the factors around it
    return transcendental and abs(p - q) <= 8 * math.ulp(max(abs(p), abs(q)))


def test_bound_gives_the_python_ranges():
    rng = random.Random(23)
    cases, code = [], []
    for expr, symbols in _expressions():
        places = {s: i for i, s in enumerate(symbols)}
        try:
            text = formula(expr, places)
        except NoRule:
            continue
        kind = "erf" if expr.has(sympy.erf) else "yes" if expr.has(*TRANSCENDENTAL) else ""
        for _ in range(12):
            box = _box(rng, symbols)
            try:
                want = bound(expr, box)
            except (ValueError, ZeroDivisionError):
                continue
            env = ", ".join(f"I.iv({_js(box[s].lo)}, {_js(box[s].hi)})" for s in symbols)
            code.append(f"({SHOW})(I.bound({text}, [{env}]))")
            cases.append((expr, box, want, kind))
    got = run_js([INTERVALS_JS], "[" + ",\n".join(code) + "]")
    assert len(got) == len(cases) > 500
    bad = [(str(e), box, want, g) for (e, box, want, kind), g in zip(cases, got)
           if not (_close(want.lo, float(g[0]), kind) and _close(want.hi, float(g[1]), kind))]
    assert not bad, bad[:5]


def _js(v: float) -> str:
    return "Infinity" if v == math.inf else "-Infinity" if v == -math.inf else repr(v)


def _texts(rng):
    yield from ["0", "-0.0", "3", "0.29", "-0.822", "8.24e-7", "1e-3", "1E+2", ".5", "5.", "-.25e1", " 0.50 ",
                "\u22120.5", "123456789.123456789", "0.1", "1e308", "2.5e-320", "+7.000", "007.50",
                "1.2.3", "abc", "", "1e", "--1", "inf", "nan", "1_000", "0x10", "1e400", "١٢"]
    for _ in range(400):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 12)))
        point = rng.randint(0, len(digits))
        text = rng.choice(["", "-", "+"]) + digits[:point] + rng.choice([".", ""]) + digits[point:]
        if rng.random() < 0.4:
            text += rng.choice("eE") + rng.choice(["", "-", "+"]) + str(rng.randint(0, 40))
        yield text


def test_written_numbers_stand_for_the_same_intervals():
    texts = list(_texts(random.Random(5)))
    got = run_js([INTERVALS_JS], "[" + ", ".join(
        f"(function (w) {{ return w === null ? null : [String(w.value), String(w.interval.lo), String(w.interval.hi)]; }})"
        f"(I.written({_quote(t)}))" for t in texts) + "]")
    for text, g in zip(texts, got):
        try:
            want = Written.parse(text, "x")
        except SpecError:
            assert g is None, (text, g)
            continue
        assert g is not None, text
        assert [float(v) for v in g] == [want.value, want.interval.lo, want.interval.hi], (text, g, want)


def _quote(text: str) -> str:
    import json
    return json.dumps(text)
