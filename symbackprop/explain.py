"""Worked examples, as a good textbook writes them: ``symbackprop explain``.

For a spec with parameters and a sample, :func:`explain` computes one training step in full
float64 — the forward pass, the loss, every factor of the backward pass, the optimizer's update and
the forward pass after it — and, with ``steps > 1``, a short training run that stops by the seed
notes' three conditions. :class:`Explanation` renders it as Markdown (``$…$`` math), a LaTeX
document or a standalone HTML page with a drawing of the network, and renders itself in Jupyter.

Numbers are rounded only when printed (``digits`` significant digits): every number shown is
computed from unrounded float64 values, never from the rounded ones printed before it.

>>> from symbackprop.spec import load
>>> e = explain(load("examples/seed.toml"), optimizer="adam")
>>> round(float(e.values.gradients["W2"][0, 0]), 5)
-0.05754
>>> print(e.markdown())          # doctest: +SKIP
"""
import html as _html
import math
import re
from dataclasses import dataclass

import numpy as np
import sympy

from . import latexdoc
from .derive import Derivation, Step
from .errors import SpecError, printable
from .inputs import as_network
from .model import Model
from .numeric import Values, evaluate, evaluator
from .registry import z as Z
from .optimizers import HYPER, LATEX_NAMES, OPTIMIZERS, Optimizer, Settings, rule_latex, step as opt_step
from .sigfig import is_exact, significant

FORMATS = ("markdown", "latex", "html")
MAX_PARAMETERS = 2000   # a worked example of more is a book nobody reads (about 20 s, 3 MB of text)


# ---------------------------------------------------------------------------------------------
# The computation: plain data, no strings


@dataclass(frozen=True)
class Trace:
    """One parameter array's update: the optimizer's rules evaluated in order on it."""
    name: str                                   # "W2"
    frozen: bool                                # a bias with train_biases = false
    theta: np.ndarray                           # before the step
    grad: np.ndarray
    state_before: dict[str, np.ndarray]         # "m", "v", ...
    assigned: tuple[tuple[sympy.Symbol, sympy.Expr, np.ndarray], ...]  # target, rule, value
    theta_after: np.ndarray
    state_after: dict[str, np.ndarray]


@dataclass(frozen=True)
class Update:
    optimizer: Optimizer
    settings: Settings
    t: int                                      # the step number, 1 for the first
    traces: tuple[Trace, ...]
    params: dict[str, np.ndarray]               # after the step
    state: dict[str, dict[str, np.ndarray]]     # after the step


@dataclass(frozen=True)
class Iteration:
    t: int
    loss_before: float
    loss_after: float


@dataclass
class Explanation:
    """A worked example; ``markdown()``, ``latex()``, ``html()`` render it."""
    network: object
    derivation: Derivation
    values: Values              # before the step
    update: Update
    after: Values               # the forward pass (and backward) with the updated parameters
    history: list[Iteration]    # one entry per training step taken (at least one)
    stop: str                   # why the run ended, in words
    final: dict[str, np.ndarray]
    digits: int = 5
    conditions: tuple = ()      # (max_iters, loss_below, min_delta) as given
    limit: int = 1              # the most steps the run could take
    comparison: tuple | None = None   # (the sgd Update, its new loss) when the optimizer is not sgd

    def blocks(self) -> list:
        """The document as Heading/Para/Display/Table/Figure blocks (built once per ``digits``)."""
        cache = self.__dict__.setdefault("_blocks", {})
        if self.digits not in cache:
            cache[self.digits] = _Writer(self).blocks()
        return cache[self.digits]

    def markdown(self) -> str:
        return to_markdown(self.blocks())

    def latex(self, fragment: bool = False) -> str:
        return to_latex(self.blocks(), self.title, fragment)

    def html(self) -> str:
        from .html import standalone_page
        return standalone_page(self.title, to_html(self.blocks()))

    def render(self, fmt: str) -> str:
        return {"markdown": self.markdown, "latex": self.latex, "html": self.html}[fmt]()

    def __repr__(self) -> str:
        from .render import describe
        n = _Num(self.digits)
        return (f"<Explanation {describe(self.network)}, {len(self.history)} {self.update.optimizer.name} "
                f"step{'s' if len(self.history) > 1 else ''}: C = {n.text(self.history[0].loss_before)} "
                f"-> {n.text(self.history[-1].loss_after)}>")

    @property
    def title(self) -> str:
        sizes = "-".join(map(str, self.network.layers))
        runs = f", and a run of {len(self.history)} steps" if len(self.history) > 1 else ""
        return f"Backpropagation worked by hand: a {sizes} network, one {self.update.optimizer.name} step{runs}"

    # Jupyter: HTML (a fragment whose $...$ the notebook typesets), Markdown, LaTeX (display math)
    def _repr_markdown_(self) -> str:
        return self.markdown()

    def _repr_html_(self) -> str:
        return to_html(self.blocks())

    def _repr_latex_(self) -> str:
        return "\n".join(f"$${_display_tex(b.lines)}$$" for b in self.blocks() if isinstance(b, Display))


