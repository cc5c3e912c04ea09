"""The generated trainer for a person who trains (issue 10, items 13 and 14): a validation set
(--val-data, or a seeded --val-fraction split that --resume keeps), accuracy for classification
losses, early stopping (--patience, the best epoch's run kept), the predict subcommand, the
progress line on a terminal and off it, --log's columns and the --plot drawing."""
import contextlib
import io
import json
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from symbackprop.codegen.trainer import render
from symbackprop import Network, load
from test_generate import load_trainer
from test_trainer_cli import assert_same_checkpoint, call, checkpoint_arrays

SOFTMAX = {"network": {"input": [4], "loss": "cross_entropy"}, "layer": [
    {"type": "dense", "units": 8}, {"type": "batchnorm", "activation": "relu"}, {"type": "dropout", "rate": 0.25},
    {"type": "dense", "units": 3, "activation": "softmax"}], "optimizer": {"name": "adam", "learning_rate": 0.05}}
SIGMOID = {"network": {"layers": [3, 4, 2], "activations": ["tanh", "sigmoid"], "loss": "binary_cross_entropy"},
           "optimizer": {"name": "adam", "learning_rate": 0.05}}
SVG = "{http://www.w3.org/2000/svg}"


def clusters(n=60, seed=7):
    """Three noisy clusters in four dimensions, one-hot targets."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((3, 4)) * 1.5
    labels = rng.integers(0, 3, n)
    return centers[labels] + rng.standard_normal((n, 4)), np.eye(3)[labels]


@pytest.fixture(scope="module")
def softmax(tmp_path_factory):
    """A dense -> batch norm -> relu -> dropout -> softmax trainer (cross-entropy, Adam) and 60 rows."""
    folder = tmp_path_factory.mktemp("softmax")
    trainer = folder / "softmax.py"
    trainer.write_text(render(Network.from_dict(SOFTMAX)))
    X, Y = clusters()
    np.savez(folder / "d.npz", X=X, Y=Y)
    return trainer, folder / "d.npz"


def module_of(trainer):
    """The trainer's module, as call() runs it (loaded once)."""
    from test_trainer_cli import _modules
    if trainer not in _modules:
        call(trainer, "--help")
    return _modules[trainer]


def log_rows(path):
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    return [{k: float(v) if v else float("nan") for k, v in zip(header, line.split(","))} for line in lines[1:]]


def one_line_error(result, *fragments):
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and all(f in result.stderr for f in fragments), result.stderr
    assert "Traceback" not in result.stderr


# ------------------------------------------------------------------------------ the split

def test_the_split_is_reproducible_disjoint_and_the_documented_one(softmax):
    module = module_of(softmax[0])
    kept, held = module.split_rows(50, 0.2, 3)
    again = module.split_rows(50, 0.2, 3)
    assert np.array_equal(kept, again[0]) and np.array_equal(held, again[1])
    assert len(held) == 10 and len(kept) == 40 and not set(kept) & set(held)
    assert sorted([*kept, *held]) == list(range(50))
    assert list(held) == sorted(np.random.default_rng(3).permutation(50)[:10])   # what the file says
    assert list(kept) == sorted(kept)                                             # file order
    assert not np.array_equal(module.split_rows(50, 0.2, 4)[1], held)
    assert len(module.split_rows(10, 0.25, 0)[1]) == 3                           # 2.5 rounds up


