"""Writers: the document model and what turns it into text — the bottom stage, which knows nothing of networks.

Takes blocks (:mod:`.document`: headings, paragraphs, display math, tables, figures, curves) and
returns Markdown, LaTeX or HTML; also plain-text printing of SymPy expressions (:mod:`.textprint`),
LaTeX page metrics (:mod:`.latexdoc`), the standalone HTML page with its SVG drawings (:mod:`.html`,
:mod:`.curve`), numbers to the digits asked for (:mod:`.sigfig`) and safe file output
(:mod:`.output`). Nothing here differentiates or imports a later stage.
"""
