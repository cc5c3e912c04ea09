"""Spec: reading and validating a network spec, before any derivation.

Takes a TOML/JSON file or a dict and returns a :class:`~.network.Network` (plain data: the layer
graph, the loss, optional parameters, sample and optimizer). Also the allow-list formula parser for
custom activations (:mod:`.formula`, user text is never evaluated), every size and time bound
(:mod:`.limits`), the accepted input forms (:mod:`.inputs`) and drawn initial numbers
(:mod:`.initial`). Imports only the entries.
"""
from .._lazy import exports

__getattr__, __dir__ = exports(__name__, {"Network": "network", "load": "network"})
