"""Rendering a scalar derivation: every gradient as its chain-rule product, in chain order.

SymPy's printers reorder the factors of a product, so each factor is printed on its own and the
factors are joined here, in the order the chain rule takes them: ∂z/∂w · ∂a/∂z · ∂C/∂a. With
numbers, the same product follows with each factor's value, as the seed writes it:
``(−0.822) × 0.242 × 0.289 ≈ −0.0575``. Formats: text, latex (a document), markdown, json.
"""
import json
import re

import numpy as np
import sympy
from sympy.printing.str import StrPrinter

from .derive import Derivation, Factor, Step
from .errors import printable
from .numeric import Values



JSON_LAYOUT = "each gradient has its parameter's shape; W<l> is (n_l, n_{l-1}); indices 0-based"


def plain(label: str) -> str:
    """The text name of a LaTeX label: ``W^{(2)}_{1,2}`` -> ``W2[1,2]``, ``\\delta`` -> ``delta``."""
    text = re.sub(r"\^\{\((\d+)\)\}_\{([\d,]+)\}", r"\1[\2]", label)
    text = re.sub(r"_\{([\d,]+)\}", r"[\1]", text)
    text = re.sub(r"\\frac\{\\partial ([^{}]+)\}\{\\partial ([^{}]+)\}", r"d\1/d\2", text)
    return text.replace("\\delta", "delta").replace("\\", "")


class _TextPrinter(StrPrinter):
    def __init__(self, names):
        super().__init__()
        self.names = names

    def _print_Symbol(self, expr):
        return plain(self.names[expr]) if expr in self.names else expr.name


def number(value, digits: int) -> str:
    """``value`` (a float, or an exact SymPy number) to ``digits`` significant digits, negatives in
    parentheses for products."""
    value = float(value)
    text = f"{value:.{digits}g}"
    return f"({text})" if value < 0 else text


class Renderer:
    """Formats the steps of one derivation, with its values when there are numbers."""

    def __init__(self, derivation: Derivation, values: Values | None = None, digits: int = 5):
        self.d, self.values, self.digits = derivation, values, digits
        self.model = derivation.model
        self._text = _TextPrinter(self.model.latex_names)

    def sym(self, expr, latex: bool) -> str:
        expr = sympy.factor_terms(expr)  # 2(a - y), as written by hand, not 2a - 2y
        return self.model.latex(expr) if latex else self._text.doprint(expr)

    def shown(self, factor: Factor) -> sympy.Expr:
        """A factor's expression, one level in: a factor naming a one-factor step (∂C/∂a of the
        output, ∂a/∂z) shows that step's formula; sums (the δ recursion) stay named."""
        step = self.d.by_symbol.get(factor.expr)
        if step is not None and len(step.terms) == 1 and len(step.terms[0]) == 1:
            return step.terms[0][0].expr
        return factor.expr

    def formula(self, step: Step, latex: bool) -> str:
        """The step's factors as formulas, in chain order (sums in parentheses)."""
        dot = r" \cdot " if latex else " · "
        def show(f, term):
            e = sympy.factor_terms(self.shown(f))
            text = self.sym(e, latex)
            if len(term) > 1 and e.is_Add:
                return rf"\left({text}\right)" if latex else f"({text})"
            return text
        return " + ".join(dot.join(show(f, term) for f in term) for term in step.terms)

    def lines(self, step: Step, latex: bool) -> list[str]:
        """The step as: its name = factor names = factor formulas [= numbers ≈ value]."""
        dot, times = (r" \cdot ", r" \times ") if latex else (" · ", " × ")
        label = (lambda f: f.label) if latex else (lambda f: plain(f.label))
        names = " + ".join(dot.join(label(f) for f in term) for term in step.terms)
        formulas = self.formula(step, latex)
        head = step.label if latex else plain(step.label)
        single = len(step.terms) == 1 and len(step.terms[0]) == 1
        out = [f"{head} = {formulas}" if single else f"{head} = {names}"]
        if formulas != names and not single:
            out.append(f"= {formulas}")
        if self.values is not None:
            if self.values.batch == 1 and not single:
                nums = " + ".join(times.join(number(self.values.of(f.expr), self.digits) for f in term)
                                  for term in step.terms)
                out.append(f"= {nums} " + (r"\approx " if latex else "≈ ") + self.value(step))
            else:
                mean = "" if self.values.batch == 1 else (
                    r" \quad \text{(mean over the batch)}" if latex else "   (mean over the batch)")
                out.append(("\\approx " if latex else "≈ ") + self.value(step) + mean)
        return out

    def value(self, step: Step) -> str:
        v = float(self.values.of(step.symbol))
        return f"{v:.{self.digits}g}"


def _selected(derivation: Derivation, wrt: list[str] | None) -> list[Step]:
    grads = derivation.gradients()
    if not wrt:
        return grads
    return [g for g in grads if g.param in wrt]


def render_text(derivation: Derivation, values: Values | None, digits: int = 5, wrt=None) -> str:
    r = Renderer(derivation, values, digits)
    net = derivation.model.network
    acts = ", ".join(printable(a.name) for a in net.activations)   # spec text: nothing a terminal acts on
    out = [f"Network {'-'.join(map(str, net.layers))} ({acts}), loss {net.loss.name}",
           "Indices are 1-based as in the math; z = W a + b; C is "
           + ("the mean over the batch of the per-example loss." if net.batched else "the loss of the example.")]
    if values is not None:
        out.append("")
        out.append("Forward pass")
        for key, val in values.forward.items():
            out.append(f"  {key} = {np.array2string(np.asarray(val, float), precision=digits)}")
        out.append(f"  C = {float(values.loss):.{digits}g}")
    out += ["", "Backward pass (reverse accumulation, each factor by sympy.diff)"]
    for step in derivation.steps:
        if step.kind == "grad":
            continue
        out += _indent(r.lines(step, latex=False))
    out += ["", "Gradients (chain-rule products in chain order)"]
    for step in _selected(derivation, wrt):
        out += _indent(r.lines(step, latex=False))
    return "\n".join(out) + "\n"