def explain(network, optimizer: str | None = None, steps: int | None = None, digits: int = 5,
            max_iters: int | None = None, loss_below: float | None = None,
            min_delta: float | None = None) -> Explanation:
    """Work one training step of ``network`` (with its [parameters] and [sample]) in full, then
    train up to ``steps`` steps (default 1, or ``max_iters``), stopping early when the loss falls
    below ``loss_below`` or changes by less than ``min_delta``. Conditions not given here come from
    the spec's ``[optimizer]`` table (``max_iters`` there only caps ``steps``). ``network`` is a
    Network, a spec's data as a dict, or a spec path. SpecError on bad input."""
    network = as_network(network)
    if network.parameters is None:
        raise SpecError("parameters", "missing: explain needs the spec's [parameters] table")
    if network.x is None:
        raise SpecError("sample", "missing: explain needs the spec's [sample] table (x and y)")
    if network.parameter_count > MAX_PARAMETERS:
        raise SpecError("network.layers", f"{network.parameter_count} parameters is too many for a worked "
                                          f"example (at most {MAX_PARAMETERS}); try symbackprop derive")
    name = optimizer or network.optimizer.get("name", "sgd")
    if name not in OPTIMIZERS:
        field = "--optimizer" if optimizer else "optimizer.name"
        raise SpecError(field, f"unknown optimizer {name!r} (known: {', '.join(OPTIMIZERS)})")
    if not isinstance(digits, int) or not 1 <= digits <= 17:
        raise SpecError("--digits", f"expected an integer from 1 to 17, got {digits!r}")
    for field, value in (("--steps", steps), ("--max-iters", max_iters)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise SpecError(field, f"expected a positive integer, got {value!r}")
    for field, value in (("--loss-below", loss_below), ("--min-delta", min_delta)):
        if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise SpecError(field, f"expected a non-negative number, got {value!r}")
    # --steps asks for a run; a maximum caps it (--max-iters alone asks for that many steps, the
    # spec's max_iters only caps); thresholds given on the command line override the spec's
    table = network.optimizer
    limit = steps or max_iters or 1
    cap = max_iters or table.get("max_iters")
    limit = min(limit, cap) if cap else limit
    max_iters = cap
    loss_below = loss_below if loss_below is not None else table.get("loss_below")
    min_delta = min_delta if min_delta is not None else table.get("min_delta")

    opt, settings = OPTIMIZERS[name], Settings.of(network.optimizer)
    derivation = Derivation(Model(network))
    with np.errstate(all="ignore"):  # a non-finite number is reported below, not warned about
        values = evaluate(derivation)
        if not (math.isfinite(float(values.loss)) and all(np.isfinite(g).all() for g in values.gradients.values())):
            raise SpecError("parameters", f"the loss or a gradient is not finite at these parameters "
                                          f"(C = {float(values.loss):g}): there is nothing to work by hand")
        params = {k: np.array(val, dtype=np.float64) for k, val in network.parameters.items()}
        state = opt.init_state(params)
        update = _update(opt, settings, params, values.gradients, state, t=1)
        after = evaluate(derivation, parameters=update.params)
        if not math.isfinite(float(after.loss)):
            raise SpecError("optimizer.learning_rate", f"the loss after one {name} step is not finite "
                                                       f"(C = {float(after.loss):g}): the step diverged")
        run = evaluator(derivation)  # evaluate's loss and gradients, each expression lambdified once
        comparison = None
        if name != "sgd":  # plain gradient descent on the same gradients, as textbooks compare
            sgd = OPTIMIZERS["sgd"]
            plain = _update(sgd, settings, params, values.gradients, sgd.init_state(params), t=1)
            comparison = (plain, run(plain.params)[0])

        history = [Iteration(1, float(values.loss), float(after.loss))]
        stop = _stopped(history[-1], loss_below, min_delta)
        params, state = update.params, update.state
        if stop is None and limit > 1:
            loss, grads = float(after.loss), after.gradients
            for t in range(2, limit + 1):
                params, state = opt_step(opt, settings, params, grads, state, t)
                new_loss, grads = run(params)
                history.append(Iteration(t, loss, new_loss))
                loss = new_loss
                stop = _stopped(history[-1], loss_below, min_delta)
                if stop is not None:
                    break
    if stop is None:
        stop = f"reached the maximum of {limit} step{'s' if limit > 1 else ''}"
    return Explanation(network, derivation, values, update, after, history, stop, params, digits,
                       (max_iters, loss_below, min_delta), limit, comparison)


def _stopped(it: Iteration, loss_below, min_delta) -> str | None:
    if not math.isfinite(it.loss_after):
        return f"the loss is no longer finite after step {it.t} ({it.loss_after:g})"
    if loss_below is not None and it.loss_after < loss_below:
        return f"the loss fell below {loss_below:g} at step {it.t}"
    if min_delta is not None and abs(it.loss_before - it.loss_after) < min_delta:
        return f"the loss changed by less than {min_delta:g} at step {it.t}"
    return None


def _update(opt: Optimizer, settings: Settings, params, grads, state, t: int) -> Update:
    """One simultaneous step, with every rule's value as ``step`` computed it."""
    record = {}
    new_params, new_state = opt_step(opt, settings, params, grads, state, t, record=record)
    rules = opt.assignments(settings)
    traces = []
    for name in params:
        frozen = name not in record
        assigned = () if frozen else tuple((target, rule, record[name][target.name]) for target, rule in rules)
        traces.append(Trace(name, frozen, params[name], grads[name], {k: state[k][name] for k in state},
                            assigned, new_params[name], {k: new_state[k][name] for k in state}))
    return Update(opt, settings, t, tuple(traces), new_params, new_state)


# ---------------------------------------------------------------------------------------------
# The document: a few kinds of block, each rendered to Markdown, LaTeX and HTML


@dataclass(frozen=True)
class Heading:
    level: int          # 1 title, 2 section, 3 subsection
    text: str


@dataclass(frozen=True)
class Para:
    text: str           # prose with $...$ inline math


@dataclass(frozen=True)
class Display:
    lines: tuple[str, ...]   # LaTeX math; several lines are aligned at "&"


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Figure:
    svg: str            # HTML only
    caption: str


def _aligned(line: str) -> bool:
    """Whether ``line`` has an alignment point: an ``&`` outside every environment (matrices)."""
    depth = 0
    for token in re.findall(r"\\begin\{|\\end\{|(?<!\\)&", line):
        if token == "&" and depth == 0:
            return True
        depth += {"\\begin{": 1, "\\end{": -1}.get(token, 0)
    return False


def _display_tex(lines) -> str:
    if len(lines) == 1 and not _aligned(lines[0]):
        return lines[0]
    return "\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}"


def to_markdown(blocks) -> str:
    out = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append("#" * b.level + " " + _md_text(b.text))
        elif isinstance(b, Para):
            out.append(_md_text(b.text))
        elif isinstance(b, Display):
            out.append("$$\n" + _display_tex(b.lines) + "\n$$")
        elif isinstance(b, Table):
            rows = [b.header, tuple("---" for _ in b.header), *b.rows]
            out.append("\n".join("| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows))
    return "\n\n".join(out) + "\n"


def _md_cell(text: str) -> str:
    """A Markdown table cell: one line, its | escaped (a bare one would end the cell), as prose."""
    return _md_text(" ".join(text.split()).replace("|", r"\|"))


def _md_text(text: str) -> str:
    """Prose for Markdown: math and `code` kept, raw HTML escaped (a spec's text — its file name —
    must not become a tag that a Markdown viewer or Jupyter renders), nothing a terminal acts on."""
    return "".join(printable(p) if _math_or_code(p) else _html.escape(printable(p), quote=False)
                   for p in _PIECES.split(text))


def _math_or_code(piece: str) -> bool:
    return len(piece) > 1 and piece[0] == piece[-1] and piece[0] in "$`"


_TEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "#": r"\#", "_": r"\_", "{": r"\{",
                "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "—": "---", "–": "--",
                "’": "'", "`": "{`}"}


_PIECES = re.compile(r"(\$[^$]+\$|`[^`]+`)")   # inline math, inline code


def _tex_text(text: str) -> str:
    """Prose for LaTeX: math kept as it is, `code` in typewriter, special characters escaped."""
    text = printable(text)

    def piece(p):
        if p.startswith("$") and p.endswith("$") and len(p) > 1:
            return p
        if p.startswith("`") and p.endswith("`") and len(p) > 1:
            return r"\texttt{" + piece(p[1:-1]) + "}"
        return "".join(_TEX_SPECIAL.get(c, c) for c in p)
    return "".join(piece(p) for p in _PIECES.split(text))


def _html_text(text: str) -> str:
    """Prose for HTML: escaped, `code` as <code> (math is left for KaTeX)."""
    return "".join(f"<code>{_html.escape(p[1:-1])}</code>" if p.startswith("`") and p.endswith("`") and len(p) > 1
                   else _html.escape(p) for p in _PIECES.split(printable(text)))


def to_latex(blocks, title: str, fragment: bool = False) -> str:
    """A complete LaTeX document (:func:`symbackprop.latexdoc.document`), or with ``fragment`` its
    body only. Displays and tables are kept inside the text width (see :mod:`symbackprop.latexdoc`)."""
    out = []
    for b in blocks:
        if isinstance(b, Heading):
            if b.level > 1:
                out.append(f"\\{'sub' * (b.level - 2)}section*{{{_tex_text(b.text)}}}")
        elif isinstance(b, Para):
            out.append(_tex_text(b.text))
        elif isinstance(b, Display):
            out.append(latexdoc.display(b.lines, aligned=len(b.lines) > 1 or _aligned(b.lines[0])))
        elif isinstance(b, Table):
            header = tuple(_tex_text(c) for c in b.header)
            rows = [tuple(_tex_text(c) for c in r) for r in b.rows]
            for group in latexdoc.column_groups(header, rows):
                spec = "l" * len(group)
                body = [" & ".join(r[c] for c in group) + r" \\" for r in rows]
                out.append("{\\small\n\\begin{longtable}{" + spec + "}\n\\hline\n"
                           + " & ".join(header[c] for c in group) + " \\\\\n\\hline\n\\endhead\n"
                           + "\n".join(body) + "\n\\hline\n\\end{longtable}}")
    body = "\n\n".join(out) + "\n"
    return body if fragment else latexdoc.document(body, _tex_text(title))


def to_html(blocks) -> str:
    esc = _html.escape
    out = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"<h{b.level}>{esc(printable(b.text))}</h{b.level}>")
        elif isinstance(b, Para):
            out.append(f"<p>{_html_text(b.text)}</p>")
        elif isinstance(b, Display):
            out.append(f"<div class=\"display\">$${esc(_display_tex(b.lines))}$$</div>")
        elif isinstance(b, Table):
            head = "".join(f"<th>{_html_text(c)}</th>" for c in b.header)
            body = "\n".join("<tr>" + "".join(f"<td>{_html_text(c)}</td>" for c in r) + "</tr>" for r in b.rows)
            out.append(f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>")
        elif isinstance(b, Figure):
            out.append(f"<figure>\n{b.svg}\n<figcaption>{esc(b.caption)}</figcaption>\n</figure>")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# Numbers as printed


class _Num:
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
        keep_r, keep_c = _kept(rows.shape[0]), _kept(rows.shape[1])
        cell = lambda i, j: (r"\ddots" if j is None else r"\vdots") if i is None else \
            r"\cdots" if j is None else self.tex(rows[i, j])
        return ("\\begin{bmatrix} " + r" \\ ".join(" & ".join(cell(i, j) for j in keep_c) for i in keep_r)
                + " \\end{bmatrix}")

    def column(self, values) -> str:
        return self.matrix(np.asarray(values, dtype=np.float64).reshape(-1, 1))


MATRIX_MAX = 12   # rows or columns of a matrix written out in full; larger ones are elided


def _kept(n: int) -> list:
    """The indices a matrix shows of ``n``, None for the ellipsis: all up to MATRIX_MAX."""
    return list(range(n)) if n <= MATRIX_MAX else [*range(MATRIX_MAX - 3), None, n - 2, n - 1]


def _code_names(text: str) -> str:
    """Setting names such as bias_correction in `code` style."""
    return re.sub(r"(\w+_\w+)", r"`\1`", text)


# ---------------------------------------------------------------------------------------------
# The writer: the worked example as blocks


class _Writer:
    def __init__(self, e: Explanation):
        self.e, self.net, self.d = e, e.network, e.derivation
        self.model = self.d.model
        self.names = self.model.latex_names
        self.n = _Num(e.digits)
        self.batch = e.values.batch
        self.L = len(self.model.layers)
        self.out = []
        # each activation's derivative as people write it (the registry's simple_derivative)
        self.readable = {}
        for layer in self.model.layers:
            act = self.net.activations[layer.index - 1]
            if act.elementwise and act.output_form is None:
                self.readable.update({act.derivative.xreplace({Z: zj}): act.simple_derivative.xreplace({Z: zj})
                                      for zj in layer.z})

    # -- helpers
    def add(self, *blocks):
        self.out.extend(blocks)

    def sym(self, expr) -> str:
        return self.model.latex(sympy.factor_terms(sympy.sympify(expr).xreplace(self.readable)))

    def val(self, values: Values, expr, ex: int = 0) -> float:
        """The value of a symbol, or of a local derivative in them, for example ``ex``."""
        if expr in values.env:
            return float(values.env[expr][ex])
        return float(sympy.sympify(expr).xreplace({s: float(values.env[s][ex]) for s in expr.free_symbols}))

    def plug(self, expr, values: Values, ex: int = 0, wrap=True) -> str:
        """``expr`` printed with each symbol replaced by its value (negatives in parentheses)."""
        expr = sympy.factor_terms(sympy.sympify(expr).xreplace(self.readable))
        fmt = self.n.par if wrap else self.n.tex
        names = {s: fmt(self.val(values, s, ex)) for s in expr.free_symbols}
        return sympy.latex(expr, symbol_names=names, mul_symbol="times")

    def layer_kind(self, l: int) -> str:
        return "output" if l == self.L else "hidden"

    def act_name(self, l: int) -> str:
        return self.net.activations[l - 1].latex

    def blocks(self) -> list:
        e = self.e
        self.add(Heading(1, e.title))
        self.setup()
        self.section("Forward pass")
        self.forward(e.values)
        self.section("Loss")
        self.loss(e.values, "C")
        self.section("Backward pass")
        self.backward()
        self.section(f"Update: {e.update.optimizer.name}")
        self.update()
        self.section("Forward pass with the updated parameters")
        self.forward(e.after, new=True)
        self.add(Heading(3, "The new loss"))
        self.loss(e.after, r"C_{\text{new}}")
        self.fall()
        if e.comparison is not None:
            self.section("For comparison: plain gradient descent")
            self.compare()
        if len(e.history) > 1 or any(c is not None for c in e.conditions):
            self.section(f"Training: {len(e.history)} step{'s' if len(e.history) > 1 else ''}")
            self.training()
        return self.out

    def section(self, title: str):
        self.sections = getattr(self, "sections", 0) + 1
        self.add(Heading(2, f"{self.sections}. {title}"))

    # -- the setting
    def setup(self):
        net, n = self.net, self.n
        sizes = net.layers
        parts = [f"{sizes[0]} inputs"]
        for l in range(1, len(sizes)):
            kind = "an output layer" if l == self.L else "a hidden layer"
            parts.append(f"{kind} of {sizes[l]} neuron{'s' if sizes[l] > 1 else ''} "
                         f"(`{net.activations[l - 1].name}`, ${self.act_name(l)}$)")
        source = "" if net.source.startswith("<") else f" ({net.source})"
        self.add(Para(f"The network{source}: " + ", ".join(parts) + f"; the loss is "
                      f"`{net.loss.name}`. Layer $l$ computes $z^{{(l)}} = W^{{(l)}} a^{{(l-1)}} + b^{{(l)}}$ "
                      f"and $a^{{(l)}} = f(z^{{(l)}})$ element by element, with $a^{{(0)}} = x$; "
                      f"$W^{{(l)}}_{{j,k}}$ is the weight from neuron $k$ of layer $l-1$ to neuron $j$ of "
                      f"layer $l$. Indices start at 1. Numbers are shown to {self.e.digits} significant "
                      "digits but every one is computed from unrounded values."))
        lines = []
        for name, value in net.parameters.items():
            sym = f"{name[0]}^{{({name[1:]})}}"
            lines.append(f"{sym} &= {n.matrix(value) if name[0] == 'W' else n.column(value)}")
        self.add(Para("The parameters:"), Display(tuple(lines)))
        if self.batch == 1:
            self.add(Para("The example:"),
                     Display((f"x = {n.column(net.x[0])}, \\qquad y = {n.column(net.y[0])}",)))
        else:
            self.add(Para(f"The batch has $N = {self.batch}$ examples. The loss $C$ is the mean of the "
                          "per-example losses, $C = \\frac{1}{N}\\sum_{i=1}^{N} C_i$, so every gradient of "
                          "$C$ is the mean of the per-example gradients. The arithmetic is written out for "
                          "example 1; the tables give every example."))
            header = ("example",) + tuple(f"${self.names[s]}$" for s in self.model.x + self.model.y)
            rows = tuple((str(i + 1),) + tuple(f"${n.tex(v)}$" for v in [*net.x[i], *net.y[i]])
                         for i in range(self.batch))
            self.add(Table(header, rows))
        self.add(Figure(self.drawing(), "The network before the step: each neuron's value"
                        + (" for example 1" if self.batch > 1 else "") + " and bias b, each edge's weight w "
                        "and the gradient g = ∂C/∂w (drawn on the edge, or, where a layer is large, shown "
                        "when the pointer rests on it; a neuron shows its z, δ and ∂C/∂b the same way)."))

    def drawing(self) -> str:
        from .html import network_svg
        v, t = self.e.values, self.n.text
        labels = {(0, k): f"x{k + 1} = {t(v.env[s][0])}" for k, s in enumerate(self.model.x)}
        edges, biases, tips = {}, {}, {}
        deltas = {(s.layer, s.index[0]): s.symbol for s in self.d.steps if s.kind == "delta"}
        for layer in self.model.layers:
            l = layer.index
            for j, s in enumerate(layer.a):
                labels[(l, j)] = f"a = {t(v.env[s][0])}"
                if l == self.L:
                    labels[(l, j)] += f", y = {t(v.env[self.model.y[j]][0])}"
                biases[(l, j)] = f"b = {t(self.net.parameters[f'b{l}'][j])}"
                tips[(l, j)] = (f"z{l}[{j + 1}] = {t(v.env[layer.z[j]][0])}, "
                                f"δ = {t(v.env[deltas[(l, j)]][0])}, ∂C/∂b = {t(v.gradients[f'b{l}'][j])}")
                for k in range(len(layer.inputs)):
                    w = self.net.parameters[f"W{l}"][j, k]
                    g = v.gradients[f"W{l}"][j, k]
                    edges[(l, j, k)] = f"w = {t(w)}, g = {t(g)}"
        minus = lambda d: {k: s.replace("-", "−") for k, s in d.items()}
        titles = ["input"] + [f"{'output' if l == self.L else f'hidden {l}'} ({a.name})"
                              for l, a in enumerate(self.net.activations, 1)]
        return network_svg(list(self.net.layers), minus(labels), minus(edges), titles, minus(biases), minus(tips))

    # -- 1 and 5: forward pass
    def forward(self, values: Values, new: bool = False):
        n = self.n
        params = {k: np.asarray(values_param, dtype=np.float64)
                  for k, values_param in (self.e.update.params if new else self.net.parameters).items()}
        if new:
            self.add(Para("The same forward pass with the parameters after the step"
                          + (" (the biases were frozen)" if not self.e.update.settings.train_biases else "")
                          + (", for example 1; the table gives every example." if self.batch > 1 else ".")))
        elif self.batch > 1:
            self.add(Para("Written out for example 1; the tables give every example."))
        for layer in self.model.layers:
            l, act = layer.index, self.net.activations[layer.index - 1]
            prev = "x" if l == 1 else f"a^{{({l - 1})}}"
            W, b = params[f"W{l}"], params[f"b{l}"]
            a_prev = [self.val(values, s) for s in layer.inputs]
            zs = [self.val(values, s) for s in layer.z]
            self.add(Heading(3, f"Layer {l} ({self.layer_kind(l)}, {act.name})"))
            rel = "=" if all(n.rel(x) == "=" for x in zs) else r"\approx"
            self.add(Para(f"The weighted sums $z^{{({l})}} = W^{{({l})}} {prev} + b^{{({l})}}$:"),
                     Display((f"z^{{({l})}} = {n.matrix(W)} {n.column(a_prev)} + {n.column(b)} "
                              f"{rel} {n.column(zs)}",)))
            lines = []
            for j, zj in enumerate(layer.z):
                symbolic = [f"{self.names[layer.W[j][k]]} {self.names[x]}" for k, x in enumerate(layer.inputs)]
                numbers = [f"{n.par(W[j, k])}({n.tex(a_prev[k])})" for k in range(len(a_prev))]
                bias = f"- {n.tex(-b[j])}" if b[j] < 0 else f"+ {n.tex(b[j])}"
                products = n.signed([W[j, k] * a_prev[k] for k in range(len(a_prev))] + [b[j]])
                # long sums on several lines, so that a wide layer's sums stay on the page
                lines += latexdoc.wrap_terms(f"{self.names[zj]} &= ", symbolic + [self.names[layer.b[j]]])
                lines += latexdoc.wrap_terms("&= ", numbers[:1] + [f"+ {t}" for t in numbers[1:]] + [bias], sep=" ")
                lines += latexdoc.wrap_terms("&= ", products, sep=" ")
                lines.append(f"&{n.eq(zs[j])}")
            self.add(Display(tuple(lines)))
            self.activation(layer, act, values)
            if self.batch > 1:
                header = ("example",) + tuple(f"${self.names[s]}$" for s in layer.z + layer.a)
                rows = tuple((str(i + 1),) + tuple(f"${n.tex(self.val(values, s, i))}$" for s in layer.z + layer.a)
                             for i in range(self.batch))
                self.add(Table(header, rows))

    def activation(self, layer, act, values):
        n, l = self.n, layer.index
        if act.elementwise:
            self.add(Para(f"Then the activation, element by element: $a^{{({l})}}_j = {act.latex}(z^{{({l})}}_j)$ "
                          f"with ${act.latex}(z) = {sympy.latex(act.expr)}$:"))
            lines = [f"{self.names[a]} &= {act.latex}({self.names[z]}) = {act.latex}({n.tex(self.val(values, z))}) "
                     f"{n.eq(self.val(values, a))}" for a, z in zip(layer.a, layer.z)]
        else:
            self.add(Para(f"Then the activation ({act.name}), on the whole layer:"))
            lines = [f"{self.names[a]} &= {self.model.latex(d)} = {self.plug(d, values, wrap=False)} "
                     f"{n.eq(self.val(values, a))}" for a, d in zip(layer.a, layer.a_def)]
        self.add(Display(tuple(lines)))

    # -- 2: loss
    def loss(self, values: Values, name: str):
        n, loss = self.n, self.net.loss
        out = self.model.output
        if name == "C":
            self.add(Para(f"The loss is `{loss.name}`: $C = {sympy.latex(loss.formula())}$, where $a_j$ is "
                          f"output $a^{{({self.L})}}_j$, $y_j$ its target and $n = {len(out)}$."
                          + (" It is computed for each example $i$ as $C_i$; $C$ is their mean."
                             if self.batch > 1 else "")))
        per = values.per_example_loss
        head = name if self.batch == 1 else (name + "_1" if name == "C" else r"C_{\text{new},1}")
        self.add(Display((f"{head} &= {self.sym(self.model.loss_def)}",
                          f"&= {self.plug(self.model.loss_def, values)}", f"&{n.eq(per[0])}")))
        if self.batch > 1:
            rows = tuple((str(i + 1),) + tuple(f"${n.tex(self.val(values, a, i))}$" for a in out)
                         + (f"${n.tex(per[i])}$",) for i in range(self.batch))
            header = ("example",) + tuple(f"${self.names[a]}$" for a in out) + ("$C_i$",)
            self.add(Table(header, rows))
            mean = float(values.loss)
            self.add(Display((f"{name} = \\frac{{1}}{{{self.batch}}}\\left({n.sum(list(per))}\\right) {n.eq(mean)}",)))

    # -- 3: backward pass
    def backward(self):
        self.add(Para("The chain rule, layer by layer from the output back. For every neuron, "
                      "$\\delta = \\partial C/\\partial z$ is its error signal. Each gradient is a product "
                      "of local derivatives in chain order, as the seed notes write it: "
                      "$\\frac{\\partial C}{\\partial w} = \\frac{\\partial z}{\\partial w}\\,"
                      "\\frac{\\partial a}{\\partial z}\\,\\frac{\\partial C}{\\partial a}$."
                      + (" Each quantity is written out for example 1 (where $C$ stands for $C_1$); the "
                         "gradient of $C$ is the mean over the examples, given in the tables."
                         if self.batch > 1 else "")))
        by_layer = {}
        for s in self.d.steps:
            by_layer.setdefault(s.layer, []).append(s)
        for layer in reversed(self.model.layers):
            self.backward_layer(layer, by_layer[layer.index])

    def step_lines(self, step: Step, values: Values, ex: int = 0) -> list[str]:
        """label = factors' names = their formulas = their numbers ≈ value, in chain order."""
        n, d = self.n, self.d
        value = self.val(values, step.symbol, ex)
        terms = step.terms   # the derivation's chain order: ∂z/∂w · ∂a/∂z · ∂C/∂a
        if len(terms) == 1 and len(terms[0]) == 1 and terms[0][0].expr not in d.by_symbol:
            f = terms[0][0]
            form = self.sym(f.expr)
            line = f"{step.label} &= {form}"
            if not f.expr.free_symbols:          # a constant: nothing to plug in
                return [line]
            if not f.expr.has(sympy.Piecewise):  # a case split reads better as its value alone
                line += f" = {self.plug(f.expr, values, ex)}"
            return [f"{line} {n.eq(value)}"]

        def form(f):
            if f.expr in d.by_symbol:
                return f.label
            text = self.sym(f.expr)
            return f"\\left({text}\\right)" if sympy.factor_terms(f.expr).is_Add else text

        names = [r" \, ".join(f.label for f in t) for t in terms]
        forms = [r" \, ".join(form(f) for f in t) for t in terms]
        local_ok = all(sympy.count_ops(f.expr) <= 8 for t in terms for f in t)
        numbers = [r" \times ".join(n.par(self.val(values, f.expr, ex)) for f in t) for t in terms]
        lines = latexdoc.wrap_terms(f"{step.label} &= ", names)
        if forms != names and local_ok:
            more = latexdoc.wrap_terms("&= ", forms)
            joined = f"{lines[0]} = {more[0][len('&= '):]}"
            if len(lines) == len(more) == 1 and latexdoc.width(joined) <= latexdoc.LINE_PT:
                lines = [joined]              # names = formulas on one line, where it fits
            else:
                lines += more
        return lines + latexdoc.wrap_terms("&= ", numbers, tail=f" {n.eq(value)}")

    def backward_layer(self, layer, steps):
        l, act, v = layer.index, self.net.activations[layer.index - 1], self.e.values
        kinds = {k: [s for s in steps if s.kind == k] for k in ("dC/da", "da/dz", "delta", "grad")}
        title = f"Layer {l} ({self.layer_kind(l)}, {act.name})"
        self.add(Heading(3, title))
        if l == self.L:
            self.add(Para(f"$\\partial C/\\partial a$ comes from the loss, "
                          f"$C = {self.sym(self.model.loss_def)}$:"))
        else:
            nxt = self.model.layers[l]
            self.add(Para(f"Each $a^{{({l})}}_k$ feeds every $z^{{({l + 1})}}_j = "
                          f"\\sum_k W^{{({l + 1})}}_{{j,k}} a^{{({l})}}_k + b^{{({l + 1})}}_j$, so "
                          f"$\\partial z^{{({l + 1})}}_j / \\partial a^{{({l})}}_k = W^{{({l + 1})}}_{{j,k}}$ and "
                          f"$\\partial C/\\partial a^{{({l})}}_k$ sums over the {len(nxt.z)} neuron"
                          f"{'s' if len(nxt.z) > 1 else ''} of layer {l + 1}: "
                          f"$\\frac{{\\partial C}}{{\\partial a^{{({l})}}_k}} = \\sum_j \\delta^{{({l + 1})}}_j "
                          f"W^{{({l + 1})}}_{{j,k}}$."))
        self.add(Display(tuple(line for s in kinds["dC/da"] for line in self.step_lines(s, v))))
        if kinds["da/dz"]:
            deriv = sympy.latex(act.simple_derivative)
            text = (f"The activation's derivative: $a = {act.latex}(z) = {sympy.latex(act.expr)}$ gives "
                    f"${act.latex}'(z) = {deriv}$")
            if act.output_form is not None and not act.output_form.is_Number:
                text += f", written in its output: ${act.latex}'(z) = {sympy.latex(act.output_form)}$"
            if act.note:
                text += f" ({_code_names(act.note)})"
            self.add(Para(text + ":"), Display(tuple(line for s in kinds["da/dz"] for line in self.step_lines(s, v))))
        if not act.elementwise:
            self.add(Para(f"Each output of {act.name} depends on every $z^{{({l})}}_i$ "
                          f"(${self.names[layer.a[0]]} = {self.model.latex(layer.a_def[0])}$, ...), so the error signal "
                          f"$\\delta^{{({l})}}_i$ sums over the outputs $j$; SymPy's derivative "
                          f"$\\partial a^{{({l})}}_j / \\partial z^{{({l})}}_i$ equals "
                          f"$a^{{({l})}}_j ([i = j] - a^{{({l})}}_i)$:"))
        elif l == self.L:
            self.add(Para("The error signal $\\delta = \\partial C / \\partial z$ of each output neuron:"))
        else:
            self.add(Para(f"The error signal, by the recursion $\\delta^{{({l})}}_k = \\Big(\\sum_j "
                          f"W^{{({l + 1})}}_{{j,k}}\\, \\delta^{{({l + 1})}}_j\\Big)\\, "
                          f"{act.latex}'(z^{{({l})}}_k)$:"))
        self.add(Display(tuple(line for s in kinds["delta"] for line in self.step_lines(s, v))))
        prev = "x" if l == 1 else f"a^{{({l - 1})}}"
        self.add(Para(f"Since $z^{{({l})}}_j = \\sum_k W^{{({l})}}_{{j,k}} {prev}_k + b^{{({l})}}_j$, "
                      f"$\\partial z^{{({l})}}_j / \\partial W^{{({l})}}_{{j,k}} = {prev}_k$ and "
                      f"$\\partial z^{{({l})}}_j / \\partial b^{{({l})}}_j = 1$. The gradients:"))
        self.add(Display(tuple(line for s in kinds["grad"] for line in self.step_lines(s, v))))
        if self.batch > 1:
            self.batch_table(steps)
        g, n = v.gradients, self.n
        self.add(Para("As matrices, each of its parameter's shape" + (" (means over the batch)" if self.batch > 1 else "") + ":"),
                 Display((f"\\frac{{\\partial C}}{{\\partial W^{{({l})}}}} = {n.matrix(g[f'W{l}'])}, \\qquad "
                          f"\\frac{{\\partial C}}{{\\partial b^{{({l})}}}} = {n.column(g[f'b{l}'])}",)))

    def batch_table(self, steps):
        n, v = self.n, self.e.values
        header = ("quantity",) + tuple(f"example {i + 1}" for i in range(self.batch)) + ("mean (the gradient of $C$)",)
        rows = []
        for s in steps:
            each = v.env[s.symbol]
            mean = f"${n.tex(np.mean(each))}$" if s.kind == "grad" else ""
            rows.append((f"${s.label}$",) + tuple(f"${n.tex(x)}$" for x in each) + (mean,))
        self.add(Table(header, tuple(rows)))

    # -- 4: update
    def update(self):
        u, n = self.e.update, self.n
        opt, settings = u.optimizer, u.settings
        hyper = settings.values(opt)
        self.add(Para("All parameters are updated at once (simultaneous updates): every gradient above was "
                      "computed with the parameters before the step, and no parameter's new value is used "
                      f"until the step is complete. This is step $t = {u.t}$"
                      + ("; the optimizer's state starts at zero." if opt.state else ".")))
        rules = [rule_latex(opt, target, expr) for target, expr in opt.assignments(settings)]
        self.add(Para(f"The {opt.name} rule, element by element, for a parameter $\\theta$ with gradient $g$"
                      + (f" ({_code_names(opt.note)})" if opt.note else "") + ":"),
                 Display(tuple(rules)))
        given = dict(settings.given)
        hp = ", ".join(f"${LATEX_NAMES[HYPER[k]]} = {n.tex(val)}$" + ("" if k in given else " (default)")
                       for k, val in hyper.items())
        notes = [f"Hyper-parameters: {hp}."]
        if opt.bias_corrected:
            if settings.bias_correction:
                notes.append("Bias correction is on: $\\hat m$ and $\\hat v$ divide by $1 - \\beta^t$."
                             + (" On the first step $\\hat m = g$ and $\\hat v = g^2$, so each parameter moves "
                                "by $\\eta\\, g / (|g| + \\epsilon)$: almost exactly $\\eta$, against the sign of "
                                "its gradient, whatever the gradient's size." if u.t == 1 else ""))
            else:
                notes.append("Bias correction is off (`bias_correction = false`): $\\hat m = m$, $\\hat v = v$.")
        if not settings.train_biases:
            frozen = ", ".join(f"${t.name[0]}^{{({t.name[1:]})}}$" for t in u.traces if t.frozen)
            notes.append(f"The biases are frozen (`train_biases = false`): {frozen} keep their values.")
        unused = sorted(k for k in given if k not in hyper)
        if unused:
            notes.append(f"Not used by {opt.name}: " + ", ".join(f"`{k}`" for k in unused) + ".")
        self.add(Para(" ".join(notes)))
        for block in self.update_lines(u):
            self.add(Display(block))
        self.update_table()

    def update_lines(self, u: Update) -> list[tuple[str, ...]]:
        """Each parameter's rules with its numbers plugged in: one aligned block per parameter, or,
        for a one-rule optimizer (plain SGD), one line per parameter in a single block."""
        n = self.n
        fixed = {HYPER[k]: n.par(val) for k, val in u.settings.values(u.optimizer).items()}
        fixed[sympy.Symbol("t", positive=True, integer=True)] = str(u.t)
        blocks, single = [], []
        for trace in u.traces:
            if trace.frozen:
                continue
            for index in np.ndindex(trace.theta.shape):
                label = self.param_label(trace.name, index)
                env = {"theta": trace.theta[index], "g": trace.grad[index]}
                env.update({k: val[index] for k, val in trace.state_before.items()})
                block = [f"\\text{{for }} \\theta = {label}: \\quad g &= {n.tex(trace.grad[index])}"]
                for target, rule, value in trace.assigned:
                    names = dict(fixed)
                    names.update({s: n.par(env[s.name]) for s in rule.free_symbols if s.name in env})
                    line = f"{rule_latex(u.optimizer, target, rule, names, times=True)} {n.eq(value[index])}"
                    block.append(line)
                    env[target.name] = value[index]
                blocks.append(tuple(block))
                if len(trace.assigned) == 1:
                    single.append(label + line[line.index(" &"):])
        return [tuple(single)] if single and len(single) == len(blocks) else blocks

    def param_label(self, name: str, index) -> str:
        base = f"{name[0]}^{{({name[1:]})}}"
        return base + "_{" + ",".join(str(i + 1) for i in index) + "}"

    def update_table(self):
        n, u = self.n, self.e.update
        state = u.optimizer.state
        sname = {"m": "m", "v": "v", "s": "s"}
        header = ("parameter", "before", "gradient $g$") + tuple(f"${sname[k]}$ after" for k in state) \
            + ("after", "change")
        rows = []
        for trace in u.traces:
            for index in np.ndindex(trace.theta.shape):
                before, after = trace.theta[index], trace.theta_after[index]
                rows.append((f"${self.param_label(trace.name, index)}$", f"${n.tex(before)}$",
                             f"${n.tex(trace.grad[index])}$")
                            + tuple(f"${n.tex(trace.state_after[k][index])}$" for k in state)
                            + (f"${n.tex(after)}$", "frozen" if trace.frozen else f"${n.tex(after - before)}$"))
        self.add(Para("Every parameter before and after the step:"), Table(header, tuple(rows)))

    # -- 5: the fall
    def fall(self):
        n = self.n
        old, new = float(self.e.values.loss), float(self.e.after.loss)
        drop = old - new
        verb = "fell" if drop > 0 else "rose" if drop < 0 else "did not change"
        rel = abs(drop) / old * 100 if old else float("nan")
        self.add(Para(f"The loss {verb}: from $C = {n.tex(old)}$ to $C_{{\\text{{new}}}} = {n.tex(new)}$"
                      + (f", by $\\lvert C - C_{{\\text{{new}}}} \\rvert = {n.tex(abs(drop))}$ "
                         f"(${n.tex(rel)}\\%$ of $C$)." if drop else ".")))

    # -- the same gradients with plain SGD
    def compare(self):
        n, e = self.n, self.e
        plain, loss = e.comparison
        mine = e.update.optimizer.name
        rule = [rule_latex(plain.optimizer, t, x) for t, x in plain.optimizer.assignments(plain.settings)]
        lr = plain.settings.values(plain.optimizer)["learning_rate"]
        self.add(Para(f"The same gradients with plain gradient descent and $\\eta = {n.tex(lr)}$"
                      + (" (the biases frozen)" if not plain.settings.train_biases else "") + ":"),
                 Display(tuple(rule)))
        for block in self.update_lines(plain):
            self.add(Display(block))
        rows = []
        for mine_trace, sgd_trace in zip(e.update.traces, plain.traces):
            for index in np.ndindex(mine_trace.theta.shape):
                rows.append((f"${self.param_label(mine_trace.name, index)}$", f"${n.tex(mine_trace.theta[index])}$",
                             f"${n.tex(sgd_trace.theta_after[index])}$", f"${n.tex(mine_trace.theta_after[index])}$"))
        self.add(Table(("parameter", "before", "after sgd", f"after {mine}"), tuple(rows)))
        old, new = float(e.values.loss), float(e.after.loss)
        self.add(Para(f"After the sgd step the loss would be ${n.tex(loss)}$ (a change of ${n.tex(loss - old)}$); "
                      f"after the {mine} step it is ${n.tex(new)}$ (a change of ${n.tex(new - old)}$)."))

    # -- 6: training
    def training(self):
        e, n = self.e, self.n
        max_iters, loss_below, min_delta = e.conditions
        conds = [f"at most {e.limit} step{'s' if e.limit > 1 else ''}"]
        if loss_below is not None:
            conds.append(f"until the loss is below ${n.tex(loss_below)}$")
        if min_delta is not None:
            conds.append(f"until the loss changes by less than ${n.tex(min_delta)}$ in one step")
        self.add(Para(f"The same step repeated with {e.update.optimizer.name} (its state carried from step to "
                      "step), stopping by the three conditions of a training loop: a maximum number of "
                      "steps, a loss below a threshold, a change of loss below a threshold. Here: "
                      + "; ".join(conds) + "."))
        rows = tuple((str(it.t), f"${n.tex(it.loss_before)}$", f"${n.tex(it.loss_after)}$",
                      f"${n.tex(it.loss_after - it.loss_before)}$",
                      f"${n.tex((it.loss_after - it.loss_before) / it.loss_before * 100 if it.loss_before else 0)}\\%$")
                     for it in e.history)
        self.add(Table(("step $t$", "loss before", "loss after", "change", "relative change"), rows))
        self.add(Para(f"Stopped: {e.stop}."))
        lines = []
        for name, value in e.final.items():
            sym = f"{name[0]}^{{({name[1:]})}}"
            lines.append(f"{sym} &= {n.matrix(value) if name[0] == 'W' else n.column(value)}")
        self.add(Para(f"The parameters after step {e.history[-1].t}:"), Display(tuple(lines)))
