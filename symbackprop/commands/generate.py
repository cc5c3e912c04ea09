"""``symbackprop generate SPEC -o trainer.py [--backend torch]``: a standalone NumPy (or PyTorch) trainer."""
from ..writers.output import write_text

# generate.DTYPES, generate.FORMS and the optimizer names (a test checks they agree): spelled out
# so that building the parser does not import the generator, Jinja2 and the printers
DTYPES = ("float64", "float32")
FORMS = ("auto", "array", "scalar")
BACKENDS = ("numpy", "torch")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adagrad", "adam", "adamw")


def add_parser(subparsers):
    p = subparsers.add_parser("generate", help="write a standalone NumPy (or PyTorch) training script",
                              description="Write one Python file, needing only NumPy (or, with --backend torch, "
                                          "PyTorch), that trains SPEC's network with the derived gradients and "
                                          "the chosen optimizer.")
    p.add_argument("spec", help="the network spec (.toml or .json)")
    p.add_argument("-o", "--output", help="the trainer to write (default: standard output)")
    p.add_argument("--optimizer", choices=tuple(OPTIMIZERS),
                   help="default: the spec's [optimizer] name, else sgd")
    p.add_argument("--learning-rate", type=float, help="default: the spec's, else the optimizer's")
    p.add_argument("--dtype", choices=DTYPES, default="float64")
    p.add_argument("--form", choices=FORMS, default="auto",
                   help="array code, unrolled scalar code, or auto (scalar for tiny networks)")
    p.add_argument("--backend", choices=BACKENDS, default="numpy",
                   help="numpy, or torch: the same formulas as PyTorch tensor code for CPU or CUDA, "
                        "data-parallel under torchrun")
    p.add_argument("--force", action="store_true", help="overwrite a file symbackprop did not write")
    p.set_defaults(run=run)


def run(args) -> int:
    import sys
    from . import load_spec
    network = load_spec(args.spec)
    from ..codegen.trainer import is_generated, render, wrote_note
    text = render(network, optimizer=args.optimizer, learning_rate=args.learning_rate,
                  dtype=args.dtype, form=args.form, source=args.spec, backend=args.backend)
    write_text(text, args.output, args.force, ours=is_generated)
    print(f"symbackprop generate: {wrote_note(network, args.output, args.optimizer, args.backend)}", file=sys.stderr)
    return 0
