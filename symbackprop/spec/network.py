"""The network spec: TOML or JSON in, a validated :class:`Network` out.

>>> net = Network.from_dict({"network": {"layers": [3, 2, 1],
...     "activations": ["sigmoid", "sigmoid"], "loss": "squared_error"}})
>>> net.layers, net.activations[0].name, net.loss.name
((3, 2, 1), 'sigmoid', 'squared_error')
"""
import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from . import limits
from ..errors import SpecError, shown
from ..entries.layers import LAYERS, Layer, LayerError
from ..entries.layers.base import REQUIRED, shape_text
from ..entries.layers.dense import DENSE
from ..entries.optimizers import CLIP, HYPERS, OPTIMIZERS, Settings
from ..entries.registry import ACTIVATIONS, LOSSES, Activation, Loss, z
from .document import (GRAPH_KEYS, NETWORK_KEYS, OPTIMIZER_KEYS, TABLES, _input_shape, _layers, _table,  # noqa: F401
                       network_table,
                       activation_name, layer_type, loss_name, optimizer_name, parse_document, read_input,
                       read_spec)
from .formula import parse_formula
from . import sequence



@dataclass(frozen=True)
class Network:
    """A validated network: the shape of one input, a graph of layers, a loss, optional numbers.

    ``graph`` holds one :class:`~symbackprop.entries.layers.Layer` per ``[[layer]]`` (the dense-stack form
    ``layers = [3, 2, 1]`` is two dense layers); ``parameters`` maps ``W1``, ``b1``, ``gamma2``, ... to
    float64 arrays in their shapes; ``x`` is (N, *input) and ``y`` (N, n_out); ``batched`` says
    whether the spec gave a list of examples; ``masks`` holds each dropout layer's keep-mask
    (N, *shape), from ``[masks]`` or drawn (``mask_source`` says which). ``exact`` keeps the numbers
    as written, for exact arithmetic.
    """
    input: tuple[int, ...]
    graph: tuple[Layer, ...]
    loss: Loss
    parameters: dict[str, np.ndarray] | None = None
    x: np.ndarray | None = None
    y: np.ndarray | None = None
    batched: bool = False
    optimizer: dict = field(default_factory=dict)
    exact: dict = field(default_factory=dict, repr=False)
    source: str = "<dict>"
    masks: dict[str, np.ndarray] | None = None
    mask_source: str = ""
    layer_list: bool = False          # whether the spec gave a [[layer]] list (not network.layers)
    ignore_index: int | None = None   # cross-entropy: the class index whose steps the mean leaves out
    targets: np.ndarray | None = None  # class-index targets (N, *output_shape[:-1]) where the sample gave them

    @classmethod
    def stack(cls, layers, activations, loss, **numbers) -> "Network":
        """A stack of dense layers: sizes ``layers`` (input first), one activation each, a loss."""
        graph, shape = [], (layers[0],)
        for i, (units, act) in enumerate(zip(layers[1:], activations), start=1):
            graph.append(Layer(i, DENSE, (("units", units),), act, (i - 1,), (shape,), (units,)))
            shape = (units,)
        return cls((layers[0],), tuple(graph), loss, **numbers)

    @property
    def layers(self) -> tuple[int, ...]:
        """The size of the input and of each layer's output: (3, 2, 1) for the seed's network."""
        return (math.prod(self.input), *(math.prod(layer.shape) for layer in self.graph))

    @property
    def activations(self) -> tuple[Activation, ...]:
        return tuple(layer.activation for layer in self.graph)

    @property
    def is_stack(self) -> bool:
        """Whether this is a plain stack of dense layers (what explain and check handle today)."""
        return all(layer.kind.unrolls and layer.sources == (layer.index - 1,) for layer in self.graph)

    @property
    def size_field(self) -> str:
        """Where the spec sets the network's size, for a message: ``network.layers`` or ``layer``."""
        return "layer" if self.layer_list else "network.layers"

    @property
    def depth(self) -> int:
        return len(self.graph)

    @property
    def output_size(self) -> int:
        """The loss's n: the size of the output's last axis (of each step's, for a sequence)."""
        return self.graph[-1].shape[-1]

    @property
    def output_shape(self) -> tuple[int, ...]:
        """One example's output: (n,), or (T, n) for a sequence (one row per step)."""
        return self.graph[-1].shape

    @property
    def reads_ids(self) -> bool:
        """Whether the input holds integer ids (the first layer is an embedding)."""
        return self.graph[0].kind.reads_ids

    @property
    def class_indices(self) -> bool:
        """Whether the compiled functions take class indices for Y (one-hot rows still work):
        cross-entropy on a sequence network (ids in, or a per-step output), or with ignore_index."""
        return self.loss.name == "cross_entropy" and (
            self.reads_ids or len(self.output_shape) > 1 or self.ignore_index is not None)

    @property
    def target_weight(self) -> Fraction:
        """r = N·P / M: what each example's mean over its P steps is scaled by so that the batch mean
        is over the M steps that count (1 unless ``ignore_index`` leaves some out)."""
        if self.targets is None or self.ignore_index is None:
            return Fraction(1)
        P = sequence.positions(self.output_shape)
        return Fraction(len(self.targets) * P, sequence.kept_count(self.targets, self.ignore_index, P, len(self.targets)))

    def example_loss(self, outputs, targets):
        """C of one example (SymPy) from its output and target arrays, of the output's shape: the
        loss of each step's row, their mean over the P steps, times :attr:`target_weight`."""
        outputs, targets = np.asarray(outputs, dtype=object), np.asarray(targets, dtype=object)
        if outputs.ndim == 1:
            return self.loss.total(list(outputs), list(targets)) * self.target_weight
        rows = [self.loss.total(list(o), list(t)) for o, t in zip(outputs.reshape(-1, outputs.shape[-1]),
                                                                  targets.reshape(-1, targets.shape[-1]))]
        weight = self.target_weight / len(rows)
        import sympy
        return sympy.Rational(weight.numerator, weight.denominator) * sympy.Add(*rows)

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """W1, b1, W2, b2, ... in order, each with its shape."""
        return {name: shape for layer in self.graph for name, shape in layer.params.items()}

    @property
    def parameter_count(self) -> int:
        return sum(math.prod(s) for s in self.parameter_shapes().values())

    @property
    def element_count(self) -> int:
        """How many values a per-weight derivation names: every layer's outputs (and its z), once,
        or for each example where a layer couples the batch (the model is then built over it)."""
        batch = self.x.shape[0] if self.x is not None else 2
        examples = batch if any(layer.kind.couples_batch for layer in self.graph) else 1
        return examples * sum(math.prod(layer.shape) * (1 + layer.has_z) for layer in self.graph)

    @property
    def has_numbers(self) -> bool:
        return self.parameters is not None and self.x is not None

    def describe(self) -> str:
        """``3-2-1 sigmoid/sigmoid`` for a dense stack; the layer list otherwise."""
        if self.is_stack:
            return "-".join(map(str, self.layers)) + " " + "/".join(a.name for a in self.activations)
        return "input " + "×".join(map(str, self.input)) + ", " + ", ".join(l.describe() for l in self.graph)

    @classmethod
    def from_dict(cls, data: dict, source: str = "<dict>") -> "Network":
        """Validate the spec's data; SpecError names the first bad field."""
        net = network_table(data)
        if "layer" in data:
            input_shape = _input_shape(net.get("input"), empty=True)
            graph = _graph(input_shape, data["layer"])
        else:
            layers = _layers(net.get("layers"))
            acts = _activations(net.get("activations"), len(layers) - 1)
            input_shape, graph = (layers[0],), cls.stack(layers, acts, None).graph
        limits.check_sizes(input_shape, graph, limits.sample_rows(data.get("sample"), input_shape))  # before any array
        loss = _loss(net.get("loss"))
        ignore = sequence.ignore_index(net, loss.name)
        shapes = {name: shape for layer in graph for name, shape in layer.params.items()}
        if not shapes:
            raise SpecError("layer", "no layer has parameters: there is no gradient to derive and nothing to train")
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
                    raise SpecError(f"parameters.{name}", f"missing (expected shape {shape_text(shape)})")
                parameters[name] = _array(params[name], shape, f"parameters.{name}")
                exact[name] = params[name]
        x = y = targets = None
        batched = False
        masks, mask_source = None, ""
        if "sample" in data:
            sample = _table(data, "sample")
            x, y, batched, exact["x"], exact["y"], targets = _sample(sample, input_shape, graph, loss, ignore)
            low, high = loss.targets
            if np.any(y < low) or np.any(y > high):
                raise SpecError("sample.y", f"{loss.name} needs targets in [{low:g}, {high:g}]")
            _batch_sizes(graph, len(x))
            masks, mask_source = _masks(graph, data, sample, len(x), batched)
        elif "masks" in data:
            raise SpecError("masks", "masks need a [sample] to apply to")
        optimizer = optimizer_table(data.get("optimizer", {}))
        trained_names(optimizer, shapes)
        return cls(tuple(input_shape), tuple(graph), loss, parameters, x, y, batched, optimizer, exact, source,
                   masks, mask_source, "layer" in data, ignore, targets)


