"""The torch backend: the same statements printed as PyTorch code.

Every layer kind (tests/cases.py's GRAPHS) and every activation and loss: the torch functions
against the NumPy ones and against finite differences; trainer steps against the NumPy trainer's
for every optimizer; checkpoints that pass between the backends; data-parallel training under
``python -m torch.distributed.run`` against one process; bad input; and symbackprop itself working
without torch installed.
"""
import ast
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cases import BATCH_ONLY, GRAPHS, HIDDEN, graph, network as dense_network
from symbackprop.codegen.compiled import compile_network
from symbackprop.codegen.trainer import render
from symbackprop.entries.optimizers import OPTIMIZERS
from symbackprop.entries.registry import LOSSES
from symbackprop import Network, load
from test_generate import finite_difference_check, load_trainer, numpy_view
from test_trainer_cli import assert_same_checkpoint, call, checkpoint_arrays

torch = pytest.importorskip("torch")
ROOT = Path(__file__).resolve().parent.parent


def arrays(net):
    """The spec's parameters and sample as float64 arrays in the network's shapes."""
    params = {k: np.asarray(v, dtype=np.float64) for k, v in net.parameters.items()}
    X = np.asarray(net.x, dtype=np.float64).reshape(-1, *net.input)
    return params, X, np.asarray(net.y, dtype=np.float64).reshape(len(X), *net.output_shape)


def compare(net, seed=0, directions=1):
    """The torch functions of ``net`` against the NumPy ones (to float64 rounding) and against
    central differences of the torch loss."""
    ours, theirs = compile_network(net, backend="torch"), compile_network(net)
    params, X, Y = arrays(net)
    masks = None
    if "MASKS" in ours.namespace:   # the same masks for both
        masks = theirs.namespace["draw_masks"](np.random.default_rng(seed), len(X))
    extra = (masks,) if masks is not None else ()
    C, grads = ours.loss_and_gradients(params, X, Y, *extra)
    C_np, grads_np = theirs.loss_and_gradients(params, X, Y, *extra)
    assert isinstance(C, torch.Tensor) and C.dtype == torch.float64
    np.testing.assert_allclose(float(C), float(C_np), rtol=1e-12)
    for name, value in grads_np.items():
        assert isinstance(grads[name], torch.Tensor), name
        np.testing.assert_allclose(grads[name].numpy(), value, rtol=1e-10, atol=1e-13, err_msg=name)
    np.testing.assert_allclose(ours.forward(params, X, *extra).numpy(), theirs.forward(params, X, *extra),
                               rtol=1e-12, atol=1e-14)
    running = {name: np.abs(np.random.default_rng(1).normal(size=spec[0])) + 0.5
               for name, spec in theirs.namespace.get("RUNNING", {}).items()}
    np.testing.assert_allclose(ours.predict(params, {"running": running}, X).numpy(),
                               theirs.predict(params, {"running": running}, X), rtol=1e-12, atol=1e-14)
    view = numpy_view(ours)
    if masks is not None:
        view.loss = lambda p, X, Y: float(ours.loss(p, X, Y, masks))
        view.gradients = lambda p, X, Y: {k: v.numpy() for k, v in ours.gradients(p, X, Y, masks).items()}
    finite_difference_check(view, params, X, Y, directions=directions, seed=seed)


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_every_layer_kind_against_numpy_and_finite_differences(name):
    compare(graph(name, batch=4, seed=2), seed=2)
    if name not in BATCH_ONLY:
        compare(graph(name, seed=3), seed=3)       # a single example


DENSE_CASES = ([(hidden, "identity", "mse") for hidden in HIDDEN]
               + [("tanh", "sigmoid", "binary_cross_entropy"), ("relu", "softmax", "cross_entropy"),
                  ("leaky_relu", "sigmoid", "cross_entropy"), ("elu", "tanh", "squared_error"),
                  ("softplus", "softmax", "half_squared_error")])


def test_the_dense_cases_cover_every_activation_and_loss():
    assert {c[0] for c in DENSE_CASES} | {c[1] for c in DENSE_CASES} >= set(HIDDEN)
    assert {c[2] for c in DENSE_CASES} == set(LOSSES)


@pytest.mark.parametrize("hidden, output, loss", DENSE_CASES, ids=["-".join(c) for c in DENSE_CASES])
def test_every_activation_and_loss(hidden, output, loss):
    compare(dense_network(hidden, output, loss, layers=(3, 4, 2), batch=3, seed=4), seed=4, directions=2)


