"""Backpropagation in matrix form, for a network of any depth and width.

SymPy derives only the small element-wise rules — each layer's f′ (from ``Activation.derivative``,
written in the layer's output ``a`` where the registry has ``output_form``), the loss gradient
∂C/∂a (from ``Loss.derivative``) and the fused output deltas of :data:`FUSIONS` — and a fixed
recursion carries them through the layers, for one example (column vectors):

    δ^{(L)} = ∇_a C ⊙ f′_L(z^{(L)})               (or a fused form, or the softmax Jacobian)
    δ^{(l)} = (W^{(l+1)})ᵀ δ^{(l+1)} ⊙ f′_l(z^{(l)})
    ∂C/∂W^{(l)} = δ^{(l)} (a^{(l−1)})ᵀ,   ∂C/∂b^{(l)} = δ^{(l)}

and, for a batch, each gradient is the mean over the examples. Layout: each gradient has its
parameter's shape. A softmax output with a loss it is not fused with takes the full
Jacobian-vector product δ = a ⊙ (g − Σ_j a_j g_j) with g = ∇_a C (see :func:`softmax_jvp`).

Nothing here formats strings: :func:`symbackprop.report.matrix.render_matrix` writes the result as text,
LaTeX or Markdown.

>>> from symbackprop.spec.network import Network
>>> md = derive_matrix(Network.from_dict({"network": {"layers": [3, 2, 1],
...     "activations": ["sigmoid", "sigmoid"], "loss": "binary_cross_entropy"}}))
>>> md.output.kind, md.output.delta, md.layers[0].factor
('fused', a - y, a*(1 - a))
"""
import math
from dataclasses import dataclass

import sympy

from ..entries.arrayops import RowSum
from ..entries.layers.base import param_tex
from ..entries.registry import ACTIVATIONS, a, n, y, z
from ..spec.network import Network

LAYOUT = "each gradient has its parameter's shape"


@dataclass(frozen=True)
class Fusion:
    """An output activation and a loss whose δ = ∂C/∂z simplifies: ``delta`` is δ_j of one output
    in the output a and target y (before the loss's scale).
    Each entry is proven equal to the chain-rule product by SymPy in tests/test_registry_rules.py."""
    activation: str
    loss: str
    delta: sympy.Expr


FUSIONS = (
    Fusion("sigmoid", "binary_cross_entropy", a - y),
    Fusion("sigmoid", "cross_entropy", a * y - y),
    # a_j Σ_k y_k − y_j, exact for any targets; a − y when they sum to 1 (one-hot, probabilities)
    Fusion("softmax", "cross_entropy", a * RowSum(y) - y),
)
# identity with any loss needs no entry: f′ = 1, so δ is ∇_a C as it stands (2(a − y) for
# squared error).
_FUSION = {(f.activation, f.loss): f for f in FUSIONS}


@dataclass(frozen=True)
class LayerForm:
    """Layer l of the graph: its entry's rule gives z (or a, for a layer without a pre-activation),
    then a = f(z). ``inputs`` and ``outputs`` are its input and output sizes, flattened."""
    index: int
    inputs: int
    outputs: int
    activation: str
    latex: str                          # f's LaTeX name
    expr: sympy.Expr                    # f(z) in the registry's z (exp(z) for softmax, unnormalised)
    derivative: sympy.Expr              # f′(z) in z, by SymPy
    output_form: sympy.Expr | None      # f′ in the output a, from the registry (proven in tests)
    elementwise: bool
    note: str = ""
    layer: object = None                # the spec's Layer (its kind's entry holds its rules)

    @property
    def name(self) -> str:
        """How the renderers call f: the registry name, or f_l for a formula from the spec."""
        return self.activation if self.activation in ACTIVATIONS else f"f_{self.index}"

    @property
    def tex(self) -> str:
        return self.latex if self.activation in ACTIVATIONS else f"f_{{{self.index}}}"

    @property
    def factor(self) -> sympy.Expr:
        """The f′ the recursion multiplies by: in a where that form exists, else in z."""
        return self.output_form if self.output_form is not None else self.derivative


@dataclass(frozen=True)
class OutputDelta:
    """δ^{(L)} = ∂C/∂z^{(L)} for one example.

    ``kind`` is "fused" (``delta`` from :data:`FUSIONS`, times the loss scale), "elementwise"
    (``delta`` = ∇_a C ⊙ f′) or "jacobian" (softmax with another loss: ``delta`` is None and
    δ = :func:`softmax_jvp` of a and ``loss_gradient``)."""
    kind: str
    loss_gradient: sympy.Expr           # ∂C/∂a_j = scale · ℓ′(a_j, y_j), in a and y
    delta: sympy.Expr | None            # δ_j in a, y (and z where f′ has no output form)


@dataclass(frozen=True)
class MatrixDerivation:
    sizes: tuple[int, ...]
    layers: tuple[LayerForm, ...]
    loss: str
    loss_term: sympy.Expr               # ℓ(a, y) of one output
    loss_scale: sympy.Expr              # C = scale · Σ_j ℓ(a_j, y_j), n already substituted
    output: OutputDelta
    layout: str = LAYOUT
    network: object = None

    @property
    def depth(self) -> int:
        return len(self.layers)

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        return self.network.parameter_shapes()


def softmax_jvp(a_, g):
    """δ = Jᵀ g for a = softmax(z), J_jk = a_j(δ_jk − a_k): a ⊙ (g − Σ_j a_j g_j), row-wise."""
    return a_ * (g - RowSum(a_ * g))


def fusion_for(activation: str, loss: str) -> Fusion | None:
    return _FUSION.get((activation, loss))


def derive_matrix(network: Network) -> MatrixDerivation:
    """The matrix-form derivation of ``network``: per-layer f′, the output δ, the recursion.

    >>> from symbackprop.spec.network import Network
    >>> net = Network.from_dict({"network": {"layers": [784, 256, 128, 10],
    ...     "activations": ["relu", "relu", "softmax"], "loss": "cross_entropy"}})
    >>> md = derive_matrix(net)
    >>> md.output.kind, md.output.delta
    ('fused', a*RowSum(y) - y)
    """
    sizes = tuple(network.layers)
    layers = []
    for layer in network.graph:
        act, l = layer.activation, layer.index
        layers.append(LayerForm(l, math.prod(layer.in_shapes[0]), math.prod(layer.shape), act.name, act.latex,
                                act.expr, act.derivative if act.elementwise else sympy.S.NaN,
                                act.output_form, act.elementwise, act.note, layer))
    loss = network.loss
    # n is each row's size; a sequence's loss is the mean over its P steps (r of ignore_index: in the targets)
    steps = math.prod(network.output_shape[:-1])
    scale = loss.scale.xreplace({n: network.output_size}) / steps
    g = scale * loss.derivative
    out = layers[-1]
    fusion = _FUSION.get((out.activation, loss.name)) if out.layer.has_z else None
    if fusion is not None:
        output = OutputDelta("fused", g, scale * fusion.delta)
    elif out.elementwise:
        output = OutputDelta("elementwise", g, g * out.factor)
    else:
        output = OutputDelta("jacobian", g, None)
    return MatrixDerivation(sizes, tuple(layers), loss.name, loss.term, scale, output, network=network)
