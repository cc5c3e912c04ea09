"""Generated trainers: they parse, import, and their gradients agree with central finite differences
and with Network.compile(); their update agrees with optimizers.step; hostile specs cannot inject
code; -o never clobbers a file symbackprop did not write."""
import ast
import functools
import importlib.util
import io
import itertools
import sys
import tokenize

import numpy as np
import pytest

from symbackprop.entries import optimizers as opt
from symbackprop.cli import main as cli_main
from symbackprop.errors import SpecError
from symbackprop.codegen.trainer import comment_text, is_generated, render
from symbackprop.codegen.updates import in_place
from symbackprop import Network, load

_counter = itertools.count()


def load_trainer(text, tmp_path, name=None):
    """Write ``text`` to a file and import it as a module."""
    name = name or f"trainer_{next(_counter)}"
    path = tmp_path / f"{name}.py"
    path.write_text(text, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def numpy_view(module):
    """A torch trainer's (or compiled module's) forward, loss and gradients with NumPy results, for
    the checks written for NumPy ones; arguments may be NumPy arrays (the functions convert them)."""
    import types
    return types.SimpleNamespace(
        forward=lambda *args: module.forward(*args).numpy(),
        loss=lambda *args: float(module.loss(*args)),
        gradients=lambda *args: {k: v.numpy() for k, v in module.gradients(*args).items()})


def net(layers, activations, loss, **extra):
    return Network.from_dict({"network": {"layers": layers, "activations": activations, "loss": loss}, **extra})


def data(network, n, seed=1, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.5, 1.5, (n, *network.input))
    if network.loss.name == "cross_entropy":
        Y = np.eye(network.layers[-1])[rng.integers(0, network.layers[-1], n)]
    elif network.loss.name == "binary_cross_entropy":
        Y = rng.integers(0, 2, (n, network.layers[-1])).astype(float)
    else:
        Y = rng.uniform(0.1, 0.9, (n, network.layers[-1]))
    return X.astype(dtype), Y.astype(dtype)


def finite_difference_check(module, params, X, Y, h=1e-6, tol=1e-6, directions=3, seed=0):
    """Central differences of module.loss along random directions, per parameter, against
    <gradients, direction>; names the parameter on failure."""
    rng = np.random.default_rng(seed)
    grads = module.gradients(params, X, Y)
    for name, value in params.items():
        assert grads[name].shape == value.shape, name
        for _ in range(directions):
            d = rng.standard_normal(value.shape)
            plus = {**params, name: value + h * d}
            minus = {**params, name: value - h * d}
            numeric = (float(module.loss(plus, X, Y)) - float(module.loss(minus, X, Y))) / (2 * h)
            exact = float(np.sum(grads[name] * d))
            assert abs(numeric - exact) <= tol * max(1.0, abs(exact)), (name, numeric, exact)


CASES = [  # (id, network, optimizer, form)
    ("seed-scalar-sgd", load("examples/seed.toml"), "sgd", "scalar"),
    ("seed-array-sgd", load("examples/seed.toml"), "sgd", "array"),
    ("xor-array-adam", load("examples/xor.toml"), "adam", "array"),
    ("tanh-relu-scalar", net([3, 4, 2], ["tanh", "relu"], "half_squared_error"), "momentum", "scalar"),
    ("leaky-identity-mse-scalar", net([2, 3, 2], ["leaky_relu", "identity"], "mse"), "nesterov", "scalar"),
    ("softmax-ce", net([4, 5, 3], ["relu", "softmax"], "cross_entropy"), "rmsprop", "array"),
    ("softplus-elu-bce", net([3, 4, 3, 1], ["softplus", "elu", "sigmoid"], "binary_cross_entropy"), "adagrad", "array"),
    ("silu-gelu", net([3, 4, 2], ["silu", "gelu"], "squared_error"), "adamw", "array"),
    ("custom-softsign", net([3, 4, 1], ["z/(1 + abs(z))", "sigmoid"], "squared_error"), "adam", "array"),
    # SGD steps fold the learning rate into the output delta: through dense, conv, pool and batch norm
    ("softmax-ce-sgd", net([4, 5, 3], ["relu", "softmax"], "cross_entropy"), "sgd", "array"),
    ("cnn-sgd", load("examples/cnn.toml"), "sgd", "array"),
]


@pytest.fixture(scope="module")
def trainers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trainers")
    return {case[0]: (case[1], load_trainer(render(case[1], optimizer=case[2], form=case[3], source="spec.toml"), tmp))
            for case in CASES}


@pytest.mark.parametrize("case", [c[0] for c in CASES])
def test_gradients_agree_with_finite_differences_and_compile(case, trainers):
    network, module = trainers[case]
    assert module.forward and module.loss and module.init_state and module.step and module.train
    params = module.init_params(seed=3)
    if network.parameters is None:  # biases start at 0: move them off it so every term is exercised
        params = {k: v + 0.1 * np.random.default_rng(4).standard_normal(v.shape) for k, v in params.items()}
    X, Y = data(network, 5)
    finite_difference_check(module, params, X, Y)
    compiled = network.compile()
    ours = module.gradients(params, X, Y)
    theirs = compiled.gradients(params, X, Y)
    for name in params:
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-10, atol=1e-13, err_msg=name)
    np.testing.assert_allclose(module.loss(params, X, Y), compiled.loss(params, X, Y), rtol=1e-12)
    if hasattr(module, "loss_and_gradients"):  # the array form: the function its step calls
        C, both = module.loss_and_gradients(params, X, Y)
        assert C == module.loss(params, X, Y)
        for name in params:
            np.testing.assert_array_equal(both[name], ours[name], err_msg=name)
    np.testing.assert_allclose(module.forward(params, X), compiled.forward(params, X), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("case", [c[0] for c in CASES])
def test_step_is_the_optimizers_update(case, trainers):
    """Two steps of the trainer equal two steps of optimizers.step on the same gradients."""
    network, module = trainers[case]
    name = module.OPTIMIZER
    settings = opt.Settings.of({k: v for k, v in network.optimizer.items() if k != "name"})
    optimizer = opt.OPTIMIZERS[name]
    params = module.init_params(seed=5)
    state = module.init_state(params)
    ref_params = {k: v.copy() for k, v in params.items()}
    ref_state = optimizer.init_state(ref_params)
    X, Y = data(network, 4, seed=2)
    compiled = network.compile()
    for t in (1, 2):
        arrays = {k: v for k, v in params.items()}
        before = float(module.loss(params, X, Y))
        returned = module.step(params, state, X, Y)
        assert all(params[k] is arrays[k] for k in params), "step must update the arrays in place"
        np.testing.assert_allclose(returned, before, rtol=1e-12)
        grads = compiled.gradients(ref_params, X, Y)
        ref_params, ref_state = opt.step(optimizer, settings, ref_params, grads, ref_state, t)
        assert state["t"] == t
        for k in params:
            np.testing.assert_allclose(params[k], ref_params[k], rtol=1e-9, atol=1e-12, err_msg=f"{case} {k} t={t}")
        for key in optimizer.state:
            for k in params:
                np.testing.assert_allclose(state[key][k], ref_state[key][k], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("form", ["scalar", "array"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_train_biases_false_and_bias_correction(tmp_path, form, optimizer):
    network = load("examples/seed.toml")
    spec = Network.from_dict({"network": {"layers": [3, 2, 1], "activations": ["sigmoid", "sigmoid"],
                                          "loss": "squared_error"},
                              "optimizer": {"train_biases": False, "bias_correction": False}})
    module = load_trainer(render(spec, optimizer=optimizer, form=form), tmp_path)
    assert module.TRAINED == ["W1", "W2"]
    params = module.init_params(seed=1)
    biases = {k: params[k].copy() for k in ("b1", "b2")}
    weights = {k: params[k].copy() for k in ("W1", "W2")}
    state = module.init_state(params)
    module.step(params, state, network.x, network.y)
    for k in biases:
        np.testing.assert_array_equal(params[k], biases[k])
    for k in weights:
        assert not np.array_equal(params[k], weights[k])
    if optimizer == "adam":  # no bias correction: the first step is lr * m / (sqrt(v) + eps), m = 0.1 g, v = 0.001 g²
        g = network.compile().gradients({**{k: v for k, v in params.items()}, **weights}, network.x, network.y)
        expected = weights["W1"] - module.learning_rate * 0.1 * g["W1"] / (np.sqrt(0.001 * g["W1"] ** 2) + module.eps)
        np.testing.assert_allclose(params["W1"], expected, rtol=1e-12)


@pytest.mark.parametrize("form", ["scalar", "array"])
def test_train_names_what_the_trainer_updates_and_checkpoints_keep_the_rest(tmp_path, form):
    """[optimizer] train = ["W2", "b2"]: TRAINED is that list; a step, and training with a checkpoint
    written and resumed, leave W1 and b1 as they started."""
    spec = Network.from_dict({"network": {"layers": [3, 2, 1], "activations": ["sigmoid", "sigmoid"],
                                          "loss": "squared_error"},
                              "optimizer": {"name": "adam", "learning_rate": 0.1, "train": ["W2", "b2"]}})
    module = load_trainer(render(spec, form=form), tmp_path)
    assert module.TRAINED == ["W2", "b2"]
    seed = load("examples/seed.toml")
    params = module.init_params(seed=2)
    start = {k: v.copy() for k, v in params.items()}
    run = module.new_run(params, seed=2)
    module.train(params, seed.x, seed.y, epochs=3, batch_size=1, run=run)
    path = tmp_path / "ckpt.npz"
    module.save_checkpoint(run, str(path))
    resumed = module.load_checkpoint(str(path))
    module.train(resumed["params"], seed.x, seed.y, epochs=6, batch_size=1, run=resumed)
    for k in ("W1", "b1"):
        np.testing.assert_array_equal(resumed["params"][k], start[k])
        np.testing.assert_array_equal(resumed["state"]["m"][k], 0)
    for k in ("W2", "b2"):
        assert not np.array_equal(resumed["params"][k], start[k])
    with pytest.raises(SpecError, match="optimizer.train: 'W3' is not a parameter"):
        Network.from_dict({"network": {"layers": [3, 2, 1], "activations": "sigmoid", "loss": "mse"},
                           "optimizer": {"train": ["W3"]}})


def test_header_reads_bias_correction_from_the_rules_not_the_name(monkeypatch):
    from dataclasses import replace
    monkeypatch.setitem(opt.OPTIMIZERS, "renamed", replace(opt.OPTIMIZERS["adam"], name="renamed"))
    monkeypatch.setitem(opt.OPTIMIZERS, "adam", opt.OPTIMIZERS["sgd"])  # a name is not a rule
    seed = load("examples/seed.toml")
    assert "# The update (renamed, bias correction on), element-wise" in render(seed, optimizer="renamed")
    assert "# The update (sgd), element-wise" in render(seed, optimizer="adam")


def test_docstrings_say_what_they_mean_not_which_issue():
    import re
    import symbackprop.codegen.trainer
    with open(symbackprop.codegen.trainer.__file__, encoding="utf-8") as source:
        assert not re.search(r"\bissue \d", source.read(), re.IGNORECASE)


def test_float32_trainer(tmp_path):
    network = load("examples/mnist.toml")
    module = load_trainer(render(network, dtype="float32"), tmp_path)
    params = module.init_params(seed=0)
    assert all(v.dtype == np.float32 for v in params.values())
    X, Y = data(network, 16, dtype=np.float32)
    state = module.init_state(params)
    c = module.step(params, state, X, Y)
    assert np.isfinite(c) and all(v.dtype == np.float32 for v in params.values())
    assert all(v.dtype == np.float32 for s in module.STATE for v in state[s].values())
    ref = network.compile(np.float64).gradients({k: v.astype(np.float64) for k, v in params.items()},
                                                X.astype(np.float64), Y.astype(np.float64))
    ours = module.gradients(params, X, Y)
    for k in ours:
        np.testing.assert_allclose(ours[k], ref[k], rtol=2e-3, atol=2e-5, err_msg=k)


def test_init_params_seeded_he_and_glorot(tmp_path):
    module = load_trainer(render(load("examples/mnist.toml")), tmp_path)
    a, b = module.init_params(seed=7), module.init_params(seed=7)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["W1"], module.init_params(seed=8)["W1"])
    assert abs(a["W1"].std() - np.sqrt(2 / 784)) < 0.05 * np.sqrt(2 / 784)   # He for relu
    limit = np.sqrt(6 / (128 + 10))
    assert np.abs(a["W2"]).max() <= limit and a["W2"].std() > 0.5 * limit / np.sqrt(3)  # Glorot uniform
    assert not a["b1"].any() and not a["b2"].any()
    seed = load_trainer(render(load("examples/seed.toml")), tmp_path)
    assert seed.init_params()["W1"].tolist() == [[0.2, -0.5, 0.1], [-0.3, 0.4, 0.2]]


def test_auto_form_is_scalar_only_for_tiny_networks():
    assert "unrolled scalar code" in render(load("examples/seed.toml"))
    assert "unrolled scalar code" not in render(load("examples/xor.toml"))       # BCE: array
    with pytest.raises(SpecError, match="--form"):
        render(load("examples/mnist.toml"), form="scalar")


def test_in_place_forms():
    import sympy
    theta, g, lr, wd = sympy.symbols("theta g learning_rate weight_decay")
    assert in_place(theta, theta - lr * g) == [("-=", g * lr)]
    assert in_place(theta, theta - lr * (g + wd * theta)) == [("*=", 1 - lr * wd), ("-=", g * lr)]
    assert in_place(theta, g / theta) == [("[...] =", g / theta)]


# ------------------------------------------------------------------------------------ security

def code_tokens(text):
    """Every token of the file that is not a comment (strings included)."""
    return [tok.string for tok in tokenize.generate_tokens(io.StringIO(text).readline)
            if tok.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
                                tokenize.DEDENT, tokenize.ENDMARKER)]


HOSTILE = [
    "evil\nimport os; os.system('echo PWNED')\n#",
    "evil\rimport os  # carriage return",
    "evil\u2028import os  # line separator",
    "evil\x0cimport os  # form feed",
    "evil\x00nul",
    "# -*- coding: rot13 -*-",
    "evil\u202eesrever",
    "evil\\\nimport os",
    "\"\"\"; import os; \"\"\"",
]


@functools.lru_cache(maxsize=None)
def harmless_tokens():
    return code_tokens(render(load("examples/seed.toml"), source="spec.toml"))


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_spec_path_stays_in_comments(tmp_path, hostile):
    text = render(load("examples/seed.toml"), source=hostile)
    ast.parse(text)
    assert text.splitlines()[0].startswith("# Generated by symbackprop")
    assert "PWNED" not in "".join(code_tokens(text))
    # the path changes comments only: the code is token for token that of a harmless path
    assert code_tokens(text) == harmless_tokens()
    for line in text.splitlines():
        assert line.isprintable() or line == "", repr(line)
    module = load_trainer(text, tmp_path)
    assert module.SIGNATURE == "3-2-1 sigmoid,sigmoid squared_error"


def test_hostile_spec_file_name_through_the_cli(tmp_path):
    name = "x\nimport os\nos.system('echo PWNED')\n.toml"
    spec = tmp_path / name
    spec.write_text(load("examples/seed.toml").source and open("examples/seed.toml").read())
    out = tmp_path / "trainer.py"
    assert cli_main(["generate", str(spec), "-o", str(out)]) == 0
    text = out.read_text()
    ast.parse(text)
    assert "PWNED" not in "".join(code_tokens(text))
    assert "\\nimport os\\nos.system" in text  # shown, escaped, in a comment


@pytest.mark.parametrize("formula", [
    "__import__('os').system('echo PWNED')", "z.__class__", "exec('1')", "lambda: z", "z; import os",
    "z\nimport os", "[z for z in ()]", "open('x')", "z if z else z", "getattr(z, 'x')",
])
def test_hostile_activation_is_refused(formula):
    with pytest.raises(SpecError, match=r"network\.activations\[0\]"):
        net([2, 2, 1], [formula, "sigmoid"], "squared_error")


def test_custom_activation_enters_only_as_printed_sympy(tmp_path):
    network = net([2, 3, 1], ["z*tanh(z)  +  0.5*z", "identity"], "squared_error")
    text = render(network, form="array")
    ast.parse(text)
    assert "z*tanh(z)  +  0.5*z" not in "\n".join(code_tokens(text))
    assert "np.tanh(z1" in text
    assert "custom_" in text  # the activation is named by a hash in the code, never by its text
    module = load_trainer(text, tmp_path)
    params = module.init_params(seed=1)
    finite_difference_check(module, params, *data(network, 4))


def test_numbers_from_the_spec_are_printed_as_floats(tmp_path):
    network = load("examples/seed.toml")
    text = render(network, learning_rate=1e-3)
    assert "learning_rate = 0.001" in text
    with pytest.raises(SpecError, match="--learning-rate"):
        render(network, learning_rate=float("nan"))
    with pytest.raises(SpecError, match="optimizer.name"):
        render(Network.from_dict({"network": {"layers": [1, 1], "activations": ["identity"],
                                              "loss": "squared_error"}, "optimizer": {"name": "os.system"}}))


def test_comment_text():
    assert comment_text("a\nb\rc\x00d\u2028e") == "a\\nb\\rc\\x00d\\u2028e"
    assert len(comment_text("x" * 1000)) == 160


# ------------------------------------------------------------------------------------ -o

def test_output_is_not_clobbered(tmp_path, capsys):
    out = tmp_path / "train.py"
    out.write_text("my own script\n")
    assert cli_main(["generate", "examples/seed.toml", "-o", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert out.read_text() == "my own script\n"
    assert cli_main(["generate", "examples/seed.toml", "-o", str(out), "--force"]) == 0
    assert is_generated(out.read_text())
    # a file symbackprop generated may be replaced without --force
    assert cli_main(["generate", "examples/seed.toml", "-o", str(out), "--optimizer", "adam"]) == 0
    assert 'OPTIMIZER = "adam"' in out.read_text()
    assert not list(tmp_path.glob(".*.tmp"))


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    assert cli_main(["generate", str(tmp_path / "missing.toml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such file" in err
    with pytest.raises(SystemExit) as exit_:
        cli_main(["generate", "examples/seed.toml", "--optimizer", "lbfgs"])
    assert exit_.value.code == 2


def test_stdout_when_no_output(capsys):
    assert cli_main(["generate", "examples/seed.toml", "--optimizer", "sgd"]) == 0
    out = capsys.readouterr().out
    assert is_generated(out)
    ast.parse(out)


def test_step_checks_arrays_it_has_not_seen(tmp_path):
    """step() checks the parameters again only when an array is another object than last time: a
    new array of the wrong shape or dtype is still refused, naming it."""
    network = net([3, 4, 2], ["tanh", "sigmoid"], "binary_cross_entropy")
    module = load_trainer(render(network, optimizer="sgd", form="array"), tmp_path)
    params = module.init_params(seed=1)
    state = module.init_state(params)
    X, Y = data(network, 5)
    module.step(params, state, X, Y)
    module.step(params, state, X, Y)
    for bad, message in [({**params, "W1": params["W1"].T.copy()}, r"params\['W1'\]: expected a float64 array of shape \(4, 3\)"),
                         ({**params, "b2": params["b2"].astype(np.float32)}, r"params\['b2'\]: .* got a float32 array"),
                         ({k: v for k, v in params.items() if k != "W2"}, r"params\['W2'\]: missing"),
                         ([params], r"^params: expected a dict")]:
        with pytest.raises(ValueError, match=message):
            module.step(bad, state, X, Y)
    with pytest.raises(ValueError, match=r"^X: expected"):
        module.step(params, state, X[:, :2], Y)
    with pytest.raises(ValueError, match=r"^Y: expected"):
        module.step(params, state, X, Y[:3])