def _indent(lines):
    return ["  " + lines[0]] + ["      " + s for s in lines[1:]]


def render_latex_body(derivation: Derivation, values: Values | None, digits: int = 5, wrt=None) -> list[str]:
    """align* blocks: the backward steps, then the gradients."""
    r = Renderer(derivation, values, digits)
    blocks = []
    for title, steps in (("Backward pass", [s for s in derivation.steps if s.kind != "grad"]),
                         ("Gradients", _selected(derivation, wrt))):
        rows = []
        for step in steps:
            lines = r.lines(step, latex=True)
            rows.append(lines[0].replace(" = ", " &= ", 1))
            rows += [f"&{line}" for line in lines[1:]]
        blocks.append((title, rows))
    return blocks


def render_latex(derivation, values, digits=5, wrt=None) -> str:
    out = [r"\documentclass{article}", r"\usepackage{amsmath,amssymb}", r"\usepackage[margin=2cm]{geometry}",
           r"\allowdisplaybreaks", r"\begin{document}", r"\section*{symbackprop: gradients by the chain rule}"]
    for title, rows in render_latex_body(derivation, values, digits, wrt):
        out += [rf"\subsection*{{{title}}}", r"\begin{align*}", " \\\\\n".join(rows), r"\end{align*}"]
    out.append(r"\end{document}")
    return "\n".join(out) + "\n"


def render_markdown(derivation, values, digits=5, wrt=None) -> str:
    net = derivation.model.network
    out = [f"# Gradients of the {'-'.join(map(str, net.layers))} network", ""]
    if values is not None:
        out += ["## Forward pass", "", "| quantity | value |", "|---|---|"]
        for key, val in values.forward.items():
            out.append(f"| ${key[0]}^{{({key[1:]})}}$ | {np.array2string(np.asarray(val, float), precision=digits)} |")
        out += [f"| $C$ | {float(values.loss):.{digits}g} |", ""]
    for title, rows in render_latex_body(derivation, values, digits, wrt):
        out += [f"## {title}", "", "$$", r"\begin{aligned}", " \\\\\n".join(rows), r"\end{aligned}", "$$", ""]
    return "\n".join(out)


def render_json(derivation: Derivation, values: Values | None, digits: int = 5, wrt=None,
                expanded: dict | None = None) -> str:
    """One JSON object. ``expanded`` maps (parameter name, index) to the gradient by ``sympy.diff``
    of the whole loss, where the caller derived it (small networks only)."""
    model = derivation.model
    net = model.network
    r = Renderer(derivation, values, digits)
    formulas = {}
    for step in _selected(derivation, wrt):
        entry = {"chain": r.formula(step, latex=True), "factors": [f.label for f in step.terms[0]]}
        if expanded and (step.param, step.index) in expanded:
            entry["expanded"] = model.latex(expanded[(step.param, step.index)])
        if values is not None:
            if values.batch == 1:
                entry["factor_values"] = [float(values.of(f.expr)) for f in step.terms[0]]
            entry["value"] = float(values.of(step.symbol))
        formulas.setdefault(step.param, {})[",".join(map(str, step.index))] = entry
    shapes = net.parameter_shapes()
    nested = {}
    for name, entries in formulas.items():
        grid = np.empty(shapes[name], dtype=object)
        for key, entry in entries.items():
            grid[tuple(int(i) for i in key.split(","))] = entry
        nested[name] = grid.tolist()
    result = {"network": {"layers": list(net.layers), "activations": [a.name for a in net.activations],
                          "loss": net.loss.name},
              "layout": JSON_LAYOUT,
              "formulas": nested}
    if values is not None:
        result["loss"] = float(values.loss)
        result["forward"] = {k: np.asarray(v, float).tolist() for k, v in values.forward.items()}
        result["gradients"] = {k: np.asarray(v, float).tolist() for k, v in values.gradients.items()
                               if not wrt or k in wrt}
        if values.exact:
            result["exact"] = {"loss": str(values.loss),
                               "gradients": {k: np.vectorize(str, otypes=[object])(v).tolist()
                                             for k, v in values.gradients.items() if not wrt or k in wrt}}
    return json.dumps(result, indent=2, allow_nan=False) + "\n"


RENDERERS = {"text": render_text, "latex": render_latex, "markdown": render_markdown, "json": render_json}


class Derived:
    """A derivation with its numbers, as the Python API returns it; renders itself in Jupyter.

    >>> from symbackprop import backprop
    >>> result = backprop("examples/seed.toml")            # doctest: +SKIP
    >>> result.gradients["W2"]                             # doctest: +SKIP
    array([[-0.05753635, -0.11434446]])
    """

    def __init__(self, derivation: Derivation, values: Values | None, digits: int = 5):
        self.derivation, self.values, self.digits = derivation, values, digits

    @property
    def gradients(self):
        return None if self.values is None else self.values.gradients

    def render(self, fmt: str = "text", wrt=None) -> str:
        return RENDERERS[fmt](self.derivation, self.values, self.digits, wrt)

    def _repr_markdown_(self):
        return self.render("markdown")

    def _repr_latex_(self):
        rows = [row for _, block in render_latex_body(self.derivation, self.values, self.digits) for row in block]
        return "$$\\begin{aligned}" + " \\\\ ".join(rows) + "\\end{aligned}$$"

    def __str__(self):
        return self.render("text")
