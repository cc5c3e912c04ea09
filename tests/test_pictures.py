"""Pictures and typesetting (issue 18, items 26–28): HTML tables scroll inside the text column and
their header cells do not wrap; a graph of layers is drawn (boxes, residual edges, feature maps as
heat maps); the seed's drawing keeps edge labels off crossings and explains its edge colours; LaTeX
is typeset by one pdflatex run, with minus signs in its tables. Browser and pdflatex tests skip
when the tool is missing (.ci/run installs both)."""
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from browser import chromium_binary, chromium_dom
from symbackprop import load
from symbackprop.cli import main
from symbackprop.writers import latexdoc
from symbackprop.writers.html import network_svg, standalone_page
from symbackprop.writers.layergraph import heat_color, layer_graph_svg

needs_chromium = pytest.mark.skipif(chromium_binary() is None, reason="no chromium on PATH: bash .ci/install-chromium.sh")
needs_pdflatex = pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no pdflatex: bash .ci/install-tex.sh")

# Measured in the page once KaTeX has run: the text column, every table's box and scroll widths,
# every header cell's height in lines.
MEASURE = """<script>
window.addEventListener("load", function () { setTimeout(function () {
  var main = document.querySelector("main").getBoundingClientRect(), out = {main: main.right, tables: [], th: []};
  document.querySelectorAll("table").forEach(function (t) {
    out.tables.push([t.getBoundingClientRect().right, t.scrollWidth, t.clientWidth]); });
  document.querySelectorAll("th").forEach(function (th) {
    out.th.push(th.getBoundingClientRect().height / parseFloat(getComputedStyle(th).lineHeight)); });
  var pre = document.createElement("pre"); pre.id = "measure"; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre); }, 300); });
</script>"""


def measured(path):
    page = path.read_text(encoding="utf-8").replace("</body>", MEASURE + "</body>")
    probe = path.with_name("probe.html")
    probe.write_text(page, encoding="utf-8")
    dom = chromium_dom(probe)
    text = re.search(r'<pre id="measure">(.*?)</pre>', dom, re.S).group(1)
    return json.loads(text.replace("&quot;", '"').replace("&amp;", "&"))


# ------------------------------------------------------------------------------------ item 26

@needs_chromium
def test_a_wide_table_scrolls_inside_the_column_and_its_corner_does_not_wrap(tmp_path):
    header = "".join(f"<th>$W^{{(2)}}_{{{j},1}}$</th>" for j in range(1, 31))
    row = "".join(f"<td>$-0.{j:05d}$</td>" for j in range(30))
    body = f"<p>text</p><table><tr><th>example n, channel c</th>{header}</tr><tr><td>1</td>{row}</tr></table>"
    path = tmp_path / "page.html"
    path.write_text(standalone_page("t", body), encoding="utf-8")
    m = measured(path)
    (right, scroll, client), = m["tables"]
    assert right <= m["main"] + 1 and scroll > client + 100      # inside the column, and it scrolls
    assert max(m["th"]) < 1.6                                     # every header cell on one line


@needs_chromium
def test_explain_pages_keep_tables_inside_the_column(tmp_path):
    out = tmp_path / "residual.html"
    assert main(["explain", "examples/residual.toml", "--init", "0", "-o", str(out)]) == 0
    m = measured(out)
    assert m["tables"] and all(right <= m["main"] + 1 for right, _, _ in m["tables"])
    assert any(scroll > client + 1 for _, scroll, client in m["tables"])     # (some are wider than the column)
    assert max(m["th"]) < 2.6


def test_layer_graph_boxes_and_residual_edges(tmp_path):
    out = tmp_path / "residual.html"
    assert main(["explain", "examples/residual.toml", "--init", "0", "-o", str(out)]) == 0
    svg = re.search(r'<svg[^>]*class="layer-graph".*?</svg>', out.read_text(), re.S).group(0)
    net = load("examples/residual.toml")
    assert svg.count('class="layer"') == len(net.graph) + 1                    # the input and each layer
    assert svg.count('class="skip"') == sum(layer.kind.name == "add" for layer in net.graph) == 2
    assert "3. add(from=1)" in svg and "output (8)" in svg and "layer 5 also reads layer 3" in svg
    assert 'class="heat-map"' not in svg                                       # vectors: no maps
    assert "http" not in svg.replace("http://www.w3.org/2000/svg", "")         # offline


def test_feature_maps_are_heat_maps_of_example_1(tmp_path):
    out = tmp_path / "cnn.html"
    assert main(["explain", "examples/cnn-exercise.toml", "-o", str(out)]) == 0
    svg = re.search(r'<svg[^>]*class="layer-graph".*?</svg>', out.read_text(), re.S).group(0)
    net = load("examples/cnn-exercise.toml")
    maps = re.findall(r'<g class="heat-map">.*?</g>', svg, re.S)
    # the input's 1 channel, the convolution's 2 and the max-pool's 2 (then flatten and dense: vectors)
    assert len(maps) == 1 + 2 + 2
    x = net.x[0, 0]
    fills = re.findall(r'fill="(#[0-9a-f]{6})"', maps[0])[: x.size]
    scale = np.max(np.abs(x))
    assert fills == [heat_color(v, scale) for v in x.ravel()]
    assert heat_color(scale, scale) in fills or heat_color(-scale, scale) in fills


