"""What the builders of a worked example work with: a :class:`Sheet` holds one pass's numbers
(the forward and backward values of ``numeric.evaluate``) and makes the pieces every section and
every layer entry's ``explain_*`` method needs — numbers to the digits asked (:class:`Num`), a
stage's values as an array, tables of arrays elided past a stated limit, a sum written out term
by term, a backward step's chain-rule lines.

Examples: a model built for one example holds each value once per example (its env's columns); a
model built over the batch (batch norm) holds every example's symbols, each with one value.
:meth:`Sheet.array` hides the difference: a per-example array is always (N, *shape).
"""
import math
import re

import mpmath
import numpy as np
import sympy

from ..writers import latexdoc
from ..writers.document import Display, Para, Table
from ..numeric.values import PRECISIONS
from ..entries.registry import z as Z
from ..writers.sigfig import is_exact, significant

MATRIX_MAX = 12      # rows or columns of a matrix or table written out in full; larger ones are elided
LEAD_MAX = 6         # channels (or kernels) tabulated in full; past this the first 3 and the last
EXAMPLES_SHOWN = 4   # examples tabulated; the rest are elided, and the text says so
WRITE_ALL = 16       # a layer of up to this many values per example has every element's lines written
SUM_TERMS_MAX = 12   # a sum of more terms is written with its middle elided


class Num:
    """``digits`` significant digits; LaTeX for math, plain text for the drawing."""

    def __init__(self, digits: int):
        self.digits = digits

    def text(self, x) -> str:
        return significant(x, self.digits)

    def tex(self, x) -> str:
        s = self.text(x)
        if "e" not in s:
            return s
        mant, exp = s.split("e")
        power = f"10^{{{int(exp)}}}"
        return power if mant == "1" else "-" + power if mant == "-1" else f"{mant} \\times {power}"

    def par(self, x) -> str:
        """For a product or a sum: negatives and a × 10^k in parentheses, as the seed writes."""
        s = self.tex(x)
        return f"({s})" if s.startswith("-") or "\\times" in s else s

    def rel(self, x) -> str:
        """'=' when the printed value is the value, '\\approx' when it was rounded."""
        return "=" if is_exact(float(x), self.text(x)) else r"\approx"

    def eq(self, x) -> str:
        return f"{self.rel(x)} {self.tex(x)}"

    def all_eq(self, xs) -> str:
        """'=' when every printed value is exact, else '\\approx'."""
        return "=" if all(self.rel(x) == "=" for x in np.ravel(xs)) else r"\approx"

    def sum(self, terms) -> str:
        """0.4 - 1.5 - 0.1 + 0.3: the terms of a sum with their signs merged."""
        return " ".join(self.signed(terms))

    def signed(self, terms) -> list[str]:
        """The terms of :meth:`sum`, each with its sign: ["0.4", "- 1.5", "+ 0.3"]."""
        return [self.tex(terms[0])] + [f"- {self.tex(-x)}" if x < 0 else f"+ {self.tex(x)}" for x in terms[1:]]

    def matrix(self, rows) -> str:
        """A bmatrix; past :data:`MATRIX_MAX` rows or columns, the first and last few with ⋯ / ⋮
        between (every element is in the table of parameters)."""
        rows = np.atleast_2d(np.asarray(rows, dtype=np.float64))
        keep_r, keep_c = kept(rows.shape[0]), kept(rows.shape[1])
        cell = lambda i, j: (r"\ddots" if j is None else r"\vdots") if i is None else \
            r"\cdots" if j is None else self.tex(rows[i, j])                            # noqa: E731
        return ("\\begin{bmatrix} " + r" \\ ".join(" & ".join(cell(i, j) for j in keep_c) for i in keep_r)
                + " \\end{bmatrix}")

    def column(self, values) -> str:
        return self.matrix(np.asarray(values, dtype=np.float64).reshape(-1, 1))


