"""The tutorial notebook runs from top to bottom (nbclient, in a fresh kernel) and shows what it says."""
import time

import pytest

from docexamples import ROOT

nbformat = pytest.importorskip("nbformat", reason="the test extra's nbformat is not installed")
nbclient = pytest.importorskip("nbclient", reason="the test extra's nbclient is not installed")
pytest.importorskip("ipykernel", reason="the test extra's ipykernel is not installed")


def _text(cell) -> str:
    out = []
    for o in cell.get("outputs", []):
        out.append(o.get("text", ""))
        out += [str(v) for k, v in o.get("data", {}).items() if k in ("text/plain", "text/markdown")]
    return "".join(out)


def test_the_tutorial_runs_and_shows_the_seeds_numbers(tmp_path):
    nb = nbformat.read(ROOT / "examples" / "tutorial.ipynb", as_version=4)
    started = time.perf_counter()
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT / "examples")}}).execute()
    assert time.perf_counter() - started < 60
    cells = [_text(c) for c in nb.cells if c.cell_type == "code"]
    derive, explain, html, check, generate, train = cells[1] + cells[2], cells[3], cells[4], cells[5], cells[6], cells[7]
    assert "C = 0.16900" in derive and "0.28905 × 0.24210 × (-0.82220) ≈ -0.057536" in derive
    assert "-0.05753635, -0.11434446" in derive
    assert "## 2. Loss" in explain and "&= \\left(0.58890 - 1\\right)^{2}" in explain and "0.16900" in explain
    assert int(html.split()[0].replace(",", "")) > 10_000
    assert "{'ok': 17, 'wrong': 5, 'carried': 9}" in check and "the 2 of d/da (a − y)² dropped" in check
    difference = float(generate.split(":")[-1])
    assert difference < 1e-12
    reason, losses = train.split(" ", 1)
    losses = [float(x) for x in losses.strip("[]\n").split(",")]
    assert reason == "epochs" and losses[0] == pytest.approx(0.169004) and len(losses) == 5
    assert all(b < a for a, b in zip(losses, losses[1:]))
