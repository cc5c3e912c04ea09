"""The seed's worked example, computed (never copied from the notes, which contain slips)."""
import json

import numpy as np
import pytest
import sympy

from symbackprop import load
from symbackprop.cli import main
from symbackprop.derive.derivation import Derivation
from symbackprop.derive.model import Model
from symbackprop.numeric.values import evaluate
from symbackprop.numeric.gradcheck import finite_differences


@pytest.fixture(scope="module")
def seed():
    net = load("examples/seed.toml")
    d = Derivation(Model(net))
    return net, d, evaluate(d)


def sigmoid(u):
    return 1 / (1 + np.exp(-u))


def test_seed_values_match_an_independent_hand_computation(seed):
    net, _, v = seed
    z1 = net.parameters["W1"] @ net.x[0] + net.parameters["b1"]
    a1 = sigmoid(z1)
    z2 = net.parameters["W2"] @ a1 + net.parameters["b2"]
    a2 = sigmoid(z2)
    np.testing.assert_allclose(v.forward["z1"], [-0.9, 0.3], atol=1e-15)
    np.testing.assert_allclose(v.forward["a2"], a2, rtol=1e-14)
    assert v.forward["a2"][0] == pytest.approx(0.58890, abs=5e-6)
    assert v.loss == pytest.approx(0.16900, abs=5e-6)
    # dC/dW2 = a1 * sigma'(z2) * 2(a2 - y): the seed printed -0.0287 for the first (a slip)
    np.testing.assert_allclose(v.gradients["W2"], [[-0.05754, -0.11434]], atol=5e-6)
    assert v.gradients["b2"][0] == pytest.approx(-0.19905, abs=5e-6)
    np.testing.assert_allclose(v.gradients["W2"][0], a1 * a2 * (1 - a2) * 2 * (a2 - 1), rtol=1e-13)


def test_seed_gradients_match_finite_differences(seed):
    net, _, v = seed
    fd = finite_differences(net, net.parameters, net.x, net.y)
    for name, grad in v.gradients.items():
        np.testing.assert_allclose(grad, fd[name], rtol=1e-7, atol=1e-10, err_msg=name)


def test_seed_exact_values_are_rationals_and_exps(seed):
    _, d, v = seed
    exact = evaluate(d, exact=True)
    assert exact.env[d.model.layers[0].z[0]][0] == sympy.Rational(-9, 10)
    for name, grad in v.gradients.items():
        np.testing.assert_allclose(np.asarray(exact.gradients[name], float), grad, rtol=1e-13)
    assert sympy.N(exact.loss, 30) == pytest.approx(v.loss, rel=1e-14)


