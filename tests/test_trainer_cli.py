"""The generated trainer's command line: training to the stated results, the three stopping
conditions, bad input (one line, exit 2, checkpoint untouched), bit-identical resume, atomic writes."""
import os
import subprocess
import sys

import numpy as np
import pytest

from symbackprop.codegen.trainer import render
from symbackprop import Network, load
from test_generate import load_trainer

XOR_EPOCHS = 300  # the XOR trainer (Adam, lr 0.05, seed 0, full batch) learns XOR within this many epochs


@pytest.fixture(scope="module")
def seed_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("seed") / "seed_sgd.py"
    path.write_text(render(load("examples/seed.toml"), optimizer="sgd", source="examples/seed.toml"))
    return path


@pytest.fixture(scope="module")
def xor_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("xor") / "xor_adam.py"
    path.write_text(render(load("examples/xor.toml"), source="examples/xor.toml"))
    return path


def run(trainer, *args, cwd=None):
    """The trainer in a new process, as a user runs it."""
    return subprocess.run([sys.executable, str(trainer), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


_modules = {}


def call(trainer, *args):
    """The trainer's main() in this process (faster than a new one): a CompletedProcess look-alike."""
    import contextlib
    import io
    if trainer not in _modules:
        _modules[trainer] = load_trainer(trainer.read_text(), trainer.parent, f"{trainer.stem}_{len(_modules)}")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = _modules[trainer].main([str(a) for a in args])
        except SystemExit as exit_:
            code = exit_.code
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def checkpoint_arrays(path):
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def assert_same_checkpoint(a, b):
    a, b = checkpoint_arrays(a), checkpoint_arrays(b)
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, key
        assert a[key].tobytes() == b[key].tobytes(), key  # to the last bit


# ------------------------------------------------------------------------------------ results

def test_seed_trainer_reaches_the_loss(seed_file, tmp_path):
    result = run(seed_file, "--epochs", 5000, "--loss-below", 1e-3, "--save", tmp_path / "p.npz",
                 "--log", tmp_path / "loss.csv")
    assert result.returncode == 0, result.stderr
    assert "stopped (loss-below)" in result.stdout
    params = checkpoint_arrays(tmp_path / "p.npz")
    module = load_trainer(seed_file.read_text(), tmp_path)
    network = load("examples/seed.toml")
    theta = {k: params["param/" + k] for k in module.SHAPES}
    assert module.loss(theta, network.x, network.y) < 1e-3
    log = (tmp_path / "loss.csv").read_text().splitlines()
    assert log[0] == "epoch,iterations,loss,seconds,val_loss" and len(log) > 100
    assert "loss" in result.stdout.splitlines()[0] and "examples/s" in result.stdout.splitlines()[0]


@pytest.mark.parametrize("form", ["scalar", "array"])
def test_seed_trainer_in_process_both_forms(tmp_path, form):
    module = load_trainer(render(load("examples/seed.toml"), optimizer="sgd", form=form), tmp_path)
    network = load("examples/seed.toml")
    params = module.init_params()
    reason, run_ = module.train(params, network.x, network.y, epochs=5000, loss_below=1e-3)
    assert reason == "loss-below" and module.loss(params, network.x, network.y) < 1e-3
    assert run_["state"]["t"] == run_["epoch"] < 5000


def test_xor_trainer_learns_xor(xor_file, tmp_path):
    module = load_trainer(xor_file.read_text(), tmp_path)
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    Y = np.array([[0], [1], [1], [0]], dtype=float)
    params = module.init_params(seed=0)
    reason, _ = module.train(params, X, Y, epochs=XOR_EPOCHS, batch_size=4)
    out = module.forward(params, X)
    assert ((out > 0.5) == (Y > 0.5)).all(), out
    # and from the command line, on the CSV (with a header) and on the spec's sample
    (tmp_path / "xor.npz").write_bytes(b"")
    np.savez(tmp_path / "xor.npz", X=X, Y=Y)
    for data in (["--data", "examples/xor.csv"], [], ["--data", tmp_path / "xor.npz"]):
        result = (run if not data else call)(xor_file, *data, "--epochs", XOR_EPOCHS, "--batch-size", 4, "--quiet",
                     "--save", tmp_path / "x.npz")
        assert result.returncode == 0, result.stderr
        assert result.stdout.count("\n") == 1
        theta = {k[6:]: v for k, v in checkpoint_arrays(tmp_path / "x.npz").items() if k.startswith("param/")}
        assert ((module.forward(theta, X) > 0.5) == (Y > 0.5)).all()


def test_stopping_conditions(seed_file):
    result = call(seed_file, "--epochs", 100000, "--max-iters", 37, "--quiet")
    assert "stopped (max-iters)" in result.stdout and "37 updates" in result.stdout
    result = call(seed_file, "--epochs", 100000, "--min-delta", 1e-4, "--quiet")
    assert "stopped (min-delta)" in result.stdout
    result = call(seed_file, "--epochs", 12, "--quiet")
    assert "stopped (epochs) after epoch 12, 12 updates" in result.stdout


# ------------------------------------------------------------------------------------ bad input

BAD_CSV = {
    "columns": ("1,2,3,4,5\n", "5 columns, expected 4"),
    "text": ("x1,x2,x3,y\n1,2,oops,1\n", "'oops' is not a number"),
    "nan": ("1,2,nan,1\n", "expected finite numbers"),
    "inf": ("1,2,3,inf\n", "expected finite numbers"),
    "empty": ("x1,x2,x3,y\n", "has no rows"),
}


@pytest.mark.parametrize("case", sorted(BAD_CSV))
def test_bad_csv(seed_file, tmp_path, case):
    text, message = BAD_CSV[case]
    (tmp_path / "d.csv").write_text(text)
    ckpt = tmp_path / "c.npz"
    good = call(seed_file, "--epochs", 3, "--save", ckpt, "--quiet")
    assert good.returncode == 0
    before = ckpt.read_bytes()
    result = call(seed_file, "--data", tmp_path / "d.csv", "--save", ckpt)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert ckpt.read_bytes() == before


@pytest.mark.parametrize("args, message", [
    (["--data", "nowhere.csv"], "not found"),
    (["--data", "examples/seed.toml"], "expected a .csv or .npz"),
    (["--resume", "nowhere.npz"], "not found"),
    (["--epochs", "-3"], "positive"),
    (["--learning-rate", "nan"], "positive"),
    (["--save", "no/such/folder/c.npz"], "does not exist"),
])
def test_bad_arguments(seed_file, tmp_path, args, message):
    result = call(seed_file, *args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


def test_bad_npz(seed_file, tmp_path):
    np.savez(tmp_path / "a.npz", X=np.ones((3, 2)), Y=np.ones((3, 1)))
    result = call(seed_file, "--data", tmp_path / "a.npz")
    assert result.returncode == 2 and "X has shape (3, 2), expected (N, 3)" in result.stderr
    np.savez(tmp_path / "b.npz", X=np.array([[1, 2, np.nan]]), Y=np.ones((1, 1)))
    result = call(seed_file, "--data", tmp_path / "b.npz")
    assert result.returncode == 2 and "X[0, 2] is nan" in result.stderr
    np.savez(tmp_path / "c.npz", inputs=np.ones((1, 3)))
    result = call(seed_file, "--data", tmp_path / "c.npz")
    assert result.returncode == 2 and "expected arrays named X and Y" in result.stderr
    (tmp_path / "d.npz").write_bytes(b"PK\x03\x04 broken")
    result = call(seed_file, "--data", tmp_path / "d.npz")
    assert result.returncode == 2 and result.stderr.count("\n") == 1


def test_checkpoint_of_another_network(seed_file, xor_file, tmp_path):
    xor_ckpt, seed_ckpt = tmp_path / "xor.npz", tmp_path / "seed.npz"
    assert call(xor_file, "--epochs", 2, "--save", xor_ckpt, "--quiet").returncode == 0
    assert call(seed_file, "--epochs", 2, "--save", seed_ckpt, "--quiet").returncode == 0
    before = seed_ckpt.read_bytes()
    result = call(seed_file, "--resume", xor_ckpt, "--save", seed_ckpt)
    assert result.returncode == 2 and "checkpoint of another network" in result.stderr
    assert result.stderr.count("\n") == 1
    assert seed_ckpt.read_bytes() == before
    adam = tmp_path / "adam.py"
    adam.write_text(render(load("examples/seed.toml"), optimizer="adam"))
    result = call(adam, "--resume", seed_ckpt)
    assert result.returncode == 2 and "sgd" in result.stderr
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    result = call(seed_file, "--resume", tmp_path / "junk.npz", "--save", seed_ckpt)
    assert result.returncode == 2 and seed_ckpt.read_bytes() == before


def test_diverging_run_keeps_the_old_checkpoint(tmp_path):
    trainer = tmp_path / "t.py"
    network = Network.from_dict({"network": {"layers": [2, 3, 1], "activations": ["tanh", "identity"],
                                             "loss": "squared_error"}})
    trainer.write_text(render(network, optimizer="sgd", form="array"))
    np.savez(tmp_path / "d.npz", X=np.ones((4, 2)), Y=np.ones((4, 1)))
    ckpt = tmp_path / "c.npz"
    assert call(trainer, "--data", tmp_path / "d.npz", "--epochs", 2, "--save", ckpt, "--quiet").returncode == 0
    before = ckpt.read_bytes()
    result = call(trainer, "--data", tmp_path / "d.npz", "--resume", ckpt, "--epochs", 50,
                 "--learning-rate", 1e300, "--save", ckpt)
    assert result.returncode == 2 and "lower --learning-rate" in result.stderr, result.stderr
    assert ckpt.read_bytes() == before


# ------------------------------------------------------------------------------------ resume

@pytest.mark.parametrize("trainer, batch, split", [("xor", 3, ["--epochs", 7]), ("xor", 3, ["--max-iters", 8]),
                                                   ("seed", 1, ["--epochs", 9])])
def test_resume_is_bit_identical(seed_file, xor_file, tmp_path, trainer, batch, split):
    """Interrupted and resumed (at an epoch boundary, or mid-epoch) = uninterrupted, bit for bit."""
    path = xor_file if trainer == "xor" else seed_file
    runner = run if trainer == "seed" else call  # one in new processes, the others in this one
    common = ["--batch-size", batch, "--seed", 4, "--quiet"]
    whole, part = tmp_path / "whole.npz", tmp_path / "part.npz"
    assert runner(path, "--epochs", 15, "--save", whole, *common).returncode == 0
    first = runner(path, *split, "--save", part, *common)
    assert first.returncode == 0
    assert runner(path, "--resume", part, "--epochs", 15, "--save", part, *common).returncode == 0
    assert_same_checkpoint(whole, part)


def test_resume_in_process_array_mnist_shaped(tmp_path):
    """The same for the array form with minibatches and Adam, through the Python API."""
    module = load_trainer(render(load("examples/mnist.toml")), tmp_path)
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((40, 784)), np.eye(10)[rng.integers(0, 10, 40)]
    whole = module.new_run(module.init_params(1), seed=1)
    module.train(None, X, Y, epochs=3, batch_size=16, run=whole)
    part = module.new_run(module.init_params(1), seed=1)
    module.train(None, X, Y, epochs=3, batch_size=16, max_iters=4, run=part)
    module.save_checkpoint(part, tmp_path / "p.npz")
    resumed = module.load_checkpoint(tmp_path / "p.npz")
    module.train(None, X, Y, epochs=3, batch_size=16, run=resumed)
    for k in whole["params"]:
        assert whole["params"][k].tobytes() == resumed["params"][k].tobytes()
        assert whole["state"]["m"][k].tobytes() == resumed["state"]["m"][k].tobytes()
    assert whole["state"]["t"] == resumed["state"]["t"] == 9


# ------------------------------------------------------------------------------------ atomic writes

def test_failed_write_leaves_the_old_checkpoint_whole(seed_file, tmp_path, monkeypatch):
    module = load_trainer(seed_file.read_text(), tmp_path)
    network = load("examples/seed.toml")
    ckpt = tmp_path / "c.npz"
    run_ = module.new_run(module.init_params())
    module.train(None, network.x, network.y, epochs=5, run=run_)
    module.save_checkpoint(run_, str(ckpt))
    before = ckpt.read_bytes()
    module.train(None, network.x, network.y, epochs=10, run=run_)

    def dying_savez(handle, **arrays):  # writes half a file, then the process "dies"
        handle.write(b"PK\x03\x04" + b"\0" * 100)
        raise KeyboardInterrupt

    monkeypatch.setattr(module.np, "savez", dying_savez)
    with pytest.raises(KeyboardInterrupt):
        module.save_checkpoint(run_, str(ckpt))
    assert ckpt.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".c.npz")] == []
    monkeypatch.undo()
    assert module.load_checkpoint(str(ckpt))["epoch"] == 5


def test_killed_process_leaves_the_old_checkpoint_whole(seed_file, tmp_path):
    """SIGKILL a trainer that writes a checkpoint after every epoch; what is on disk always loads."""
    ckpt = tmp_path / "c.npz"
    assert run(seed_file, "--epochs", 1, "--save", ckpt, "--quiet").returncode == 0
    proc = subprocess.Popen([sys.executable, str(seed_file), "--epochs", str(10**9), "--save", str(ckpt),
                             "--save-every", "1", "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import time
        deadline = time.time() + 20
        while time.time() < deadline and checkpoint_arrays(ckpt)["epoch"] < 50:
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    module = load_trainer(seed_file.read_text(), tmp_path)
    assert module.load_checkpoint(str(ckpt))["epoch"] >= 1
    result = run(seed_file, "--resume", ckpt, "--epochs", 1, "--quiet")
    assert result.returncode == 0
