"""symbackprop exercise: the same seed gives the same files; every key passes check with every
number ok; the skeleton names exactly the asked quantities, blank; friendly numbers have at most
two decimals and the spec's own numbers are kept; --ask by stage and name; the LaTeX compiles; bad
input is one line, exit 2, and nothing is overwritten."""
import re
import shutil
import subprocess

import pytest

from symbackprop.check.hand import load_hand, parse_hand
from symbackprop.check.judge import check
from symbackprop.cli import main
from symbackprop.exercise.make import build
from symbackprop.exercise.numbers import decimals, friendly_enough
from symbackprop.exercise.step import STAGES, stage_of
from symbackprop.spec.document import read_spec
from symbackprop.spec.network import load

SPECS = ("examples/seed.toml", "examples/cnn-exercise.toml", "examples/batchnorm.toml", "examples/residual.toml")


def _run(capsys, *argv):
    code = main(["exercise", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("spec", SPECS[:2])
def test_the_same_seed_writes_the_same_files_byte_for_byte(tmp_path, capsys, spec):
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        code, _, err = _run(capsys, spec, "--redraw", "--seed", "11", "--key", "-o", str(tmp_path / folder / "s.md"))
        assert code == 0, err
    one, two = sorted((tmp_path / "one").iterdir()), sorted((tmp_path / "two").iterdir())
    assert [p.name for p in one] == ["s.hand.toml", "s.key.md", "s.key.toml", "s.md", "s.spec.toml"]
    for a, b in zip(one, two):
        assert a.read_bytes() == b.read_bytes(), a.name
    _run(capsys, spec, "--redraw", "--seed", "12", "-o", str(tmp_path / "s12.md"))
    assert (tmp_path / "s12.spec.toml").read_text() != (tmp_path / "one" / "s.spec.toml").read_text()


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("seed", [0, 5])
def test_every_key_passes_check_with_every_number_ok(tmp_path, capsys, spec, seed):
    code, _, err = _run(capsys, spec, "--redraw", "--seed", str(seed), "--key", "-o", str(tmp_path / "s.md"))
    assert code == 0, err
    network = load(tmp_path / "s.spec.toml")
    results = check(network, tmp_path / "s.key.toml")
    assert results and {r.status for r in results} == {"ok"}, [r for r in results if r.status != "ok"][:3]
    asked = set(load_hand(tmp_path / "s.hand.toml", network).missing)
    assert {(r.name, r.index) for r in results} == asked          # the key answers exactly what is asked


def test_the_skeleton_names_exactly_the_asked_quantities_each_blank(tmp_path, capsys):
    code, _, err = _run(capsys, "examples/seed.toml", "--ask", "backward,sgd.W2", "--optimizer", "sgd",
                        "-o", str(tmp_path / "s.md"))
    assert code == 0, err
    import tomllib
    values = tomllib.loads((tmp_path / "s.hand.toml").read_text())["values"]
    names = list(_flat(values))
    assert names == ["dC/da2", "da2/dz2", "delta2", "grad.W2", "grad.b2", "dC/da1", "da1/dz1", "delta1",
                     "grad.W1", "grad.b1", "sgd.W2"]
    assert all(v == "" for n in names for v in _leaves(_flat(values)[n]))
    network = load(tmp_path / "s.spec.toml")
    results = check(network, tmp_path / "s.hand.toml")
    assert {r.status for r in results} == {"missing"} and len(results) == 1 + 1 + 1 + 2 + 1 + 2 + 2 + 2 + 6 + 2 + 2
    sheet = (tmp_path / "s.md").read_text()
    rows = re.findall(r"^\| \d+ \| `([^`]+)` \|", sheet, re.M)
    assert rows == names                                             # the worksheet asks the same, in order
    assert "0.2" in sheet and "| (1, 2) |" in sheet


def _flat(table, prefix=""):
    out = {}
    for k, v in table.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _leaves(value):
    if isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


@pytest.mark.parametrize("spec", SPECS)
def test_friendly_numbers_have_at_most_two_decimals(spec):
    data, source = read_spec(spec)
    for seed in range(4):
        ex = build(data, source, seed, redraw=True)
        numbers = [*ex.data["parameters"].values(), ex.data["sample"]["x"], ex.data["sample"]["y"]]
        assert all(friendly_enough(v) for v in numbers), (seed, numbers)
        assert ex.step.clean()                   # no tie, no kink: every number has one right value
        assert ex.step.mild()                    # pre-activations within ±3: no saturated sigmoid
    assert decimals(0.05) == 2 and decimals(0.123) == 3 and not friendly_enough([[0.1, 0.125]])


def test_the_specs_own_numbers_are_kept_and_the_rest_drawn():
    data, source = read_spec("examples/seed.toml")
    del data["parameters"]["W1"], data["sample"]
    ex = build(data, source, 3)
    assert ex.data["parameters"]["W2"] == [[0.5, 0.2]] and ex.data["parameters"]["b1"] == [0.3, -0.1]
    assert len(ex.data["parameters"]["W1"]) == 2 and friendly_enough(ex.data["parameters"]["W1"])
    assert ex.data["parameters"]["W1"] != [[0.2, -0.5, 0.1], [-0.3, 0.4, 0.2]]
    assert friendly_enough(ex.data["sample"]["x"])
    anything = build(data, source, 3, mode="any")
    assert not friendly_enough(anything.data["parameters"]["W1"])       # as --init draws: full floats
    assert anything.data["parameters"]["W2"] == [[0.5, 0.2]]


def test_ask_by_stage_and_by_name_in_computing_order():
    data, source = read_spec("examples/seed.toml")
    ex = build(data, source, 0, optimizer="adam", ask="new,grad.W2,loss")
    assert ex.asked == ["loss", "grad.W2", "new.z1", "new.a1", "new.z2", "new.a2", "new.loss"]
    every = build(data, source, 0, optimizer="adam")
    assert [stage_of(n) for n in every.asked] == sorted((stage_of(n) for n in every.asked), key=STAGES.index)
    assert "adam.m.W1" in every.asked and "adam.W2" in every.asked
    train = {**data, "optimizer": {**data["optimizer"], "train": ["W2", "b2"]}}
    only = build(train, source, 0, ask="update")
    assert only.asked == ["adam.m.W2", "adam.m.b2", "adam.v.W2", "adam.v.b2", "adam.W2", "adam.b2"]


@pytest.mark.parametrize("argv, field", [
    (["--ask", "grad.W9"], "--ask"),
    (["--ask", "forward,,loss"], "--ask"),
    (["--ask", "adam.W2", "--optimizer", "sgd"], "--ask"),
    (["--count", "0", "--redraw"], "--count"),
    (["--count", "1001", "--redraw"], "--count"),
    (["--count", "3"], "--count"),                       # the seed spec gives every number
    (["--count", "x"], "--count"),
    (["--seed", "-1"], "--seed"),
    (["--digits", "0"], "--digits"),
    (["--choices", "3"], "--choices"),                   # not a quiz
    (["--optimizer", "lion"], "--optimizer"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, field):
    code, out, err = _run(capsys, "examples/seed.toml", *argv, "-o", str(tmp_path / "s.md"))
    assert code == 2 and err.count("\n") == 1 and f"error: {field}" in err, err
    assert not list(tmp_path.iterdir())


def test_too_many_choices_is_one_line_and_exit_2(tmp_path, capsys):
    code, _, err = _run(capsys, "examples/seed.toml", "--choices", "11", "-o", str(tmp_path / "q.xml"))
    assert code == 2 and err.count("\n") == 1 and "--choices: at most" in err, err
    assert not list(tmp_path.iterdir())


def test_a_bad_fixed_parameter_names_its_field(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text('[network]\nlayers = [2, 1]\nactivations = ["relu"]\nloss = "squared_error"\n'
                    '[parameters]\nW1 = [[0.5]]\n')
    code, _, err = _run(capsys, str(spec), "-o", str(tmp_path / "s.md"))
    assert code == 2 and "parameters.W1" in err and err.count("\n") == 1, err


def test_nothing_is_overwritten_without_force(tmp_path, capsys):
    (tmp_path / "s.hand.toml").write_text("mine")
    code, _, err = _run(capsys, "examples/seed.toml", "-o", str(tmp_path / "s.md"))
    assert code == 2 and (tmp_path / "s.hand.toml").read_text() == "mine" and not (tmp_path / "s.md").exists()
    assert _run(capsys, "examples/seed.toml", "-o", str(tmp_path / "s.md"), "--force")[0] == 0


def test_a_class_set_writes_each_variant_with_its_key_and_one_index(tmp_path, capsys):
    code, _, err = _run(capsys, "examples/cnn-exercise.toml", "--redraw", "--count", "3", "--seed", "4",
                        "-o", str(tmp_path / "c.md"))
    assert code == 0, err
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([f"c-{s}{x}" for s in (4, 5, 6) for x in (".md", ".hand.toml", ".spec.toml", ".key.md",
                                                                       ".key.toml")] + ["c-index.md"])
    index = (tmp_path / "c-index.md").read_text()
    assert all(f"| {i} | {s} |" in index for i, s in ((1, 4), (2, 5), (3, 6)))
    specs = {(tmp_path / f"c-{s}.spec.toml").read_text().split("[parameters]")[1] for s in (4, 5, 6)}
    assert len(specs) == 3


def test_blank_numbers_in_any_hand_file_are_missing():
    net = load("examples/seed.toml")
    hand = parse_hand({"values": {"z1": ["", -0.9], "a1": "", "loss": " "}}, net)
    assert hand.missing == (("z1", (0,)), ("a1", (0,)), ("a1", (1,)), ("loss", ()))
    results = check(net, hand)
    assert [(r.label, r.status) for r in results] == [("z1[1]", "missing"), ("z1[2]", "wrong"), ("a1[1]", "missing"),
                                                      ("a1[2]", "missing"), ("loss", "missing")]
    assert results[0].to_json()["given"] is None


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no pdflatex (bash .ci/install-tex.sh)")
def test_the_latex_worksheet_and_key_compile(tmp_path, capsys):
    for spec in SPECS[:2]:
        code, _, err = _run(capsys, spec, "--key", "--force", "-o", str(tmp_path / "s.tex"))
        assert code == 0, err
        for name in ("s.tex", "s.key.tex"):
            proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", name], cwd=tmp_path,
                                  capture_output=True, text=True, timeout=180)
            assert proc.returncode == 0, (spec, name, proc.stdout[-2000:])


def test_the_bundled_example_is_what_the_command_writes(tmp_path, capsys):
    """examples/exercise/, the worksheet, key and skeleton, and the interactive page of the same seed
    (regenerate: symbackprop exercise examples/seed.toml --key -o examples/exercise/seed.md --force,
    then the same with -o examples/exercise/seed.html --force, without --key)."""
    code, _, err = _run(capsys, "examples/seed.toml", "--key", "-o", str(tmp_path / "seed.md"))
    assert code == 0, err
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    code, _, err = _run(capsys, "examples/seed.toml", "--force", "-o", str(tmp_path / "seed.html"))
    assert code == 0, err
    for name in ("seed.hand.toml", "seed.spec.toml"):        # the page's run writes the same skeleton and spec
        assert (tmp_path / name).read_bytes() == before[name], name
    assert (tmp_path / "seed.html").read_bytes().count(b'class="box"') == 67
    from pathlib import Path
    bundled = sorted(Path("examples/exercise").glob("seed.*"))
    assert [p.name for p in bundled] == sorted(p.name for p in tmp_path.iterdir())
    for path in bundled:
        assert path.read_bytes() == (tmp_path / path.name).read_bytes(), path


def test_a_dropout_exercise_gives_its_masks_and_its_key_passes(tmp_path, capsys):
    spec = tmp_path / "drop.toml"
    spec.write_text('[network]\ninput = [3]\nloss = "squared_error"\n[[layer]]\ntype = "dense"\nunits = 3\n'
                    'activation = "relu"\n[[layer]]\ntype = "dropout"\nrate = 0.5\n[[layer]]\ntype = "dense"\n'
                    'units = 1\nactivation = "identity"\n')
    code, _, err = _run(capsys, str(spec), "--seed", "2", "--key", "-o", str(tmp_path / "d.md"))
    assert code == 0, err
    network = load(tmp_path / "d.spec.toml")
    mask = network.masks["M2"][0]
    assert f"\\text{{M2}} &= \\begin{{bmatrix}} {' & '.join(f'{v:g}' for v in mask)} \\end{{bmatrix}}" in \
        (tmp_path / "d.md").read_text()
    assert {r.status for r in check(network, tmp_path / "d.key.toml")} == {"ok"}
