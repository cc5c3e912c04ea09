"""Rendering a scalar derivation: every gradient as its chain-rule product, in chain order.

SymPy's printers reorder the factors of a product, so each factor is printed on its own and the
factors are joined here, in the order the chain rule takes them: ∂z/∂w · ∂a/∂z · ∂C/∂a. With
numbers, the same product follows with each factor's value, as the seed writes it:
``0.28905 × 0.24210 × (-0.82220) ≈ -0.057536``. For a batch, the product is shown for each example
in turn (the first :data:`EXAMPLES_SHOWN`, the rest elided), then the gradient as the batch mean,
so every product printed is true as printed: the means of the factors do not multiply to the mean
of the product. Formats: text, latex (a document, or its body as a fragment), markdown, json.
Indices are 1-based as in the math, except in JSON, whose arrays are plain arrays.
"""
import json
import math
import re

import numpy as np
import sympy

from ..writers import latexdoc
from ..writers.document import md_cell, tex_escape
from ..derive.derivation import Derivation, Factor, Step
from ..errors import printable
from ..entries.registry import z as IN
from ..writers.sigfig import is_exact, significant
from ..entries.registry import activation_name
from ..writers.textprint import TextPrinter
from ..entries.template import placeholders, rename, template_key
from .names import NOISE, STAGE_NAMES, _fraction, _selected, _total, array_lines, backward_steps, plain  # noqa: F401

_PLACEHOLDER = re.compile(r"_p(\d{5})")   # entries.template's placeholder names, in a template's text
_INDEX = re.compile(r"_\{([\d,]+)\}")      # a label's element index, _{1,2}
FORMULA_CHARS = 240   # a factor's formula longer than this is shown by its name and value only
JSON_LAYOUT = ("each gradient has its parameter's shape (PyTorch's layouts: a dense W<l> is (outputs, inputs), "
               "a conv W<l> (out_channels, in_channels, *kernel)); arrays are plain nested lists, indices 0-based")


def network_json(net) -> dict:
    """The network as JSON output states it: sizes and activations (as before layer graphs), the
    input's shape, and each layer as written."""
    return {"layers": list(net.layers), "activations": [a.name for a in net.activations], "loss": net.loss.name,
            "input": list(net.input), "graph": [layer.describe() for layer in net.graph]}
EXAMPLES_SHOWN = 4   # a batch's values are written out for this many examples; the rest are elided


def number(value, digits: int) -> str:
    """``value`` (a float, or an exact SymPy number) to ``digits`` significant digits, negatives in
    parentheses for products."""
    text = significant(value, digits)
    return f"({text})" if text.startswith("-") else text


