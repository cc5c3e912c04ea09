"""The generated trainer against hostile data and checkpoints: header rows, byte-order marks,
targets outside the loss's domain, crafted checkpoints, outputs that would overwrite data, stale
temporaries, large samples. Bad input is one line, exit status 2, and nothing is overwritten."""
import os

import numpy as np
import pytest

from symbackprop.spec import limits
from symbackprop.codegen.trainer import render
from symbackprop import Network, load
from test_generate import load_trainer
from test_trainer_cli import call, checkpoint_arrays

XOR_ROWS = "0,0,0\n0,1,1\n1,0,1\n1,1,0\n"


@pytest.fixture(scope="module")
def xor(tmp_path_factory):
    """The XOR trainer: binary cross-entropy, Adam, array form."""
    path = tmp_path_factory.mktemp("xor") / "xor_trainer.py"
    path.write_text(render(load("examples/xor.toml"), source="examples/xor.toml"))
    return path


def one_line_error(result, *fragments):
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and all(f in result.stderr for f in fragments), result.stderr
    return result.stderr


def params_after(trainer, tmp_path, data, name):
    ckpt = tmp_path / f"{name}.npz"
    result = call(trainer, "--data", data, "--epochs", 3, "--batch-size", 4, "--quiet", "--save", ckpt)
    assert result.returncode == 0, result.stderr
    return {k: v for k, v in checkpoint_arrays(ckpt).items() if k.startswith("param/")}


# ------------------------------------------------------------------------------------------ CSV

@pytest.mark.parametrize("text, fragments", [
    ("x1,2,y\n" + XOR_ROWS, ["line 1: 'x1' is not a number (a header row has no numbers)"]),
    ("0,0,0\nx1,x2,y\n" + XOR_ROWS, ["line 2: 'x1' is not a number"]),
    ("x1,x2,y\nx1,x2,y\n" + XOR_ROWS, ["line 2: 'x1' is not a number"]),
    ("\n\n0,oops,1\n" + XOR_ROWS, ["line 3: 'oops' is not a number (a header row has no numbers)"]),
], ids=["mixed first row", "header after data", "two headers", "mixed after blank lines"])
def test_a_row_mixing_names_and_numbers_is_an_error_naming_its_line(xor, tmp_path, text, fragments):
    (tmp_path / "d.csv").write_text(text)
    one_line_error(call(xor, "--data", tmp_path / "d.csv", "--epochs", 1), *fragments)


def test_a_header_row_is_one_whose_every_cell_is_a_name(xor, tmp_path):
    (tmp_path / "plain.csv").write_text(XOR_ROWS)
    (tmp_path / "header.csv").write_text("x1,x2,y\n" + XOR_ROWS)
    plain = params_after(xor, tmp_path, tmp_path / "plain.csv", "plain")
    with_header = params_after(xor, tmp_path, tmp_path / "header.csv", "header")
    assert all(np.array_equal(plain[k], with_header[k]) for k in plain)


