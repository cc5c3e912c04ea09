"""The network spec: TOML or JSON in, a validated :class:`Network` out.

>>> net = Network.from_dict({"network": {"layers": [3, 2, 1],
...     "activations": ["sigmoid", "sigmoid"], "loss": "squared_error"}})
>>> net.layers, net.activations[0].name, net.loss.name
((3, 2, 1), 'sigmoid', 'squared_error')
"""
import json
import math
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import limits
from .errors import SpecError, shown
from .optimizers import HYPERS, OPTIMIZERS
from .registry import ACTIVATIONS, LOSSES, Activation, Loss, z
from .safeexpr import parse_formula

TABLES = {"network", "parameters", "sample", "optimizer"}
NETWORK_KEYS = {"layers", "activations", "loss"}
OPTIMIZER_KEYS = {"name", "learning_rate", "beta1", "beta2", "eps", "momentum", "weight_decay",
                  "bias_correction", "train_biases", "rho",
                  "max_iters", "loss_below", "min_delta"}  # the training loop's stopping conditions


@dataclass(frozen=True)
class Network:
    """A validated network: sizes, one activation per weight layer, a loss, and optional numbers.

    ``parameters`` maps ``W1``, ``b1``, ... to float64 arrays (W<l> of shape (n_l, n_{l-1}));
    ``x`` and ``y`` are (N, n_in) and (N, n_out) arrays, ``batched`` says whether the spec gave a
    list of examples. ``exact`` keeps the numbers as written, for exact arithmetic.
    """
    layers: tuple[int, ...]
    activations: tuple[Activation, ...]
    loss: Loss
    parameters: dict[str, np.ndarray] | None = None
    x: np.ndarray | None = None
    y: np.ndarray | None = None
    batched: bool = False
    optimizer: dict = field(default_factory=dict)
    exact: dict = field(default_factory=dict, repr=False)
    source: str = "<dict>"

    @property
    def depth(self) -> int:
        return len(self.layers) - 1

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """W1, b1, W2, b2, ... in order, each with its shape."""
        return _shapes(self.layers)

    @property
    def parameter_count(self) -> int:
        return sum(math.prod(s) for s in self.parameter_shapes().values())

    @property
    def has_numbers(self) -> bool:
        return self.parameters is not None and self.x is not None

    def compile(self, dtype=np.float64):
        """Fast NumPy ``forward``/``loss``/``gradients`` generated from the matrix-form derivation."""
        from .codegen import compile_network
        return compile_network(self, dtype)

    @classmethod
    def from_dict(cls, data: dict, source: str = "<dict>") -> "Network":
        """Validate the spec's data; SpecError names the first bad field."""
        if not isinstance(data, dict):
            raise SpecError("spec", "expected a table at the top level")
        for key in data:
            if key not in TABLES:
                raise SpecError(key, f"unknown table (expected {', '.join(sorted(TABLES))})")
        net = _table(data, "network", required=True)
        for key in net:
            if key not in NETWORK_KEYS:
                raise SpecError(f"network.{key}", "unknown key (expected layers, activations, loss)")
        layers = _layers(net.get("layers"))
        activations = _activations(net.get("activations"), len(layers) - 1)
        loss = _loss(net.get("loss"))
        shapes = _shapes(layers)
        exact = {}
        parameters = None
        if "parameters" in data:
            params = _table(data, "parameters")
            for key in params:
                if key not in shapes:
                    raise SpecError(f"parameters.{key}", f"unknown parameter (expected {', '.join(shapes)})")
            parameters = {}
            for name, shape in shapes.items():
                if name not in params:
                    raise SpecError(f"parameters.{name}", f"missing (expected shape {_shape_text(shape)})")
                parameters[name] = _array(params[name], shape, f"parameters.{name}")
                exact[name] = params[name]
        x = y = None
        batched = False
        if "sample" in data:
            x, y, batched, exact["x"], exact["y"] = _sample(_table(data, "sample"), layers)
            low, high = loss.targets
            if np.any(y < low) or np.any(y > high):
                raise SpecError("sample.y", f"{loss.name} needs targets in [{low:g}, {high:g}]")
        optimizer = optimizer_table(data.get("optimizer", {}))
        return cls(tuple(layers), activations, loss, parameters, x, y, batched, optimizer, exact, source)


