"""Every LaTeX output is a complete document that compiles with pdflatex and fits the page (no
overfull box wider than a few points): derive in both forms, explain on a wide net and a batch;
with --fragment, the body alone."""
import re
import shutil
import subprocess

import pytest

from symbackprop.cli import main
from symbackprop.explain.example import explain
from symbackprop import Network

from specs import SEED_BATCH, wide, wide_input

SLACK_PT = 3.0   # "a few points": what pdflatex may overrun by


def _compile(tmp_path, name, tex):
    (tmp_path / f"{name}.tex").write_text(tex, encoding="utf-8")
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", f"{name}.tex"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, (name, proc.stdout[-2000:])
    log = (tmp_path / f"{name}.log").read_text(encoding="latin-1")
    return [float(x) for x in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide", log)]


def _derive(capsys, *argv):
    assert main(["derive", *argv]) == 0
    return capsys.readouterr().out


def test_overfull_boxes_are_read_from_the_log(tmp_path):
    if shutil.which("pdflatex") is None:
        pytest.skip("no pdflatex here (CI installs texlive-latex-base through .ci/install-tex.sh)")
    tex = "\\documentclass{article}\\begin{document}\\noindent\\rule{600pt}{1pt}\\end{document}"
    assert max(_compile(tmp_path, "wide", tex)) > 100


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no pdflatex (bash .ci/install-tex.sh)")
def test_every_latex_output_compiles_and_fits(tmp_path, capsys):
    import json
    for name, data in (("wide1", wide(1)), ("wide8", wide(8)), ("batch", SEED_BATCH)):
        (tmp_path / f"{name}.json").write_text(json.dumps(data), encoding="utf-8")
    docs = {
        "mnist_matrix": _derive(capsys, "examples/mnist.toml", "--format", "latex"),
        "wide_matrix": _derive(capsys, str(tmp_path / "wide8.json"), "--form", "matrix", "--format", "latex"),
        "wide8_scalar": _derive(capsys, str(tmp_path / "wide8.json"), "--format", "latex"),
        "batch_scalar": _derive(capsys, str(tmp_path / "batch.json"), "--format", "latex"),
        "wide1_explain": explain(Network.from_dict(wide(1))).latex(),
        "wide8_explain": explain(Network.from_dict(wide(8))).latex(),
        "30_inputs_explain": explain(Network.from_dict(wide_input(30))).latex(),   # elided matrices
    }
    for name, tex in docs.items():
        assert tex.startswith("\\documentclass") and tex.rstrip().endswith("\\end{document}"), name
        overfull = _compile(tmp_path, name, tex)
        assert all(pt <= SLACK_PT for pt in overfull), (name, overfull)


def test_per_weight_latex_has_the_forward_pass(capsys):
    tex = _derive(capsys, "examples/seed.toml", "--format", "latex")
    forward = tex[tex.index("Forward pass"):tex.index("Backward pass")]
    assert "$a^{(1)}_{1}$ & 0.28905" in forward and r"$C \approx 0.16900$" in forward


def test_fragment_is_the_body_alone(tmp_path, capsys):
    for argv in (["derive", "examples/seed.toml"], ["derive", "examples/mnist.toml"],
                 ["explain", "examples/seed.toml"]):
        assert main([*argv, "--format", "latex", "--fragment"]) == 0
        body = capsys.readouterr().out
        assert "\\documentclass" not in body and "\\begin{document}" not in body and len(body) > 500, argv
    assert main(["derive", "examples/seed.toml", "--fragment"]) == 2
    assert "--fragment" in capsys.readouterr().err
