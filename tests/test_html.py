"""symbackprop.writers.html: the standalone page is self-contained and escaped; the
network SVG parses and has one circle per node and one line per edge."""

import html.parser
import re
import xml.etree.ElementTree as ET

from symbackprop.writers.html import network_svg, standalone_page

SVG = "{http://www.w3.org/2000/svg}"


class _Tags(html.parser.HTMLParser):
    """Collects start tags and checks that every non-void element is closed."""
    VOID = {"meta", "link", "br", "img", "hr", "input", "circle", "line", "rect"}

    def __init__(self):
        super().__init__()
        self.tags, self.open = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()


def _parse(page: str) -> _Tags:
    p = _Tags()
    p.feed(page)
    p.close()
    assert p.open == [], f"unclosed: {p.open}"
    return p


def test_page_is_well_formed_and_self_contained():
    page = standalone_page("Gradients", "<p>$x^2$ and $$\\frac{a}{b}$$</p>" + network_svg([2, 1]))
    assert page.startswith("<!DOCTYPE html>")
    tags = _parse(page).tags
    names = [t for t, _ in tags]
    assert names[:2] == ["html", "head"] and "body" in names
    assert names.count("title") == 1 and names.count("script") >= 2
    # Nothing is fetched: no src/href attribute at all, no remote CSS url()/@import.
    assert [(t, a) for t, a in tags if "src" in a or "href" in a] == []
    assert not re.search(r"""url\(\s*['"]?(https?:|//)""", page)
    assert "@import" not in page
    assert "url(fonts/" not in page and page.count("data:font/woff2;base64,") == 20
    assert "throwOnError: false" in page


def test_page_escapes_title_and_keeps_body():
    page = standalone_page('<script>alert("x")</script> & co', "<p id='b'>body</p>")
    assert "<title>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co</title>" in page
    assert "<p id='b'>body</p>" in page
    assert page.count("</script>") == 2  # only the two real script elements


def test_svg_counts_for_3_2_1():
    root = ET.fromstring(network_svg([3, 2, 1]))
    assert root.tag == SVG + "svg"
    assert len(list(root.iter(SVG + "circle"))) == 6
    assert len(list(root.iter(SVG + "line"))) == 3 * 2 + 2 * 1


def test_svg_labels_are_escaped_and_all_drawn():
    nodes = {(0, 0): "<script>", (1, 1): "a=0.589", (2, 0): "x & y"}
    edges = {(l, j, k): f"w={l}{j}{k} ∂=−0.058"
             for l, (m, n) in enumerate([(3, 2), (2, 1)], 1) for j in range(n) for k in range(m)}
    edges[(1, 0, 0)] = '<b>"w"</b>'
    svg = network_svg([3, 2, 1], nodes, edges, ["input", "<hidden>", "output"])
    assert "<script>" not in svg and "<b>" not in svg and "<hidden>" not in svg
    texts = [t.text for t in ET.fromstring(svg).iter(SVG + "text")]
    assert {"<script>", "a=0.589", "x & y", '<b>"w"</b>', "<hidden>"} <= set(texts)
    assert set(edges.values()) <= set(texts)


def _boxes(svg):
    return [tuple(float(r.get(k)) for k in ("x", "y", "width", "height"))
            for r in ET.fromstring(svg).iter(SVG + "rect")]


def test_edge_labels_do_not_overlap_for_small_nets():
    for layers in ([3, 2, 1], [4, 4, 2], [6, 6]):
        edges = {(l, j, k): f"w={l}{j}{k} ∂=−0.058" for l in range(1, len(layers))
                 for j in range(layers[l]) for k in range(layers[l - 1])}
        svg = network_svg(layers, None, edges)
        root = ET.fromstring(svg)
        legend = {t.text for g in root.iter(SVG + "g") if g.get("class") == "legend" for t in g.iter(SVG + "text")}
        drawn = [t.text for t in root.iter(SVG + "text") if t.text not in legend]
        # every label is drawn on its edge, or (a crowded gap) kept as the edge's tooltip
        assert set(edges.values()) == set(drawn) | {t.text for t in root.iter(SVG + "title")}
        assert layers != [3, 2, 1] or set(drawn) == set(edges.values())
        boxes = _boxes(svg)  # one backing rect per drawn label
        assert len(boxes) == len(drawn)
        for i, (x, y, w, h) in enumerate(boxes):
            for (x2, y2, w2, h2) in boxes[:i]:
                assert x + w <= x2 or x2 + w2 <= x or y + h <= y2 or y2 + h2 <= y, layers


def test_wide_layer_is_truncated_with_ellipsis():
    svg = network_svg([20, 3], {(0, 19): "x20"})
    root = ET.fromstring(svg)
    assert len(list(root.iter(SVG + "circle"))) == 5 + 3  # first 4, the last, then 3
    assert len(list(root.iter(SVG + "line"))) == 5 * 3
    texts = [t.text for t in root.iter(SVG + "text")]
    assert "x20" in texts and any("⋮" in t and "20" in t for t in texts)


def test_a_4_8_8_3_net_stays_readable_and_shows_its_biases():
    layers = [4, 8, 8, 3]
    edges = {(l, j, k): f"w = −0.12345, g = −0.012345 ({l}{j}{k})" for l in range(1, 4)
             for j in range(layers[l]) for k in range(layers[l - 1])}
    nodes = {(l, j): f"a = 0.{l}{j}345" for l in range(4) for j in range(layers[l])}
    biases = {(l, j): f"b = −0.{l}{j}" for l in range(1, 4) for j in range(layers[l])}
    svg = network_svg(layers, nodes, edges, ["input", "h1", "h2", "out"], biases)
    root = ET.fromstring(svg)
    width = float(root.get("width"))
    # 3,683 px before: scaled to a 52rem page its 12 px labels were 4 px; now drawn at most
    # ~900 px wide, so at the page's width the labels keep at least 11 px
    assert width <= 900 and float(root.get("font-size")) * min(1.0, 832 / width) >= 11
    titles = [t.text for t in root.iter(SVG + "title")]
    assert set(edges.values()) <= set(titles)                    # every weight and gradient on hover
    texts = [t.text for t in root.iter(SVG + "text")]
    assert set(biases.values()) <= set(texts) and set(nodes.values()) <= set(texts)
    assert any("b = −0.11" in t for t in titles)                 # and in the node's tooltip
