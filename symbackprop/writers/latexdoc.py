"""LaTeX documents that compile and fit the page: the one preamble, and the measures that keep
wide content inside the text width.

Every LaTeX output of symbackprop (``derive`` in both forms, ``explain``) is :func:`document` around
its body, or the body alone by an explicit ``--fragment``. What could overflow is kept in three ways:

* long sums are broken into lines of a few terms (:func:`wrap_terms`), by an estimate of their
  printed width (:func:`width`);
* a display still wider than the line is scaled down to the line by ``\\fitmath`` (defined in the
  preamble: it measures the box and shrinks it only if it is too wide);
* tables wider than the line are split into column groups, each repeating the first column
  (:func:`column_groups`).

Tables are ``tabular``, in pieces of at most :data:`TABLE_ROWS` rows that each repeat the header
(:func:`table`), not ``longtable``: a longtable is aligned only on a second pdflatex run (it keeps its
column widths in the .aux file), and a tabular needs none, so one run typesets every document.

>>> width(r"\\frac{\\partial C}{\\partial a^{(2)}_{1}}") < width("0.28905 + 0.24210")
True
"""
import re

TEXT_PT = 483.0       # the text width: A4 with 2 cm margins
LINE_PT = 385.0       # the budget of a broken line: the estimate is within ±20 % (tests compile it)
CHAR_PT = 5.6         # one character of 11 pt math, on average
TABLE_CHAR_PT = 5.0   # one character in a \small table
TABLE_PAD_PT = 12.0   # a table column's padding (2 \tabcolsep)
TABLE_ROWS = 40       # rows of one tabular piece: a \small piece of 40 rows fits a page

PREAMBLE = r"""\documentclass[11pt,a4paper]{article}
\usepackage[T1]{fontenc}
\usepackage{amsmath,amssymb}
\usepackage[margin=2cm]{geometry}
\usepackage{longtable}
\usepackage{graphicx}
\allowdisplaybreaks
\setcounter{MaxMatrixCols}{40}
\setlength{\parindent}{0pt}
\setlength{\parskip}{0.6em}
\emergencystretch=3em
% \fitmath{math}: display math at its natural size, or scaled down to the line when wider
\newsavebox{\fitmathbox}
\newcommand{\fitmath}[1]{\sbox{\fitmathbox}{$\displaystyle #1$}%
  \ifdim\wd\fitmathbox>\linewidth\resizebox{\linewidth}{!}{\usebox{\fitmathbox}}%
  \else\usebox{\fitmathbox}\fi}
"""


def document(body: str, title: str | None = None) -> str:
    """A complete document: the preamble, an optional title, ``body``."""
    head = PREAMBLE
    if title is not None:
        head += f"\\title{{{title}}}\n\\date{{}}\n"
    start = "\\begin{document}\n" + ("\\maketitle\n" if title is not None else "")
    return head + start + body.rstrip("\n") + "\n\\end{document}\n"


def display(lines, aligned: bool) -> str:
    """Display math that fits the line: one line, or an aligned block (several lines aligned at
    "&"), scaled down to the line only when its estimate says it is too wide. Blocks of many lines
    stay in ``align*``, which breaks across pages; their lines are kept short by the builders."""
    lines = list(lines)
    if not aligned:
        return "\\[\n\\fitmath{" + lines[0] + "}\n\\]"
    widest = max(width(line) for line in lines)
    if widest > TEXT_PT * 0.95 and len(lines) <= 24:
        return "\\[\n\\fitmath{\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}}\n\\]"
    return "\\begin{align*}\n" + " \\\\\n".join(lines) + "\n\\end{align*}"


def wrap_terms(first: str, terms: list[str], sep: str = " + ", budget: float = LINE_PT,
               tail: str = "") -> list[str]:
    """Aligned lines for ``first`` followed by ``terms`` joined with ``sep`` (and ``tail`` after
    the last): a new line, ``&\\quad`` and the separator, whenever the next term would pass
    ``budget``."""
    lines, line, used = [], first, width(first)
    for i, term in enumerate(terms):
        piece = term if i == 0 else sep + term
        if i > 0 and used + width(piece) > budget:
            lines.append(line)
            line, used = "&\\quad " + sep.strip() + " " + term, width("\\quad + " + term)
        else:
            line, used = line + piece, used + width(piece)
    if tail and used + width(tail) > budget:
        lines.append(line)
        line = "&\\quad " + tail.strip()
    else:
        line += tail
    lines.append(line)
    return lines


_COMMAND = re.compile(r"\\([A-Za-z]+|.)")