def test_numpy_arguments_are_converted_and_bad_ones_named():
    f = compile_network(graph("conv2d", batch=2), backend="torch")
    params, X, Y = arrays(graph("conv2d", batch=2))
    assert f.forward(params, X.astype(np.float32)).dtype == torch.float64   # converted to the dtype
    with pytest.raises(ValueError, match=r"params\['W1'\]: expected a float64 tensor of shape \(3, 2, 3, 3\)"):
        f.forward({**params, "W1": torch.zeros(3, 2, 3, 3, dtype=torch.float32)}, X)
    with pytest.raises(ValueError, match=r"X: expected"):
        f.forward(params, X[:, :1])


# ------------------------------------------------------------------------------------ trainers

SMALL_NET = {"network": {"input": [6], "loss": "cross_entropy"}, "layer": [
    {"type": "dense", "units": 8, "activation": "relu"}, {"type": "dropout", "rate": 0.3},
    {"type": "dense", "units": 3, "activation": "softmax"}]}


@pytest.fixture(scope="module")
def small_net():
    return Network.from_dict(SMALL_NET)


def small_data(n=30, seed=5):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 6)), np.eye(3)[rng.integers(0, 3, n)]


@pytest.mark.parametrize("weight_decay", [0, 0.01])
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_trainer_train_matches_the_numpy_trainer(small_net, optimizer, weight_decay, tmp_path):
    """Three epochs of minibatches (shuffling and dropout masks from the run's generator): the
    parameters and the optimizer state of both backends agree to float64 rounding, with and without
    weight decay (whose g_hat is, for SGD and the others with no other temporary, the step's only
    scratch tensor: it once bound the list of them, and the torch step raised a TypeError)."""
    if weight_decay:
        small_net = Network.from_dict({**SMALL_NET, "optimizer": {"weight_decay": weight_decay}})
    ours = load_trainer(render(small_net, optimizer=optimizer, backend="torch"), tmp_path)
    theirs = load_trainer(render(small_net, optimizer=optimizer), tmp_path)
    X, Y = small_data()
    runs = []
    for module in (ours, theirs):
        run = module.new_run(module.init_params(seed=3), seed=3)
        assert module.train(None, X, Y, epochs=3, batch_size=8, run=run)[0] == "epochs"
        runs.append(run)
    (mine, its) = runs
    assert all(isinstance(v, torch.Tensor) for v in mine["params"].values())
    for name, value in its["params"].items():
        np.testing.assert_allclose(mine["params"][name].numpy(), value, rtol=1e-11, atol=1e-13, err_msg=name)
        for key in ours.STATE:
            np.testing.assert_allclose(mine["state"][key][name].numpy(), its["state"][key][name],
                                       rtol=1e-11, atol=1e-13, err_msg=f"{key} {name}")
    assert mine["state"]["t"] == its["state"]["t"] == 12


def test_torch_trainer_header_and_form(small_net):
    text = render(small_net, backend="torch")
    ast.parse(text)
    assert "it needs PyTorch, NumPy and the Python standard library" in text
    assert "--backend torch" in text.splitlines()[6]
    assert "np." not in text[text.index("def loss_and_gradients"):text.index("def predict")]
    from symbackprop.errors import SpecError
    with pytest.raises(SpecError, match="--form"):
        render(small_net, backend="torch", form="scalar")


# ------------------------------------------------------------------------------------ checkpoints

CNN = {"network": {"input": [1, 8, 8], "loss": "cross_entropy"}, "layer": [
    {"type": "conv2d", "channels": 3, "kernel": 3, "padding": 1}, {"type": "batchnorm", "activation": "relu"},
    {"type": "maxpool2d", "kernel": 2}, {"type": "flatten"}, {"type": "dropout", "rate": 0.2},
    {"type": "dense", "units": 3, "activation": "softmax"}], "optimizer": {"name": "momentum", "learning_rate": 0.05}}
# (momentum, not Adam: b1 feeds batch norm, so its gradient is 0 but for rounding, which Adam's
# normalisation would turn into steps of ~1e-9 that differ between the backends)


@pytest.fixture(scope="module")
def cnn_trainers(tmp_path_factory):
    """The same conv/batch-norm/max-pool/dropout net, float64, as a NumPy and as a torch trainer,
    and 96 of the bundled bar images."""
    folder = tmp_path_factory.mktemp("cnn")
    net = Network.from_dict(CNN)
    files = {}
    for backend in ("numpy", "torch"):
        files[backend] = folder / f"cnn_{backend}.py"
        files[backend].write_text(render(net, backend=backend))
    with np.load(ROOT / "examples/bars.npz") as bars:
        np.savez(folder / "bars.npz", X=bars["X"][:96], Y=bars["Y"][:96])
    return files, folder / "bars.npz"


