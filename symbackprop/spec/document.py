"""Reading a spec file into plain data, and the checks that need no SymPy or NumPy.

A spec with a misspelt loss or an unknown table should be refused at once, not after the second it
takes to import SymPy: :func:`read_spec` parses the file and runs :func:`precheck` — the tables,
the keys, the sizes and the names of activations, losses, layer types and optimizers — importing only
the standard library. :mod:`symbackprop.spec.network` then validates everything (it uses the same
helpers, so a refusal reads the same either way). The name lists here are the registries' own, spelled
out; a test checks that they agree.

>>> precheck({"network": {"layers": [3, 2, 1], "activations": "sigmoid", "loss": "l2"}})
Traceback (most recent call last):
symbackprop.errors.SpecError: network.loss: unknown loss 'l2' (known: squared_error, half_squared_error, mse, binary_cross_entropy, cross_entropy)
"""
import json
import re
import sys
import tomllib
from pathlib import Path

from . import limits
from ..errors import SpecError, shown

TABLES = {"network", "parameters", "sample", "optimizer", "layer", "masks"}
NETWORK_KEYS = {"layers", "activations", "loss"}          # the dense-stack form
GRAPH_KEYS = {"input", "loss", "ignore_index"}             # with a [[layer]] list
OPTIMIZER_KEYS = {"name", "learning_rate", "beta1", "beta2", "eps", "momentum", "weight_decay",
                  "bias_correction", "train_biases", "train", "rho",
                  "clip_norm",                             # gradient clipping by global norm (entries.optimizers.CLIP)
                  "max_iters", "loss_below", "min_delta"}  # the training loop's stopping conditions
# the registries' names in their order (entries.registry, entries.layers, entries.optimizers)
ACTIVATION_NAMES = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "softplus", "elu", "silu", "gelu",
                    "softmax")
LOSS_NAMES = ("squared_error", "half_squared_error", "mse", "binary_cross_entropy", "cross_entropy")
LAYER_NAMES = ("dense", "conv1d", "conv2d", "maxpool1d", "maxpool2d", "avgpool1d", "avgpool2d", "flatten",
               "batchnorm", "layernorm", "dropout", "add", "embedding", "rnn", "lstm", "gru", "attention", "posembed")
OPTIMIZER_NAMES = ("sgd", "momentum", "nesterov", "rmsprop", "adagrad", "adam", "adamw")


def read_spec(path, check: bool = True) -> tuple[dict, str]:
    """The data of the spec file ``path`` (TOML, or JSON by its extension), and its name; SpecError
    on a file that cannot be read or parsed, or (with ``check``) fails :func:`precheck`."""
    path = Path(path)
    data = parse_document(read_input(path), "JSON" if path.suffix.lower() == ".json" else "TOML", str(path))
    if check:
        precheck(data)
    return data, str(path)


def network_table(data) -> dict:
    """The spec's ``[network]`` table, after the checks both forms share: a table at the top level,
    known tables only, and the network keys of its form (``[[layer]]`` graph or dense stack)."""
    if not isinstance(data, dict):
        raise SpecError("spec", "expected a table at the top level")
    for key in data:
        if key not in TABLES:
            raise SpecError(key, f"unknown table (expected {', '.join(sorted(TABLES))})")
    net = _table(data, "network", required=True)
    graph = "layer" in data
    for key in net:
        if graph and key not in GRAPH_KEYS:
            hint = " (a [[layer]] list replaces layers and activations)" if key in NETWORK_KEYS else ""
            raise SpecError(f"network.{key}", f"unknown key (expected input, loss, ignore_index){hint}")
        if not graph and key not in NETWORK_KEYS:
            raise SpecError(f"network.{key}", "unknown key (expected layers, activations, loss; "
                                              "or input and loss with a [[layer]] list)")
    return net


