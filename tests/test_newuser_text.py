"""Names and text of issue 18 (items 5, 6, 10, 11, 12): text output is plain mathematics, one name
per batch-norm quantity in every output and input, 0 where the exact value is 0, what --exact
shows, and derive --wrt pruned to what the parameter needs."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from symbackprop.check.judge import check, load_hand, parse_hand
from symbackprop.errors import SpecError
from symbackprop.spec.network import load

ROOT = Path(__file__).resolve().parent.parent
BN = ROOT / "examples/batchnorm.toml"


def derive(*args) -> str:
    done = subprocess.run([sys.executable, "-m", "symbackprop", "derive", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def bn_text():
    return derive(BN)


def test_text_derive_of_batch_norm_has_no_latex_and_no_python_powers(bn_text):
    for latex in ("frac", "partial", "mathrm", "hat{", "\\", "**"):
        assert latex not in bn_text, latex
    assert "dC/dxhat2[1,1] = dz2[1,1]/dxhat2[1,1] · delta2[1,1]" in bn_text
    assert "(var2[1] + 1/100)^(3/2)" in bn_text


def test_one_name_per_batch_norm_quantity_in_derive_and_check(bn_text):
    assert "mean2 = [" in bn_text and "dC/dmean2[1] =" in bn_text and "dC/dvar2[1] =" in bn_text
    assert not re.search(r"\bmu2", bn_text)
    # every per-quantity name derive prints is one check reads
    net = load(BN)
    for name in ("dC/dmean2", "dC/dvar2", "dC/dxhat2", "mean2", "var2", "xhat2"):
        parse_hand({"values": {f"{name}[1]" if "mean" in name or "var" in name else f"{name}[1][1]": "0.5"}}, net)


@pytest.mark.parametrize("wrong, meant", [("dC/dmu2", "dC/dmean2"), ("mu2", "mean2"), ("x_hat2", "xhat2"),
                                          ("dC/dvariance2", "dC/dvar2")])
def test_an_unknown_hand_name_suggests_the_nearest(wrong, meant):
    net = load(BN)
    with pytest.raises(SpecError, match=re.escape(f"did you mean {meant!r}?")):
        parse_hand({"values": {wrong: [0.1, 0.2]}}, net)


def test_an_exact_zero_shows_as_0_and_says_why(bn_text):
    assert "e-16" not in bn_text and "e-17" not in bn_text
    line = next(s for s in bn_text.splitlines() if s.strip().startswith("= 1 × 0.10060 + 1 × (-0.23033)"))
    assert line.rstrip().endswith("= 0 (batch norm, layer 2, subtracts each channel's batch mean, which cancels b1)")
    results = {r.label: r for r in check(load(BN), load_hand(ROOT / "examples/batchnorm-hand.toml", load(BN)))}
    assert results["grad.b1[1]"].expected == 0.0 and results["grad.b1[2]"].expected == 0.0


def test_a_true_small_value_is_not_zeroed():
    out = derive(ROOT / "examples/seed.toml")
    assert "≈ -0.057536" in out and "= 0 " not in out


LINEAR = """[network]
layers = [2, 1]
activations = ["identity"]
loss = "squared_error"
[parameters]
W1 = [[0.5, 0.25]]
b1 = [0.1]
[sample]
x = [1, 3]
y = [1]
"""


def test_exact_says_so_first_and_shows_fractions(tmp_path):
    spec = tmp_path / "linear.toml"
    spec.write_text(LINEAR)
    exact, floats = derive(spec, "--exact"), derive(spec)
    assert exact != floats
    assert exact.splitlines()[1].startswith("Values computed exactly")
    assert "C = 49/400 = 0.1225" in exact and "= 21/10 = 2.1" in exact
    data = json.loads(derive(spec, "--exact", "--format", "json"))
    entry = data["formulas"]["W1"][0][1]
    assert entry["value"] == 2.1 and entry["exact_value"] == "21/10"


def test_wrt_prunes_the_backward_pass():
    spec = ROOT / "examples/seed.toml"
    full, only = derive(spec), derive(spec, "--wrt", "W2")
    assert "delta1[1]" in full and "dC/da1[1]" in full
    backward = only.split("Backward pass")[1].split("Gradients")[0]
    assert "dC/da2[1]" in backward and "da2[1]/dz2[1]" in backward
    assert "delta1" not in backward and "dC/da1" not in backward and "da1[1]/dz1[1]" not in backward
