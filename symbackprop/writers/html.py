"""Offline HTML output: a standalone page that renders TeX math with the
vendored KaTeX, and an inline SVG drawing of a fully-connected network.

Everything the page needs (KaTeX's CSS, fonts, JS) is inlined, so the single
file opens offline; nothing is loaded from the network at view time.
"""

import base64
import functools
import html
import importlib.resources
import re

__all__ = ["standalone_page", "network_svg"]

_PAGE_CSS = """
body { margin: 0; background: #fff; color: #222;
  font: 17px/1.55 Georgia, "DejaVu Serif", serif; }
main { max-width: 52rem; margin: 0 auto; padding: 1.5rem 1.25rem 4rem; }
h1, h2, h3 { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; line-height: 1.25; }
/* A table wider than the text column scrolls inside it (display: block lets it), rather than
   overflowing the page or squeezing its columns until header cells wrap word by word. */
table { border-collapse: collapse; margin: 1rem 0; display: block; max-width: 100%; overflow-x: auto; }
th, td { border: 1px solid #999; padding: .3rem .6rem; text-align: left; vertical-align: top; }
th { background: #f0f0f0; white-space: nowrap; }
code, pre { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: .9em; }
pre { background: #f6f6f6; padding: .75rem; overflow-x: auto; }
.katex-display { overflow-x: auto; overflow-y: hidden; padding: .2rem 0; }
svg { max-width: 100%; height: auto; }
/* A wide network drawing may use the whole window, centred, not just the
   text column, so that its labels stay legible. */
svg.network { display: block; max-width: calc(100vw - 3rem);
  margin: 1rem 0 1rem 50%; transform: translateX(-50%); }
"""

# Delimiter order matters: "$$" must come before "$". svg is skipped because
# KaTeX's HTML spans cannot live inside SVG <text>; class "no-math" lets a
# caller protect a literal "$" in prose.
_RENDER_JS = """
document.addEventListener("DOMContentLoaded", function () {
  renderMathInElement(document.body, {
    delimiters: [
      {left: "$$", right: "$$", display: true},
      {left: "$", right: "$", display: false},
      {left: "\\\\[", right: "\\\\]", display: true},
      {left: "\\\\(", right: "\\\\)", display: false}
    ],
    ignoredTags: ["script", "noscript", "style", "textarea", "pre", "code", "option", "svg"],
    ignoredClasses: ["no-math"],
    throwOnError: false
  });
});
"""


def _katex_file(*parts: str) -> bytes:
    path = importlib.resources.files("symbackprop") / "static" / "katex"
    for part in parts:  # one step at a time: Python 3.11's joinpath takes one
        path = path / part
    return path.read_bytes()


@functools.lru_cache(maxsize=None)
def _katex_css() -> str:
    """KaTeX's CSS with each @font-face source replaced by the woff2 as a data: URI.

    KaTeX lists woff2, woff and ttf per face; every browser that runs KaTeX
    reads woff2, so we vendor and embed only those to keep pages small.
    """
    css = _katex_file("katex.min.css").decode("utf-8")

    def embed(m: re.Match) -> str:
        data = base64.b64encode(_katex_file("fonts", m.group(1) + ".woff2")).decode("ascii")
        return f'url(data:font/woff2;base64,{data}) format("woff2")'

    css = re.sub(r'url\(fonts/([\w-]+)\.woff2\) format\("woff2"\)'
                 r'(?:,url\(fonts/[^)]*\) format\("[^"]*"\))*', embed, css)
    assert "url(fonts/" not in css, "a KaTeX font was not embedded"
    return css


@functools.lru_cache(maxsize=None)
def _katex_js() -> str:
    js = _katex_file("katex.min.js") + b"\n" + _katex_file("contrib", "auto-render.min.js")
    # A literal "</script" would end the inline <script> element early.
    return js.decode("utf-8").replace("</script", "<\\/script")