def precheck(data) -> None:
    """SpecError for the first problem found without the registries' SymPy: the tables, the
    network's keys, sizes and input shape, unknown activation, loss, layer type and optimizer names."""
    net = network_table(data)
    if "layer" in data:
        _input_shape(net.get("input"))
        tables = data["layer"]
        if not isinstance(tables, list) or not tables:
            raise SpecError("layer", "expected a list of [[layer]] tables")
        for i, table in enumerate(tables, start=1):
            if not isinstance(table, dict):
                raise SpecError(f"layer {i}", f"expected a table (type = ..., and its fields), got {shown(table)}")
            layer_type(table.get("type"), i)
    else:
        layers = _layers(net.get("layers"))
        acts = net.get("activations")
        acts = [acts] * (len(layers) - 1) if isinstance(acts, str) else acts
        if not isinstance(acts, list):
            raise SpecError("network.activations", "expected a list with one activation per weight layer")
        if len(acts) != len(layers) - 1:
            raise SpecError("network.activations", f"{len(acts)} activations for {len(layers) - 1} weight layers "
                                                   f"(expected {len(layers) - 1})")
        for i, name in enumerate(acts):
            activation_name(name, f"network.activations[{i}]")
    loss_name(net.get("loss"))
    optimizer = data.get("optimizer", {})
    if isinstance(optimizer, dict) and "name" in optimizer:
        optimizer_name(optimizer["name"], "optimizer.name")


# Each check takes the names it knows: the spelled-out lists here (before SymPy), the live registries
# in spec.network (which also know an entry registered at run time).

def activation_name(name, where, known=ACTIVATION_NAMES) -> None:
    """SpecError unless ``name`` is a string that is a known activation or could be a formula in z."""
    if not isinstance(name, str):
        raise SpecError(where, f"expected a name or a formula in z, got {shown(name)}")
    if name not in known and re.fullmatch(r"[A-Za-z_]\w*", name) and name != "z":
        raise SpecError(where, f"unknown activation {shown(name)} (known: {', '.join(known)}; "
                               "or a formula in z such as \"z/(1 + abs(z))\")")


def loss_name(value, known=LOSS_NAMES) -> None:
    if not isinstance(value, str) or value not in known:
        raise SpecError("network.loss", f"unknown loss {shown(value)} (known: {', '.join(known)})")


def layer_type(kind_name, i: int, known=LAYER_NAMES) -> None:
    if kind_name not in known:
        problem = "missing" if kind_name is None else f"unknown layer type {shown(kind_name)}"
        raise SpecError(f"layer {i}.type", f"{problem} (known: {', '.join(known)})")


def optimizer_name(value, where, known=OPTIMIZER_NAMES) -> None:
    if not isinstance(value, str) or value not in known:
        raise SpecError(where, f"unknown optimizer {shown(value)} (known: {', '.join(known)})")


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


def parse_document(text: str, kind: str, source: str, parse_float=float) -> dict:
    """The data of a TOML or JSON document (``kind``), refused with one line naming ``source``
    when it is not valid, repeats a key (JSON; TOML refuses that itself), holds a number of more
    digits than Python converts (4,300), or nests arrays and tables more than
    :data:`limits.NESTING <symbackprop.spec.limits.NESTING>` deep.

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
    limits.check_count(len(value) - 1, "network.layers", "weight layers")
    for i, size in enumerate(value):
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise SpecError(f"network.layers[{i}]", f"expected a positive integer, got {shown(size)}")
    return value


def _input_shape(value, empty=True):
    """The shape of one example; ``[]`` (one id an example, for an embedding) where ``empty``."""
    if not isinstance(value, list) or not (0 if empty else 1) <= len(value) <= 3:
        raise SpecError("network.input", "expected the shape of one example: [features], [channels, length] "
                                         "or [channels, height, width] ([T] or [] of ids for an embedding)")
    for i, size in enumerate(value):
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise SpecError(f"network.input[{i}]", f"expected a positive integer, got {shown(size)}")
    return tuple(value)


