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

Nothing here formats strings except :func:`render_matrix`, which never differentiates.

>>> from symbackprop.spec import Network
>>> md = derive_matrix(Network.from_dict({"network": {"layers": [3, 2, 1],
...     "activations": ["sigmoid", "sigmoid"], "loss": "binary_cross_entropy"}}))
>>> md.output.kind, md.output.delta, md.layers[0].factor
('fused', a - y, a*(1 - a))
"""
from dataclasses import dataclass

import sympy

from .arrayops import RowSum
from .registry import ACTIVATIONS, a, n, y, z
from .spec import Network

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
    """Weight layer l: z = W a_prev + b with W ∈ ℝ^{outputs×inputs}, a = f(z)."""
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

    @property
    def depth(self) -> int:
        return len(self.layers)

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = {}
        for layer in self.layers:
            shapes[f"W{layer.index}"] = (layer.outputs, layer.inputs)
            shapes[f"b{layer.index}"] = (layer.outputs,)
        return shapes


def softmax_jvp(a_, g):
    """δ = Jᵀ g for a = softmax(z), J_jk = a_j(δ_jk − a_k): a ⊙ (g − Σ_j a_j g_j), row-wise."""
    return a_ * (g - RowSum(a_ * g))


def fusion_for(activation: str, loss: str) -> Fusion | None:
    return _FUSION.get((activation, loss))


def derive_matrix(network: Network) -> MatrixDerivation:
    """The matrix-form derivation of ``network``: per-layer f′, the output δ, the recursion.

    >>> from symbackprop.spec import Network
    >>> net = Network.from_dict({"network": {"layers": [784, 256, 128, 10],
    ...     "activations": ["relu", "relu", "softmax"], "loss": "cross_entropy"}})
    >>> md = derive_matrix(net)
    >>> md.output.kind, md.output.delta
    ('fused', a*RowSum(y) - y)
    """
    sizes = tuple(network.layers)
    layers = []
    for l, act in enumerate(network.activations, start=1):
        layers.append(LayerForm(l, sizes[l - 1], sizes[l], act.name, act.latex, act.expr,
                                act.derivative if act.elementwise else sympy.S.NaN,
                                act.output_form, act.elementwise, act.note))
    loss = network.loss
    scale = loss.scale.xreplace({n: sizes[-1]})
    g = scale * loss.derivative
    out = layers[-1]
    fusion = _FUSION.get((out.activation, loss.name))
    if fusion is not None:
        output = OutputDelta("fused", g, scale * fusion.delta)
    elif out.elementwise:
        output = OutputDelta("elementwise", g, g * out.factor)
    else:
        output = OutputDelta("jacobian", g, None)
    return MatrixDerivation(sizes, tuple(layers), loss.name, loss.term, scale, output)


# ---------------------------------------------------------------------------------------------
# Rendering: text, LaTeX, Markdown. Strings only; no differentiation.

_SUP = str.maketrans("0123456789()-l", "⁰¹²³⁴⁵⁶⁷⁸⁹⁽⁾⁻ˡ")


def _fmt_latex(expr, names: dict) -> str:
    return sympy.latex(expr, symbol_names=names)


def render_matrix(md: MatrixDerivation, fmt: str = "text") -> str:
    """The derivation as ``text``, ``latex`` or ``markdown``, in the network's symbols and sizes.

    >>> from symbackprop.spec import Network
    >>> md = derive_matrix(Network.from_dict({"network": {"layers": [3, 2, 1],
    ...     "activations": ["sigmoid", "sigmoid"], "loss": "squared_error"}}))
    >>> print(render_matrix(md, "text").splitlines()[0])
    Backpropagation in matrix form: a 3-2-1 network, loss squared_error
    """
    if fmt == "text":
        return _render_text(md)
    if fmt in ("latex", "markdown"):
        return _render_tex(md, markdown=fmt == "markdown")
    raise ValueError(f"unknown format {fmt!r} (expected text, latex or markdown)")


def _size_text(*dims) -> str:
    return "ℝ^" + ("×".join(map(str, dims)) if len(dims) == 1 else "(" + "×".join(map(str, dims)) + ")")


def _layer_symbols(l, sup=None):
    """The registry's a, z, y renamed after layer l, for display."""
    if sup is None:
        return {a: sympy.Symbol(f"a^{{({l})}}"), z: sympy.Symbol(f"z^{{({l})}}")}
    return {a: sympy.Symbol(f"a{sup(l)}"), z: sympy.Symbol(f"z{sup(l)}")}


