"""``symbackprop exercise SPEC -o FILE``: a worksheet of one training step to work by hand, the
hand-file skeleton ``check`` reads, the spec with the exercise's numbers and (``--key``) the answer
key; ``--count K`` a class set of K, ``--format moodle`` a Moodle quiz."""
import sys
from pathlib import Path

from ..errors import SpecError, shown
from ..writers.output import output_format, writable, write_text

FORMATS = ("markdown", "latex", "html", "moodle")
SHORT = {"md": "markdown", "tex": "latex"}          # --format md and tex, as the issue writes them
SUFFIX = {"markdown": ".md", "latex": ".tex", "html": ".html", "moodle": ".xml"}
MAX_COUNT = 1000


def add_parser(subparsers):
    p = subparsers.add_parser(
        "exercise", help="write an exercise: a worksheet, its hand-file skeleton and its answer key",
        description="Draw numbers for SPEC (seeded; the spec's own kept) and write a worksheet asking the "
                    "quantities of one training step, the hand-file skeleton `check` reads (every asked "
                    "number blank), the spec with its numbers (FILE's stem + .spec.toml) and, with --key, the "
                    "answer key (.key + FILE's extension, and the filled hand file .key.toml).")
    p.add_argument("spec", help="the network spec (.toml or .json); [parameters] and [sample] may be partial or absent")
    p.add_argument("--seed", default="0", metavar="N", help="the draw's seed (default 0); a class set's first")
    p.add_argument("--numbers", choices=("friendly", "any"), default="friendly",
                   help="friendly (default): one-decimal weights, integer inputs; any: as --init draws")
    p.add_argument("--redraw", action="store_true",
                   help="draw every number, the spec's own [parameters] and [sample] too (a class set of a spec that gives them)")
    p.add_argument("--ask", metavar="LIST", help="what to ask, comma-separated: stages (forward, loss, backward, "
                                                 "update, new) and quantity names (grad.W2, delta1, ...); default all")
    p.add_argument("--optimizer", help="the step's optimizer (default: the spec's [optimizer].name, else sgd)")
    p.add_argument("--digits", default="3", metavar="D", help="significant digits asked (default 3): the "
                                                               "worksheet says so, a quiz's tolerance follows it")
    p.add_argument("--format", choices=FORMATS + tuple(SHORT), help="default: from -o's extension (.md, .tex, .html, .xml)")
    p.add_argument("--key", action="store_true", help="also write the answer key (always, with --count)")
    p.add_argument("--count", metavar="K", help="a class set: K exercises, seeds N to N+K-1, each with its key, and an index")
    p.add_argument("--choices", metavar="K", help="Moodle: also a multiple-choice question of K options per number "
                                                  "(the wrong ones from catalogued mistakes) where the catalogue gives enough")
    p.add_argument("-o", "--output", metavar="FILE", help="the worksheet (or quiz); the other files are written beside it")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.set_defaults(run=run)


def _int(text, field, low, high):
    try:
        value = int(str(text).strip())
    except ValueError:
        raise SpecError(field, f"expected an integer from {low} to {high:,}, got {shown(text)}") from None
    if not low <= value <= high:
        raise SpecError(field, f"expected an integer from {low} to {high:,}, got {shown(text)}")
    return value


