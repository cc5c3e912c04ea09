"""Tables as a Markdown parser sees them (markdown-it, CommonMark with tables): a test helper."""
from markdown_it import MarkdownIt


def tables(markdown: str) -> list[tuple[int, list[int]]]:
    """(header cells, cells of each body row) of every table markdown-it finds."""
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    tables, current, row = [], None, None
    for t in tokens:
        if t.type == "table_open":
            current = []
        elif t.type == "tr_open":
            row = 0
        elif t.type in ("th_open", "td_open"):
            row += 1
        elif t.type == "tr_close":
            current.append(row)
        elif t.type == "table_close":
            tables.append((current[0], current[1:]))
    return tables