def test_val_fraction_is_kept_by_the_checkpoint_and_resume_is_exact(softmax, tmp_path):
    trainer, data = softmax
    common = ["--data", data, "--val-fraction", 0.25, "--batch-size", 9, "--quiet"]
    whole, part = tmp_path / "whole.npz", tmp_path / "part.npz"
    assert call(trainer, *common, "--seed", 3, "--epochs", 6, "--save", whole).returncode == 0
    assert call(trainer, *common, "--seed", 3, "--epochs", 3, "--save", part).returncode == 0
    assert json.loads(str(checkpoint_arrays(part)["split"])) == {"fraction": 0.25, "seed": 3, "rows": 60}
    # resumed without --val-fraction and with another --seed: the checkpoint's split and generator
    result = call(trainer, "--data", data, "--batch-size", 9, "--quiet", "--seed", 8, "--resume", part,
                  "--epochs", 6, "--save", part)
    assert result.returncode == 0, result.stderr
    assert_same_checkpoint(whole, part)
    history = checkpoint_arrays(part)["history"]
    assert history.shape == (6, 6) and list(history[:, 0]) == [1, 2, 3, 4, 5, 6]
    before = part.read_bytes()
    for args, fragment in ((["--val-fraction", 0.5], "resume it with that split"),
                           (["--val-data", data], "resume it with that split")):
        one_line_error(call(trainer, "--data", data, "--resume", part, "--epochs", 8, "--save", part, *args), fragment)
    one_line_error(call(trainer, "--data", data, "--val-fraction", 0.25, "--val-data", data), "not allowed with")
    for bad in ("0", "1", "1.5", "x"):
        one_line_error(call(trainer, "--data", data, "--val-fraction", bad), "--val-fraction")
    plain = tmp_path / "plain.npz"
    assert call(trainer, "--data", data, "--epochs", 1, "--save", plain, "--quiet").returncode == 0
    one_line_error(call(trainer, "--data", data, "--resume", plain, "--val-fraction", 0.25), "trained on every row")
    assert part.read_bytes() == before


# ------------------------------------------------------------------------------ accuracy

def test_accuracy_is_the_hand_count_for_softmax_and_for_sigmoid_per_output(softmax, tmp_path):
    """One full-batch epoch (no shuffling): the training accuracy counts the outputs the step saw
    (the initial parameters, the run's first dropout masks), the validation accuracy predict()'s
    outputs after the update; sigmoid outputs are counted one by one at 0.5."""
    trainer, data = softmax
    module = module_of(trainer)
    X, Y = clusters()
    Xv, Yv = clusters(20, seed=8)
    np.savez(tmp_path / "v.npz", X=Xv, Y=Yv)
    ckpt, log = tmp_path / "c.npz", tmp_path / "log.csv"
    result = call(trainer, "--data", data, "--val-data", tmp_path / "v.npz", "--epochs", 1, "--batch-size", 60,
                  "--seed", 5, "--save", ckpt, "--log", log)
    assert result.returncode == 0, result.stderr
    (row,) = log_rows(log)
    masks = module.draw_masks(np.random.default_rng(5), 60)
    before = module.forward(module.init_params(5), X, masks)
    assert row["accuracy"] == np.sum(before.argmax(1) == Y.argmax(1)) / 60
    saved = module.load_checkpoint(str(ckpt))
    after = module.predict(saved["params"], saved["state"], Xv)
    assert row["val_accuracy"] == np.sum(after.argmax(1) == Yv.argmax(1)) / 20
    assert row["val_loss"] == pytest.approx(float(module.evaluate(saved["params"], saved["state"], Xv, Yv)[0]), rel=1e-14)
    assert f"accuracy {row['accuracy']:.2%}" in result.stdout and f"val_accuracy {row['val_accuracy']:.2%}" in result.stdout
    # sigmoid + binary cross-entropy, two outputs: every output of every example counts
    sigmoid = tmp_path / "sigmoid.py"
    sigmoid.write_text(render(Network.from_dict(SIGMOID)))
    rng = np.random.default_rng(2)
    X2, Y2 = rng.standard_normal((10, 3)), (rng.random((10, 2)) > 0.5).astype(float)
    np.savez(tmp_path / "s.npz", X=X2, Y=Y2)
    assert call(sigmoid, "--data", tmp_path / "s.npz", "--epochs", 1, "--batch-size", 10, "--log",
                tmp_path / "s.csv", "--quiet").returncode == 0
    (row,) = log_rows(tmp_path / "s.csv")
    outputs = module_of(sigmoid).forward(module_of(sigmoid).init_params(0), X2)
    assert row["accuracy"] == np.sum((outputs > 0.5) == (Y2 > 0.5)) / 20
    assert "accuracy" not in render(load("examples/seed.toml"), optimizer="sgd").split("LOG_HEADER = ")[1].split("\n")[0]


# ------------------------------------------------------------------------------ patience

