"""The documentation's reference tables, written at build time from the definitions themselves.

mkdocs-gen-files runs this file (``mkdocs.yml``: ``plugins: gen-files``). Nothing here is retyped:

* every layer kind's fields (type, default, doc) from its entry in ``symbackprop/entries/layers/``
  (``reference/layers.md``, and the table of each family on its page);
* every activation and loss from ``symbackprop/entries/registry.py`` (``reference/activations.md``);
* every optimizer, its hyper-parameters, their domains and defaults and its update rule in LaTeX
  from ``symbackprop/entries/optimizers.py`` (``reference/optimizers.md``);
* every catalogued mistake from the check catalogue's sources and the layer entries' slips
  (``reference/mistakes.md``);
* every command's flags from the CLI's argparse parsers and the trainer's from a trainer generated
  here (``reference/cli.md``; the tables on the command and trainer pages);
* the limits from ``symbackprop/spec/limits.py``;
* the KaTeX the package vendors, copied into the site so that math renders offline.

A hand-written page asks for a table with a line ``<!-- generated: NAME ARGS -->`` (see
:data:`INSERTS`); a layer family that no page claims gets a generated page of its own, so a new
layer kind — even in a new family module — appears in the docs with no docs edit.

``pages()`` returns every page this script writes (path under docs/ -> Markdown); the tests call it.
"""
import ast
import importlib.util
import inspect
import math
import re
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
if str(ROOT) not in sys.path:         # this checkout's package, whatever is installed
    sys.path.insert(0, str(ROOT))

MARKER = re.compile(r"^<!-- generated: ([\w-]+)((?: [\w.-]+)*) -->$", re.M)
NOTE = "*Generated from the definitions by `docs/gen_reference.py` when the site is built.*\n\n"


def cell(text) -> str:
    """Text for one Markdown table cell: pipes escaped, one line."""
    return " ".join(str(text).split()).replace("|", r"\|")


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def code(text) -> str:
    return f"`{text}`" if text != "" else ""


# ---- layer kinds ------------------------------------------------------------------------------

def family(kind) -> str:
    """A kind's family: the module of ``symbackprop/entries/layers/`` that defines it."""
    return type(kind).__module__.rsplit(".", 1)[-1]


def field_type(parse) -> str:
    """What a field's parser accepts, in its own words: the ``expected ...`` of its refusal."""
    try:
        parse(object())
    except ValueError as err:
        found = re.match(r"expected (.*?), got ", str(err))
        if found:
            return found.group(1)
    return parse.__name__.replace("_", " ")


def field_default(field) -> str:
    from symbackprop.entries.layers.base import REQUIRED
    if field.default is REQUIRED:
        return "required"
    if field.default is None:
        return "(see doc)"
    return code(repr(field.default) if isinstance(field.default, float) else field.default)


def kind_section(name: str, kind, level: int = 3) -> str:
    params = ", ".join(f"`{p}<i>`" for p in kind.params) or "none"
    flags = [text for flag, text in (("affine", "always has a pre-activation z"),
                                     ("couples_batch", "couples the examples of a batch"),
                                     ("vector_input", "needs a vector input"),
                                     ("unrolls", "unrolled scalar trainer code")) if getattr(kind, flag, False)]
    out = [f"{'#' * level} `{name}`\n", f"{kind.doc}\n" if kind.doc else "",
           f"Parameters: {params}." + (f" Properties: {'; '.join(flags)}." if flags else "") + "\n"]
    rows = [[code(f.name), field_type(f.parse), field_default(f), f.doc] for f in kind.fields]
    rows.append([code("activation"), "an activation's name or a formula in z", code("identity"),
                 "applied element by element after the layer (every kind)"])
    out.append(table(["field", "type", "default", "doc"], rows))
    return "\n".join(s for s in out if s)


def layer_fields(*families: str) -> str:
    """The field tables of every kind of the families ``families`` (modules of entries/layers)."""
    from symbackprop.entries.layers import LAYERS
    kinds = [(n, k) for n, k in LAYERS.items() if family(k) in families]
    return "\n".join(kind_section(n, k) for n, k in kinds) or "*(no layer kind in this family)*\n"


def family_pages() -> dict[str, str]:
    """family -> the page that claims it (a ``layer-fields`` insert), for every family claimed."""
    claimed = {}
    for path in sorted(DOCS.rglob("*.md")):
        for kind_, args in MARKER.findall(path.read_text(encoding="utf-8")):
            if kind_ == "layer-fields":
                for fam in args.split():
                    claimed[fam] = path.relative_to(DOCS).as_posix()
    return claimed