def width(tex: str, size: float = CHAR_PT) -> float:
    """An estimate of ``tex``'s printed width in points (math, at ``size`` points a character):
    fractions as their wider part, scripts at 70 %, commands as one character."""
    total, i = 0.0, 0
    while i < len(tex):
        c = tex[i]
        if c == "\\":
            m = _COMMAND.match(tex, i)
            if m is None:                        # a lone backslash at the end
                break
            name = m.group(1)
            i = m.end()
            if name == "frac":
                top, i = _group(tex, i)
                bottom, i = _group(tex, i)
                total += max(width(top, size), width(bottom, size)) + size * 0.4
            elif name in ("text", "textbf", "mathrm", "operatorname", "mathbf"):
                inner, i = _group(tex, i)
                total += len(inner) * size * 0.95
            elif name in ("left", "right", "displaystyle", "textstyle", "begin", "end", "hline"):
                if name in ("begin", "end"):
                    _, i = _group(tex, i)
                else:
                    total += size * 0.5 if name in ("left", "right") else 0
            elif name in ("quad",):
                total += size * 2
            elif name == "qquad":
                total += size * 4
            elif name in (",", ";", ":", "!", " "):
                total += size * 0.3
            elif name in ("cdot", "times", "approx", "odot", "le", "ge", "to", "in"):
                total += size * 2
            elif name == "\\":
                pass
            else:
                total += size
        elif c in "^_":
            if tex[i + 1:i + 2] == "{":
                inner, i = _group(tex, i + 1)
            else:                                # one character, or one command (^\top)
                m = _COMMAND.match(tex, i + 1)
                inner, i = (m.group(0), m.end()) if m else (tex[i + 1:i + 2], i + 2)
            total += width(inner, size) * 0.7
        elif c in "{}&$":
            i += 1
        elif c == " ":
            i += 1
        elif c in "+-=<>":
            total += size * 1.8
            i += 1
        else:
            total += size
            i += 1
    return total


def _group(tex: str, i: int) -> tuple[str, int]:
    """The brace group starting at ``tex[i]`` (spaces skipped), and the index after it."""
    while i < len(tex) and tex[i] == " ":
        i += 1
    if i >= len(tex) or tex[i] != "{":
        return tex[i:i + 1], i + 1
    depth, j = 0, i
    while j < len(tex):
        if tex[j] == "{" and (j == 0 or tex[j - 1] != "\\"):
            depth += 1
        elif tex[j] == "}" and tex[j - 1] != "\\":
            depth -= 1
            if depth == 0:
                return tex[i + 1:j], j + 1
        j += 1
    return tex[i + 1:], len(tex)


def cell_width(cell: str) -> float:
    """A table cell's estimated width in a ``\\small`` table: its math, or its characters."""
    parts = re.split(r"(\$[^$]*\$)", cell)
    return sum(width(p[1:-1], TABLE_CHAR_PT) if p.startswith("$") else len(p) * TABLE_CHAR_PT
               for p in parts) + TABLE_PAD_PT


def table(header, rows, align: str | None = None) -> str:
    r"""A ``\small`` table: ``header`` and ``rows`` (LaTeX cells) as tabulars of at most
    :data:`TABLE_ROWS` rows, each with the header, each aligned in one pdflatex run. ``align``: a
    column spec such as "lrr" (default all "l"). A number written as text gets a minus sign, not
    a hyphen (:func:`minus`).

    >>> print(table(["a", "b"], [["1", "2"]]))
    {\small
    \begin{tabular}{ll}
    \hline
    a & b \\
    \hline
    1 & 2 \\
    \hline
    \end{tabular}}
    """
    spec = align or "l" * len(header)
    pieces = [rows[i:i + TABLE_ROWS] for i in range(0, len(rows), TABLE_ROWS)] or [[]]
    return "\n\n".join("{\\small\n\\begin{tabular}{" + spec + "}\n\\hline\n" + " & ".join(header) + " \\\\\n\\hline\n"
                        + "".join(" & ".join(map(minus, r)) + " \\\\\n" for r in piece) + "\\hline\n\\end{tabular}}"
                        for piece in pieces)


_TEXT_NUMBER = re.compile(r"-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def minus(cell: str) -> str:
    r"""A table cell that is a number written as text (``-0.9``, ``1.2e-05``) as math, so that its
    minus signs are minus signs, not hyphens; any other cell as it is.

    >>> minus("-0.9"), minus("1.5e-05"), minus("$-0.9$"), minus("W1[1,2]"), minus("0.25")
    ('$-0.9$', '$1.5 \\times 10^{-5}$', '$-0.9$', 'W1[1,2]', '0.25')
    """
    m = _TEXT_NUMBER.fullmatch(cell.strip())
    if m is None or "-" not in cell:       # (a number without one reads the same either way)
        return cell
    mantissa, exponent = cell.strip()[:m.start(2)] if m.group(2) else cell.strip(), m.group(2)
    return f"${mantissa}$" if not exponent else f"${mantissa} \\times 10^{{{int(exponent[1:])}}}$"


def column_groups(header, rows, budget: float = LINE_PT) -> list[list[int]]:
    """The columns of a table split into groups that each fit ``budget``, every group starting with
    column 0 (the row's name): ``[[0, 1, 2, 3], [0, 4, 5]]``."""
    cols = len(header)
    widths = [max(cell_width(r[c]) for r in [header, *rows]) for c in range(cols)]
    groups, current, used = [], [0], widths[0]
    for c in range(1, cols):
        if len(current) > 1 and used + widths[c] > budget:
            groups.append(current)
            current, used = [0], widths[0]
        current.append(c)
        used += widths[c]
    groups.append(current)
    return groups
