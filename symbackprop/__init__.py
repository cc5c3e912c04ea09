"""symbackprop: derive, explain, check, generate and verify neural-network gradients symbolically.

>>> import symbackprop
>>> result = symbackprop.backprop("examples/seed.toml")     # doctest: +SKIP
>>> result                                                 # doctest: +SKIP
<Derived 3-2-1 sigmoid/sigmoid squared_error, 11 parameters, C = 0.16900>

Importing the package is cheap: ``Network`` and ``load`` (which need NumPy and SymPy) are imported
on first use, so ``symbackprop --help`` starts without them.
"""
from pathlib import Path

from .errors import SpecError

__all__ = ["Network", "SpecError", "backprop", "load", "__version__"]


def __getattr__(name):  # PEP 562: the heavy names on first use
    if name in ("Network", "load"):
        from . import spec
        return getattr(spec, name)
    if name == "__version__":
        return version()
    raise AttributeError(f"module 'symbackprop' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | {"Network", "load", "__version__"})


def version() -> str:
    """The installed package's version, from its metadata (pyproject.toml's ``version``)."""
    from importlib.metadata import PackageNotFoundError, version as installed
    try:
        return installed("symbackprop")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "0+unknown"


def backprop(network: "Network | dict | str | Path", exact: bool = False, digits: int = 5):
    """Derive every gradient of ``network`` (a Network, a spec's data as a dict, or a spec path)
    by reverse accumulation; with parameters and a sample, compute every value too. Returns a
    ``render.Derived``."""
    from .derive import Derivation
    from .inputs import as_network
    from .model import Model
    from .numeric import evaluate
    from .render import Derived
    network = as_network(network)
    derivation = Derivation(Model(network))
    return Derived(derivation, evaluate(derivation, exact) if network.has_numbers else None, digits)
