"""``symbackprop check SPEC HAND``: a hand calculation of one training step, number by number."""
import json
import math
import sys

from ..errors import SpecError, printable

FORMATS = ("text", "json")


def add_parser(subparsers):
    p = subparsers.add_parser(
        "check", help="check a hand calculation of forward, backward and update, number by number",
        description="Check the numbers of HAND (a TOML file with a [values] table: z1, a1, ..., mean<l>, "
                    "var<l>, xhat<l>, loss, dC/da<l>, da<l>/dz<l>, delta<l>, grad.W<l>, grad.gamma<l>, "
                    "<optimizer>.W<l>, <optimizer>.m.W<l>, new.z<l>, new.loss, ...; one element as "
                    "grad.W2[1][2], indices 1-based as in the math, a batch's example first) against SPEC, "
                    "for any layer graph of up to 3,000 parameters. Each number is ok, wrong (where an error "
                    "enters, with the catalogued mistake that reproduces it) or carried (it follows "
                    "from wrong earlier numbers). Exit status 0 when nothing is wrong, 1 when something "
                    "is, 2 for bad input.")
    p.add_argument("spec", help="the network spec (.toml or .json), with [parameters] and [sample]")
    p.add_argument("hand", nargs="+", help="the hand calculation (.toml); several files or a folder of them grade a class: "
                                           "one line per file (ok, carried, wrong, missing), exit status 0")
    p.add_argument("-o", "--output", metavar="FILE", help="grading: write grades.csv, a row per file and a column per quantity")
    p.add_argument("--force", action="store_true", help="overwrite -o's file")
    p.add_argument("--init", type=int, metavar="SEED",
                   help="draw the parameters and sample the spec lacks: a trainer's init_params(SEED) and a seeded sample")
    p.add_argument("--format", choices=FORMATS, default="text")
    p.set_defaults(run=run)


def run(args) -> int:
    from . import load_spec
    network, note = load_spec(args.spec), None
    from ..check.judge import check, conventions, load_hand
    from ..check.judge import MAX_PARAMETERS
    from ..spec.initial import numbers
    if network.parameter_count <= MAX_PARAMETERS:     # too big for a hand calculation: check says so first
        network, note = numbers(network, args.init, "check")
    if note:
        print(f"symbackprop check: note: {note} (--init {args.init})", file=sys.stderr)
    from pathlib import Path
    if len(args.hand) > 1 or Path(args.hand[0]).is_dir() or args.output is not None:
        return _grade(network, args)
    hand = load_hand(args.hand[0], network)
    results = check(network, hand)
    if args.format == "json":
        for note in hand.notes:
            print(f"symbackprop check: note: {note}", file=sys.stderr)
        print(json.dumps([r.to_json() for r in results], indent=2, ensure_ascii=False, allow_nan=False))
    else:
        print(render_text(results, conventions(network, hand), args.spec))
    return 1 if any(r.status == "wrong" for r in results) else 0


def _grade(network, args) -> int:
    """A class: every hand file checked, one line each, and with -o a CSV of grades. Exit 0."""
    from ..check.grade import csv_text, grade
    from ..check.judge import usable
    from ..writers.output import writable, write_text
    if args.format != "text":
        raise SpecError("--format", "grading several hand files writes text lines and, with -o, a CSV")
    if args.output is not None:
        if not args.output.lower().endswith(".csv"):
            raise SpecError("-o", f"{printable(args.output)}: name a .csv file for the grades")
        writable(args.output, args.force)
    usable(network)
    graded = grade(network, args.hand)
    for g in graded:
        print(g.line())
    errors = sum(g.error is not None for g in graded)
    print(f"graded {len(graded)} hand file{'s' if len(graded) != 1 else ''} against {printable(args.spec)}"
          + (f" ({errors} could not be read)" if errors else ""))
    if args.output is not None:
        write_text(csv_text(graded), args.output, args.force)
    return 0


def render_text(results, notes=(), spec="the spec") -> str:
    """A table of the results with a summary line."""
    rows = [("quantity", "given", "expected", "status", "diagnosis")]
    rows += [(r.label, r.given, _number(r.expected, r.given), r.status, r.diagnosis or "") for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [f"checked against {printable(spec)}" + (":" if notes else "")] + [f"  {note}" for note in notes]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths + [0])).rstrip() for row in rows]
    counts = {status: sum(r.status == status for r in results) for status in ("ok", "wrong", "carried", "missing")}
    if not counts["missing"]:
        del counts["missing"]
    lines.append(f"{len(results)} numbers: " + ", ".join(f"{n} {status}" for status, n in counts.items()))
    return "\n".join(lines)


def _number(value: float, given: str) -> str:
    """``value`` with a digit more than ``given`` was written with, and at least 6 (every digit
    shown, trailing zeros too, unless the value is exactly what fewer say); "inf", "-inf" or
    "undefined" where the true value is not a finite number."""
    if not math.isfinite(value):
        from ..check.judge import show_infinite
        return show_infinite(value)
    from ..writers.sigfig import significant
    digits = len(given.lower().partition("e")[0].lstrip("+-").replace(".", "").lstrip("0"))
    return significant(value, max(6, digits + 1))
