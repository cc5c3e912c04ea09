"""Every bound on the work one input may ask for, in one place, and the clock that enforces time.

Each limit is checked where the input is first read, before anything large is built, and a
refusal names the limit. Where each is enforced:

======================  ================================  =====================================
limit                   value                             enforced in
======================  ================================  =====================================
echoed user text        60 characters ("…" after)         ``errors.shown``, ``errors.SpecError``
a field name            160 characters (middle cut)       ``errors.SpecError``
a whole message         400 characters                    ``errors.SpecError``
formula length          400 characters                    ``safeexpr.MAX_LENGTH``
max()/min() arguments   8                                 ``safeexpr.MAX_ARGUMENTS``
formula's derivative    500 operations (count_ops)        ``safeexpr.MAX_OPERATIONS``
building a formula      5 s                               :data:`FORMULA_SECONDS`
exact arithmetic        10 s                              :data:`EXACT_SECONDS` (``derive --exact``)
nesting of a spec       32 levels of arrays and tables    :data:`NESTING` (``spec.parse_document``)
numbers in a spec       4,300 digits (Python's own)       ``spec.parse_document``
examples printed        100 per batch                     :data:`EXAMPLES_SHOWN` (``explain``,
                                                          ``derive --exact``)
sample in a trainer     1,000 numbers                     :data:`SAMPLE_EMBEDDED` (``generate``)
JSON "expanded"         an expanded loss of 3,000 nodes   :data:`EXPANDED_NODES` (``derive --format
formulas                (and 2 layers, 24 parameters)     json``: left out above it)
======================  ================================  =====================================
"""
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