def layers_page() -> tuple[str, dict[str, str]]:
    """``reference/layers.md`` and a page for each family no hand-written page claims."""
    from symbackprop.entries.layers import LAYERS
    claimed, extra = family_pages(), {}
    rows = []
    for name, kind in LAYERS.items():
        fam = family(kind)
        page = claimed.get(fam) or extra.setdefault(fam, f"layers/{fam}.md")
        rows.append([f"[`{name}`](../{page}#{name})", fam, ", ".join(f.name for f in kind.fields) or "—",
                     ", ".join(kind.params) or "—", kind.doc])
    head = ("# Layer kinds\n\n" + NOTE + "Every `type` a `[[layer]]` table may name, one entry each in "
            "`symbackprop/entries/layers/` (family = its module). Each kind's fields, with their types, "
            "defaults and docs, are on its family's page.\n\n")
    page = head + table(["type", "family", "fields", "parameters", "what it computes"], rows)
    page += "\n## Every kind's fields\n\n" + "\n".join(kind_section(n, k) for n, k in LAYERS.items())
    generated = {path: (f"# The {fam} family\n\n" + NOTE + f"The kinds defined in "
                        f"`symbackprop/entries/layers/{fam}.py`.\n\n" + layer_fields(fam))
                 for fam, path in extra.items()}
    return page, generated


# ---- activations, losses, optimizers ----------------------------------------------------------

def activations_page() -> str:
    import sympy
    from symbackprop.entries.registry import ACTIVATIONS, LOSSES, a, y
    rows = []
    for name, act in ACTIVATIONS.items():
        form = act.expr if act.vector is None else None
        f = f"${sympy.latex(form)}$" if form is not None else "$e^{z_j} / \\sum_k e^{z_k}$ (over the layer)"
        d = f"${sympy.latex(act.simple_derivative)}$" if act.elementwise else "its Jacobian-vector product"
        out = f"${sympy.latex(act.output_form)}$" if act.output_form is not None else "—"
        rows.append([code(name), f"${act.latex}$", f, d, out, act.note])
    loss_rows = []
    aj, yj = sympy.Symbol("a_j"), sympy.Symbol("y_j")
    for name, loss in LOSSES.items():
        lo, hi = loss.targets
        targets = ("any" if (lo, hi) == (-math.inf, math.inf) else
                   f"[{lo:g}, ∞)" if hi == math.inf else f"[{lo:g}, {hi:g}]")
        derivative = (loss.scale * loss.derivative).xreplace({a: aj, y: yj})
        loss_rows.append([code(name), f"$C = {sympy.latex(loss.formula())}$",
                          f"$\\frac{{\\partial C}}{{\\partial a_j}} = {sympy.latex(derivative)}$", targets, loss.note])
    return ("# Activations and losses\n\n" + NOTE + "One entry each in `symbackprop/entries/registry.py`. "
            "f′ is SymPy's derivative of the entry, rewritten once into its shortest form; the "
            "output form is f′ written in the layer's output a, which generated code uses.\n\n"
            "## Activations\n\n" + table(["name", "symbol", "f(z)", "f′(z)", "f′ in a", "note"], rows)
            + "\nA spec may also give a formula in `z` (see [the spec](spec.md#activations-and-losses)).\n\n"
            "## Losses\n\nC of one example with n outputs; a batch's C is the mean of its examples'.\n\n"
            + table(["name", "C", "derivative", "targets", "note"], loss_rows))


def optimizers_page() -> str:
    from symbackprop.entries.optimizers import HYPERS, OPTIMIZERS, Settings
    out = ["# Optimizers\n\n", NOTE, "One entry each in `symbackprop/entries/optimizers.py`: ordered SymPy "
           "assignments, element by element on one parameter θ with gradient g at step t (1 for the first); "
           "the state starts at zero. `explain` prints these rules, `check` computes with them and "
           "`generate` prints them into the trainer. Set them in the spec's `[optimizer]` table.\n\n",
           "## Hyper-parameters\n\n",
           table(["setting", "symbol", "allowed"], [[code(h.name), f"${h.latex}$", h.domain] for h in HYPERS.values()]),
           "\nAlso `bias_correction` (Adam and AdamW; default true), `train_biases` (default true) and "
           "`train` (the parameters an update changes; default all).\n"]
    for name, opt in OPTIMIZERS.items():
        shown = Settings.of({k: 0.5 for k, _ in opt.defaults})    # nothing zero: every term shows
        lines = " \\\\\n".join(opt.latex(shown))
        out += [f"\n## `{name}`\n\n", f"{opt.note}.\n\n" if opt.note else "",
                f"$$\n\\begin{{aligned}}\n{lines}\n\\end{{aligned}}\n$$\n\n",
                table(["setting", "default"], [[code(k), code(v)] for k, v in opt.defaults])]
        if opt.state:
            out.append(f"\nState: {', '.join(opt.state)}.\n")
    return "".join(out)