def standalone_page(title: str, body_html: str) -> str:
    """A complete HTML5 page: body_html (trusted HTML) with $...$ / $$...$$ math
    rendered by the inlined KaTeX when the page loads. The title is escaped."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{html.escape(title)}</title>\n"
        f"<style>\n{_katex_css()}\n</style>\n<style>{_PAGE_CSS}</style>\n"
        f"<script>\n{_katex_js()}\n</script>\n<script>{_RENDER_JS}</script>\n"
        f"</head>\n<body>\n<main>\n{body_html}\n</main>\n</body>\n</html>\n"
    )


# ---- network drawing -------------------------------------------------------

_R = 16            # node radius
_ROW = 78          # vertical distance between nodes of one layer
_FONT = 12         # label font size (px)
_CHAR_W = 0.66     # estimated glyph width, as a fraction of the font size
_MAX_SHOWN = 12    # wider layers are drawn as the first few nodes, "⋮", the last
_HEAD = 4
_MAX_GAP = 560     # px: a gap whose edge labels need more is drawn without them (hover for them):
                   # the seed's 3-2-1 gaps take 502 px with their labels, a 4-8-8-3 net's 879-1768
# An edge's colour says which neuron it leads into (the legend says so); no red, which reads as "negative"
_COLORS = ["#1f77b4", "#e07b00", "#2ca02c", "#9467bd", "#8c564b", "#17becf"]


def _shown(n: int) -> list:
    """Indices of the drawn nodes of a layer of n; None marks the ellipsis row."""
    return list(range(n)) if n <= _MAX_SHOWN else [*range(_HEAD), None, n - 1]


def _box(cx: float, cy: float, text: str) -> tuple:
    w, h = len(text) * _FONT * _CHAR_W + 4, _FONT + 4
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def _overlap(a: tuple, b: tuple) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def _text(x: float, y: float, text: str, anchor: str = "middle", **attrs: str) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" '
            f'dominant-baseline="central"{extra}>{html.escape(text)}</text>')


def network_svg(layers: list[int],
                node_labels: dict[tuple[int, int], str] | None = None,
                edge_labels: dict[tuple[int, int, int], str] | None = None,
                layer_titles: list[str] | None = None,
                bias_labels: dict[tuple[int, int], str] | None = None,
                node_titles: dict[tuple[int, int], str] | None = None) -> str:
    """Inline SVG of a fully-connected net; layer 0 is the input.

    node_labels[(l, j)] labels node j of layer l; edge_labels[(l, j, k)] labels
    the edge from node k of layer l-1 to node j of layer l; bias_labels[(l, j)]
    is written under node j of layer l. Edges into the same node share a colour
    with their labels, so a label can be traced to its edge. Every label is also
    the <title> (tooltip) of its edge or node, with node_titles[(l, j)] for more.
    Layers wider than 12 nodes are drawn as their first 4 nodes, "⋮", the last;
    a gap whose edge labels would need more than 560 px keeps them only as
    tooltips, so that large layers stay readable at the page's width.
    """
    node_labels, edge_labels = node_labels or {}, edge_labels or {}
    bias_labels, node_titles = bias_labels or {}, node_titles or {}
    shown = [_shown(n) for n in layers]
    widest = max(len(rows) for rows in shown)
    top = 40 if layer_titles else 14
    row = _ROW + (14 if bias_labels else 0)
    ys = [[top + row * (r + 0.5 + (widest - len(rows)) / 2) for r in range(len(rows))]
          for rows in shown]
    side = max([len(t) for t in node_labels.values()] + [4]) * _FONT * _CHAR_W + _R + 14
    xs = [side]
    extra = (bias_labels, node_titles)
    nodes, taken = _layer(0, layers, shown[0], side, ys[0], node_labels, *extra)
    lines, labels = [], []
    for l in range(1, len(layers)):
        gap = _gap(l, shown, edge_labels)
        # Widen the gap until its edge labels fit without overlapping anything;
        # after a bounded number of tries, settle for the least overlap; past
        # _MAX_GAP, draw the edges bare (their labels stay as tooltips).
        # Start with room for two labels side by side: fewer tries, less crowding.
        # Labels go off other edges' crossings where some width allows it, else (first tier
        # failing) off other labels and nodes only.
        start = max(170.0, 2 * _R + 2.2 * max(
            [len(g[3]) * _FONT * _CHAR_W for g in gap if g[3]] + [0]))
        placed = None
        for avoid_edges, tries in ((True, [True] * 14), (False, [True] * 14 + [False])):
            width = start
            for strict in tries:
                if width > _MAX_GAP:
                    break
                n, boxes = _layer(l, layers, shown[l], xs[-1] + width, ys[l], node_labels, *extra)
                placed = _place_gap(gap, (xs[-1], xs[-1] + width), ys[l - 1:l + 1],
                                    taken + boxes, strict, avoid_edges)
                if placed is not None:
                    break
                width *= 1.15
            if placed is not None:
                break
        if placed is None:
            width = 170.0
            n, boxes = _layer(l, layers, shown[l], xs[-1] + width, ys[l], node_labels, *extra)
            placed = _place_gap([g[:3] + (None,) for g in gap], (xs[-1], xs[-1] + width),
                                ys[l - 1:l + 1], taken + boxes, False)
        xs.append(xs[-1] + width)
        nodes += n
        taken += boxes + [p[2] for p in placed if p[2]]
        for (x0, y0, x1, y1, color), (text, cx, cy), box, g in zip(*zip(*placed), gap):
            lines.append(_titled(f'<line x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" '
                                 f'y2="{y1:.1f}" stroke="{color}" stroke-width="1.3"/>', g[3]))
            if text is not None:
                labels.append(_backing(box) + _text(cx, cy, text, fill=color))
    titles = [_text(xs[l], 18, t, font_style="italic")
              for l, t in enumerate((layer_titles or [])[:len(layers)])]
    circles = [s for s in nodes if "<circle" in s]
    texts = [s for s in nodes if "<circle" not in s]
    width, height = xs[-1] + side, top + row * widest + 10
    targets = max(len([j for j in rows if j is not None]) for rows in shown[1:]) if len(layers) > 1 else 0
    legend = _legend(min(targets, len(_COLORS)), height + 6) if targets > 1 else []
    height += 28 if legend else 0
    # Painted in order: lines, then nodes over them, then all text on top.
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
            f'width="{width:.0f}" height="{height:.0f}" font-size="{_FONT}" '
            f'font-family="DejaVu Sans, Arial, sans-serif" class="network" role="img">\n'
            + "\n".join(lines + circles + texts + titles + labels + legend) + "\n</svg>")


def _legend(count: int, y: float) -> list:
    """What the edge colours mean: the neuron of the next layer an edge leads into."""
    head = "Edge colour: the neuron it leads into, in the layer on its right —"
    parts = ['<g class="legend">', _text(14, y + 8, head, "start", font_style="italic")]
    x = 14 + len(head) * _FONT * 0.52 + 12    # (italic glyphs are narrower than _CHAR_W)
    for j in range(count):
        parts.append(f'<path class="swatch" d="M {x:.1f} {y + 8:.1f} h 22" stroke="{_COLORS[j]}" stroke-width="3"/>')
        parts.append(_text(x + 27, y + 8, f"neuron {j + 1}", "start", fill=_COLORS[j]))
        x += 27 + 9 * _FONT * _CHAR_W
    return parts + ["</g>"]


def _layer(l: int, layers: list, rows: list, x: float, ys: list, node_labels: dict,
           bias_labels: dict | None = None, node_titles: dict | None = None) -> tuple:
    """SVG parts of one column of nodes, and the boxes they cover."""
    parts, boxes, last = [], [], len(layers) - 1
    bias_labels, node_titles = bias_labels or {}, node_titles or {}
    for j, y in zip(rows, ys):
        boxes.append((x - _R, y - _R, x + _R, y + _R))
        if j is None:
            parts.append(_text(x, y, f"⋮ {layers[l]} nodes", font_size="14"))
            continue
        text = node_labels.get((l, j))
        tip = "\n".join(t for t in (text, bias_labels.get((l, j)), node_titles.get((l, j))) if t)
        parts.append(_titled(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{_R}" '
                             f'fill="#fff" stroke="#333" stroke-width="1.6"/>', tip))
        bias = bias_labels.get((l, j))
        if bias is not None:  # under the node, where no edge label is placed
            boxes.append(_box(x, y + _R + 10, bias))
            parts.append(_backing(boxes[-1]) + _text(x, y + _R + 10, bias, font_style="italic"))
        if text is None:
            continue
        # Inputs are labelled on their left, outputs on their right, hidden
        # nodes above: places where no edge runs.
        w = len(text) * _FONT * _CHAR_W
        if l == 0 and last > 0:
            lx, ly, anchor, cx = x - _R - 6, y, "end", x - _R - 6 - w / 2
        elif l == last:
            lx, ly, anchor, cx = x + _R + 6, y, "start", x + _R + 6 + w / 2
        else:
            lx, ly, anchor, cx = x, y - _R - 10, "middle", x
        boxes.append(_box(cx, ly, text))
        parts.append(_backing(boxes[-1]) + _text(lx, ly, text, anchor, font_weight="bold"))
    return parts, boxes


def _titled(element: str, title: str | None) -> str:
    """``element`` with a tooltip: in a group whose <title> the browser shows on hover."""
    return f"<g><title>{html.escape(title)}</title>{element}</g>" if title else element


def _gap(l: int, shown: list, edge_labels: dict) -> list:
    """The drawn edges into layer l: (source row, target row, target j, label)."""
    return [(s, r, j, edge_labels.get((l, j, k)))
            for r, j in enumerate(shown[l]) if j is not None
            for s, k in enumerate(shown[l - 1]) if k is not None]


def _place_gap(gap: list, xs: tuple, ys: list, taken: list, strict: bool,
               avoid_edges: bool = False) -> list | None:
    """Each edge's line and its label's spot, or None if strict and some label
    has no spot free of overlap (and, with ``avoid_edges``, off every other edge).

    A label goes on its edge at the free spot nearest its target's preferred
    stretch of the gap (or, failing that and not strict, where it overlaps least).
    """
    widest = max([len(g[3] or "") for g in gap] + [0]) * _FONT * _CHAR_W
    # Only boxes that reach into this gap can collide with its labels.
    taken = [o for o in taken if o[2] > xs[0] - widest and o[0] < xs[1] + widest]
    placed = []
    segments = [((xs[0], ys[0][s]), (xs[1], ys[1][r])) for s, r, _, _ in gap]
    for e, (s, r, j, text) in enumerate(gap):
        a, b = segments[e]
        others = segments[:e] + segments[e + 1:]
        line = (*a, *b, _COLORS[j % len(_COLORS)])
        if text is None:
            placed.append((line, (None, 0, 0), None))
            continue
        # Each target node prefers its own stretch of the gap, spreading labels.
        pref = 0.25 + 0.5 * (r + 0.5) / len(ys[1])
        spots = [(a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])) for t in
                 sorted((i / 80 for i in range(10, 71)), key=lambda t: abs(t - pref))]
        spots = [(cx, cy, _box(cx, cy, text)) for cx, cy in spots]
        # A free spot overlaps no other label or node and (avoid_edges) crosses no other edge: a label
        # on a crossing would read as the other edge's, and its white backing would cut that edge.
        cost = lambda sp: (sum(_overlap(sp[2], o) for o in taken)                  # noqa: E731
                           + (1000 * sum(_crosses(sp[2], seg) for seg in others) if avoid_edges else 0))
        spot = next((sp for sp in spots if cost(sp) == 0), None)
        if spot is None:
            if strict:
                return None
            spot = min(spots, key=cost)
        cx, cy, box = spot
        taken.append(box)
        placed.append((line, (text, cx, cy), box))
    return placed


def _crosses(box: tuple, segment) -> bool:
    """Whether the line ``segment`` ((x0, y0), (x1, y1)) passes through ``box`` (Liang-Barsky clipping)."""
    (x0, y0), (x1, y1) = segment
    dx, dy, low, high = x1 - x0, y1 - y0, 0.0, 1.0
    for p, q in ((-dx, x0 - box[0]), (dx, box[2] - x0), (-dy, y0 - box[1]), (dy, box[3] - y0)):
        if p == 0:
            if q < 0:
                return False
            continue
        t = q / p
        if p < 0:
            low = max(low, t)
        else:
            high = min(high, t)
        if low > high:
            return False
    return True


def _backing(box: tuple) -> str:
    """A white patch behind a label, so lines crossing it do not hide the text."""
    return (f'<rect x="{box[0]:.1f}" y="{box[1]:.1f}" width="{box[2] - box[0]:.1f}" '
            f'height="{box[3] - box[1]:.1f}" rx="3" fill="#fff" fill-opacity="0.85"/>')