class Renderer:
    """Formats the steps of one derivation, with its values (a :class:`symbackprop.numeric.values.Values`)
    when there are numbers."""

    def __init__(self, derivation: Derivation, values: "object | None" = None, digits: int = 5):
        self.d, self.values, self.digits = derivation, values, digits
        self.model = derivation.model
        self._names: dict = {}      # LaTeX label -> text name
        self._shapes: dict = {}     # a label with its indices as _{00} -> its text name, split there
        self._stages = {**STAGE_NAMES, **{st.latex: st.name for st in self.model.stages()}}
        self._text = TextPrinter({s: self.plain(label) for s, label in self.model.latex_names.items()})
        self._words = {s: words for lm in self.model.layers
                       if (words := lm.layer.kind.text_local_derivative(lm.layer)) for s in lm.output.ravel()}
        # each activation's derivative as people write it (the registry's simple_derivative), in
        # place of SymPy's raw form; numbers are computed from the derivation's own expressions
        self._readable = {}
        self._shown: dict = {}      # (factor, latex, in a product) -> its formula's text
        self._each: dict = {}       # (local derivative, example) -> its value
        self._templates: dict = {}  # (template key, in a product) -> its text over placeholders
        self._bulk: dict = {}       # local derivative -> its values over the examples (float64)
        for layer in self.model.layers:
            act = self.model.network.activations[layer.index - 1]
            if act.elementwise and act.output_form is None and act.simple_derivative != act.derivative:
                for zj in layer.z:
                    self._readable[act.derivative.xreplace({IN: zj})] = act.simple_derivative.xreplace({IN: zj})

    def plain(self, label: str) -> str:
        """A LaTeX label's text name, each stage by its own name (:func:`plain`)."""
        found = self._names.get(label)
        if found is None:
            # the indices only fill in a name's shape (∂a⁽³⁾[.]/∂a⁽²⁾[.]): convert each shape once
            indices = _INDEX.findall(label)
            shape = _INDEX.sub("_{00}", label)
            text = self._shapes.get(shape)
            if text is None:
                text = self._shapes[shape] = plain(shape, self._stages).split("[00]")
            if len(text) != len(indices) + 1:       # a shape that reads differently: the whole label
                found = plain(label, self._stages)
            else:
                found = "".join(part + (f"[{indices[i]}]" if i < len(indices) else "") for i, part in enumerate(text))
            self._names[label] = found
        return found

    def prefetch(self, steps) -> None:
        """The values of every factor of ``steps``, computed together in float64 (by template: a
        few compiled functions for thousands of factors) instead of one SymPy substitution each."""
        if self.values is None:
            return
        env = self.values.env
        wanted = list(dict.fromkeys(f.expr for step in steps for term in step.terms for f in term
                                    if len(step.terms) > 1 or len(term) > 1))
        wanted = [e for e in wanted if e not in env and e not in self._bulk]
        found = self.values.each_of(wanted) if wanted else None
        if found is not None:
            self._bulk.update(zip(wanted, found))

    @property
    def batch(self) -> int:
        return 1 if self.values is None else self.values.batch

    @property
    def shown_examples(self) -> range:
        return range(min(self.batch, EXAMPLES_SHOWN))

    def sym(self, expr, latex: bool) -> str:
        expr = sympy.factor_terms(expr.xreplace(self._readable))  # 2(a - y), as written by hand
        return self.model.latex(expr) if latex else self._text.doprint(expr)

    def shown(self, factor: Factor) -> sympy.Expr:
        """A factor's expression, one level in: a factor naming a one-factor step (∂C/∂a of the
        output, ∂a/∂z) shows that step's formula; sums (the δ recursion) stay named."""
        step = self.d.by_symbol.get(factor.expr)
        if step is not None and len(step.terms) == 1 and len(step.terms[0]) == 1:
            return step.terms[0][0].expr.xreplace(self._readable)
        return factor.expr.xreplace(self._readable)

    def formula_terms(self, step: Step, latex: bool) -> list[str]:
        """The step's terms, each its factors as formulas in chain order (sums and conditionals in
        parentheses)."""
        dot = r" \cdot " if latex else " · "

        def show(f, term):
            key = (f.expr, latex, len(term) > 1)      # a factor recurs (an input in every kernel gradient)
            found = self._shown.get(key)
            if found is not None:
                return found
            text = self._shown[key] = (self._latex_factor if latex else self._text_factor)(self.shown(f), len(term) > 1)
            return text
        def worded(t, term):            # a layer kind's words for its local derivative (max-pool's)
            words = None if latex else self._words.get(step.sources[t] if t < len(step.sources) else None)
            if words is None or step.of is None:
                return None
            return "(" + words.format(x=self.plain(self.model.latex_names[step.of])) + ")"
        return [dot.join((worded(t, term) if i == 0 else None) or show(f, term) for i, f in enumerate(term))
                for t, term in enumerate(step.terms)]

    def _latex_factor(self, expr, in_product: bool) -> str:
        e = sympy.factor_terms(expr)
        text = self.sym(e, True)
        return rf"\left({text}\right)" if in_product and e.is_Add else text

    def _text_factor(self, expr, in_product: bool) -> str:
        """A factor's text, printed once per template (the expressions that differ only in their
        symbols: a layer's thousands of local derivatives are a few templates) with placeholder
        names, then each placeholder replaced by its symbol's text name. The template orders its
        terms as the original does (:mod:`symbackprop.entries.template`), so the text is the same."""
        key, symbols = template_key(expr)
        found = self._templates.get((key, in_product))
        if found is None:
            # renamed node by node, unevaluated: xreplace would re-simplify a Piecewise
            template = rename(expr, dict(zip(symbols, placeholders(sympy.S.Zero, symbols)[1])))
            e = sympy.factor_terms(template)
            text = self.sym(e, False)
            found = f"({text})" if in_product and (e.is_Add or isinstance(e, sympy.Piecewise)) else text
            self._templates[(key, in_product)] = found
        names = self._text.names
        return _PLACEHOLDER.sub(lambda m: names.get(symbols[int(m.group(1))], symbols[int(m.group(1))].name), found)

    def formula(self, step: Step, latex: bool) -> str:
        return " + ".join(self.formula_terms(step, latex))

    def each(self, expr, example: int):
        """The value of a symbol, or of a local derivative in them, for one example."""
        env = self.values.env
        if expr in env:
            return env[expr][example]
        found = self._bulk.get(expr)
        if found is not None:
            return found[example]
        key = (expr, example)
        found = self._each.get(key)
        if found is None:
            found = self._each[key] = sympy.sympify(expr).xreplace({s: env[s][example] for s in expr.free_symbols})
        return found

    def approx(self, value, latex: bool, scale: float | None = None) -> str:
        """"= v" where the printed v is the value, "≈ v" where it was rounded; "= 0" where a float
        is 0 up to the rounding of terms of size ``scale`` (a sum whose terms cancel exactly, as
        the bias gradients before a batch norm: float64 leaves a trace of 1e-16); an exact
        Rational as its fraction too."""
        if scale is not None and self.is_noise(value, scale):   # scale: a number, or a function giving it
            return "= 0"
        shown = significant(value, self.digits)
        rel = "=" if is_exact(float(value), shown) else (r"\approx" if latex else "≈")
        if self.values is not None and self.values.exact and _fraction(value):
            frac = _fraction(value)
            return f"= {frac} {rel} {shown}"
        return f"{rel} {shown}"

    def is_noise(self, value, scale) -> bool:
        """Whether a float ``value`` is 0 up to the rounding of terms of size ``scale``."""
        if self.values is not None and self.values.exact:
            return False
        v = float(value)
        if v == 0 or not abs(v) <= 1e-9:
            return False
        scale = scale() if callable(scale) else scale
        return scale is not None and math.isfinite(scale) and abs(v) <= NOISE * scale

    def factor_value(self, expr, i):
        """A factor's value for example ``i``, 0 where it is 0 up to its own terms' rounding."""
        value = self.each(expr, i)
        if self.values is None or self.values.exact or float(value) == 0:
            return value
        return 0 if self.is_noise(value, lambda: self._scale(expr, i)) else value

    def _scale(self, expr, i):
        """The size of ``expr``'s terms for example ``i`` (None for a single term): what its
        value's rounding is relative to."""
        if self.values is None:
            return None
        expr = sympy.sympify(expr)
        step = self.d.by_symbol.get(expr)
        if step is not None and len(step.terms) == 1 and len(step.terms[0]) == 1:
            expr = sympy.sympify(step.terms[0][0].expr)
        if step is None and expr.is_Symbol:
            return None
        expanded = sympy.expand(expr)
        if not expanded.is_Add:
            return None
        terms = expanded.args
        together = self.values.each_of(terms)          # float64, by template: not term by term in SymPy
        try:
            if together is not None:
                return sum(abs(float(v[i])) for v in together)
            return sum(abs(float(self.each(t, i))) for t in terms)
        except (TypeError, ValueError, OverflowError, ZeroDivisionError):
            return None

    def cancelled(self, step: Step) -> str:
        """Why a bias's gradient is 0: the batch norm after it subtracts the mean it shifts."""
        net = self.model.network
        if step.kind != "grad" or not step.param.startswith("b"):
            return ""
        readers = [l for l in net.graph if step.layer in l.sources]
        if readers and all(l.kind.cancels_bias for l in readers):
            return (f" (batch norm, layer {readers[0].index}, subtracts each channel's batch mean, "
                    f"which cancels {step.param})")
        return ""

    def lines(self, step: Step, latex: bool) -> list[str]:
        """The step as: its name = factor names = factor formulas, then its numbers: for one example
        = numbers ≈ value; for a batch, that line for each example shown, and for a gradient the
        mean over the batch."""
        dot = r" \cdot " if latex else " · "
        label = (lambda f: f.label) if latex else (lambda f: self.plain(f.label))
        names = [dot.join(label(f) for f in term) for term in step.terms]
        formulas = self.formula_terms(step, latex)
        head = step.label if latex else self.plain(step.label)
        single = len(step.terms) == 1 and len(step.terms[0]) == 1
        eq = " &= " if latex else " = "
        # a factor too long to read (batch norm's ∂var/∂μ, a sum over the batch) is shown by name only
        readable = all(len(f) <= FORMULA_CHARS for f in formulas)
        out = self._joined(head + eq, formulas if single and readable else names, latex)
        if formulas != names and not single and readable:
            out += self._joined("&= " if latex else "= ", formulas, latex)
        if self.values is None:
            return out
        for i in self.shown_examples:
            out += self.numbers(step, i, latex)
        if self.batch > len(self.shown_examples):
            rest = f"examples {len(self.shown_examples) + 1} to {self.batch} not shown"
            out.append(rf"&\text{{({rest})}}" if latex else f"({rest})")
        if self.batch > 1 and step.kind == "grad":
            scale = lambda: _total(abs(float(self.each(step.symbol, i))) for i in range(self.batch))  # noqa: E731
            mean = self.approx(self.values.of(step.symbol), latex, scale)
            out.append(rf"&{mean} \quad \text{{(the mean over the {self.batch} examples: the gradient of }}C\text{{)}}"
                       if latex else f"mean over the {self.batch} examples {mean}")
        return out

    def numbers(self, step: Step, i: int, latex: bool) -> list[str]:
        """Example ``i``'s line(s) of ``step``: its factors' values multiplied, ≈ its value (a
        one-factor step: the value alone); for a batch, labelled with the example."""
        batch = self.batch > 1
        if len(step.terms) == 1 and len(step.terms[0]) == 1:
            value = self.approx(self.each(step.symbol, i), latex,
                                lambda: self._scale(step.terms[0][0].expr, i))
            if latex:
                return [f"&{value}" + (rf" \quad \text{{(example {i + 1})}}" if batch else "")]
            return [(f"example {i + 1}: " if batch else "") + value]
        times = r" \times " if latex else " × "
        factors = [[self.factor_value(f.expr, i) for f in term] for term in step.terms]
        scale = lambda: _total(abs(math.prod(float(v) for v in vals)) for vals in factors)      # noqa: E731
        value = self.approx(self.each(step.symbol, i), latex, scale)
        if value == "= 0" and not latex:
            value += self.cancelled(step)
        products = [times.join(number(v, self.digits) for v in vals) for vals in factors]
        if latex:
            where = rf" \quad \text{{(example {i + 1})}}" if batch else ""
            return latexdoc.wrap_terms("&= ", products, tail=f" {value}{where}")
        return [(f"example {i + 1}: " if batch else "= ") + " + ".join(products) + f" {value}"]

    @staticmethod
    def _joined(first: str, terms: list[str], latex: bool) -> list[str]:
        """``first`` and ``terms`` joined by " + ": in LaTeX, on as many aligned lines as fit."""
        return latexdoc.wrap_terms(first, terms) if latex else [first + " + ".join(terms)]

    def forward_table(self, latex: bool):
        """The forward pass as (header, rows, loss line): one row per neuron's z and a, one value
        column, or for a batch one column per example shown; then the per-example loss."""
        v, model = self.values, self.model
        name = (lambda s: f"${model.latex_names[s]}$") if latex else (lambda s: self.plain(model.latex_names[s]))
        shown = self.shown_examples
        header = ["quantity"] + (["value"] if self.batch == 1 else [f"example {i + 1}" for i in shown])
        rows = []
        for stage in model.stages():
            for s in stage.symbols.ravel():
                rows.append([name(s)] + [significant(v.env[s][i], self.digits) for i in shown])
        if self.batch > 1:
            rows.append(["$C_n$" if latex else "C_n"] + [significant(v.per_example_loss[i], self.digits) for i in shown])
        more = "" if self.batch == len(shown) else f" (examples {len(shown) + 1} to {self.batch} not shown)"
        if self.batch == 1:
            loss = f"C {self.approx(v.loss, latex)}"
        elif latex:
            loss = rf"C = \frac{{1}}{{{self.batch}}}\sum_{{n=1}}^{{{self.batch}}} C_n {self.approx(v.loss, True)}"
        else:
            loss = f"C = mean of C_n over the {self.batch} examples {self.approx(v.loss, False)}{more}"
        return header, rows, loss


