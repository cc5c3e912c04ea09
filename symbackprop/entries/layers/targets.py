"""The targets cross-entropy reads in the array form: class indices made one-hot rows.

``class_targets(Y, V, ignore, ndim)`` takes Y either of the output's shape (one-hot or probability
rows: passed through) or of the output's shape less its last axis (class indices, held as floats
like every array of the generated code), and gives (N, *S, V) rows: one-hot, a row of zeros where
the class is ``ignore`` (a 1-tuple, or () for none), each scaled by r = N·P/M (P the steps of one
example, M the rows that count) so that the loss's mean over the N·P rows is F.cross_entropy's mean
over the M kept ones (r = 1 when none is ignored). Its torch twin is in ``torch_kernels.py``.
"""
import numpy as np

from ..arrayops import Kernel
from .base import kernel

LOSS_KERNELS = ("class_targets",)     # the kernels the loss's statements call (the layers name their own)


@kernel(view=True)
def class_targets(Y, V, ignore, ndim):
    """One-hot rows (N, *S, V) of the class indices Y (N, *S), zero where ignored and scaled by
    N·P/M; Y of ``ndim`` axes (already rows) as it is. A class outside [0, V) that is not ignored is
    a ValueError naming its example and position."""
    if Y.ndim == ndim:
        return Y
    index = Y.astype(np.intp)
    kept = index != ignore[0] if ignore else np.ones(Y.shape, bool)
    bad = kept & ((index != Y) | (index < 0) | (index >= V))
    if bad.any():
        at = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"Y[{']['.join(map(str, at))}]: class {Y[at]!r} is not an integer in [0, {V})"
                         f"{f' nor ignore_index {ignore[0]}' if ignore else ''} (example {at[0] + 1}"
                         f"{', position ' + ', '.join(str(i + 1) for i in at[1:]) if len(at) > 1 else ''})")
    count = int(np.count_nonzero(kept))
    if count == 0:
        raise ValueError(f"Y: every target is ignore_index {ignore[0]}: no step counts in the mean")
    out = np.zeros((*Y.shape, V), Y.dtype)
    np.put_along_axis(out, np.where(kept, index, 0)[..., None], 1, axis=-1)
    out *= kept[..., None] * (Y.size / count)
    return out


def read_targets(network, b, Y) -> tuple:
    """(the array the loss reads as its targets, the shapes one example's Y may have): Y itself, or
    for a network taking class indices (``Network.class_indices``) the statement ``Yt`` that makes
    them one-hot rows scaled by N·P/M (``b`` is the compiled program's builder)."""
    if not network.class_indices:
        return Y, (network.output_shape,)
    ignore = (network.ignore_index,) if network.ignore_index is not None else ()
    Yt = b.add("Yt", Kernel("class_targets", Y, network.output_size, ignore, len(network.output_shape) + 1),
               r"Y_t = \operatorname{onehot}(Y)" + (r" \cdot \frac{NP}{M}" if ignore else ""), None)
    return Yt, (network.output_shape, network.output_shape[:-1])