def test_checkpoints_pass_between_backends(cnn_trainers, tmp_path):
    """A torch run saved, re-saved by the NumPy trainer (nothing left to train) and resumed by
    torch is the uninterrupted torch run to the last bit, and the other way round; a run one
    backend saved continues in the other to float64 rounding (their matrix products round
    differently)."""
    files, bars = cnn_trainers
    common = ["--data", bars, "--batch-size", 16, "--seed", 2, "--quiet", "--device", "cpu"]
    opts = {"numpy": common[:-2], "torch": common}
    for backend, other in (("torch", "numpy"), ("numpy", "torch")):
        whole, half, again = (tmp_path / f"{backend}_{k}.npz" for k in ("whole", "half", "again"))
        assert call(files[backend], *opts[backend], "--epochs", 4, "--save", whole).returncode == 0
        assert call(files[backend], *opts[backend], "--epochs", 2, "--max-iters", 10, "--save", half).returncode == 0
        result = call(files[other], *opts[other], "--resume", half, "--max-iters", 10, "--epochs", 4, "--save", again)
        assert result.returncode == 0, result.stderr
        assert_same_checkpoint(half, again)          # read and written back by the other backend, unchanged
        assert call(files[backend], *opts[backend], "--resume", again, "--epochs", 4, "--save", again).returncode == 0
        assert_same_checkpoint(whole, again)
    # the NumPy run's first 10 updates, the rest in torch: the NumPy run, to rounding
    mixed = tmp_path / "mixed.npz"
    assert call(files["torch"], *common, "--resume", tmp_path / "numpy_half.npz", "--epochs", 4, "--save", mixed).returncode == 0
    a, b = checkpoint_arrays(mixed), checkpoint_arrays(tmp_path / "numpy_whole.npz")
    for key in a:
        if key.startswith(("param/", "state/")) or key == "history":
            np.testing.assert_allclose(a[key], b[key], rtol=1e-10, atol=1e-13, err_msg=key)
        elif key != "previous_loss":
            assert a[key].tobytes() == b[key].tobytes(), key


# ------------------------------------------------------------------------------------ distributed

