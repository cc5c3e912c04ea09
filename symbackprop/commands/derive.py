"""``symbackprop derive SPEC``: every gradient as its chain-rule product, with numbers if given."""
import sys
from ..spec import limits
from ..errors import SpecError, shown
from ..writers.output import output_format, write_text

FORMATS = ("text", "latex", "markdown", "json")
SCALAR_DEFAULT_MAX = 200    # parameters: the per-weight form is the default up to here
SCALAR_MAX = 5000           # beyond this the per-weight form is refused (use --form matrix)
# values the per-weight form names (every layer's z and a, for each example of a model built over
# the batch): a 2-example batch-norm CNN of 1,000 takes about 6 s to derive, evaluate and print
SCALAR_DEFAULT_VALUES = 1000
SCALAR_VALUES = 6000
# Exact values and the expanded sympy.diff form grow with depth: measured, a 3-3-3-1 net takes
# 16 s exactly and 4 s expanded, a 5-5-1 net 3 s expanded; two weight layers and these sizes stay
# around a second.
EXACT_MAX = (2, 40)         # (weight layers, parameters) for --exact
EXPANDED_MAX = (2, 24)      # (weight layers, parameters) for the "expanded" formulas in JSON
# ... and the expanded loss's size in expression-tree nodes: a layer that couples the examples
# (batch norm) expands over the whole batch, and a 2-parameter batch norm of 16 values and 3
# examples (351,217 nodes) took 70 s to differentiate and 180 s to print, one of 6,493 nodes 15 s;
# the seed's has 63, a 3-value layer norm's with gelu 2,413 (6 s in all)
EXPANDED_NODES = limits.EXPANDED_NODES


def add_parser(subparsers):
    p = subparsers.add_parser("derive", help="derive every gradient as a chain-rule product",
                              description="Derive every gradient of SPEC's loss by reverse accumulation.")
    p.add_argument("spec", help="the network spec (.toml or .json)")
    p.add_argument("--init", type=int, metavar="SEED",
                   help="draw the parameters and sample the spec lacks: a trainer's init_params(SEED) and a seeded sample")
    p.add_argument("--format", choices=FORMATS, help="default: from the -o extension (.txt, .md, .tex, "
                                                     ".json), else text")
    p.add_argument("--form", choices=("scalar", "matrix"), default=None,
                   help=f"per-weight (default up to {SCALAR_DEFAULT_MAX} parameters) or matrix form")
    p.add_argument("--wrt", action="append", metavar="PARAM", help="only these parameters, e.g. W2 (repeatable)")
    p.add_argument("--digits", type=int, default=5, help="significant digits shown (default 5)")
    p.add_argument("--exact", action="store_true", help="compute with exact Rationals, not float64")
    p.add_argument("-o", "--output", help="write to this file instead of standard output")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.add_argument("--fragment", action="store_true",
                   help="LaTeX: the body only, to \\input into a document of your own (default: a complete document)")
    p.set_defaults(run=run)


