"""derive on layer graphs, in every format and both forms: the per-weight chain-rule products (a
shared weight's as a Σ over positions), the matrix-form rules of every kind, JSON keys and values
as the issue fixes them, LaTeX that compiles and fits, Markdown whose tables parse."""
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from cases import graph, graph_spec
from symbackprop.cli import main

DOCS = [("batchnorm-conv", 2), ("dropout-conv", None), ("add", 3), ("conv1d", None), ("layernorm-image", 2),
        ("avgpool1d", None)]


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("graphs")
    out = {}
    for name, batch in DOCS:
        path = folder / f"{name}.json"
        path.write_text(json.dumps(graph_spec(name, batch)), encoding="utf-8")
        out[name] = path
    return out


def derive(capsys, *argv):
    assert main(["derive", *map(str, argv)]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("name, batch", DOCS, ids=[d[0] for d in DOCS])
def test_json_keys_and_values(name, batch, specs, capsys):
    net = graph(name, batch)
    masks = {"masks": net.masks} if net.masks else {}
    C, grads = net.compile().loss_and_gradients(net.parameters, net.x, net.y, **masks)
    for form in ("scalar", "matrix"):
        out = json.loads(derive(capsys, specs[name], "--format", "json", "--form", form))
        assert out["loss"] == pytest.approx(float(C), rel=1e-10)
        assert set(out["gradients"]) == set(net.parameter_shapes())
        for pname, g in grads.items():
            np.testing.assert_allclose(out["gradients"][pname], g, rtol=1e-8, atol=1e-12)
        for layer in net.graph:
            assert f"a{layer.index}" in out["forward"]
            assert (f"z{layer.index}" in out["forward"]) == layer.has_z
            shape = (len(net.x),) * bool(net.batched) + layer.shape
            assert np.shape(out["forward"][f"a{layer.index}"]) == shape
        assert set(out["formulas"]) == set(net.parameter_shapes())
        assert out["network"]["input"] == list(net.input) and len(out["network"]["graph"]) == net.depth


def test_a_conv_weight_is_a_sum_over_positions(specs, capsys):
    text = derive(capsys, specs["conv1d"], "--wrt", "W1")
    line = next(l for l in text.splitlines() if l.strip().startswith("dC/dW1[1,1,1] ="))
    assert line.count(" + ") == 3 - 1 and "delta1" in line       # the first tap meets 3 of 4 positions... all but the padded one


def test_every_kind_s_backward_rule_is_in_the_matrix_form(specs, capsys):
    rules = {"batchnorm-conv": ["route(", "mean(g)", "padded by the kernel size less 1"], "dropout-conv": ["M⁽²⁾ / (1 - p)", "reshape"],
             "add": ["both paths"], "avgpool1d": ["spread("], "layernorm-image": ["mean over each example"],
             "examples/lenet.toml": ["δ̂⁽³⁾ ⋆ rot180(W⁽³⁾)ᵀ", "first maximum"]}   # the second conv passes its gradient on
    for name, words in rules.items():
        text = derive(capsys, specs.get(name, name), "--form", "matrix")
        for word in words:
            assert word in text, (name, word)


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no pdflatex (bash .ci/install-tex.sh)")
def test_latex_compiles_and_fits(specs, capsys, tmp_path):
    for name, _ in DOCS[:4]:
        for form in ("scalar", "matrix"):
            tex = derive(capsys, specs[name], "--format", "latex", "--form", form)
            (tmp_path / "d.tex").write_text(tex, encoding="utf-8")
            proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "d.tex"], cwd=tmp_path,
                                  capture_output=True, text=True, encoding="latin-1", timeout=300)
            assert proc.returncode == 0, (name, form, proc.stdout[-1500:])
            log = (tmp_path / "d.log").read_text(encoding="latin-1")
            widths = [float(x) for x in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide", log)]
            assert all(w <= 3.0 for w in widths), (name, form, widths)


def test_markdown_tables_parse(specs, capsys):
    from markdown_it import MarkdownIt
    md = MarkdownIt("commonmark").enable("table")
    for name, _ in DOCS:
        for form in ("scalar", "matrix"):
            text = derive(capsys, specs[name], "--format", "markdown", "--form", form)
            tokens = md.parse(text)
            table_lines = sum(1 for line in text.splitlines() if line.startswith("|"))
            rows = sum(1 for t in tokens if t.type == "tr_open") + sum(1 for t in tokens if t.type == "thead_open")
            assert rows == table_lines, (name, form)