def kept(n: int, limit: int = MATRIX_MAX) -> list:
    """The indices shown of ``n``, None for the ellipsis: all up to ``limit``."""
    return list(range(n)) if n <= limit else [*range(limit - 3), None, n - 2, n - 1]


def kept_lead(n: int) -> list:
    return list(range(n)) if n <= LEAD_MAX else [0, 1, 2, None, n - 1]


def tex_index(idx) -> str:
    """A 0-based index as the math writes it: (0, 2) -> "1,3"."""
    return ",".join(str(i + 1) for i in idx)


def code_names(text: str) -> str:
    """Setting names such as bias_correction in `code` style."""
    return re.sub(r"(\w+_\w+)", r"`\1`", text)


class _Tables:
    """Arrays as tables (a part of :class:`Sheet`)."""

    def tables(self, tex: str, values: np.ndarray, quantity: str | None = None, per_example: bool = True,
               what: str = "channel") -> list:
        """``values`` (N, *shape) for a per-example array, else its shape) as tables: a vector per
        example as the rows of one table, a matrix per table (rows i, columns j), the leading axes
        (examples, channels) a table each; past :data:`MATRIX_MAX` rows or columns, past
        :data:`LEAD_MAX` channels and :data:`EXAMPLES_SHOWN` examples, the middle is elided."""
        values = np.asarray(values, dtype=np.float64)
        if not per_example:
            values = values[None]
        shape = values.shape[1:]
        examples = list(range(min(len(values), EXAMPLES_SHOWN))) if per_example else [0]
        batch = per_example and self.net.batched
        out = []
        if len(shape) <= 1:
            out.append(self._vector_table(tex, values, examples, quantity, per_example, batch))
        else:
            for n in examples:
                for lead in _leads(shape[:-2]):
                    if lead is None:
                        out.append(Para(f"({what}s {_lead_gap(shape[:-2])} not shown)"))
                        continue
                    head = ", ".join(([f"example {n + 1}"] if per_example and self.N > 1 else [])
                                     + [f"{what} {tex_index(lead)}"] * bool(lead))
                    out.append(self._matrix_table(f"${tex}$" + (f", {head}" if head else ""), values[(n, *lead)],
                                                  quantity, (n,) if batch else (), lead))
        if per_example and len(values) > len(examples):
            out.append(Para(f"(examples {len(examples) + 1} to {len(values)} not shown)"))
        return out

    def _vector_table(self, tex, values, examples, quantity, per_example, batch) -> Table:
        shape = values.shape[1:]
        size = shape[0] if shape else 1
        cols = kept(size)
        label = lambda j: f"${tex}_{{{j + 1}}}$" if shape else f"${tex}$"            # noqa: E731
        if per_example and self.N > 1:
            header = ("example",) + tuple(label(j) if j is not None else "⋯" for j in cols)
            rows, where = [], []
            for n in examples:
                rows.append((str(n + 1),) + tuple(self.n_cell(values[(n, j)] if shape else values[n]) if j is not None
                                                  else "⋯" for j in cols))
                where.append(tuple(None if j is None else ((n, j) if shape else (n,)) if batch else ((j,) if shape else ())
                                   for j in cols))
        else:
            header = ("",) + tuple(label(j) if j is not None else "⋯" for j in cols)
            rows = [("value",) + tuple(self.n_cell(values[(0, j)] if shape else values[0]) if j is not None else "⋯"
                                       for j in cols)]
            where = [tuple(None if j is None else (((0, j) if shape else (0,)) if batch else ((j,) if shape else ()))
                           for j in cols)]
        return Table(header, tuple(rows), _source(quantity, where))

    def _matrix_table(self, title, m, quantity, head, lead) -> Table:
        rows_i, cols_j = kept(m.shape[0]), kept(m.shape[1])
        header = (title,) + tuple("⋯" if j is None else str(j + 1) for j in cols_j)
        rows, where = [], []
        for i in rows_i:
            if i is None:
                rows.append(("⋮",) + tuple("⋮" if j is not None else "⋱" for j in cols_j))
                where.append(tuple(None for _ in cols_j))
                continue
            rows.append((str(i + 1),) + tuple("⋯" if j is None else self.n_cell(m[i, j]) for j in cols_j))
            where.append(tuple(None if j is None else (*head, *lead, i, j) for j in cols_j))
        return Table(header, tuple(rows), _source(quantity, where))

    def n_cell(self, x) -> str:
        return f"${self.n.tex(x)}$"


