"""What the public functions accept as a network: a spec path, a spec's data as a dict, or a
:class:`~symbackprop.spec.network.Network`.

>>> as_network("examples/seed.toml").layers
(3, 2, 1)
>>> as_network({"network": {"layers": [2, 1], "activations": ["tanh"], "loss": "mse"}}).layers
(2, 1)
"""
from pathlib import Path

from ..errors import SpecError


def as_network(network, field: str = "network"):
    """A Network from a Network, a dict (``Network.from_dict``) or a path (``load``); SpecError
    naming ``field`` for anything else."""
    from .network import Network, load
    if isinstance(network, Network):
        return network
    if isinstance(network, dict):
        return Network.from_dict(network)
    if isinstance(network, (str, Path)):
        return load(network)
    raise SpecError(field, f"expected a spec path, a dict or a Network, got {type(network).__name__}")