def _render_text(md: MatrixDerivation) -> str:
    L = md.depth
    sup = lambda l: f"({l})".translate(_SUP)
    s = sympy.sstr
    at = lambda expr, l: s(expr.xreplace(_layer_symbols(l, sup)))
    arch = "-".join(map(str, md.sizes))
    lines = [f"Backpropagation in matrix form: a {arch} network, loss {md.loss}",
             f"Layout: one example is a column vector; {md.layout}: "
             f"∂C/∂W{sup('l')} ∈ ℝ^(n_l×n_(l-1)), ∂C/∂b{sup('l')} ∈ ℝ^n_l.",
             "", "Forward (a⁽⁰⁾ = x):"]
    for layer in md.layers:
        l = layer.index
        lines.append(f"  z{sup(l)} = W{sup(l)} a{sup(l - 1)} + b{sup(l)},  a{sup(l)} = {layer.name}(z{sup(l)})"
                     f"    W{sup(l)} ∈ {_size_text(layer.outputs, layer.inputs)}, b{sup(l)} ∈ {_size_text(layer.outputs)}")
    term = md.loss_term.xreplace({a: sympy.Symbol("a_j"), y: sympy.Symbol("y_j")})
    scale = "" if md.loss_scale == 1 else f"{s(md.loss_scale)} · "
    lines.append(f"  C = {scale}Σ_j [{s(term)}],"
                 f"  j = 1..{md.sizes[-1]}, a = a{sup(L)}")
    lines += ["", "Element-wise derivatives (by SymPy; in the layer's output a where that form exists):"]
    seen = set()
    for layer in md.layers:
        if layer.name in seen:
            continue
        seen.add(layer.name)
        if layer.name != layer.activation:
            lines.append(f"  {layer.name}(z) = {s(layer.expr)}")
        if not layer.elementwise:
            lines.append(f"  {layer.name}: not element-wise; ∂a_j/∂z_k = a_j (1[j=k] − a_k)")
        elif layer.output_form is not None:
            lines.append(f"  {layer.name}′(z) = {s(layer.derivative)} = {s(layer.output_form)}")
        else:
            lines.append(f"  {layer.name}′(z) = {s(layer.derivative)}")
    lines.append(f"  ∂C/∂a_j = {s(md.output.loss_gradient.xreplace({a: sympy.Symbol('a_j'), y: sympy.Symbol('y_j')}))}")
    out, last = md.output, md.layers[-1]
    lines += ["", "Backward:"]
    if out.kind == "fused":
        lines.append(f"  δ{sup(L)} = {at(out.delta, L)}    ({last.name} + {md.loss} fused, proven by SymPy)")
    elif out.kind == "elementwise":
        lines.append(f"  δ{sup(L)} = ∇_a C ⊙ {last.name}′(z{sup(L)}) = {at(out.delta, L)}")
    else:
        lines.append(f"  δ{sup(L)} = J_softmaxᵀ g = a{sup(L)} ⊙ (g − Σ_j a{sup(L)}_j g_j),  g = ∇_a C = {at(out.loss_gradient, L)}")
    for layer in reversed(md.layers[:-1]):
        l = layer.index
        lines.append(f"  δ{sup(l)} = (W{sup(l + 1)})ᵀ δ{sup(l + 1)} ⊙ {layer.name}′(z{sup(l)})"
                     f" = (W{sup(l + 1)})ᵀ δ{sup(l + 1)} ⊙ [{at(layer.factor, l)}]")
    lines += ["", "Gradients:"]
    for layer in reversed(md.layers):
        l = layer.index
        lines.append(f"  ∂C/∂W{sup(l)} = δ{sup(l)} (a{sup(l - 1)})ᵀ ∈ {_size_text(layer.outputs, layer.inputs)},"
                     f"  ∂C/∂b{sup(l)} = δ{sup(l)} ∈ {_size_text(layer.outputs)}")
    lines += ["", "Batch of N examples: each gradient is the mean over the examples,",
              f"  ∂C/∂W{sup('l')} = (1/N) Σ_n δ{sup('l')}_n (a{sup('l-1')}_n)ᵀ,  ∂C/∂b{sup('l')} = (1/N) Σ_n δ{sup('l')}_n."]
    return "\n".join(lines) + "\n"


def _tex_names(l: int) -> dict:
    return {a: f"a^{{({l})}}", y: "y", z: f"z^{{({l})}}"}


def _tex_text(text: str) -> str:
    return text.replace("_", r"\_")


