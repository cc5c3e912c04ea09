"""A hand calculation's numbers: the HAND file ``check`` reads, validated against the network.

A ``[values]`` table names quantities as the network's own: ``z1``, ``a1`` (layer outputs),
``mean2``, ``var2``, ``xhat2`` (a normalization layer's statistics and x̂), ``loss``, ``dC/da2``,
``da2/dz2``, ``delta2`` (∂C/∂z2), ``dC/dmean2``, ..., ``grad.W1``, ``grad.gamma2``, one optimizer step
(``sgd.W2``, ``adam.m.W2``) and the forward pass after it (``new.z2``, ``new.loss``). A value is a
number or a nested list in the quantity's shape — with a batch, per-example quantities have the
example first — or one element, ``"a1[2][3]"`` (example 2, element 3): indices count from 1, as
the math does. A written number stands for the interval its digits allow.
"""
import difflib
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from .graph import index_text, step_quantity
from ..errors import SpecError, cut, printable, shown
from ..spec.inputs import as_network
from .intervals import Interval
from ..derive.model import Model
from ..entries.optimizers import OPTIMIZERS
from ..spec.network import Network, optimizer_table, parse_document, read_input, trained_names

MAX_PARAMETERS = 3000   # check's limits: parameters, and values of one pass (every example's)
MAX_VALUES = 4000


# the person's numbers -------------------------------------------------------------------------
@dataclass(frozen=True)
class Written:
    """A number as written: its text, value and the interval its digits allow.

    >>> w = Written.parse("8.24e-7", "x")
    >>> w.value, w.interval.lo < 8.235e-7 < w.interval.hi, Written.parse("3", "x").interval.width
    (8.24e-07, True, 0.0)
    """
    text: str
    value: float
    interval: Interval

    _NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")

    @classmethod
    def parse(cls, raw, where: str) -> "Written":
        if isinstance(raw, float) and math.isfinite(raw):
            raw = repr(raw)  # a float from Python: its shortest round-trip text
        if isinstance(raw, bool) or not isinstance(raw, (int, str)):
            kind = "a finite number" if isinstance(raw, float) else "a number"
            raise SpecError(where, f"expected {kind}, got {_show(raw)}")
        if isinstance(raw, int):
            if raw.bit_length() > 1023:          # beyond float64 (and maybe beyond str(), 4,300 digits)
                raise SpecError(where, f"expected a finite number, got {_show(raw)}")
            return cls(str(raw), float(raw), Interval.point(float(raw)))
        if len(raw) > MAX_TEXT:
            raise SpecError(where, f"expected a number, got {_show(raw)} ({len(raw)} characters)")
        text = raw.strip().replace("\u2212", "-")
        if isinstance(raw, _TomlFloat):
            text = text.replace("_", "")  # TOML's digit separators
        if not cls._NUMBER.fullmatch(text):
            kind = "a finite number" if isinstance(raw, _TomlFloat) else "a number"
            raise SpecError(where, f"expected {kind}, got {_show(raw)}")
        try:
            value = Decimal(text)
        except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
            raise SpecError(where, f"expected a number, got {_show(raw)}") from None
        mantissa, _, exponent = text.lower().partition("e")
        if not math.isfinite(float(value)):
            raise SpecError(where, f"expected a finite number, got {_show(raw)}")
        if "." not in mantissa and not exponent:
            return cls(text, float(value), Interval.point(float(value)))
        decimals = len(mantissa.partition(".")[2])
        half = Decimal(5).scaleb(int(exponent or 0) - decimals - 1)
        return cls(text, float(value), Interval.hull(float(value - half), float(value + half)))


class _TomlFloat(str):
    """A bare TOML float, kept as the text it was written as."""


MAX_TEXT = 400   # characters of a number written as text; longer is not a number a person wrote


def _show(raw) -> str:
    """A value as the person wrote it, for messages (cut short, see :func:`~symbackprop.errors.shown`)."""
    if isinstance(raw, list):
        return cut("[" + ", ".join(_show(x) for x in raw[:8]) + (", ...]" if len(raw) > 8 else "]"))
    if isinstance(raw, _TomlFloat):
        return cut(printable(str(raw).replace("_", "")))
    return shown(raw)


@dataclass(frozen=True)
class Hand:
    """The person's numbers: (quantity, index) -> Written, in the order given; the key each came
    from; and the hand file's own ``[optimizer]`` table (merged over the spec's)."""
    values: dict
    keys: dict
    optimizer: dict = field(default_factory=dict)
    source: str = "<hand>"
    notes: tuple = ()         # what the person should know about how the file was read

    def __repr__(self) -> str:
        return f"<Hand {self.source}: {len(self.values)} numbers>"



