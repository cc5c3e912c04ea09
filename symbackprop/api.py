"""The Python API: the public :class:`Network` and the functions over it.

>>> import symbackprop
>>> net = symbackprop.load("examples/seed.toml")
>>> f = net.compile()
>>> round(float(f.loss(net.parameters, net.x, net.y)), 6)
0.169004
"""
from pathlib import Path

import numpy as np

from .codegen.compiled import compile_network
from .spec import network as _spec
from .spec.inputs import as_network


class Network(_spec.Network):
    """A validated network spec (see :class:`symbackprop.spec.network.Network`, plain data) with
    :meth:`compile`. ``Network.from_dict(data)`` and :func:`load` make one."""

    def compile(self, dtype=np.float64, backend: str = "numpy"):
        """Fast ``forward``/``loss``/``gradients`` generated from the matrix-form derivation."""
        return compile_network(self, dtype, backend)


def load(path: str | Path) -> Network:
    """Read a TOML (or JSON) spec file; :class:`~symbackprop.errors.SpecError` names the first bad field."""
    return _spec.load(path, cls=Network)


def compile(network, dtype=np.float64, backend: str = "numpy"):  # noqa: A001 (the API's name)
    """``compile(network)``: the compiled functions of a Network, a spec's dict or a spec path."""
    return compile_network(as_network(network), dtype, backend)


def backprop(network, exact: bool = False, digits: int = 5):
    """Derive every gradient of ``network`` (a Network, a spec's data as a dict, or a spec path)
    by reverse accumulation; with parameters and a sample, compute every value too. Returns a
    :class:`symbackprop.report.derived.Derived`."""
    from .derive.derivation import Derivation
    from .derive.model import Model
    from .numeric.values import evaluate
    from .report.derived import Derived
    network = as_network(network)
    derivation = Derivation(Model(network))
    return Derived(derivation, evaluate(derivation, exact) if network.has_numbers else None, digits)