# ---- the mistake catalogue --------------------------------------------------------------------

def _template(node) -> str:
    """A description's text: an f-string's fields shown as ⟨what they hold⟩; brackets escaped, as
    ``W2[k][j]`` is not a Markdown reference link."""
    return _fields(node).replace("[", "\\[").replace("]", "\\]")


def _fields(node) -> str:
    if isinstance(node, ast.Constant):
        return node.value
    parts = []
    for value in node.values:
        if isinstance(value, ast.Constant):
            parts.append(value.value)
        else:
            expr = value.value
            if isinstance(expr, ast.Call) and getattr(expr.func, "attr", getattr(expr.func, "id", "")).endswith(
                    "label") and expr.args:
                expr = expr.args[0]
            while isinstance(expr, (ast.Attribute, ast.Subscript)) and not isinstance(expr, ast.Name):
                expr = ast.Name(expr.attr) if isinstance(expr, ast.Attribute) else expr.value
            parts.append(f"⟨{expr.id}⟩" if isinstance(expr, ast.Name) else "⟨…⟩")
    return "".join(parts)


def _described(tree) -> list[tuple[str, int, str, str]]:
    """(function, rank, description, where) of every (rank, "description", ...) tuple in ``tree``;
    ``where`` is the slip's key (forward, inputs, params) when the tuple is a dict's value."""
    found = []

    def text(node):
        return isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str))

    def is_entry(node):
        return (isinstance(node, ast.Tuple) and len(node.elts) >= 2 and isinstance(node.elts[0], ast.Constant)
                and type(node.elts[0].value) is int and text(node.elts[1]))

    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef,)):
            continue
        # (rank, what) with ``what = f"..."`` assigned earlier in the function: the text it names
        said = sorted((node.lineno, node.targets[0].id, node.value) for node in ast.walk(fn)
                      if isinstance(node, ast.Assign) and len(node.targets) == 1
                      and isinstance(node.targets[0], ast.Name) and text(node.value))
        for node in ast.walk(fn):
            if (isinstance(node, ast.Tuple) and len(node.elts) >= 2 and isinstance(node.elts[0], ast.Constant)
                    and type(node.elts[0].value) is int and isinstance(node.elts[1], ast.Name)):
                named = [v for line, name, v in said if name == node.elts[1].id and line <= node.lineno]
                if named:
                    node.elts[1] = named[-1]
        keyed = {}
        for node in ast.walk(fn):
            if isinstance(node, ast.Dict):
                for k, v in zip(node.keys, node.values):
                    if isinstance(k, ast.Constant) and is_entry(v):
                        keyed[id(v)] = k.value
        for node in ast.walk(fn):
            if is_entry(node):
                found.append((fn.name, node.elts[0].value, _template(node.elts[1]), keyed.get(id(node), "")))
    return found


NODE_KINDS = {"a": "a layer's output a", "loss": "the loss", "dC_da": "∂C/∂a", "upstream": "a gradient passed back",
              "da_dz": "∂a/∂z", "delta": "δ = ∂C/∂z", "grad": "a parameter's gradient",
              "new": "the forward pass after the step", "state": "an optimizer state (m, v, s)",
              "param": "a parameter after the step", "weight_decay": "a state or parameter after the step"}
WHERE = {"forward": "the layer's own values", "inputs": "the gradient it passes back",
         "params": "its parameters' gradients"}


def mistakes_page() -> str:
    import symbackprop.check.passmistakes as passm
    import symbackprop.check.stepmistakes as stepm
    from symbackprop.entries.layers import LAYERS
    out = ["# Catalogued mistakes\n\n", NOTE,
           "What `check` can name when a number is wrong: each mistake is a rewrite of the number's own "
           "formula, tried where it would show, the commoner (lower rank) first. ⟨…⟩ stands for what the "
           "diagnosis fills in (a layer, an element, an activation's name). Read off the catalogue's sources: "
           "`symbackprop/check/passmistakes.py`, `stepmistakes.py` and each layer entry's `slips`.\n\n"]
    for title, module in (("The forward and backward pass", passm), ("The optimizer's step", stepm)):
        rows = [[NODE_KINDS.get(fn, fn), rank, text] for fn, rank, text, _ in
                _described(ast.parse(inspect.getsource(module)))]
        out += [f"## {title}\n\n", table(["number", "rank", "mistake"], sorted(rows, key=lambda r: (r[1], r[2]))), "\n"]
    out.append("## The layers' own slips\n\n")
    out.append(layer_mistakes())
    return "".join(out)


