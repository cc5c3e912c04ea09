"""Spec and hand-file values: hyper-parameters in their domains (declared once, in optimizers.py),
duplicate JSON keys, numbers of thousands of digits, arrays nested 10⁵ deep, infinite values in
JSON output, and batches too large to print: one line each, exit status 2, nothing written."""
import json
import math
import tomllib

import pytest

from symbackprop.spec import limits
from symbackprop.cli import main
from symbackprop.errors import SpecError
from symbackprop.entries.optimizers import HYPERS, OPTIMIZERS, Settings

SEED = "examples/seed.toml"
SEED_TEXT = open(SEED).read().split("[optimizer]")[0]   # the seed's network and numbers, no optimizer


def one_line_error(capsys, argv, field):
    assert main([str(a) for a in argv]) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and field in err and "Traceback" not in err, err[:400]
    return err


def seed_with(tmp_path, optimizer: str, name="spec.toml"):
    path = tmp_path / name
    path.write_text(SEED_TEXT + "\n[optimizer]\n" + optimizer + "\n")
    return path


OUTSIDE = [("beta1", "1", "in [0, 1)"), ("beta1", "-0.1", "in [0, 1)"), ("beta2", "2", "in [0, 1)"),
           ("eps", "0", "greater than 0"), ("eps", "-1e-8", "greater than 0"),
           ("learning_rate", "0", "greater than 0"), ("learning_rate", "-0.1", "greater than 0"),
           ("rho", "1.0", "in [0, 1)"), ("momentum", "-0.9", "at least 0"), ("weight_decay", "-1e-4", "at least 0"),
           ("eps", "inf", "greater than 0"), ("beta2", "nan", "in [0, 1)"), ("beta1", "true", "in [0, 1)")]


@pytest.mark.parametrize("key, value, domain", OUTSIDE, ids=[f"{k}={v}" for k, v, _ in OUTSIDE])
def test_a_hyper_parameter_outside_its_domain_is_refused_naming_it(tmp_path, capsys, key, value, domain):
    spec = seed_with(tmp_path, f'name = "adam"\n{key} = {value}')
    for argv in (["derive", spec], ["explain", spec], ["generate", spec, "-o", tmp_path / "t.py"]):
        err = one_line_error(capsys, argv, f"optimizer.{key}: expected a number {domain}")
    assert not (tmp_path / "t.py").exists()


def test_the_hand_files_optimizer_table_is_held_to_the_same_domains(tmp_path, capsys):
    hand = tmp_path / "hand.toml"
    hand.write_text("[optimizer]\nbeta1 = 1.0\n[values]\nloss = 0.169\n")
    one_line_error(capsys, ["check", SEED, hand], "optimizer.beta1: expected a number in [0, 1)")


@pytest.mark.parametrize("key, value", [("beta1", "0"), ("rho", "0.0"), ("momentum", "0"), ("weight_decay", "0"),
                                        ("beta2", "0.999999"), ("learning_rate", "1e-12")])
def test_values_at_the_edge_of_a_domain_are_accepted(tmp_path, capsys, key, value):
    assert main(["explain", str(seed_with(tmp_path, f'name = "adam"\n{key} = {value}'))]) == 0


def test_the_domains_are_the_optimizers_own_and_bind_the_python_api_too():
    read = {name for opt in OPTIMIZERS.values() for name, _ in opt.defaults}
    assert read == set(HYPERS)                       # every setting an optimizer reads has a domain
    for opt in OPTIMIZERS.values():                   # and every default lies inside it
        assert all(HYPERS[name].allows(value) for name, value in opt.defaults), opt.name
    with pytest.raises(SpecError, match=r"optimizer.eps: expected a number greater than 0, got 0"):
        Settings.of({"eps": 0})


def test_a_divergence_is_no_longer_blamed_on_the_learning_rate_for_a_bad_beta(tmp_path, capsys):
    # beta1 = 1 used to pass and make explain say "optimizer.learning_rate: ... not finite"
    err = one_line_error(capsys, ["explain", seed_with(tmp_path, 'name = "adam"\nbeta1 = 1')], "optimizer.beta1")
    assert "learning_rate" not in err