def _render_tex(md: MatrixDerivation, markdown: bool) -> str:
    L = md.depth
    R = r"\mathbb{R}"
    arch = "-".join(map(str, md.sizes))
    eqs_fwd = []
    for layer in md.layers:
        l = layer.index
        eqs_fwd.append(rf"z^{{({l})}} &= W^{{({l})}} a^{{({l - 1})}} + b^{{({l})}}, \quad "
                       rf"a^{{({l})}} = {layer.tex}\left(z^{{({l})}}\right), \quad "
                       rf"W^{{({l})}} \in {R}^{{{layer.outputs}\times{layer.inputs}}},\ b^{{({l})}} \in {R}^{{{layer.outputs}}}")
    term = _fmt_latex(md.loss_term.xreplace({a: sympy.Symbol("a_j"), y: sympy.Symbol("y_j")}), {})
    scale = "" if md.loss_scale == 1 else _fmt_latex(md.loss_scale, {}) + r"\,"
    eqs_fwd.append(rf"C &= {scale}\sum_{{j=1}}^{{{md.sizes[-1]}}} \left({term}\right), \quad a = a^{{({L})}}")
    eqs_rule = []
    seen = set()
    for layer in md.layers:
        if layer.name in seen:
            continue
        seen.add(layer.name)
        f = layer.tex
        if layer.name != layer.activation:
            eqs_rule.append(rf"{f}(z) &= {_fmt_latex(layer.expr, {})}")
        if not layer.elementwise:
            eqs_rule.append(rf"\frac{{\partial a_j}}{{\partial z_k}} &= a_j\left(\delta_{{jk}} - a_k\right) "
                            rf"\quad\text{{({layer.activation}: not element-wise)}}")
        elif layer.output_form is not None:
            eqs_rule.append(rf"{f}'(z) &= {_fmt_latex(layer.derivative, {})} = {_fmt_latex(layer.output_form, {})}")
        else:
            eqs_rule.append(rf"{f}'(z) &= {_fmt_latex(layer.derivative, {})}")
    eqs_rule.append(rf"\frac{{\partial C}}{{\partial a_j}} &= {_fmt_latex(md.output.loss_gradient, {a: 'a_j', y: 'y_j'})}")
    out, last = md.output, md.layers[-1]
    names = _tex_names(L)
    eqs_back = []
    if out.kind == "fused":
        eqs_back.append(rf"\delta^{{({L})}} &= {_fmt_latex(out.delta, names)} "
                        rf"\quad\text{{({_tex_text(last.activation)} + {_tex_text(md.loss)}, fused; proven by SymPy)}}")
    elif out.kind == "elementwise":
        eqs_back.append(rf"\delta^{{({L})}} &= \nabla_{{a}} C \odot {last.tex}'\left(z^{{({L})}}\right) "
                        rf"= {_fmt_latex(out.delta, names)}")
    else:
        eqs_back.append(rf"\delta^{{({L})}} &= J^\top g = a^{{({L})}} \odot \left(g - \textstyle\sum_j a^{{({L})}}_j g_j\right), "
                        rf"\quad g = \nabla_a C = {_fmt_latex(out.loss_gradient, names)}")
    for layer in reversed(md.layers[:-1]):
        l = layer.index
        eqs_back.append(rf"\delta^{{({l})}} &= \left(W^{{({l + 1})}}\right)^\top \delta^{{({l + 1})}} \odot "
                        rf"{layer.tex}'\left(z^{{({l})}}\right) = \left(W^{{({l + 1})}}\right)^\top \delta^{{({l + 1})}} "
                        rf"\odot \left({_fmt_latex(layer.factor, _tex_names(l))}\right)")
    eqs_grad = []
    for layer in reversed(md.layers):
        l = layer.index
        eqs_grad.append(rf"\frac{{\partial C}}{{\partial W^{{({l})}}}} &= \delta^{{({l})}} \left(a^{{({l - 1})}}\right)^\top "
                        rf"\in {R}^{{{layer.outputs}\times{layer.inputs}}}, \quad "
                        rf"\frac{{\partial C}}{{\partial b^{{({l})}}}} = \delta^{{({l})}} \in {R}^{{{layer.outputs}}}")
    batch = (r"\frac{\partial C}{\partial W^{(l)}} &= \frac{1}{N}\sum_{n=1}^{N} \delta^{(l)}_n \left(a^{(l-1)}_n\right)^\top, "
             r"\quad \frac{\partial C}{\partial b^{(l)}} = \frac{1}{N}\sum_{n=1}^{N} \delta^{(l)}_n")

    def block(eqs):
        body = " \\\\\n".join(eqs)
        return f"$$\n\\begin{{aligned}}\n{body}\n\\end{{aligned}}\n$$" if markdown else \
            f"\\begin{{align*}}\n{body}\n\\end{{align*}}"

    layout = (f"Layout: one example is a column vector, $a^{{(0)}} = x$; {md.layout}.")
    sections = [
        ("Forward", block(eqs_fwd)),
        ("Element-wise derivatives (by SymPy, in the output $a$ where that form exists)", block(eqs_rule)),
        ("Backward", block(eqs_back)),
        ("Gradients", block(eqs_grad)),
        ("Batch of $N$ examples: the mean over the examples", block([batch])),
    ]
    title = f"Backpropagation in matrix form: a {arch} network, loss {md.loss.replace('_', ' ')}"
    if markdown:
        parts = [f"# {title}", "", layout, ""]
        for head, body in sections:
            parts += [f"## {head}", "", body, ""]
        return "\n".join(parts)
    parts = [f"% {title}", rf"\paragraph{{{title}.}} {layout}", ""]
    for head, body in sections:
        parts += [rf"\paragraph{{{head}.}}", body, ""]
    return "\n".join(parts)
