"""Grading a class: many hand files against one spec, each checked as ``check`` checks one, counted
(ok, wrong, carried, missing), with one row per file and one column per quantity asked.

``carried`` is right by method — the number follows from the person's own earlier numbers — so a
file's ``right_by_method`` is its ok plus its carried numbers. A file that cannot be read is graded
as an error, with its one-line message, and the others are graded still.

>>> from symbackprop.spec.network import load
>>> net = load("examples/seed.toml")
>>> g = grade_one(net, "examples/seed-hand.toml")
>>> g.counts["ok"] + g.counts["carried"] == g.right, g.error
(True, None)
"""
import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SpecError, printable

COUNTED = ("ok", "carried", "wrong", "missing")
MAX_FILES = 2000           # hand files graded in one run
PRECEDENCE = ("wrong", "missing", "carried", "ok")   # a quantity's cell: the first status among its numbers


@dataclass
class Graded:
    path: str
    results: list = field(default_factory=list)
    error: str | None = None

    @property
    def counts(self) -> dict:
        return {s: sum(r.status == s for r in self.results) for s in COUNTED}

    @property
    def right(self) -> int:
        counts = self.counts
        return counts["ok"] + counts["carried"]

    def cells(self) -> dict:
        """Each quantity's status: the first of :data:`PRECEDENCE` among its numbers (wrong if any
        is, else missing if any is, else carried if any is, else ok)."""
        found = {}
        for r in self.results:
            found.setdefault(r.name, set()).add(r.status)
        return {name: next(s for s in PRECEDENCE if s in statuses) for name, statuses in found.items()}

    def line(self) -> str:
        name = printable(self.path)
        if self.error:
            return f"{name}: error: {self.error}"
        counts = self.counts
        return f"{name}: {len(self.results)} numbers: " + ", ".join(f"{counts[s]} {s}" for s in COUNTED)


def hand_files(paths) -> list[str]:
    """The hand files named: each file, and each folder's ``*.toml`` files (sorted). SpecError for a
    path that is neither, for no file at all, or for more than :data:`MAX_FILES`."""
    out = []
    for path in paths:
        p = Path(path)
        if p.is_dir():
            out += sorted(str(f) for f in p.iterdir() if f.suffix.lower() == ".toml" and f.is_file())
        elif p.is_file():
            out.append(str(p))
        else:
            raise SpecError(str(path), "no such file or folder")
        if len(out) > MAX_FILES:
            raise SpecError(str(path), f"at most {MAX_FILES:,} hand files in one run (the limit)")
    if not out:
        raise SpecError(str(paths[0]), "no hand files (.toml) there")
    return out


def grade_one(network, path) -> Graded:
    from .judge import check, load_hand
    try:
        return Graded(str(path), check(network, load_hand(path, network)))
    except SpecError as err:
        return Graded(str(path), error=str(err))


def grade(network, paths) -> list[Graded]:
    return [grade_one(network, path) for path in hand_files(paths)]


def csv_text(graded: list[Graded]) -> str:
    """One row per file: its counts, right_by_method (ok + carried) and each quantity's status
    (columns in the order the step computes them; empty where the file does not give it)."""
    order = {}
    for g in graded:
        for r in g.results:
            order.setdefault(r.name, len(order))
    names = sorted(order, key=order.get)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["file", "numbers", *COUNTED, "right_by_method", *names, "error"])
    for g in graded:
        cells = g.cells()
        counts = g.counts
        writer.writerow([g.path, len(g.results), *(counts[s] for s in COUNTED), g.right,
                         *(cells.get(n, "") for n in names), g.error or ""])
    return out.getvalue()
