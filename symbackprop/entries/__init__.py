"""Entries: the one-definition tables that every later stage walks.

Each activation and loss (:mod:`.registry`), optimizer (:mod:`.optimizers`) and layer kind
(:mod:`.layers`) is one entry: its SymPy definition, conventions, array kernels, LaTeX and likely
slips. :mod:`.arrayops` holds the array-level SymPy functions (softmax, row sums, kernels) the
entries' rules are written in. Derivatives come from ``sympy.diff`` of the entries, never retyped.
"""