def run(args) -> int:
    from ..exercise.make import SEED_MAX
    seed = _int(args.seed, "--seed", 0, SEED_MAX)
    count = _int(args.count, "--count", 1, MAX_COUNT) if args.count is not None else None
    digits = _int(args.digits, "--digits", 1, 10)
    if args.output in (None, "-"):
        raise SpecError("-o", "name the worksheet's file (-o sheet.md): the skeleton, the spec and the key are "
                              "written beside it")
    fmt = output_format(args.output, SHORT.get(args.format, args.format), FORMATS, "markdown", "exercise")
    choices = None
    if args.choices is not None:
        if fmt != "moodle":
            raise SpecError("--choices", "is for a Moodle quiz (--format moodle, or -o FILE.xml)")
        choices = _int(args.choices, "--choices", 2, 26)
    if count is not None and seed + count - 1 > SEED_MAX:
        raise SpecError("--count", f"seeds {seed} to {seed + count - 1} pass the largest seed, {SEED_MAX}")
    from ..spec.document import read_spec
    data, source = read_spec(args.spec)
    from ..exercise.make import build, fixed
    if count is not None and count > 1 and not args.redraw and fixed(data):
        raise SpecError("--count", f"{shown(source)} gives every number, so its {count} exercises would be the same; "
                                   "--redraw draws them all")
    seeds = [seed] if count is None else list(range(seed, seed + count))
    out = Path(args.output)
    plans, texts = [], {}
    for s in seeds:
        stem = out.with_suffix("") if count is None else out.with_name(f"{out.stem}-{s}")
        paths = _paths(stem, out.suffix or SUFFIX[fmt], fmt, args.key or count is not None)
        plans.append((s, paths))
        for path in paths.values():            # nothing written until every file may be
            writable(str(path), args.force)
    index = out.with_name(f"{out.stem}-index.md") if count is not None else None
    if index is not None:
        writable(str(index), args.force)
    for s, paths in plans:
        ex = build(data, source, s, args.numbers, args.optimizer, args.ask, digits, args.redraw)
        ex.files = {role: path.name for role, path in paths.items()}
        texts[s] = _texts(ex, paths, fmt, choices)
    for s, paths in plans:
        for role, path in paths.items():
            write_text(texts[s][role], str(path), True)
    if index is not None:
        write_text(_index(plans, source, args), str(index), True)
    what = f"{len(seeds)} exercises (seeds {seeds[0]} to {seeds[-1]})" if count is not None else f"seed {seed}"
    print(f"symbackprop exercise: wrote {what}: " + ", ".join(p.name for p in plans[0][1].values())
          + (f", ..., {index.name}" if index else ""), file=sys.stderr)
    return 0


def _paths(stem: Path, suffix: str, fmt: str, key: bool) -> dict:
    paths = {"worksheet": stem.with_name(stem.name + suffix), "hand": stem.with_name(stem.name + ".hand.toml"),
             "spec": stem.with_name(stem.name + ".spec.toml")}
    if key:
        key_suffix = ".md" if fmt == "moodle" else suffix
        paths.update(key=stem.with_name(stem.name + ".key" + key_suffix),
                     key_hand=stem.with_name(stem.name + ".key.toml"))
    return paths


def _texts(ex, paths, fmt, choices) -> dict:
    texts = {"spec": ex.spec_text(), "hand": ex.skeleton()}
    if fmt == "moodle":
        from ..exercise.moodle import quiz
        texts["worksheet"] = quiz(ex, choices)
    elif fmt == "html":
        texts["worksheet"] = _page(ex)
    else:
        texts["worksheet"] = ex.document("worksheet", fmt)
    if "key" in paths:
        texts["key"] = ex.document("key", "markdown" if fmt == "moodle" else fmt)
        texts["key_hand"] = ex.key_hand()
    return texts


def _page(ex) -> str:
    """The interactive worksheet (:mod:`symbackprop.exercise.page`)."""
    try:
        from ..exercise.page import render
    except ImportError:
        raise SpecError("--format", "html: the interactive worksheet is not part of this build") from None
    return render(ex.network, ex.asked, title=ex.title)


def _index(plans, source, args) -> str:
    lines = [f"# Class set: {len(plans)} exercises of {source}", "",
             f"Made with `symbackprop exercise` (--numbers {args.numbers}"
             + (f", --ask {args.ask}" if args.ask else "") + (f", --optimizer {args.optimizer}" if args.optimizer else "")
             + "). Grade a folder of filled hand files of one variant with `symbackprop check SPEC DIR/ -o grades.csv`.",
             "", "| variant | seed | " + " | ".join(plans[0][1]) + " |", "|" + " --- |" * (len(plans[0][1]) + 2)]
    for i, (seed, paths) in enumerate(plans, 1):
        lines.append(f"| {i} | {seed} | " + " | ".join(f"`{p.name}`" for p in paths.values()) + " |")
    return "\n".join(lines) + "\n"
