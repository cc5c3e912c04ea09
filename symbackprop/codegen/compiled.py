"""Compiled functions generated from the matrix-form derivation, printed for NumPy or PyTorch.

:func:`array_program` turns a :class:`~symbackprop.derive.matrix.MatrixDerivation` into a
:class:`Program`: the ordered statements of the forward pass, the loss and the backward pass on
whole arrays, one example per row (so z = W a + b of the math is ``z1 = X @ W1.T + b1``). Each
statement is a :class:`Statement` — its name after the math (``z1``, ``a1``, ``delta2``, ``dW2``,
``db2``), its SymPy expression over array symbols and the LaTeX of the math it computes. The
backward pass reuses the forward values; the batch mean's 1/N is folded into the output δ.

Printing is a pass of its own: :func:`print_program` (``program``, ``backend``) walks the
statements once with one backend's printer (:mod:`symbackprop.codegen.printing`'s ``StablePrinter`` and
:mod:`symbackprop.codegen.inplace`'s ``InplaceWriter`` for NumPy, ``TorchPrinter`` and ``TorchInplaceWriter``
for PyTorch, the stable rewrites of :mod:`symbackprop.codegen.rewrites` applied before either) and fills in each statement's code, the workspace buffers and the
source of the layer kernels it calls (each kernel has a torch twin of the same name and signature).
The derivation is done once; a backend is a printer and a template set.

The data passed to the templates is small:

* ``Program``: ``sizes``, ``params`` (name → shape, in order W1, b1, W2, ...), ``forward``,
  ``loss`` and ``loss_and_gradients`` (the statements each function runs, forward ones included,
  in order; the last has each forward statement once, for both the loss and the gradients, and
  ``gradients`` is ``loss_and_gradients`` without the loss), ``output`` (the name of the output activations), ``cost`` (the name of the
  batch-mean loss), ``grads`` (parameter name → statement name, ``"W1" -> "dW1"``, in parameter
  order), ``notes`` (conventions to state in the generated file); once printed, ``backend``,
  ``buffers`` (workspace array → its shape as code, ``"(N, 128)"``) and ``kernels`` (their source).
* ``Statement``: ``name``, ``expr`` (SymPy), ``latex``, ``section`` (the heading it comes under:
  forward pass, loss, backward pass), ``shape``; once printed, ``code`` (the allocating
  expression) and, for (N, n) arrays and the gradients, ``inplace``: the same computation as lines
  writing into the preallocated ``name`` with ``out=`` (measured: the allocating form of a
  784-256-256-256-10 backward pass took ~1,800 page faults a call and ran 1.5× slower than the
  hand-written code).
* The template context: ``template_context(program, dtype, backend)`` = ``{"program": ... printed,
  "dtype": "float64", "backend": "numpy"}``.

``templates/functions.py.jinja`` renders to module-level ``forward(params, X)``,
``loss(params, X, Y)``, ``gradients(params, X, Y)``, ``loss_and_gradients(params, X, Y,
out=None)`` (one pass; the gradients written into ``out``'s arrays when given), and, in evaluation
mode, ``predict(params, state, X)`` and ``evaluate(params, state, X, Y)`` (the loss of predict's
outputs, and the outputs: ``Program.evaluate`` is predict's statements, then the loss's), needing only the
including module's ``import math``, ``import threading`` and ``import numpy as np``;
``functions_torch.py.jinja`` renders the same functions on tensors (also ``import torch`` and
``torch.nn.functional as F``). ``templates/compiled.py.jinja`` (``compiled_torch.py.jinja``) wraps
it in a module with its header; the trainers (``templates/trainer*.jinja``) include the same
template with the same context and their ``step`` calls ``loss_and_gradients``, so the compiled
functions and the trainers run the same code.

:func:`compile_network` renders that module and executes *our own generated text* (user formulas
only reach it as SymPy-printed code) into :class:`CompiledNetwork`.

>>> import numpy as np
>>> from symbackprop.spec.network import Network
>>> net = Network.from_dict({"network": {"layers": [3, 2, 1],
...     "activations": ["sigmoid", "sigmoid"], "loss": "binary_cross_entropy"}})
>>> f = compile_network(net)
>>> params = {"W1": np.full((2, 3), 0.1), "b1": np.zeros(2), "W2": np.ones((1, 2)), "b2": np.zeros(1)}
>>> X, Y = np.ones((4, 3)), np.ones((4, 1))
>>> f.gradients(params, X, Y)["W2"].shape
(1, 2)
>>> [s.name for s in array_program(net).loss_and_gradients]
['z1', 'a1', 'z2', 'a2', 'C', 'delta2', 'dW2', 'db2', 'delta1', 'dW1', 'db1']
"""
import functools
import hashlib
import linecache
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import jinja2
import numpy as np
import sympy

