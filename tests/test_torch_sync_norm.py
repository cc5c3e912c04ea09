"""Batch norm under --distributed: synchronised batch statistics, so K processes train as one does
(issue 18, item 22). Two and three gloo ranks on the CPU, against one process."""
import numpy as np
import pytest

pytest.importorskip("torch")
from test_torch import assert_close_checkpoints, cnn_trainers, torchrun  # noqa: E402,F401  (a fixture)
from test_trainer_cli import call  # noqa: E402


@pytest.mark.parametrize("processes, batch", [(2, 7), (2, 3), (3, 2)],
                         ids=["shares of 3 and 4 rows", "a share of one row", "a rank with no rows"])
def test_batch_norm_trains_distributed_as_one_process(cnn_trainers, tmp_path, processes, batch):
    """conv, batch norm, max-pool, dropout: batches of 7 on 2 ranks (shares 3 and 4), of 3 (a rank
    normalising a single row of its own), of 2 on 3 ranks (one rank has no rows and still joins the
    all_reduces). Parameters, optimizer state and running statistics match one process's to float64
    rounding; so do the epochs' printed numbers."""
    files, bars = cnn_trainers
    common = ["--data", bars, "--batch-size", batch, "--seed", 2, "--device", "cpu", "--epochs", 2,
              "--val-fraction", 0.25]
    many, one = tmp_path / "many.npz", tmp_path / "one.npz"
    result = torchrun(files["torch"], *common, "--save", many, processes=processes)
    assert result.returncode == 0, result.stderr[-3000:]
    single = call(files["torch"], *common, "--save", one)
    assert single.returncode == 0, single.stderr
    assert_close_checkpoints(many, one)
    with np.load(many) as a:
        assert np.all(a["state/running/var2"] != 1.0)           # the running statistics did move
    numbers = lambda text: [line.rsplit("  ", 1)[0] for line in text.splitlines()[:-1]]   # (not the rate)
    assert numbers(result.stdout) == numbers(single.stdout)
    # (the final line's loss is a training-mode forward pass with fresh dropout masks: not compared)
    assert result.stdout.splitlines()[-1].split(":")[0] == single.stdout.splitlines()[-1].split(":")[0]
