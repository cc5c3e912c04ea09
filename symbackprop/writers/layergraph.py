"""An inline SVG drawing of a network given as a graph of layers: one box per layer (its kind and
output shape) from the input down, an arrow from each layer to the next, a curved edge for each
input a layer reads from further back (a residual ``add``), and beside a layer whose output is an
image or a sequence, one small heat map per channel of example 1's values.

A writer: it draws the numbers it is given and computes none of them. Nothing is loaded from the
network; the page stays one offline file.

>>> svg = layer_graph_svg([("input", "(2)"), ("1. dense(units=2)", "(2)"), ("2. add(from=0)", "(2)")],
...                       [(0, 2)])
>>> svg.count('class="layer"'), svg.count('class="skip"')
(3, 1)
"""
import html
import math

import numpy as np

BOX_W, BOX_H, GAP = 300, 40, 26        # px: a layer's narrowest box, its height, the space between boxes
CHAR_W = 7.4                            # px: a bold 12 px glyph, on average (a box fits its title)
LEFT = 70                               # px left of the boxes, where the residual edges bow out
MAPS_SHOWN = 6                          # channels drawn as heat maps; the rest are counted
MAP_PX = 44                             # px: the longer side of one heat map
FONT = 12


def layer_graph_svg(boxes, skips=(), maps=None) -> str:
    """``boxes``: (title, shape text) per box, the input first; each box ``i`` after the first reads
    box ``i - 1`` (an arrow) and, for each ``(s, i)`` in ``skips``, box ``s`` too (a curved edge on
    the left). ``maps[i]``: a list of 2-D arrays, one per channel of box ``i``'s output, drawn as
    heat maps to the right of its box (blue below 0, red above, each map scaled to its largest
    magnitude; at most :data:`MAPS_SHOWN`, then "+ k more")."""
    maps = maps or {}
    box_w = max([BOX_W] + [len(title) * CHAR_W + 16 for title, _ in boxes])
    heights = [max(BOX_H, _maps_height(maps.get(i))) for i in range(len(boxes))]
    tops = [10 + sum(heights[:i]) + GAP * i for i in range(len(boxes))]
    mids = [t + h / 2 for t, h in zip(tops, heights)]
    widest = max([_maps_width(m) for m in maps.values()] + [0])
    width = LEFT + box_w + (24 + widest if widest else 0) + 10
    height = tops[-1] + heights[-1] + 10
    parts = [_defs()]
    for i in range(1, len(boxes)):         # the chain: each box reads the one above it
        parts.append(f'<line class="next" x1="{LEFT + box_w / 2}" y1="{mids[i - 1] + BOX_H / 2:.1f}" '
                     f'x2="{LEFT + box_w / 2}" y2="{mids[i] - BOX_H / 2 - 2:.1f}" stroke="#555" '
                     'stroke-width="1.4" marker-end="url(#arrow)"/>')
    for k, (s, i) in enumerate(skips):     # residual edges, bowing further left one after another
        bow = LEFT - 18 - 14 * (k % 3)
        y0, y1 = mids[s], mids[i]
        parts.append(f'<g><title>layer {i} also reads {"the input" if s == 0 else f"layer {s}"}</title>'
                     f'<path class="skip" d="M {LEFT} {y0:.1f} C {LEFT - bow:.1f} {y0:.1f}, {LEFT - bow:.1f} '
                     f'{y1:.1f}, {LEFT - 2} {y1:.1f}" fill="none" stroke="#d62728" stroke-width="1.4" '
                     'marker-end="url(#arrow-red)"/></g>')
    for i, (title, shape) in enumerate(boxes):
        y = mids[i] - BOX_H / 2
        parts.append(f'<rect class="layer" x="{LEFT}" y="{y:.1f}" width="{box_w:.0f}" height="{BOX_H}" rx="5" '
                     'fill="#f4f4f4" stroke="#333" stroke-width="1.2"/>')
        parts.append(_text(LEFT + 8, y + 15, title, weight="bold"))
        parts.append(_text(LEFT + 8, y + 31, shape))
        if maps.get(i):
            parts.append(_heat_maps(maps[i], LEFT + box_w + 24, tops[i] + (heights[i] - _maps_height(maps[i])) / 2))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
            f'height="{height:.0f}" font-size="{FONT}" font-family="DejaVu Sans, Arial, sans-serif" '
            'class="layer-graph" role="img">\n' + "\n".join(parts) + "\n</svg>")