def test_patience_stops_at_the_right_epoch_and_keeps_the_best(softmax, tmp_path):
    trainer, data = softmax
    common = ["--data", data, "--val-fraction", 0.25, "--batch-size", 9, "--quiet"]
    free, log = tmp_path / "free.npz", tmp_path / "free.csv"
    assert call(trainer, *common, "--epochs", 30, "--save", free, "--log", log).returncode == 0
    val = [row["val_loss"] for row in log_rows(log)]
    patience = 3
    stop = next(e for e in range(1, 31) if e - (1 + int(np.argmin(val[:e]))) >= patience)
    best = 1 + int(np.argmin(val[:stop]))
    kept, patient_log = tmp_path / "kept.npz", tmp_path / "kept.csv"
    result = call(trainer, *common, "--epochs", 30, "--patience", patience, "--save", kept, "--log", patient_log)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"stopped (patience) after epoch {stop}, ")
    assert f"; kept epoch {best} (" in result.stdout and f"val_loss {val[best - 1]:.6g}" in result.stdout
    assert [row["val_loss"] for row in log_rows(patient_log)] == val[:stop]     # the same epochs, then stopped
    # the checkpoint is the run as it was at the end of the best epoch: the one a plain run of that many saves
    plain = tmp_path / "plain.npz"
    assert call(trainer, *common, "--epochs", best, "--save", plain).returncode == 0
    a, b = checkpoint_arrays(kept), checkpoint_arrays(plain)
    for key in a:
        if key.startswith(("param/", "state/")) or key in ("t", "epoch", "rng", "previous_loss"):
            assert a[key].tobytes() == b[key].tobytes(), key
    assert int(a["best/epoch"]) == best and len(a["history"]) == stop
    # train() does the same through the API, in place
    module = module_of(trainer)
    X, Y = clusters()
    rows, held = module.split_rows(60, 0.25, 0)
    params = module.init_params(0)
    reason, run = module.train(params, X[rows], Y[rows], epochs=30, batch_size=9, patience=patience,
                               validation=(X[held], Y[held]))
    assert reason == "patience" and run["epoch"] == best and run["params"] is params
    assert all(np.array_equal(params[k], b["param/" + k]) for k in params)
    one_line_error(call(trainer, "--data", data, "--patience", 2), "--patience needs a validation set")


# ------------------------------------------------------------------------------ predict

def test_predict_writes_predict_of_the_data_and_overwrites_nothing(softmax, tmp_path):
    trainer, data = softmax
    module = module_of(trainer)
    ckpt = tmp_path / "c.npz"
    assert call(trainer, "--data", data, "--epochs", 3, "--batch-size", 9, "--save", ckpt, "--quiet").returncode == 0
    X, Y = clusters()
    inputs = tmp_path / "inputs.csv"
    inputs.write_text("a,b,c,d\n" + "".join(",".join(map(repr, row)) + "\n" for row in X.tolist()))
    out = tmp_path / "p.csv"
    result = call(trainer, "predict", "--params", ckpt, "--data", inputs, "-o", out)
    assert result.returncode == 0, result.stderr
    saved = module.load_checkpoint(str(ckpt))
    expected = module.predict(saved["params"], saved["state"], X)     # evaluation mode: running statistics, no dropout
    lines = out.read_text().splitlines()
    assert lines[0] == "output_1,output_2,output_3,class" and len(lines) == 61
    table = np.array([[float(v) for v in line.split(",")] for line in lines[1:]])
    assert np.array_equal(table[:, :3], expected)                      # to the last bit
    assert np.array_equal(table[:, 3], expected.argmax(1) + 1)
    assert not np.allclose(expected, module.forward(saved["params"], X))  # not training mode
    assert "60 predictions" in result.stdout and "epoch 3" in result.stdout and "against its targets" not in result.stdout
    # a file with targets also gets its loss and accuracy, in evaluation mode
    result = call(trainer, "predict", "--params", ckpt, "--data", data, "-o", tmp_path / "q.csv")
    C, outputs = module.evaluate(saved["params"], saved["state"], X, Y)
    assert f"loss {float(C):.6g}, accuracy {np.mean(outputs.argmax(1) == Y.argmax(1)):.2%}" in result.stdout
    assert (tmp_path / "q.csv").read_text() == out.read_text()
    # never overwrite without --force, never the data or the checkpoint
    before = out.read_text()
    one_line_error(call(trainer, "predict", "--params", ckpt, "--data", inputs, "-o", out), "exists", "--force")
    assert out.read_text() == before
    out.write_text("precious")
    assert call(trainer, "predict", "--params", ckpt, "--data", inputs, "-o", out, "--force").returncode == 0
    assert out.read_text() == before
    for target, fragment in ((inputs, "is the --data file"), (ckpt, "is the --params file")):
        kept = target.read_bytes()
        one_line_error(call(trainer, "predict", "--params", ckpt, "--data", inputs, "-o", target, "--force"), fragment)
        assert target.read_bytes() == kept
    (tmp_path / "wide.csv").write_text("1,2,3,4,5\n")
    for args, fragment in ((["--params", ckpt, "--data", tmp_path / "wide.csv", "-o", tmp_path / "w.csv"],
                            "5 columns, expected 7"),
                           (["--params", tmp_path / "none.npz", "--data", inputs, "-o", tmp_path / "w.csv"], "not found"),
                           (["--params", inputs, "--data", inputs, "-o", tmp_path / "w.csv"], "not a readable checkpoint"),
                           (["--data", inputs, "-o", tmp_path / "w.csv"], "--params"),
                           (["--params", ckpt, "--data", inputs, "-o", tmp_path / "no" / "w.csv"], "does not exist")):
        one_line_error(call(trainer, "predict", *args), fragment)
    assert not (tmp_path / "w.csv").exists()
    stdout = call(trainer, "predict", "--params", ckpt, "--data", inputs, "-o", "-")
    assert stdout.stdout == before and "60 predictions" in stdout.stderr


