"""The matrix-form derivation written out: text, LaTeX or Markdown, in the network's symbols and sizes.

Takes a :class:`symbackprop.derive.matrix.MatrixDerivation` (data) and returns strings; nothing here
differentiates.
"""
import re

import sympy

from ..derive.matrix import MatrixDerivation
from ..entries.layers.base import param_tex
from ..entries.registry import a, y, z
from ..writers.document import tex_escape, tex_prose
from ..writers.latexdoc import LINE_PT, width
from ..writers.sigfig import significant
from ..writers.textprint import text
from ..writers.textmath import SUP as _SUP, tex_to_text
from .names import array_lines



def _fmt_latex(expr, names: dict) -> str:
    return sympy.latex(expr, symbol_names=names)


def render_matrix(md: MatrixDerivation, fmt: str = "text") -> str:
    """The derivation as ``text``, ``latex`` or ``markdown``, in the network's symbols and sizes.

    >>> from symbackprop.spec.network import Network
    >>> from symbackprop.derive.matrix import derive_matrix
    >>> md = derive_matrix(Network.from_dict({"network": {"layers": [3, 2, 1],
    ...     "activations": ["sigmoid", "sigmoid"], "loss": "squared_error"}}))
    >>> print(render_matrix(md, "text").splitlines()[0])
    Backpropagation in matrix form: a 3-2-1 network, loss squared_error
    """
    if fmt not in ("text", "latex", "markdown"):
        raise ValueError(f"unknown format {fmt!r} (expected text, latex or markdown)")
    sections = _sections(md)
    if fmt == "text":
        return _render_text(md, sections)
    return _render_tex(md, sections, markdown=fmt == "markdown")


# ---- the derivation as sections of LaTeX lines, each "lhs = rhs" (text is converted from them)

def _out_tex(layer) -> str:
    return f"z^{{({layer.index})}}" if layer.has_z else f"a^{{({layer.index})}}"


def _in_tex(md, source: int) -> str:
    return "x" if source == 0 else f"a^{{({source})}}"


def _space(shape) -> str:
    return r"\mathbb{R}^{" + r"\times".join(map(str, shape)) + "}"


