"""Bad input: a one-line error naming the field, exit status 2, no traceback, nothing overwritten."""
import json
import subprocess
import sys

import pytest

from symbackprop.cli import main

GOOD = """
[network]
layers = [3, 2, 1]
activations = ["sigmoid", "sigmoid"]
loss = "squared_error"

[parameters]
W1 = [[0.2, -0.5, 0.1], [-0.3, 0.4, 0.2]]
b1 = [0.3, -0.1]
W2 = [[0.5, 0.2]]
b2 = [0.1]

[sample]
x = [2, 3, -1]
y = [1]
"""

# (name, replace this, by that, the field the error must name)
CASES = [
    ("broken toml", "layers = [3, 2, 1]", "layers = [3, 2, 1", "invalid TOML"),
    ("unknown activation", '"sigmoid", "sigmoid"', '"sigmoid", "swoosh"', "network.activations[1]"),
    ("unknown loss", '"squared_error"', '"l2"', "network.loss"),
    ("activation count", '["sigmoid", "sigmoid"]', '["sigmoid"]', "network.activations"),
    ("softmax not at the output", '["sigmoid", "sigmoid"]', '["softmax", "sigmoid"]', "network.activations[0]"),
    ("wrong W shape", "W2 = [[0.5, 0.2]]", "W2 = [[0.5, 0.2, 0.3]]", "parameters.W2"),
    ("wrong b shape", "b1 = [0.3, -0.1]", "b1 = [0.3]", "parameters.b1"),
    ("missing parameter", "b2 = [0.1]", "", "parameters.b2"),
    ("unknown parameter", "b2 = [0.1]", "b2 = [0.1]\nW3 = [[1.0]]", "parameters.W3"),
    ("non-numeric value", "b2 = [0.1]", 'b2 = ["a lot"]', "parameters.b2[0]"),
    ("boolean value", "b2 = [0.1]", "b2 = [true]", "parameters.b2[0]"),
    ("huge integer", "b2 = [0.1]", "b2 = [" + "9" * 400 + "]", "parameters.b2[0]"),
    ("huge learning rate", "[sample]", "[optimizer]\nlearning_rate = " + "9" * 400 + "\n[sample]",
     "optimizer.learning_rate"),
    ("infinite value", "b2 = [0.1]", "b2 = [inf]", "parameters.b2[0]"),
    ("sample of the wrong size", "x = [2, 3, -1]", "x = [2, 3]", "sample.x"),
    ("target of the wrong size", "y = [1]", "y = [1, 0]", "sample.y"),
    ("batch size mismatch", "x = [2, 3, -1]\ny = [1]", "x = [[2, 3, -1], [1, 1, 1]]\ny = [1, 0, 1]", "sample.y"),
    ("zero layer size", "layers = [3, 2, 1]", "layers = [3, 0, 1]", "network.layers[1]"),
    ("one layer", "layers = [3, 2, 1]", "layers = [3]", "network.layers"),
    ("missing network", "[network]", "[netwerk]", "netwerk"),
    ("unknown optimizer", "[sample]", '[optimizer]\nname = "lbfgs"\n[sample]', "optimizer.name"),
    ("unknown optimizer key", "[sample]", "[optimizer]\nlearning_rat = 0.1\n[sample]", "optimizer.learning_rat"),
    ("import in a custom activation", '"sigmoid", "sigmoid"', '"sigmoid", "__import__(\'os\').system(\'true\')"',
     "network.activations[1]"),
    ("attribute access", '"sigmoid", "sigmoid"', '"sigmoid", "z.__class__"', "network.activations[1]"),
    ("lambda", '"sigmoid", "sigmoid"', '"sigmoid", "(lambda q: q)(z)"', "network.activations[1]"),
    ("unknown function", '"sigmoid", "sigmoid"', '"sigmoid", "open(z)"', "network.activations[1]"),
    ("newline in a formula", '"sigmoid", "sigmoid"', '"sigmoid", "z\\nz"', "network.activations[1]"),
    ("formula without z", '"sigmoid", "sigmoid"', '"sigmoid", "2 + 3"', "network.activations[1]"),
]


SEQUENCE = """
[network]
input = [3]
loss = "cross_entropy"

[[layer]]
type = "embedding"
vocab = 4
dim = 2

[[layer]]
type = "rnn"
hidden = 2

[[layer]]
type = "dense"
units = 4
activation = "softmax"

[sample]
x = [[1, 2, 1], [3, 0, 3]]
y = [[0, 1, 2], [3, 3, 0]]
"""

