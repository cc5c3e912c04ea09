"""The package's folders are its stages, and imports run one way: a module imports only its own
stage and earlier ones (function-level imports included), and no modules import each other in a
circle. The order is the one the package's docstring and the README's layout section give."""
import ast
from pathlib import Path

import symbackprop

PACKAGE = Path(symbackprop.__file__).parent
# earliest first; a stage may import its own modules and every stage before it
STAGES = (("errors", "_lazy"), ("writers",), ("entries",), ("spec",), ("derive",), ("report",), ("codegen",),
          ("numeric",), ("explain",), ("check",), ("exercise",), ("commands", "api", "cli", "__init__", "__main__"))
RANK = {name: i for i, names in enumerate(STAGES) for name in names}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every symbackprop module ``path`` imports, at any depth of its code."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "symbackprop":
                continue
            for alias in node.names:   # `from . import x`: x may be a module
                sub = f"{target}.{alias.name}"
                found.add(sub if _exists(sub) else target)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "symbackprop"}
    return found - {name}


def _exists(module: str) -> bool:
    rel = Path(*module.split(".")[1:])
    return (PACKAGE / rel).with_suffix(".py").exists() or (PACKAGE / rel / "__init__.py").exists()


def stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


GRAPH = {module_name(p): imports(p) for p in PACKAGE.rglob("*.py")}


def test_every_module_is_in_a_stage():
    assert {stage(m) for m in GRAPH} <= set(RANK), {stage(m) for m in GRAPH} - set(RANK)


def test_no_module_imports_a_later_stage():
    upward = [(m, t) for m, targets in GRAPH.items() for t in targets
              if t != "symbackprop" and RANK[stage(t)] > RANK[stage(m)]]
    assert not upward, upward


def test_stages_of_one_rank_do_not_import_each_other():
    across = [(m, t) for m, targets in GRAPH.items() for t in targets if t != "symbackprop"
              and stage(t) != stage(m) and RANK[stage(t)] == RANK[stage(m)] and stage(m) != "commands"
              and stage(m) not in ("api", "cli", "__init__", "__main__")]
    assert not across, across


def test_no_import_circles():
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for t in sorted(GRAPH.get(m, ())):
            if t.startswith(m + "."):   # a package's __init__ importing its own modules lazily
                continue
            if state.get(t) == "open":
                raise AssertionError("circle: " + " -> ".join(stack[stack.index(t):] + [t]))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = "done"

    for m in sorted(GRAPH):
        if m not in state:
            visit(m)


def test_the_derivation_imports_no_writer_or_printer():
    for m, targets in GRAPH.items():
        if stage(m) == "derive":
            assert not {stage(t) for t in targets} & {"writers", "report", "codegen"}, (m, targets)


def test_files_stay_small():
    """No file over ~500 lines (a longer one holds several jobs)."""
    long = {m: n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 520
            for m in [module_name(p)]}
    assert not long, long