def layer_mistakes(*families: str, level: int = 3) -> str:
    """The catalogued slips of the layer kinds of ``families`` (modules of entries/layers; all when
    none is named), one table per module, read off the module's source (and its text module's)."""
    from symbackprop.entries.layers import LAYERS
    modules, out = {}, []
    for name, kind in LAYERS.items():
        if not families or family(kind) in families:
            modules.setdefault(type(kind).__module__, []).append(name)
    for module, names in modules.items():
        # the kind's module and those of the classes it inherits its text from (recurrent_text.py, ...)
        sources = {c.__module__ for n in names for c in type(LAYERS[n]).__mro__
                   if c.__module__.startswith("symbackprop.entries.layers.") and not c.__module__.endswith(".base")}
        rows = []
        for name in sorted(sources):
            try:
                source = inspect.getsource(sys.modules[name])
            except (KeyError, OSError, TypeError):     # a kind defined outside a module file has no source to read
                continue
            rows += [[WHERE.get(where, where), rank, text] for fn, rank, text, where in
                     _described(ast.parse(source)) if fn == "slips" or where]
        if rows:
            out += [f"{'#' * level} {', '.join(f'`{n}`' for n in names)}\n\n",
                    table(["tried on", "rank", "mistake"], sorted(rows, key=lambda r: (r[1], r[2]))), "\n"]
    return "".join(out) or "*(no catalogued slip for these kinds)*\n"


# ---- command lines ----------------------------------------------------------------------------

def _flags(parser, skip=("-h",)) -> str:
    import argparse
    rows = []
    for action in parser._actions:
        if any(s in skip for s in action.option_strings) or action.help == argparse.SUPPRESS:
            continue
        names = ", ".join(action.option_strings) or action.dest
        if action.option_strings and action.nargs != 0:
            names += " " + (action.metavar or (("{" + ",".join(map(str, action.choices)) + "}") if action.choices
                                                else action.dest.upper()))
        unset = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        default = "" if unset or action.nargs == 0 else code(action.default)
        rows.append([f"`{names}`", default, (action.help or "").replace("%(default)s", str(action.default))])
    return table(["flag", "default", "what it does"], rows)


def cli(command: str) -> str:
    """The flags of ``symbackprop COMMAND``, from the CLI's own parser."""
    from symbackprop.cli import build_parser
    sub = build_parser()._subparsers._group_actions[0].choices[command]
    usage = " ".join(sub.format_usage().split())
    return f"```text\n{usage.removeprefix('usage: ')}\n```\n\n" + _flags(sub)


