"""The standalone page renders its math in a real (headless) Chromium.

CI installs Debian's chromium (.ci/install-chromium.sh); elsewhere the test is
skipped when no chromium is on PATH.
"""

import html.parser
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # tests/ is no package
from browser import chromium_binary, chromium_dom, chromium_screenshot  # noqa: E402

from symbackprop.writers.html import network_svg, standalone_page  # noqa: E402

pytestmark = pytest.mark.skipif(chromium_binary() is None,
                                reason="no chromium on PATH: run bash .ci/install-chromium.sh")

BODY = r"""
<h1>Backpropagation</h1>
<p>The gradient $\frac{\partial C}{\partial W^{(2)}_{1,1}} = 0.5$ is inline.</p>
$$\delta^{(1)}_j = \sigma'\!\left(z^{(1)}_j\right) \sum_k W^{(2)}_{k,j}\, \delta^{(2)}_k$$
<table><tr><th>weight</th><th>gradient</th></tr><tr><td>$W^{(1)}_{1,1}$</td><td>$-0.058$</td></tr></table>
"""


def _classes(dom: str) -> list[str]:
    """Every class token on an element (script/style text is not markup)."""
    found = []

    class P(html.parser.HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.extend((dict(attrs).get("class") or "").split())
    P().feed(dom)
    return found


def _page(tmp_path, body):
    path = tmp_path / "page.html"
    path.write_text(standalone_page("test", body), encoding="utf-8")
    return path


def test_math_renders_and_screenshot(tmp_path):
    svg = network_svg([3, 2, 1], {(0, 0): "x₁=2", (1, 0): "a=0.589"},
                      {(1, 0, 0): "w=0.5 ∂=−0.058"}, ["input", "hidden", "output"])
    path = _page(tmp_path, BODY + svg)
    classes = _classes(chromium_dom(path))
    assert classes.count("katex") == 4  # 1 inline, 1 display, 2 in the table
    assert classes.count("katex-display") == 1
    assert "katex-error" not in classes
    png = tmp_path / "page.png"
    chromium_screenshot(path, png)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1200, 900)
    assert len(data) > 20_000  # a blank 1200x900 page compresses to a few kB


def test_bad_formula_shows_as_error_not_broken_page(tmp_path):
    path = _page(tmp_path, r"<p>bad $\frac{1}$ then good $y^2$</p>")
    classes = _classes(chromium_dom(path))
    assert classes.count("katex-error") == 1
    assert classes.count("katex") == 1  # the good formula after it still rendered