def load(path: str | Path, cls: type = Network) -> Network:
    """Read a TOML (or JSON) spec file into a ``cls`` (a Network); SpecError on any problem."""
    data, source = read_spec(path, check=False)    # the registries themselves check the names here
    return cls.from_dict(data, source=source)


def _finite(v) -> bool:
    """Finite as a float64: huge integers from TOML or JSON are not."""
    try:
        return math.isfinite(float(v))
    except OverflowError:
        return False


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
        act = _activation(name, f"network.activations[{i}]")
        if not act.elementwise and i != count - 1:
            raise SpecError(f"network.activations[{i}]", f"{shown(name)} is allowed only on the output layer")
        acts.append(act)
    return tuple(acts)


def _activation(name, where) -> Activation:
    """A registry activation by name, or a formula in z (parsed against an allow-list)."""
    activation_name(name, where, ACTIVATIONS)
    if name in ACTIVATIONS:
        return ACTIVATIONS[name]
    return Activation(name, parse_formula(name, {"z": z}, where), r"f")


def _graph(input_shape, tables):
    """The ``[[layer]]`` list as validated Layers; SpecError naming a layer's position and type."""
    if not isinstance(tables, list) or not tables:
        raise SpecError("layer", "expected a list of [[layer]] tables")
    limits.check_count(len(tables), "layer", "[[layer]] tables")
    shapes, graph, steps = {0: tuple(input_shape)}, [], {0: False}
    for i, table in enumerate(tables, start=1):
        if not isinstance(table, dict):
            raise SpecError(f"layer {i}", f"expected a table (type = ..., and its fields), got {shown(table)}")
        kind_name = table.get("type")
        layer_type(kind_name, i, LAYERS)
        kind = LAYERS[kind_name]
        where = f"layer {i} ({kind_name})"
        names = ["activation"] * kind.takes_activation + [f.name for f in kind.fields]
        for key in table:
            if key not in ("type", *names):
                hint = " (a recurrent layer's nonlinearity is its own)" if key == "activation" else ""
                raise SpecError(f"{where}.{key}", f"unknown field (expected {', '.join(names)}){hint}")
        options = {}
        for f in kind.fields:
            raw = table.get(f.name, f.default)
            if raw is REQUIRED:
                raise SpecError(f"{where}.{f.name}", f"missing ({f.doc})" if f.doc else "missing")
            try:
                options[f.name] = None if raw is None else f.parse(raw)
            except ValueError as err:
                raise SpecError(f"{where}.{f.name}", str(err)) from None
        options = kind.normalize(options)
        sources = kind.sources(options, i)
        for s in sources:
            if not 0 <= s < i:
                raise SpecError(f"{where}.from", f"{s} points forward or at this layer: expected an earlier "
                                                 f"position, 0 to {i - 1} (0 is the network input)")
        in_shapes = tuple(shapes[s] for s in sources)
        _ids_read(kind, i, where, sources, input_shape, tables)
        # a (T, D) network input is a sequence to the kinds that need one (an rnn reading features)
        in_seq = tuple(steps[s] or s == 0 and kind.sequence_input and len(input_shape) == 2 for s in sources)
        try:
            kind.check_sequence(options, in_shapes, in_seq)
            kind.check(options, in_shapes)
        except LayerError as err:
            raise SpecError(f"{where}.{err.field}", _after_last(err.problem, sources, graph)) from None
        shape = tuple(kind.output_shape(options, in_shapes))
        steps[i] = kind.sequence_output(options, in_seq)
        act = _activation(table.get("activation", "identity"), f"{where}.activation")
        if not act.elementwise and (i != len(tables) or not (len(shape) == 1 or len(shape) == 2 and steps[i])):
            raise SpecError(f"{where}.activation", f"{act.name} is allowed only on the last layer, with a vector "
                                                   "output (or a sequence's: over each step's last axis)")
        graph.append(Layer(i, kind, tuple(options.items()), act, sources, in_shapes, shape, steps[i]))
        shapes[i] = shape
    if len(shapes[len(tables)]) != 1 and not (len(shapes[len(tables)]) == 2 and steps[len(tables)]):
        raise SpecError(f"layer {len(tables)} ({graph[-1].kind.name})",
                        f"the loss needs a vector output, this layer's is {shape_text(shapes[len(tables)])} "
                        "(end with flatten and dense)")
    return tuple(graph)