# the sequence kinds' bad input: each names the layer (position and type), the example and position
SEQUENCE_CASES = [
    ("unknown field", "hidden = 2", "hidden = 2\nunits = 3", "layer 2 (rnn).units"),
    ("hidden size 0", "hidden = 2", "hidden = 0", "layer 2 (rnn).hidden"),
    ("activation on a recurrent layer", "hidden = 2", 'hidden = 2\nactivation = "tanh"', "layer 2 (rnn).activation"),
    ("unknown nonlinearity", "hidden = 2", 'hidden = 2\nnonlinearity = "sigmoid"', "layer 2 (rnn).nonlinearity"),
    ("id outside the vocabulary", "x = [[1, 2, 1]", "x = [[1, 4, 1]", "sample.x[0][1]: id 4 is outside the vocabulary [0, 4) of layer 1 (embedding) (example 1, position 2)"),
    ("negative id", "x = [[1, 2, 1]", "x = [[1, 2, -1]", "(example 1, position 3)"),
    ("non-integer id", "[3, 0, 3]]", "[3, 0.5, 3]]", "sample.x[1][1]: expected an integer id, got 0.5 (example 2, position 2)"),
    ("class outside the outputs", "[3, 3, 0]]", "[3, 9, 0]]", "sample.y[1][1]: class 9 is outside [0, 4) (example 2, position 2)"),
    ("a sequence layer given a vector", 'type = "rnn"', 'type = "dense"\nunits = 2\n[[layer]]\ntype = "flatten"\n[[layer]]\ntype = "rnn"',
     "layer 4 (rnn).type: rnn needs a sequence input"),
    ('return = "last" followed by a sequence layer', "hidden = 2", 'hidden = 2\nreturn = "last"\n[[layer]]\ntype = "gru"\nhidden = 2',
     'layer 3 (gru).type: gru needs a sequence input (T, D), got shape (2,) (layer 2 (rnn) has return = "last"'),
    ("unknown return", "hidden = 2", 'hidden = 2\nreturn = "first"', "layer 2 (rnn).return"),
    ("embedding not first", 'type = "rnn"\nhidden = 2', 'type = "embedding"\nvocab = 2\ndim = 2', "layer 2 (embedding)"),
    ("ignore_index not an integer", 'loss = "cross_entropy"', 'loss = "cross_entropy"\nignore_index = 0.5', "network.ignore_index"),
    ("every target ignored", 'loss = "cross_entropy"', 'loss = "cross_entropy"\nignore_index = 3',
     "sample.y: every target is ignore_index 3"),
]


