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
    from symbackprop.entries.layers import LAYERS
    table = README[README.index("| `type` | fields | what it computes |"):]
    for name in LAYERS:
        assert f"`{name}`" in table.split("\n\n")[0], name
def _fenced_after(marker: str) -> str:
    """The fenced block that follows ``marker`` in the README."""
    start = README.index("```", README.index(marker))
    body = README.index("\n", start) + 1
    return README[body:README.index("```", body)].rstrip("\n")


def test_the_batchnorm_excerpts_are_what_explain_writes(capsys):
    assert main(["explain", "examples/batchnorm.toml"]) == 0
    out = capsys.readouterr().out
    for marker in ("gives, among much else,", "and, going back through the batch norm:"):
        quoted = _fenced_after(marker)
        assert quoted.count("\n") >= 2 and quoted in out, marker


def test_the_batchnorm_check_verdict_is_what_check_prints(capsys):
    quoted = block_after("checked against examples/batchnorm.toml:")
    assert main(["check", "examples/batchnorm.toml", "examples/batchnorm-hand.toml"]) == 1
    assert capsys.readouterr().out.rstrip("\n") == quoted
    assert "backward without the terms through μ and var" in quoted and "carried" in quoted


def test_the_cnn_exercise_excerpt_is_what_check_prints(capsys):
    quoted = block_after("checked against examples/cnn-exercise.toml:").splitlines()
    assert main(["check", "examples/cnn-exercise.toml", "examples/cnn-exercise-hand.toml"]) == 1
    printed = capsys.readouterr().out.rstrip("\n").splitlines()
    at = [printed.index(line) for line in quoted]            # every quoted line, in the printed order
    assert at == sorted(at) and at[0] == 0 and at[-1] == len(printed) - 1
    assert any("sent to every element of the window" in line for line in quoted)


def test_the_trainer_run_with_validation_is_what_the_trainer_prints(tmp_path):
    """The README's run of generated/cnn_adam.py with --val-fraction and --patience, then predict:
    every quoted line is printed, in order, the first ones first and the last ones last (the rates,
    examples/s, are the machine's)."""
    import shlex
    import shutil
    import subprocess
    import sys
    section = README[README.index("**Validation, accuracy, early stopping and predictions.**"):]
    commands = block_after_fence(section, "```sh")
    quoted = block_after_fence(section, "```text").splitlines()
    (tmp_path / "examples").mkdir()
    shutil.copy(ROOT / "examples/bars.npz", tmp_path / "examples")
    printed = []
    for command in commands.splitlines():
        python, trainer, *args = shlex.split(command)
        assert python == "python" and trainer == "generated/cnn_adam.py"
        result = subprocess.run([sys.executable, str(ROOT / trainer), *args], cwd=tmp_path, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        printed += result.stdout.splitlines()
    rate = lambda line: re.sub(r"[\d,]+ examples/s", "R examples/s", line)
    gap = quoted.index("...")
    assert [rate(l) for l in printed[:gap]] == [rate(l) for l in quoted[:gap]]
    tail = quoted[gap + 1:]
    assert [rate(l) for l in printed[-len(tail):]] == [rate(l) for l in tail]
    assert (tmp_path / "loss.svg").exists() and (tmp_path / "predictions.csv").exists()


def block_after_fence(text: str, fence: str) -> str:
    """The body of the first ``fence`` block in ``text``."""
    start = text.index(fence + "\n") + len(fence) + 1
    return text[start:text.index("```", start)].rstrip("\n")
