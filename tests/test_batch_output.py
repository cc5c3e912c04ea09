"""A batch in derive's output: every product printed is true as printed (per example, then the
batch mean of the gradient, never a factor as its batch mean), the examples past the stated number
are elided, and the Markdown of derive and explain parses as tables with one line per cell."""
import re

import numpy as np
import pytest

from symbackprop import backprop
from symbackprop.cli import main
from symbackprop.explain.example import explain
from symbackprop.report.chain import EXAMPLES_SHOWN

from mdtables import tables as md_tables
from specs import SEED_BATCH, batch_of, wide

NUMBER = r"\(?-?[\d.]+(?:e[-+]\d+)?\)?"


def _value(text):
    return float(text.strip("()"))


def test_every_product_shown_is_true_as_printed():
    result = backprop(SEED_BATCH)
    text = result.render("text")
    assert "mean over the batch)" not in text                   # no factor printed as its batch mean
    products = re.findall(rf"example (\d): ((?:{NUMBER} × )+{NUMBER}) [≈=] ({NUMBER})", text)
    assert len(products) >= 3 * 12
    for _, factors, shown in products:
        product = np.prod([_value(f) for f in factors.split(" × ")])
        assert product == pytest.approx(_value(shown), rel=5e-4, abs=1e-9), (factors, shown)
    # each gradient: the examples' values, then their mean, which is the gradient
    v = result.values
    block = text[text.index("  dC/dW2[1,1]"):text.index("  dC/dW2[1,2]")]
    each = [_value(x) for x in re.findall(rf"example \d: .* [≈=] ({NUMBER})\n", block)]
    step = result.derivation.gradient("W2", (0, 0))
    assert each == pytest.approx(list(v.env[step.symbol]), rel=1e-4)
    mean = _value(re.search(rf"mean over the 3 examples [≈=] ({NUMBER})", block).group(1))
    assert mean == pytest.approx(v.gradients["W2"][0, 0], rel=1e-4) == pytest.approx(np.mean(each), rel=1e-3)


def test_a_large_batch_shows_the_stated_number_of_examples(capsys, tmp_path):
    import json
    path = tmp_path / "b.json"
    path.write_text(json.dumps(batch_of(10)), encoding="utf-8")
    assert main(["derive", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"examples 1 to {EXAMPLES_SHOWN} of the 10 (the rest are elided)" in out
    block = out[out.index("  dC/dW2[1,1]"):out.index("  dC/dW2[1,2]")]
    assert [int(i) for i in re.findall(r"example (\d+):", block)] == list(range(1, EXAMPLES_SHOWN + 1))
    assert f"(examples {EXAMPLES_SHOWN + 1} to 10 not shown)" in block and "mean over the 10 examples" in block
    header = out[out.index("Forward pass"):].splitlines()[1].split()
    assert header == ["quantity"] + [w for i in range(1, EXAMPLES_SHOWN + 1) for w in ("example", str(i))]


def _table_lines(markdown: str) -> int:
    return sum(1 for line in markdown.splitlines() if line.startswith("|"))


@pytest.mark.parametrize("make", [lambda: backprop(SEED_BATCH).render("markdown"),
                                  lambda: backprop("examples/seed.toml").render("markdown"),
                                  lambda: explain(SEED_BATCH).markdown(),
                                  lambda: explain(wide(8)).markdown()],
                         ids=["derive batch", "derive one example", "explain batch", "explain 4-8-8-3 batch"])
def test_markdown_tables_parse_with_one_line_per_cell(make):
    md = make()
    tables = md_tables(md)
    assert tables, "no table parsed"
    rows = 0
    for header, body in tables:
        assert body and all(cells == header for cells in body), (header, body)
        rows += 2 + len(body)                                  # header, delimiter, body rows
    assert rows == _table_lines(md)                             # every table line is in a parsed table
    assert "[[" not in md                                       # no NumPy repr in a cell