class _Lines:
    """Sums, means and chain-rule steps written out line by line (a part of :class:`Sheet`)."""

    def written_sum(self, symbol, ex: int = 0, label: str | None = None) -> list[str]:
        """One element's sum written out, as the seed writes z₁: its terms by name, with their
        numbers, the products, and the value (the bias last; a long sum elided in the middle)."""
        n, definition = self.n, self.model.definitions[symbol]
        terms = sorted(sympy.Add.make_args(definition), key=self._term_order)
        names, numbers, products = [], [], []
        for term in terms:
            factors = self._factors(term)
            names.append(" ".join(self.names.get(f, sympy.latex(f)) for f in factors))
            values = [self.val(f, ex) for f in factors]
            numbers.append("".join(n.par(v) if i == 0 else f"({n.tex(v)})" for i, v in enumerate(values))
                           if len(values) > 1 else n.tex(values[0]))
            products.append(math.prod(values))
        value = self.val(symbol, ex)
        head = label or self.names[symbol]
        if len(terms) > SUM_TERMS_MAX:
            keep = [*range(SUM_TERMS_MAX - 3), None, len(terms) - 2, len(terms) - 1]
            pick = lambda xs: [xs[i] if i is not None else r"\cdots" for i in keep]      # noqa: E731
            signed = n.signed(products)
            return (latexdoc.wrap_terms(f"{head} &= ", pick(names))
                    + latexdoc.wrap_terms("&= ", pick(numbers))
                    + latexdoc.wrap_terms("&= ", pick(signed), sep=" ")
                    + [rf"&{n.eq(value)} \quad \text{{(a sum of {len(terms)} terms)}}"])
        signs = [numbers[0]] + [_signed_number(s) for s in numbers[1:]]
        return (latexdoc.wrap_terms(f"{head} &= ", names)
                + latexdoc.wrap_terms("&= ", signs, sep=" ")
                + latexdoc.wrap_terms("&= ", n.signed(products), sep=" ")
                + [f"&{n.eq(value)}"])

    def mean_lines(self, symbol, ex: int = 0) -> list[str]:
        """A mean written out: μ = (1/n)(x₁ + x₂ + ...) with its names, then its numbers, and the value."""
        n, definition = self.n, self.model.definitions[symbol]
        terms = list(sympy.Add.make_args(definition))
        coeffs = {t.as_coeff_Mul()[0] for t in terms}
        coeff = coeffs.pop() if len(coeffs) == 1 else sympy.Integer(1)     # SymPy spreads 1/n over the terms
        if coeff == 1 and len(terms) == 1:
            coeff, rest = definition.as_coeff_Mul()
            terms = list(sympy.Add.make_args(rest))
        else:
            terms = [t / coeff for t in terms]
        shown = terms if len(terms) <= SUM_TERMS_MAX else [*terms[:SUM_TERMS_MAX - 3], None, *terms[-2:]]
        names = [r"\cdots" if t is None else self.model.latex(t) for t in shown]
        numbers = [r"\cdots" if t is None else self.plug(t, ex) for t in shown]
        frac = rf"\frac{{1}}{{{sympy.latex(1 / coeff)}}}"
        out = latexdoc.wrap_terms(f"{self.names[symbol]} &= {frac} \\Big(", names, tail=r" \Big)")
        out += latexdoc.wrap_terms(f"&= {frac} \\Big(", numbers, tail=r" \Big)")
        more = rf" \quad \text{{(the mean of {len(terms)} values)}}" if len(terms) > SUM_TERMS_MAX else ""
        return out + [f"&{n.eq(self.val(symbol, ex))}{more}"]

    def _term_order(self, term):
        """A sum's terms in the order the math writes them: by the position of what they read
        (row-major), a lone parameter (the bias) last."""
        factors = self._factors(term)
        if len(factors) == 1:
            return (1, ())
        where = getattr(self, "_where", None)
        if where is None:
            where = self._where = {s: idx for arr in self._arrays() for idx, s in np.ndenumerate(arr)}
        return (0, min((where.get(f, ()) for f in factors if f in where and not _is_param(self, f)), default=()))

    def _factors(self, term) -> list:
        """A product's factors as the math writes them: the number, the parameter, then the rest."""
        coeff, rest = term.as_coeff_mul()
        rest = sorted(rest, key=lambda f: 0 if _is_param(self, f) else 1)
        return ([coeff] if coeff != 1 else []) + rest

    def _arrays(self):
        yield self.model.X
        for lm in self.model.layers:
            yield from lm.params.values()
            yield from lm.data.values()
            for st in lm.stages:
                yield st.symbols

    def step_lines(self, step, ex: int = 0) -> list[str]:
        """label = factors' names = their formulas = their numbers ≈ value, in chain order."""
        n, d = self.n, self.d
        value = self.val(step.symbol, ex)
        terms = step.terms   # the derivation's chain order: ∂z/∂w · ∂a/∂z · ∂C/∂a
        if len(terms) == 1 and len(terms[0]) == 1 and terms[0][0].expr not in d.by_symbol:
            f = terms[0][0]
            form = self.sym(f.expr)
            line = f"{step.label} &= {form}"
            if not f.expr.free_symbols:          # a constant: nothing to plug in
                return [line]
            if not f.expr.has(sympy.Piecewise):  # a case split reads better as its value alone
                line += f" = {self.plug(f.expr, ex)}"
            return [f"{line} {n.eq(value)}"]

        def form(f):
            if f.expr in d.by_symbol:
                return f.label
            text = self.sym(f.expr)
            return f"\\left({text}\\right)" if sympy.factor_terms(f.expr).is_Add else text

        shown = list(terms) if len(terms) <= SUM_TERMS_MAX else [*terms[:SUM_TERMS_MAX - 3], None, *terms[-2:]]
        pick = lambda make: [r"\cdots" if t is None else make(t) for t in shown]                 # noqa: E731
        names = pick(lambda t: r" \, ".join(f.label for f in t))
        forms = pick(lambda t: r" \, ".join(form(f) for f in t))
        local_ok = all(sympy.count_ops(f.expr) <= 8 for t in terms for f in t)
        numbers = pick(lambda t: r" \times ".join(n.par(self.val(f.expr, ex)) for f in t))
        lines = latexdoc.wrap_terms(f"{step.label} &= ", names)
        if forms != names and local_ok:
            more = latexdoc.wrap_terms("&= ", forms)
            joined = f"{lines[0]} = {more[0][len('&= '):]}"
            if len(lines) == len(more) == 1 and latexdoc.width(joined) <= latexdoc.LINE_PT:
                lines = [joined]              # names = formulas on one line, where it fits
            else:
                lines += more
        tail = f" {n.eq(value)}" + (rf" \quad \text{{({len(terms)} terms)}}" if len(terms) > SUM_TERMS_MAX else "")
        return lines + latexdoc.wrap_terms("&= ", numbers, tail=tail)

    def steps_display(self, steps, ex: int = 0, limit: int = WRITE_ALL) -> list:
        """The lines of ``steps`` for example ``ex`` in one display: all of them up to ``limit``,
        else the first and a note (the tables give every value)."""
        steps = list(steps)
        if not steps:
            return []
        shown = steps if len(steps) <= limit else steps[:1]
        out = [Display(tuple(line for s in shown for line in self.step_lines(s, ex)))]
        if len(shown) < len(steps):
            rest = len(steps) - 1
            out.append(Para(f"The other {rest} element{'s' if rest > 1 else ''} the same way; the table gives every value:"))
        return out