# ------------------------------------------------------------------------------ progress, log, plot

def test_the_plain_progress_lines_keep_their_format(tmp_path):
    """Off a terminal, one line per epoch, as before: a regression trainer without validation prints
    exactly "epoch N  loss L  R examples/s"; with validation, its numbers come before the rate."""
    trainer = tmp_path / "seed.py"
    trainer.write_text(render(load("examples/seed.toml"), optimizer="sgd"))
    result = call(trainer, "--epochs", 5, "--log", tmp_path / "log.csv")
    lines, rows = result.stdout.splitlines(), log_rows(tmp_path / "log.csv")
    assert len(lines) == 6 and "\r" not in result.stdout
    for line, row in zip(lines, rows):
        assert re.fullmatch(rf"epoch {int(row['epoch']):>6}  loss {row['loss']:.6g}  [\d,]+ examples/s", line), line
    assert re.fullmatch(r"stopped \(epochs\) after epoch 5, 5 updates: %s" % FINAL, lines[-1])
    np.savez(tmp_path / "v.npz", X=np.ones((2, 3)), Y=np.full((2, 1), 0.5))
    result = call(trainer, "--epochs", 2, "--val-data", tmp_path / "v.npz")
    assert re.fullmatch(r"epoch      1  loss \S+  val_loss \S+  [\d,]+ examples/s", result.stdout.splitlines()[0])
    assert re.fullmatch(r"stopped \(epochs\) after epoch 2, 2 updates: %s, val_loss \S+" % FINAL,
                        result.stdout.splitlines()[-1])


FINAL = (r"final loss \S+, after the last update \(an epoch line's loss is the mean over its batches, each taken "
         r"before its update\)")


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_terminal_gets_one_live_line_per_epoch(softmax, monkeypatch):
    trainer, data = softmax
    module = module_of(trainer)
    monkeypatch.setattr(module, "LIVE_EVERY", 0.0)        # redraw after every batch
    screen, err = _Terminal(), io.StringIO()
    with contextlib.redirect_stdout(screen), contextlib.redirect_stderr(err):
        assert module.main(["--data", str(data), "--epochs", 3, "--batch-size", 20, "--val-fraction", 0.25]) == 0
    lines = screen.getvalue().split("\n")
    assert len(lines) == 5 and lines[-1] == "" and lines[-2].startswith("stopped (epochs) after epoch 3")
    for epoch, line in enumerate(lines[:3], 1):
        *live, final = line.split("\r")[1:]
        assert [re.match(rf"epoch {epoch:>6}  batch ([123])/3  loss \S+  accuracy \S+%  [\d,]+ examples/s  ETA \d+:\d\d *$",
                         text).group(1) for text in live] == ["1", "2", "3"]
        assert re.fullmatch(rf"epoch {epoch:>6}  loss \S+  accuracy \S+  val_loss \S+  val_accuracy \S+  [\d,]+ examples/s *",
                            final)
        assert len(final) >= len(live[-1])                 # the last live line is overwritten to its end


