"""Commands: one module per ``symbackprop`` subcommand (``derive``, ``gradcheck``, ``generate``,
``explain``, ``check``), each an ``add_parser(subparsers)`` that reads its flags and calls the stages.
They import the stages only when run, so ``symbackprop --help`` starts without NumPy or SymPy."""


def load_spec(path):
    """The spec file ``path`` as a validated Network. A spec refused by the checks that need no
    SymPy (unknown tables, keys, names; bad sizes) is refused before SymPy and NumPy are imported,
    in a few milliseconds rather than the second their import takes."""
    from ..spec.document import read_spec
    data, source = read_spec(path)
    from ..spec.network import Network
    return Network.from_dict(data, source=source)
