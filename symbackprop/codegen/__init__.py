"""Codegen: derived formulas turned into code.

Takes a network and its matrix-form derivation and returns NumPy or PyTorch source: the SymPy
printers and numerically stable rewrites (:mod:`.printing`, :mod:`.rewrites`, :mod:`.inplace`),
compiled ``forward``/``loss``/``gradients`` functions (:mod:`.compiled`) and the standalone
trainers of ``generate`` (:mod:`.trainer`, filling ``templates/``).
"""
from .._lazy import exports

__getattr__, __dir__ = exports(__name__, {"compile_network": "compiled", "CompiledNetwork": "compiled",
                                          "render": "trainer"})