def heat_color(value: float, scale: float) -> str:
    """White at 0, red toward +scale, blue toward -scale.

    >>> heat_color(1.0, 1.0), heat_color(-1.0, 1.0), heat_color(0.0, 1.0)
    ('#d62728', '#1f77b4', '#ffffff')
    """
    t = 0.0 if scale == 0 else max(-1.0, min(1.0, value / scale))
    end = (0xd6, 0x27, 0x28) if t > 0 else (0x1f, 0x77, 0xb4)
    return "#" + "".join(f"{round(255 + (c - 255) * abs(t)):02x}" for c in end)


def _cell(shape) -> float:
    return max(2.0, min(12.0, MAP_PX / max(shape)))


def _maps_width(arrays) -> float:
    if not arrays:
        return 0
    shown = arrays[:MAPS_SHOWN]
    return sum(_slot(a) for a in shown) + (60 if len(arrays) > MAPS_SHOWN else 0)


def _slot(a) -> float:
    """The width one heat map takes, its label ("ch 12") included."""
    return max(_cell(a.shape) * a.shape[1], 34) + 8


def _maps_height(arrays) -> float:
    return max((_cell(a.shape) * a.shape[0] for a in arrays[:MAPS_SHOWN]), default=0) + 16 if arrays else 0


def _heat_maps(arrays, x: float, y: float) -> str:
    out = []
    for c, a in enumerate(arrays[:MAPS_SHOWN]):
        a = np.atleast_2d(np.asarray(a, dtype=np.float64))
        size, scale = _cell(a.shape), float(np.max(np.abs(a))) if a.size else 0.0
        cells = "".join(f'<rect x="{x + j * size:.1f}" y="{y + i * size:.1f}" width="{size:.1f}" '
                        f'height="{size:.1f}" fill="{heat_color(v, scale)}"/>'
                        for (i, j), v in np.ndenumerate(a))
        low, high = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
        out.append(f'<g class="heat-map"><title>channel {c + 1}: {a.shape[0]}×{a.shape[1]}, values from '
                   f'{_g(low)} to {_g(high)}</title>{cells}'
                   f'<rect x="{x:.1f}" y="{y:.1f}" width="{size * a.shape[1]:.1f}" height="{size * a.shape[0]:.1f}" '
                   'fill="none" stroke="#999" stroke-width="0.6"/></g>')
        out.append(_text(x, y + size * a.shape[0] + 11, f"ch {c + 1}", size=10))
        x += _slot(a)
    if len(arrays) > MAPS_SHOWN:
        out.append(_text(x, y + 10, f"+ {len(arrays) - MAPS_SHOWN} more", size=10))
    return "\n".join(out)


def _g(v: float) -> str:
    return f"{v:.3g}".replace("-", "−") if math.isfinite(v) else str(v)


def _text(x, y, text, weight=None, size=None) -> str:
    extra = (f' font-weight="{weight}"' if weight else "") + (f' font-size="{size}"' if size else "")
    return f'<text x="{x:.1f}" y="{y:.1f}"{extra}>{html.escape(text)}</text>'


def _defs() -> str:
    head = ('<marker id="{id}" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="7" markerHeight="7" '
            'orient="auto-start-reverse"><path d="M 0 0 L 8 4 L 0 8 z" fill="{fill}"/></marker>')
    return ("<defs>" + head.format(id="arrow", fill="#555") + head.format(id="arrow-red", fill="#d62728")
            + "</defs>")
