"""symbackprop: derive, explain, check, generate and verify neural-network gradients symbolically.

>>> import symbackprop
>>> result = symbackprop.backprop("examples/seed.toml")     # doctest: +SKIP
>>> result                                                 # doctest: +SKIP
<Derived 3-2-1 sigmoid/sigmoid squared_error, 11 parameters, C = 0.16900>

The package is folded by stage, each stage importing only earlier ones::

    writers → entries → spec → derive → report → codegen → numeric → explain, check → commands, cli

Importing the package is cheap: the API's names (:mod:`symbackprop.api`, which needs NumPy and
SymPy) are imported on first use, so ``symbackprop --help`` starts without them.
"""
from .errors import SpecError

__all__ = ["Network", "SpecError", "backprop", "compile", "load", "__version__"]
_API = ("Network", "backprop", "compile", "load")


def __getattr__(name):  # PEP 562: the heavy names on first use
    if name in _API:
        from . import api
        return getattr(api, name)
    if name == "__version__":
        return version()
    raise AttributeError(f"module 'symbackprop' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_API) | {"__version__"})


def version() -> str:
    """The installed package's version, from its metadata (pyproject.toml's ``version``)."""
    from importlib.metadata import PackageNotFoundError, version as installed
    try:
        return installed("symbackprop")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "0+unknown"
