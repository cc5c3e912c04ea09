"""Numeric: numbers for a derivation, and the finite-difference check.

Takes a derivation and a network's numbers and returns every forward value, the loss, every
backward factor and gradient (:mod:`.values`: float64 through the stable forms, exact, or in
arbitrary precision where float64 overflows), and compares gradients with central finite
differences (:mod:`.gradcheck`).
"""
from .._lazy import exports

__getattr__, __dir__ = exports(__name__, {"evaluate": "values", "Values": "values"})
