"""``symbackprop gradcheck SPEC``: every derived gradient against central finite differences."""
import math
import sys

from ..errors import SpecError

# verify.DEFAULT_TOLERANCE (a test checks they agree): spelled out so that --help imports no NumPy
DEFAULT_TOLERANCE = 1e-5
SCALAR_MAX = 500   # the per-weight derivation is checked too, up to this many parameters
SCALAR_VALUES = 2000  # and this many named values (see derive's SCALAR_VALUES)
# A central difference's error is about h² (truncation) plus eps/h (rounding): below 1e-12 it is
# all rounding, above 0.1 all truncation, and a huge step overflows the network's functions.
STEP = (1e-12, 0.1)
TOLERANCE = (0.0, 1.0)   # a relative error: (0, 1]


def add_parser(subparsers):
    p = subparsers.add_parser("gradcheck", help="check every gradient against finite differences",
                              description="Compare the derived gradients with central finite differences "
                                          "(float64). Exit status 1 when any is over the tolerance.")
    p.add_argument("spec")
    p.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                   help=f"largest relative error allowed (default {DEFAULT_TOLERANCE:g})")
    p.add_argument("--step", type=float, default=1e-6, help="finite-difference step h (default 1e-6)")
    p.add_argument("--init", "--seed", dest="init", type=int, default=0, metavar="SEED",
                   help="without [parameters] or [sample], draw them from this seed, as derive and explain "
                        "--init do (default 0; --seed is the old spelling)")
    p.set_defaults(run=run)


def derived_gradients(network):
    """(route name, gradients) for every route that can derive this network."""
    import numpy as np
    routes = []
    if network.parameter_count <= SCALAR_MAX and network.element_count <= SCALAR_VALUES:
        from ..derive.derivation import Derivation
        from ..derive.model import Model
        from ..numeric.values import evaluate
        routes.append(("scalar", evaluate(Derivation(Model(network))).gradients))
    from ..codegen.compiled import compile_network
    compiled = compile_network(network, np.float64)
    masks = {"masks": network.masks} if network.masks else {}
    routes.append(("matrix", compiled.gradients(network.parameters, network.x, network.y, **masks)))
    return routes


def index_note(shapes) -> str:
    """The header line saying how indices count, with an example from this network's parameters:
    its last matrix (row, column), else its first parameter.

    >>> index_note({"W1": (4, 1, 3, 3), "b1": (4,), "W5": (3, 64)})
    'indices 1-based as in the math: W5[1,2] is row 1, column 2 of W5'
    >>> index_note({"W1": (4, 1, 3, 3)})
    'indices 1-based as in the math: W1[1,1,2,3] is output channel 1, input channel 1, row 2, column 3 of W1'
    """
    matrices = [name for name, shape in shapes.items() if len(shape) == 2]
    name = matrices[-1] if matrices else next(iter(shapes))
    shape = shapes[name]
    words = {1: ("element",), 2: ("row", "column"), 3: ("output channel", "input channel", "position"),
             4: ("output channel", "input channel", "row", "column")}.get(len(shape), ())
    # an example index that tells the axes apart: row 1, column 2 of a matrix; row 2, column 3 of a kernel
    tail = [min(2, shape[-1])] if len(shape) <= 2 else [min(2, shape[-2]), min(3, shape[-1])]
    index = [1] * (len(shape) - len(tail)) + tail
    at = ",".join(map(str, index))
    where = ", ".join(f"{w} {i}" for w, i in zip(words, index)) if words else f"element ({at})"
    return f"indices 1-based as in the math: {name}[{at}] is {where} of {name}"


def run(args) -> int:
    if not TOLERANCE[0] < args.tolerance <= TOLERANCE[1]:
        raise SpecError("--tolerance", f"expected a relative error in ({TOLERANCE[0]:g}, {TOLERANCE[1]:g}], "
                                       f"got {args.tolerance:g}")
    if not STEP[0] <= args.step <= STEP[1]:
        raise SpecError("--step", f"expected a step h in [{STEP[0]:g}, {STEP[1]:g}], got {args.step:g}")
    from . import load_spec
    network = load_spec(args.spec)
    from ..numeric.gradcheck import gradcheck
    from ..spec.initial import numbers
    network, note = numbers(network, args.init, "gradcheck", "--init SEED")
    if note:     # gradcheck checks formulas: any numbers will do, and it says which it drew
        print(f"symbackprop gradcheck: note: {note} (--init {args.init})", file=sys.stderr)
    import numpy as np
    from ..numeric.values import require_finite
    from ..numeric.gradcheck import loss_function
    with np.errstate(all="ignore"):   # nan and inf are reported below, as bad input, not as warnings
        loss = loss_function(network)(network.parameters, network.x, network.y)
        routes = derived_gradients(network)
    require_finite({"loss": loss})
    for _, grads in routes:
        require_finite({f"gradient of {name}": g for name, g in grads.items()})
    with np.errstate(all="ignore"):   # a difference that overflows is reported below
        checks = [(route, gradcheck(network, grads, network.parameters, network.x, network.y, args.tolerance,
                                    args.step)) for route, grads in routes]
    if not all(math.isfinite(c.numeric) for _, cs in checks for c in cs):
        raise SpecError("--step", f"the finite differences with h = {args.step:g} are not finite numbers "
                                  "(the loss overflows there): use a smaller step")
    failed = False
    from ..writers.sigfig import significant
    print(index_note(network.parameter_shapes()))
    print(f"{'route':8} {'parameter':10} {'max rel. error':>15}  {'at':10} {'derived':>14} {'finite diff.':>14}")
    kinks = {}
    for route, cs in checks:
        for c in cs:
            failed |= not c.ok
            at = "[" + ",".join(str(i + 1) for i in c.index) + "]"
            print(f"{route:8} {c.param:10} {c.max_error:15.3e}  {at:10} {significant(c.analytic, 7):>14} "
                  f"{significant(c.numeric, 7):>14}  {'ok' if c.ok else 'FAIL'}"
                  + (f" (elements at a kink left out: see below)" if c.kinks else ""))
            kinks.update(dict.fromkeys(f"{c.param}: {why}" for why in c.kinks))
    for line in kinks:
        print(f"kink   {line}")
    print(f"tolerance {args.tolerance:g}: {'FAILED' if failed else 'all gradients agree'}"
          + (" (but at kinks, where the derivative is a convention)" if kinks and not failed else ""))
    return 1 if failed else 0
