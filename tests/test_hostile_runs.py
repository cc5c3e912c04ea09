"""The generated trainers against resource bombs, crafted checkpoints and data, on both backends:
memory counted from the shapes before init_params and before data is read (--max-memory), a .npz
checkpoint read member by member from its .npy headers, JSON fields bounded before parsing, .csv
lines bounded and their width checked before they are split, a diverging run one line on either
backend, checkpoints with the umask's mode, a lost distributed peer one line, and a trainer with
large embedded parameters cheap to start."""
import io
import json
import os
import resource
import signal
import subprocess
import sys
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

from symbackprop import Network, load
from symbackprop.codegen.trainer import render
from test_trainer_cli import call, checkpoint_arrays

XOR_ROWS = "0,0,0\n0,1,1\n1,0,1\n1,1,0\n"
BACKENDS = ["numpy", "torch"]


@pytest.fixture(scope="module")
def trainers(tmp_path_factory):
    """The XOR trainer (binary cross-entropy, Adam, array form) on each backend."""
    folder = tmp_path_factory.mktemp("runs")
    out = {}
    for backend in BACKENDS:
        if backend == "torch":
            pytest.importorskip("torch")
        out[backend] = folder / f"xor_{backend}.py"
        out[backend].write_text(render(load("examples/xor.toml"), source="examples/xor.toml", form="array",
                                       backend=backend))
    return out


def one_line_error(result, *fragments, code=2):
    assert result.returncode == code, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert all(f in result.stderr for f in fragments), result.stderr
    return result.stderr


def data_file(tmp_path, text=XOR_ROWS, name="d.csv"):
    (tmp_path / name).write_text(text)
    return tmp_path / name


def saved(trainer, tmp_path, name="c.npz"):
    ckpt = tmp_path / name
    result = run(trainer, "--data", data_file(tmp_path), "--epochs", 2, "--quiet", "--save", ckpt)
    assert result.returncode == 0, result.stderr
    return ckpt


def run(trainer, *args):
    return call(trainer, *args, *(("--device", "cpu") if "torch" in trainer.name else ()))


# Runs a command as its child and prints the child's peak resident memory (KB) last.
PEAK = ("import resource, subprocess, sys\n"
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "sys.stderr.write(r.stderr)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.exit(r.returncode)\n")


def peak_of(fn, trainer=None):
    """(fn(), peak bytes Python allocated while it ran); ``trainer`` loaded first, so that its module's
    code is not counted."""
    if trainer is not None:
        run(trainer, "--data", "no-such-file.csv")
    tracemalloc.start()
    try:
        return fn(), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# ------------------------------------------------------------------------------------ memory bound

@pytest.mark.parametrize("backend", BACKENDS)
def test_a_run_that_would_need_more_memory_than_allowed_is_refused_before_init(trainers, tmp_path, backend):
    # 500 bytes: the data (192 bytes to read) fits; held (96), the inputs (64) and layer 1 of 2-4-1 for
    # a batch of 4 (W1 and b1 four times, 4 rows of 4 outputs with z and δ: 768) do not
    np.savez(tmp_path / "d.npz", X=np.array([[0, 0], [0, 1], [1, 0], [1, 1]]), Y=np.array([[0], [1], [1], [0]]))
    ckpt = tmp_path / "never.npz"
    one_line_error(run(trainers[backend], "--data", tmp_path / "d.npz", "--max-memory", 5e-7, "--save", ckpt),
                   "layer 1 (dense): training on batches of 4 row(s) needs 9.28e-07 GB up to this layer, more than "
                   "5e-07 GB (--max-memory GB raises the limit, by default 0.5 of this machine's memory)")
    assert not ckpt.exists()
    assert run(trainers[backend], "--data", tmp_path / "d.npz", "--max-memory", 1, "--epochs", 1,
               "--quiet").returncode == 0


def test_the_trainer_counts_every_layer_from_the_shapes(tmp_path):
    net = Network.from_dict({"network": {"input": [1, 6, 6], "loss": "mse"},
                             "layer": [{"type": "conv2d", "channels": 10**5, "kernel": 3},
                                       {"type": "flatten"}, {"type": "dense", "units": 1}]})
    trainer = tmp_path / "conv.py"
    trainer.write_text(render(net, optimizer="sgd"))
    np.savez(tmp_path / "d.npz", X=np.zeros((2, 1, 6, 6)), Y=np.zeros((2, 1)))
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", PEAK, sys.executable, str(trainer), "--data",
                             str(tmp_path / "d.npz"), "--max-memory", "0.05"], capture_output=True, text=True, timeout=60)
    one_line_error(result, "layer 1 (conv2d): training on batches of 2 row(s) needs", "more than 0.05 GB")
    assert int(result.stdout.split()[-1]) < 300_000 and time.perf_counter() - started < 30