def _title(net) -> str:
    if not net.is_stack:
        return f"Network: input {'×'.join(map(str, net.input))}; " + "; ".join(
            f"{layer.index}. {printable(layer.describe())}" for layer in net.graph) + f"; loss {net.loss.name}"
    acts = ", ".join(activation_name(a) for a in net.activations)
    return f"Network {'-'.join(map(str, net.layers))} ({acts}), loss {net.loss.name}"


def _about(r: Renderer) -> list[str]:
    """What the reader needs to know first, a sentence a line."""
    net = r.model.network
    coupled = r.model.examples > 1
    out = ["Indices are 1-based as in the math" + ("; z = W a + b" if net.is_stack else "")
           + (f"; the first index of a per-example value is its example (a batch norm couples the "
              f"{r.model.examples} examples, so the derivation is over the whole batch)" if coupled else "")
           + "; C is " + ("the mean over the batch of the per-example loss." if net.batched else "the loss of the example.")]
    if r.values is not None and r.values.exact:
        out.insert(0, "Values computed exactly (rational arithmetic from the spec's numbers): a rational value is "
                      "shown as its fraction, then rounded where that is shorter.")
    if net.masks:
        out.append(f"Dropout masks: {net.mask_source}.")
    if r.values is not None and r.batch > 1:
        shown = len(r.shown_examples)
        each = f"each of the {r.batch} examples" if shown == r.batch else \
            f"examples 1 to {shown} of the {r.batch} (the rest are elided)"
        out.append(f"Every value is shown for {each}, then each gradient as the mean over the batch"
                   " (the mean of the products, not the product of the means).")
    return out