def _ids_read(kind, i, where, sources, input_shape, tables):
    """An embedding is the first layer and reads the network's ids; no other layer reads them."""
    first_ids = isinstance(tables[0], dict) and tables[0].get("type") in LAYERS and LAYERS[tables[0]["type"]].reads_ids
    if kind.reads_ids and (i != 1 or sources != (0,)):
        raise SpecError(where, "an embedding reads the network's integer ids: it must be the first layer")
    if first_ids and i > 1 and 0 in sources:
        raise SpecError(f"{where}.from", "the network input holds integer ids, which only the embedding reads")
    if not input_shape and not kind.reads_ids and i == 1:
        raise SpecError("network.input", "an empty shape [] is one id an example: the first layer must be an embedding")


def _after_last(problem: str, sources, graph) -> str:
    """A sequence layer given the vector of a recurrent layer with return = "last" says why."""
    before = next((l for l in graph if l.index == sources[0]), None) if sources else None
    if "needs a sequence" in problem and before is not None and before.opt.get("return") == "last":
        return problem + f' (layer {before.index} ({before.kind.name}) has return = "last": its output is h_T alone)'
    return problem


def _loss(value):
    loss_name(value, LOSSES)
    return LOSSES[value]



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
            raise SpecError(where, f"expected shape {shape_text(shape)}, got {got} at {path}")
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