def test_the_default_memory_limit_is_half_the_machine(trainers):
    from test_generate import load_trainer
    module = load_trainer(trainers["numpy"].read_text(), trainers["numpy"].parent, "xor_memory")
    machine = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert module.memory_limit() == int(0.5 * machine) and module.memory_limit(2.5) == 2_500_000_000


def npz_with_header(path, name, shape, dtype="<f8", data=b""):
    """A .npz whose member ``name`` has an .npy header claiming ``shape`` (and only ``data`` after it)."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": dtype, "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "a" if path.exists() else "w") as archive:
        archive.writestr(name + ".npy", header.getvalue() + data)     # the header carries the magic
    return path


@pytest.mark.parametrize("backend", BACKENDS)
def test_npz_data_larger_than_allowed_is_refused_from_its_headers(trainers, tmp_path, backend):
    data = npz_with_header(tmp_path / "big.npz", "X", (10**9, 2))
    npz_with_header(data, "Y", (10**9, 1))
    result, peak = peak_of(lambda: run(trainers[backend], "--data", data, "--max-memory", 4), trainers[backend])
    one_line_error(result, "its arrays (X (1000000000, 2), Y (1000000000, 1)) need", "more than 4 GB")
    assert peak < 5_000_000


# --------------------------------------------------------------------------------------------- CSV

@pytest.mark.parametrize("backend", BACKENDS)
def test_a_wide_csv_line_is_refused_before_it_is_split(trainers, tmp_path, backend):
    # cells that are not numbers: the width is what is reported, so it was checked before any cell was read
    wide = data_file(tmp_path, XOR_ROWS + ",".join(["1"] + ["x"] * 499) + "\n")     # 999 characters
    result, peak = peak_of(lambda: run(trainers[backend], "--data", wide), trainers[backend])
    one_line_error(result, "line 5: 500 columns, expected 3")
    assert "not a number" not in result.stderr and peak < 1_000_000


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("line", ["1" * 5_000_000, "1," * 2_500_000], ids=["one long cell", "many cells"])
def test_a_long_csv_line_is_refused_without_reading_it_whole(trainers, tmp_path, backend, line):
    data = data_file(tmp_path, XOR_ROWS + line + "\n")
    result, peak = peak_of(lambda: run(trainers[backend], "--data", data), trainers[backend])
    one_line_error(result, "line 5: longer than 1,216 characters (the limit for 2 input(s) and 1 target(s))")
    assert peak < 1_000_000          # the 5 MB line is never held


# ------------------------------------------------------------------------------------- checkpoints

@pytest.mark.parametrize("backend", BACKENDS)
def test_an_unknown_member_is_refused_without_being_read(trainers, tmp_path, backend):
    ckpt = saved(trainers[backend], tmp_path)
    arrays = checkpoint_arrays(ckpt)
    np.savez_compressed(ckpt, **arrays, extra=np.zeros(10**7))     # 80 MB inflated, 80 KB on disk
    before = ckpt.read_bytes()
    for argv in (["--data", tmp_path / "d.csv", "--resume", ckpt, "--save", ckpt],
                 ["predict", "--params", ckpt, "--data", tmp_path / "d.csv", "-o", tmp_path / "p.csv"]):
        result, peak = peak_of(lambda: run(trainers[backend], *argv), trainers[backend])
        one_line_error(result, f"{ckpt}: damaged checkpoint ('extra' is not a member of this trainer's checkpoints)")
        assert peak < 20_000_000
    assert ckpt.read_bytes() == before and not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("member, shape, dtype, fragment", [
    ("param/W1", (10**9, 10**3), "<f8", "param/W1 has shape (1000000000, 1000) and dtype float64, expected (4, 2) and float64"),
    ("order", (10**12,), "<i8", "order has shape (1000000000000,)"),
    ("history", (10**10, 6), "<f8", "history has shape (10000000000, 6)"),
    ("rng", (), "<U100000000", "rng has shape () and dtype <U100000000, expected () and text of at most 4,096"),
    ("t", (), "|O", "t has shape () and dtype object, expected () and a number"),
], ids=["parameter", "order", "history", "huge string", "pickled object"])
def test_a_members_header_is_checked_before_it_is_read(trainers, tmp_path, backend, member, shape, dtype, fragment):
    ckpt = saved(trainers[backend], tmp_path)
    arrays = {k: v for k, v in checkpoint_arrays(ckpt).items() if k != member}
    np.savez(ckpt, **arrays)
    npz_with_header(ckpt, member, shape, dtype)
    result, peak = peak_of(lambda: run(trainers[backend], "--data", tmp_path / "d.csv", "--resume", ckpt),
                           trainers[backend])
    one_line_error(result, str(ckpt), fragment)
    assert peak < 20_000_000


DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("field, text, fragment", [
    ("rng", DEEP, "rng has shape () and dtype <U200000, expected () and text of at most 4,096 characters"),
    ("split", DEEP, "split has shape () and dtype <U200000, expected () and text of at most 4,096 characters"),
    ("rng", "[" * 2000 + "]" * 2000, "rng nests JSON 2000 deep, more than 4"),
    ("rng", "[" * 50 + "]" * 50, "rng nests JSON 50 deep, more than 4"),
    ("split", '{"a": [[[[["]]]]]"]]]]]}', "nests JSON 6 deep, more than 4"),
], ids=["rng long", "split long", "rng deep", "rng nested", "split nested"])
def test_a_json_field_is_bounded_before_it_is_parsed(trainers, tmp_path, backend, field, text, fragment):
    ckpt = saved(trainers[backend], tmp_path)
    np.savez(ckpt, **{**checkpoint_arrays(ckpt), field: np.array(text)})
    for argv in (["--data", tmp_path / "d.csv", "--resume", ckpt],
                 ["predict", "--params", ckpt, "--data", tmp_path / "d.csv", "-o", "-"]):
        if field == "split" and argv[0] == "predict":
            continue       # predict reads the run, not its split
        one_line_error(run(trainers[backend], *argv), str(ckpt), "damaged checkpoint", fragment)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_json_scan_counts_no_bracket_inside_a_string(trainers, tmp_path, backend):
    ckpt = saved(trainers[backend], tmp_path)
    np.savez(ckpt, **{**checkpoint_arrays(ckpt), "split": np.array('["[[[[[[[[[["]')})   # one deep
    err = one_line_error(run(trainers[backend], "--data", tmp_path / "d.csv", "--resume", ckpt), "split is")
    assert "nests JSON" not in err


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_a_checkpoint_has_the_umasks_mode(trainers, tmp_path, backend, umask):
    previous = os.umask(umask)
    try:
        ckpt = saved(trainers[backend], tmp_path)
        log = tmp_path / "plot.svg"
        assert run(trainers[backend], "--data", tmp_path / "d.csv", "--epochs", 1, "--quiet",
                   "--plot", log).returncode == 0
    finally:
        os.umask(previous)
    assert ckpt.stat().st_mode & 0o777 == 0o666 & ~umask == log.stat().st_mode & 0o777


# ---------------------------------------------------------------------- failures on both backends

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", ["learning rate", "huge inputs", "huge targets"])
def test_a_diverging_run_is_one_line_on_either_backend(trainers, tmp_path, backend, case):
    trainer = tmp_path / "t.py"
    net = Network.from_dict({"network": {"layers": [2, 3, 1], "activations": ["identity", "identity"],
                                         "loss": "squared_error"}})
    trainer.write_text(render(net, optimizer="sgd", form="array", backend=backend))
    X, Y, rate = np.ones((4, 2)), np.ones((4, 1)), 0.1
    if case == "learning rate":
        rate = 1e308
    elif case == "huge inputs":
        X = np.full((4, 2), 1e308)
    else:
        Y = np.full((4, 1), 1e308)
    np.savez(tmp_path / "d.npz", X=X, Y=Y)
    ckpt = tmp_path / "c.npz"
    err = one_line_error(run(trainer, "--data", tmp_path / "d.npz", "--epochs", 20, "--learning-rate", rate,
                             "--save", ckpt), "the loss is", "after epoch")
    assert "not finite" in err or "is not finite" in err or "where squared_error is not finite" in err, err
    assert not ckpt.exists()


FAILURES = {   # every trainer-level failure path: (files, arguments, the line's fragment)
    "no data file": (lambda p: [], ["--data", "missing.csv"], "data file 'missing.csv' not found"),
    "not a number": (lambda p: [("d.csv", "0,0,x\n0,1,1\n")], ["--data", "d.csv"], "line 1: 'x' is not a number"),
    "target outside": (lambda p: [("d.csv", "0,0,2\n")], ["--data", "d.csv"], "outside [0, 1]"),
    "too wide": (lambda p: [("d.csv", "0,0,0,0\n")], ["--data", "d.csv"], "line 1: 4 columns, expected 3"),
    "memory": (lambda p: [("d.csv", XOR_ROWS)], ["--data", "d.csv", "--max-memory", 1e-9],
               "--max-memory GB raises the limit"),
    "patience alone": (lambda p: [("d.csv", XOR_ROWS)], ["--data", "d.csv", "--patience", 2], "--patience needs"),
    "no checkpoint": (lambda p: [("d.csv", XOR_ROWS)], ["--data", "d.csv", "--resume", "none.npz"],
                      "checkpoint 'none.npz' not found"),
    "not a checkpoint": (lambda p: [("d.csv", XOR_ROWS), ("c.npz", "text")], ["--data", "d.csv", "--resume", "c.npz"],
                         "not a readable checkpoint"),
    "diverged": (lambda p: [("d.csv", XOR_ROWS)], ["--data", "d.csv", "--learning-rate", 1e308, "--epochs", 30],
                 "the loss is"),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(FAILURES))
def test_every_failure_path_is_one_line_on_both_backends(trainers, tmp_path, backend, case, monkeypatch):
    files, argv, fragment = FAILURES[case]
    for name, text in files(tmp_path):
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    one_line_error(run(trainers[backend], *argv), fragment)


# ------------------------------------------------------------------------------------ a lost peer

def test_a_rank_whose_peer_is_killed_says_which_in_one_line(trainers, tmp_path):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = data_file(tmp_path, XOR_ROWS * 64)
    log = tmp_path / "log.csv"
    ranks = []
    for rank in (0, 1):
        env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": str(rank),
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
        ranks.append(subprocess.Popen([sys.executable, str(trainers["torch"]), "--distributed", "--device", "cpu",
                                       "--data", str(data), "--epochs", str(10**6), "--quiet", "--log", str(log)],
                                      env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    try:
        deadline = time.monotonic() + 60
        while not (log.exists() and log.read_text().count("\n") >= 2):   # both ranks are in the run
            assert time.monotonic() < deadline and ranks[0].poll() is None, ranks[0].stderr.read()
            time.sleep(0.1)
        ranks[1].send_signal(signal.SIGKILL)
        started = time.monotonic()
        _, err = ranks[0].communicate(timeout=60)
        assert time.monotonic() - started < 10
    finally:
        for p in ranks:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert ranks[0].returncode == 1, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert f"{trainers['torch'].name}: error: rank 0 of 2 lost rank 1 at [127.0.0.1]:" in err, err
    assert "--resume from the last --save checkpoint" in err


# ------------------------------------------------------------------------------ embedded parameters

def test_a_trainer_with_large_embedded_parameters_starts_cheaply(tmp_path):
    rng = np.random.default_rng(0)
    params = {"W1": rng.standard_normal((300, 300)), "b1": rng.standard_normal(300),
              "W2": rng.standard_normal((1, 300)), "b2": np.zeros(1)}
    net = Network.from_dict({"network": {"layers": [300, 300, 1], "activations": "sigmoid", "loss": "mse"},
                             "parameters": {k: v.tolist() for k, v in params.items()}})
    trainer = tmp_path / "t.py"
    trainer.write_text(render(net, optimizer="sgd"))
    text = trainer.read_text()
    assert "import base64" in text and repr(float(params["W1"][0, 0])) not in text
    assert repr(float(params["b1"][0])) in text            # 300 numbers: still a literal
    # a process's peak memory counts its parent's at the fork: measure from a small parent (PEAK)
    result = subprocess.run([sys.executable, "-c", PEAK, sys.executable, str(trainer), "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and int(result.stdout.split()[-1]) < 150_000, result.stdout[-200:]
    from test_generate import load_trainer
    module = load_trainer(text, tmp_path, "embedded_params")
    drawn = module.init_params()
    assert all(np.array_equal(drawn[k], params[k]) for k in params)     # to the last bit
