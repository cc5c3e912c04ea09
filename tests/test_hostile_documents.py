"""User text in documents, round 2: a spec's file or folder name carrying LaTeX commands, math,
raw HTML or a Markdown link reaches every output as text. LaTeX from hostile names compiled with
``pdflatex -no-shell-escape`` reads no file and runs no command; Markdown parsed by markdown-it-py
holds no raw HTML and no link from user text."""
import os
import shutil
import subprocess

import pytest
from markdown_it import MarkdownIt

from symbackprop.cli import main
from symbackprop.writers.document import Para, tex_escape, to_html, to_latex, to_markdown, user_text

SEED = "examples/seed.toml"
SECRET = "7391028465"          # digits: no kerning splits them in the PDF's text
LATEX_NAMES = [r"p$\input{secret.txt}$.toml", r"w$\immediate\write18{touch pwned}$.toml",
               r"c$\catcode`\^^5c=0 ^^5cinput{secret.txt}$.toml", r"d$\def\x{\input{secret.txt}}\x$.toml",
               r"o\openin5=secret.txt \read5 to\l \l.toml", r"b$}}}\input{secret.txt}{{{$.toml",
               r"^^5cinput{secret.txt}.toml", "%\\input{secret.txt}.toml"]
MARKDOWN_NAMES = ["c$<img src=x onerror=alert(1)>$d.toml", "[t](javascript:alert(1)).toml",
                  "<script>alert(1)</script>.toml", "`<b>x</b>`.toml", "![i](javascript:alert(1)).toml",
                  "<javascript:alert(1)>.toml", "a*b*_c_ |d| ~~e~~.toml"]


def spec_named(tmp_path, name):
    path = tmp_path / name          # a "/" in the name: folders, whose names are user text too
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(open(SEED).read())
    return path


def explained(capsys, spec, *flags):
    assert main(["explain", str(spec), *flags]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("name", LATEX_NAMES)
def test_a_name_reaches_latex_as_escaped_text(tmp_path, capsys, name):
    spec = spec_named(tmp_path, name)
    for flags in (["--format", "latex"], ["--format", "latex", "--fragment"]):
        out = explained(capsys, spec, *flags)
        shown = tex_escape(str(spec))
        assert shown in out, (shown, out[:2000])
        for raw in (r"\input{", r"\write18", r"\catcode", r"\openin", r"\def\x", "^^5c"):
            assert raw not in out.replace(shown, ""), raw    # nowhere as written, outside the escaped name
            assert raw not in shown or raw == "^^5c"


def test_tex_escape_leaves_no_character_tex_acts_on():
    text = tex_escape(r"$\input{x}$ ^^5c %#&_~")
    assert "$" not in text.replace(r"\$", "") and "^^" not in text and "{x}" not in text
    assert text == (r"\$\textbackslash{}input\{x\}\$ \textasciicircum{}\textasciicircum{}5c \%\#\&\_"
                    r"\textasciitilde{}")


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no pdflatex (bash .ci/install-tex.sh)")
def test_latex_from_hostile_names_compiles_and_reads_no_file_runs_no_command(tmp_path, capsys):
    (tmp_path / "secret.txt").write_text(f"{SECRET}\n")
    body = []
    for i, name in enumerate(LATEX_NAMES):
        folder = tmp_path / f"n{i}"
        folder.mkdir()
        body.append(explained(capsys, spec_named(folder, name), "--format", "latex", "--fragment"))
    full = explained(capsys, spec_named(tmp_path / "n0", LATEX_NAMES[0]), "--format", "latex")
    document = full.replace(full[full.index(r"\begin{document}") + len(r"\begin{document}"):full.index(r"\end{document}")],
                            "\n" + "\n\\clearpage\n".join(body) + "\n")
    (tmp_path / "doc.tex").write_text(document)
    proc = subprocess.run(["pdflatex", "-no-shell-escape", "-interaction=nonstopmode", "-halt-on-error",
                           r"\pdfcompresslevel=0 \pdfobjcompresslevel=0 \input{doc.tex}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    log = (tmp_path / "doc.log").read_text(errors="replace")
    assert proc.returncode == 0, log[-3000:]
    assert "secret.txt)" not in log and "(./secret.txt" not in log      # \input logs each file it reads
    assert "runsystem" not in log and not (tmp_path / "pwned").exists()
    assert SECRET.encode() not in (tmp_path / "doc.pdf").read_bytes()     # uncompressed: the text is in the clear


def _markdown_tokens(text):
    def walk(tokens):
        for t in tokens:
            yield t
            yield from walk(t.children or [])
    return list(walk(MarkdownIt("commonmark").parse(text)))


@pytest.mark.parametrize("name", MARKDOWN_NAMES)
def test_a_name_reaches_markdown_without_html_or_a_link(tmp_path, capsys, name):
    out = explained(capsys, spec_named(tmp_path, name))
    tokens = _markdown_tokens(out)
    assert not [t for t in tokens if t.type in ("html_inline", "html_block")], name
    assert not [t for t in tokens if t.type in ("link_open", "image")], name
    rendered = MarkdownIt("commonmark").render(out)
    assert name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in rendered   # shown as written
    assert "<img" not in rendered and "<script" not in rendered and 'href="javascript' not in rendered


def test_each_writer_sets_user_text_as_text_and_the_builders_text_as_before():
    name = "c$<img src=x onerror=alert(1)>$d \\input{x} [t](javascript:x).toml"
    blocks = [Para(f"The network ({user_text(name)}) with $a^{{(1)}}$ and `code`.")]
    md, tex, html = to_markdown(blocks), to_latex(blocks, "t", fragment=True), to_html(blocks)
    assert "$a^{(1)}$" in md and "`code`" in md and "<img" not in md and "\\[t\\]" in md
    assert "$a^{(1)}$" in tex and r"\texttt{code}" in tex and r"c\$<img" in tex and r"\textbackslash{}input\{x\}" in tex
    assert '<span class="no-math">c$&lt;img src=x onerror=alert(1)&gt;$d' in html and "<code>code</code>" in html
    assert "\ue000" not in md + tex + html and "\ue001" not in md + tex + html


def test_user_text_cannot_close_its_own_marks():
    text = user_text("a\ue001$\\input{x}$\ue000b")
    assert text.count("\ue000") == 1 and text.count("\ue001") == 1
    assert r"\input" not in to_latex([Para(text)], "t", fragment=True)


def test_the_html_page_keeps_user_dollars_away_from_katex(tmp_path, capsys):
    out = explained(capsys, spec_named(tmp_path, "k$\\href{javascript:alert(1)}{x}$.toml"), "--format", "html")
    assert '<span class="no-math">' in out and 'ignoredClasses: ["no-math"]' in out
    start = out.index('<span class="no-math">')
    assert "k$\\href{javascript:alert(1)}{x}$.toml" in out[start:out.index("</span>", start)]


def test_derives_latex_escapes_every_special_character_in_prose(tmp_path, capsys):
    from symbackprop.report.chain import _tex_prose
    assert _tex_prose(r"a $\input{x}$ ^^5c ~") == r"a \$\textbackslash{}input\{x\}\$ \textasciicircum{}\textasciicircum{}5c \textasciitilde{}"
    assert main(["derive", SEED, "--format", "latex"]) == 0
    assert r"\input" not in capsys.readouterr().out
