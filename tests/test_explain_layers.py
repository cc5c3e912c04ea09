"""``explain`` for layer graphs: every layer kind's worked example (one example and a batch) renders
in every format — Markdown parses as CommonMark tables, LaTeX compiles and fits the page, HTML
typesets in headless Chromium with no KaTeX error — and every number its tables print is
``derive --format json``'s. Then each kind's own content, ``--wrt``, ``train`` and elision."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from symbackprop.writers import latexdoc
from symbackprop.cli import main
from symbackprop.derive.derivation import Derivation
from symbackprop.writers.document import Heading, Table, to_html
from symbackprop.errors import SpecError
from symbackprop.explain.example import explain
from symbackprop.derive.model import Model
from symbackprop.numeric.values import evaluate
from symbackprop.report.chain import render_json
from symbackprop.explain.worked import Work
from symbackprop.explain.worksheet import Num

sys.path.insert(0, str(Path(__file__).parent))
from browser import chromium_binary, chromium_dom  # noqa: E402
from cases import BATCH_ONLY, GRAPHS, graph  # noqa: E402
from mdtables import tables as md_tables  # noqa: E402

CASES = [(name, batch) for name in GRAPHS for batch in ([3] if name in BATCH_ONLY else [None, 2])]
IDS = [f"{name}{'-batch' if batch else ''}" for name, batch in CASES]
_CACHE = {}


def worked(name, batch):
    if (name, batch) not in _CACHE:
        _CACHE[(name, batch)] = explain(graph(name, batch=batch))
    return _CACHE[(name, batch)]


# ---- every format renders

@pytest.mark.parametrize("name, batch", CASES, ids=IDS)
def test_markdown_parses(name, batch):
    md = worked(name, batch).markdown()
    tables = md_tables(md)
    assert tables and all(all(cells == header for cells in body) for header, body in tables)
    assert sum(1 + len(body) + 1 for _, body in tables) == sum(1 for line in md.splitlines() if line.startswith("|"))
    assert md.count("$") % 2 == 0 and "[[" not in md and "_{0" not in md


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no pdflatex (bash .ci/install-tex.sh)")
def test_latex_compiles_and_fits(tmp_path):
    """Every case's body in one document (one pdflatex run), no overfull box over 3 pt."""
    body = "\n\n".join(rf"\section*{{{i}}}" + "\n" + worked(*case).latex(fragment=True) for i, case in zip(IDS, CASES))
    (tmp_path / "all.tex").write_text(latexdoc.document(body, "layers"), encoding="utf-8")
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "all.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]
    log = (tmp_path / "all.log").read_text(encoding="latin-1")
    overfull = [float(x) for x in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide", log)]
    assert all(pt <= 3.0 for pt in overfull), overfull


@pytest.mark.skipif(chromium_binary() is None, reason="no chromium on PATH: run bash .ci/install-chromium.sh")
def test_html_renders_without_katex_errors(tmp_path):
    from symbackprop.writers.html import standalone_page
    from test_explain_html import _Page
    # one case per kind (the batch only where a kind needs one): KaTeX takes a while per formula
    body = "".join(to_html(worked(*case).blocks()) for case in CASES if case[1] is None or case[0] in BATCH_ONLY)
    path = tmp_path / "all.html"
    path.write_text(standalone_page("layers", body), encoding="utf-8")
    page = _Page()
    page.feed(chromium_dom(path))
    displays = body.count("$$") // 2
    assert "katex-error" not in page.classes
    assert page.classes.count("katex-display") == displays > 250
    assert page.classes.count("katex") > 2500


# ---- the numbers are derive's

@pytest.mark.parametrize("name, batch", CASES, ids=IDS)
def test_table_numbers_equal_derive_json(name, batch, tmp_path, capsys):
    e = worked(name, batch)
    d = Derivation(Model(e.network))
    data = json.loads(render_json(d, evaluate(d)))
    values = {**data["forward"], **{f"grad.{k}": v for k, v in data["gradients"].items()}}
    n, checked = Num(e.digits), set()
    for block in e.blocks():
        if isinstance(block, Heading) and block.text.startswith("4. Update"):
            break                                   # after it, the pass at the new parameters
        if not isinstance(block, Table) or block.source is None:
            continue
        for row, where in zip(block.rows, block.source):
            for cell, at in zip(row[1:], where):
                if at is None or at[0] not in values:
                    continue
                quantity, index = at
                assert cell == f"${n.tex(np.asarray(values[quantity])[index])}$", (quantity, index, cell)
                checked.add(quantity)
    assert checked >= _tabulated(e.network, data), sorted(_tabulated(e.network, data) - checked)
    assert n.tex(data["loss"]) in e.markdown()


def _tabulated(net, data) -> set:
    """The quantities a worked example tabulates: every array (one example's with two axes or
    more, a batch's, a long vector), but not a = z where there is no activation; and every
    gradient but a dense layer's (a matrix)."""
    batch = 1 if net.batched else 0
    out = set()
    for layer in net.graph:
        for q in (f"{st}{layer.index}" for st in ("mean", "var", "xhat", "z", "a")):
            if q not in data["forward"]:
                continue
            shape = np.shape(data["forward"][q])
            if q.startswith("a") and layer.has_z and layer.activation.name == "identity":
                continue
            if q.startswith(("mean", "var")) or len(shape) - batch >= 2 or batch or shape[-1] > 12:
                out.add(q)
        if layer.kind.name != "dense":
            out |= {f"grad.{p}" for p in layer.params}
    return out


def test_batchnorm_compact_form_is_the_derivation():
    """The compact ∂C/∂x explain writes equals the derivation's, which goes through μ and var."""
    for name, batch in (("batchnorm", 3), ("batchnorm-conv", 3), ("layernorm", 2), ("layernorm-image", None)):
        e = worked(name, batch)
        work = Work(e)
        for lm in work.model.layers:
            if lm.layer.kind.name in ("batchnorm", "layernorm") and lm.layer.sources[0] > 0:
                *_, compact = lm.layer.kind.compact(lm, work.before)
                np.testing.assert_allclose(compact, work.before.passed(lm, 0), rtol=1e-9, atol=1e-12)


# ---- each kind's own part

def _section(md, start, end="\n## "):
    i = md.index(start)
    return md[i:md.index(end, i + len(start))]


def test_each_kind_writes_its_own_part():
    conv = worked("conv2d", None).markdown()
    assert r"\tilde{x}" in conv and "is $x$ with 1 zero on every side" in conv and "the stride" in conv
    assert r"z^{(1)}_{1,1,1} &= W^{(1)}_{1,1,2,2} x_{1,1,1}" in conv                    # the padding's terms left out
    assert r"\frac{\partial C}{\partial W^{(1)}}_{o,c,k} = \textstyle\sum_{s} \delta^{(1)}_{o,s}\, \tilde{x}_{c,2(s - 1) + k}" in conv   # stride 2, 1-based
    assert "kernel 1,1" in conv
    stacked = explain(graph("maxpool2d-overlap")).markdown()                            # a conv after another layer
    assert "maximum (where it is)" in stacked and "goes to" in stacked and "all of it to (" in stacked
    avg = worked("avgpool1d", None).markdown()
    assert "mean (÷ 3)" in avg and "to each of" in avg
    bn = worked("batchnorm", 3).markdown()
    assert "the batch statistics, which couple the examples" in bn and "the batch coupling" in bn
    assert r"\mu^{(2)}_{1} &= \frac{1}{3} \Big(" in bn and r"\overline{g \odot \hat{x}}" in bn
    ln = worked("layernorm", 2).markdown()
    assert "per example, over all its values" in ln and "depends on its own $\\delta$ only" in ln
    drop = worked("dropout", 2).markdown()
    assert "The mask $M^{(2)}$ keeps a value where it is 1" in drop and "1/(1 - p) = 1/0.6" in drop
    add = worked("add", None).markdown()
    assert "feeds layer 2 and layer 3, so $\\partial C/\\partial a^{(1)}$ is the sum" in add
    assert "| from layer 2 | from layer 3 | sum |" in add


def test_conv_input_gradient_is_the_flipped_kernel():
    GRAPHS["_two_convs"] = ([1, 5, 5], [dict(type="conv2d", channels=2, kernel=2, activation="tanh"),
                                        dict(type="conv2d", channels=2, kernel=3, stride=2, padding=1),
                                        dict(type="flatten"), dict(type="dense", units=2)], "mse")
    try:
        md = explain(graph("_two_convs")).markdown()
    finally:
        del GRAPHS["_two_convs"]
    back = _section(md[md.index("## 3. Backward pass"):], "### Layer 2: conv2d", "### Layer 1")
    assert r"\operatorname{rot180}\left(W^{(2)}\right)^\top" in back
    assert "spread out by the stride $2$" in back and "cropped by the padding $1$" in back
    assert "that correlation is the sum over the outputs whose window covers it" in back


# ---- --wrt, train, elision

def test_wrt_limits_the_backward_pass_and_the_update(tmp_path, capsys):
    e = explain(graph("add", None), wrt=["W4", "W2"])
    md = e.markdown()
    back = _section(md, "## 3. Backward pass")
    assert "Only the gradients of `W4`, `W2` are followed (`--wrt`), through the layers they need: 4, 3, 2." in back
    assert "### Layer 1" not in back and r"\frac{\partial C}{\partial W^{(4)}_{1,1}}" in back
    assert r"\frac{\partial C}{\partial b^{(4)}_{1}}" not in back
    update = _section(md, "## 4. Update")
    assert r"W^{(2)}_{1,1} &\leftarrow" in update and r"W^{(1)}" not in update and r"b^{(4)}" not in update
    np.testing.assert_array_equal(e.update.params["b4"] != e.network.parameters["b4"], True)   # still updated
    spec = tmp_path / "seed.toml"
    spec.write_text(Path("examples/seed.toml").read_text(), encoding="utf-8")
    assert main(["explain", str(spec), "--wrt", "W2", "--wrt", "b2"]) == 0
    out = capsys.readouterr().out
    assert "### Layer 1" not in _section(out, "## 3. Backward pass")
    assert main(["explain", str(spec), "--wrt", "W9"]) == 2
    assert capsys.readouterr().err.strip() == ("symbackprop explain: error: --wrt: unknown parameter 'W9' "
                                               "(expected W1, b1, W2, b2)")
    with pytest.raises(SpecError, match="--wrt: unknown parameter"):
        explain(graph("add", None), wrt=["gamma1"])


def test_train_keeps_the_others_as_they_were():
    net = graph("batchnorm", 3)
    data = {"network": {"input": list(net.input), "loss": net.loss.name}, "layer": [dict(x) for x in GRAPHS["batchnorm"][1]],
            "parameters": {k: v.tolist() for k, v in net.parameters.items()},
            "sample": {"x": net.x.tolist(), "y": net.y.tolist()}, "optimizer": {"train": ["gamma2", "beta2"]}}
    e = explain(data)
    for name, value in net.parameters.items():
        moved = not np.array_equal(e.update.params[name], value)
        assert moved == (name in ("gamma2", "beta2")), name
    md = e.markdown()
    assert "Not trained (`train = [`gamma2`, `beta2`]`): $W^{(1)}$, $b^{(1)}$, $W^{(3)}$, $b^{(3)}$ keep their values." in md
    assert "(W1, b1, W3, b3 not trained: as before)" in md


def test_large_arrays_are_tables_elided_past_the_stated_limit():
    GRAPHS["_long"] = ([1, 16], [dict(type="conv1d", channels=7, kernel=3, padding=1, activation="relu"),
                                 dict(type="flatten"), dict(type="dense", units=2)], "mse")
    try:
        e = explain(graph("_long", batch=6))
    finally:
        del GRAPHS["_long"]
    md = e.markdown()
    assert "Tables show at most 12 rows and columns, 6 channels and 4 examples" in md
    z = [b for b in e.blocks() if isinstance(b, Table) and b.header[0].startswith("$z^{(1)}$")][:4]   # before the step
    assert [b.header[0] for b in z] == [f"$z^{{(1)}}$, example {n}" for n in range(1, 5)]          # examples 1 to 4
    assert z[0].header[1:] == ("1", "2", "3", "4", "5", "6", "7", "8", "9", "⋯", "15", "16")
    assert [r[0] for r in z[0].rows] == [str(c) for c in range(1, 8)]
    assert "(examples 5 to 6 not shown)" in md
    # an image's channels past 6: the first 3 and the last; rows and columns past 12 elided
    sheet = Work(e).before
    tables = sheet.tables("u", np.arange(8 * 14 * 14, dtype=float).reshape(1, 8, 14, 14))
    assert [t.header[0] for t in tables if isinstance(t, Table)] == [f"$u$, example 1, channel {c}" for c in (1, 2, 3, 8)]
    assert [r[0] for r in tables[0].rows][9:] == ["⋮", "13", "14"]
    assert any(getattr(t, "text", "") == "(channels 4 to 7 not shown)" for t in tables)
