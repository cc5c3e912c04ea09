"""Report: the writers of ``derive``'s output.

Takes a per-weight :class:`~symbackprop.derive.derivation.Derivation` (with its numbers, if any) or
a :class:`~symbackprop.derive.matrix.MatrixDerivation` and returns text, LaTeX, Markdown or JSON
(:mod:`.chain`, :mod:`.matrix`; text names, the steps a selection needs and how a value is shown in
:mod:`.names`). Strings only: nothing here differentiates or evaluates.
"""
from .._lazy import exports

__getattr__, __dir__ = exports(__name__, {"Derived": "derived", "RENDERERS": "chain", "render_matrix": "matrix"})
