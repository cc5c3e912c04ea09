"""Every bound on the work one input may ask for, in one place, and the clock that enforces time.

Each limit is checked where the input is first read, before anything large is built, and a
refusal names the limit. Where each is enforced:

======================  ================================  =====================================
limit                   value                             enforced in
======================  ================================  =====================================
echoed user text        60 characters ("…" after)         ``errors.shown``, ``errors.SpecError``
a field name            160 characters (middle cut)       ``errors.SpecError``
a whole message         400 characters                    ``errors.SpecError``
formula length          400 characters                    ``formula.MAX_LENGTH``
max()/min() arguments   8                                 ``formula.MAX_ARGUMENTS``
formula's derivative    500 operations (count_ops)        ``formula.MAX_OPERATIONS``
building a formula      5 s                               :data:`FORMULA_SECONDS`
exact arithmetic        10 s                              :data:`EXACT_SECONDS` (``derive --exact``)
nesting of a spec       32 levels of arrays and tables    :data:`NESTING` (``document.parse_document``)
numbers in a spec       4,300 digits (Python's own)       ``document.parse_document``
examples printed        100 per batch                     :data:`EXAMPLES_SHOWN` (``explain``,
                                                          ``derive --exact``)
sample in a trainer     1,000 numbers                     :data:`SAMPLE_EMBEDDED` (``generate``)
expanded JSON formulas  an expanded loss of 3,000 nodes   :data:`EXPANDED_NODES` (``derive --format
                        (and 2 layers, 24 parameters)     json``: left out above it)
layers in a network     1,000 (``[[layer]]`` tables or    :data:`LAYERS` (``spec.network``, before
                        ``layers`` sizes; bounds depth)   any layer is read)
a network's size        50,000,000 values (400 MB in      :data:`SPEC_VALUES` (:func:`check_sizes`,
                        float64): parameters ×4 (value,   right after the layers are validated and
                        gradient, two optimizer moments)  again with the sample's batch; every
                        + batch × every layer's output,   command, ``generate`` included)
                        z, δ, data and workspace
a trainer's memory      half the machine's memory, or     ``MEMORY_FRACTION`` in the generated
                        ``--max-memory GB``               trainer: before init_params and data
======================  ================================  =====================================
"""
import math
import signal
import threading
from contextlib import contextmanager

from ..errors import SpecError

FORMULA_SECONDS = 5.0
EXACT_SECONDS = 10.0
NESTING = 32
EXAMPLES_SHOWN = 100
SAMPLE_EMBEDDED = 1000
EXPANDED_NODES = 3000
LAYERS = 1000
SPEC_VALUES = 50_000_000
PARAMETER_COPIES = 4       # a parameter, its gradient and up to two optimizer moments (Adam)
SAMPLE_DRAWN = 4           # examples a command draws for a spec without a [sample] (batch norm needs 2)


def check_count(count: int, field: str, what: str) -> None:
    """SpecError unless a network's ``count`` layers are within :data:`LAYERS` (which bounds depth)."""
    if count > LAYERS:
        raise SpecError(field, f"{count:,} {what}, more than {LAYERS:,} (the limit)")


def sample_rows(sample, input_shape) -> int:
    """How many examples a spec's ``[sample]`` table holds, from the nesting of its ``x`` alone
    (before any array is built); :data:`SAMPLE_DRAWN` when there is none."""
    x = sample.get("x") if isinstance(sample, dict) else None
    if not isinstance(x, list):
        return SAMPLE_DRAWN if sample is None else 1
    depth, first = 0, x
    while isinstance(first, list) and first:
        first, depth = first[0], depth + 1
    return len(x) if depth > len(input_shape) or tuple(input_shape) == (1,) else 1


def check_sizes(input_shape, graph, batch: int, limit: int = SPEC_VALUES) -> None:
    """SpecError naming the first layer at which the network, for a batch of ``batch`` examples,
    needs more than ``limit`` values (float64) — counted from the shapes alone, before anything is
    allocated: the input, then each layer's parameters (×:data:`PARAMETER_COPIES`) and its
    per-example output, z, δ, data and workspace (``Layer.values_per_example``).

    >>> from symbackprop.spec.network import Network
    >>> net = Network.stack([10**6, 10**6], [None], None)
    >>> check_sizes(net.input, net.graph, 1)
    Traceback (most recent call last):
    symbackprop.errors.SpecError: layer 1 (dense): W1 (1000000, 1000000), output (1000000,): the network up to here needs 4,000,008,000,000 values (parameters ×4 for gradients and optimizer moments; outputs, z, δ and workspace × 1 example(s)), more than 50,000,000 (the limit, 400 MB in float64)
    """
    def refuse(where, total, what):
        raise SpecError(where, f"{what}: the network up to here needs {total:,} values (parameters ×"
                               f"{PARAMETER_COPIES} for gradients and optimizer moments; outputs, z, δ and "
                               f"workspace × {batch:,} example(s)), more than {limit:,} (the limit, "
                               f"{limit * 8 / 1e6:g} MB in float64)")
    total = batch * math.prod(input_shape)
    if total > limit:
        refuse("network.input", total, f"inputs of shape {_shape(input_shape)}")
    for layer in graph:
        total += PARAMETER_COPIES * layer.parameter_count + batch * layer.values_per_example
        if total > limit:
            biggest = max(layer.params.items(), key=lambda item: math.prod(item[1]), default=None)
            what = f"{biggest[0]} {_shape(biggest[1])}, output {_shape(layer.shape)}" if biggest else \
                f"output {_shape(layer.shape)}"
            refuse(f"layer {layer.index} ({layer.kind.name})", total, what)


def _shape(shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


class _Expired(BaseException):
    """Raised by the clock's signal. A BaseException, so that SymPy's ``except Exception``
    clauses cannot swallow it and carry on."""


@contextmanager
def deadline(seconds: float | None, field: str, what: str):
    """Run the block for at most ``seconds`` of wall time, else SpecError naming ``field``, what
    took long and the limit. Uses SIGALRM, so it bounds only the main thread of a Unix process;
    elsewhere (or inside another deadline, which keeps its own) the block runs unbounded.

    >>> with deadline(1.0, "f", "nothing"):
    ...     pass
    """
    usable = (seconds is not None and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread()
              and signal.getitimer(signal.ITIMER_REAL)[0] == 0)
    if not usable:
        yield
        return

    def expire(signum, frame):
        raise _Expired

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except _Expired:
        raise SpecError(field, f"{what} took longer than {seconds:g} s (the limit)") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