def _sections(md: MatrixDerivation) -> list[tuple[str, list[str]]]:
    """(heading, lines): forward, element-wise derivatives, backward, gradients, batch."""
    L, graph = md.depth, [f.layer for f in md.layers]
    forms = {f.index: f for f in md.layers}
    forward = []
    for layer in graph:
        f, l = forms[layer.index], layer.index
        ins = [_in_tex(md, s) for s in layer.sources]
        line = layer.kind.latex_forward(layer, _out_tex(layer), ins)
        if layer.has_z:
            line += rf", \quad a^{{({l})}} = {f.tex}\left(z^{{({l})}}\right)"
        spaces = [rf"{param_tex(name)} \in {_space(shape)}" for name, shape in layer.params.items()]
        forward.append(line + (r", \quad " + r",\ ".join(spaces) if spaces else "")
                       + ("" if spaces else rf", \quad a^{{({l})}} \in {_space(layer.shape)}"))
    term = _fmt_latex(md.loss_term.xreplace({a: sympy.Symbol("a_j"), y: sympy.Symbol("y_j")}), {})
    scale = "" if md.loss_scale == 1 else _fmt_latex(md.loss_scale, {}) + r"\,"
    forward.append(rf"C = {scale}\sum_{{j=1}}^{{{md.sizes[-1]}}} \left({term}\right), \quad a = a^{{({L})}}")
    rules, seen = [], set()
    for f in md.layers:
        if not f.layer.has_z or f.name in seen:
            continue
        seen.add(f.name)
        if f.name != f.activation:
            rules.append(rf"{f.tex}(z) = {_fmt_latex(f.expr, {})}")
        if not f.elementwise:
            rules.append(rf"\frac{{\partial a_j}}{{\partial z_k}} = a_j\left(\delta_{{jk}} - a_k\right) "
                         rf"\quad\text{{({tex_escape(f.activation)}: not element-wise)}}")
        elif f.output_form is not None and f.output_form != f.derivative:
            rules.append(rf"{f.tex}'(z) = {_fmt_latex(f.derivative, {})} = {_fmt_latex(f.output_form, {})}")
        else:
            rules.append(rf"{f.tex}'(z) = {_fmt_latex(f.derivative, {})}")
    rules.append(rf"\frac{{\partial C}}{{\partial a_j}} = {_fmt_latex(md.output.loss_gradient, {a: 'a_j', y: 'y_j'})}")
    out, last = md.output, md.layers[-1]
    names = {a: f"a^{{({L})}}", y: "y", z: f"z^{{({L})}}"}
    back, grads, notes = [], [], []
    top = rf"\delta^{{({L})}}" if last.layer.has_z else rf"\frac{{\partial C}}{{\partial a^{{({L})}}}}"
    if not last.layer.has_z:
        back.append(rf"{top} = \nabla_a C = {_fmt_latex(out.loss_gradient, names)}")
    elif out.kind == "fused":
        back.append(rf"{top} = {_fmt_latex(out.delta, names)} "
                    rf"\quad\text{{({tex_escape(last.activation)} + {tex_escape(md.loss)}, fused; proven by SymPy)}}")
    elif out.kind == "elementwise":
        back.append(rf"{top} = \nabla_{{a}} C \odot {last.tex}'\left(z^{{({L})}}\right) = {_fmt_latex(out.delta, names)}")
    else:
        back.append(rf"{top} = J^\top g = a^{{({L})}} \odot \left(g - \textstyle\sum_j a^{{({L})}}_j g_j\right), "
                    rf"\quad g = \nabla_a C = {_fmt_latex(out.loss_gradient, names)}")
    incoming: dict[int, list[str]] = {}
    for layer in reversed(graph):
        l, f = layer.index, forms[layer.index]
        if l != L:
            total = " + ".join(incoming.pop(l))
            if layer.has_z and f.elementwise and f.factor == 1:
                back.append(rf"\delta^{{({l})}} = {total} \quad (\text{{{tex_escape(f.activation)}}}' = 1)")
            elif layer.has_z:
                back.append(rf"\delta^{{({l})}} = {total} \odot {f.tex}'\left(z^{{({l})}}\right)"
                            + (rf" = {total} \odot \left({_fmt_latex(f.factor, _tex_names(l))}\right)" if f.elementwise else ""))
            else:
                back.append(rf"\frac{{\partial C}}{{\partial a^{{({l})}}}} = {total}")
        delta = rf"\delta^{{({l})}}" if layer.has_z else rf"\frac{{\partial C}}{{\partial a^{{({l})}}}}"
        rule = layer.kind.latex_backward(layer, delta, [_in_tex(md, s) for s in layer.sources])
        back += list(rule.steps)
        for name, shape in layer.params.items():
            grads.append(rf"{rule.grads[name]} \in {_space(shape)}")
        for source, part in zip(layer.sources, rule.inputs):
            if source != 0:
                incoming.setdefault(source, []).append(part)
        notes += [f"Layer {l} ({layer.kind.name}): {note}" for note in rule.notes]
    batch = (r"\frac{\partial C}{\partial \theta} = \frac{1}{N}\sum_{n=1}^{N} \frac{\partial C_n}{\partial \theta}"
             r" \quad \text{for every parameter } \theta")
    coupled = [f"Batch norm couples the examples: $C$ is the mean of the $C_n$, which share the batch's "
               "statistics, so each $C_n$ depends on every example." ] if any(l.kind.couples_batch for l in graph) else []
    return [("Forward", forward, []),
            ("Element-wise derivatives (by SymPy, in the output $a$ where that form exists)", rules, []),
            ("Backward", back, notes),
            ("Gradients", grads, []),
            ("Batch of $N$ examples: the mean over the examples", [batch], coupled)]


def _tex_names(l: int) -> dict:
    return {a: f"a^{{({l})}}", y: "y", z: f"z^{{({l})}}"}


def _title(md: MatrixDerivation) -> str:
    net = md.network
    what = f"a {'-'.join(map(str, md.sizes))} network" if net.is_stack else f"a network of {md.depth} layers"
    return f"Backpropagation in matrix form: {what}, loss {md.loss}"


def _layout(md: MatrixDerivation) -> str:
    return (f"one example is a column vector (an image (C, H, W), a sequence (C, L), as PyTorch lays them out); "
            f"{md.layout}")


