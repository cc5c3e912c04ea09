"""The matrix-form derivation: its data, and its renderings in the network's own symbols and sizes."""
import itertools
import re
import subprocess
import sys
import time

import pytest
import sympy

from symbackprop.derive.matrix import FUSIONS, LAYOUT, derive_matrix, fusion_for
from symbackprop.report.matrix import render_matrix
from symbackprop.entries.registry import ACTIVATIONS, LOSSES, a, y, z
from symbackprop import Network

FORMATS = ["text", "latex", "markdown"]


def net(layers, activations, loss):
    return Network.from_dict({"network": {"layers": layers, "activations": activations, "loss": loss}})


def test_seed_network_derivation():
    md = derive_matrix(net([3, 2, 1], ["sigmoid", "sigmoid"], "squared_error"))
    assert md.sizes == (3, 2, 1) and md.depth == 2
    assert md.parameter_shapes() == {"W1": (2, 3), "b1": (2,), "W2": (1, 2), "b2": (1,)}
    assert [layer.factor for layer in md.layers] == [a * (1 - a)] * 2  # σ' in the output a
    assert md.layers[0].derivative == ACTIVATIONS["sigmoid"].derivative  # as SymPy derived it
    assert md.output.kind == "elementwise"
    assert md.output.loss_gradient == 2 * a - 2 * y
    assert sympy.expand(md.output.delta - (2 * a - 2 * y) * a * (1 - a)) == 0
    assert md.layout == LAYOUT


@pytest.mark.parametrize("pair", [(f.activation, f.loss) for f in FUSIONS], ids="+".join)
def test_fused_pairs_take_the_table_entry(pair):
    md = derive_matrix(net([3, 2, 2], ["tanh", pair[0]], pair[1]))
    assert md.output.kind == "fused" and fusion_for(*pair) is not None
    assert md.output.delta == md.loss_scale * fusion_for(*pair).delta


def test_softmax_with_another_loss_takes_the_jacobian():
    md = derive_matrix(net([3, 2, 3], ["relu", "softmax"], "mse"))
    assert md.output.kind == "jacobian" and md.output.delta is None
    assert md.loss_scale == sympy.Rational(1, 3)
    assert sympy.expand(md.output.loss_gradient - sympy.Rational(2, 3) * (a - y)) == 0


def test_activations_without_an_output_form_use_the_derivative_in_z():
    md = derive_matrix(net([2, 2, 1], ["gelu", "identity"], "mse"))
    assert md.layers[0].output_form is None
    assert md.layers[0].factor == ACTIVATIONS["gelu"].derivative and md.layers[0].factor.has(z)


@pytest.mark.parametrize("fmt", FORMATS)
def test_rendering_names_symbols_sizes_and_layout(fmt):
    md = derive_matrix(net([3, 2, 1], ["sigmoid", "sigmoid"], "binary_cross_entropy"))
    text = render_matrix(md, fmt)
    if fmt == "text":
        assert "W⁽²⁾ ∈ ℝ^(1×2)" in text and "W⁽¹⁾ ∈ ℝ^(2×3)" in text
        assert "δ⁽¹⁾ = (W⁽²⁾)ᵀ δ⁽²⁾ ⊙" in text and "δ⁽²⁾ = a⁽²⁾ - y" in text
        assert "∂C/∂W⁽²⁾ = δ⁽²⁾ (a⁽¹⁾)ᵀ" in text
    else:
        assert r"W^{(2)} \in \mathbb{R}^{1\times2}" in text
        assert r"\delta^{(1)} &= \left(W^{(2)}\right)^\top \delta^{(2)} \odot" in text
        assert r"\frac{\partial C}{\partial W^{(2)}} &= \delta^{(2)} \left(a^{(1)}\right)^\top" in text
    assert "each gradient has its parameter's shape" in text
    assert "fused" in text and "mean over the examples" in text


@pytest.mark.parametrize("fmt", ["latex", "markdown"])
def test_tex_is_balanced(fmt):
    for layers, acts, loss in [([4, 3, 3], ["relu", "softmax"], "cross_entropy"),
                               ([2, 3, 2, 1], ["z/(1 + abs(z))", "elu", "gelu"], "mse"),
                               ([2, 2], ["softmax"], "binary_cross_entropy")]:
        text = render_matrix(derive_matrix(net(layers, acts, loss)), fmt)
        assert text.count("{") == text.count("}"), text
        assert text.count(r"\left") == text.count(r"\right")
        assert text.count(r"\begin{") == text.count(r"\end{")
        assert not re.search(r"\\text\{[^}]*[^\\]_", text), "unescaped _ inside \\text"


def test_every_activation_and_loss_renders():
    for output, loss in itertools.product(ACTIVATIONS, LOSSES):
        hidden = output if ACTIVATIONS[output].elementwise else "tanh"
        md = derive_matrix(net([2, 2, 2], [hidden, output], loss))
        for fmt in FORMATS:
            assert render_matrix(md, fmt)


def test_custom_activation_is_named_f_l():
    text = render_matrix(derive_matrix(net([2, 2, 1], ["z/(1 + abs(z))", "identity"], "mse")), "text")
    assert "a⁽¹⁾ = f_1(z⁽¹⁾)" in text and "f_1(z) = z/(|z| + 1)" in text and "f_1′(z) = 1/(|z| + 1)²" in text


def test_unknown_format():
    with pytest.raises(ValueError, match="unknown format 'html'"):
        render_matrix(derive_matrix(net([2, 1], ["identity"], "mse")), "html")


def test_large_network_is_fast_and_never_expands():
    """784-256-128-10: no per-weight symbols are made, so derive + render takes milliseconds."""
    start = time.perf_counter()
    md = derive_matrix(net([784, 256, 128, 10], ["relu", "relu", "softmax"], "cross_entropy"))
    text = render_matrix(md, "latex")
    assert time.perf_counter() - start < 1.0
    assert r"W^{(1)} \in \mathbb{R}^{256\times784}" in text
    assert r"\textstyle\sum_j y" in text   # the exact fused delta, a Σy − y, for any targets


@pytest.mark.parametrize("module", ["symbackprop.derive.matrix", "symbackprop.codegen.printing", "symbackprop.codegen.compiled"])
def test_docstring_examples_run(module):
    import doctest
    import importlib
    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0 and result.attempted > 0