def torchrun(trainer, *args, processes=2):
    """``python -m torch.distributed.run --standalone --nproc_per_node=K trainer -- --distributed ...``
    (the ``--``: torchrun would take the trainer's --log for an abbreviation of its own --log-dir)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           f"--nproc_per_node={processes}", str(trainer), "--", "--distributed", *map(str, args)],
                          capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def small_trainer(small_net, tmp_path_factory):
    folder = tmp_path_factory.mktemp("small")
    trainer = folder / "small_torch.py"
    trainer.write_text(render(small_net, optimizer="adam", backend="torch"))
    X, Y = small_data()
    np.savez(folder / "data.npz", X=X, Y=Y)
    return trainer, folder / "data.npz"


def assert_close_checkpoints(a, b):
    a, b = checkpoint_arrays(a), checkpoint_arrays(b)
    assert a.keys() == b.keys()
    for key in a:
        if key.startswith(("param/", "state/")) or key in ("previous_loss", "loss_sum", "history"):
            np.testing.assert_allclose(a[key], b[key], rtol=1e-12, atol=1e-15, err_msg=key)
        else:
            assert a[key].tobytes() == b[key].tobytes(), key


def test_two_processes_train_as_one_and_resume_in_one(small_trainer, tmp_path):
    """Batches of 7 on 2 ranks (shares of 3 and 4 rows, the epoch's last batch 1: none and one),
    with dropout and a validation half (15 rows in chunks of 7, the ranks taking turns): the 2-process run
    ends where the 1-process run does, to float64 rounding, validation and accuracy included; rank 0
    alone prints, logs and plots; its checkpoint resumes in one process."""
    trainer, data = small_trainer
    common = ["--data", data, "--batch-size", 7, "--seed", 1, "--device", "cpu", "--val-fraction", 0.5]
    two, one = tmp_path / "two.npz", tmp_path / "one.npz"
    result = torchrun(trainer, *common, "--epochs", 3, "--save", two, "--log", tmp_path / "two.csv",
                      "--plot", tmp_path / "two.svg")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert [l.split()[:2] for l in lines[:-1]] == [["epoch", "1"], ["epoch", "2"], ["epoch", "3"]]
    assert all("val_loss" in l and "val_accuracy" in l for l in lines), result.stdout
    assert lines[-1].startswith("stopped (epochs) after epoch 3, 9 updates"), result.stdout
    assert len((tmp_path / "two.csv").read_text().splitlines()) == 4 and (tmp_path / "two.svg").exists()
    assert call(trainer, *common, "--epochs", 3, "--save", one, "--quiet", "--log", tmp_path / "one.csv").returncode == 0
    assert_close_checkpoints(two, one)
    columns = [np.loadtxt(tmp_path / f"{k}.csv", delimiter=",", skiprows=1) for k in ("two", "one")]
    np.testing.assert_allclose(np.delete(columns[0], 3, 1), np.delete(columns[1], 3, 1), rtol=1e-12)  # (not seconds)
    # resumed by one process: the uninterrupted one-process run
    assert call(trainer, *common, "--resume", two, "--epochs", 5, "--save", two, "--quiet").returncode == 0
    assert call(trainer, *common, "--epochs", 5, "--save", one, "--quiet").returncode == 0
    assert_close_checkpoints(two, one)


def test_distributed_resume_mid_epoch(small_trainer, tmp_path):
    """A one-process checkpoint taken mid-epoch, resumed by 2 processes: the one-process run."""
    trainer, data = small_trainer
    common = ["--data", data, "--batch-size", 6, "--seed", 4, "--device", "cpu", "--quiet"]
    part, whole = tmp_path / "part.npz", tmp_path / "whole.npz"
    assert call(trainer, *common, "--epochs", 3, "--max-iters", 7, "--save", part).returncode == 0
    result = torchrun(trainer, *common, "--resume", part, "--epochs", 3, "--save", part)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("\n") == 1 and "15 updates" in result.stdout
    assert call(trainer, *common, "--epochs", 3, "--save", whole).returncode == 0
    assert_close_checkpoints(part, whole)


# ------------------------------------------------------------------------------------ bad input

TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def test_bad_input_is_one_line_and_overwrites_nothing(small_trainer, cnn_trainers, tmp_path, monkeypatch):
    trainer, data = small_trainer
    ckpt = tmp_path / "c.npz"
    assert call(trainer, "--data", data, "--epochs", 1, "--save", ckpt, "--quiet", "--device", "cpu").returncode == 0
    before = ckpt.read_bytes()
    for name in TORCHRUN_ENV:
        monkeypatch.delenv(name, raising=False)
    cases = [(["--distributed"], "--distributed needs the environment torchrun sets")]
    if not torch.cuda.is_available():
        cases.append((["--device", "cuda"], "--device cuda: no CUDA device is available"))
    cnn_ckpt = tmp_path / "cnn.npz"
    files, bars = cnn_trainers
    assert call(files["numpy"], "--data", bars, "--epochs", 1, "--save", cnn_ckpt, "--quiet").returncode == 0
    cases.append((["--resume", cnn_ckpt], "checkpoint of another network"))
    f32 = tmp_path / "small32.py"
    f32.write_text(render(Network.from_dict({"network": {"input": [6], "loss": "cross_entropy"}, "layer": [
        {"type": "dense", "units": 8, "activation": "relu"}, {"type": "dropout", "rate": 0.3},
        {"type": "dense", "units": 3, "activation": "softmax"}]}), optimizer="adam", backend="torch", dtype="float32"))
    for args, message in cases:
        result = call(trainer, "--data", data, "--epochs", 2, "--save", ckpt, *args)
        assert result.returncode == 2 and result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
        assert ckpt.read_bytes() == before
    result = call(f32, "--data", data, "--resume", ckpt, "--save", ckpt, "--device", "cpu")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "float64 trainer, this one is adam float32" in result.stderr and ckpt.read_bytes() == before
    # (batch norm under --distributed is no longer refused: tests/test_torch_sync_norm.py trains it)


# ------------------------------------------------------------------------------------ packaging

BLOCK_TORCH = """
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, NoTorch())
from symbackprop.cli import main
code = main(sys.argv[1:])
assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules), "symbackprop imported torch"
sys.exit(code)
"""


def test_generate_torch_works_without_torch(tmp_path):
    out = tmp_path / "lenet_torch.py"
    result = subprocess.run([sys.executable, "-c", BLOCK_TORCH, "generate", str(ROOT / "examples/lenet.toml"),
                             "--backend", "torch", "-o", str(out)], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])})
    assert result.returncode == 0, result.stderr
    ast.parse(out.read_text())
    assert "import torch\n" in out.read_text()


def test_ci_installs_torch_and_pyproject_has_the_extra():
    import tomllib
    ci = (ROOT / ".ci/run").read_text()
    test_command = ci.rstrip().splitlines()[-1]
    assert "torch==2.13.0" in ci[:ci.index(test_command)]
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras["torch"] == ["torch==2.13.0"]


def test_the_docs_torch_snippet_is_in_the_generated_torch_trainer():
    readme = (ROOT / "docs/reference/trainer.md").read_text()
    start = readme.index("# \\delta^{(2)} = \\frac{1}{N}\\left(a^{(2)} \\textstyle\\sum_j y - y\\right)")
    snippet = readme[start:readme.index("```", start)].rstrip("\n")
    trainer = (ROOT / "generated/mnist_adam_torch.py").read_text()
    assert "\n".join("    " + line for line in snippet.splitlines()) in trainer
