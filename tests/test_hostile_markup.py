"""Output that must not carry markup, and checks that must not warn: spec text reaching Markdown is
HTML-escaped (in every writer, text is printable), and gradcheck's step and tolerance have ranges."""
import pytest

from symbackprop.cli import main
from symbackprop.explain.example import Heading, Para, Table, to_html, to_latex, to_markdown

SEED = "examples/seed.toml"
TAG = "<img src=x onerror=alert(1)>"


def test_markdown_escapes_raw_html_in_prose_headings_and_tables():
    blocks = [Heading(2, f"Layer 1 ({TAG})"), Para(f"The network (a{TAG}.toml): `{TAG}` and $a < b$"),
              Table(("x", TAG), ((TAG, "1"),))]
    text = to_markdown(blocks)
    assert "<img" not in text.replace(f"`{TAG}`", "")          # only inside a code span, where it is literal
    assert text.count("&lt;img src=x onerror=alert(1)&gt;") == 4
    assert "$a < b$" in text                                   # math is left to the math renderer


def test_every_writer_makes_spec_text_printable():
    blocks = [Heading(2, "a\x1b[2J\u202eb"), Para("c\x07d")]
    for text in (to_markdown(blocks), to_html(blocks), to_latex(blocks, "t\x1bitle")):
        assert not any(c in text for c in "\x1b\x07\u202e"), text


def test_explain_markdown_of_a_spec_named_with_a_tag_escapes_it(tmp_path, capsys):
    spec = tmp_path / f"a{TAG}.toml"
    spec.write_text(open(SEED).read())
    for fmt in ("markdown", "html"):
        assert main(["explain", str(spec), "--format", fmt]) == 0
        out = capsys.readouterr().out
        assert TAG not in out and "a&lt;img src=x onerror=alert(1)&gt;.toml" in out, fmt


def test_a_formula_cannot_carry_markup_in_a_comment(tmp_path, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text(open(SEED).read().replace('activations = ["sigmoid", "sigmoid"]',
                                              f'activations = ["sigmoid", "z # {TAG}"]'))
    assert main(["explain", str(spec)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "network.activations[1]: a formula has no comments (#)" in err


@pytest.mark.parametrize("option, value, message", [
    ("--step", "1e300", "--step: expected a step h in [1e-12, 0.1], got 1e+300"),
    ("--step", "0", "--step: expected a step h in [1e-12, 0.1], got 0"),
    ("--step", "-1e-6", "--step: expected a step h in [1e-12, 0.1]"),
    ("--step", "nan", "--step: expected a step h in [1e-12, 0.1], got nan"),
    ("--step", "1e-300", "--step: expected a step h in [1e-12, 0.1]"),
    ("--tolerance", "0", "--tolerance: expected a relative error in (0, 1], got 0"),
    ("--tolerance", "5", "--tolerance: expected a relative error in (0, 1], got 5"),
    ("--tolerance", "inf", "--tolerance: expected a relative error in (0, 1], got inf"),
])
def test_gradcheck_refuses_a_step_or_tolerance_out_of_range_without_a_warning(capsys, option, value, message):
    assert main(["gradcheck", SEED, f"{option}={value}"]) == 2
    out, err = capsys.readouterr()
    assert err == f"symbackprop gradcheck: error: {message}\n" or (err.count("\n") == 1 and message in err), err
    assert "Warning" not in err and out == ""


@pytest.mark.parametrize("step", ["1e-12", "1e-4", "0.1"])
def test_gradcheck_runs_at_the_ends_of_the_steps_range_without_a_warning(capsys, step):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["gradcheck", SEED, f"--step={step}"]) in (0, 1)
    out, err = capsys.readouterr()
    assert err == "" and "tolerance" in out.splitlines()[-1]


def test_gradcheck_reports_a_step_whose_differences_overflow(tmp_path, capsys):
    spec = tmp_path / "spec.toml"      # C = exp(2 z)/2 near 1e290 at z = 334; a step of 0.1 in W moves z by 35
    spec.write_text('[network]\nlayers = [1, 1]\nactivations = ["exp(z)"]\nloss = "half_squared_error"\n'
                    "[parameters]\nW1 = [[0.944]]\nb1 = [0.0]\n[sample]\nx = [354.0]\ny = [0]\n")
    assert main(["gradcheck", str(spec), "--step", "1e-6"]) == 0
    capsys.readouterr()
    assert main(["gradcheck", str(spec), "--step", "0.1"]) == 2
    out, err = capsys.readouterr()
    assert err == ("symbackprop gradcheck: error: --step: the finite differences with h = 0.1 are not finite "
                   "numbers (the loss overflows there): use a smaller step\n"), err
    assert out == ""