def _refused(tmp_path, capsys, good, old, new, field, suffix):
    assert old in good
    text = good.replace(old, new)
    if "every target is ignore_index" in field:
        text = text.replace("[[1, 2, 1], [3, 0, 3]]\ny = [[0, 1, 2], [3, 3, 0]]", "[[1, 2, 1]]\ny = [[3, 3, 3]]")
    if suffix == ".json":
        import tomllib
        try:
            text = json.dumps(tomllib.loads(text))
        except tomllib.TOMLDecodeError:
            text = "{ not json"
            field = "invalid JSON"
    spec = tmp_path / f"spec{suffix}"
    spec.write_text(text)
    assert main(["derive", str(spec)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and field in err and "Traceback" not in err, err


@pytest.mark.parametrize("name,old,new,field", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_bad_spec_is_one_line_naming_the_field(tmp_path, capsys, name, old, new, field, suffix):
    _refused(tmp_path, capsys, GOOD, old, new, field, suffix)


@pytest.mark.parametrize("name,old,new,field", SEQUENCE_CASES, ids=[c[0] for c in SEQUENCE_CASES])
@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_bad_sequence_spec_is_one_line_naming_the_layer(tmp_path, capsys, name, old, new, field, suffix):
    _refused(tmp_path, capsys, SEQUENCE, old, new, field, suffix)


def test_missing_file(capsys):
    assert main(["derive", "no/such/spec.toml"]) == 2
    err = capsys.readouterr().err
    assert "no/such/spec.toml: no such file" in err and err.count("\n") == 1


def test_the_console_script_gives_one_line_and_status_2(tmp_path):
    spec = tmp_path / "bad.toml"
    spec.write_text(GOOD.replace('"squared_error"', '"l2"'))
    run = subprocess.run([sys.executable, "-m", "symbackprop", "derive", str(spec)], capture_output=True, text=True)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.strip().splitlines() == [
        "symbackprop derive: error: network.loss: unknown loss 'l2' "
        "(known: squared_error, half_squared_error, mse, binary_cross_entropy, cross_entropy)"]


def test_unknown_option_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["derive", "examples/seed.toml", "--frobnicate"])
    assert exit.value.code == 2 and capsys.readouterr().err.count("\n") == 1


def test_output_file_is_not_overwritten_without_force(tmp_path, capsys):
    out = tmp_path / "mine.txt"
    out.write_text("precious")
    assert main(["derive", "examples/seed.toml", "-o", str(out)]) == 2
    assert out.read_text() == "precious" and "--force" in capsys.readouterr().err
    assert main(["derive", "examples/seed.toml", "-o", str(out), "--force"]) == 0
    assert "dC/dW2[1,1]" in out.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]  # no temporary file left behind


def test_unknown_wrt(capsys):
    assert main(["derive", "examples/seed.toml", "--wrt", "W9"]) == 2
    assert "--wrt" in capsys.readouterr().err


def test_gradcheck_without_numbers_draws_them(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text(GOOD.split("[parameters]")[0])
    assert main(["gradcheck", str(spec)]) == 0
    assert capsys.readouterr().err.startswith("symbackprop gradcheck: note: drew the parameters")


def test_scalar_form_of_a_large_network_is_refused_not_a_hang(tmp_path, capsys):
    spec = tmp_path / "big.toml"
    spec.write_text('[network]\nlayers = [784, 256, 128, 10]\nactivations = ["relu", "relu", "softmax"]\n'
                    'loss = "cross_entropy"\n')
    assert main(["derive", str(spec), "--form", "scalar"]) == 2
    assert "use --form matrix" in capsys.readouterr().err
    assert main(["derive", str(spec)]) == 0                      # the default for it: matrix form
    assert "δ⁽¹⁾ = (W⁽²⁾)ᵀ δ⁽²⁾" in capsys.readouterr().out


def test_written_files_get_an_ordinary_mode(tmp_path):
    import os
    out = tmp_path / "derivation.txt"
    assert main(["derive", "examples/seed.toml", "-o", str(out)]) == 0
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


NOT_FINITE = {   # name: replacements in GOOD
    "sqrt of a negative": [('"sigmoid", "sigmoid"', '"z**0.5", "sigmoid"')],
    "overflow": [('"sigmoid", "sigmoid"', '"sigmoid", "identity"'), ("W2 = [[0.5, 0.2]]", "W2 = [[1e300, 1e300]]")],
}


@pytest.mark.parametrize("name", NOT_FINITE)
@pytest.mark.parametrize("args", [[], ["--format", "json"], ["--exact"], ["--form", "matrix", "--format", "json"],
                                  ["gradcheck"]], ids=["text", "json", "exact", "matrix-json", "gradcheck"])
def test_results_that_are_not_finite_are_reported_not_printed(tmp_path, capsys, name, args):
    text = GOOD
    for old, new in NOT_FINITE[name]:
        text = text.replace(old, new)
    spec = tmp_path / "spec.toml"
    spec.write_text(text)
    argv = ["gradcheck", str(spec)] if args == ["gradcheck"] else ["derive", str(spec), *args]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "is not a finite number" in captured.err
    assert "nan" not in captured.out and "inf" not in captured.out


@pytest.mark.parametrize("fmt", ["text", "markdown", "latex", "json"])
def test_exact_arithmetic_in_every_format(capsys, fmt):
    assert main(["derive", "examples/seed.toml", "--exact", "--format", fmt]) == 0
    assert "0.057536" in capsys.readouterr().out


@pytest.mark.parametrize("argv,field", [
    (["--exact", "--form", "matrix"], "--exact"),
    (["--wrt", "W2", "--form", "matrix"], "--wrt"),
])
def test_options_the_matrix_form_cannot_honour_are_refused(capsys, argv, field):
    assert main(["derive", "examples/seed.toml", *argv]) == 2
    assert capsys.readouterr().err.startswith(f"symbackprop derive: error: {field}: ")


def test_exact_is_refused_for_deep_networks(tmp_path, capsys):
    spec = tmp_path / "deep.toml"
    spec.write_text('[network]\nlayers = [2, 2, 2, 1]\nactivations = ["tanh", "tanh", "sigmoid"]\n'
                    'loss = "squared_error"\n')
    assert main(["derive", str(spec), "--exact"]) == 2
    assert "--exact: exact arithmetic is for" in capsys.readouterr().err


@pytest.mark.parametrize("loss,y", [("binary_cross_entropy", "2"), ("binary_cross_entropy", "-0.5"),
                                    ("cross_entropy", "-1")])
def test_targets_outside_the_losss_domain(tmp_path, capsys, loss, y):
    spec = tmp_path / "spec.toml"
    spec.write_text(GOOD.replace('"squared_error"', f'"{loss}"').replace("y = [1]", f"y = [{y}]"))
    assert main(["derive", str(spec)]) == 2
    assert f"sample.y: {loss} needs targets in" in capsys.readouterr().err


def test_a_flat_list_of_single_inputs_is_a_batch():
    from symbackprop import Network
    net = Network.from_dict({"network": {"layers": [1, 1], "activations": ["identity"], "loss": "mse"},
                             "parameters": {"W1": [[2.0]], "b1": [0.0]}, "sample": {"x": [1, 2, 3], "y": [2, 4, 7]}})
    assert net.batched and net.x.shape == (3, 1) and net.y.shape == (3, 1)
    assert net.exact["x"] == [[1], [2], [3]]


def test_explain_refuses_a_step_that_diverges(tmp_path, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text(GOOD.replace('"sigmoid", "sigmoid"', '"sigmoid", "identity"')
                    + '\n[optimizer]\nname = "sgd"\nlearning_rate = 1e300\n')
    assert main(["explain", str(spec)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "optimizer.learning_rate: the loss after one sgd step is not finite" in err
