"""The fenced examples of a Markdown page (the README, docs/*.md), run as a reader would run them.

* ```` ```console ````: each ``$ command`` line runs in bash, in a scratch folder that has the
  repository's ``examples/``, ``generated/`` and ``benchmarks/`` (``symbackprop`` and ``python`` are
  this checkout's), standard output and error together; the lines under it are what it prints. A
  line ``...`` stands for any number of lines; a rate (``12,345 examples/s``) is the machine's.
* ```` ```python ```` with ``>>>`` prompts: a doctest, run from the repository root. Without
  prompts: an excerpt, whose lines must stand, in order and one after another, in a file of the
  package, its templates or ``generated/`` (indentation aside).
* ```` ```toml ```` with a ``[network]`` table: a spec, which must load.
"""
import doctest
import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)
RATE = re.compile(r"[\d,.]+ examples/s")


@dataclass
class Block:
    page: str
    line: int
    lang: str
    text: str

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def blocks(path: Path, lang: str | None = None) -> list[Block]:
    """The fenced blocks of ``path`` (of language ``lang``), each with the line its fence is on."""
    text = path.read_text(encoding="utf-8")
    page = str(path.relative_to(ROOT))
    found = [Block(page, text.count("\n", 0, m.start()) + 1, m.group(1), m.group(2)) for m in FENCE.finditer(text)]
    return [b for b in found if lang is None or b.lang == lang]


def sessions(block: Block) -> list[tuple[str, list[str]]]:
    """A console block's (command, expected output lines) pairs."""
    out = []
    for line in block.text.rstrip("\n").splitlines():
        if line.startswith("$ "):
            out.append((line[2:], []))
        else:
            assert out, f"{block.id}: output before the first $ command"
            out[-1][1].append(line)
    return out


def matches(expected: list[str], printed: list[str]) -> bool:
    """Whether ``printed`` is ``expected`` with each ``...`` line standing for any run of lines."""
    norm = lambda line: RATE.sub("R examples/s", line.rstrip())
    expected, printed = [norm(l) for l in expected], [norm(l) for l in printed]
    memo = {}

    def at(i, j):
        if (i, j) not in memo:
            if i == len(expected):
                memo[i, j] = j == len(printed)
            elif expected[i] == "...":
                memo[i, j] = any(at(i + 1, k) for k in range(j, len(printed) + 1))
            else:
                memo[i, j] = j < len(printed) and expected[i] == printed[j] and at(i + 1, j + 1)
        return memo[i, j]
    return at(0, 0)


def scratch(folder: Path) -> dict:
    """Lay out ``folder`` for console examples; the environment to run them in."""
    for name in ("examples", "generated", "benchmarks"):
        (folder / name).symlink_to(ROOT / name)
    bin_ = folder / ".bin"
    bin_.mkdir()
    for name, target in (("symbackprop", f'"{sys.executable}" -m symbackprop'), ("python", f'"{sys.executable}"'),
                         ("python3", f'"{sys.executable}"')):
        (bin_ / name).write_text(f'#!/bin/sh\nexec {target} "$@"\n')
        (bin_ / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(ROOT),
           "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "COLUMNS": "100"}
    env.pop("PYTHONSTARTUP", None)
    return env


def run_console(block: Block, folder: Path) -> None:
    """Run every command of a console block in ``folder``, comparing what it prints."""
    env = scratch(folder)
    for command, expected in sessions(block):
        result = subprocess.run(["bash", "-c", command], cwd=folder, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
        printed = result.stdout.rstrip("\n").splitlines()
        assert "Traceback" not in result.stdout, f"{block.id}: $ {command}\n{result.stdout}"
        assert matches(expected, printed), (f"{block.id}: $ {command} printed\n" + "\n".join(printed)
                                            + "\n--- the page says\n" + "\n".join(expected))


def run_doctest(block: Block) -> None:
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    test = parser.get_doctest(block.text, {}, block.id, block.page, block.line)
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        result = runner.run(test, out=lambda text: print(text, end=""))
    finally:
        os.chdir(cwd)
    assert result.failed == 0, f"{block.id}: {result.failed} of {result.attempted} examples failed (see output)"


def _excerpt_sources() -> list[Path]:
    return sorted([*ROOT.glob("symbackprop/**/*.py"), *ROOT.glob("templates/*.jinja"), *ROOT.glob("generated/*.py"),
                   *ROOT.glob("examples/*.toml"), *ROOT.glob("benchmarks/*.py")])


def check_excerpt(block: Block) -> None:
    """An excerpt stands, line after line, in some file of the package (leading spaces aside)."""
    want = [l.strip() for l in block.text.strip("\n").splitlines()]
    for path in _excerpt_sources():
        lines = [l.strip() for l in path.read_text(encoding="utf-8").splitlines()]
        for i, line in enumerate(lines):
            if line == want[0] and lines[i:i + len(want)] == want:
                return
    raise AssertionError(f"{block.id}: this excerpt is in no file of the package:\n{block.text}")


def check_toml(block: Block) -> None:
    """TOML parses; a spec (a ``[network]`` table) loads."""
    data = tomllib.loads(block.text)
    if "network" in data:
        import symbackprop
        symbackprop.Network.from_dict(data)


def run(block: Block, tmp_path: Path) -> None:
    """Run or check one block as its language says."""
    if block.lang == "console":
        run_console(block, tmp_path)
    elif block.lang == "python" and ">>>" in block.text:
        run_doctest(block)
    elif block.lang == "python":
        check_excerpt(block)
    elif block.lang == "toml":
        check_toml(block)


def runnable(paths) -> list[Block]:
    return [b for p in paths for b in blocks(p) if b.lang in ("console", "python", "toml")]