def model_of(network: Network) -> Model:
    """The network's symbolic model, built once for the hand file and the check (a few are kept)."""
    for net, model in _MODELS:
        if net is network:
            return model
    model = Model(network)
    _MODELS.insert(0, (network, model))
    del _MODELS[4:]
    return model


_MODELS: list = []


def quantities(network: Network) -> dict[str, tuple[int, ...]]:
    """Every quantity name a hand file may use, with its shape (a leading example axis, for a
    batch, on everything computed per example)."""
    model, q = model_of(network), {}
    batch = (network.x.shape[0],) if network.batched else ()

    def shape(stage):
        if stage.per_example and model.examples == 1:
            return batch + stage.symbols.shape[1:]
        return stage.symbols.shape
    forward = {stage.quantity: shape(stage) for stage in model.stages()}
    q.update(forward)
    q["loss"] = ()
    for lm in reversed(model.layers):
        for stage in reversed(lm.stages):
            pre = stage.name == "z" and lm.layer.has_z      # a GRU's update gate z is not a pre-activation
            kind = "delta" if pre else f"dC/d{stage.name}"
            q[step_quantity(kind, lm.index)] = forward[stage.quantity]
            if pre and lm.layer.activation.elementwise:
                q[step_quantity("da/dz", lm.index)] = forward[stage.quantity]
    shapes = network.parameter_shapes()
    for p, s in shapes.items():
        q[f"grad.{p}"] = s
    for name, opt in OPTIMIZERS.items():
        for p, s in shapes.items():
            q[f"{name}.{p}"] = s
            for state in opt.state:
                q[f"{name}.{state}.{p}"] = s
    q.update({f"new.{k}": s for k, s in forward.items()})
    q["new.loss"] = ()
    return q


def values_count(network: Network) -> int:
    """The values of one forward pass over the sample: what check's work grows with."""
    n = network.x.shape[0]
    return sum(n * math.prod(layer.shape) for layer in network.graph)


def load_hand(path, network) -> Hand:
    """Read a HAND file (TOML); SpecError naming the key on any problem. ``network`` is a Network,
    a spec's data as a dict, or a spec path."""
    network = as_network(network)
    path = Path(path)
    text = read_input(path)
    data = parse_document(text, "TOML", str(path), parse_float=_TomlFloat)
    return parse_hand(data, network, str(path))


DEPRECATED_ZERO_BASED = ("indices read as 0-based, because one is 0 (deprecated: write them 1-based as "
                         "the math does, grad.W2[1][2] for W2's row 1, column 2)")

_KEY = re.compile(r"\s*(?P<name>[^\[\]\s]+)\s*(?P<index>(?:\[\s*\d+\s*\])*)\s*")


def usable(network: Network) -> None:
    """SpecError unless ``network`` is one check can work with: numbers, and hand-sized (at most
    :data:`MAX_PARAMETERS` parameters and :data:`MAX_VALUES` values in a forward pass over the
    sample, every example's; a check of that size takes seconds)."""
    if network.parameter_count > MAX_PARAMETERS:
        raise SpecError(network.source, f"check is for hand-sized networks: at most {MAX_PARAMETERS} "
                                        f"parameters, this one has {network.parameter_count}")
    if not network.has_numbers:
        raise SpecError(network.source, "check needs the spec's [parameters] and [sample]")
    if values_count(network) > MAX_VALUES:
        raise SpecError("sample.x", f"check is for hand-sized calculations: at most {MAX_VALUES} values in a "
                                    f"forward pass over the sample, this one has {values_count(network)} "
                                    f"({network.x.shape[0]} example{'s' if network.x.shape[0] > 1 else ''})")