def test_log_columns_and_the_plot(softmax, tmp_path):
    trainer, data = softmax
    ckpt, log, plot = tmp_path / "c.npz", tmp_path / "log.csv", tmp_path / "loss.svg"
    common = ["--data", data, "--val-fraction", 0.25, "--batch-size", 9, "--quiet", "--save", ckpt]
    assert call(trainer, *common, "--epochs", 7, "--log", log, "--plot", plot).returncode == 0
    assert log.read_text().splitlines()[0] == "epoch,iterations,loss,seconds,val_loss,accuracy,val_accuracy"
    rows = log_rows(log)
    svg = ET.fromstring(plot.read_text().split("\n", 2)[2])
    lines = svg.findall(f"{SVG}polyline")
    assert [line.find(f"{SVG}title").text for line in lines] == ["training loss", "validation loss"]
    assert [len(line.get("points").split()) for line in lines] == [7, 7]          # a point per epoch
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    assert "training loss" in texts and "validation loss" in texts and "epoch" in texts
    # the highest point is the largest loss, the lowest the smallest (SVG's y grows downwards)
    for line, key in zip(lines, ("loss", "val_loss")):
        ys = [float(p.split(",")[1]) for p in line.get("points").split()]
        losses = [row[key] for row in rows]
        assert np.argmin(ys) == np.argmax(losses) and np.argmax(ys) == np.argmin(losses)
    # resumed, the plot has every epoch (the checkpoint keeps them); its own plot is replaced
    assert call(trainer, *common, "--resume", ckpt, "--epochs", 10, "--plot", plot).returncode == 0
    svg = ET.fromstring(plot.read_text().split("\n", 2)[2])
    assert [len(line.get("points").split()) for line in svg.findall(f"{SVG}polyline")] == [10, 10]
    # a foreign file only with --force; never the data file; an .svg file only
    notes = tmp_path / "notes.svg"
    notes.write_text("<svg/>")
    one_line_error(call(trainer, "--data", data, "--epochs", 1, "--plot", notes), "is not a plot of this trainer")
    assert notes.read_text() == "<svg/>"
    assert call(trainer, "--data", data, "--epochs", 1, "--plot", notes, "--force", "--quiet").returncode == 0
    for target, fragment in ((data, "--plot"), (tmp_path / "loss.png", "name a .svg file"),
                             (tmp_path / "log.svg", "--log and --plot name the same file")):
        kept = target.read_bytes() if target.exists() else None
        one_line_error(call(trainer, "--data", data, "--epochs", 1, "--log", tmp_path / "log.svg", "--plot", target,
                            "--force"), fragment)
        assert (target.read_bytes() if target.exists() else None) == kept


def test_the_torch_trainer_validates_stops_and_predicts_as_the_numpy_one(tmp_path):
    """The same flags on the torch backend: the same epochs' numbers to float64 rounding, the same
    stopping epoch; from the same checkpoint, the same predictions."""
    pytest.importorskip("torch")
    net = Network.from_dict(SOFTMAX)
    X, Y = clusters()
    np.savez(tmp_path / "d.npz", X=X, Y=Y)
    logs, predictions = {}, {}
    for backend in ("numpy", "torch"):
        trainer = tmp_path / f"{backend}.py"
        trainer.write_text(render(net, backend=backend))
        extra = ["--device", "cpu"] if backend == "torch" else []
        result = call(trainer, "--data", tmp_path / "d.npz", "--val-fraction", 0.25, "--patience", 2, "--epochs", 30,
                      "--batch-size", 9, "--log", tmp_path / f"{backend}.csv", "--plot", tmp_path / f"{backend}.svg",
                      "--save", tmp_path / f"{backend}.npz", *extra)
        assert result.returncode == 0 and "stopped (patience)" in result.stdout, result.stderr
        logs[backend] = log_rows(tmp_path / f"{backend}.csv")
        assert call(trainer, "predict", "--params", tmp_path / "numpy.npz", "--data", tmp_path / "d.npz",
                    "-o", tmp_path / f"{backend}-p.csv", *extra).returncode == 0
        predictions[backend] = np.loadtxt(tmp_path / f"{backend}-p.csv", delimiter=",", skiprows=1)
    assert len(logs["torch"]) == len(logs["numpy"])
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose([r[key] for r in logs["torch"]], [r[key] for r in logs["numpy"]], rtol=1e-8)  # threads may sum in another order
    np.testing.assert_allclose(predictions["torch"], predictions["numpy"], rtol=1e-10, atol=1e-12)
