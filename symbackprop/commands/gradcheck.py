"""``symbackprop gradcheck SPEC``: every derived gradient against central finite differences."""
import math

from ..errors import SpecError

# verify.DEFAULT_TOLERANCE (a test checks they agree): spelled out so that --help imports no NumPy
DEFAULT_TOLERANCE = 1e-5
SCALAR_MAX = 500   # the per-weight derivation is checked too, up to this many parameters
SCALAR_VALUES = 2000  # and this many named values (see derive's SCALAR_VALUES)


def add_parser(subparsers):
    p = subparsers.add_parser("gradcheck", help="check every gradient against finite differences",
                              description="Compare the derived gradients with central finite differences "
                                          "(float64). Exit status 1 when any is over the tolerance.")
    p.add_argument("spec")
    p.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                   help=f"largest relative error allowed (default {DEFAULT_TOLERANCE:g})")
    p.add_argument("--step", type=float, default=1e-6, help="finite-difference step h (default 1e-6)")
    p.set_defaults(run=run)


def derived_gradients(network):
    """(route name, gradients) for every route that can derive this network."""
    import numpy as np
    routes = []
    if network.parameter_count <= SCALAR_MAX and network.element_count <= SCALAR_VALUES:
        from ..derive import Derivation
        from ..model import Model
        from ..numeric import evaluate
        routes.append(("scalar", evaluate(Derivation(Model(network))).gradients))
    compiled = network.compile(np.float64)
    routes.append(("matrix", compiled.gradients(network.parameters, network.x, network.y)))
    return routes


def run(args) -> int:
    if not (math.isfinite(args.tolerance) and args.tolerance > 0):
        raise SpecError("--tolerance", "expected a positive number")
    if not (math.isfinite(args.step) and args.step > 0):
        raise SpecError("--step", "expected a positive number")
    from ..spec import load
    from ..verify import gradcheck
    network = load(args.spec)
    if not network.has_numbers:
        raise SpecError(args.spec, "gradcheck needs [parameters] and [sample]")
    import numpy as np
    from ..numeric import require_finite
    from ..verify import loss_function
    with np.errstate(all="ignore"):   # nan and inf are reported below, as bad input, not as warnings
        loss = loss_function(network)(network.parameters, network.x, network.y)
        routes = derived_gradients(network)
    require_finite({"loss": loss})
    for _, grads in routes:
        require_finite({f"gradient of {name}": g for name, g in grads.items()})
    failed = False
    from ..sigfig import significant
    print("indices 1-based as in the math: W2[1,2] is row 1, column 2 of W2")
    print(f"{'route':8} {'parameter':10} {'max rel. error':>15}  {'at':10} {'derived':>14} {'finite diff.':>14}")
    for route, grads in routes:
        for c in gradcheck(network, grads, network.parameters, network.x, network.y, args.tolerance, args.step):
            failed |= not c.ok
            at = "[" + ",".join(str(i + 1) for i in c.index) + "]"
            print(f"{route:8} {c.param:10} {c.max_error:15.3e}  {at:10} {significant(c.analytic, 7):>14} "
                  f"{significant(c.numeric, 7):>14}  {'ok' if c.ok else 'FAIL'}")
    print(f"tolerance {args.tolerance:g}: {'FAILED' if failed else 'all gradients agree'}")
    return 1 if failed else 0