def test_derive_json_has_the_promised_fields(seed, capsys):
    assert main(["derive", "examples/seed.toml", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    _, _, v = seed
    assert out["loss"] == pytest.approx(v.loss, rel=1e-15)
    assert set(out["forward"]) == {"z1", "a1", "z2", "a2"}
    assert np.shape(out["gradients"]["W1"]) == (2, 3)
    np.testing.assert_allclose(out["gradients"]["W2"], v.gradients["W2"], rtol=1e-15)
    w = out["formulas"]["W2"][0][1]
    assert w["chain"].startswith("a^{(1)}_{2}")                      # ∂z/∂w first: chain order
    assert np.prod(w["factor_values"]) == pytest.approx(w["value"], rel=1e-14)
    assert "expanded" in w


def test_derive_json_leaves_out_an_expanded_form_too_large_to_build(tmp_path, capsys):
    """A 2-parameter batch norm of 16 values over 3 examples (found by fuzzing): within the layer
    and parameter bound of the "expanded" formulas, but its loss expands over the whole batch to
    351,217 nodes, whose sympy.diff and LaTeX took over 4 minutes. It is left out (limits.
    EXPANDED_NODES), and the rest is as before, in seconds."""
    import time
    rng = np.random.default_rng(5)
    spec = {"network": {"input": [1, 4, 4], "loss": "squared_error"},
            "layer": [{"type": "batchnorm", "activation": "softplus"}, {"type": "flatten"}],
            "parameters": {"gamma1": [1.25], "beta1": [-0.5]},
            "sample": {"x": np.round(rng.normal(size=(3, 1, 4, 4)), 3).tolist(),
                       "y": np.round(rng.normal(size=(3, 16)), 3).tolist()}}
    path = tmp_path / "bn.json"
    path.write_text(json.dumps(spec))
    start = time.monotonic()
    assert main(["derive", str(path), "--format", "json"]) == 0
    assert time.monotonic() - start < 30
    out = json.loads(capsys.readouterr().out)
    entry = out["formulas"]["gamma1"][0]
    assert "expanded" not in entry and entry["chain"]
    assert np.isfinite(entry["value"]) and entry["value"] == out["gradients"]["gamma1"][0]


def test_derive_text_shows_the_chain_product_with_numbers(capsys):
    assert main(["derive", "examples/seed.toml", "--wrt", "W2"]) == 0
    out = capsys.readouterr().out
    assert "dC/dW2[1,1] = dz2[1]/dW2[1,1] · da2[1]/dz2[1] · dC/da2[1]" in out
    assert "0.28905 × 0.24210 × (-0.82220) ≈ -0.057536" in out
    assert "dC/dW1" not in out.split("Gradients")[1]


def test_python_api_and_jupyter_reprs():
    import symbackprop
    result = symbackprop.backprop("examples/seed.toml")
    np.testing.assert_allclose(result.gradients["W2"], [[-0.0575363, -0.1143445]], rtol=1e-6)
    assert result._repr_latex_().startswith("$$\\begin{aligned}")
    assert "\\frac{\\partial C}{\\partial W^{(2)}_{1,1}}" in result._repr_markdown_()
    assert "dC/dW1[2,3]" in str(result)


def test_matrix_json_matches_the_scalar_json(capsys):
    assert main(["derive", "examples/seed.toml", "--format", "json"]) == 0
    scalar = json.loads(capsys.readouterr().out)
    assert main(["derive", "examples/seed.toml", "--format", "json", "--form", "matrix"]) == 0
    matrix = json.loads(capsys.readouterr().out)
    assert matrix["loss"] == pytest.approx(scalar["loss"], rel=1e-14)
    for key in scalar["forward"]:
        np.testing.assert_allclose(matrix["forward"][key], scalar["forward"][key], rtol=1e-14)
    for key in scalar["gradients"]:
        np.testing.assert_allclose(matrix["gradients"][key], scalar["gradients"][key], rtol=1e-12)
    assert matrix["formulas"]["W2"]["chain"] == r"\delta^{(2)} \left(a^{(1)}\right)^\top"


def test_batch_json_shapes(tmp_path, capsys):
    spec = tmp_path / "batch.toml"
    spec.write_text(open("examples/seed.toml").read().replace(
        "x = [2, 3, -1]\ny = [1]", "x = [[2, 3, -1], [1, 0, 2], [0, 1, 1]]\ny = [[1], [0], [1]]"))
    for form in ("scalar", "matrix"):
        assert main(["derive", str(spec), "--format", "json", "--form", form]) == 0
        out = json.loads(capsys.readouterr().out)
        assert np.shape(out["forward"]["z1"]) == (3, 2) and np.shape(out["forward"]["a2"]) == (3, 1)
        assert np.shape(out["gradients"]["W1"]) == (2, 3) and np.shape(out["gradients"]["b2"]) == (1,)


def test_derive_latex_document_compiles(tmp_path, capsys):
    import shutil
    import subprocess
    if shutil.which("pdflatex") is None:
        pytest.skip("no pdflatex here (CI installs texlive-latex-base through .ci/install-tex.sh)")
    assert main(["derive", "examples/seed.toml", "--format", "latex"]) == 0
    (tmp_path / "d.tex").write_text(capsys.readouterr().out)
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "d.tex"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:]
    assert (tmp_path / "d.pdf").stat().st_size > 1000
