"""The document model (:mod:`.document`) as plain text for a terminal: headings underlined, prose
wrapped with its math as text (``$\\partial C/\\partial W^{(2)}$`` -> ``∂C/∂W⁽²⁾``), displays one
statement a line, tables in aligned columns. Figures are left out, as Markdown and LaTeX leave them.

>>> from symbackprop.writers.document import Heading, Para, Display, Table
>>> print(to_text([Heading(2, "1. Forward"), Para("Then $a^{(1)} = \\\\sigma(z^{(1)})$:"),
...                Display(("a^{(1)}_{1} &= \\\\sigma(0.5) \\\\approx 0.62246",)),
...                Table(("", "$x_{1}$"), (("value", "$2$"),))]), end="")
1. Forward
----------
<BLANKLINE>
Then a⁽¹⁾ = σ(z⁽¹⁾):
<BLANKLINE>
    a⁽¹⁾_1 = σ(0.5) ≈ 0.62246
<BLANKLINE>
         x_1
  value    2
"""
import re
import textwrap

from ..errors import printable
from .document import Display, Heading, Para, Table, plain_text
from .textmath import tex_to_text

WIDTH = 100        # prose is wrapped to this many columns (tables and displays are not)
_MATH = re.compile(r"(\$[^$]+\$|`[^`]+`)")


def math(tex: str) -> str:
    """Math as text: a thin space between factors as ·, ∂ next to what it differentiates."""
    return re.sub(r"∂ (?=[^\s/=])", "∂", tex_to_text(tex.replace(r" \, ", r" \cdot ")))


def prose(text: str) -> str:
    """A block's prose as text: inline math converted, `code` without its backticks."""
    return "".join(math(p[1:-1]) if p.startswith("$") and p.endswith("$") and len(p) > 1 else
                   p[1:-1] if p.startswith("`") and p.endswith("`") and len(p) > 1 else p
                   for p in _MATH.split(printable(plain_text(text))))


def _display(lines) -> list[str]:
    """Display lines: the alignment mark dropped, continuation lines (starting at the mark) indented
    under the first line's right-hand side."""
    out = []
    for line in lines:
        text = math(line)
        head, mark, rest = text.partition("&")
        if not mark:
            out.append("    " + text.strip())
        elif head.strip():
            out.append("    " + head.rstrip() + " " + rest.strip())
        else:
            out.append("        " + rest.strip())
    return out


def _table(b: Table) -> list[str]:
    rows = [tuple(prose(c) for c in b.header)] + [tuple(prose(c) for c in r) for r in b.rows]
    widths = [max(len(r[c]) for r in rows if c < len(r)) for c in range(len(rows[0]))]
    return ["  " + "  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths))).rstrip()
            for r in rows]


def to_text(blocks) -> str:
    """The blocks as plain text (see the module docstring)."""
    out = []
    for b in blocks:
        if isinstance(b, Heading):
            title = prose(b.text)
            out.append(title + "\n" + ("=" if b.level == 1 else "-" if b.level == 2 else "·") * len(title))
        elif isinstance(b, Para):
            out.append(textwrap.fill(prose(b.text), WIDTH, break_long_words=False, break_on_hyphens=False))
        elif isinstance(b, Display):
            out.append("\n".join(_display(b.lines)))
        elif isinstance(b, Table):
            out.append("\n".join(_table(b)))
    return "\n\n".join(out) + "\n"
