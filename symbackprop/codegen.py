"""Compiled NumPy functions generated from the matrix-form derivation.

:func:`array_program` turns a :class:`~symbackprop.matrix.MatrixDerivation` into a
:class:`Program`: the ordered statements of the forward pass, the loss and the backward pass on
whole arrays, one example per row (so z = W a + b of the math is ``z1 = X @ W1.T + b1``). Each
statement is a :class:`Statement` — its name after the math (``z1``, ``a1``, ``delta2``, ``dW2``,
``db2``), its SymPy expression over array symbols, its printed NumPy code
(:mod:`symbackprop.printing`, stable rewrites applied) and the LaTeX of the math it computes. The
backward pass reuses the forward values; the batch mean's 1/N is folded into the output δ.

The data passed to the templates is small:

* ``Program``: ``sizes``, ``params`` (name → shape, in order W1, b1, W2, ...), ``forward``,
  ``loss`` and ``loss_and_gradients`` (the statements each function runs, forward ones included,
  in order; the last has each forward statement once, for both the loss and the gradients, and
  ``gradients`` is ``loss_and_gradients`` without the loss), ``output`` (the name of the output activations), ``cost`` (the name of the
  batch-mean loss), ``grads`` (parameter name → statement name, ``"W1" -> "dW1"``, in parameter
  order), ``notes`` (conventions to state in the generated file), ``buffers`` (workspace array →
  its shape as code, ``"(N, 128)"``).
* ``Statement``: ``name``, ``expr`` (SymPy), ``code`` (the allocating NumPy expression), ``latex``,
  ``section`` (the heading it comes under: forward pass, loss, backward pass), ``shape`` and, for
  (N, n) arrays and the gradients, ``inplace``: the same computation as lines writing into the
  preallocated ``name`` with ``out=`` (measured: the allocating form of a 784-256-256-256-10
  backward pass took ~1,800 page faults a call and ran 1.5× slower than the hand-written code).
* The template context: ``template_context(program, dtype)`` = ``{"program": ..., "dtype": "float64"}``.

``templates/functions.py.jinja`` renders to module-level ``forward(params, X)``,
``loss(params, X, Y)``, ``gradients(params, X, Y)`` and ``loss_and_gradients(params, X, Y,
out=None)`` (one pass; the gradients written into ``out``'s arrays when given), needing only the
including module's ``import math``, ``import threading`` and ``import numpy as np``.
``templates/compiled.py.jinja`` wraps it in a module with its header; the trainers
(``templates/trainer*.jinja``) include the same template with the same context and their
``step`` calls ``loss_and_gradients``, so the compiled functions and the trainers run the same code.

:func:`compile_network` renders that module and executes *our own generated text* (user formulas
only reach it as SymPy-printed code) into :class:`CompiledNetwork`.

>>> import numpy as np
>>> from symbackprop.spec import Network
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
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import jinja2
import numpy as np
import sympy

from .matrix import MatrixDerivation, derive_matrix, softmax_jvp
from .arrayops import Clip, ColSum, Dot, Softmax, T, Total
from .printing import code, inplace_code, log_domain, stabilize
from .registry import a as A_, y as Y_, z as Z_
from .spec import Network

_HERE = Path(__file__).resolve().parent
# templates/ beside the package in a checkout, symbackprop/templates once installed (pyproject maps it)
TEMPLATES = next((d for d in (_HERE.parent / "templates", _HERE / "templates") if (d / "functions.py.jinja").exists()),
                 _HERE / "templates")
DTYPES = {"float64": np.float64, "float32": np.float32}


@dataclass(frozen=True)
class Statement:
    """``name = code``: one array computed from earlier ones. ``shape`` is its shape, ``"N"`` for
    the batch size (``()`` for the loss). ``inplace``, for the (N, n) arrays, are the same
    computation as lines writing into a preallocated ``name`` (``out=``), with scratch arrays
    ``_ws["<name>_s<k>"]``; ``code`` is the plain, allocating expression."""
    name: str
    expr: sympy.Expr
    code: str
    latex: str
    shape: tuple = ()
    inplace: tuple[str, ...] = ()
    section: str = "forward pass"  # or "loss", "backward pass": the heading it comes under


@dataclass(frozen=True)
class Program:
    sizes: tuple[int, ...]
    params: dict[str, tuple[int, ...]]
    forward: tuple[Statement, ...]
    loss: tuple[Statement, ...]
    loss_and_gradients: tuple[Statement, ...]  # both in one pass: each forward statement once
    output: str
    cost: str
    grads: dict[str, str]
    notes: tuple[str, ...]
    buffers: dict[str, str]      # workspace array name -> its shape as code, e.g. "(N, 128)"


def _sym(name: str) -> sympy.Symbol:
    return sympy.Symbol(name, real=True)


N = sympy.Symbol("N", positive=True, integer=True)  # the batch size, X.shape[0]
X, Y = _sym("X"), _sym("Y")
_LATEX = {X: "X", Y: "Y", N: "N"}


def _tex(expr, names) -> str:
    return sympy.latex(expr, symbol_names=names)


class _Builder:
    """Collects statements, splitting out common subexpressions as ``<name>_<i>``, and the
    workspace buffers their in-place forms write to."""

    def __init__(self, names, n_out):
        self.names = names
        self.n_out = n_out
        self.statements: list[Statement] = []
        self.buffers: dict[str, str] = {}
        self.section = "forward pass"

    def add(self, name: str, expr: sympy.Expr, latex: str, shape: tuple, output: bool = False) -> sympy.Symbol:
        """``name = expr``; ``output``: a gradient, which also gets an in-place form (into an array
        the caller passes, see ``loss_and_gradients``'s ``out``)."""
        expr = stabilize(expr)
        temps, (expr,) = sympy.cse(expr, symbols=(_sym(f"{name}_{i}") for i in range(1000)))
        temp_shape = shape if shape[:1] == ("N",) else ("N", self.n_out)
        for sym, sub in temps:
            self.names[sym] = sym.name.replace("_", r"\_")
            self._statement(sym.name, sub, f"{self.names[sym]} = {_tex(sub, self.names)}", temp_shape)
        symbol = _sym(name)
        self.names[symbol] = latex.split("=")[0].strip() if "=" in latex else name
        self._statement(name, expr, latex, shape, output)
        return symbol

    def _statement(self, name, expr, latex, shape, output=False):
        lines = ()
        if shape[:1] == ("N",) or output:
            text = "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"
            if not output:
                self.buffers[name] = text
            count = iter(range(1000))

            def scratch():
                key = f"{name}_s{next(count)}"
                self.buffers[key] = text
                return f'_ws["{key}"]'
            lines = tuple(inplace_code(expr, name, scratch))
        latex = " ".join(latex.split())  # one comment line, whatever the printer gave
        self.statements.append(Statement(name, expr, code(expr), latex, shape, lines, self.section))


def array_program(network: Network | MatrixDerivation) -> Program:
    """The forward, loss and backward statements of ``network`` on arrays, one example a row."""
    md = network if isinstance(network, MatrixDerivation) else derive_matrix(network)
    return _program(md)


def _program(md: MatrixDerivation) -> Program:
    names = dict(_LATEX)
    L = md.depth
    b = _Builder(names, md.sizes[-1])
    rows = lambda l: ("N", md.sizes[l])
    act_syms, z_syms = [X], [None]
    W = {l: _sym(f"W{l}") for l in range(1, L + 1)}
    B = {l: _sym(f"b{l}") for l in range(1, L + 1)}
    for l in range(1, L + 1):
        names[W[l]], names[B[l]] = f"W^{{({l})}}", f"b^{{({l})}}"
    notes = []
    # forward
    for layer in md.layers:
        l = layer.index
        prev = act_syms[-1]
        prev_tex = "x" if l == 1 else f"a^{{({l - 1})}}"
        zl = b.add(f"z{l}", Dot(prev, T(W[l])) + B[l], rf"z^{{({l})}} = W^{{({l})}} {prev_tex} + b^{{({l})}}", rows(l))
        value = layer.expr.xreplace({Z_: zl}) if layer.elementwise else Softmax(zl)
        al = b.add(f"a{l}", value, rf"a^{{({l})}} = {layer.tex}\left(z^{{({l})}}\right)", rows(l))
        z_syms.append(zl)
        act_syms.append(al)
    aL, zL, last = act_syms[-1], z_syms[-1], md.layers[-1]
    # loss: the batch mean of C; fused pairs take it from z (stable: log σ -> -softplus, log softmax -> z - lse)
    b.section = "loss"
    term = md.loss_term
    if md.output.kind == "fused":
        out_value = last.expr.xreplace({Z_: zL}) if last.elementwise else Softmax(zL)
        per_output = term.xreplace({A_: out_value, Y_: Y})
        loss_note = f"{last.activation} + {md.loss}: the loss is computed from z{L} (stable form)"
    else:
        per_output = term.xreplace({A_: log_domain(term, A_), Y_: Y}).xreplace({A_: aL})
        loss_note = None
    total = md.loss_scale * Total(per_output)
    b.add("C", total / N, rf"C = \frac{{1}}{{N}} {_tex(stabilize(total), names)}", ())
    if loss_note:
        notes.append(loss_note)
    if per_output.has(Clip):
        notes.append(f"{md.loss}: outputs are clipped to [EPS, 1 - EPS] inside its logs (and its derivative)")
    # backward: output delta, with the batch mean's 1/N folded in
    b.section = "backward pass, reusing the forward values"
    out = md.output
    if out.kind == "fused":
        notes.append(f"delta{L} = {sympy.sstr(out.delta)} (fused)")
        dL = b.add(f"delta{L}", out.delta.xreplace({A_: aL, Y_: Y}) / N,
                   rf"\delta^{{({L})}} = \frac{{1}}{{N}}\left({_tex(out.delta, {A_: f'a^{{({L})}}', Y_: 'y'})}\right)", rows(L))
    else:
        guard = log_domain(term, A_)
        g = out.loss_gradient.xreplace({A_: guard}).xreplace({A_: aL, Y_: Y})
        if out.kind == "elementwise":
            factor = last.factor.xreplace({A_: aL, Z_: zL})
            dL = b.add(f"delta{L}", g * factor / N,
                       rf"\delta^{{({L})}} = \frac{{1}}{{N}} \nabla_a C \odot {last.tex}'\left(z^{{({L})}}\right)", rows(L))
        else:
            gL = b.add(f"g{L}", g / N, rf"g^{{({L})}} = \frac{{1}}{{N}} \nabla_a C", rows(L))
            dL = b.add(f"delta{L}", softmax_jvp(aL, gL),
                       rf"\delta^{{({L})}} = a^{{({L})}} \odot \left(g^{{({L})}} - \textstyle\sum_j a^{{({L})}}_j g^{{({L})}}_j\right)", rows(L))
    delta = dL
    grads = {}
    for layer in reversed(md.layers):
        l = layer.index
        prev_tex = "x" if l == 1 else f"a^{{({l - 1})}}"
        b.add(f"dW{l}", Dot(T(delta), act_syms[l - 1]),
              rf"\frac{{\partial C}}{{\partial W^{{({l})}}}} = \delta^{{({l})}} \left({prev_tex}\right)^\top",
              (layer.outputs, layer.inputs), output=True)
        b.add(f"db{l}", ColSum(delta), rf"\frac{{\partial C}}{{\partial b^{{({l})}}}} = \delta^{{({l})}}", (layer.outputs,),
              output=True)
        grads[f"W{l}"], grads[f"b{l}"] = f"dW{l}", f"db{l}"
        if l > 1:
            below = md.layers[l - 2]
            factor = below.factor.xreplace({A_: act_syms[l - 1], Z_: z_syms[l - 1]})
            delta = b.add(f"delta{l - 1}", Dot(delta, W[l]) * factor,
                          rf"\delta^{{({l - 1})}} = \left(W^{{({l})}}\right)^\top \delta^{{({l})}} \odot "
                          rf"{below.tex}'\left(z^{{({l - 1})}}\right)", rows(l - 1))
    statements = b.statements
    params = md.parameter_shapes()
    return Program(
        sizes=md.sizes, params=params,
        forward=_needed(statements, {aL.name}),
        loss=_needed(statements, {"C"}),
        loss_and_gradients=_needed(statements, {"C", *grads.values()}),
        output=aL.name, cost="C", grads={name: grads[name] for name in params}, notes=tuple(notes), buffers=dict(b.buffers))


def _needed(statements: list[Statement], wanted: set[str]) -> tuple[Statement, ...]:
    """The statements that ``wanted`` depend on, in program order."""
    keep, need = [], set(wanted)
    for s in reversed(statements):
        if s.name in need:
            keep.append(s)
            need |= {sym.name for sym in s.expr.free_symbols}
    return tuple(reversed(keep))


# ---------------------------------------------------------------------------------------------
# Rendering and compiling


@functools.lru_cache(maxsize=None)
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


def template_context(program: Program, dtype=np.float64) -> dict:
    """The context of ``functions.py.jinja``: ``{"program": program, "dtype": "float64"}``."""
    return {"program": program, "dtype": _dtype_name(dtype)}


def render_source(program: Program, dtype=np.float64) -> str:
    """The Python module of the compiled functions (``templates/compiled.py.jinja``)."""
    return environment().get_template("compiled.py.jinja").render(**template_context(program, dtype))


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
    dtype: type
    program: Program
    source: str


@functools.lru_cache(maxsize=256)
def _compiled(key, dtype_name: str) -> CompiledNetwork:
    sizes, activations, loss = key
    net = Network(sizes, activations, loss)
    program = array_program(net)
    source = render_source(program, dtype_name)
    digest = hashlib.sha1(source.encode()).hexdigest()[:12]
    filename = f"<symbackprop-compiled-{digest}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {"__name__": f"symbackprop_compiled_{digest}"}
    exec(compile(source, filename, "exec"), namespace)  # our own generated text only
    return CompiledNetwork(namespace["forward"], namespace["loss"], namespace["gradients"],
                           namespace["loss_and_gradients"], DTYPES[dtype_name], program, source)


def compile_network(network: Network, dtype=np.float64) -> CompiledNetwork:
    """Compiled ``forward``, ``loss`` and ``gradients`` of ``network`` for arrays of ``dtype``
    (float64 or float32; see :class:`CompiledNetwork`). With a softmax output and cross-entropy the
    gradients use the fused δ = a − y, which holds when each row of Y sums to 1.

    >>> import numpy as np
    >>> from symbackprop.spec import Network
    >>> net = Network.from_dict({"network": {"layers": [2, 1], "activations": ["identity"],
    ...     "loss": "squared_error"}})
    >>> f = compile_network(net)
    >>> p = {"W1": np.array([[2.0, 0.0]]), "b1": np.array([0.5])}
    >>> X, Y = np.array([[3.0, 1.0]]), np.array([[1.0]])
    >>> float(f.loss(p, X, Y)), f.gradients(p, X, Y)["W1"].tolist()
    (30.25, [[33.0, 11.0]])
    """
    return _compiled((tuple(network.layers), tuple(network.activations), network.loss), _dtype_name(dtype))
