"""Lazy re-exports for the stage packages (PEP 562): ``import symbackprop.spec`` stays cheap, and
``symbackprop.spec.Network`` imports its module on first use."""
import importlib


def exports(package: str, table: dict[str, str]):
    """``__getattr__`` and ``__dir__`` for ``package``, whose names in ``table`` live in the
    named submodules."""
    def __getattr__(name):
        if name in table:
            return getattr(importlib.import_module(f"{package}.{table[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(table) | set(vars(importlib.import_module(package))))
    return __getattr__, __dir__