def run(args) -> int:
    from . import load_spec
    args.format = output_format(args.output, args.format, FORMATS, "text", "derive")
    if args.fragment and args.format != "latex":
        raise SpecError("--fragment", "is for LaTeX output (--format latex, or -o FILE.tex)")
    network = load_spec(args.spec)
    if args.init is not None:            # numbers where the spec has none: the derivation with them
        from ..spec.initial import numbers
        network, note = numbers(network, args.init, "derive")
        if note:
            print(f"symbackprop derive: note: {note} (--init {args.init})", file=sys.stderr)
    if not 1 <= args.digits <= 17:
        raise SpecError("--digits", "expected 1 to 17")
    shapes = network.parameter_shapes()
    for name in args.wrt or ():
        if name not in shapes:
            raise SpecError("--wrt", f"unknown parameter {shown(name)} (expected {', '.join(shapes)})")
    form = args.form or ("scalar" if _within_scalar(network, SCALAR_DEFAULT_MAX, SCALAR_DEFAULT_VALUES) else "matrix")
    if args.exact and (form == "matrix" or not _within(network, EXACT_MAX)):
        raise SpecError("--exact", f"exact arithmetic is for the per-weight form of networks of at most "
                                   f"{EXACT_MAX[0]} weight layers and {EXACT_MAX[1]} parameters")
    if args.exact and network.has_numbers and len(network.x) > limits.EXAMPLES_SHOWN:
        raise SpecError("--exact", f"exact arithmetic works example by example: at most "
                                   f"{limits.EXAMPLES_SHOWN} examples (the limit), the sample has {len(network.x)}")
    if args.wrt and form == "matrix" and args.format != "json":
        raise SpecError("--wrt", "the matrix form shows every layer's rule; --wrt selects gradients "
                                 "of the per-weight form or of --format json")
    if form == "scalar" and not _within_scalar(network, SCALAR_MAX, SCALAR_VALUES):
        raise SpecError("--form", f"{network.parameter_count} parameters and {network.element_count} values "
                                  f"are too many for the per-weight form (at most {SCALAR_MAX} and "
                                  f"{SCALAR_VALUES}); use --form matrix")
    # exact values can grow without bound (exp(exp(exp(...))) of a Rational): bound the time
    with limits.deadline(limits.EXACT_SECONDS if args.exact else None, "--exact", "exact arithmetic"):
        text = (_scalar if form == "scalar" else _matrix)(network, args)
    write_text(text, args.output, args.force)
    return 0


def _scalar(network, args):
    from ..derive.derivation import Derivation
    from ..derive.model import Model
    from ..numeric.values import evaluate
    from ..report.chain import RENDERERS
    from ..derive.derivation import expanded_gradient
    from ..numeric.values import require_finite
    _announce(network, "deriving and evaluating every element's chain rule")
    model = Model(network)
    derivation = Derivation(model)
    values = None
    if network.has_numbers:
        if args.exact:   # in floats first: exp(exp(exp(...))) makes exact values of millions of digits,
            floats = evaluate(derivation)    # in integer steps no clock interrupts, for a value not finite
            require_finite(floats.forward | floats.gradients | {"loss": floats.loss})
        values = evaluate(derivation, exact=args.exact)
        require_finite(values.forward | values.gradients | {"loss": values.loss})
    if args.format == "latex":
        return RENDERERS["latex"](derivation, values, args.digits, args.wrt, fragment=args.fragment)
    if args.format != "json":
        return RENDERERS[args.format](derivation, values, args.digits, args.wrt)
    expanded = {}
    if _within(network, EXPANDED_MAX) and _nodes_within(model.expanded_loss, EXPANDED_NODES):
        expanded = {(name, index): expanded_gradient(model, symbol) for name, index, symbol in model.parameters()
                    if not args.wrt or name in args.wrt}
    return RENDERERS["json"](derivation, values, args.digits, args.wrt, expanded)


def _announce(network, text):
    """A progress line on a terminal, for a network large enough to take seconds."""
    from ..writers.output import PROGRESS_ELEMENTS, progress
    if network.element_count * max(1, len(network.x) if network.x is not None else 1) >= PROGRESS_ELEMENTS:
        progress("derive", f"{text} ({network.parameter_count:,} parameters, {network.element_count:,} values per example)")


def _within_scalar(network, parameters: int, values: int) -> bool:
    return network.parameter_count <= parameters and network.element_count <= values


def _nodes_within(expr, limit: int) -> bool:
    """Whether ``expr``'s expression tree has at most ``limit`` nodes (counting stops past it)."""
    import sympy
    for n, _ in enumerate(sympy.preorder_traversal(expr), 1):
        if n > limit:
            return False
    return True


def _within(network, limit) -> bool:
    depth, parameters = limit
    return network.depth <= depth and network.parameter_count <= parameters


NUMBERS_SHOWN = 2000     # parameters: the matrix form's text prints their values and gradients up to here