def _render_text(md: MatrixDerivation, sections) -> str:
    s = text
    L, sup = md.depth, lambda l: f"({l})".translate(_SUP)
    lines = [_title(md),
             f"Layout: {_layout(md)}: ∂C/∂W{sup('l')} has W{sup('l')}'s shape.",
             "", "Forward (a⁽⁰⁾ = x):"]
    forward, rules, back, grads, batch = (body for _, body, _ in sections)
    notes = [note for _, _, each in sections for note in each]
    lines += ["  " + tex_to_text(line) for line in forward[:-1]]
    term = md.loss_term.xreplace({a: sympy.Symbol("a_j"), y: sympy.Symbol("y_j")})
    scale = "" if md.loss_scale == 1 else f"{s(md.loss_scale)} · "
    lines.append(f"  C = {scale}Σ_j [{s(term)}],  j = 1..{md.sizes[-1]}, a = a{sup(L)}")
    lines += ["", "Element-wise derivatives (by SymPy; in the layer's output a where that form exists):"]
    seen = set()
    for f in md.layers:
        if not f.layer.has_z or f.name in seen:
            continue
        seen.add(f.name)
        if f.name != f.activation:
            lines.append(f"  {f.name}(z) = {s(f.expr)}")
        if not f.elementwise:
            lines.append(f"  {f.name}: not element-wise; ∂a_j/∂z_k = a_j (1[j=k] − a_k)")
        elif f.output_form is not None and f.output_form != f.derivative:
            lines.append(f"  {f.name}′(z) = {s(f.layer.activation.simple_derivative)} = {s(f.output_form)}")
        else:
            lines.append(f"  {f.name}′(z) = {s(f.layer.activation.simple_derivative)}")
    lines.append(f"  ∂C/∂a_j = {s(md.output.loss_gradient.xreplace({a: sympy.Symbol('a_j'), y: sympy.Symbol('y_j')}))}")
    lines += ["", "Backward:"] + ["  " + line for line in _text_rules(md, back)]
    lines += ["  " + prose_text(note) for note in notes]
    lines += ["", "Gradients:"] + ["  " + tex_to_text(line) for line in grads]
    lines += ["", "Batch of N examples: each gradient is the mean over the examples,",
              f"  ∂C/∂W{sup('l')} = (1/N) Σ_n δ{sup('l')}_n (a{sup('l-1')}_n)ᵀ,  ∂C/∂b{sup('l')} = (1/N) Σ_n δ{sup('l')}_n."]
    return "\n".join(lines) + "\n"


def _text_rules(md, rules) -> list[str]:
    """The backward lines as text; the element-wise factors in their plain form, in brackets. Each
    layer's factor is printed once and found by one pass over each line (time linear in depth)."""
    plain = {}                       # "(the factor as the LaTeX line reads in text)" -> "[plain form]"
    for f in md.layers:
        if f.layer.has_z and f.elementwise:
            key = f"({tex_to_text(_fmt_latex(f.factor, _tex_names(f.index)))})"
            sup = f"({f.index})".translate(_SUP)
            plain.setdefault(key, f"[{text(f.factor.xreplace({a: sympy.Symbol(f'a{sup}'), z: sympy.Symbol(f'z{sup}')}))}]")
    lengths = sorted({len(key) for key in plain}, reverse=True)
    fused = None
    if md.output.kind == "fused":
        L = md.depth
        names = {a: sympy.Symbol(f"a{f'({L})'.translate(_SUP)}"), y: sympy.Symbol("y")}
        fused = (tex_to_text(_fmt_latex(md.output.delta, {a: f"a^{{({L})}}", y: "y", z: f"z^{{({L})}}"})),
                 text(md.output.delta.xreplace(names)))
    out = []
    for rule in rules:
        line, parts, i = tex_to_text(rule), [], 0
        while (start := line.find("(", i)) >= 0:
            key = next((line[start:start + n] for n in lengths if line[start:start + n] in plain), None)
            parts += [line[i:start], plain[key] if key else "("]
            i = start + (len(key) if key else 1)
        line = "".join(parts) + line[i:]
        out.append(line.replace(*fused, 1) if fused else line)
    return out


def _render_tex(md: MatrixDerivation, sections, markdown: bool) -> str:
    def block(eqs):
        body = " \\\\\n".join(line for eq in eqs for line in _fitted(_aligned(eq)))
        return f"$$\n\\begin{{aligned}}\n{body}\n\\end{{aligned}}\n$$" if markdown else \
            f"\\begin{{align*}}\n{body}\n\\end{{align*}}"

    def prose(notes):
        return [note if markdown else tex_prose(note) for note in notes]

    layout = f"Layout: {_layout(md)}, $a^{{(0)}} = x$."
    title = _title(md).replace("_", " ")
    if markdown:
        parts = [f"# {title}", "", layout, ""]
        for head, body, notes in sections:
            parts += [f"## {head}", "", block(body), ""] + [p + "\n" for p in prose(notes)]
        return "\n".join(parts)
    parts = [f"% {title}", rf"\paragraph{{{title}.}} {layout}", ""]
    for head, body, notes in sections:
        parts += [rf"\paragraph{{{head}.}}", block(body), ""] + [p + "\n" for p in prose(notes)]
    return "\n".join(parts)


