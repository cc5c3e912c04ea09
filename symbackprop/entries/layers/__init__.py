"""Layer kinds, one entry each, grouped by family (see :mod:`symbackprop.entries.layers.base` for what an
entry holds). ``LAYERS`` maps a ``[[layer]]`` table's ``type`` to its entry."""
from . import targets, torch_kernels, torch_sequence  # noqa: F401  (registers the class-target kernel and the torch twins of the kernels)
from .attention import ATTENTION, POSEMBED
from .base import KERNELS, TORCH_KERNELS, Field, Layer, LayerError, LayerKind, Slip, SlipContext, kernel_sources
from .conv import CONV1D, CONV2D
from .dense import DENSE
from .dropout import DROPOUT
from .embedding import EMBEDDING
from .recurrent import GRU, LSTM, RNN
from .merge import ADD
from .norm import BATCHNORM, LAYERNORM
from .pool import AVGPOOL1D, AVGPOOL2D, MAXPOOL1D, MAXPOOL2D
from .shape import FLATTEN

LAYERS: dict[str, LayerKind] = {kind.name: kind for kind in (
    DENSE, CONV1D, CONV2D, MAXPOOL1D, MAXPOOL2D, AVGPOOL1D, AVGPOOL2D, FLATTEN, BATCHNORM, LAYERNORM,
    DROPOUT, ADD, EMBEDDING, RNN, LSTM, GRU, ATTENTION, POSEMBED)}

__all__ = ["KERNELS", "TORCH_KERNELS", "LAYERS", "Field", "Layer", "LayerError", "LayerKind", "Slip", "SlipContext",
           "kernel_sources"]
