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
    from symbackprop import verify
    from symbackprop.commands import gradcheck
    assert gradcheck.DEFAULT_TOLERANCE == verify.DEFAULT_TOLERANCE