def render_text(derivation: Derivation, values: "object | None", digits: int = 5, wrt=None) -> str:
    r = Renderer(derivation, values, digits)
    out = [_title(derivation.model.network), *_about(r)]
    if values is not None:
        out += ["", "Forward pass"]
        header, rows, loss = r.forward_table(latex=False)
        if r.batch == 1:
            for stage in r.model.stages():
                symbols = stage.symbols[0] if r.model.examples == 1 and stage.per_example else stage.symbols
                numbers = np.vectorize(lambda s: values.env[s][0], otypes=[object])(symbols)
                by_example = r.model.examples > 1 and stage.per_example and numbers.ndim > 1
                out += ["  " + line for line in array_lines(stage.quantity, numbers, by_example, digits)]
        else:
            table = [header] + rows
            widths = [max(len(row[c]) for row in table) for c in range(len(header))]
            out += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table]
        out.append(f"  {loss}")
    out += ["", "Backward pass (reverse accumulation, each factor by sympy.diff)"]
    r.prefetch(backward_steps(derivation, wrt) + _selected(derivation, wrt))
    for step in backward_steps(derivation, wrt):
        out += _indent(r.lines(step, latex=False))
    out += ["", "Gradients (chain-rule products in chain order)"]
    for step in _selected(derivation, wrt):
        out += _indent(r.lines(step, latex=False))
    return "\n".join(out) + "\n"