def _fitted(line: str) -> list[str]:
    r"""An aligned line too wide for the page, broken only between statements (``a, \quad b`` or
    ``a,\ b`` outside every brace and parenthesis: never inside ``(… \epsilon = 10^{-5})``), each
    continuation line starting at the alignment point; a first statement still too wide, a chain
    ``lhs = A = B``, is broken before its own next ``=``."""
    head, eq, rest = line.partition("&= ")
    if not eq:
        head, rest = "", line
    (_, first), *parts = _statements(rest)
    out, current = [], head + eq + first
    while width(current) > LINE_PT and (cut := _top_level_equals(current[len(head + eq) if not out else 2:])) is not None:
        cut += len(head + eq) if not out else 2
        out.append(current[:cut])
        current = "&" + current[cut + 1:]
    for sep, part in parts:
        if width(current + sep + part) > LINE_PT:
            out.append(current + ",")
            current = r"&\quad " + part
        else:
            current += sep + part
    return out + [current]


_SEPARATORS = (r", \quad ", r",\ ")    # between two statements of one line


def _statements(text: str) -> list[tuple[str, str]]:
    """``text`` split into its statements: (the separator before it, the statement), the first
    with separator "". A separator counts only outside braces and parentheses."""
    out, depth, start, sep, i = [], 0, 0, "", 0
    while i < len(text):
        ch = text[i]
        depth += (ch in "{(") - (ch in "})")
        found = depth == 0 and ch == "," and next((s for s in _SEPARATORS if text.startswith(s, i)), None)
        if found:
            out.append((sep, text[start:i]))
            sep, start = found, i + len(found)
            i = start
            continue
        i += 1
    return out + [(sep, text[start:])]


def _top_level_equals(text: str) -> int | None:
    """The index of the first " = " outside braces and parentheses in ``text``."""
    depth = 0
    for i, ch in enumerate(text):
        depth += (ch in "{(") - (ch in "})")
        if ch == "=" and depth == 0 and text[i - 1:i] == " " and text[i + 1:i + 2] == " ":
            return i - 1
    return None


def prose_text(text: str) -> str:
    """Prose with $math$ as plain text."""
    return "".join(tex_to_text(p[1:-1]) if p.startswith("$") else p for p in re.split(r"(\$[^$]+\$)", text))


def _aligned(eq: str) -> str:
    """``lhs = rhs`` aligned at its first top-level ``=`` (a note without one starts with &)."""
    depth = 0
    for i, ch in enumerate(eq):
        depth += (ch == "{") - (ch == "}")
        if ch == "=" and depth == 0 and eq[i - 1] not in "<>!+":
            return eq[:i] + "&" + eq[i:]
    return "&" + eq


# ---- the numbers of a network that has them (its spec's, or drawn by --init)

def numbers_text(network, seed: int | None, loss: float, grads: dict, digits: int) -> str:
    """The parameters, the loss and each gradient, as tables (a kernel per output and input
    channel): what ``derive --init`` drew and what the rules above give for it."""
    origin = f"drawn by --init {seed}" if seed is not None else "the spec's"
    batch = len(network.x) if network.batched else 1
    lines = ["", f"Numbers ({origin}; {batch} example{'s' if batch > 1 else ''}; forward values: --format json):",
             "Parameters:"]
    for name, value in network.parameters.items():
        lines += ["  " + line for line in array_lines(name, _kernels(value), False, digits)]
    lines.append(f"Loss: C ≈ {significant(loss, digits)}" + (f" (the mean over the {batch} examples)" if batch > 1 else ""))
    lines.append("Gradients:")
    for name, value in grads.items():
        lines += ["  " + line for line in array_lines(f"dC/d{name}", _kernels(value), False, digits)]
    return "\n".join(lines) + "\n"


def _kernels(value):
    """A conv kernel (out, in, *k) as a dict of its 2-D or 1-D kernels named by channel pair."""
    import numpy as np
    value = np.asarray(value)
    if value.ndim < 3:
        return value
    return {f"output channel {o + 1}, input channel {c + 1}": value[o, c] for o in range(value.shape[0])
            for c in range(value.shape[1])}


def where_numbers(seed: int | None, fmt: str, too_many: bool) -> str:
    """Where the numbers are, for an output that does not print them."""
    origin = f"drawn by `--init {seed}`" if seed is not None else "the spec's"
    flags = "" if seed is None else f" --init {seed}"
    what = ("The parameters (" + origin + "), the loss and every gradient are in "
            f"`derive --format json{flags}`" + ("" if too_many else f" and, as tables, `derive --format text{flags}`")
            + "; the forward values in the JSON.")
    if fmt == "text":
        return "\n" + what.replace("`", "") + "\n"
    if fmt == "latex":
        return "\n\\paragraph{Numbers.} " + tex_prose(what) + "\n"   # `code` in typewriter: -- stays two hyphens
    return "\n## Numbers\n\n" + what + "\n"
