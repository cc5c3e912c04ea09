"""Specs that ask for more than any command should start: sizes counted from the shapes right after
validation and refused in one line naming the layer and the limit, exit status 2, in a second or two
and without allocating (peak memory measured in a subprocess); depth bounded and derived in time
linear in it; exact arithmetic that would outgrow float64 refused before it starts."""
import math
import subprocess
import sys
import time

import pytest

from symbackprop import Network
from symbackprop.errors import SpecError
from symbackprop.spec import limits
from symbackprop.spec.network import load

# Runs a command as its child and reports the child's peak resident memory (KB) and CPU seconds last.
PEAK = ("import resource, subprocess, sys\n"
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "sys.stderr.write(r.stderr)\n"
        "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(u.ru_maxrss, u.ru_utime + u.ru_stime)\n"
        "sys.exit(r.returncode)\n")
PEAK_KB = 300_000      # Python, SymPy and NumPy take ~100 MB; a bomb's arrays would take gigabytes
SECONDS = 4            # of CPU: "a second or two" on an idle machine (imports 0.5-1 s of it)


def measured(*argv):
    """(exit status, stderr, peak KB, CPU seconds) of ``symbackprop ARGV`` in a fresh process (CPU time,
    not wall time: this machine's load does not count)."""
    result = subprocess.run([sys.executable, "-c", PEAK, sys.executable, "-m", "symbackprop", *map(str, argv)],
                            capture_output=True, text=True, timeout=120)
    peak, cpu = result.stdout.split()[-2:]
    return result.returncode, result.stderr, int(peak), float(cpu)


def toml(path, text):
    path.write_text(text)
    return path


def graph_spec(tmp_path, input_shape, layers, name="bomb.toml"):
    tables = "".join("[[layer]]\n" + "".join(f"{k} = {v}\n" for k, v in layer.items()) for layer in layers)
    return toml(tmp_path / name, f'[network]\ninput = {list(input_shape)}\nloss = "squared_error"\n' + tables)


def stack_spec(tmp_path, sizes, name="bomb.toml"):
    return toml(tmp_path / name, f'[network]\nlayers = {list(sizes)}\nactivations = "sigmoid"\n'
                                 'loss = "squared_error"\n')


HEAD = [{"type": '"flatten"'}, {"type": '"dense"', "units": 1}]
BOMBS = {   # name: (spec maker, the field the refusal names)
    "dense 1e6 on 1e6 inputs": (lambda p: stack_spec(p, [10**6, 10**6]), "layer 1 (dense): W1 (1000000, 1000000)"),
    "1e9-unit layer": (lambda p: stack_spec(p, [1, 10**9, 1]), "layer 1 (dense): W1 (1000000000, 1)"),
    "1e5 x 1e5 layer": (lambda p: stack_spec(p, [10**5, 10**5, 1]), "layer 1 (dense): W1 (100000, 100000)"),
    "3x3 conv on a 1e5 x 1e5 image": (lambda p: graph_spec(p, (1, 10**5, 10**5), [
        {"type": '"conv2d"', "channels": 1, "kernel": 3}, *HEAD]), "network.input: inputs of shape (1, 100000, 100000)"),
    "conv of 1e12 channels": (lambda p: graph_spec(p, (1, 6, 6), [
        {"type": '"conv2d"', "channels": 10**12, "kernel": 3}, *HEAD]), "layer 1 (conv2d): W1 (1000000000000, 1, 3, 3)"),
    "conv padded by 1e6": (lambda p: graph_spec(p, (1, 6, 6), [
        {"type": '"conv2d"', "channels": 1, "kernel": 3, "padding": 10**6}, *HEAD]),
        "layer 1 (conv2d): W1 (1, 1, 3, 3), output (1, 2000004, 2000004)"),
}
COMMANDS = [["derive"], ["gradcheck"], ["explain", "--init", 0], ["derive", "--init", 0],
            ["check", "--init", 0], ["generate", "-o"]]


def command(argv, spec, tmp_path):
    argv = [*argv, spec]
    if argv[0] == "check":
        argv.append(toml(tmp_path / "hand.toml", "[values]\nloss = 0.1\n"))
    if argv[0] == "generate":
        argv = ["generate", spec, "-o", tmp_path / "trainer.py"]
    return argv


def assert_refused(tmp_path, argv, fragment):
    before = sorted(p.name for p in tmp_path.iterdir())
    code, err, peak, seconds = measured(*argv)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err[-2000:]
    assert fragment in err and f"more than {limits.SPEC_VALUES:,} (the limit" in err, err
    assert peak < PEAK_KB, f"{peak} KB"
    assert seconds < SECONDS, seconds
    assert sorted(p.name for p in tmp_path.iterdir()) == before      # nothing written
    return err


@pytest.mark.parametrize("case", sorted(BOMBS))
def test_a_resource_bomb_is_refused_before_anything_is_allocated(tmp_path, case):
    make, fragment = BOMBS[case]
    spec = make(tmp_path)
    argv = COMMANDS[sorted(BOMBS).index(case) % len(COMMANDS)]     # each bomb through another command
    assert_refused(tmp_path, command(argv, spec, tmp_path), fragment)


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(map(str, a)) for a in COMMANDS])
def test_every_command_counts_before_it_allocates(tmp_path, argv):
    spec = BOMBS["1e5 x 1e5 layer"][0](tmp_path)
    assert_refused(tmp_path, command(argv, spec, tmp_path), "layer 1 (dense)")