from ..entries.arrayops import Clip, Kernel, Softmax, Total
from ..entries.layers import kernel_sources
from ..entries.layers.base import param_tex
from ..entries.layers.targets import read_targets   # class-index targets: one-hot rows
from ..derive.matrix import MatrixDerivation, derive_matrix, softmax_jvp
from .inplace import inplace_code
from .printing import BACKENDS, code
from ..entries.registry import a as A_, y as Y_, z as Z_
from .rewrites import log_domain, stabilize
from ..spec.network import Network

_HERE = Path(__file__).resolve().parent
# templates/ beside the package in a checkout, symbackprop/templates once installed (pyproject maps it)
TEMPLATES = next((d for d in (_HERE.parents[1] / "templates", _HERE.parent / "templates") if (d / "functions.py.jinja").exists()),
                 _HERE.parent / "templates")
DTYPES = {"float64": np.float64, "float32": np.float32}


@dataclass(frozen=True)
class Statement:
    """``name = expr``: one array computed from earlier ones. ``shape`` is its shape, ``"N"`` for
    the batch size (``()`` for the loss); ``output``: a gradient, written into an array the caller
    passes. ``expr`` is what the derivation gives; :func:`print_program` fills in how a backend
    writes it: ``code``, the plain, allocating expression, and, for (N, n) arrays and the
    gradients, ``inplace``, the same computation as lines writing into a preallocated ``name``
    (``out=``), with scratch arrays ``_ws["<name>_s<k>"]``."""
    name: str
    expr: sympy.Expr
    latex: str
    shape: tuple = ()
    section: str = "forward pass"  # or "loss", "backward pass": the heading it comes under
    output: bool = False
    code: str = ""
    inplace: tuple[str, ...] = ()

    @property
    def has_inplace(self) -> bool:
        """Whether it is written into an array of its own (a workspace buffer or the caller's)."""
        return self.shape[:1] == ("N",) or self.output


@dataclass(frozen=True)
class Program:
    input: tuple[int, ...]
    n_out: int
    params: dict[str, tuple[int, ...]]
    forward: tuple[Statement, ...]
    loss: tuple[Statement, ...]
    loss_and_gradients: tuple[Statement, ...]  # both in one pass: each forward statement once
    predict: tuple[Statement, ...]             # evaluation mode: running statistics, no dropout
    evaluate: tuple[Statement, ...]            # predict's statements, then the loss of its outputs
    output: str
    predict_output: str
    cost: str
    grads: dict[str, str]
    notes: tuple[str, ...]
    masks: dict[str, tuple]      # dropout keep-masks: name -> (shape of one example, rate)
    stats: tuple                 # (name, shape as code, values per channel as code) of batch statistics
    running: tuple[str, ...]     # the running statistics predict reads
    statements: tuple[Statement, ...] = ()  # every statement built, in order: what printing walks
    min_batch: int = 1           # batch norm needs 2 values per channel
    out_shape: tuple = ()        # one example's output: (n_out,), or (T, n_out) for a sequence; targets: the shapes
    targets: tuple = ()          # one example's Y may have (the output's; for class indices, less its last axis)
    ids: bool = False            # X holds integer ids (an embedding reads them); steps: some arrays are sequences
    steps: bool = False          # (N, T, D), never stored batch-last as images are
    # filled in by print_program, for one backend:
    backend: str = ""            # "numpy" or "torch"; "" while the statements hold expressions only
    buffers: dict = field(default_factory=dict)  # workspace array name -> its shape as code, e.g. "(N, 128)"
    kernels: tuple[str, ...] = ()  # the source of every layer kernel the statements call, in that backend
    batch_last: tuple[str, ...] = ()  # buffers of images (N, C, *S) stored with the examples innermost (NumPy)

    @property
    def sizes(self) -> tuple[int, ...]:
        """(inputs, outputs) flattened: what the header comments and messages say."""
        return (math.prod(self.input), self.n_out)


