"""Check a hand calculation of one training step, number by number.

Plain data in — a :class:`~symbackprop.spec.Network` and a :class:`Hand` (the person's numbers, each
with the text it was written as) — and plain data out: one :class:`Result` per number given, with
one status:

* ``ok``: it matches the exact value within the precision it was written with, or it follows from
  the person's own earlier numbers, which were right but rounded;
* ``wrong``: it does not follow from the person's own earlier numbers — where an error enters;
* ``carried``: it follows from earlier numbers of theirs that were wrong.

How. Every quantity is a node with a small local SymPy expression: the model's z = Wa + b and
a = f(z), the loss, the derivation's backward steps (∂C/∂a, ∂a/∂z, δ, ∂C/∂W = a·δ), the optimizer's
assignments (from :mod:`symbackprop.optimizers`, never retyped) and the forward pass after the step.
A written number stands for the interval its digits allow (0.29 → [0.285, 0.295]; an integer
without a decimal point is exact). Each node's range is computed by interval arithmetic
(:mod:`symbackprop.intervals`) from the person's numbers for its inputs where they wrote them, and
from what those imply where they did not; the parameters and the sample come from the spec. A number
follows when its own interval meets that range. Its inputs may have been carried with more digits
than were written: anything inside their intervals is accepted.

A ``wrong`` number gets a diagnosis where one fits: each mistake of a catalogue (the 2 of
d/da (a − y)² dropped, σ′ at z, a factor dropped, the wrong index, the learning rate left out, Adam
without bias correction, ε inside the square root, updates not simultaneous, ...) is a rewrite of a
local expression — the number's own, one of its written inputs as used there, or one it was
computed through without writing it down (there, when the quantity has several elements, the slip
is tried in all of them at once) — recomputed the same way. The mistakes that reproduce the number
are named; if no single one does, pairs in the same formula are tried. Where several fit, a mistake
already seen in this calculation wins, then one in the number's own formula, then the commoner.

Numbers: TOML numbers keep the text they were written with (the parser hands it over), strings
such as "0.50" are read the same way, Python floats (from :func:`parse_hand`) by their repr.

Conventions: one example (no batch); one step of the optimizer from zero state, t = 1; the update is
simultaneous — every gradient is taken at the parameters before the step — and moves every layer;
``new.*`` is the forward pass after that step of the spec's ``[optimizer]`` (which the hand file's
own ``[optimizer]`` table, merged over the spec's, may change).

>>> from symbackprop.spec import Network
>>> net = Network.from_dict({"network": {"layers": [1, 1], "activations": ["sigmoid"],
...     "loss": "squared_error"}, "parameters": {"W1": [[0.5]], "b1": [0.0]},
...     "sample": {"x": [2], "y": [1]}})
>>> hand = parse_hand({"values": {"z1": 1.0, "a1": "0.73", "dC/da1": "-0.27"}}, net)
>>> [(r.label, r.status, r.diagnosis) for r in check(net, hand)]
[('z1[1]', 'ok', None), ('a1[1]', 'ok', None), ('dC/da1[1]', 'wrong', 'the 2 of d/da (a − y)² dropped')]
"""
import difflib
import math
import re
import unicodedata
from collections import ChainMap, Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from itertools import combinations
from pathlib import Path

import sympy

from .derive import Derivation
from .errors import SpecError, cut, printable, shown
from .inputs import as_network
from .intervals import Interval, bound
from .model import Model
from .registry import a as A, n as N, y as Y, z as Z
from .optimizers import HYPER, OPTIMIZERS, Settings, g, g_hat, m, m_hat, s as s_state, t, theta, v, v_hat
from .spec import Network, optimizer_table, parse_document, read_input

STATUSES = ("ok", "wrong", "carried")
SLACK = 1e-9          # relative: float noise, never a person's rounding
MAX_MATCHES = 2       # diagnoses named per number
MAX_PARAMETERS = 500  # hand calculations are small; beyond this a diagnosis takes minutes

lr, beta1, beta2, eps, rho, wd, bc = (HYPER[k] for k in
                                      ("learning_rate", "beta1", "beta2", "eps", "rho", "weight_decay",
                                       "bias_correction"))


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


