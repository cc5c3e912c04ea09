"""``symbackprop explain --format html`` renders in a real (headless) Chromium: every formula
typesets with no KaTeX error, the network drawing carries each neuron's value and each edge's
weight and gradient, and a screenshot is taken. CI installs chromium (.ci/install-chromium.sh);
elsewhere these tests are skipped when no chromium is on PATH."""
import html.parser
import os
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # tests/ is no package
from browser import chromium_binary, chromium_dom, chromium_screenshot  # noqa: E402

from symbackprop.cli import main  # noqa: E402
from symbackprop.explain.example import explain, to_html  # noqa: E402
from symbackprop.spec.network import Network  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(chromium_binary() is None,
                                reason="no chromium on PATH: run bash .ci/install-chromium.sh")


class _Page(html.parser.HTMLParser):
    """Class tokens of every element, and the text of the SVG's <text> elements."""

    def __init__(self):
        super().__init__()
        self.classes, self.svg_text, self._in_text = [], [], False

    def handle_starttag(self, tag, attrs):
        self.classes.extend((dict(attrs).get("class") or "").split())
        self._in_text = tag == "text"

    def handle_endtag(self, tag):
        self._in_text = False

    def handle_data(self, data):
        if self._in_text:
            self.svg_text.append(data)


def _rendered(path) -> _Page:
    page = _Page()
    page.feed(chromium_dom(path))
    return page


BATCH = {"network": {"layers": [2, 3, 3], "activations": ["relu", "softmax"], "loss": "cross_entropy"},
         "parameters": {"W1": [[0.1, -0.2], [0.3, 0.4], [-0.5, 0.2]], "b1": [0.1, 0, -0.1],
                        "W2": [[0.2, -0.3, 0.1], [0.4, 0.1, -0.2], [-0.1, 0.3, 0.2]], "b2": [0, 0.1, -0.1]},
         "sample": {"x": [[1, 2], [0.5, -1]], "y": [[1, 0, 0], [0, 0, 1]]},
         "optimizer": {"name": "rmsprop", "learning_rate": 0.01, "train_biases": False}}


def _math_count(page_source: str) -> tuple[int, int]:
    """(display, inline) formulas in the page's body, outside the network drawings."""
    body = page_source.split("<main>")[1].split("</main>")[0]
    body = re.sub(r"<svg.*?</svg>", "", body, flags=re.S)
    displays = body.count("$$") // 2
    return displays, (body.count("$") - 4 * displays) // 2


def test_pages_render_with_network_drawing(tmp_path):
    """The seed's page as the command line writes it, and (in the same browser run, to keep the
    test fast) a batch with a softmax output, frozen biases and rmsprop appended to it."""
    path = tmp_path / "seed.html"
    assert main(["explain", str(ROOT / "examples" / "seed.toml"), "--optimizer", "adam", "--steps", "3",
                 "-o", str(path)]) == 0
    source = path.read_text(encoding="utf-8")
    assert "https://" not in source.split("<main>")[1]          # nothing fetched at view time
    batch = explain(Network.from_dict(BATCH))
    both = tmp_path / "both.html"
    both.write_text(source.replace("</main>", to_html(batch.blocks()) + "</main>"), encoding="utf-8")

    page = _rendered(both)
    assert "katex-error" not in page.classes
    displays, inline = _math_count(both.read_text(encoding="utf-8"))
    assert page.classes.count("katex-display") == displays > 60
    assert page.classes.count("katex") == displays + inline > 400      # every formula typeset
    labels = " ".join(page.svg_text)
    for text in ("x1 = 2", "x3 = −1", "a = 0.28905", "a = 0.58890, y = 1",
                 "w = 0.5, g = −0.057536", "w = 0.2, g = −0.11434", "w = −0.5, g = −0.061358"):
        assert text in labels, text
    assert len([t for t in page.svg_text if t.startswith("w = ")]) == (3 * 2 + 2 * 1) + (2 * 3 + 3 * 3)

    png = tmp_path / "seed.png"
    chromium_screenshot(path, png, size="1200,1600")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000
