"""symbackprop: derive, explain, check, generate and verify neural-network gradients symbolically.

>>> from symbackprop import load, derive
>>> net = load("examples/seed.toml")          # doctest: +SKIP
>>> d, values = derive(net)                   # doctest: +SKIP
"""
from .errors import SpecError
from .spec import Network, load

__all__ = ["Network", "SpecError", "load"]
