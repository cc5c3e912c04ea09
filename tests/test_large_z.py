"""Numbers at large |z|: every activation × loss, with layers that see |z| up to 1e4, gives finite,
correct values in derive (both forms, every format) and explain — the same values the compiled,
stable code computes — and only a truly non-finite result is an error."""
import json
import math

import mpmath
import numpy as np
import pytest

from cases import combinations
from symbackprop.cli import main
from symbackprop.derive.derivation import Derivation
from symbackprop.explain.example import explain
from symbackprop.derive.model import Model
from symbackprop.numeric.values import evaluate
from symbackprop import Network


def saturated(hidden, output, loss, scale=1e4):
    """A 2-2-2 net whose first layer sees z = ±scale (W1 = I, x = ±scale) and whose output sees
    z of the same size."""
    y = [[1.0, 0.0], [0.0, 1.0]] if loss in ("cross_entropy", "binary_cross_entropy") else [[1.0, -1.0], [0.5, 2.0]]
    return {"network": {"layers": [2, 2, 2], "activations": [hidden, output], "loss": loss},
            "parameters": {"W1": [[1.0, 0.0], [0.0, 1.0]], "b1": [0.0, 0.0],
                           "W2": [[0.5, -0.5], [-0.5, 0.5]], "b2": [0.0, 0.0]},
            "sample": {"x": [[scale, -scale], [-scale, scale]], "y": y}}


CASES = [c for c in combinations() if c[0] != "z/(1 + abs(z))" or c[1] != "softmax"]


@pytest.mark.parametrize("hidden, output, loss", CASES, ids=["-".join(c) for c in CASES])
def test_every_activation_and_loss_stays_finite_and_right(hidden, output, loss, tmp_path, capsys):
    data = saturated(hidden, output, loss)
    spec = tmp_path / "big.json"
    spec.write_text(json.dumps(data))
    net = Network.from_dict(data)
    outs = {}
    for form in ("scalar", "matrix"):
        assert main(["derive", str(spec), "--format", "json", "--form", form]) == 0, capsys.readouterr().err
        outs[form] = json.loads(capsys.readouterr().out)
    assert math.isfinite(outs["scalar"]["loss"]) and outs["scalar"]["loss"] == outs["matrix"]["loss"]
    # the compiled, stable code computes the same values (to its guards: exponents clipped at
    # EXP_LO leave traces of exp(-236) ≈ 1e-103 where the truth underflows to 0)
    with np.errstate(all="raise", under="ignore"):
        C, compiled = net.compile().loss_and_gradients(net.parameters, net.x, net.y)
    assert outs["scalar"]["loss"] == pytest.approx(float(C), rel=1e-9, abs=1e-90)
    for name in net.parameter_shapes():
        s = np.array(outs["scalar"]["gradients"][name])
        assert np.all(np.isfinite(s)) and s.tolist() == outs["matrix"]["gradients"][name], name
        np.testing.assert_allclose(s, compiled[name], rtol=1e-6, atol=1e-9 * max(1.0, np.abs(s).max()), err_msg=name)
    assert main(["derive", str(spec)]) == 0                    # the text form prints them too
    assert "nan" not in capsys.readouterr().out.lower()


def test_a_saturated_sigmoid_with_cross_entropy_is_computed_exactly_enough():
    """C = -log(1 - σ(1e4)) = 1e4 + log(1 + e^-1e4), ∂C/∂z = σ(1e4) - 0 ≈ 1: in float64, ∂C/∂a = 1/(1 - a)
    is e^1e4 (no float holds it), so the values come from the arbitrary-precision pass."""
    net = Network.from_dict({"network": {"layers": [1, 1], "activations": ["sigmoid"], "loss": "binary_cross_entropy"},
                             "parameters": {"W1": [[1.0]], "b1": [0.0]}, "sample": {"x": [1e4], "y": [0]}})
    d = Derivation(Model(net))
    v = evaluate(d)
    assert v.precise and v.loss == 1e4 and v.gradients["W1"][0, 0] == pytest.approx(1e4)
    dC_da = v.of(d.steps[0].symbol)
    assert mpmath.log10(dC_da) == pytest.approx(1e4 / math.log(10), rel=1e-9)      # e^1e4, exactly enough


def test_explain_works_at_large_z():
    e = explain(Network.from_dict(saturated("softplus", "softmax", "cross_entropy")))
    assert math.isfinite(e.values.loss) and "nan" not in e.markdown().lower()


def test_a_truly_undefined_value_is_still_an_error(tmp_path, capsys):
    data = {"network": {"layers": [1, 1], "activations": ["z**0.5"], "loss": "squared_error"},
            "parameters": {"W1": [[1.0]], "b1": [0.0]}, "sample": {"x": [-1.0], "y": [0]}}
    spec = tmp_path / "neg.json"
    spec.write_text(json.dumps(data))
    assert main(["derive", str(spec), "--format", "json"]) == 2
    assert "is not a finite number" in capsys.readouterr().err


SATURATED = {"network": {"layers": [1, 1], "activations": ["sigmoid"], "loss": "binary_cross_entropy"},
             "parameters": {"W1": [[1.0]], "b1": [0.0]}, "sample": {"x": [1e4], "y": [0]}}


def test_derive_text_shows_the_factors_beyond_float64(tmp_path, capsys):
    spec = tmp_path / "sat.json"
    spec.write_text(json.dumps(SATURATED))
    assert main(["derive", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "10000 × 1.1355e-4343 × 8.8068e+4342" in out and " inf" not in out and "× 0 ×" not in out


def test_check_expects_the_true_values_at_large_z(tmp_path, capsys):
    """check's expected numbers come from the same arbitrary-precision values when float intervals
    cannot hold a step: the loss -log(1 - σ(1e4)) is 1e4, not the bound float64 gives."""
    spec, hand = tmp_path / "sat.json", tmp_path / "hand.toml"
    spec.write_text(json.dumps(SATURATED))
    hand.write_text('[values]\nloss = 9000.0\n"grad.W1" = 10000.0\n')
    assert main(["check", str(spec), str(hand), "--format", "json"]) == 1
    results = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert results["loss"]["expected"] == pytest.approx(1e4) and results["loss"]["status"] == "wrong"
    assert results["grad.W1"]["expected"] == pytest.approx(1e4) and results["grad.W1"]["status"] == "ok"
