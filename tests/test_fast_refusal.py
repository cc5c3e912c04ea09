"""A bad spec is refused before SymPy (and NumPy) are imported; a too-large explain is refused before
any numbers are drawn, naming the spec's own key (issue 18, item 19)."""
import subprocess
import sys

import pytest

from symbackprop.cli import main
from symbackprop.errors import SpecError
from symbackprop.spec.document import precheck

DENSE = '[network]\nlayers = [3, 2, 1]\nactivations = ["sigmoid", "sigmoid"]\nloss = "squared_error"\n'
GRAPH = '[network]\ninput = [1, 4, 4]\nloss = "mse"\n[[layer]]\ntype = "flatten"\n[[layer]]\ntype = "dense"\nunits = 1\n'
BAD = {
    "unknown loss": (DENSE.replace('"squared_error"', '"l2"'), "network.loss: unknown loss 'l2'"),
    "unknown activation": (DENSE.replace('"sigmoid", "sigmoid"', '"sigmoid", "sigmod"'),
                           "network.activations[1]: unknown activation 'sigmod'"),
    "activation count": (DENSE.replace('"sigmoid", "sigmoid"', '"sigmoid"'), "network.activations: 1 activations"),
    "unknown table": (DENSE + "[values]\na = 1\n", "values: unknown table"),
    "bad size": (DENSE.replace("[3, 2, 1]", "[3, 0, 1]"), "network.layers[1]: expected a positive integer"),
    "unknown key": (DENSE + "units = 3\n", "network.units: unknown key"),
    "unknown layer type": (GRAPH.replace('"flatten"', '"flaten"'), "layer 1.type: unknown layer type 'flaten'"),
    "graph input": (GRAPH.replace("[1, 4, 4]", "[1, 4, 4, 4]"), "network.input: expected the shape"),
    "unknown optimizer": (DENSE + '[optimizer]\nname = "adamm"\n', "optimizer.name: unknown optimizer 'adamm'"),
    "invalid toml": (DENSE + "[[", "invalid TOML"),
}
PROBE = ("import sys\nfrom symbackprop.cli import main\nrc = main(sys.argv[1:])\n"
         "print(sorted(m for m in ('sympy', 'numpy') if m in sys.modules), rc)")


@pytest.mark.parametrize("case", sorted(BAD))
@pytest.mark.parametrize("command", ["derive", "gradcheck", "explain", "generate"])
def test_refused_before_sympy_is_imported(tmp_path, case, command):
    spec = tmp_path / "bad.toml"
    spec.write_text(BAD[case][0])
    done = subprocess.run([sys.executable, "-c", PROBE, command, str(spec)], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.split() == ["[]", "2"], (done.stdout, done.stderr)
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(f"symbackprop {command}: error: ")
    assert BAD[case][1] in done.stderr


@pytest.mark.parametrize("case", sorted(set(BAD) - {"invalid toml"}))
def test_the_precheck_says_what_the_full_validation_says(case):
    import tomllib
    from symbackprop.spec.network import Network
    data = tomllib.loads(BAD[case][0])
    with pytest.raises(SpecError) as fast:
        precheck(data)
    with pytest.raises(SpecError) as full:
        Network.from_dict(data)
    assert str(fast.value) == str(full.value)


def test_a_good_spec_passes_the_precheck():
    import tomllib
    for path in ("examples/seed.toml", "examples/cnn.toml", "examples/lenet.toml", "examples/residual.toml"):
        with open(path, "rb") as f:
            precheck(tomllib.load(f))
    precheck({"network": {"layers": [1, 1], "activations": ["z/(1 + abs(z))"], "loss": "mse"}})


def test_the_precheck_names_are_the_registries():
    from symbackprop.entries.layers import LAYERS
    from symbackprop.entries.optimizers import OPTIMIZERS
    from symbackprop.entries.registry import ACTIVATIONS, LOSSES
    from symbackprop.spec import document
    assert document.ACTIVATION_NAMES == tuple(ACTIVATIONS)
    assert document.LOSS_NAMES == tuple(LOSSES)
    assert document.LAYER_NAMES == tuple(LAYERS)
    assert document.OPTIMIZER_NAMES == tuple(OPTIMIZERS)


BIG_GRAPH = ('[network]\ninput = [64]\nloss = "mse"\n[[layer]]\ntype = "dense"\nunits = 64\nactivation = "relu"\n'
             '[[layer]]\ntype = "dense"\nunits = 1\n')


def test_too_large_explain_is_refused_before_numbers_are_drawn(tmp_path, capsys, monkeypatch):
    from symbackprop.spec import initial
    drawn = []
    monkeypatch.setattr(initial, "with_numbers", lambda *a, **k: drawn.append(1) or pytest.fail("drew numbers"))
    spec = tmp_path / "big.toml"
    spec.write_text(BIG_GRAPH)
    assert main(["explain", str(spec), "--init", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("symbackprop explain: error: layer: 4225 parameters is too many for a worked example")
    assert not drawn
    stack = tmp_path / "stack.toml"
    stack.write_text('[network]\nlayers = [64, 64, 1]\nactivations = ["relu", "identity"]\nloss = "mse"\n')
    assert main(["explain", str(stack), "--init", "0"]) == 2
    assert capsys.readouterr().err.startswith("symbackprop explain: error: network.layers: 4225 parameters")
    assert not drawn