@pytest.mark.parametrize("header", ["", "x1,x2,y\n"], ids=["no header", "header"])
def test_a_byte_order_mark_is_not_data(xor, tmp_path, header):
    (tmp_path / "plain.csv").write_text(header + XOR_ROWS, encoding="utf-8")
    (tmp_path / "bom.csv").write_text(header + XOR_ROWS, encoding="utf-8-sig")
    assert (tmp_path / "bom.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    plain = params_after(xor, tmp_path, tmp_path / "plain.csv", "plain")
    bom = params_after(xor, tmp_path, tmp_path / "bom.csv", "bom")
    assert all(np.array_equal(plain[k], bom[k]) for k in plain)


# ------------------------------------------------------------------------------------- targets

@pytest.mark.parametrize("target", ["2", "-0.5", "1.0000001"])
@pytest.mark.parametrize("kind", ["csv", "npz"])
def test_targets_outside_the_losss_domain_are_refused(xor, tmp_path, target, kind):
    rows = XOR_ROWS.replace("1,1,0", f"1,1,{target}")
    data = tmp_path / f"d.{kind}"
    if kind == "csv":
        data.write_text(rows)
    else:
        table = np.array([[float(v) for v in r.split(",")] for r in rows.split()])
        np.savez(data, X=table[:, :2], Y=table[:, 2:])
    where = f"{data}, line 4: target 1 is" if kind == "csv" else f"{data}: Y row 4: target 1 is"  # counted from 1
    one_line_error(call(xor, "--data", data, "--epochs", 1),
                   where, "outside [0, 1], the targets binary_cross_entropy is defined for")
    if kind == "csv":       # a header row is a line too
        data.write_text("x1,x2,y\n" + rows)
        one_line_error(call(xor, "--data", data, "--epochs", 1), f"{data}, line 5: target 1 is")


def test_a_loss_defined_for_any_target_takes_any_target(tmp_path):
    net = Network.from_dict({"network": {"layers": [2, 1], "activations": ["identity"], "loss": "mse"}})
    trainer = tmp_path / "t.py"
    trainer.write_text(render(net, optimizer="sgd"))
    (tmp_path / "d.csv").write_text("0,0,-7\n1,1,25\n")
    assert call(trainer, "--data", tmp_path / "d.csv", "--epochs", 2, "--quiet").returncode == 0


# ------------------------------------------------------------------------------ --save and --log

def test_save_or_log_naming_a_directory_is_one_line(xor, tmp_path):
    for flag in ("--save", "--log"):
        one_line_error(call(xor, "--epochs", 1, flag, tmp_path), f"{flag} ", "is a directory")


def test_save_never_replaces_the_data_file_even_with_force(xor, tmp_path):
    data = tmp_path / "d.csv"
    data.write_text(XOR_ROWS)
    for flag in ("--save", "--log"):
        for force in ([], ["--force"]):
            one_line_error(call(xor, "--data", data, "--epochs", 1, flag, data, *force), "is the --data file")
    assert data.read_text() == XOR_ROWS


def test_save_and_log_replace_a_foreign_file_only_with_force(xor, tmp_path):
    notes = tmp_path / "notes.txt"
    for flag in ("--save", "--log"):
        notes.write_text("precious")
        one_line_error(call(xor, "--epochs", 1, flag, notes), "exists and is not", "pass --force to replace it")
        assert notes.read_text() == "precious"
    assert call(xor, "--epochs", 1, "--quiet", "--save", notes, "--force").returncode == 0
    assert "param/W1" in checkpoint_arrays(notes)
    # a checkpoint of another trainer is foreign too
    other = tmp_path / "other.py"
    other.write_text(render(load("examples/seed.toml"), optimizer="sgd"))
    assert call(other, "--epochs", 1, "--quiet", "--save", tmp_path / "seed.npz").returncode == 0
    before = (tmp_path / "seed.npz").read_bytes()
    one_line_error(call(xor, "--epochs", 1, "--save", tmp_path / "seed.npz"), "not a checkpoint of this trainer")
    assert (tmp_path / "seed.npz").read_bytes() == before


def test_a_save_removes_the_temporaries_a_killed_save_left(xor, tmp_path):
    ckpt = tmp_path / "c.npz"
    stale = [tmp_path / ".c.npz.abcd1234.tmp", tmp_path / ".c.npz.zz_9qxyw.tmp"]
    kept = [tmp_path / ".c.npz.notours.tmp", tmp_path / ".d.npz.abcd1234.tmp", tmp_path / "c.npz.abcd1234.tmp"]
    for path in stale + kept:
        path.write_bytes(b"half a checkpoint")
    assert call(xor, "--epochs", 2, "--quiet", "--save", ckpt).returncode == 0
    assert not any(p.exists() for p in stale) and all(p.exists() for p in kept)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".c.npz.")) == [".c.npz.notours.tmp"]


# -------------------------------------------------------------------------------- checkpoints

@pytest.fixture
def mid_epoch(xor, tmp_path):
    """A checkpoint saved in the middle of an epoch (batches of 1, stopped after 2 updates)."""
    (tmp_path / "d.csv").write_text(XOR_ROWS)
    ckpt = tmp_path / "mid.npz"
    result = call(xor, "--data", tmp_path / "d.csv", "--batch-size", 1, "--max-iters", 2, "--quiet", "--save", ckpt)
    assert result.returncode == 0, result.stderr
    arrays = checkpoint_arrays(ckpt)
    assert int(arrays["position"]) == 2 and bool(arrays["has_order"])
    return ckpt, arrays