def quantities(network: Network) -> dict[str, tuple[int, ...]]:
    """Every quantity name a hand file may use, with its shape."""
    sizes, q = network.layers, {}
    for l in range(1, len(sizes)):
        q[f"z{l}"] = q[f"a{l}"] = (sizes[l],)
    q["loss"] = ()
    for l in range(len(sizes) - 1, 0, -1):
        q[f"dC/da{l}"] = (sizes[l],)
        if network.activations[l - 1].elementwise:
            q[f"da{l}/dz{l}"] = (sizes[l],)
        q[f"delta{l}"] = (sizes[l],)
    shapes = network.parameter_shapes()
    for p, shape in shapes.items():
        q[f"grad.{p}"] = shape
    for name, opt in OPTIMIZERS.items():
        for p, shape in shapes.items():
            q[f"{name}.{p}"] = shape
            for state in opt.state:
                q[f"{name}.{state}.{p}"] = shape
    for l in range(1, len(sizes)):
        q[f"new.z{l}"] = q[f"new.a{l}"] = (sizes[l],)
    q["new.loss"] = ()
    return q


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
    """SpecError unless ``network`` is one check can work with: numbers, one example, small."""
    if network.parameter_count > MAX_PARAMETERS:
        raise SpecError(network.source, f"check is for hand-sized networks: at most {MAX_PARAMETERS} "
                                        f"parameters, this one has {network.parameter_count}")
    if not network.has_numbers:
        raise SpecError(network.source, "check needs the spec's [parameters] and [sample]")
    if network.x.shape[0] != 1:
        raise SpecError("sample.x", f"check compares the calculation for one example; the spec "
                                    f"gives a batch of {network.x.shape[0]}")


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
                raise SpecError(where, f"{name}{_index_text(full)} given twice "
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
            out.append((index, Written.parse(value, f"{where}{_index_text(index)}" if index else where)))
            return
        if not isinstance(value, list) or len(value) != dims[0]:
            got = f"{len(value)} entries" if isinstance(value, list) else _show(value)
            at = f" at {_index_text(index)}" if index else ""
            raise SpecError(where, f"expected shape {_shape(shape)}, got {got}{at}")
        for i, item in enumerate(value):
            walk(item, dims[1:], index + (i,))
    walk(raw, shape, ())
    return out


def _unknown(name, known, network) -> str:
    L = network.depth
    close = difflib.get_close_matches(name, list(known), n=1) if len(name) <= 100 else []
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return (f"unknown quantity {shown(name)} (expected z<l>, a<l>, loss, dC/da<l>, da<l>/dz<l>, delta<l>, "
            f"grad.W<l>, grad.b<l>, <optimizer>.W<l>, <optimizer>.<state>.W<l>, new.z<l>, new.a<l>, "
            f"new.loss; l from 1 to {L}; optimizers {', '.join(OPTIMIZERS)}){hint}")


def _shape(shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _index_text(index) -> str:
    """A 0-based index as people write it, 1-based as the math: (0, 1) -> "[1][2]"."""
    return "".join(f"[{i + 1}]" for i in index)


# results ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Result:
    name: str                 # the quantity, e.g. "grad.W2"
    index: tuple[int, ...]    # 0-based, as into the arrays (the label is 1-based), () for the loss
    given: str                # as written
    value: float              # the number written
    expected: float           # the exact value (from the spec's numbers)
    status: str               # ok, wrong or carried
    diagnosis: str | None = None

    @property
    def label(self) -> str:
        return f"{self.name}{_index_text(self.index)}"

    def to_json(self) -> dict:
        """The result as JSON data: ``index`` is 0-based, into the quantity's array (JSON keeps
        plain arrays), ``label`` the 1-based name people read (``grad.W2[1][2]``); ``given`` and
        ``expected`` are numbers, "inf" or "-inf" where the value is infinite (JSON has no
        infinity), and null where it is undefined (log of a negative)."""
        return {"name": self.name, "index": list(self.index), "label": self.label, "given": _json_number(self.value),
                "expected": _json_number(self.expected), "status": self.status, "diagnosis": self.diagnosis}


def _json_number(value: float):
    """A number for JSON, which has no infinity: "inf" or "-inf" for one, null for undefined."""
    return value if math.isfinite(value) else None if math.isnan(value) else show_infinite(value)


def show_infinite(value: float) -> str:
    """The words a table shows for a value that is not a finite number.

    >>> show_infinite(float("inf")), show_infinite(float("-inf")), show_infinite(float("nan"))
    ('inf', '-inf', 'undefined')
    """
    return "undefined" if math.isnan(value) else "inf" if value > 0 else "-inf"


def effective_optimizer(network: Network, hand: Hand) -> dict:
    """The optimizer table ``new.*`` and every ``<optimizer>.*`` number use: the spec's
    ``[optimizer]``, with the hand file's own table merged over it."""
    return {**network.optimizer, **hand.optimizer}


def conventions(network: Network, hand: Hand) -> list[str]:
    """What the numbers were checked against, one line each: the optimizers' settings, the step."""
    table = effective_optimizer(network, hand)
    settings = Settings.of({k: val for k, val in table.items() if k != "name"})
    used = list(dict.fromkeys(n.split(".")[0] for n, _ in hand.values if n.split(".")[0] in OPTIMIZERS))
    wants_new = any(n.startswith("new.") for n, _ in hand.values)
    if wants_new and table.get("name") in OPTIMIZERS and table["name"] not in used:
        used.append(table["name"])
    lines = []
    for name in used:
        hyper = ", ".join(f"{k} {val:g}" for k, val in settings.values(OPTIMIZERS[name]).items()
                          if val or k != "weight_decay")
        extra = ""
        if OPTIMIZERS[name].bias_corrected:
            extra += ", bias correction " + ("on" if settings.bias_correction else "off")
        if not settings.train_biases:
            extra += ", biases frozen"
        lines.append(f"{name}: {hyper}{extra}")
    if used:
        lines.append("one step from zero state (t = 1), every gradient taken before the step")
    if wants_new:
        lines.append(f"new.*: the forward pass after that {table.get('name')} step, which updates every layer")
    return lines + list(hand.notes)


def check(network, hand) -> list[Result]:
    """One Result per number in ``hand``: forward, loss, backward, optimizer, new pass order.
    ``network`` is a Network, a spec's data as a dict, or a spec path; ``hand`` a :class:`Hand`,
    a hand file's data as a dict, or its path."""
    network = as_network(network)
    if isinstance(hand, dict):
        hand = parse_hand(hand, network)
    elif isinstance(hand, (str, Path)):
        hand = load_hand(hand, network)
    elif not isinstance(hand, Hand):
        raise SpecError("hand", f"expected a hand file's path, a dict or a Hand, got {type(hand).__name__}")
    usable(network)
    table = effective_optimizer(network, hand)
    names = [n.split(".")[0] for n, _ in hand.values if n.split(".")[0] in OPTIMIZERS]
    wants_new = any(n.startswith("new.") for n, _ in hand.values)
    if wants_new:
        name = table.get("name")
        where = "values." + next(hand.keys[k] for k in hand.values if k[0].startswith("new."))
        if name is None:
            raise SpecError(where, "new.* is the forward pass after one optimizer step: name the "
                                   "optimizer in an [optimizer] table (in the spec or the hand file)")
        names.append(name)                   # a known name: both [optimizer] tables are validated
    graph = _Graph(network, table, list(dict.fromkeys(names)), table.get("name") if wants_new else None)
    return graph.check(hand)


# the graph of quantities --------------------------------------------------------------------------
@dataclass
class _Node:
    symbol: sympy.Symbol
    expr: sympy.Expr
    quantity: str             # its name in a hand file, e.g. grad.W2
    kind: str                 # z, a, loss, dC/da, da/dz, delta, grad, state, param (with "new." for the new pass)
    label: str
    order: tuple
    meta: dict = field(default_factory=dict)
    hyper: dict | None = None
    inputs: tuple = ()


class _Graph:
    def __init__(self, network: Network, table: dict, optimizers: list[str], new_with: str | None):
        self.network = network
        self.model = model = Model(network)
        self.derivation = derivation = Derivation(model)
        self.nodes: dict[sympy.Symbol, _Node] = {}
        self.named: dict[tuple, sympy.Symbol] = {}
        self.labels: dict[sympy.Symbol, str] = {}
        self.leaves: dict[sympy.Symbol, Interval] = {}
        self.settings = Settings.of({k: val for k, val in table.items() if k != "name"})
        self._leaves()
        self._forward()
        self._backward(derivation)
        self.updated: dict[tuple, dict] = {}
        for rank, name in enumerate(optimizers):
            self._optimizer(rank, name)
        self.new_with = new_with
        if new_with is not None:
            self._new_pass(new_with)
        for node in self.nodes.values():
            node.inputs = tuple(sorted((x for x in node.expr.free_symbols if x in self.nodes), key=str))
        self.order = list(self.nodes.values())
        self.position = {n.symbol: i for i, n in enumerate(self.order)}

    # building ---------------------------------------------------------------------------------
    def _add(self, symbol, expr, kind, name, index, order, **meta):
        label = f"{name}{_index_text(index)}"
        node = _Node(symbol, sympy.sympify(expr), name, kind, label, order, meta)
        self.nodes[symbol] = node
        self.named[(name, index)] = symbol
        self.labels[symbol] = label
        return node

    def _leaves(self):
        net, model = self.network, self.model
        for name, index, sym in model.parameters():
            self.leaves[sym] = Interval.point(float(net.parameters[name][index]))
            self.labels[sym] = f"{name}{_index_text(index)}"
        for k, sym in enumerate(model.x):
            self.leaves[sym] = Interval.point(float(net.x[0][k]))
            self.labels[sym] = f"x[{k + 1}]"
        for j, sym in enumerate(model.y):
            self.leaves[sym] = Interval.point(float(net.y[0][j]))
            self.labels[sym] = f"y[{j + 1}]"

    def _forward(self):
        for layer in self.model.layers:
            l, act = layer.index, self.network.activations[layer.index - 1]
            for j, zj in enumerate(layer.z):
                self._add(zj, layer.z_def[j], "z", f"z{l}", (j,), (0, len(self.nodes)), layer=layer, row=j,
                          W=layer.W, b=layer.b, inputs=layer.inputs)
            for j, aj in enumerate(layer.a):
                self._add(aj, layer.a_def[j], "a", f"a{l}", (j,), (0, len(self.nodes)), act=act,
                          z=layer.z[j] if act.elementwise else None)
        self.loss = sympy.Symbol("C", real=True)
        self._add(self.loss, self.model.loss_def, "loss", "loss", (), (0, len(self.nodes)))

    def _backward(self, derivation):
        names = {"dC/da": "dC/da{l}", "da/dz": "da{l}/dz{l}", "delta": "delta{l}"}
        self.delta = {}
        for step in derivation.steps:
            l, expr = step.layer, step.expr
            if step.kind == "grad":
                # ∂C/∂w = ∂z/∂w · δ: the δ the person wrote, or the one their factors imply
                dz = step.terms[0][0].expr
                expr = dz * self.delta[(l, step.index[0])]
                name = f"grad.{step.param}"
                meta = dict(dz=dz, layer=self.model.layers[l - 1], j=step.index[0],
                            k=step.index[1] if len(step.index) == 2 else None)
            else:
                name = names[step.kind].format(l=l)
                meta = dict(layer=self.model.layers[l - 1], j=step.index[0])
                if step.kind == "delta":
                    self.delta[(l, step.index[0])] = step.symbol
            self._add(step.symbol, expr, step.kind, name, step.index, (0, len(self.nodes)), **meta)

    def _optimizer(self, rank: int, name: str):
        """One step of ``name`` from zero state (t = 1), element by element, as nodes. The
        optimizer's own assignments are used as they are; its temporaries (g̃, m̂, v̂) are inlined."""
        opt, settings = OPTIMIZERS[name], self.settings
        hyper = {HYPER[k]: Interval.point(val) for k, val in settings.values(opt).items()}
        for k, sym in HYPER.items():
            hyper.setdefault(sym, Interval.point(0.0))
        hyper[bc] = Interval.point(1.0 if settings.bias_correction else 0.0)
        hyper[t] = Interval.point(1.0)
        targets = [target for target, _ in opt.rules if target not in (g_hat, m_hat, v_hat)]
        for p_rank, (pname, index, psym) in enumerate(self.model.parameters()):
            grad = self.named[(f"grad.{pname}", index)]
            current = {theta: psym, g: grad, m: 0, v: 0, s_state: 0}
            for target, rhs in opt.rules:
                expr = rhs.xreplace(current)
                if target in (g_hat, m_hat, v_hat):
                    current[target] = expr
                    continue
                if target == theta and not settings.train_biases and pname.startswith("b"):
                    expr = psym
                quantity = f"{name}.{pname}" if target == theta else f"{name}.{target.name}.{pname}"
                sym = sympy.Symbol(f"{quantity}_{'_'.join(map(str, index))}", real=True)
                node = self._add(sym, expr, "param" if target == theta else "state", quantity, index,
                                 (1, rank, targets.index(target), p_rank), optimizer=name, param=psym,
                                 state=target.name)
                node.hyper = hyper
                current[target] = sym
            self.updated.setdefault(name, {})[psym] = current[theta]

    def _new_pass(self, name: str):
        """The forward pass with the parameters after one step of ``name``."""
        after = self.updated[name]
        replace = dict(after)
        for layer in self.model.layers:
            l, act = layer.index, self.network.activations[layer.index - 1]
            new_z, new_a = [], []
            params = [w for row in layer.W for w in row] + list(layer.b)
            for j, zj in enumerate(layer.z):
                sym = sympy.Symbol(f"new.z{l}_{j}", real=True)
                self._add(sym, layer.z_def[j].xreplace(replace), "new.z", f"new.z{l}", (j,),
                          (2, len(self.nodes)), layer=layer, row=j, W=[[after[w] for w in row] for row in layer.W],
                          b=[after[b] for b in layer.b], inputs=[replace.get(u, u) for u in layer.inputs],
                          old_params={after[p]: p for p in params},
                          old_inputs={replace[u]: u for u in layer.inputs if u in replace})
                new_z.append(sym)
            for j, aj in enumerate(layer.a):
                sym = sympy.Symbol(f"new.a{l}_{j}", real=True)
                self._add(sym, layer.a_def[j].xreplace(dict(zip(layer.z, new_z))), "new.a", f"new.a{l}", (j,),
                          (2, len(self.nodes)), act=act, z=new_z[j] if act.elementwise else None)
                new_a.append(sym)
            replace.update(zip(layer.a, new_a))
        sym = sympy.Symbol("new.C", real=True)
        self._add(sym, self.model.loss_def.xreplace(replace), "new.loss", "new.loss", (), (2, len(self.nodes)))

    # evaluating -------------------------------------------------------------------------------
    def _env(self, node, env):
        return ChainMap(node.hyper, env) if node.hyper else env

    def ranges(self, given: dict):
        """Each node's range from its inputs (``derived``), and the values used downstream
        (``env``: the person's interval where they wrote the number, the derived range otherwise)."""
        env, derived = dict(self.leaves), {}
        for node in self.order:
            derived[node.symbol] = bound(node.expr, self._env(node, env))
            env[node.symbol] = given.get(node.symbol, derived[node.symbol])
        return derived, env

    def check(self, hand: Hand) -> list[Result]:
        given = {self.named[key]: w.interval for key, w in hand.values.items()}
        exact, _ = self.ranges({})
        derived, env = self.ranges(given)
        status, tainted = {}, {}
        for node in self.order:
            sym = node.symbol
            upstream = any(tainted.get(i) for i in node.inputs)
            if sym not in given:
                tainted[sym] = upstream
                continue
            mine = _slack(given[sym])
            if mine.intersects(exact[sym]):
                status[sym] = "ok"
            elif mine.intersects(derived[sym]):
                status[sym] = "carried" if upstream else "ok"
            else:
                status[sym] = "wrong"
            tainted[sym] = status[sym] != "ok"
        results, seen = [], set()
        for (name, index), written in sorted(hand.values.items(),
                                             key=lambda kv: (self.nodes[self.named[kv[0]]].order, kv[0][1])):
            sym, diagnosis = self.named[(name, index)], None
            if status[sym] == "wrong":
                found, pairs = self.diagnose(sym, given, env)
                # a mistake already seen in this calculation is the likelier explanation; else one
                # in this number's own formula
                found = ([f for f in found if f[1] in seen] or [f for f in found if not f[0]] or found)
                names = list(dict.fromkeys(text for *_, text in found))[:1 if pairs else MAX_MATCHES]
                seen.update(rank for _, rank, _ in found[:1])
                diagnosis = " or ".join(names) or None
            results.append(Result(name, index, written.text, written.value, exact[sym].mid, status[sym], diagnosis))
        return results

    # diagnosing -------------------------------------------------------------------------------
    def _scope(self, sym, given) -> list:
        """The node, the unwritten nodes it was computed through, and the written ones at their
        edge: where a mistake could have entered this number."""
        seen, stack = {sym}, [sym]
        while stack:
            node = self.nodes[stack.pop()]
            for i in node.inputs:
                if i not in seen:
                    seen.add(i)
                    if i not in given:
                        stack.append(i)
        return sorted(seen, key=self.position.get)

    def _replay(self, sym, alts: dict, scope, given, env):
        """``sym``'s range had each target of ``alts`` been computed by its alternative expression."""
        if sym in alts:
            return bound(alts[sym], self._env(self.nodes[sym], env))
        local = dict(env)
        for target, alt in alts.items():
            local[target] = bound(alt, self._env(self.nodes[target], env))
        changed = set(alts)
        for s in scope[min(scope.index(x) for x in alts) + 1:]:
            if s in alts or (s != sym and s in given):
                continue
            other = self.nodes[s]
            if changed.intersection(other.inputs):
                r = bound(other.expr, self._env(other, local))
                if s == sym:
                    return r
                local[s] = r
                changed.add(s)
        return Interval(math.nan, math.nan)  # sym does not depend on the targets

    def diagnose(self, sym, given, env) -> tuple[list, bool]:
        """The catalogued mistakes that reproduce the number as (made upstream?, rank, text), and
        whether they are pairs. A mistake is tried in one formula and, when it is not about one
        element, in every element of a quantity at once (a loss depends on all of them). Only the
        most specific are kept: a mistake whose range is far wider than another's matches by the
        looseness of the person's digits."""
        mine = _slack(given[sym])
        scope = self._scope(sym, given)
        catalogue = [(target, mistakes) for target in reversed(scope)
                     for mistakes in [self.mistakes(self.nodes[target])] if mistakes]
        near = {sym, *self.nodes[sym].inputs}  # element-specific slips and pairs: within reach only
        sizes = Counter(self.nodes[x].quantity for x in scope)

        def singles():
            """Each slip in one formula — out of reach, only where it is the quantity's one element
            here — and each slip in every element of a quantity at once."""
            families = {}
            for target, mistakes in catalogue:
                node = self.nodes[target]
                for rank, text, rewrite, generic in mistakes:
                    if not generic and target not in near:
                        continue
                    alt = rewrite(node.expr)
                    if alt == node.expr:
                        continue
                    if target in near or sizes[node.quantity] == 1:
                        yield rank, self._where(text, target, sym, given), {target: alt}
                    if generic:
                        key = (node.quantity, rank, re.sub(r"\[\d+\]", "", text))
                        families.setdefault(key, {})[target] = alt
            for (quantity, rank, text), alts in families.items():
                if len(alts) > 1:
                    yield rank, f"{text} (in every element of {quantity})", alts

        def pairs():  # two mistakes in the same formula
            for target, mistakes in catalogue:
                if target not in near:
                    continue
                expr = self.nodes[target].expr
                generic = [mk for mk in mistakes if mk[3]]
                for (r1, t1, f1, _), (r2, t2, f2, _) in combinations(generic, 2):
                    if f1(expr) != expr and f2(expr) != expr and f2(f1(expr)) != expr:
                        yield r1 + r2, self._where(f"{t1}, and {t2}", target, sym, given), {target: f2(f1(expr))}

        for tries in (singles, pairs):
            found = []
            for rank, text, alts in tries():
                r = self._replay(sym, alts, scope, given, env)
                if mine.intersects(r):
                    found.append((sym not in alts, rank, text, r))
            if found:
                narrowest = min(r.width for *_, r in found)
                kept = []
                # the same number reached two ways (σ′ as z(1 − z), or z used for a in a(1 − a)) is
                # one mistake: the one in this number's own formula, or the commoner, names it
                for upstream, rank, text, r in sorted(found, key=lambda f: f[:2]):
                    if r.width <= 4 * narrowest + mine.width and not any(_same(r, k) for *_, k in kept):
                        kept.append((upstream, rank, text, r))
                return [(upstream, rank, text) for upstream, rank, text, _ in kept], tries is pairs
        return [], False

    def _where(self, text, target, sym, given):
        if target == sym:
            return text
        return f"{text} (in the {self.labels[target]} used here)" if target in given else \
            f"{text} (in {self.labels[target]})"

    def mistakes(self, node) -> list[tuple]:
        """The catalogue for one node: (rank, description, rewrite of its expression, pairable)."""
        kind = node.kind.removeprefix("new.")
        return getattr(self, f"_mistakes_{kind.replace('/', '_')}")(node)

    def _name(self, sym) -> str:
        return self.labels.get(sym, str(sym))

    def _mistakes_z(self, node):
        meta, out = node.meta, []
        j, W, b, inputs = meta["row"], meta["W"], meta["b"], meta["inputs"]
        l = meta["layer"].index
        if node.kind == "new.z":
            where = "a step updates every layer" if l < self.network.depth else "the weights before the step used"
            out.append((40, f"layer {l}'s weights and biases not updated ({where})",
                        _sub(meta["old_params"]), True))
            if meta["old_inputs"]:
                out.append((41, f"a{l - 1} from before the step used", _sub(meta["old_inputs"]), True))
        out.append((30, f"the bias {self._name(b[j])} left out", _sub({b[j]: 0}), True))
        if all(j < len(row) for row in W) and len(W) >= len(inputs):
            transposed = {W[j][k]: W[k][j] for k in range(len(inputs)) if k != j}
            if transposed:
                out.append((21, f"W{l} transposed (W{l}[k][j] used for W{l}[j][k])", _sub(transposed), False))
        for j2 in range(len(W)):
            if j2 != j:
                rows = {W[j][k]: W[j2][k] for k in range(len(inputs))} | {b[j]: b[j2]}
                out.append((22, f"row {j2 + 1} of W{l} used for row {j + 1}", _sub(rows), False))
        for k, k2 in _pairs(len(inputs)):
            out.append((20, f"{self._name(inputs[k2])} used in place of {self._name(inputs[k])}",
                        _sub({inputs[k]: inputs[k2]}), False))
        return out

    def _mistakes_a(self, node):
        act, z = node.meta["act"], node.meta["z"]
        if z is None:
            return []
        f = _fname(act)
        return [(31, "the activation not applied (a = z)", lambda e: z, True),
                (32, f"{f}(−z) computed instead of {f}(z)", _sub({z: -z}), True)]

    def _mistakes_loss(self, node):
        loss, out = self.network.loss, []
        half, mean = _scale_parts(loss, self.network.layers[-1])
        if _squared(loss) and not half:
            out.append((10, "½(a − y)² used: a factor ½ too many", _times(sympy.Rational(1, 2)), True))
        if _squared(loss) and half:
            out.append((10, "the ½ of ½(a − y)² left out", _times(2), True))
        if mean is not None:
            out.append((11, "not divided by the number of outputs n", _times(mean), True))
        if _squared(loss):
            out.append((12, "(a − y) not squared", _unsquare, True))
        else:
            out.append((13, "the sign flipped", _times(-1), True))
        return out

    def _mistakes_dC_da(self, node):
        out, l = [], node.meta["layer"].index
        if l == self.network.depth:
            loss = self.network.loss
            half, mean = _scale_parts(loss, self.network.layers[-1])
            if _squared(loss) and not half:
                out.append((1, "the 2 of d/da (a − y)² dropped", _times(sympy.Rational(1, 2)), True))
            if _squared(loss) and half:
                out.append((1, "∂C/∂a doubled (d/da ½(a − y)² is a − y)", _times(2), True))
            if mean is not None:
                out.append((2, "the 1/n of the mean left out", _times(mean), True))
            out.append((5, "the sign flipped ((y − a) for (a − y))", _times(-1), True))
            return out
        out.append((5, "the sign flipped", _times(-1), True))
        W = self.model.layers[l].W
        if self.new_with is not None:
            after = self.updated[self.new_with]
            out.append((42, f"the updates not simultaneous: W{l + 1} already updated when the gradients of "
                            f"layer {l} were taken", _sub({w: after[w] for row in W for w in row}), True))
        transposed = {W[j][k]: W[k][j] for j in range(len(W)) for k in range(len(W[j]))
                      if j != k and k < len(W) and j < len(W[k])}
        if transposed:
            out.append((21, f"W{l + 1} transposed", _sub(transposed), False))
        return out

    def _mistakes_da_dz(self, node):
        layer, j = node.meta["layer"], node.meta["j"]
        act = self.network.activations[layer.index - 1]
        a, z = layer.a[j], layer.z[j]
        f = _fname(act)
        out = [(2, f"the {f}′ factor missing", lambda e: sympy.Integer(1), True)]
        if act.output_form is not None and not act.output_form.has(sympy.Piecewise) and act.output_form.has(A):
            form = act.output_form
            out.append((3, f"{f}′ taken at z instead of a: {_pretty(form.xreplace({A: Z}))}, not {_pretty(form)}",
                        lambda e: form.xreplace({A: z}), True))
        elif act.output_form is None:
            out.append((3, f"{f}′ evaluated at a instead of z", lambda e: act.derivative.xreplace({Z: a}), True))
        out.append((4, f"{f}(z) used for {f}′(z)", lambda e: a, True))
        out.append((5, "the sign flipped", _times(-1), True))
        return out

    def _mistakes_delta(self, node):
        out = [(5, "the sign flipped", _times(-1), True)]
        if node.expr.is_Mul:
            for factor in node.expr.args:
                if factor in self.nodes and self.nodes[factor].kind == "da/dz":
                    f = _fname(self.network.activations[node.meta["layer"].index - 1])
                    out.append((2, f"the {f}′ factor {self._name(factor)} missing", _sub({factor: 1}), True))
                elif factor in self.nodes:
                    out.append((6, f"the factor {self._name(factor)} dropped", _sub({factor: 1}), True))
        return out

    def _mistakes_grad(self, node):
        meta = node.meta
        layer, j, k, dz = meta["layer"], meta["j"], meta["k"], meta["dz"]
        l, delta = layer.index, [self.delta[(layer.index, i)] for i in range(len(layer.z))]
        out = [(5, "the sign flipped", _times(-1), True)]
        out.append((6, f"the factor {self._name(delta[j])} dropped", _sub({delta[j]: 1}), True))
        for j2 in range(len(delta)):
            if j2 != j:
                out.append((20, f"{self._name(delta[j2])} used in place of {self._name(delta[j])}",
                            _sub({delta[j]: delta[j2]}), False))
        inputs = layer.inputs
        if k is None:
            for k2, u in enumerate(inputs):
                out.append((23, f"∂z/∂b taken as {self._name(u)} instead of 1", _times(u), False))
            return out
        out.append((6, f"the factor {self._name(dz)} (∂z/∂W) dropped", _sub({dz: 1}), True))
        for k2 in range(len(inputs)):
            if k2 != k:
                out.append((20, f"{self._name(inputs[k2])} used in place of {self._name(inputs[k])}",
                            _sub({inputs[k]: inputs[k2]}), False))
        if l > 1:
            z_prev = self.model.layers[l - 2].z
            out.append((9, f"{self._name(z_prev[k])} used in place of {self._name(inputs[k])}",
                        _sub({inputs[k]: z_prev[k]}), False))
        if j != k and j < len(inputs) and k < len(delta):
            out.append((8, f"the index transposed (the value of grad.W{l}{_index_text((k, j))})",
                        _sub({inputs[k]: inputs[j], delta[j]: delta[k]}), False))
        return out

    def _mistakes_state(self, node):
        out, free = [], node.expr.free_symbols
        for h in (beta1, beta2, rho):
            if h in free:
                out.append((60, f"{h.name} and 1 − {h.name} swapped", _sub({h: 1 - h}), True))
        if node.expr.has(sympy.Pow):
            out.append((61, "the gradient not squared", _unsquare, True))
        out.append((62, "the sign flipped", _times(-1), True))
        out += self._weight_decay(node)
        return out

    def _mistakes_param(self, node):
        free, out = node.expr.free_symbols, []
        if node.expr == node.meta["param"]:
            return out
        state = _rooted_state(OPTIMIZERS[node.meta["optimizer"]])
        if lr in free:
            out.append((50, "the learning rate left out", _sub({lr: 1}), True))
            out.append((51, "the learning rate applied twice", _sub({lr: lr**2}), True))
        out.append((52, "the step added instead of subtracted (sign flipped)",
                    lambda e, p=node.meta["param"]: 2 * p - e, True))
        if bc in free:
            if self.settings.bias_correction:
                out.append((49, "Adam without bias correction", _sub({bc: 0}), True))
            else:
                out.append((49, "Adam with bias correction (the settings turn it off)", _sub({bc: 1}), True))
        if _has_root_denominator(node.expr):
            out.append((54, f"ε inside the square root (√({state} + ε))", _root_denominator("inside"), True))
            out.append((55, f"the division by √{state} + ε left out", _root_denominator("drop"), True))
            out.append((56, f"divided by {state} + ε instead of √{state} + ε", _root_denominator("unroot"), True))
        if t in free:
            out.append((57, "the time step off by one (t = 2 for the first step)", _sub({t: 2}), True))
        out += self._weight_decay(node)
        return out

    def _weight_decay(self, node):
        if wd in node.expr.free_symbols and node.hyper[wd].lo != 0:
            return [(58, "the weight decay left out", _sub({wd: 0}), True)]
        return []


# rewrites ---------------------------------------------------------------------------------------
def _sub(mapping):
    return lambda e: e.xreplace(mapping)


def _times(factor):
    return lambda e: e * factor


def _unsquare(e):
    return e.replace(lambda x: x.is_Pow and x.exp == 2, lambda x: x.base)


def _is_root(x) -> bool:
    return x.is_Pow and x.exp == sympy.S.Half


def _is_root_plus_eps(x) -> bool:
    return x.is_Add and eps in x.args and any(_is_root(a) for a in x.args)


def _has_root_denominator(e) -> bool:
    return any(_is_root_plus_eps(x) for x in sympy.preorder_traversal(e))


def _root_denominator(how):
    def fix(x):
        if how == "drop":
            return sympy.Integer(1)
        unrooted = [a.base if _is_root(a) else a for a in x.args]
        return sympy.sqrt(sympy.Add(*unrooted)) if how == "inside" else sympy.Add(*unrooted)
    return lambda e: e.replace(_is_root_plus_eps, fix)


def _pairs(n):
    return [(k, k2) for k in range(n) for k2 in range(n) if k != k2]


def _same(p: Interval, q: Interval) -> bool:
    return abs(p.lo - q.lo) <= SLACK * abs(p.lo) + 1e-300 and abs(p.hi - q.hi) <= SLACK * abs(p.hi) + 1e-300


def _slack(interval: Interval) -> Interval:
    return interval.widen(SLACK * max(abs(interval.lo), abs(interval.hi)) + 1e-300)


def _rooted_state(opt) -> str:
    """The name of the state whose square root divides ``opt``'s step (v in Adam, s in RMSProp),
    read off its θ rule with the temporaries (m̂, v̂) written out."""
    inline = {}
    for target, expr in opt.rules:
        inline[target] = expr.xreplace(inline)
    roots = [x.base for x in sympy.preorder_traversal(inline[theta]) if _is_root(x)]
    names = sorted({x.name for root in roots for x in root.free_symbols} & set(opt.state))
    return names[0] if names else "v"


def _squared(loss) -> bool:
    """Whether the loss's term is (a − y)²: the squared losses share their mistakes."""
    return sympy.expand(loss.term - (A - Y) ** 2) == 0


def _scale_parts(loss, outputs: int) -> tuple[bool, sympy.Expr | None]:
    """Whether the loss's scale holds a ½ (½(a − y)²), and the factor dividing by the number of
    outputs leaves out (n for a mean over n > 1 outputs; None for no mean)."""
    coeff, rest = loss.scale.as_coeff_Mul()
    mean = 1 / rest.xreplace({N: outputs}) if rest.has(N) and outputs > 1 else None
    return coeff == sympy.Rational(1, 2), mean


def _fname(act) -> str:
    """The activation's name as its registry entry writes it in LaTeX, as plain text: σ for
    ``\\sigma``, relu for ``\\operatorname{relu}``, f for a formula from the spec."""
    def plain(match):
        try:
            return unicodedata.lookup(f"GREEK SMALL LETTER {match.group(1).upper()}")
        except KeyError:
            return match.group(1)
    name = re.sub(r"\\operatorname\{(\w+)\}", r"\1", act.latex)
    name = re.sub(r"\\([A-Za-z]+)", plain, name)
    return name if name.isidentifier() else act.name if act.name.isidentifier() else "f"


def _pretty(expr) -> str:
    return str(expr).replace("**2", "²").replace("*", "").replace(" - ", " − ")
