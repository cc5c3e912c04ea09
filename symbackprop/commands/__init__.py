"""Commands: one module per ``symbackprop`` subcommand (``derive``, ``gradcheck``, ``generate``,
``explain``, ``check``), each an ``add_parser(subparsers)`` that reads its flags and calls the stages.
They import the stages only when run, so ``symbackprop --help`` starts without NumPy or SymPy."""
