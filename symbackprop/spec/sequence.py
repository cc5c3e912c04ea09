"""What a spec says about sequences: integer ids as the input of an embedding network, class-index
targets for cross-entropy (one per example, or one per step of a (T, V) output) and
``[network] ignore_index``.

Targets given as class indices are kept twice: as the indices (``Network.targets``) and as one-hot
rows (``Network.y``; a step whose target is ``ignore_index`` gets a row of zeros), which is what the
symbolic model and every loss formula read. The loss is then F.cross_entropy's: the mean over
every example and step that is not ignored — each example's loss is
(r / P)·Σ_steps ℓ with P steps an example and r = N·P / M for M counted steps (r = 1 without
ignored steps), so that the batch mean of the examples' losses is Σ ℓ / M.

>>> ids([[1, 2], [0, 2]], (2,), 3, "sample.x").tolist()
[[1.0, 2.0], [0.0, 2.0]]
>>> ids([[1, 3]], (2,), 3, "sample.x")
Traceback (most recent call last):
symbackprop.errors.SpecError: sample.x[0][1]: id 3 is outside the vocabulary [0, 3) of layer 1 (embedding) (example 1, position 2)
"""
import math

import numpy as np

from ..errors import SpecError, shown


def _integer(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _paths(value, shape, where, what):
    """The (path, item) pairs of nested lists of ``shape``; SpecError naming the first misfit."""
    def walk(v, dims, path, idx):
        if not dims:
            yield path, idx, v
            return
        if not isinstance(v, list) or len(v) != dims[0]:
            got = f"{len(v)} entries" if isinstance(v, list) else shown(v)
            raise SpecError(where, f"expected {what} of shape {tuple(shape)}, got {got} at {path}")
        for i, item in enumerate(v):
            yield from walk(item, dims[1:], f"{path}[{i}]", idx + (i,))
    return walk(value, tuple(shape), where, ())


def _position(idx) -> str:
    return f"example {idx[0] + 1}" + (f", position {', '.join(str(i + 1) for i in idx[1:])}" if len(idx) > 1 else "")


def ids(rows, input_shape, vocab: int, where: str, layer: str = "layer 1 (embedding)") -> np.ndarray:
    """(N, *input_shape) float64 ids from nested lists of integers in [0, vocab); SpecError naming
    the example and position of the first that is not one."""
    out = np.empty((len(rows), *input_shape), dtype=np.float64)
    for path, idx, v in _paths(rows, (len(rows), *input_shape), where, "ids"):
        if not _integer(v):
            raise SpecError(path, f"expected an integer id, got {shown(v)} ({_position(idx)})")
        if not 0 <= v < vocab:
            raise SpecError(path, f"id {v} is outside the vocabulary [0, {vocab}) of {layer} ({_position(idx)})")
        out[idx] = v
    return out


def class_indices(value, batched: bool, out_shape) -> bool:
    """Whether ``[sample] y`` holds class indices: its lists one level shallower than the output's
    shape (a number for a (V,) output, a list of T for a (T, V) one; a list more for a batch)."""
    depth, v = 0, value
    while isinstance(v, list) and v:
        v, depth = v[0], depth + 1
    return depth == len(out_shape) - 1 + batched and _integer(v)


def targets(value, batched: bool, count: int, out_shape, ignore) -> tuple[np.ndarray, np.ndarray]:
    """Class-index targets: (the indices (N, *out_shape[:-1]), one-hot rows (N, *out_shape), zero
    where the index is ``ignore``); SpecError naming the example and position of a class outside
    [0, V) that is not ``ignore``."""
    rows = value if batched else [value]
    if len(rows) != count:
        raise SpecError("sample.y", f"{len(rows)} targets for {count} inputs")
    V, shape = out_shape[-1], (count, *out_shape[:-1])
    index = np.empty(shape, dtype=np.int64)
    for path, idx, v in _paths(rows, shape, "sample.y", "class indices"):
        if not _integer(v):
            raise SpecError(path, f"expected a class index, got {shown(v)} ({_position(idx)})")
        if not 0 <= v < V and v != ignore:
            raise SpecError(path, f"class {v} is outside [0, {V}) ({_position(idx)})"
                                  + ("" if ignore is None else f" and is not ignore_index {ignore}"))
        index[idx] = v
    return index, one_hot(index, V, ignore)


def one_hot(index: np.ndarray, V: int, ignore=None) -> np.ndarray:
    kept = index != ignore if ignore is not None else np.ones(index.shape, bool)
    out = np.zeros((*index.shape, V))
    out[kept, index[kept]] = 1.0
    return out


def ignore_index(net: dict, loss_name: str):
    """``[network] ignore_index``: an integer, for cross-entropy only; None when absent."""
    if "ignore_index" not in net:
        return None
    value = net["ignore_index"]
    if not _integer(value):
        raise SpecError("network.ignore_index", f"expected an integer class, got {shown(value)}")
    if loss_name != "cross_entropy":
        raise SpecError("network.ignore_index", f"only cross_entropy has class targets to ignore, not {loss_name}")
    return value


def kept_count(index: np.ndarray | None, ignore, positions: int, batch: int) -> int:
    """M: the examples × steps that count in the mean (all of them, unless some are ignored)."""
    if index is None or ignore is None:
        return positions * batch
    return int(np.count_nonzero(index != ignore))


def positions(shape) -> int:
    """P: the steps of one example's output (1 for a vector output)."""
    return math.prod(shape[:-1])