def _indent(lines):
    return ["  " + lines[0]] + ["      " + s for s in lines[1:]]


def render_latex_body(derivation: Derivation, values: "object | None", digits: int = 5, wrt=None) -> list[str]:
    """(title, rows of an aligned block) for the backward steps, then the gradients."""
    r = Renderer(derivation, values, digits)
    blocks = []
    for title, steps in (("Backward pass", backward_steps(derivation, wrt)),
                         ("Gradients", _selected(derivation, wrt))):
        rows = []
        for step in steps:
            rows += r.lines(step, latex=True)
        blocks.append((title, rows))
    return blocks


def _tex_table(header, rows) -> str:
    """A LaTeX table (split into column groups that fit the line, each with the first column), in
    tabulars that align in one pdflatex run (:func:`symbackprop.writers.latexdoc.table`)."""
    return "\n".join(latexdoc.table([header[c] for c in group], [[row[c] for c in group] for row in rows],
                                     "l" + "r" * (len(group) - 1))
                     for group in latexdoc.column_groups(header, rows))


def render_latex(derivation, values, digits=5, wrt=None, fragment: bool = False) -> str:
    """A LaTeX document (or with ``fragment``, its body only): the network, the forward pass with
    numbers, the backward pass and the gradients."""
    r = Renderer(derivation, values, digits)
    net = derivation.model.network
    out = [r"\section*{symbackprop: gradients by the chain rule}",
           _tex_prose(_title(net)) + ". " + _tex_prose(" ".join(_about(r)))]
    if values is not None:
        header, rows, loss = r.forward_table(latex=True)
        out += [r"\subsection*{Forward pass}", _tex_table(header, rows), f"${loss}$"]
    for title, rows in render_latex_body(derivation, values, digits, wrt):
        out += [rf"\subsection*{{{title}}}", latexdoc.display(rows, aligned=True)]
    body = "\n\n".join(out) + "\n"
    return body if fragment else latexdoc.document(body)


