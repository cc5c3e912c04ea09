"""-o and --format: the format follows the output file's extension when --format is not given; an
extension a command cannot write, or one contradicting --format, is a one-line error (exit 2) and
writes nothing. PDF is refused with the way to make one. Numbers show the digits asked for."""
import json

import pytest

from symbackprop.cli import main

SEED = "examples/seed.toml"


@pytest.mark.parametrize("command, suffix, starts", [
    ("derive", ".txt", "Network 3-2-1"), ("derive", ".md", "# Gradients"), ("derive", ".tex", "\\documentclass"),
    ("derive", ".json", "{"), ("explain", ".md", "# Backpropagation"), ("explain", ".tex", "\\documentclass"),
    ("explain", ".html", "<!DOCTYPE html>"), ("explain", ".markdown", "# Backpropagation"),
    ("explain", ".txt", "Backpropagation worked by hand: a 3-2-1 network, one adam step\n====="),
])
def test_the_extension_chooses_the_format(tmp_path, command, suffix, starts):
    path = tmp_path / f"out{suffix}"
    assert main([command, SEED, "-o", str(path)]) == 0
    text = path.read_text(encoding="utf-8")
    assert text.startswith(starts), text[:80]
    if suffix == ".json":
        assert json.loads(text)["loss"] > 0


@pytest.mark.parametrize("argv, message", [
    (["explain", SEED, "-o", "x.pdf"], "explain does not write PDF: write LaTeX (-o x.tex) and compile it with pdflatex"),
    (["derive", SEED, "-o", "d.pdf"], "derive does not write PDF"),
    (["derive", SEED, "-o", "d.html"], "derive cannot write .html files (it writes .txt, .text, .md, .markdown, .tex, .json)"),
    (["explain", SEED, "-o", "x.json"], "explain cannot write .json files"),
    (["derive", SEED, "--format", "json", "-o", "d.tex"], "d.tex is a .tex file but --format is json"),
    (["explain", SEED, "--format", "html", "-o", "x.md"], "x.md is a .md file but --format is html"),
    (["derive", SEED, "-o", "d.log"], ".log names no format derive writes"),
], ids=["explain-pdf", "derive-pdf", "derive-html", "explain-json", "contradiction",
        "contradiction-explain", "unknown"])
def test_an_extension_the_command_cannot_write_is_one_line(tmp_path, capsys, argv, message):
    argv = [str(tmp_path / a) if a.startswith(("x.", "d.")) else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err and "Traceback" not in err, err
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_extension_with_format_is_the_format(tmp_path):
    path = tmp_path / "d.log"
    assert main(["derive", SEED, "--format", "markdown", "-o", str(path)]) == 0
    assert path.read_text(encoding="utf-8").startswith("# Gradients")


def test_the_digits_asked_for_are_printed(tmp_path, capsys):
    spec = tmp_path / "one.toml"   # C = (1.2665 · 1 − 0)² = 1.60402225
    spec.write_text('[network]\nlayers = [1, 1]\nactivations = ["identity"]\nloss = "squared_error"\n'
                    '[parameters]\nW1 = [[1.2665]]\nb1 = [0.0]\n[sample]\nx = [1]\ny = [0]\n', encoding="utf-8")
    assert main(["derive", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "C ≈ 1.6040\n" in out                     # not 1.604: five digits asked, five shown
    # an exact value is shown as it is, with "=": 2·1.2665 is 2.533, no zeros claimed
    assert "= 1 × 1 × 2.533 = 2.533\n" in out
    assert main(["derive", str(spec), "--digits", "3"]) == 0
    assert "C ≈ 1.60\n" in capsys.readouterr().out
    assert main(["explain", str(spec)]) == 0
    md = capsys.readouterr().out
    assert r"\approx 1.6040" in md and r"\approx 1.604$" not in md