def _matrix(network, args):
    from ..derive.matrix import derive_matrix
    from ..report.matrix import numbers_text, render_matrix, where_numbers
    md = derive_matrix(network)
    if network.has_numbers and (args.format != "text" or network.parameter_count > NUMBERS_SHOWN):
        where = where_numbers(args.init, args.format, network.parameter_count > NUMBERS_SHOWN and args.format == "text")
    else:
        where = ""
    if args.format == "latex":
        from ..writers.latexdoc import document
        body = render_matrix(md, "latex") + where
        return body if args.fragment else document(body)
    if args.format == "markdown":
        return render_matrix(md, args.format) + where
    if args.format == "text":
        text = render_matrix(md, "text") + where
        if network.has_numbers and not where:
            loss, _, grads = _matrix_numbers(network, None)
            text += numbers_text(network, args.init, loss, grads, args.digits)
        return text
    return _matrix_json(network, md, args.wrt)


def _matrix_json(network, md, wrt):
    import json
    import numpy as np
    from ..report.chain import JSON_LAYOUT, network_json
    result = {"network": network_json(network),
              "layout": JSON_LAYOUT,
              "formulas": {name: {"chain": latex} for name, latex in _matrix_formulas(md).items()
                           if not wrt or name in wrt}}
    if network.has_numbers:
        loss, forward, grads = _matrix_numbers(network, wrt)
        result["loss"] = loss
        result["forward"] = {k: np.asarray(v, float).tolist() for k, v in forward.items()}
        result["gradients"] = {k: np.asarray(v, float).tolist() for k, v in grads.items()}
    return json.dumps(result, indent=2, allow_nan=False) + "\n"


def _matrix_numbers(network, wrt) -> tuple:
    """(loss, forward values, gradients) of a network with numbers, for the matrix form's output."""
    import numpy as np
    from ..numeric.values import require_finite
    if _within_scalar(network, SCALAR_MAX, SCALAR_VALUES):
        # numbers people read: the per-weight route's, true in float64 even where the compiled
        # code's guards (exponents clipped at EXP_LO) would leave a trace of 1e-103
        from ..derive.derivation import Derivation
        from ..derive.model import Model
        from ..numeric.values import evaluate
        _announce(network, "evaluating every element by the per-weight route")
        values = evaluate(Derivation(Model(network)))
        require_finite(values.forward | values.gradients | {"loss": values.loss})
        return (float(values.loss), values.forward,
                {k: v for k, v in values.gradients.items() if not wrt or k in wrt})
    from ..codegen.compiled import compile_network
    from ..numeric.gradcheck import forward_pass
    f = compile_network(network, np.float64)
    X, Y = network.x, network.y
    masks = {"masks": network.masks} if network.masks else {}
    with np.errstate(all="ignore"):  # a nan or inf is reported by require_finite below
        forward = forward_pass(network, network.parameters, X)
        loss, grads = f.loss_and_gradients(network.parameters, X, Y, **masks)
    squeeze = (lambda v: v) if network.batched else (lambda v: v[0])
    require_finite(forward | grads | {"loss": loss})
    return (float(loss), {k: squeeze(np.asarray(v)) for k, v in forward.items()},
            {k: v for k, v in grads.items() if not wrt or k in wrt})


def _matrix_formulas(md) -> dict:
    """Per parameter, its gradient in matrix form, from its layer entry's backward rule (the δ
    recursion is in ``render_matrix``)."""
    formulas = {}
    for form in md.layers:
        layer = form.layer
        delta = rf"\delta^{{({layer.index})}}" if layer.has_z else rf"\frac{{\partial C}}{{\partial a^{{({layer.index})}}}}"
        ins = ["x" if s == 0 else f"a^{{({s})}}" for s in layer.sources]
        for name, line in layer.kind.latex_backward(layer, delta, ins).grads.items():
            formulas[name] = line.split(" = ", 1)[1]
    return formulas