CRAFTED = {
    "shuffle index out of range": ({"order": np.array([0, 1, 2, 99])}, "not a permutation of the 4 rows"),
    "shuffle index repeated": ({"order": np.array([0, 0, 1, 2])}, "not a permutation of the 4 rows"),
    "negative position": ({"position": np.array(-1)}, "position is -1, expected a count"),
    "position past the data": ({"position": np.array(4)}, "at row 4 of its epoch, the data has 4"),
    "zero batches mid-epoch": ({"batches": np.array(0)}, "0 batches done at row 2"),
    "zero batches at the epoch's end": ({"position": np.array(4), "batches": np.array(0)}, "at row 4 of its epoch"),
    "mid-epoch without an order": ({"has_order": np.array(False)}, "mid-epoch without a shuffle order"),
    "fractional step count": ({"t": np.array(1.5)}, "t is 1.5, expected a count"),
    "infinite running loss": ({"loss_sum": np.array(np.inf)}, "the epoch's loss so far is inf"),
    "negative second moment": ({"state/v/W1": -np.ones((4, 2))}, "state/v/W1 holds negative values"),
    "parameter not finite": ({"param/b2": np.array([np.nan])}, "param/b2 holds values that are not finite"),
    "broken generator state": ({"rng": np.array("{}")}, "damaged checkpoint"),
    "history of the wrong shape": ({"history": np.zeros((2, 3))}, "history has shape (2, 3)"),
    "history going back": ({"history": np.array([[2, 4, .7, .5, np.nan, np.nan], [1, 8, .6, .5, np.nan, np.nan]])},
                           "not increasing counts"),
    "split not a split": ({"split": np.array('{"fraction": 2}')}, "split is"),
    "split not JSON": ({"split": np.array("{")}, "damaged checkpoint"),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_a_crafted_checkpoint_is_refused_and_nothing_is_overwritten(xor, tmp_path, mid_epoch, case):
    ckpt, arrays = mid_epoch
    changes, fragment = CRAFTED[case]
    np.savez(ckpt, **{**arrays, **changes})
    log = tmp_path / "loss.csv"
    log.write_text("epoch,iterations,loss,seconds,val_loss,accuracy,val_accuracy\n1,4,0.7,0.001,,0.5,\n")
    before, log_before = ckpt.read_bytes(), log.read_text()
    result = call(xor, "--data", tmp_path / "d.csv", "--resume", ckpt, "--save", ckpt, "--log", log)
    one_line_error(result, str(ckpt), fragment)
    assert ckpt.read_bytes() == before and log.read_text() == log_before


def test_a_best_epoch_after_the_run_is_refused(xor, tmp_path, mid_epoch):
    """--patience's copy of the best epoch's run must come from before the run it is saved with."""
    ckpt, arrays = mid_epoch
    best = {"best/" + k: v for k, v in arrays.items() if k.startswith(("param/", "state/")) or k in ("t", "rng")}
    np.savez(ckpt, **arrays, **best, **{"best/epoch": np.array(3), "best/previous_loss": np.array(0.5),
                                        "best/val_loss": np.array(0.4)})
    before = ckpt.read_bytes()
    one_line_error(call(xor, "--data", tmp_path / "d.csv", "--resume", ckpt, "--save", ckpt),
                   "its best epoch, 3 after 2 updates, is later than the run, at epoch 0")
    assert ckpt.read_bytes() == before


def test_a_mid_epoch_checkpoint_on_a_smaller_data_file_is_refused(xor, tmp_path, mid_epoch):
    ckpt, _ = mid_epoch
    before = ckpt.read_bytes()
    (tmp_path / "small.csv").write_text("0,0,0\n1,1,0\n")
    result = call(xor, "--data", tmp_path / "small.csv", "--resume", ckpt, "--save", ckpt)
    one_line_error(result, "the checkpoint's epoch shuffles 4 rows, the data has 2")
    assert ckpt.read_bytes() == before


def test_the_untouched_mid_epoch_checkpoint_still_resumes(xor, tmp_path, mid_epoch):
    ckpt, _ = mid_epoch
    result = call(xor, "--data", tmp_path / "d.csv", "--resume", ckpt, "--batch-size", 1, "--epochs", 2, "--quiet")
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------------------- samples, divergence

def big_sample_spec(rows):
    return Network.from_dict({"network": {"layers": [3, 2, 1], "activations": ["sigmoid", "sigmoid"],
                                          "loss": "squared_error"},
                              "sample": {"x": [[0.1 * i, 1.0, -1.0] for i in range(rows)], "y": [[0.5]] * rows}})


def test_a_large_sample_is_not_embedded_and_the_file_says_so(tmp_path):
    rows = limits.SAMPLE_EMBEDDED // 4 + 1            # 4 numbers an example: just over the limit
    text = render(big_sample_spec(rows), optimizer="sgd")
    without = render(Network.from_dict({"network": {"layers": [3, 2, 1], "activations": ["sigmoid", "sigmoid"],
                                                    "loss": "squared_error"}}), optimizer="sgd")
    assert len(text) < len(without) + 1000 and "0.1" * 3 not in text
    assert f"The spec's sample ({rows} examples, {4 * rows} numbers) is not embedded" in text
    trainer = tmp_path / "t.py"
    trainer.write_text(text)
    one_line_error(call(trainer, "--epochs", 1), "--data FILE is required")
    (tmp_path / "d.csv").write_text("1,2,3,0.5\n")
    assert call(trainer, "--data", tmp_path / "d.csv", "--epochs", 1, "--quiet").returncode == 0


def test_a_small_sample_is_still_embedded(tmp_path):
    rows = limits.SAMPLE_EMBEDDED // 4
    text = render(big_sample_spec(rows), optimizer="sgd")
    assert "not embedded" not in text and "Without --data the spec's sample is used" in text
    trainer = tmp_path / "t.py"
    trainer.write_text(text)
    assert call(trainer, "--epochs", 1, "--quiet").returncode == 0


def test_a_divergence_names_what_diverged(tmp_path):
    trainer = tmp_path / "t.py"
    network = Network.from_dict({"network": {"layers": [2, 3, 1], "activations": ["tanh", "identity"],
                                             "loss": "squared_error"}})
    trainer.write_text(render(network, optimizer="sgd", form="array"))
    np.savez(tmp_path / "d.npz", X=np.ones((4, 2)), Y=np.ones((4, 1)))
    err = one_line_error(call(trainer, "--data", tmp_path / "d.npz", "--epochs", 50, "--learning-rate", 1e300))
    assert "the parameters" in err and "W2" in err and "are not finite" in err, err
    assert "(now 1e+300)" in err


# ------------------------------------------------------------------------------------------ batch norm's batches

BN = {"network": {"input": [3], "loss": "mse"},
      "layer": [{"type": "batchnorm"}, {"type": "dense", "units": 1}]}


@pytest.fixture(scope="module")
def bn(tmp_path_factory):
    path = tmp_path_factory.mktemp("bn") / "bn_trainer.py"
    path.write_text(render(Network.from_dict(BN)))
    return path


def test_a_last_batch_of_one_row_joins_the_one_before(bn, tmp_path):
    """9 rows in batches of 4: batch norm cannot normalise the ninth alone, so an epoch is two
    updates, on rows 1-4 and 5-9 of its permutation, the same as two steps taken by hand."""
    module = load_trainer(bn.read_text(), tmp_path)
    rng = np.random.default_rng(3)
    X, Y = rng.normal(size=(9, 3)), rng.normal(size=(9, 1))
    reason, run = module.train(module.init_params(0), X, Y, epochs=2, batch_size=4, seed=0)
    assert reason == "epochs" and run["state"]["t"] == 4
    params, order = module.init_params(0), np.random.default_rng(0)      # new_run's generator
    state = module.init_state(params)
    for _ in range(2):
        rows = order.permutation(9)
        for part in (rows[:4], rows[4:]):
            module.step(params, state, X[part], Y[part], module.learning_rate)
    for name in params:
        assert np.allclose(run["params"][name], params[name], rtol=0, atol=1e-14), name


@pytest.mark.parametrize("rows, batch, fragment", [(1, 32, "--data: 1 row(s) to a batch"), (9, 1, "--batch-size: 1 row(s) to a batch")])
def test_a_batch_of_one_row_under_batch_norm_is_one_line(bn, tmp_path, rows, batch, fragment):
    data = tmp_path / "d.npz"
    np.savez(data, X=np.arange(rows * 3, dtype=float).reshape(rows, 3), Y=np.zeros((rows, 1)))
    one_line_error(call(bn, "--data", data, "--batch-size", batch, "--epochs", 1), fragment, "at least 2")