def _nesting(value) -> int:
    """How deep the lists go along their first elements: 0 for a number, 1 for [1, 2], 2 for [[1]]."""
    depth = 0
    while isinstance(value, list) and value:
        value, depth = value[0], depth + 1
    return depth


def _sample(sample, input_shape, graph, loss, ignore):
    for key in sample:
        if key not in ("x", "y", "seed"):
            raise SpecError(f"sample.{key}", "unknown key (expected x, y, seed)")
    for key in ("x", "y"):
        if key not in sample:
            raise SpecError(f"sample.{key}", "missing")
    xv = sample["x"]
    batched = isinstance(xv, list) and _nesting(xv) > len(input_shape)
    if input_shape == (1,) and isinstance(xv, list) and len(xv) > 1 and not batched:
        xv, batched = [[v] for v in xv], True     # one input per example: a flat list is a batch
    if not input_shape and isinstance(xv, list):
        batched = True
    rows = xv if batched else [xv]
    if batched and not rows:
        raise SpecError("sample.x", "empty batch")
    first, out_shape = graph[0], graph[-1].shape
    if first.kind.reads_ids:
        x = sequence.ids(rows, input_shape, first.opt["vocab"], "sample.x")
    else:
        x = _array(rows, (len(rows), *input_shape), "sample.x")
    if loss.name == "cross_entropy" and out_shape[-1] > 1 and sequence.class_indices(sample["y"], batched, out_shape):
        targets, y = sequence.targets(sample["y"], batched, len(rows), out_shape, ignore)
        if ignore is not None and not np.any(targets != ignore):
            raise SpecError("sample.y", f"every target is ignore_index {ignore}: no step counts in the mean")
        return x, y, batched, rows, y.tolist(), targets
    yrows = _as_rows(sample["y"], batched, out_shape[0] if len(out_shape) == 1 else -1)
    if not isinstance(yrows, list) or len(yrows) != len(rows):
        count = len(yrows) if isinstance(yrows, list) else 1
        raise SpecError("sample.y", f"{count} targets for {len(rows)} inputs")
    y = _array(yrows, (len(rows), *out_shape), "sample.y")
    return x, y, batched, rows, yrows, None