def test_layer_graph_svg_draws_what_it_is_given():
    maps = {1: [np.arange(6.0).reshape(2, 3) - 2] * 8}
    svg = layer_graph_svg([("input x", "shape (1, 4)"), ("1. conv1d", "output (8, 2, 3)")], [], maps)
    assert svg.count('class="heat-map"') == 6 and "+ 2 more" in svg
    assert heat_color(3.0, 3.0) == "#d62728" and heat_color(-3.0, 3.0) == "#1f77b4" and heat_color(0, 3) == "#ffffff"
    assert heat_color(1.5, 3.0) == "#ea9394"   # half way to red: round(234.5) = 234 (0xea)


# ------------------------------------------------------------------------------------ item 27

def _seed_svg(tmp_path):
    out = tmp_path / "seed.html"
    assert main(["explain", "examples/seed.toml", "-o", str(out)]) == 0
    return re.search(r'<svg[^>]*class="network".*?</svg>', out.read_text(), re.S).group(0)


def _hits(box, segment, steps=400):
    (x0, y0), (x1, y1) = segment
    return any(box[0] < x0 + t * (x1 - x0) < box[2] and box[1] < y0 + t * (y1 - y0) < box[3]
               for t in np.linspace(0, 1, steps))


def test_seed_drawing_keeps_edge_labels_off_other_edges(tmp_path):
    svg = _seed_svg(tmp_path)
    lines = [tuple(map(float, m)) for m in re.findall(
        r'<line x1="([\d.]+)" y1="([\d.]+)" x2="([\d.]+)" y2="([\d.]+)" stroke="#[0-9a-f]{6}" stroke-width="1.3"', svg)]
    labels = re.findall(r'<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)" rx="3" fill="#fff" '
                        r'fill-opacity="0.85"/><text x="[\d.]+" y="[\d.]+" text-anchor="middle" '
                        r'dominant-baseline="central" fill="#[0-9a-f]{6}">w = ', svg)
    assert len(lines) == 8 and len(labels) == 8
    for x, y, w, h in labels:
        box = (float(x), float(y), float(x) + float(w), float(y) + float(h))
        crossing = [l for l in lines if _hits(box, ((l[0], l[1]), (l[2], l[3])))]
        assert len(crossing) == 1, (box, crossing)                 # its own edge only


def test_seed_drawing_has_a_legend_for_its_edge_colours(tmp_path):
    svg = _seed_svg(tmp_path)
    legend = re.search(r'<g class="legend">.*?</g>', svg, re.S).group(0)
    assert "the neuron it leads into" in legend
    colours = dict((name, colour) for colour, name in re.findall(r'h 22" stroke="(#[0-9a-f]{6})" stroke-width="3"/>'
                                                                r'\s*<text[^>]*>(neuron \d)</text>', legend))
    assert set(colours) == {"neuron 1", "neuron 2"}
    into = {}        # the seed's edges into hidden neuron j end at that neuron's y
    for y2, colour in re.findall(r'y2="([\d.]+)" stroke="(#[0-9a-f]{6})" stroke-width="1.3"', svg):
        into.setdefault(y2, set()).add(colour)
    assert sorted(map(frozenset, into.values()), key=sorted) == sorted(
        [frozenset({colours["neuron 1"]}), frozenset({colours["neuron 2"]}), frozenset({colours["neuron 1"]})],
        key=sorted)
    assert "#d62728" not in svg                                    # no red: it reads as "negative"


def test_a_layer_of_one_neuron_needs_no_legend():
    assert 'class="legend"' not in network_svg([2, 1])


# ------------------------------------------------------------------------------------ item 28

@needs_pdflatex
@pytest.mark.parametrize("command, spec", [("explain", "examples/seed-batch.toml"), ("explain", "examples/cnn-exercise.toml"),
                                           ("derive", "examples/seed-batch.toml"), ("derive", "examples/seed.toml")])
def test_one_pdflatex_run_is_enough(tmp_path, command, spec):
    tex = tmp_path / "e.tex"
    assert main([command, spec, "-o", str(tex)]) == 0
    assert "\\begin{tabular}" in tex.read_text() and "longtable}" not in tex.read_text().split("\\begin{document}")[1]
    env = {**os.environ, "SOURCE_DATE_EPOCH": "0", "FORCE_SOURCE_DATE": "1"}
    runs = []
    for _ in range(2):
        proc = subprocess.run(["pdflatex", "-output-format=dvi", "-interaction=nonstopmode", "-halt-on-error", "e.tex"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=180, env=env)
        assert proc.returncode == 0, proc.stdout[-2000:]
        assert "Rerun" not in (tmp_path / "e.log").read_text(errors="replace")
        runs.append((tmp_path / "e.dvi").read_bytes())
    assert runs[0] == runs[1]                                      # the second run changes nothing


def test_table_numbers_get_a_minus_sign():
    text = latexdoc.table(["quantity", "value"], [["$z_1$", "-0.9"], ["$z_2$", "2.5e-07"], ["$z_3$", "0.3"]], "lr")
    assert "$z_1$ & $-0.9$ \\\\" in text and "$2.5 \\times 10^{-7}$" in text and "$z_3$ & 0.3 \\\\" in text
    assert "\\begin{tabular}{lr}" in text
    rows = [[str(i), f"-{i}"] for i in range(95)]
    pieces = latexdoc.table(["n", "m"], rows).split("\n\n")
    assert len(pieces) == 3 and all(p.count("n & m \\\\") == 1 for p in pieces)       # 40, 40, 15 rows
