"""``symbackprop explain SPEC``: a complete worked example of one training step (and, with
``--steps``, a short training run), as Markdown, a LaTeX document or a standalone HTML page."""
import sys
import math

from ..spec import limits
from ..errors import SpecError, shown
from ..writers.output import PROGRESS_ELEMENTS, output_format, progress, writable, write_text

FORMATS = ("markdown", "latex", "html", "text")


def add_parser(subparsers):
    p = subparsers.add_parser(
        "explain", help="write a worked example: forward, loss, backward, update, forward again",
        description="Work one training step of SPEC by hand, as a textbook would: the forward pass "
                    "with every sum written out, the loss, every factor of the chain rule for every "
                    "layer, the optimizer's update and the forward pass after it.")
    p.add_argument("spec", help="the network spec (.toml or .json) with [parameters] and [sample]")
    p.add_argument("--optimizer", help="sgd, momentum, nesterov, rmsprop, adagrad, adam or adamw "
                                       "(default: the spec's [optimizer].name, else sgd)")
    p.add_argument("--steps", metavar="K", help="train K steps and tabulate the loss (default 1; past 30 steps the "
                                                "table shows the first and last 10 and every power of ten)")
    p.add_argument("--steps-csv", metavar="FILE", help="write every step's loss to this CSV file")
    p.add_argument("--digits", metavar="D", default="5", help="significant digits shown (default 5)")
    p.add_argument("--init", type=int, metavar="SEED",
                   help="draw the parameters and sample the spec lacks: a trainer's init_params(SEED) and a seeded sample")
    p.add_argument("--wrt", action="append", metavar="PARAM",
                   help="show the backward pass and the update for these parameters only, e.g. W2 (repeatable)")
    p.add_argument("--format", choices=FORMATS, help="default: from the -o extension (.md, .tex, .html, .txt), "
                                                     "else text on a terminal, markdown otherwise")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.add_argument("--fragment", action="store_true",
                   help="LaTeX: the body only, to \\input into a document of your own (default: a complete document)")
    p.add_argument("--clip-norm", metavar="C", help="clip the gradients by their global 2-norm C before the update, "
                   "as the trainers' --clip-norm and torch.nn.utils.clip_grad_norm_ (default: the spec's "
                   "[optimizer] clip_norm, else none)")
    p.add_argument("--max-iters", metavar="N", help="stop after at most N steps")
    p.add_argument("--loss-below", metavar="T", help="stop once the loss is below T")
    p.add_argument("--min-delta", metavar="D", help="stop once the loss changes by less than D in a step")
    p.set_defaults(run=run)


def _positive_int(text, field):
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        raise SpecError(field, f"expected a positive integer, got {shown(text)}") from None
    if value < 1:
        raise SpecError(field, f"expected a positive integer, got {shown(text)}")
    return value


def _threshold(text, field):
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise SpecError(field, f"expected a non-negative number, got {shown(text)}") from None
    if not math.isfinite(value) or value < 0:
        raise SpecError(field, f"expected a non-negative number, got {shown(text)}")
    return value


def run(args) -> int:
    from . import load_spec
    steps = _positive_int(args.steps, "--steps")
    max_iters = _positive_int(args.max_iters, "--max-iters")
    loss_below = _threshold(args.loss_below, "--loss-below")
    min_delta = _threshold(args.min_delta, "--min-delta")
    digits = _positive_int(args.digits, "--digits")
    # a terminal reads plain text; a pipe or a file gets Markdown (what a viewer or pandoc renders)
    fmt = output_format(args.output, args.format, FORMATS, "text" if _terminal(args.output) else "markdown", "explain")
    if args.fragment and fmt != "latex":
        raise SpecError("--fragment", "is for LaTeX output (--format latex, or -o FILE.tex)")
    network = load_spec(args.spec)
    from ..explain.example import check_size, explain
    check_size(network)               # before drawing numbers for a network too large to show
    from ..spec.initial import numbers
    network, note = numbers(network, args.init, "explain")
    if note:
        print(f"symbackprop explain: note: {note} (--init {args.init})", file=sys.stderr)
    if network.has_numbers and len(network.x) > limits.EXAMPLES_SHOWN:
        raise SpecError("sample.x", f"explain prints every example's numbers: at most {limits.EXAMPLES_SHOWN} "
                                    f"examples (the limit), the sample has {len(network.x)}; derive --form matrix "
                                    "--format json gives the gradients of any batch")
    if args.steps_csv is not None:
        _check_steps_csv(args)
    if network.x is not None and network.element_count * len(network.x) >= PROGRESS_ELEMENTS:
        progress("explain", f"working the example through ({network.parameter_count:,} parameters, "
                            f"{network.element_count:,} values for each of {len(network.x)} examples)")
    clip_norm = None
    if args.clip_norm is not None:
        from ..entries.optimizers import CLIP
        try:
            clip_norm = CLIP.hyper.check(float(args.clip_norm), "--clip-norm")
        except ValueError:
            raise SpecError("--clip-norm", f"expected a number greater than 0, got {shown(args.clip_norm)}") from None
    explanation = explain(network, args.optimizer, steps, digits, max_iters, loss_below, min_delta, args.wrt,
                          clip_norm=clip_norm)
    text = explanation.latex(fragment=True) if args.fragment else explanation.render(fmt)
    if args.steps_csv is not None:
        write_text(explanation.steps_csv(), args.steps_csv, args.force, field="--steps-csv")
    write_text(text, args.output, args.force)
    return 0


def _check_steps_csv(args):
    """SpecError unless --steps-csv names a .csv file that is not the spec, nor -o's file, and both
    it and -o's file may be written (checked before either is)."""
    import os
    path = args.steps_csv
    if path == "-" or not path.lower().endswith(".csv"):
        raise SpecError("--steps-csv", f"{shown(path)}: name a .csv file")
    for other, flag in ((args.spec, "the spec"), (args.output, "-o's file")):
        if other not in (None, "-") and (os.path.abspath(other) == os.path.abspath(path)
                                         or os.path.exists(path) and os.path.exists(other)
                                         and os.path.samefile(path, other)):
            raise SpecError("--steps-csv", f"{shown(path)} is {flag}; name another file")
    writable(path, args.force, field="--steps-csv")
    if args.output not in (None, "-"):
        writable(args.output, args.force)


def _terminal(output) -> bool:
    """Whether the output goes to a terminal (no -o, standard output a tty)."""
    return output in (None, "-") and sys.stdout.isatty()