def parse_hand(data: dict, network, source: str = "<hand>") -> Hand:
    """Validate a hand file's data. Numbers may be TOML numbers, or strings such as "0.50" (which
    keep their trailing zeros in any TOML reader). Dotted keys (``grad.W2 = ...``) and quoted ones
    (``"grad.W2" = ...``) are the same. Indices count from 1, as the math does."""
    network = as_network(network)
    usable(network)
    if not isinstance(data, dict):
        raise SpecError(source, "expected a table at the top level")
    for key in data:
        if key not in ("values", "optimizer"):
            raise SpecError(key, "unknown table in the hand file (expected values, optimizer)")
    if not isinstance(data.get("values"), dict):
        raise SpecError("values", "missing table of numbers" if "values" not in data else "expected a table")
    table = data.get("optimizer", {})
    if not isinstance(table, dict):
        raise SpecError(f"{source}: optimizer", "expected a table")
    table = {k: float(val) if isinstance(val, _TomlFloat) else val for k, val in table.items()}
    try:
        table = optimizer_table(table)
        trained_names(table, network.parameter_shapes())
    except SpecError as err:
        raise SpecError(f"{source}: {err.field}", err.problem) from None
    known = quantities(network)
    entries = []
    for key, raw in _flatten(data["values"]):
        match = _KEY.fullmatch(key)
        name = match and match["name"]
        if not match or name not in known:
            raise SpecError(f"values.{key}", _unknown(name or key, known, network))
        digits = re.findall(r"\d+", match["index"])   # int() of 5,000 digits fails: such an index is out of range
        entries.append((key, name, tuple(int(i) if len(i) <= 18 else math.inf for i in digits), raw))
    # indices are the math's, 1-based; a file with an index 0 was written for symbackprop 0.1,
    # whose hand files counted from 0: it is read that way, with a note (deprecated)
    base = 0 if any(0 in index for _, _, index, _ in entries) else 1
    notes = () if base else (DEPRECATED_ZERO_BASED,)
    values, keys = {}, {}
    for key, name, written, raw in entries:
        where = f"values.{key}"
        index = tuple(i - base for i in written)
        shape = known[name]
        if len(index) > len(shape) or any(i >= n for i, n in zip(index, shape)):
            raise SpecError(where, f"index out of range for {name} of shape {_shape(shape)} "
                                   f"(indices count from {base})")
        for element, number in _elements(raw, shape[len(index):], where):
            full = index + element
            if (name, full) in values:
                raise SpecError(where, f"{name}{index_text(full)} given twice "
                                       f"(also in values.{keys[(name, full)]})")
            values[(name, full)] = number
            keys[(name, full)] = key
    if not values:
        raise SpecError("values", "no numbers given")
    return Hand(values, keys, table, source, notes)


def _flatten(table, prefix=""):
    for key, value in table.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _flatten(value, full + ".")
        else:
            yield full, value


def _elements(raw, shape, where):
    """(index, Written) for every number of ``raw``, which must have ``shape`` (a quantity with a
    single element may be given as a bare number)."""
    if not isinstance(raw, list) and math.prod(shape) == 1:
        return [((0,) * len(shape), Written.parse(raw, where))]
    out = []

    def walk(value, dims, index):
        if not dims:
            out.append((index, Written.parse(value, f"{where}{index_text(index)}" if index else where)))
            return
        if not isinstance(value, list) or len(value) != dims[0]:
            got = f"{len(value)} entries" if isinstance(value, list) else _show(value)
            at = f" at {index_text(index)}" if index else ""
            raise SpecError(where, f"expected shape {_shape(shape)}, got {got}{at}")
        for i, item in enumerate(value):
            walk(item, dims[1:], index + (i,))
    walk(raw, shape, ())
    return out


# other names people (and LaTeX) give batch norm's quantities -> the one name every output uses
SYNONYMS = (("mu", "mean"), ("μ", "mean"), ("variance", "var"), ("sigma2", "var"), ("σ²", "var"),
            ("x_hat", "xhat"), ("hatx", "xhat"), ("x̂", "xhat"), ("hat{x}", "xhat"), ("mathrm{var}", "var"))


def _nearest(name, known) -> str | None:
    """The known quantity ``name`` most likely means: itself with a synonym replaced (dC/dmu2 ->
    dC/dmean2), else the closest spelling."""
    for other, ours in SYNONYMS:
        if other in name and name.replace(other, ours) in known:
            return name.replace(other, ours)
    close = difflib.get_close_matches(name, list(known), n=1) if len(name) <= 100 else []
    return close[0] if close else None


def _unknown(name, known, network) -> str:
    close = [c for c in [_nearest(name, known)] if c]
    hint = f"; did you mean {close[0]!r}?" if close else ""
    stages = sorted({k.rstrip("0123456789") for k in known if not k.startswith(("new.", "grad.", "dC/", "delta"))
                     and "." not in k and "/" not in k} - {"loss"})
    return (f"unknown quantity {shown(name)} (expected {', '.join(f'{s}<l>' for s in stages)}, loss, dC/da<l>, "
            f"da<l>/dz<l>, delta<l>, grad.<parameter>, <optimizer>.<parameter>, <optimizer>.<state>.<parameter>, "
            f"new.<quantity>; l from 1 to {network.depth}; parameters {', '.join(network.parameter_shapes())}; "
            f"optimizers {', '.join(OPTIMIZERS)}){hint}")


def _shape(shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"