def _trainer(backend: str, example: str = ""):
    """A trainer generated here from ``examples/xor.toml`` (``mnist`` for torch; ``example`` when
    given), imported."""
    from symbackprop.api import load
    from symbackprop.codegen.trainer import render
    spec = ROOT / "examples" / (example or ("xor.toml" if backend == "numpy" else "mnist.toml"))
    source = render(load(spec), backend=backend, source=str(spec.relative_to(ROOT)))
    folder = Path(tempfile.mkdtemp(prefix="symbackprop-docs-"))
    name = f"trainer_{backend}{'_' + Path(example).stem if example else ''}"
    path = folder / f"{name}.py"
    path.write_text(source, encoding="utf-8")
    module_spec = importlib.util.spec_from_file_location(f"_docs_{name}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def trainer_flags(which: str = "train") -> str:
    """The generated trainer's flags (``train`` or ``predict``), from its own argparse parser; the
    torch backend's extra flags after them. ``text``: the flags a next-character model's trainer
    (``examples/charlstm.toml``) adds; ``sample``: its ``sample`` subcommand's."""
    numpy_ = _trainer("numpy")
    if which in ("text", "sample"):
        text = _trainer("numpy", "charlstm.toml")
        if which == "sample":
            return _flags(text.build_sample_parser())
        base = {s for a in numpy_.build_parser()._actions for s in a.option_strings}
        return _flags(text.build_parser(), skip=tuple(base | {"-h"}))
    build = numpy_.build_parser if which == "train" else numpy_.build_predict_parser
    out = _flags(build())
    if which == "train":
        out += ("\nA default taken from the spec (the learning rate) is shown for `examples/xor.toml`, the "
                "trainer generated here.\n")
    try:
        torch_ = _trainer("torch")
    except ImportError as err:
        return out + f"\n*(torch is not installed where the site was built: {err}; `--backend torch` adds flags.)*\n"
    base = {s for a in build()._actions for s in a.option_strings}
    extra = (torch_.build_parser if which == "train" else torch_.build_predict_parser)()
    skip = tuple(base | {"-h"})
    return out + "\n`--backend torch` adds:\n\n" + _flags(extra, skip=skip)


def cli_page() -> str:
    from symbackprop.cli import COMMANDS
    parts = ["# Command-line flags\n\n", NOTE, "From the argparse parsers themselves: `symbackprop`'s "
             "(`symbackprop/commands/`) and a generated trainer's.\n\n"]
    for command in COMMANDS:
        parts += [f"## `symbackprop {command}`\n\n", cli(command), "\n"]
    parts += ["## A generated trainer\n\n", "`python trainer.py [flags]`:\n\n", trainer_flags("train"),
              "\n`python trainer.py predict [flags]`:\n\n", trainer_flags("predict")]
    return "".join(parts)


# ---- limits -----------------------------------------------------------------------------------

def limits() -> str:
    """The table of bounds in ``symbackprop/spec/limits.py``'s docstring, and its constants."""
    import symbackprop.spec.limits as mod
    doc = inspect.getdoc(mod)
    rules = [i for i, line in enumerate(doc.splitlines()) if re.fullmatch(r"=+( +=+)+", line)]
    lines = doc.splitlines()
    rows = []
    if len(rules) >= 3:
        cuts = [m.span() for m in re.finditer(r"=+", lines[rules[0]])]
        for line in lines[rules[1] + 1:rules[2]]:
            cells = [line[a:(cuts[i + 1][0] if i + 1 < len(cuts) else None)].strip() for i, (a, _) in enumerate(cuts)]
            if cells[0] or not rows:
                rows.append(cells)
            else:                                # a continuation line
                rows[-1] = [f"{old} {new}".strip() for old, new in zip(rows[-1], cells)]
    rst = lambda text: re.sub(r":\w+:`([^`]+)`", r"`\1`", text).replace("``", "`")
    head = [rst(c) for c in re.split(r"\s{2,}", lines[rules[0] + 1].strip())] if rules else []
    out = table([h.capitalize() for h in head], [[rst(c) for c in row] for row in rows]) if rows else ""
    constants = [[code(name), code(value)] for name, value in vars(mod).items()
                 if name.isupper() and isinstance(value, (int, float)) and not isinstance(value, bool)]
    return out + "\nThe constants of `symbackprop/spec/limits.py`:\n\n" + table(["name", "value"], constants)


# ---- the pages --------------------------------------------------------------------------------

INSERTS = {"layer-fields": layer_fields, "layer-mistakes": layer_mistakes, "cli": cli, "trainer-flags": trainer_flags, "limits": limits}


def pages() -> dict[str, str]:
    """Every page the build gets from here: path under docs/ -> Markdown."""
    layers, families = layers_page()
    out = {"reference/layers.md": layers, "reference/activations.md": activations_page(),
           "reference/optimizers.md": optimizers_page(), "reference/mistakes.md": mistakes_page(),
           "reference/cli.md": cli_page(), **families}
    for path in sorted(DOCS.rglob("*.md")):
        text = path.read_text(encoding="utf-8")
        if MARKER.search(text):
            out[path.relative_to(DOCS).as_posix()] = MARKER.sub(
                lambda m: INSERTS[m.group(1)](*m.group(2).split()).rstrip("\n"), text)
    return out


def assets() -> dict[str, Path]:
    """The vendored KaTeX, for the site's math: path under the site -> file."""
    katex = ROOT / "symbackprop" / "static" / "katex"
    return {f"assets/katex/{p.relative_to(katex).as_posix()}": p for p in katex.rglob("*") if p.is_file()}


def write(opener) -> None:
    for path, text in pages().items():
        with opener(path, "w") as f:
            f.write(text)
    for path, source in assets().items():
        with opener(path, "wb") as f:
            f.write(source.read_bytes())


if __name__ == "<run_path>":          # run by mkdocs-gen-files
    import mkdocs_gen_files
    write(mkdocs_gen_files.open)
elif __name__ == "__main__":          # python docs/gen_reference.py OUT: the pages into a folder, to read
    out_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "site-reference")

    def opener(path, mode):
        (out_dir / path).parent.mkdir(parents=True, exist_ok=True)
        return open(out_dir / path, mode, **({} if "b" in mode else {"encoding": "utf-8"}))
    write(opener)
