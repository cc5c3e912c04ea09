"""The README's examples are the program's real output: re-run them here."""
import re
from pathlib import Path

from symbackprop.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def block_after(marker: str) -> str:
    start = README.index(marker)
    return README[start:README.index("```", start)].rstrip("\n")


def test_the_quoted_chain_rule_lines_are_what_derive_prints(capsys):
    quoted = block_after("  dC/dW2[1,1] = ").splitlines()
    assert main(["derive", "examples/seed.toml"]) == 0
    printed = capsys.readouterr().out.splitlines()
    start = printed.index(quoted[0])
    assert printed[start:start + len(quoted)] == quoted


def test_the_check_output_is_what_check_prints(capsys):
    quoted = block_after("checked against examples/seed.toml:")
    assert main(["check", "examples/seed.toml", "examples/seed-hand.toml"]) == 1
    assert capsys.readouterr().out.rstrip("\n") == quoted


def test_the_trainer_snippet_is_in_the_generated_trainer():
    snippet = block_after("# ---- backward pass")
    trainer = (ROOT / "generated/xor_adam.py").read_text()
    assert "\n".join("    " + line for line in snippet.splitlines()) in trainer


def test_every_flag_in_the_commands_table_exists(capsys):
    from symbackprop.cli import build_parser
    table = README[README.index("## Commands"):README.index("Bad input")]
    for command, flags in re.findall(r"`symbackprop (\w+) ([^`]*)`", table):
        sub = build_parser()._subparsers._group_actions[0].choices[command]
        known = {s for action in sub._actions for s in action.option_strings}
        for flag in re.findall(r"(--[\w-]+|-o)\b", flags):
            assert flag in known, (command, flag)


def test_ci_runs_the_readmes_test_command():
    test_command = README.split("```sh\n", 1)[1].splitlines()[1].split("#")[0].strip()
    assert test_command in (ROOT / ".ci/run").read_text()


def test_the_batch_excerpt_is_what_derive_prints(capsys):
    quoted = block_after("  dC/dW2[1,1] = dz2[1]/dW2[1,1] · da2[1]/dz2[1] · dC/da2[1]\n      = a1[1] · a2[1]*(1 - a2[1]) · 2*(a2[1] - y[1])\n      example 1").splitlines()
    assert main(["derive", "examples/seed-batch.toml", "--wrt", "W2"]) == 0
    printed = capsys.readouterr().out.splitlines()
    start = printed.index(quoted[0])
    assert printed[start:start + len(quoted)] == quoted


def test_every_layer_kind_is_in_the_readme_table():
    from symbackprop.layers import LAYERS
    table = README[README.index("| `type` | fields | what it computes |"):]
    for name in LAYERS:
        assert f"`{name}`" in table.split("\n\n")[0], name