def _source(quantity, where) -> tuple | None:
    """A table's source: per row, per cell (quantity, index) or None."""
    if quantity is None:
        return None
    return tuple(tuple(None if idx is None else (quantity, tuple(idx)) for idx in row) for row in where)


class Sheet(_Tables, _Lines):
    """One pass's numbers (``values``, at ``params``), for the builders of a worked example."""

    def __init__(self, network, derivation, values, params, digits: int):
        self.net, self.d, self.values, self.params = network, derivation, values, params
        self.model = derivation.model
        self.names = self.model.latex_names
        self.n = Num(digits)
        self.N = network.x.shape[0]
        self.E = self.model.examples
        self.steps = {(st.kind, st.of): st for st in derivation.steps if st.of is not None}
        self.readable = {}       # each activation's derivative as people write it (simple_derivative)
        for lm in self.model.layers:
            act, z = lm.layer.activation, lm.stage("z")
            if z is not None and act.elementwise and act.output_form is None:
                self.readable.update({act.derivative.xreplace({Z: s}): act.simple_derivative.xreplace({Z: s})
                                      for s in z.symbols.ravel()})

    # ---- numbers
    def col(self, ex: int) -> int:
        """The env column holding example ``ex``'s values (a model over the batch has one)."""
        return ex if self.E == 1 else 0

    @property
    def example_head(self) -> str:
        """The first column's head of a table with one example a row."""
        return "example" if self.E == 1 else "example $i$"

    def column_name(self, symbols, idx=()) -> str:
        """The LaTeX name of element ``idx`` over a table's rows, one example a row: where the model's
        symbols carry the example (a batch norm couples them), its index is the row's, ``i``:
        ``a^{(4)}_{i,1}``, not example 1's ``a^{(4)}_{1,1}``."""
        name = self.names[self.at(symbols, 0, idx)]
        return name if self.E == 1 else re.sub(r"_\{1(,|\})", r"_{i\1", name, count=1)

    def at(self, symbols, ex: int, idx=()):
        """The model symbol of element ``idx`` of a per-example array, for example ``ex``."""
        return symbols[(0 if self.E == 1 else ex, *idx)]

    def val(self, expr, ex: int = 0) -> float:
        """The value of a symbol, or of an expression in them, for example ``ex``."""
        env, c = self.values.env, self.col(ex)
        if expr in env:
            return float(env[expr][c])
        expr = sympy.sympify(expr)
        if self.values.precise:       # arbitrary-precision values: log(1 - a) of a = 1 - e^-1e4 is -1e4, not log 0
            with mpmath.workdps(PRECISIONS[-1]):
                return float(expr.xreplace({s: sympy.Float(env[s][c], PRECISIONS[-1]) for s in expr.free_symbols}).evalf(30))
        return float(expr.xreplace({s: float(env[s][c]) for s in expr.free_symbols}))

    def array(self, symbols, per_example: bool = True) -> np.ndarray:
        """The values of a model array: (N, *shape) for a per-example one, its own shape otherwise."""
        env = self.values.env
        one = np.vectorize(lambda s: float(env[s][0]), otypes=[np.float64])
        if not per_example or self.E > 1:
            return one(symbols) if symbols.size else np.zeros(symbols.shape)
        inner = symbols[0, ...]
        return np.stack([np.vectorize(lambda s, n=n: float(env[s][n]), otypes=[np.float64])(inner)
                         if inner.size else np.zeros(inner.shape) for n in range(self.N)])

    def passed(self, lm, k: int, part=None) -> np.ndarray:
        """The gradient layer ``lm`` passes back to its input ``k``: ``part`` where given (one path
        of several), else ∂C/∂a of the layer it reads."""
        if part is not None:
            return part
        return self.grad(self.model.layers[lm.layer.sources[k] - 1], "a")

    def receiver_steps(self, lm, k: int) -> list:
        """The backward steps ∂C/∂a of the layer input ``k`` comes from, example 1's, in order."""
        src = self.model.layers[lm.layer.sources[k] - 1].stage("a")
        return [self.steps[("dC/da", s)] for s in src.symbols[0, ...].ravel()]

    def grad_tex(self, lm) -> str:
        """The LaTeX of the gradient at the layer's output: δ where it has a pre-activation, else ∂C/∂a."""
        l = lm.index
        return rf"\delta^{{({l})}}" if lm.layer.has_z else rf"\frac{{\partial C}}{{\partial a^{{({l})}}}}"

    def stage(self, lm, name: str) -> np.ndarray:
        st = lm.stage(name)
        return self.array(st.symbols, st.per_example)

    def step_symbols(self, stage, kind: str) -> np.ndarray:
        """The symbols of ``stage``'s backward steps of ``kind`` ("delta", "da/dz", "dC/da", ...), in its shape."""
        return np.vectorize(lambda s: self.steps[(kind, s)].symbol, otypes=[object])(stage.symbols)

    def grad(self, lm, name: str) -> np.ndarray:
        """The values of ∂C/∂(stage ``name``): δ for z, ∂C/∂a for a, ∂C/∂μ for mean, ..."""
        st = lm.stage(name)
        kind = "delta" if name == "z" else f"dC/d{name}"
        return self.array(self.step_symbols(st, kind), st.per_example)

    def inputs(self, lm, k: int = 0) -> np.ndarray:
        """The values of the layer's input ``k`` (N, *shape)."""
        return self.array(lm.sources[k])

    def param(self, name: str) -> np.ndarray:
        return np.asarray(self.params[name], dtype=np.float64)

    # ---- formulas
    def sym(self, expr) -> str:
        return self.model.latex(sympy.factor_terms(sympy.sympify(expr).xreplace(self.readable)))

    def plug(self, expr, ex: int = 0, wrap=True) -> str:
        """``expr`` printed with each symbol replaced by its value (negatives in parentheses)."""
        expr = sympy.factor_terms(sympy.sympify(expr).xreplace(self.readable))
        fmt = self.n.par if wrap else self.n.tex
        names = {s: fmt(self.val(s, ex)) for s in expr.free_symbols}
        return sympy.latex(expr, symbol_names=names, mul_symbol="times")

    def input_tex(self, lm, k: int = 0) -> str:
        """The LaTeX name of a layer's input k: x or a^{(i)}."""
        src = lm.layer.sources[k]
        return "x" if src == 0 else f"a^{{({src})}}"

    def out_tex(self, lm) -> str:
        return f"{'z' if lm.layer.has_z else 'a'}^{{({lm.index})}}"


def _is_param(sheet, s) -> bool:
    params = getattr(sheet, "_params", None)
    if params is None:
        params = sheet._params = {p for _, _, p in sheet.model.parameters()}
    return s in params


def _signed_number(text: str) -> str:
    """A term's numbers after the first, with its sign: "+ 0.1(-1)", "- 0.1" for a bias of -0.1."""
    if text.startswith("-") and "(" not in text:
        return f"- {text[1:]}"
    return f"+ {text}"


def _leads(shape) -> list:
    """Every index of the leading axes, None where channels are elided."""
    if not shape:
        return [()]
    out = []
    for first in kept_lead(shape[0]):
        if first is None:
            out.append(None)
            continue
        out += [(first, *rest) for rest in np.ndindex(*shape[1:])]
    return out


def _lead_gap(shape) -> str:
    return f"4 to {shape[0] - 1}"
