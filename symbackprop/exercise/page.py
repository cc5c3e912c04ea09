"""The interactive worksheet: one offline HTML page that judges each number as it is typed.

:func:`render` writes a page with the numbers given (the spec's parameters, sample and optimizer)
and an input box for every element of every asked quantity. As the person types, the page judges
every number the way ``symbackprop check`` would judge a hand file holding the same numbers — ``ok``,
``wrong`` (with the catalogued mistake that reproduces it) or ``carried`` — with the judging data
that :mod:`.judging` generates from check's own graph, the interval rules of
``symbackprop/static/intervals.js`` and check's procedure in ``symbackprop/static/judge.js``. A
box's expected value shows only when asked ("show"). "Export" downloads what was typed as a hand
file for ``check``. KaTeX is inlined as in every HTML output; nothing is fetched.

>>> from symbackprop.spec.network import Network
>>> net = Network.from_dict({"network": {"layers": [1, 1], "activations": ["sigmoid"],
...     "loss": "squared_error"}, "parameters": {"W1": [[0.5]], "b1": [0.0]},
...     "sample": {"x": [2], "y": [1]}})
>>> page = render(net, ["z1", "a1", "loss"], title="one neuron")
>>> page.count('class="box"'), "Judge(DATA, FORMULAS)" in page
(3, True)
"""
import html
import importlib.resources

import numpy as np

from ..check.hand import Hand
from ..check.judge import conventions
from ..errors import SpecError
from ..writers.html import standalone_page
from .judging import as_script, judging

MAX_PAGE_BYTES = 12_000_000     # one page, KaTeX included: a browser opens it at once

_CSS = """
.quantity { margin: 1.2rem 0; }
.quantity h3 { margin: 0 0 .3rem; font-size: 1rem; }
.grid td { border: none; padding: .15rem .4rem .15rem 0; }
.box { display: inline-flex; align-items: center; gap: .25rem; white-space: nowrap; }
.box input { width: 7.5em; font: inherit; font-size: .95em; padding: .1rem .25rem; border: 1px solid #999; }
.box.ok input { border-color: #2a7; background: #eefaf3; }
.box.wrong input { border-color: #c60; background: #fff3e6; }
.box.carried input { border-color: #57a; background: #eef3fb; }
.box.invalid input { border-color: #a00; }
.box .verdict { font: 13px "DejaVu Sans", Helvetica, Arial, sans-serif; white-space: normal; max-width: 22em; }
.box .show { font-size: 11px; padding: 0 .3rem; }
.box .answer { font-family: "DejaVu Sans Mono", monospace; font-size: 13px; color: #555; }
.summary { position: sticky; bottom: 0; background: #fff; border-top: 1px solid #ccc; padding: .5rem 0;
  font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; font-size: 15px; }
"""


def _static(name: str) -> str:
    return (importlib.resources.files("symbackprop") / "static" / name).read_text(encoding="utf-8")


def _number(v: float) -> str:
    return f"{float(v):.10g}"


def _index(idx) -> str:
    return "".join(f"[{i + 1}]" for i in idx)


def _array_table(name: str, values) -> str:
    values = np.atleast_1d(np.asarray(values, float))
    rows = values.reshape(-1, values.shape[-1])
    body = "".join("<tr>" + "".join(f"<td>{_number(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<tr><th><code>{html.escape(name)}</code></th><td><table class=\"grid\">{body}</table></td></tr>"


def _given(network) -> str:
    """The numbers the exercise gives: parameters, sample, optimizer settings."""
    rows = [_array_table(name, value) for name, value in network.parameters.items()]
    rows += [_array_table("x", network.x if network.batched else network.x[0]),
             _array_table("y", network.y if network.batched else network.y[0])]
    rows += [_array_table(name, mask) for name, mask in (network.masks or {}).items()]
    out = "<h2>Given</h2>\n<table>" + "".join(rows) + "</table>\n"
    if network.optimizer:
        settings = ", ".join(f"{k} = {html.escape(str(v))}" for k, v in network.optimizer.items())
        out += f"<p>Optimizer: <code>{settings}</code> (one step from zero state, t = 1).</p>\n"
    return out


def _box(name: str, idx, node: int) -> str:
    key = html.escape(f"{name}{_index(idx)}")
    return (f'<span class="box" data-node="{node}" data-key="{key}"><input type="text" inputmode="decimal" '
            f'autocomplete="off" spellcheck="false" aria-label="{key}"><span class="verdict"></span>'
            f'<button type="button" class="show" title="show the answer">show</button>'
            f'<span class="answer"></span></span>')


def _quantity(name: str, shape: tuple, elements: list) -> str:
    """One asked quantity: its boxes in its shape (rows and columns; leading axes as captions)."""
    shown = "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"
    head = f'<div class="quantity" data-quantity="{html.escape(name)}" data-shape="{list(shape)}"><h3><code>{html.escape(name)}</code> ' \
           f'<small>shape {shown}</small></h3>\n'
    boxes = {idx: _box(name, idx, node) for idx, node in elements}
    if len(shape) <= 1:
        return head + "<table class=\"grid\"><tr>" + "".join(f"<td>{b}</td>" for b in boxes.values()) + "</tr></table></div>\n"
    parts = []
    for lead in np.ndindex(*shape[:-2]):
        rows = "".join("<tr>" + "".join(f"<td>{boxes[(*lead, r, c)]}</td>" for c in range(shape[-1])) + "</tr>"
                       for r in range(shape[-2]))
        caption = f"<caption><code>{html.escape(name)}{_index(lead)}</code></caption>" if lead else ""
        parts.append(f"<table class=\"grid\">{caption}{rows}</table>")
    return head + "".join(parts) + "</div>\n"


def render(network, asked: list[str], *, title: str) -> str:
    """One self-contained HTML page: the worksheet for ``asked`` (quantity names as hand files and
    ``check`` write them, in computing order) on ``network`` (with its parameters and sample)."""
    data, code, quantities = judging(network, asked)
    body = [f"<style>{_CSS}</style>", f"<h1>{html.escape(title)}</h1>",
            "<p>Type each number as you work it out. Each is judged as you type, the way "
            "<code>symbackprop check</code> judges a hand file: <b>ok</b>, <b>wrong</b> (with the likely "
            "mistake where a catalogued one reproduces it) or <b>carried</b> (wrong only because it follows "
            "from your own earlier numbers). The digits you write count: 0.29 stands for any value from "
            "0.285 to 0.295. <i>show</i> reveals one expected value.</p>", _given(network), "<h2>Find</h2>"]
    lines = conventions(network, Hand({(name, ()): None for name in asked}, {}))
    if lines:
        body.append("<p>The numbers are checked with these conventions:</p><ul>"
                    + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>")
    body += [_quantity(name, shape, elements) for name, shape, elements in quantities]
    body.append('<div class="summary"><span id="counts">nothing typed yet</span> · '
                '<a id="export" download="hand.toml" href="#">export as a hand file (TOML)</a></div>')
    scripts = [as_script(data, code), _static("intervals.js"), _static("judge.js"), _static("worksheet.js")]
    body += [f"<script>\n{s.replace('</', '<' + chr(92) + '/')}\n</script>" for s in scripts]
    page = standalone_page(title, "\n".join(body))
    if len(page.encode()) > MAX_PAGE_BYTES:
        raise SpecError(network.source, f"the interactive worksheet would be {len(page.encode()):,} bytes; "
                                        f"at most {MAX_PAGE_BYTES:,} (ask for fewer quantities, or a smaller network)")
    return page
