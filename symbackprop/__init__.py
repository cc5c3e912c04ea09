"""symbackprop: derive, explain, check, generate and verify neural-network gradients symbolically.

>>> import symbackprop
>>> result = symbackprop.backprop("examples/seed.toml")     # doctest: +SKIP
>>> print(result)                                          # doctest: +SKIP
"""
from pathlib import Path

from .errors import SpecError
from .spec import Network, load

__all__ = ["Network", "SpecError", "backprop", "load"]


def backprop(network: "Network | str | Path", exact: bool = False, digits: int = 5):
    """Derive every gradient of ``network`` (a Network or a spec path) by reverse accumulation;
    with parameters and a sample, compute every value too. Returns a ``render.Derived``."""
    from .derive import Derivation
    from .model import Model
    from .numeric import evaluate
    from .render import Derived
    if not isinstance(network, Network):
        network = load(network)
    derivation = Derivation(Model(network))
    return Derived(derivation, evaluate(derivation, exact) if network.has_numbers else None, digits)
