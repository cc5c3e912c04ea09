"""The README is the front door: short, its examples the program's real output (each console block
re-run, each Python excerpt found in the package, see docexamples.py), its links and layout true."""
import re

import pytest

import docexamples
from docexamples import ROOT

README = ROOT / "README.md"
TEXT = README.read_text(encoding="utf-8")


@pytest.mark.parametrize("block", docexamples.runnable([README]), ids=lambda b: b.id)
def test_the_readmes_examples_are_real(block, tmp_path):
    docexamples.run(block, tmp_path)


def test_the_readme_shows_each_command_at_work():
    commands = {c.split()[1] for b in docexamples.blocks(README, "console") for c, _ in docexamples.sessions(b)
                if c.startswith("symbackprop ")}
    assert {"derive", "explain", "check", "generate"} <= commands


def test_the_readme_is_a_front_door():
    assert len(TEXT.splitlines()) <= 255


def test_ci_runs_the_readmes_test_command():
    test_command = TEXT.split("```sh\n", 1)[1].splitlines()[1].split("#")[0].strip()
    assert test_command == "python3 -m pip install -e '.[test]' && python3 -m pytest"
    assert (ROOT / ".ci/run").read_text().rstrip().splitlines()[-1] == test_command


def test_every_link_into_the_docs_resolves():
    links = re.findall(r"\]\(((?:docs|examples)/[^)#]+)", TEXT)
    assert len(links) > 10
    for link in links:
        assert (ROOT / link).is_file(), link


def test_the_layout_lists_every_folder_and_stage():
    layout = TEXT[TEXT.index("## Layout"):TEXT.index("## Documentation")]
    listed = re.findall(r"^(\S+/)", layout, re.M)
    stages = {p.parent.name for p in (ROOT / "symbackprop").glob("*/__init__.py")}
    for stage in stages - {"templates"}:
        assert f"symbackprop/{stage}/" in layout, stage
    for folder in ("templates/", "examples/", "generated/", "benchmarks/", "tests/", "docs/"):
        assert folder in listed, folder
    for entry in listed:
        assert (ROOT / entry.rstrip(",")).exists(), entry