@pytest.mark.parametrize("text, key", [
    ('{"network": {"layers": [1, 1], "layers": [2, 1], "activations": ["sigmoid"], "loss": "mse"}}', "layers"),
    ('{"network": {"layers": [1, 1], "activations": ["sigmoid"], "loss": "mse"}, "network": {}}', "network"),
    ('{"network": {"layers": [1, 1], "activations": ["sigmoid"], "loss": "mse"}, '
     '"parameters": {"W1": [[1]], "b1": [0], "b1": [1]}}', "b1"),
])
def test_a_duplicate_key_in_a_json_spec_is_refused_naming_it(tmp_path, capsys, text, key):
    spec = tmp_path / "spec.json"
    spec.write_text(text)
    one_line_error(capsys, ["derive", spec], f"invalid JSON: duplicate key '{key}'")


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_a_number_of_5000_digits_is_refused_naming_its_line(tmp_path, capsys, suffix):
    text = SEED_TEXT.replace("b2 = [0.1]", "b2 = [" + "7" * 5000 + "]")
    if suffix == ".json":
        text = json.dumps(tomllib.loads(SEED_TEXT)).replace('"b2": [0.1]', '"b2": [' + "7" * 5000 + "]")
    spec = tmp_path / f"spec{suffix}"
    spec.write_text(text)
    line = text[: text.index("7" * 5000)].count("\n") + 1
    one_line_error(capsys, ["derive", spec], f"spec{suffix}, line {line}: a number of 5000 digits")


@pytest.mark.parametrize("suffix", [".toml", ".json"])
@pytest.mark.parametrize("depth", [40, 100_000])
def test_arrays_nested_too_deep_are_refused_naming_the_limit(tmp_path, capsys, suffix, depth):
    nested = "[" * depth + "]" * depth
    text = (SEED_TEXT.replace("y = [1]", f"y = {nested}") if suffix == ".toml" else
            '{"network": {"layers": [1, 1], "activations": ["sigmoid"], "loss": "mse"}, "sample": {"x": [1], "y": '
            + nested + "}}")
    spec = tmp_path / f"spec{suffix}"
    spec.write_text(text)
    one_line_error(capsys, ["derive", spec], f"nested more than {limits.NESTING} deep (the limit)")


def test_a_hand_file_nested_too_deep_is_refused(tmp_path, capsys):
    hand = tmp_path / "hand.toml"
    hand.write_text("[values]\nz1 = " + "[" * 100_000 + "]" * 100_000 + "\n")
    one_line_error(capsys, ["check", SEED, hand], f"nested more than {limits.NESTING} deep")


@pytest.mark.parametrize("line, field", [
    ("loss = " + "9" * 400, "values.loss: expected a finite number, got an integer of about"),
    ("loss = " + "9" * 5000, "a number of 5000 digits"),
    ('"z1[' + "0" * 4999 + '1]" = 0.3', "index out of range for z1"),
    ('"z1[' + "9" * 5000 + ']" = 0.3', "index out of range for z1"),
    ('loss = "' + "9" * 400 + '"', "values.loss: expected a finite number"),
    ('loss = "1e999"', "values.loss: expected a finite number"),
], ids=["400-digit integer", "5000-digit integer", "5000-digit index", "5000 nines index", "400 nines as text",
        "1e999 as text"])
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_hand_values_beyond_float64_are_one_line(tmp_path, capsys, line, field, fmt):
    hand = tmp_path / "hand.toml"
    hand.write_text("[values]\n" + line + "\n")
    one_line_error(capsys, ["check", SEED, hand, "--format", fmt], field)


def test_check_json_writes_values_that_are_not_finite_as_json_can():
    from symbackprop.check.judge import Result
    row = Result("loss", (), "5", math.inf, -math.inf, "wrong").to_json()
    assert (row["given"], row["expected"]) == ("inf", "-inf")
    assert Result("loss", (), "5", 5.0, math.nan, "wrong").to_json()["expected"] is None
    json.dumps(row, allow_nan=False)


@pytest.mark.parametrize("argv", [["explain"], ["derive", "--exact"]])
def test_a_batch_too_large_to_print_example_by_example_is_refused_before_any_work(tmp_path, capsys, argv):
    rows = limits.EXAMPLES_SHOWN + 1
    spec = tmp_path / "spec.toml"
    spec.write_text('[network]\nlayers = [1, 1]\nactivations = ["sigmoid"]\nloss = "mse"\n'
                    "[parameters]\nW1 = [[0.5]]\nb1 = [0.0]\n[sample]\n"
                    f"x = [{', '.join(['0.5'] * rows)}]\ny = [{', '.join(['1'] * rows)}]\n")
    err = one_line_error(capsys, [*argv[:1], spec, *argv[1:], "-o", tmp_path / "out"],
                         f"at most {limits.EXAMPLES_SHOWN} examples (the limit), the sample has {rows}")
    assert not (tmp_path / "out").exists()
    assert main(["derive", str(spec), "--form", "matrix", "--format", "json"]) == 0   # the way to such a batch
    assert math.isfinite(json.loads(capsys.readouterr().out)["loss"])