def _batch_sizes(graph, batch: int):
    for layer in graph:
        if layer.kind.couples_batch and batch < 2:
            raise SpecError(f"layer {layer.index} ({layer.kind.name})",
                            f"normalises over the batch, which needs at least 2 examples; [sample] gives {batch}")


def _masks(graph, data, sample, batch: int, batched: bool):
    """Each dropout layer's keep-mask (N, *shape): from ``[masks]``, else drawn from a generator
    seeded by ``[sample] seed`` (default 0), in layer order. Returns (masks, where they came from)."""
    wanted = {name: shape for layer in graph for name, shape in layer.data.items()}
    given = _table(data, "masks")
    for key in given:
        if key not in wanted:
            raise SpecError(f"masks.{key}", f"unknown mask (expected {', '.join(wanted) or 'none: no dropout layer'})")
    seed = sample.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise SpecError("sample.seed", f"expected a non-negative integer, got {shown(seed)}")
    if not wanted:
        return None, ""
    rng, masks, drawn = np.random.default_rng(seed), {}, []
    rates = {name: layer.opt["rate"] for layer in graph for name in layer.data}
    for name, shape in wanted.items():
        if name in given:
            where = f"masks.{name}"
            value = given[name] if batched else [given[name]]
            mask = _array(value, (batch, *shape), where)
            if not np.all((mask == 0) | (mask == 1)):
                raise SpecError(where, "expected 0s and 1s (1 keeps a value)")
            masks[name] = mask
        else:
            masks[name] = (rng.random((batch, *shape)) >= rates[name]).astype(np.float64)
            drawn.append(name)
    if not drawn:
        return masks, "the spec's [masks]"
    return masks, (f"{', '.join(drawn)} drawn from a generator seeded with {seed} ([sample] seed)"
                   + (", the rest from [masks]" if len(drawn) < len(masks) else ""))


def trained_names(table: dict, shapes, where: str = "optimizer.train") -> None:
    """SpecError unless every name in the table's ``train`` list is one of the parameters ``shapes``,
    and the update changes at least one of them (``train`` and ``train_biases`` as Settings reads them)."""
    for name in table.get("train") or ():
        if name not in shapes:
            raise SpecError(where, f"{shown(name)} is not a parameter of this network (its parameters: "
                                   f"{', '.join(shapes) or 'none'})")
    settings = Settings.of({k: v for k, v in table.items() if k in ("train", "train_biases")})
    if shapes and not any(settings.trains(name) for name in shapes):
        if "train" in table and not table["train"]:
            raise SpecError(where, "an empty list: the update would change no parameter (leave train out to train them all)")
        raise SpecError(where if "train" in table else where.replace("train", "train_biases"),
                        f"with train_biases = false the update would change no parameter "
                        f"({', '.join(table.get('train') or shapes)}: biases only)")


def optimizer_table(table) -> dict:
    """A validated ``[optimizer]`` table (of a spec, or of a hand file for ``check``)."""
    if not isinstance(table, dict):
        raise SpecError("optimizer", "expected a table")
    for key, value in table.items():
        where = f"optimizer.{key}"
        if key not in OPTIMIZER_KEYS:
            raise SpecError(where, f"unknown key (expected {', '.join(sorted(OPTIMIZER_KEYS))})")
        if key == "name":
            optimizer_name(value, where, OPTIMIZERS)
        elif key in HYPERS:
            HYPERS[key].check(value, where)      # each hyper-parameter's domain, declared once
        elif key == "clip_norm":
            CLIP.hyper.check(value, where)
        elif key in ("bias_correction", "train_biases"):
            if not isinstance(value, bool):
                raise SpecError(where, f"expected true or false, got {shown(value)}")
        elif key == "train":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or len(set(value)) < len(value):
                raise SpecError(where, f"expected a list of parameter names such as [\"W2\", \"b2\"], got {shown(value)}")
        elif key == "max_iters":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SpecError(where, f"expected a positive integer, got {shown(value)}")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value) or value < 0:
            raise SpecError(where, f"expected a non-negative number, got {shown(value)}")
    return dict(table)
