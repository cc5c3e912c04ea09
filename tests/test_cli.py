"""The command line itself: --help and --version start fast (no SymPy or NumPy imported), and the
Python API's entry points and results are easy to use."""
import subprocess
import sys
from pathlib import Path

import pytest

from symbackprop.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parent.parent

_PROBE = """
import sys
from symbackprop.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
heavy = sorted(m for m in ("sympy", "numpy", "jinja2") if m in sys.modules)
print("HEAVY=" + ",".join(heavy))
"""


@pytest.mark.parametrize("argv", [["--help"], ["--version"]] + [[c, "--help"] for c in COMMANDS])
def test_help_imports_neither_sympy_nor_numpy(argv):
    # what makes --help fast (0.6-1.4 s before, ~0.07 s over Python's start-up now): time is not
    # asserted here, the imports are
    out = subprocess.run([sys.executable, "-c", _PROBE.format(argv=argv)], capture_output=True,
                         text=True, cwd=ROOT, check=True).stdout
    assert out.splitlines()[-1] == "HEAVY=", (argv, out[-300:])


def test_version_is_the_package_metadata(capsys):
    from importlib.metadata import version
    import symbackprop
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out == f"symbackprop {version('symbackprop')}\n"
    assert symbackprop.__version__ == version("symbackprop")


def test_spelled_out_defaults_agree_with_their_modules():
    from symbackprop.numeric import gradcheck as verify
    from symbackprop.commands import gradcheck
    assert gradcheck.DEFAULT_TOLERANCE == verify.DEFAULT_TOLERANCE


def test_every_public_entry_point_takes_a_path_a_dict_or_a_network():
    import tomllib
    import symbackprop
    from symbackprop.check.judge import check, load_hand
    from symbackprop.explain.example import explain
    path = "examples/seed.toml"
    data = tomllib.loads((ROOT / path).read_text(encoding="utf-8"))
    for network in (path, ROOT / path, data, symbackprop.load(path)):
        assert symbackprop.backprop(network).gradients["W2"][0, 0] == pytest.approx(-0.0575363, rel=1e-5)
        assert float(explain(network).values.loss) == pytest.approx(0.1690044, rel=1e-6)
        results = check(network, "examples/seed-hand.toml")
        assert len(results) == 31 and load_hand("examples/seed-hand.toml", network).source.endswith("seed-hand.toml")
    assert check(path, {"values": {"loss": "0.169"}})[0].status == "ok"
    with pytest.raises(symbackprop.SpecError, match="network: expected a spec path, a dict or a Network, got int"):
        symbackprop.backprop(3)


def test_results_have_short_reprs():
    import symbackprop
    from symbackprop.check.judge import load_hand
    from symbackprop.explain.example import explain
    assert repr(symbackprop.backprop("examples/seed.toml")) == \
        "<Derived 3-2-1 sigmoid/sigmoid squared_error, 11 parameters, C = 0.16900>"
    assert repr(explain("examples/seed.toml", optimizer="sgd")) == \
        "<Explanation 3-2-1 sigmoid/sigmoid squared_error, 11 parameters, 1 sgd step: C = 0.16900 -> 0.16269>"
    assert repr(load_hand("examples/seed-hand.toml", "examples/seed.toml")) == \
        "<Hand examples/seed-hand.toml: 31 numbers>"