def read_input(path: Path) -> str:
    """The text of a file the user named; SpecError naming it if it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(str(path), "no such file") from None
    except OSError as err:
        raise SpecError(str(path), f"cannot read: {err.strerror or err}") from None
    except UnicodeDecodeError as err:
        raise SpecError(str(path), f"cannot read: not UTF-8 text (byte {err.start})") from None


def load(path: str | Path) -> Network:
    """Read a TOML (or JSON) spec file into a Network; SpecError on any problem."""
    path = Path(path)
    text = read_input(path)
    data = parse_document(text, "JSON" if path.suffix.lower() == ".json" else "TOML", str(path))
    return Network.from_dict(data, source=str(path))


def parse_document(text: str, kind: str, source: str, parse_float=float) -> dict:
    """The data of a TOML or JSON document (``kind``), refused with one line naming ``source``
    when it is not valid, repeats a key (JSON; TOML refuses that itself), holds a number of more
    digits than Python converts (4,300), or nests arrays and tables more than
    :data:`limits.NESTING <symbackprop.limits.NESTING>` deep.

    >>> parse_document('{"a": 1, "a": 2}', "JSON", "spec.json")
    Traceback (most recent call last):
    symbackprop.errors.SpecError: spec.json: invalid JSON: duplicate key 'a'
    """
    try:
        if kind == "JSON":
            data = json.loads(text, object_pairs_hook=_unique_keys, parse_float=parse_float)
        else:
            data = tomllib.loads(text, parse_float=parse_float)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as err:
        raise SpecError(source, f"invalid {kind}: {err}") from None
    except _DuplicateKey as err:
        raise SpecError(source, f"invalid JSON: duplicate key {shown(err.key)}") from None
    except RecursionError:
        raise SpecError(source, f"arrays or tables nested more than {limits.NESTING} deep (the limit)") from None
    except ValueError:          # Python's limit on converting a long run of digits to an integer
        digits = re.search(r"\d{%d,}" % (sys.get_int_max_str_digits() + 1), text)
        line = text.count("\n", 0, digits.start()) + 1 if digits else "?"
        raise SpecError(f"{source}, line {line}", f"a number of {len(digits[0]) if digits else 'too many'} "
                                                  "digits (a float64 has at most 309)") from None
    if _depth(data) > limits.NESTING:
        raise SpecError(source, f"arrays or tables nested more than {limits.NESTING} deep (the limit)")
    return data


class _DuplicateKey(Exception):
    def __init__(self, key):
        self.key = key


def _unique_keys(pairs):
    data = {}
    for key, value in pairs:
        if key in data:
            raise _DuplicateKey(key)
        data[key] = value
    return data


def _depth(data) -> int:
    """How deeply lists and dicts nest in ``data`` (a number is 0), without recursion."""
    deepest, stack = 0, [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (list, dict)):
            depth += 1
            deepest = max(deepest, depth)
            if depth > limits.NESTING:
                break
            stack += [(v, depth) for v in (value.values() if isinstance(value, dict) else value)]
    return deepest


def _shapes(layers):
    shapes = {}
    for l in range(1, len(layers)):
        shapes[f"W{l}"] = (layers[l], layers[l - 1])
        shapes[f"b{l}"] = (layers[l],)
    return shapes


def _finite(v) -> bool:
    """Finite as a float64: huge integers from TOML or JSON are not."""
    try:
        return math.isfinite(float(v))
    except OverflowError:
        return False


def _table(data, name, required=False):
    if name not in data:
        if required:
            raise SpecError(name, "missing table")
        return {}
    if not isinstance(data[name], dict):
        raise SpecError(name, "expected a table")
    return data[name]


def _layers(value):
    if not isinstance(value, list) or len(value) < 2:
        raise SpecError("network.layers", "expected a list of at least two sizes, e.g. [3, 2, 1]")
    for i, size in enumerate(value):
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise SpecError(f"network.layers[{i}]", f"expected a positive integer, got {shown(size)}")
    return value


def _activations(value, count):
    if isinstance(value, str):
        value = [value] * count
    if not isinstance(value, list):
        raise SpecError("network.activations", "expected a list with one activation per weight layer")
    if len(value) != count:
        raise SpecError("network.activations",
                        f"{len(value)} activations for {count} weight layers (expected {count})")
    acts = []
    for i, name in enumerate(value):
        where = f"network.activations[{i}]"
        if not isinstance(name, str):
            raise SpecError(where, f"expected a name or a formula in z, got {shown(name)}")
        if name in ACTIVATIONS:
            act = ACTIVATIONS[name]
        elif re.fullmatch(r"[A-Za-z_]\w*", name) and name != "z":
            raise SpecError(where, f"unknown activation {shown(name)} (known: {', '.join(ACTIVATIONS)}; "
                                   "or a formula in z such as \"z/(1 + abs(z))\")")
        else:
            act = Activation(name, parse_formula(name, {"z": z}, where), r"f")
        if not act.elementwise and i != count - 1:
            raise SpecError(where, f"{shown(name)} is allowed only on the output layer")
        acts.append(act)
    return tuple(acts)


def _loss(value):
    if not isinstance(value, str) or value not in LOSSES:
        raise SpecError("network.loss", f"unknown loss {shown(value)} (known: {', '.join(LOSSES)})")
    return LOSSES[value]


def _shape_text(shape):
    return "(" + ", ".join(map(str, shape)) + ")"


def _array(value, shape, where):
    """A float64 array of exactly ``shape`` from nested lists of finite numbers."""
    def check(v, dims, path):
        if not dims:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise SpecError(path, f"expected a number, got {shown(v)}")
            if not _finite(v):
                raise SpecError(path, f"expected a finite number, got {shown(v)}")
            return
        if not isinstance(v, list) or len(v) != dims[0]:
            got = f"{len(v)} entries" if isinstance(v, list) else shown(v)
            raise SpecError(where, f"expected shape {_shape_text(shape)}, got {got} at {path}")
        for i, item in enumerate(v):
            check(item, dims[1:], f"{path}[{i}]")
    check(value, shape, where)
    return np.array(value, dtype=np.float64).reshape(shape)


def _as_rows(value, batched, width):
    """y as a list of rows; a bare number or a flat list is accepted for a single output."""
    if not batched:
        return [value if isinstance(value, list) else [value]]
    if width == 1 and isinstance(value, list):
        return [v if isinstance(v, list) else [v] for v in value]
    return value


def _sample(sample, layers):
    for key in sample:
        if key not in ("x", "y"):
            raise SpecError(f"sample.{key}", "unknown key (expected x, y)")
    for key in ("x", "y"):
        if key not in sample:
            raise SpecError(f"sample.{key}", "missing")
    xv = sample["x"]
    batched = isinstance(xv, list) and len(xv) > 0 and all(isinstance(r, list) for r in xv)
    if layers[0] == 1 and isinstance(xv, list) and len(xv) > 1 and not batched:
        xv, batched = [[v] for v in xv], True     # one input per example: a flat list is a batch
    rows = xv if batched else [xv]
    if batched and not rows:
        raise SpecError("sample.x", "empty batch")
    x = _array(rows, (len(rows), layers[0]), "sample.x")
    yrows = _as_rows(sample["y"], batched, layers[-1])
    if not isinstance(yrows, list) or len(yrows) != len(rows):
        count = len(yrows) if isinstance(yrows, list) else 1
        raise SpecError("sample.y", f"{count} targets for {len(rows)} inputs")
    y = _array(yrows, (len(rows), layers[-1]), "sample.y")
    return x, y, batched, rows, yrows


def optimizer_table(table) -> dict:
    """A validated ``[optimizer]`` table (of a spec, or of a hand file for ``check``)."""
    if not isinstance(table, dict):
        raise SpecError("optimizer", "expected a table")
    for key, value in table.items():
        where = f"optimizer.{key}"
        if key not in OPTIMIZER_KEYS:
            raise SpecError(where, f"unknown key (expected {', '.join(sorted(OPTIMIZER_KEYS))})")
        if key == "name":
            if not isinstance(value, str) or value not in OPTIMIZERS:
                raise SpecError(where, f"unknown optimizer {shown(value)} (known: {', '.join(OPTIMIZERS)})")
        elif key in HYPERS:
            HYPERS[key].check(value, where)      # each hyper-parameter's domain, declared once
        elif key in ("bias_correction", "train_biases"):
            if not isinstance(value, bool):
                raise SpecError(where, f"expected true or false, got {shown(value)}")
        elif key == "max_iters":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SpecError(where, f"expected a positive integer, got {shown(value)}")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value) or value < 0:
            raise SpecError(where, f"expected a non-negative number, got {shown(value)}")
    return dict(table)