def _tex_prose(text: str) -> str:
    """Prose for LaTeX, all of it text (no math in it): every character TeX acts on escaped."""
    specials = {"≈": r"$\approx$", "|": r"$|$", "²": r"$^2$", "≤": r"$\le$", "Σ": r"$\Sigma$"}
    return "".join(specials.get(c) or tex_escape(c) for c in text)


def render_markdown(derivation, values, digits=5, wrt=None) -> str:
    r = Renderer(derivation, values, digits)
    net = derivation.model.network
    out = [f"# Gradients of the {'-'.join(map(str, net.layers))} network", "",
           _title(net).replace("_", r"\_") + ". " + " ".join(_about(r)).replace("_", r"\_"), ""]
    if values is not None:
        header, rows, loss = r.forward_table(latex=True)
        out += ["## Forward pass", "", "| " + " | ".join(map(md_cell, header)) + " |",
                "|" + "---|" * len(header)]
        out += ["| " + " | ".join(map(md_cell, row)) + " |" for row in rows]
        out += ["", f"${loss}$", ""]
    for title, rows in render_latex_body(derivation, values, digits, wrt):
        out += [f"## {title}", "", "$$", r"\begin{aligned}", " \\\\\n".join(rows), r"\end{aligned}", "$$", ""]
    return "\n".join(out)


def render_json(derivation: Derivation, values: "object | None", digits: int = 5, wrt=None,
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
            if values.exact:                 # JSON has no fractions: the exact value as a string beside
                entry["exact_value"] = str(values.of(step.symbol))
        formulas.setdefault(step.param, {})[",".join(map(str, step.index))] = entry
    shapes = net.parameter_shapes()
    nested = {}
    for name, entries in formulas.items():
        grid = np.empty(shapes[name], dtype=object)
        for key, entry in entries.items():
            grid[tuple(int(i) for i in key.split(","))] = entry
        nested[name] = grid.tolist()
    result = {"network": network_json(net),
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
