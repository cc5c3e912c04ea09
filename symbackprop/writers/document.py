"""The document a worked example is: a few kinds of block, and one writer per output language.

Builders (:mod:`symbackprop.sections`, the layer entries' ``explain_*`` methods) make blocks from the
numbers — a heading, a paragraph of prose with ``$…$`` math, a display of aligned LaTeX lines, a
table, a figure — and never format for a language; :func:`to_markdown`, :func:`to_latex` and
:func:`to_html` render every block kind and never compute (as SymPy keeps one expression tree and a
printer class per language). Figures (a drawing, a curve) are for HTML; the other writers leave them out.
"""
import html as _html
import re
from dataclasses import dataclass

from . import latexdoc
from ..errors import printable


_USER = ("\ue000", "\ue001")   # private-use marks around user text inside a block's prose


def user_text(text) -> str:
    """``text`` that came from the user (a file or folder name), for a block's prose: every writer
    sets it as plain text — never as math, code, markup or a link — whatever ``$``, backslashes,
    braces, tags or brackets it holds.

    >>> print(to_markdown([Para("spec " + user_text("c$<img src=x>$[t](javascript:x)"))]), end="")
    spec c\\$&lt;img src=x&gt;\\$\\[t\\](javascript:x)
    """
    text = str(text)
    for mark in _USER:
        text = text.replace(mark, "")
    return _USER[0] + text + _USER[1]


def _user_piece(piece: str) -> str | None:
    """The user text a prose piece holds (see :func:`user_text`), or None when it is the builder's."""
    return piece[1:-1] if len(piece) > 1 and piece[0] == _USER[0] and piece[-1] == _USER[1] else None


def plain_text(text: str) -> str:
    """A block's prose with its user-text marks removed: for writers that escape nothing (plain text)."""
    return text.replace(_USER[0], "").replace(_USER[1], "")


@dataclass(frozen=True)
class Heading:
    level: int          # 1 title, 2 section, 3 subsection
    text: str


@dataclass(frozen=True)
class Para:
    text: str           # prose with $...$ inline math


@dataclass(frozen=True)
class Display:
    lines: tuple[str, ...]   # LaTeX math; several lines are aligned at "&"


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    # where each body cell after the first column comes from, for tests and tools: per row, per
    # cell a (quantity, index into its array) pair, or None where a cell is no value; not rendered
    source: tuple | None = None


@dataclass(frozen=True)
class Figure:
    svg: str            # HTML only
    caption: str


@dataclass(frozen=True)
class Curve:
    """A line chart (HTML only, drawn by :func:`symbackprop.writers.curve.curve_svg`)."""
    series: tuple       # (name, ((x, y), ...)) pairs, one line each
    x_label: str
    y_label: str
    caption: str


def _aligned(line: str) -> bool:
    """Whether ``line`` has an alignment point: an ``&`` outside every environment (matrices)."""
    depth = 0
    for token in re.findall(r"\\begin\{|\\end\{|(?<!\\)&", line):
        if token == "&" and depth == 0:
            return True
        depth += {"\\begin{": 1, "\\end{": -1}.get(token, 0)
    return False


def _display_tex(lines) -> str:
    if len(lines) == 1 and not _aligned(lines[0]):
        return lines[0]
    return "\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}"


def to_markdown(blocks) -> str:
    out = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append("#" * b.level + " " + _md_text(b.text))
        elif isinstance(b, Para):
            out.append(_md_text(b.text))
        elif isinstance(b, Display):
            out.append("$$\n" + _display_tex(b.lines) + "\n$$")
        elif isinstance(b, Table):
            rows = [b.header, tuple("---" for _ in b.header), *b.rows]
            out.append("\n".join("| " + " | ".join(map(md_cell, r)) + " |" for r in rows))
    return "\n\n".join(out) + "\n"


def md_cell(text: str) -> str:
    """A Markdown table cell: one line, its | escaped (a bare one would end the cell), as prose."""
    return _md_text(" ".join(text.split()).replace("|", r"\|"))


def _md_text(text: str) -> str:
    """Prose for Markdown: math and `code` kept, raw HTML escaped (a spec's text — its file name —
    must not become a tag that a Markdown viewer or Jupyter renders), nothing a terminal acts on;
    user text (:func:`user_text`) with every character Markdown or its math extensions act on escaped."""
    return "".join(_md_user(p) if _user_piece(p) is not None else
                   printable(p) if _math_or_code(p) else _html.escape(printable(p), quote=False)
                   for p in _PIECES.split(text))


_MD_PUNCTUATION = set("\\`*_[]|$~")   # backslash-escaped: no emphasis, link, code, table cell or math


def _md_user(piece: str) -> str:
    return "".join("\\" + c if c in _MD_PUNCTUATION else c
                   for c in _html.escape(printable(_user_piece(piece)), quote=False))


def _math_or_code(piece: str) -> bool:
    return len(piece) > 1 and piece[0] == piece[-1] and piece[0] in "$`"


_TEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "#": r"\#", "_": r"\_", "{": r"\{", "$": r"\$",
                "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "—": "---", "–": "--",
                "’": "'", "`": "{`}"}
# the few symbols prose and tables use outside $...$, as pdflatex's default fonts can set them
_TEX_SPECIAL.update({"⋯": r"$\cdots$", "⋮": r"$\vdots$", "⋱": r"$\ddots$", "×": r"$\times$", "÷": r"$\div$",
                     "−": "-", "≈": r"$\approx$", "μ": r"$\mu$", "ε": r"$\epsilon$", "δ": r"$\delta$",
                     "√": r"$\surd$", "Σ": r"$\Sigma$", "∂": r"$\partial$", "γ": r"$\gamma$", "β": r"$\beta$"})


# user text, inline math, inline code (math and code never reach into user text)
_PIECES = re.compile("(\ue000[^\ue000\ue001]*\ue001|\\$[^$\ue000\ue001]+\\$|`[^`\ue000\ue001]+`)")


def tex_prose(text: str) -> str:
    """Prose for LaTeX: math kept as it is, `code` in typewriter, special characters escaped; user
    text (:func:`user_text`) as text, its ``$`` and every other special character escaped."""

    def piece(p):
        if _user_piece(p) is not None:
            return tex_escape(printable(_user_piece(p)))
        p = printable(p)
        if p.startswith("$") and p.endswith("$") and len(p) > 1:
            return p
        if p.startswith("`") and p.endswith("`") and len(p) > 1:
            return r"\texttt{" + piece(p[1:-1]) + "}"
        return tex_escape(p)
    return "".join(piece(p) for p in _PIECES.split(text))


def tex_escape(text: str) -> str:
    """Text for LaTeX, set as text: every character TeX acts on (``$``, ``\\``, braces, ``^``, ``%``,
    ``#``, ``&``, ``~``, ``_``) escaped, so no command, math or ``^^`` notation can come through."""
    return "".join(_TEX_SPECIAL.get(c, c) for c in text)


def _html_text(text: str) -> str:
    """Prose for HTML: escaped, `code` as <code> (math is left for KaTeX); user text in a span that
    KaTeX's auto-render skips (class no-math) (its ``$`` is not math)."""
    return "".join(f'<span class="no-math">{_html.escape(printable(_user_piece(p)))}</span>' if _user_piece(p) is not None
                   else f"<code>{_html.escape(printable(p[1:-1]))}</code>" if p.startswith("`") and p.endswith("`") and len(p) > 1
                   else _html.escape(printable(p)) for p in _PIECES.split(text))


def to_latex(blocks, title: str, fragment: bool = False) -> str:
    """A complete LaTeX document (:func:`symbackprop.writers.latexdoc.document`), or with ``fragment`` its
    body only. Displays and tables are kept inside the text width (see :mod:`symbackprop.writers.latexdoc`)."""
    out = []
    for b in blocks:
        if isinstance(b, Heading):
            if b.level > 1:
                out.append(f"\\{'sub' * (b.level - 2)}section*{{{tex_prose(b.text)}}}")
        elif isinstance(b, Para):
            out.append(tex_prose(b.text))
        elif isinstance(b, Display):
            out.append(latexdoc.display(b.lines, aligned=len(b.lines) > 1 or _aligned(b.lines[0])))
        elif isinstance(b, Table):
            header = tuple(tex_prose(c) for c in b.header)
            rows = [tuple(tex_prose(c) for c in r) for r in b.rows]
            for group in latexdoc.column_groups(header, rows):
                out.append(latexdoc.table([header[c] for c in group], [[r[c] for c in group] for r in rows]))
    body = "\n\n".join(out) + "\n"
    return body if fragment else latexdoc.document(body, tex_prose(title))


def to_html(blocks) -> str:
    esc = _html.escape
    out = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"<h{b.level}>{esc(printable(plain_text(b.text)))}</h{b.level}>")
        elif isinstance(b, Para):
            out.append(f"<p>{_html_text(b.text)}</p>")
        elif isinstance(b, Display):
            out.append(f"<div class=\"display\">$${esc(_display_tex(b.lines))}$$</div>")
        elif isinstance(b, Table):
            head = "".join(f"<th>{_html_text(c)}</th>" for c in b.header)
            body = "\n".join("<tr>" + "".join(f"<td>{_html_text(c)}</td>" for c in r) + "</tr>" for r in b.rows)
            out.append(f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>")
        elif isinstance(b, Figure):
            out.append(f"<figure>\n{b.svg}\n<figcaption>{esc(b.caption)}</figcaption>\n</figure>")
        elif isinstance(b, Curve):
            from .curve import curve_svg
            svg = curve_svg(b.series, b.x_label, b.y_label).rstrip("\n")
            out.append(f"<figure>\n{svg}\n<figcaption>{esc(printable(b.caption))}</figcaption>\n</figure>")
    return "\n".join(out) + "\n"