def test_the_count_is_exact_at_the_limit():
    # 3-2-1: the input 3 a row; layer 1: W1, b1 (8) x4 and 2 outputs with z and δ (6) a row;
    # layer 2: W2, b2 (3) x4 and 1 output with z and δ (3) a row. For 4 rows: 12 + 32 + 24 + 12 + 12
    net = Network.stack([3, 2, 1], [None, None], None)
    assert [layer.values_per_example for layer in net.graph] == [6, 3]
    limits.check_sizes(net.input, net.graph, 4, limit=92)
    with pytest.raises(SpecError, match=r"^layer 2 \(dense\): W2 \(1, 2\), output \(1,\): the network up to here "
                                        r"needs 92 values .* more than 91 \(the limit"):
        limits.check_sizes(net.input, net.graph, 4, limit=91)


def test_a_convolution_counts_its_padded_input_and_patch_matrix():
    net = Network.from_dict({"network": {"input": [3, 6, 6], "loss": "mse"},
                             "layer": [{"type": "conv2d", "channels": 2, "kernel": 3, "padding": 1},
                                       {"type": "flatten"}, {"type": "dense", "units": 1}]})
    conv = net.graph[0]
    # output (2, 6, 6) with z and δ; padded input 3·8·8; patches 3·9 rows by 36 positions
    assert conv.values_per_example == 72 * 3 + 3 * 64 + 27 * 36
    assert conv.parameter_count == 2 * 3 * 9 + 2


def test_the_samples_batch_is_counted(tmp_path):
    rows = 10
    spec = toml(tmp_path / "s.toml", '[network]\nlayers = [1000, 1]\nactivations = "sigmoid"\nloss = "mse"\n'
                                     f"[sample]\nx = {[[0.5] * 1000] * rows}\ny = {[[0.5]] * rows}\n")
    net = load(spec)
    total = rows * 1000 + 4 * 1001 + rows * 3
    limits.check_sizes(net.input, net.graph, rows, limit=total)
    with pytest.raises(SpecError, match="for gradients and optimizer moments; outputs, z, δ and workspace × 10 "):
        limits.check_sizes(net.input, net.graph, rows, limit=total - 1)


def test_an_ordinary_network_is_far_inside_the_bound():
    net = load("examples/mnist.toml")
    limits.check_sizes(net.input, net.graph, 256)     # 784-256-256-256-10 at a batch of 256


# ------------------------------------------------------------------------------------------- depth

@pytest.mark.parametrize("form", ["stack", "graph"])
def test_ten_thousand_layers_are_refused_in_about_a_second(tmp_path, form):
    if form == "stack":
        spec = stack_spec(tmp_path, [1] * 10_001)
        fragment = f"network.layers: 10,000 weight layers, more than {limits.LAYERS:,} (the limit)"
    else:
        spec = graph_spec(tmp_path, (1,), [{"type": '"dense"', "units": 1}] * 10_000)
        fragment = f"layer: 10,000 [[layer]] tables, more than {limits.LAYERS:,} (the limit)"
    code, err, peak, seconds = measured("derive", spec)
    assert code == 2 and err.strip() == f"symbackprop derive: error: {fragment}", err[-2000:]
    assert seconds < SECONDS and peak < PEAK_KB


def test_the_limit_itself_is_accepted():
    net = Network.from_dict({"network": {"layers": [1] * (limits.LAYERS + 1), "activations": "sigmoid",
                                         "loss": "mse"}})
    assert net.depth == limits.LAYERS
    with pytest.raises(SpecError, match="1,001 weight layers"):
        Network.from_dict({"network": {"layers": [1] * (limits.LAYERS + 2), "activations": "sigmoid", "loss": "mse"}})


def test_derive_is_linear_in_depth():
    """The text rule used to print every layer's factor for every backward line: 250 layers took
    3.5 s, 1,000 took 55 s. Now four times the depth costs about four times the time."""
    from symbackprop.derive.matrix import derive_matrix
    from symbackprop.report.matrix import render_matrix

    def seconds(depth):
        net = Network.from_dict({"network": {"layers": [1] * (depth + 1), "activations": "sigmoid",
                                             "loss": "mse"}})
        started = time.process_time()
        text = render_matrix(derive_matrix(net), "text")
        return time.process_time() - started, text

    small, _ = seconds(100)
    large, text = seconds(400)
    assert large < 8 * small, (small, large)        # quadratic would be 16×
    for l in (399, 1):      # every layer's factor still in its plain form
        up = f"({l + 1})".translate(str.maketrans("0123456789()", "⁰¹²³⁴⁵⁶⁷⁸⁹⁽⁾"))
        at = f"({l})".translate(str.maketrans("0123456789()", "⁰¹²³⁴⁵⁶⁷⁸⁹⁽⁾"))
        assert f"δ{at} = (W{up})ᵀ δ{up} ⊙ σ'(z{at}) = (W{up})ᵀ δ{up} ⊙ [a{at}*(1 - a{at})]" in text


# --------------------------------------------------------------------------------- exact arithmetic

def test_exact_arithmetic_on_values_past_float64_is_refused_fast(tmp_path):
    spec = toml(tmp_path / "t.toml", '[network]\nlayers = [1, 1]\nactivations = ["exp(exp(exp(exp(exp(exp(z))))))"]\n'
                                     'loss = "squared_error"\n[parameters]\nW1 = [[1.0]]\nb1 = [0.0]\n'
                                     "[sample]\nx = [0.0]\ny = [1.0]\n")
    code, err, peak, seconds = measured("derive", "--exact", spec)
    assert code == 2 and "a1: is not a finite number for these parameters and this sample" in err, err
    assert seconds < limits.EXACT_SECONDS and peak < PEAK_KB


def test_exact_arithmetic_within_float64_still_runs(tmp_path):
    code, err, _, _ = measured("derive", "--exact", "examples/seed.toml")
    assert code == 0, err
