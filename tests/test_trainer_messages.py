"""What a generated trainer says (issue 18, items 23–25): the final loss labelled, where a run stopped
or resumes mid-epoch, a checkpoint of another network in the spec's words, target errors by line,
predict's class names and standard output."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from symbackprop import load
from symbackprop.codegen.trainer import render
from test_generate import load_trainer
from test_trainer_cli import call


@pytest.fixture(scope="module")
def xor_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("xor") / "xor_adam.py"
    path.write_text(render(load("examples/xor.toml"), source="examples/xor.toml"))
    return path


def test_final_loss_is_labelled_after_the_last_update(xor_file):
    result = call(xor_file, "--epochs", 3, "--batch-size", 2)
    *epochs, final = result.stdout.splitlines()
    assert final.startswith("stopped (epochs) after epoch 3, 6 updates: final loss ")
    assert "after the last update (an epoch line's loss is the mean over its batches, each taken before its update)" in final
    module = load_trainer(xor_file.read_text(), xor_file.parent)
    X, Y = module._data(module.build_parser().parse_args([]), None)
    reason, run = module.train(module.init_params(0), X, Y, epochs=3, batch_size=2)
    assert re.search(r"final loss (\S+),", final)[1] == f"{module.loss(run['params'], X, Y):.6g}"


def test_stopping_mid_epoch_says_which_epoch_and_resume_says_where(xor_file, tmp_path):
    ckpt = tmp_path / "c.npz"
    result = call(xor_file, "--epochs", 5, "--batch-size", 2, "--max-iters", 3, "--save", ckpt)
    assert result.stdout.splitlines()[-1].startswith("stopped (max-iters) in epoch 2 (2 of its 4 rows done), 3 updates:")
    result = call(xor_file, "--epochs", 5, "--batch-size", 2, "--resume", ckpt)
    assert result.stdout.splitlines()[0] == f"resuming {ckpt}: in epoch 2 (2 of its 4 rows done), 3 updates"
    assert result.stdout.splitlines()[1].startswith("epoch      2  loss")
    result = call(xor_file, "--epochs", 2, "--batch-size", 2, "--save", ckpt, "--force")
    result = call(xor_file, "--epochs", 3, "--batch-size", 2, "--resume", ckpt)
    assert result.stdout.splitlines()[0] == f"resuming {ckpt}: after epoch 2, 4 updates"
    assert call(xor_file, "--epochs", 4, "--resume", ckpt, "--quiet").stdout.count("resuming") == 0


def test_ctrl_c_in_epoch_2_says_epoch_2(xor_file):
    """Ctrl-C (SIGINT) during the third update, in epoch 2 of batches of 2 from 4 rows; in a process of
    its own, so that the signal cannot reach the test runner."""
    script = (
        "import importlib.util, os, signal, sys\n"
        f"spec = importlib.util.spec_from_file_location('t', {str(xor_file)!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "step = m.step\n"
        "def interrupting(params, state, *args, **kwargs):\n"
        "    out = step(params, state, *args, **kwargs)\n"
        "    if state['t'] == 3:\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "    return out\n"
        "m.step = interrupting\n"
        "sys.exit(m.main(['--epochs', '5', '--batch-size', '2']))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 130, done.stderr
    assert done.stdout.splitlines()[-1].startswith("stopped (interrupted) in epoch 2 (2 of its 4 rows done), 3 updates:")


# ------------------------------------------------------------------------------------ item 24

def test_a_checkpoint_of_another_network_says_what_differs_in_the_specs_words(tmp_path):
    from symbackprop import Network
    graph = lambda channels: Network.from_dict({"network": {"input": [1, 4, 4], "loss": "cross_entropy"}, "layer": [
        {"type": "conv2d", "channels": channels, "kernel": 3}, {"type": "flatten"},
        {"type": "dense", "units": 3, "activation": "softmax"}]})
    trainers = {}
    for name, net in (("two", graph(2)), ("three", graph(3))):
        trainers[name] = tmp_path / f"{name}.py"
        trainers[name].write_text(render(net, optimizer="sgd"))
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", X=rng.standard_normal((8, 1, 4, 4)), Y=np.eye(3)[rng.integers(0, 3, 8)])
    ckpt = tmp_path / "c.npz"
    assert call(trainers["two"], "--data", tmp_path / "d.npz", "--epochs", 1, "--save", ckpt, "--quiet").returncode == 0
    result = call(trainers["three"], "--data", tmp_path / "d.npz", "--resume", ckpt)
    assert result.returncode == 2
    assert result.stderr.endswith(f"{ckpt}: checkpoint of another network: layer 1 (conv2d).channels: "
                                  "the checkpoint's 2, this trainer's 3\n")
    module = load_trainer(trainers["three"].read_text(), tmp_path)
    assert module.network_difference("3-2-1 sigmoid,sigmoid squared_error", "3-4-1 sigmoid,sigmoid squared_error") == (
        "network.layers: the checkpoint's [3, 2, 1], this trainer's [3, 4, 1]")
    assert module.network_difference("3-2-1 sigmoid,tanh mse", "3-2-1 sigmoid,sigmoid mse") == (
        'network.activations: the checkpoint\'s ["sigmoid", "tanh"], this trainer\'s ["sigmoid", "sigmoid"]')
    assert module.network_difference(module.SIGNATURE.replace(" cross_entropy", " mse")) == (
        'network.loss: the checkpoint\'s "mse", this trainer\'s "cross_entropy"')
    assert module.network_difference("3-2-1 sigmoid,sigmoid mse").startswith(
        "the checkpoint's network has network.layers = [3, 2, 1], this trainer's network.input = [1, 4, 4]")
    assert "\x1b" not in module.network_difference("x\x1b[2J y z")


# ------------------------------------------------------------------------------------ item 25

@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    from symbackprop import Network
    folder = tmp_path_factory.mktemp("classes")
    net = Network.from_dict({"network": {"layers": [2, 4, 3], "activations": ["relu", "softmax"],
                                         "loss": "cross_entropy"}})
    trainer = folder / "t.py"
    trainer.write_text(render(net, optimizer="adam"))
    rng = np.random.default_rng(1)
    X = rng.standard_normal((30, 2))
    Y = np.eye(3)[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0)]
    rows = "\n".join(",".join(map(repr, [*x, *y])) for x, y in zip(X.tolist(), Y.tolist()))
    (folder / "named.csv").write_text("width,height,cat,dog,bird\n" + rows + "\n")
    (folder / "plain.csv").write_text(rows + "\n")
    (folder / "inputs.csv").write_text("\n".join(",".join(map(repr, x)) for x in X.tolist()) + "\n")
    return trainer, folder


def test_predict_names_the_classes_the_training_header_named(classifier, tmp_path):
    trainer, folder = classifier
    for data, names in (("named.csv", ["cat", "dog", "bird"]), ("plain.csv", ["1", "2", "3"])):
        ckpt = tmp_path / f"{data}.npz"
        assert call(trainer, "--data", folder / data, "--epochs", 5, "--save", ckpt, "--quiet").returncode == 0
        out = tmp_path / f"{data}.out.csv"
        assert call(trainer, "predict", "--params", ckpt, "--data", folder / "inputs.csv", "-o", out).returncode == 0
        lines = out.read_text().splitlines()
        assert lines[0] == "output_1,output_2,output_3,class"
        for line in lines[1:]:
            outputs = [float(v) for v in line.split(",")[:3]]
            assert line.split(",")[3] == names[int(np.argmax(outputs))]
        # resumed without a header, the checkpoint keeps the names its first data gave
        assert call(trainer, "--data", folder / "plain.csv", "--epochs", 6, "--resume", ckpt, "--save", ckpt,
                    "--quiet").returncode == 0
        assert call(trainer, "predict", "--params", ckpt, "--data", folder / "inputs.csv", "-o", out,
                    "--force").returncode == 0
        assert {line.split(",")[3] for line in out.read_text().splitlines()[1:]} <= set(names)


def test_predict_without_o_writes_to_standard_output(classifier, tmp_path):
    trainer, folder = classifier
    ckpt = tmp_path / "c.npz"
    assert call(trainer, "--data", folder / "named.csv", "--epochs", 2, "--save", ckpt, "--quiet").returncode == 0
    result = call(trainer, "predict", "--params", ckpt, "--data", folder / "inputs.csv")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "output_1,output_2,output_3,class" and len(result.stdout.splitlines()) == 31
    assert result.stderr.startswith(f"30 predictions for {folder / 'inputs.csv'} written to standard output")
    assert list(tmp_path.iterdir()) == [ckpt]


# ------------------------------------------------------------------------------------ item 21

def test_torch_trainer_threads(tmp_path):
    torch = pytest.importorskip("torch")
    trainer = tmp_path / "t.py"
    trainer.write_text(render(load("examples/xor.toml"), backend="torch"))
    help_text = call(trainer, "--help").stdout
    assert "--threads N" in " ".join(help_text.split()) and "default: PyTorch's own choice, one per CPU core" in " ".join(help_text.split())
    assert "--threads N" in call(trainer, "predict", "--help").stdout
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert call(trainer, "--epochs", 1, "--quiet", "--device", "cpu").returncode == 0
        assert torch.get_num_threads() == 2                    # the default leaves PyTorch's choice alone
        assert call(trainer, "--epochs", 1, "--quiet", "--device", "cpu", "--threads", 1).returncode == 0
        assert torch.get_num_threads() == 1
        result = call(trainer, "--threads", 0)
        assert result.returncode == 2 and "--threads" in result.stderr and result.stderr.count("\n") == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("args, status", [(("--epochs", "50"), 141), (("--help",), 0), (("predict", "--help"), 0)],
                         ids=["train", "help", "predict-help"])
def test_a_trainer_whose_reader_went_away_stops_quietly(args, status):
    """``python trainer.py | head``: a closed pipe ends the run with no traceback, as symbackprop does."""
    read, write = os.pipe()
    os.close(read)            # the reader has gone before the first line: every write meets EPIPE
    try:
        result = subprocess.run([sys.executable, "generated/xor_adam.py", *args], stdout=write,
                                stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert result.stderr == ""          # it used to end in a BrokenPipeError traceback
    assert result.returncode == status  # 141 as after SIGPIPE; argparse's help already ignores the error
