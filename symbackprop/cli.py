"""The ``symbackprop`` command line: one subcommand per module in ``symbackprop.commands``.

Each command module defines ``add_parser(subparsers)``, which registers its arguments and sets
``run=<function(args) -> exit status>``. Bad input anywhere raises :class:`SpecError`, printed here
as one line with exit status 2 — never a traceback.
"""
import argparse
import importlib
import os
import sys

from .errors import SpecError, one_line

COMMANDS = ("derive", "gradcheck", "generate", "explain", "check", "exercise")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not argparse's usage block; it may quote a huge argument
        print(f"{self.prog}: error: {one_line(message)}", file=sys.stderr)
        raise SystemExit(2)


class _Version(argparse.Action):
    """``--version``: the version from the package metadata, read only when asked for."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from . import version
        print(f"symbackprop {version()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="symbackprop", description="Derive, explain, check, generate and verify "
                     "the gradients of neural networks, symbolically.")
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f"symbackprop.commands.{name}").add_parser(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except SpecError as err:
        print(f"symbackprop {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (| head): stop quietly, as other tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
