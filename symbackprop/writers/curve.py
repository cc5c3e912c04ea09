"""Loss curves as SVG text: what a generated trainer's ``--plot`` writes and what ``explain``'s
HTML page draws for ``--steps K``.

Plain Python and the math module only, so that a trainer can embed this source as it is
(:func:`source`, read by :mod:`symbackprop.codegen.trainer`): one drawing, not two. A curve is a list of
series, ``(name, [(x, y), ...])``; each is one polyline, its points in the order given, a point
whose y is not a finite number left out (an epoch without a validation loss, a diverged step).
The y axis is logarithmic when every y is positive and they span more than a factor of 100 (a
training loss usually does), linear otherwise; ticks fall on round numbers.

>>> svg = curve_svg([("training loss", [(1, 0.9), (2, 0.5), (3, 0.4)])], "epoch", "loss")
>>> svg.count("<polyline"), svg.startswith("<svg")
(1, True)
"""
import math

CURVE_SIZE = (640, 360)                 # px, the whole drawing
CURVE_MARGIN = (72, 20, 46, 34)         # px: left, right, bottom, top (the legend sits in the top one)
CURVE_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


def curve_svg(series, x_label="epoch", y_label="loss"):
    """An SVG line chart of ``series`` (``(name, [(x, y), ...])`` pairs): axes with ticks and
    labels, one polyline per series and a legend naming them."""
    series = [(name, [(float(x), float(y)) for x, y in points if math.isfinite(x) and math.isfinite(y)])
              for name, points in series]
    xs = [x for _, points in series for x, _ in points] or [0.0, 1.0]
    ys = [y for _, points in series for _, y in points] or [0.0, 1.0]
    log = min(ys) > 0 and max(ys) > 100 * min(ys)
    width, height = CURVE_SIZE
    left, right, bottom, top = CURVE_MARGIN
    x_ticks = _curve_ticks(min(xs), max(xs), integer=all(x == int(x) for x in xs))
    y_ticks = _curve_log_ticks(min(ys), max(ys)) if log else _curve_ticks(min(ys), max(ys))
    x_lo, x_hi = min(xs + x_ticks), max(xs + x_ticks)
    y_lo, y_hi = min(ys + y_ticks), max(ys + y_ticks)
    scale = math.log10 if log else (lambda v: v)

    def px(x, y):
        u = (x - x_lo) / (x_hi - x_lo) if x_hi > x_lo else 0.5
        v = (scale(y) - scale(y_lo)) / (scale(y_hi) - scale(y_lo)) if y_hi > y_lo else 0.5
        return left + u * (width - left - right), height - bottom - v * (height - top - bottom)

    x0, y0 = px(x_lo, y_lo)
    x1, y1 = px(x_hi, y_hi)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
           f'height="{height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12" class="loss-curve">',
           f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
           f'<path d="M{x0:.1f},{y1:.1f} V{y0:.1f} H{x1:.1f}" fill="none" stroke="black"/>']
    for tick in x_ticks:
        x, _ = px(tick, y_lo)
        out.append(f'<path d="M{x:.1f},{y0:.1f} v5" stroke="black"/>'
                   f'<text x="{x:.1f}" y="{y0 + 18:.1f}" text-anchor="middle">{_curve_number(tick)}</text>')
    for tick in y_ticks:
        _, y = px(x_lo, tick)
        out.append(f'<path d="M{x0:.1f},{y:.1f} h-5" stroke="black"/>'
                   f'<path d="M{x0:.1f},{y:.1f} H{x1:.1f}" stroke="#dddddd"/>'
                   f'<text x="{x0 - 8:.1f}" y="{y + 4:.1f}" text-anchor="end">{_curve_number(tick)}</text>')
    out.append(f'<text x="{(x0 + x1) / 2:.1f}" y="{height - 8}" text-anchor="middle">{_curve_text(x_label)}</text>')
    out.append(f'<text transform="translate(16 {(y0 + y1) / 2:.1f}) rotate(-90)" text-anchor="middle">'
               f'{_curve_text(y_label + (" (log scale)" if log else ""))}</text>')
    legend = x0 + 10
    for k, (name, points) in enumerate(series):
        color = CURVE_COLORS[k % len(CURVE_COLORS)]
        drawn = " ".join("{:.1f},{:.1f}".format(*px(x, y)) for x, y in points)
        out.append(f'<polyline points="{drawn}" fill="none" stroke="{color}" stroke-width="1.5">'
                   f'<title>{_curve_text(name)}</title></polyline>')
        out.append(f'<path d="M{legend:.1f},{top / 2:.1f} h24" stroke="{color}" stroke-width="2"/>'
                   f'<text x="{legend + 30:.1f}" y="{top / 2 + 4:.1f}">{_curve_text(name)}</text>')
        legend += 30 + 7.5 * len(name) + 24
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _curve_ticks(lo, hi, integer=False):
    """About five round numbers (1, 2 or 5 times a power of ten apart) covering [lo, hi]."""
    if hi <= lo:
        lo, hi = (lo - 1, hi + 1) if integer or lo == 0 else (lo - abs(lo) / 2, hi + abs(hi) / 2)
    raw = (hi - lo) / 5
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    if integer:
        step = max(1, round(step))
    first = math.floor(lo / step)
    ticks = [round(k * step, 12) for k in range(first, first + 12) if k * step <= hi + step * 1e-9]
    if ticks[-1] < hi - step * 1e-9:
        ticks.append(round((first + len(ticks)) * step, 12))
    return ticks


def _curve_log_ticks(lo, hi):
    """The powers of ten from the one at or below lo to the one at or above hi."""
    return [10.0 ** k for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]


def _curve_number(value):
    """A tick label: 0.05, 2, 1e-06, 10,000."""
    if value == int(value) and abs(value) < 1e6:
        return f"{int(value):,}"
    return f"{value:g}"


def _curve_text(text):
    """``text`` for an SVG text node (escaped)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def source() -> str:
    """This module's drawing code, as a generated trainer embeds it: everything after the import."""
    with open(__file__, encoding="utf-8") as handle:
        text = handle.read()
    body = text[text.index("\nimport math\n") + len("\nimport math\n"):]
    return body[:body.index("\n\ndef source()")].strip("\n") + "\n"
