"""TOML text for what an exercise writes: the spec with its numbers, the hand-file skeleton and the
filled hand file. Only what those hold: tables, arrays of tables, strings, booleans, integers,
floats (as their shortest round-trip text) and nested arrays of them.

>>> print(dumps({"network": {"layers": [2, 1]}, "layer": [{"type": "dense"}], "values": {"grad.W2": [[""]]}}))
[network]
layers = [2, 1]
<BLANKLINE>
[[layer]]
type = "dense"
<BLANKLINE>
[values]
"grad.W2" = [[""]]
<BLANKLINE>
"""
import json
import math
import re

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def dumps(data: dict, header: str = "") -> str:
    """``data`` (a dict of tables and lists of tables) as TOML, after ``header``'s comment lines."""
    out = [f"# {line}".rstrip() for line in header.splitlines()]
    if out:
        out.append("")
    for name, value in data.items():
        if isinstance(value, dict):
            out.append(f"[{key(name)}]")
            out += [f"{key(k)} = {text(v)}" for k, v in value.items()]
            out.append("")
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for table in value:
                out.append(f"[[{key(name)}]]")
                out += [f"{key(k)} = {text(v)}" for k, v in table.items()]
                out.append("")
        else:
            raise ValueError(f"{name}: a top-level value must be a table or a list of tables")
    return "\n".join(out)


def key(name: str) -> str:
    return name if _BARE.fullmatch(name) else json.dumps(name, ensure_ascii=False)


def text(value) -> str:
    """One TOML value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "nan" if math.isnan(value) else "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key(k)} = {text(v)}" for k, v in value.items()) + "}"
    if hasattr(value, "tolist"):
        return text(value.tolist())
    raise ValueError(f"no TOML for {type(value).__name__}")


class Raw(str):
    """A number as text, written into TOML as it is (the key's digits, as ``check`` reads them)."""


def nested(shape, element):
    """Nested lists of ``shape`` whose items are ``element(index)``; a bare item for shape ()."""
    def build(prefix, dims):
        if not dims:
            return element(prefix)
        return [build(prefix + (i,), dims[1:]) for i in range(dims[0])]
    return build((), tuple(shape))


def hand_text(values: dict, header: str) -> str:
    """A hand file: ``values`` maps each quantity to nested lists of Raw numbers or "" blanks."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()] + ["", "[values]"]
    for name, value in values.items():
        lines.append(f"{key(name)} = {hand_value(value)}")
    return "\n".join(lines) + "\n"


def hand_value(value) -> str:
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(hand_value(v) for v in value) + "]"
    return text(value)
