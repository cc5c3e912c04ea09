"""Text of issue 18 (items 7, 8, 9, 13, 14, 15, 16) and the per-weight form's rendering speed:
matrix-form LaTeX broken only between statements, the kernel gradient 1-based, max-pool and arrays
in text ``derive`` as ``explain`` shows them, ``derive --init`` on a matrix-form network with its
numbers, batch tables labelled by example, ``explain``'s wording, and ``explain --format text``."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from symbackprop.derive.matrix import derive_matrix
from symbackprop.report.matrix import render_matrix
from symbackprop.spec.network import load

ROOT = Path(__file__).resolve().parent.parent
CNN = ROOT / "examples/cnn.toml"


def run(*args, ok=True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "symbackprop", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)
    if ok:
        assert done.returncode == 0, done.stderr
    return done


def _align_lines(tex: str) -> list[str]:
    blocks = re.findall(r"\\begin\{align\*\}\n(.*?)\n\\end\{align\*\}", tex, re.S)
    return [line for block in blocks for line in block.split(" \\\\\n")]


# ---- item 7: matrix-form LaTeX breaks lines only between statements

@pytest.mark.parametrize("spec", ["cnn.toml", "lenet.toml", "residual.toml", "mnist.toml"])
def test_matrix_latex_breaks_lines_only_between_statements(spec):
    tex = render_matrix(derive_matrix(load(ROOT / "examples" / spec)), "latex")
    for line in _align_lines(tex):
        # a statement cut in two leaves a parenthesis open on one line ("(…, \epsilon" / "= 10^{-5})")
        assert line.count("(") == line.count(")"), line
        assert line.count("{") == line.count("}"), line
    if spec == "cnn.toml":
        assert r"\epsilon = 1 \times 10^{-5})" in tex          # on one line, with what it qualifies
        assert r"a^{(1)} = \operatorname{id}\left(z^{(1)}\right)" in tex
        assert r"&= 1 \times 10^{-5}" not in tex and r"&= \operatorname{id}" not in tex


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no pdflatex (bash .ci/install-tex.sh)")
def test_matrix_latex_of_the_cnn_compiles_and_fits(tmp_path):
    out = tmp_path / "x.tex"
    run("derive", CNN, "-o", out)
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "x.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-2000:]
    log = (tmp_path / "x.log").read_text(encoding="latin-1")
    assert all(float(pt) <= 3.0 for pt in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide", log))


# ---- speed: the per-weight form's text is printed once per template, and reads the same

def _renderer(spec, init=None):
    from symbackprop.derive.derivation import Derivation
    from symbackprop.derive.model import Model
    from symbackprop.numeric.values import evaluate
    from symbackprop.report.chain import Renderer
    net = load(spec)
    if init is not None:
        from symbackprop.spec.initial import numbers
        net, _ = numbers(net, init, "derive")
    d = Derivation(Model(net))
    return d, Renderer(d, evaluate(d))


@pytest.mark.parametrize("spec", ["cnn-exercise.toml", "batchnorm.toml", "seed-batch.toml", "residual.toml"])
def test_factor_text_by_template_is_what_printing_each_factor_gives(spec):
    import sympy
    d, r = _renderer(ROOT / "examples" / spec, init=0)
    for step in d.steps:
        for term in step.terms:
            for f in term:
                e = sympy.factor_terms(r.shown(f))
                direct = r.sym(e, False)
                if len(term) > 1 and (e.is_Add or isinstance(e, sympy.Piecewise)):
                    direct = f"({direct})"
                assert r._text_factor(r.shown(f), len(term) > 1) == direct, (step.label, f.label)


def test_the_cnn_factors_are_printed_once_per_template():
    d, r = _renderer(CNN, init=0)
    r.prefetch(d.steps)
    for step in d.steps:
        r.formula_terms(step, False)
    assert len(r._shown) > 10000 and len(r._templates) < 100       # 13,591 factors, a few dozen templates
    assert len(r._bulk) > 3000                                        # their values computed together


# ---- item 8: the kernel gradient 1-based, the stride simplified, one example's

def _conv_net(stride, padding):
    from symbackprop.spec.network import Network
    return Network.from_dict({"network": {"input": [1, 6, 6], "loss": "squared_error"},
                              "layer": [{"type": "conv2d", "channels": 2, "kernel": 2, "stride": stride,
                                         "padding": padding}, {"type": "flatten"}, {"type": "dense", "units": 1}]})


def test_kernel_gradient_is_one_based_per_example_and_simplified():
    tex = render_matrix(derive_matrix(load(CNN)), "latex")
    assert r"\frac{\partial C}{\partial W^{(1)}}_{o,c,k} &= \textstyle\sum_{s} \delta^{(1)}_{o,s}\, \tilde{x}_{c,s + k - 1}" in tex
    assert r"\frac{\partial C}{\partial b^{(1)}}_{o} &= \textstyle\sum_{s} \delta^{(1)}_{o,s}" in tex
    assert "n,s" not in tex and r"\cdot 1" not in tex and "indices count from 1" in tex
    strided = render_matrix(derive_matrix(_conv_net(2, 0)), "latex")
    assert r"\delta^{(1)}_{o,s}\, x_{c,2(s - 1) + k}" in strided            # no padding: x itself, no x̃
    assert r"\tilde{x}" not in strided and "spread out by the stride $2$" in strided
    mixed = render_matrix(derive_matrix(_conv_net([1, 2], 1)), "text")
    assert "x̃_(c,s_1 + k_1 - 1, 2(s_2 - 1) + k_2)" in mixed


# ---- item 9: max-pool's derivative in words; arrays as explain tabulates them

def test_text_derive_says_max_pool_in_words_and_prints_arrays_per_channel():
    text = run("derive", ROOT / "examples/cnn-exercise.toml").stdout
    assert "= (1 if a1[1,1,1] is its window's first maximum, else 0) · dC/da2[1,1,1]" in text
    assert " if (a1" not in text and "≥" not in text                  # no piecewise chain of comparisons
    assert "row-major" not in text
    assert "  z1, channel 1 (2×2):\n     0.9  -0.5\n    -0.2   0.7\n  z1, channel 2 (2×2):" in text
    assert "  a3 = [0.9, 0.6]\n" in text                                # a vector: one line, no "row-major"


def test_a_coupled_batch_prints_each_example_per_channel():
    text = run("derive", ROOT / "examples/batchnorm.toml").stdout
    assert "row-major" not in text
    assert "  mean2 = [0.45833, 0.5]\n" in text                         # not per example: one vector
    assert "  z1, example 1 = [" in text and "  z1, example 3 = [" in text


# ---- item 13: derive --init on a matrix-form network prints its numbers, or says where they are

def test_matrix_form_with_init_prints_the_numbers_it_drew():
    import json
    text = run("derive", CNN, "--init", "0").stdout
    assert "Numbers (drawn by --init 0; 4 examples; forward values: --format json):" in text
    numbers = text[text.index("Numbers (drawn"):]
    data = json.loads(run("derive", CNN, "--init", "0", "--format", "json").stdout)
    kernel = numbers[numbers.index("dC/dW1, output channel 1, input channel 1 (3×3):"):].splitlines()[1]
    assert [float(v) for v in kernel.split()] == pytest.approx(data["gradients"]["W1"][0][0][0], rel=1e-4)
    assert f"Loss: C ≈ {data['loss']:#.5g} (the mean over the 4 examples)" in numbers
    assert "  b1 = [0, 0, 0, 0]" in numbers and "  W5, row 3 = [" in numbers and "  dC/dW5, row 1 = [" in numbers
    md = run("derive", CNN, "--init", "0", "--format", "markdown").stdout
    assert "## Numbers" in md and "`derive --format json --init 0`" in md


# ---- item 14: a batch table's columns name the row's example, not example 1

def test_batch_tables_name_each_rows_example():
    from symbackprop.explain.example import explain
    md = explain(load(ROOT / "examples/batchnorm.toml")).markdown()
    assert "| example $i$ | $z^{(1)}_{i,1}$ | $z^{(1)}_{i,2}$ |" in md
    assert "| example $i$ | $a^{(3)}_{i,1}$ | $C_i$ |" in md
    assert not re.search(r"\| example \| \$[az]\^\{\(\d\)\}_\{1,", md)      # example 1's name over every row


# ---- item 15: explain's wording

@pytest.fixture(scope="module")
def exercise_steps():
    from symbackprop.explain.example import explain
    return explain(load(ROOT / "examples/cnn-exercise.toml"), steps=3).markdown()


def test_explain_words_one_channel_no_padding_and_a_stateless_optimizer(exercise_steps):
    md = exercise_steps
    assert "each of the 1 input channel" not in md and "sums the 2×2 kernel of the input channel times" in md
    assert "columns 1 to 2 of $x$)" in md and r"\tilde{x}" not in md           # padding 0: no padded x̃ anywhere
    assert "The same step repeated with sgd, stopping by" in md and "state carried" not in md
    assert "of the 2 × 1 × 1 input becomes element $c$ ($i = j = 1$) of the vector" in md


def test_explain_shows_kernels_after_the_steps_as_before(exercise_steps):
    after = exercise_steps[exercise_steps.index("The parameters after step 3"):]
    assert "each row a kernel" not in after
    assert "| $W^{(1)}$, kernel 1,1 | 1 | 2 |" in after and "| $W^{(1)}$, kernel 2,1 | 1 | 2 |" in after


def test_explain_does_not_define_an_activation_by_itself():
    from symbackprop.explain.example import explain
    from symbackprop.spec.network import Network
    from specs import wide
    md = explain(Network.from_dict(wide(1)), optimizer="adam").markdown()
    assert r"\tanh(z) = \tanh" not in md and r"\operatorname{tanh}(z) = \tanh" not in md
    assert r"$a = \tanh(z)$ gives" in md or r"$a = \operatorname{tanh}(z)$ gives" in md


def test_flatten_index_leaves_out_axes_of_size_one():
    from symbackprop.entries.layers.shape import flat_index
    assert flat_index((4, 4, 4), "cij") == r"$(c - 1) \cdot 16 + (i - 1) \cdot 4 + j$"
    assert flat_index((2, 1, 1), "cij") == "$c$ ($i = j = 1$)"
    assert flat_index((1, 8, 8), "cij") == r"$(i - 1) \cdot 8 + j$ ($c = 1$)"


# ---- item 16: explain --format text, and text by default on a terminal

def test_explain_text_format_is_plain_mathematics():
    text = run("explain", ROOT / "examples/seed.toml", "--format", "text").stdout
    assert "$" not in text and "\\" not in text and "begin{" not in text
    assert "∂C/∂W⁽²⁾_(1,1) = ∂z⁽²⁾_1/∂W⁽²⁾_(1,1) · ∂a⁽²⁾_1/∂z⁽²⁾_1 · ∂C/∂a⁽²⁾_1" in text
    assert "        = 0.28905 × 0.24210 × (-0.82220) ≈ -0.057536\n" in text
    assert "1. Forward pass\n---------------\n" in text
    conv = run("explain", ROOT / "examples/cnn-exercise.toml", "--format", "text").stdout
    assert "\\" not in conv and "$" not in conv
    assert "relu(z) = {0 if z ≤ 0; z" in conv
    assert "  z⁽¹⁾, channel 1     1     2\n  1                 0.9  -0.5\n" in conv


def test_explain_writes_text_to_a_txt_file(tmp_path):
    run("explain", ROOT / "examples/seed.toml", "-o", tmp_path / "seed.txt")
    assert (tmp_path / "seed.txt").read_text(encoding="utf-8").startswith(
        "Backpropagation worked by hand: a 3-2-1 network, one adam step\n=====")


def test_explain_on_a_terminal_is_text_and_through_a_pipe_markdown():
    import os
    import pty
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "symbackprop", "explain", "examples/seed.toml"], cwd=ROOT,
                            stdout=slave, stderr=subprocess.PIPE)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:              # the other end closed: the command is done
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=300)
    os.close(master)
    shown = b"".join(chunks).decode("utf-8").replace("\r\n", "\n")
    assert shown.startswith("Backpropagation worked by hand") and "$" not in shown
    piped = run("explain", ROOT / "examples/seed.toml").stdout
    assert piped.startswith("# Backpropagation worked by hand") and "$" in piped
