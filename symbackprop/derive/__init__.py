"""Derive: the symbolic model and its derivations, as data — no formatting, no code.

Takes a :class:`~symbackprop.spec.network.Network` and returns the element-wise SymPy model
(:class:`~.model.Model`), the per-weight chain-rule derivation (:class:`~.derivation.Derivation`:
each gradient as a product of named factors) and the matrix-form derivation
(:func:`~.matrix.derive_matrix`). Writers and code printers consume these; nothing here imports them.
"""
from .._lazy import exports

__getattr__, __dir__ = exports(__name__, {"Derivation": "derivation", "expanded_gradient": "derivation",
                                          "Model": "model", "MatrixDerivation": "matrix", "derive_matrix": "matrix"})