def _sym(name: str) -> sympy.Symbol:
    return sympy.Symbol(name, real=True)


N = sympy.Symbol("N", positive=True, integer=True)  # the batch size, X.shape[0]
X, Y = _sym("X"), _sym("Y")
_LATEX = {X: "X", Y: "Y", N: "N"}


def _tex(expr, names) -> str:
    return sympy.latex(expr, symbol_names=names)


def _shape_code(shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


class _Builder:
    """Collects statements, splitting out common subexpressions as ``<name>_<i>``. Layer entries
    add theirs through
    :meth:`add`, :meth:`grad`, :meth:`stat` and :meth:`running`."""

    def __init__(self, names, out_shape):
        self.names = names
        self.out_shape = tuple(out_shape)
        self.statements: list[Statement] = []
        self.section = "forward pass"
        self.grads: dict[str, str] = {}
        self.stats: list[tuple] = []
        self.reads: list[str] = []
        self.math: dict[sympy.Symbol, str] = {X: "x"}

    def add(self, name: str, expr: sympy.Expr, latex: str, shape: tuple | None, output: bool = False) -> sympy.Symbol:
        """``name = expr``; ``shape`` its shape (``"N"`` for the batch size; None: no workspace
        buffer); ``output``: a gradient, which also gets an in-place form (into an array the caller
        passes, see ``loss_and_gradients``'s ``out``)."""
        expr = stabilize(expr)
        if isinstance(expr, Kernel) and expr.view:
            shape = None                  # a view of its argument: no array of its own
        temps, (expr,) = sympy.cse(expr, symbols=(_sym(f"{name}_{i}") for i in range(1000)))
        temp_shape = shape if shape and shape[:1] == ("N",) else ("N", *self.out_shape) if shape == () else None
        for sym, sub in temps:
            self.names[sym] = sym.name.replace("_", r"\_")
            self._statement(sym.name, sub, f"{self.names[sym]} = {_tex(sub, self.names)}", temp_shape)
        symbol = _sym(name)
        self.names[symbol] = self.math[symbol] = latex.split("=")[0].strip() if "=" in latex else name
        self._statement(name, expr, latex, shape, output)
        return symbol

    def grad(self, param: str, expr, latex: str):
        """The gradient of parameter ``param`` (``d<param>``), written into the caller's array."""
        self.grads[param] = f"d{param}"
        return self.add(f"d{param}", expr, latex, self.params[param], output=True)

    def stat(self, name: str, symbol, shape, per_example: int, momentum: float, unbiased: bool = False):
        """A batch statistic (batch norm's mean and variance, of ``shape``, each over
        ``per_example`` values of every example) that a trainer folds into its running statistic
        ``name`` with ``momentum``; ``unbiased``: scaled by n/(n − 1) first."""
        self.stats.append((name, _shape_code(shape), symbol.name, unbiased, per_example, momentum))

    def running(self, name: str, tex: str) -> sympy.Symbol:
        """The running statistic ``name`` (``predict`` reads it from the trainer's state)."""
        symbol = _sym(f"running_{name}")
        self.names[symbol] = self.math[symbol] = rf"\bar{{{tex}}}"
        self.reads.append(name)
        return symbol

    def tex(self, symbol) -> str:
        """The math name of an array symbol: ``x``, ``a^{(2)}``, ``\\delta^{(3)}``."""
        return self.math.get(symbol, self.names.get(symbol, str(symbol)))

    def symbol(self, name: str) -> sympy.Symbol:
        return _sym(name)

    def _statement(self, name, expr, latex, shape, output=False):
        latex = " ".join(latex.split())  # one comment line, whatever the printer gave
        self.statements.append(Statement(name, expr, latex, shape or (), self.section, output))


_STAT_TEX = {"mean": r"\mu", "var": r"\mathrm{var}"}


def array_program(network: Network, backend: str | None = "numpy") -> Program:
    """The forward, loss and backward statements of ``network`` on arrays, one example a row,
    printed for ``backend`` ("numpy" or "torch"; None: the expressions alone)."""
    program = _program(network, derive_matrix(network))
    return program if backend is None else print_program(program, backend)


def _program(network: Network, md: MatrixDerivation) -> Program:
    names = dict(_LATEX)
    graph, L = network.graph, network.depth
    b = _Builder(names, network.output_shape)
    b.params = network.parameter_shapes()
    rows = lambda layer: ("N", *layer.shape)
    P, D = {}, {}
    for layer in graph:
        P[layer.index] = {name[: -len(str(layer.index))]: _sym(name) for name in layer.params}
        D[layer.index] = {name[: -len(str(layer.index))]: _sym(name) for name in layer.data}
        for name in (*layer.params, *layer.data):
            names[_sym(name)] = b.math[_sym(name)] = param_tex(name)
    forms = {form.index: form for form in md.layers}
    notes = []

    def forward(mode):
        syms = {0: X}
        for layer in graph:
            i, form = layer.index, forms[layer.index]
            ins = [syms[s] for s in layer.sources]
            expr, _ = layer.kind.array_forward(layer, b, ins, P[i], D[i], mode)
            ins_tex = [b.tex(s) for s in ins]
            if layer.has_z:
                zi = b.add(f"z{i}", expr, layer.kind.latex_forward(layer, f"z^{{({i})}}", ins_tex), rows(layer))
                value = form.expr.xreplace({Z_: zi}) if form.elementwise else Softmax(zi)
                syms[i] = b.add(f"a{i}", value, rf"a^{{({i})}} = {form.tex}\left(z^{{({i})}}\right)", rows(layer))
            elif isinstance(expr, sympy.Symbol):
                syms[i] = expr             # the identity (dropout when predicting)
            else:
                syms[i] = b.add(f"a{i}", expr, layer.kind.latex_forward(layer, f"a^{{({i})}}", ins_tex), rows(layer))
        return syms

    syms = forward("train")
    aL, last, form_L = syms[L], graph[-1], forms[L]
    zL = _sym(f"z{L}")
    # loss: the batch mean of C; fused pairs take it from z (stable: log σ -> -softplus, log softmax -> z - lse)
    b.section = "loss"
    loss_start = len(b.statements)
    term = md.loss_term
    Yv, targets = read_targets(network, b, Y)       # class indices -> one-hot rows, where the network takes them
    if md.output.kind == "fused":
        out_value = form_L.expr.xreplace({Z_: zL}) if form_L.elementwise else Softmax(zL)
        per_output = term.xreplace({A_: out_value, Y_: Yv})
        notes.append(f"{form_L.activation} + {md.loss}: the loss is computed from z{L} (stable form)")
    else:
        per_output = term.xreplace({A_: log_domain(term, A_), Y_: Yv}).xreplace({A_: aL})
    total = md.loss_scale * Total(per_output)
    b.add("C", total / N, rf"C = \frac{{1}}{{N}} {_tex(stabilize(total), names)}", ())
    loss_statements = b.statements[loss_start:]
    if per_output.has(Clip):
        notes.append(f"{md.loss}: outputs are clipped to [EPS, 1 - EPS] inside its logs (and its derivative)")
    # backward: output delta, with the batch mean's 1/N folded in
    b.section = "backward pass, reusing the forward values"
    out = md.output
    if out.kind == "fused":
        notes.append(f"delta{L} = {sympy.sstr(out.delta)} (fused)")
        delta = b.add(f"delta{L}", out.delta.xreplace({A_: aL, Y_: Yv}) / N,
                      rf"\delta^{{({L})}} = \frac{{1}}{{N}}\left({_tex(out.delta, {A_: f'a^{{({L})}}', Y_: 'y'})}\right)", rows(last))
    else:
        guard = log_domain(term, A_)
        g = out.loss_gradient.xreplace({A_: guard}).xreplace({A_: aL, Y_: Yv})
        if not last.has_z:
            delta = b.add(f"da{L}", g / N, rf"\frac{{\partial C}}{{\partial a^{{({L})}}}} = \frac{{1}}{{N}} \nabla_a C", rows(last))
        elif out.kind == "elementwise":
            factor = form_L.factor.xreplace({A_: aL, Z_: zL})
            delta = b.add(f"delta{L}", g * factor / N,
                          rf"\delta^{{({L})}} = \frac{{1}}{{N}} \nabla_a C \odot {form_L.tex}'\left(z^{{({L})}}\right)", rows(last))
        else:
            gL = b.add(f"g{L}", g / N, rf"g^{{({L})}} = \frac{{1}}{{N}} \nabla_a C", rows(last))
            delta = b.add(f"delta{L}", softmax_jvp(aL, gL),
                          rf"\delta^{{({L})}} = a^{{({L})}} \odot \left(g^{{({L})}} - \textstyle\sum_j a^{{({L})}}_j g^{{({L})}}_j\right)", rows(last))
    incoming: dict[int, list] = {}
    for layer in reversed(graph):
        i, form = layer.index, forms[layer.index]
        if i != L:
            parts = incoming.pop(i)
            total_in = sympy.Add(*[e for e, _ in parts])
            tex = " + ".join(t for _, t in parts)
            if layer.has_z:
                factor = form.factor.xreplace({A_: syms[i], Z_: _sym(f"z{i}")})
                delta = b.add(f"delta{i}", total_in * factor,
                              rf"\delta^{{({i})}} = {tex} \odot {form.tex}'\left(z^{{({i})}}\right)", rows(layer))
            elif len(parts) == 1 and isinstance(total_in, sympy.Symbol):
                delta = total_in
            else:
                delta = b.add(f"da{i}", total_in, rf"\frac{{\partial C}}{{\partial a^{{({i})}}}} = {tex}", rows(layer))
        ins = [syms[s] for s in layer.sources]
        need = tuple(s != 0 for s in layer.sources)
        for s, part in zip(layer.sources, layer.kind.array_backward(layer, b, delta, ins, P[i], D[i], need)):
            if part is not None:
                incoming.setdefault(s, []).append(part)
    statements = list(b.statements)
    # evaluation mode (predict): the forward pass again, batch norm from its running statistics, no dropout
    b.section = "forward pass, evaluation mode"
    start = len(b.statements)
    psyms = forward("eval")
    predict = b.statements[start:]
    # the loss of predict's outputs (a validation loss): the loss statements again, reading the
    # evaluation-mode arrays, which have the training-mode names but for a dropout output layer
    b.section = "loss, evaluation mode"
    for s in loss_statements:
        expr = s.expr.xreplace({aL: psyms[L]})
        if expr == s.expr:
            b.statements.append(replace(s, section=b.section))
        else:
            b._statement(s.name, expr, s.latex, s.shape)
    evaluate = predict + b.statements[len(b.statements) - len(loss_statements):]
    params = network.parameter_shapes()
    grads = {name: b.grads[name] for name in params}
    masks = {name: (shape, layer.opt["rate"]) for layer in graph for name, shape in layer.data.items()}
    stats = tuple(b.stats)
    return Program(
        input=network.input, n_out=network.output_size, params=params,
        forward=_needed(statements, {aL.name}),
        loss=_needed(statements, {"C"}),
        loss_and_gradients=_needed(statements, {"C", *grads.values(), *(stat[2] for stat in b.stats)}),
        predict=_needed(predict, {psyms[L].name}), evaluate=_needed(evaluate, {"C", psyms[L].name}),
        output=aL.name, predict_output=psyms[L].name,
        cost="C", grads=grads, notes=tuple(notes), masks=masks, stats=stats,
        running=tuple(dict.fromkeys(b.reads)), statements=tuple(b.statements),
        min_batch=2 if any(layer.kind.couples_batch for layer in graph) else 1,
        out_shape=network.output_shape, targets=targets, ids=network.reads_ids,
        steps=any(layer.sequence or layer.kind.sequence_input for layer in graph))


def _needed(statements: list[Statement], wanted: set[str]) -> tuple[Statement, ...]:
    """The statements that ``wanted`` depend on, in program order."""
    keep, need = [], set(wanted)
    for s in reversed(statements):
        if s.name in need:
            keep.append(s)
            need |= {sym.name for sym in s.expr.free_symbols}
    return tuple(reversed(keep))


# ---------------------------------------------------------------------------------------------
# Printing: one pass over the statements, with one backend's printer


def print_program(program: Program, backend: str) -> Program:
    """``program`` with every statement printed for ``backend`` ("numpy" or "torch"): each
    statement's ``code`` and ``inplace`` lines, the workspace ``buffers`` those lines write to (its
    own array, then its scratch arrays, in statement order) and the source of the ``kernels`` they
    call, that backend's. The statements' expressions are the same for every backend: a second
    backend is a second printer, not a second derivation.

    >>> net = Network.from_dict({"network": {"layers": [3, 2], "activations": ["relu"], "loss": "mse"}})
    >>> program = array_program(net, backend=None)              # the expressions alone
    >>> [print_program(program, b).forward[0].inplace for b in ("numpy", "torch")]
    [('np.dot(X, W1.T, out=z1)', 'np.add(z1, b1, out=z1)'), ('torch.addmm(b1, X, W1.T, out=z1)',)]
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")
    buffers: dict[str, str] = {}
    printed = {id(s): _print_statement(s, backend, buffers, program.out_shape) for s in program.statements}
    again = lambda statements: tuple(printed[id(s)] for s in statements)
    names = {e.kernel for s in program.statements for e in sympy.preorder_traversal(s.expr) if isinstance(e, Kernel)}
    # NumPy: an image array (N, C, *S) is stored as (C, *S, N), the examples innermost, so that the
    # layer kernels copy and add long runs (each kernel offset's window: S_out[-1]·N values a row)
    images = {s.name for s in program.statements if s.shape[:1] == ("N",) and len(s.shape) >= 3 and not program.steps}
    batch_last = tuple(name for name in buffers if backend == "numpy" and (name in images or name.rsplit("_s", 1)[0] in images))
    return replace(program, batch_last=batch_last, forward=again(program.forward), loss=again(program.loss),
                   loss_and_gradients=again(program.loss_and_gradients), predict=again(program.predict),
                   evaluate=again(program.evaluate),
                   statements=again(program.statements), backend=backend, buffers=buffers,
                   kernels=tuple(kernel_sources(names, backend)))


def _print_statement(s: Statement, backend: str, buffers: dict, out_shape: tuple) -> Statement:
    lines = ()
    scalar = s.shape == () and not s.output      # the loss: a sum over arrays of the output's shape
    if s.has_inplace or scalar:
        text = _shape_code(("N", *out_shape) if scalar else s.shape)
        if not s.output and not scalar:
            buffers[s.name] = text
        count = iter(range(1000))

        def scratch():
            key = f"{s.name}_s{next(count)}"
            buffers[key] = text
            return f'_ws["{key}"]'
        lines = tuple(inplace_code(s.expr, s.name, scratch, backend, scalar=scalar))
    return replace(s, code=code(s.expr, backend), inplace=lines)


# ---------------------------------------------------------------------------------------------
# Rendering and compiling


@functools.lru_cache(maxsize=None)
def environment() -> jinja2.Environment:
    """The strict Jinja2 environment of every template in ``templates/``: an undefined name is an
    error, blocks leave no blank lines."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
    env.filters["prefix"] = lambda name, prefix: f"{prefix}{name}"
    return env


def _dtype_name(dtype) -> str:
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in DTYPES:
        raise ValueError(f"dtype: expected float64 or float32, got {dtype!r}")
    return name


def template_context(program: Program, dtype=np.float64, backend: str = "numpy") -> dict:
    """The context of ``functions.py.jinja`` (``functions_torch.py.jinja`` for torch):
    ``{"program": program printed for backend, "dtype": "float64", "backend": "numpy"}``."""
    if program.backend != backend:
        program = print_program(program, backend)
    return {"program": program, "dtype": _dtype_name(dtype), "backend": backend}


COMPILED = {"numpy": "compiled.py.jinja", "torch": "compiled_torch.py.jinja"}


def render_source(program: Program, dtype=np.float64, backend: str = "numpy") -> str:
    """The Python module of the compiled functions (``templates/compiled.py.jinja``, or
    ``compiled_torch.py.jinja``: the same statements printed as PyTorch tensor code)."""
    context = template_context(program, dtype, backend)
    return environment().get_template(COMPILED[backend]).render(**context)


@dataclass(frozen=True)
class CompiledNetwork:
    """``forward(params, X)`` → the output activations (N, n_out); ``loss(params, X, Y)`` → the
    batch-mean loss (a NumPy scalar of ``dtype``); ``gradients(params, X, Y)`` → ``{"W1": ...,
    "b1": ...}``, each in its parameter's shape, of the batch-mean loss;
    ``loss_and_gradients(params, X, Y, out=None)`` → both in one pass, the gradients written into
    ``out``'s arrays when it is given (what a training step does). ``params`` maps ``W<l>``
    (n_l, n_{l-1}) and ``b<l>`` (n_l,) to arrays of ``dtype``; X is (N, n_in) and Y (N, n_out), of
    ``dtype`` too. Anything else raises a ValueError naming the argument."""
    forward: Callable
    loss: Callable
    gradients: Callable
    loss_and_gradients: Callable
    predict: Callable
    dtype: type
    program: Program
    source: str
    namespace: dict


@functools.lru_cache(maxsize=256)
def _compiled(key, dtype_name: str, backend: str = "numpy") -> CompiledNetwork:
    program = array_program(Network(*key[:3], ignore_index=key[3]), backend)
    source = render_source(program, dtype_name, backend)
    digest = hashlib.sha1(source.encode()).hexdigest()[:12]
    filename = f"<symbackprop-compiled-{digest}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {"__name__": f"symbackprop_compiled_{digest}"}
    exec(compile(source, filename, "exec"), namespace)  # our own generated text only
    return CompiledNetwork(namespace["forward"], namespace["loss"], namespace["gradients"],
                           namespace["loss_and_gradients"], namespace["predict"], DTYPES[dtype_name], program,
                           source, namespace)


def compile_network(network: Network, dtype=np.float64, backend: str = "numpy") -> CompiledNetwork:
    """Compiled ``forward``, ``loss`` and ``gradients`` of ``network`` for arrays of ``dtype``
    (float64 or float32; see :class:`CompiledNetwork`). With a softmax output and cross-entropy the
    gradients use the fused δ = a − y, which holds when each row of Y sums to 1. ``backend="torch"``
    compiles the same statements printed as PyTorch code (its functions take and return tensors;
    NumPy arrays given to them are converted), which imports torch.

    >>> import numpy as np
    >>> from symbackprop.spec.network import Network
    >>> net = Network.from_dict({"network": {"layers": [2, 1], "activations": ["identity"],
    ...     "loss": "squared_error"}})
    >>> f = compile_network(net)
    >>> p = {"W1": np.array([[2.0, 0.0]]), "b1": np.array([0.5])}
    >>> X, Y = np.array([[3.0, 1.0]]), np.array([[1.0]])
    >>> float(f.loss(p, X, Y)), f.gradients(p, X, Y)["W1"].tolist()
    (30.25, [[33.0, 11.0]])
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")
    return _compiled((network.input, network.graph, network.loss, network.ignore_index), _dtype_name(dtype), backend)
