"""What every layer kind is: one :class:`LayerKind` entry, and the :class:`Layer` of a spec it describes.

A kind is one definition holding, side by side (as ``derivatives.yaml`` keeps an op's formulas):

* its **fields** (:class:`Field`: name, parser, default) and the checks that tie them to the input
  shape (:meth:`LayerKind.check`), its output shape, its parameters and their shapes, and the
  per-example data it reads (a dropout mask);
* its **element expressions** (:meth:`LayerKind.elements`): every output element as a SymPy
  expression of the input elements and the parameters — what the per-weight derivation
  differentiates with ``sympy.diff``, and what ``explain`` and ``check`` compute with;
* its **array form**: NumPy kernels (plain functions, marked :func:`kernel`, whose source the
  generated code embeds) and the statements it adds to a compiled program, forward
  (:meth:`LayerKind.array_forward`) and backward (:meth:`LayerKind.array_backward`) — each array
  backward rule is proven equal to SymPy's derivative of the element expressions in the tests;
* its **LaTeX** in tensor form, for the matrix-form derivation and the comments of generated code;
* how its parameters are **initialised**.

Nothing outside ``symbackprop/entries/layers/`` asks which kind a layer is: the model, the derivation, the
code generator and the renderers call these methods.
"""
import functools
import inspect
import math
import re
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Callable

import numpy as np
import sympy

from ..arrayops import VIEW_KERNELS
from ...errors import shown

REQUIRED = object()


class LayerError(ValueError):
    """Bad layer fields: ``field`` names the field, ``problem`` says what is wrong. The spec turns
    it into a SpecError naming the layer's position and type."""

    def __init__(self, field: str, problem: str):
        self.field, self.problem = field, problem
        super().__init__(f"{field}: {problem}")


@dataclass(frozen=True)
class Field:
    """One field of a ``[[layer]]`` table: ``parse(value) -> value`` raises ValueError(problem)."""
    name: str
    parse: Callable
    default: object = REQUIRED
    doc: str = ""


# ---- field parsers (ValueError carries the problem; the spec names the field)

def shape_text(shape) -> str:
    """``(2, 3)``, ``(6,)``: a shape as people write it."""
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def positive_int(value):
    if not _integer(value) or value < 1:
        raise ValueError(f"expected a positive integer, got {shown(value)}")
    return value


def ints(ndim: int, minimum: int):
    """An int (the same for every spatial dimension) or a list of ``ndim`` ints, each >= minimum."""
    what = "a positive" if minimum == 1 else "a non-negative"

    def parse(value):
        values = value if isinstance(value, list) else [value] * ndim
        if len(values) != ndim or not all(_integer(v) and v >= minimum for v in values):
            raise ValueError(f"expected {what} integer or a list of {ndim}, got {shown(value)}")
        return tuple(values)
    return parse


def _unit(value, closed: bool, what: str) -> float:
    """``value`` in [0, 1) (or [0, 1] when ``closed``), as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 <= value < 1 or closed and value == 1):
        raise ValueError(f"expected {what}, got {shown(value)}")
    return float(value)


def rate(value):
    """Dropout's rate: 1 would drop everything."""
    return _unit(value, False, "a rate p with 0 <= p < 1")


def fraction(value):
    """Batch norm's momentum: 1 keeps only the last batch's statistics, as PyTorch allows."""
    return _unit(value, True, "a fraction with 0 <= m <= 1")


def positive_number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise ValueError(f"expected a positive number, got {shown(value)}")
    return float(value)


def layer_ref(value):
    if not _integer(value) or value < 0:
        raise ValueError(f"expected a layer position (0 for the network input), got {shown(value)}")
    return value


# ---- kernels: NumPy functions the generated code embeds by source, and their torch twins

KERNELS: dict[str, Callable] = {}         # the NumPy kernels, by name
TORCH_KERNELS: dict[str, Callable] = {}   # their torch twins (layers/torch_kernels.py): same names and signatures
BACKEND_KERNELS = {"numpy": KERNELS, "torch": TORCH_KERNELS}


def kernel(*deps, view: bool = False, backend: str = "numpy"):
    """Mark a NumPy function as a kernel of the array form: generated code embeds its source (and
    that of ``deps``, kernels it calls). A kernel uses only ``np`` and its arguments, and takes
    ``out=`` (an array to write into) — unless it returns a ``view`` of its first argument, which
    then needs no array of its own. ``backend="torch"`` marks the torch twin of the NumPy kernel of
    the same name (using only ``torch``, ``F`` = ``torch.nn.functional`` and ``math``)."""
    def mark(fn):
        fn.kernel_deps = tuple(d.__name__ for d in deps)
        fn.view = view
        BACKEND_KERNELS[backend][fn.__name__] = fn
        if view:
            VIEW_KERNELS.add(fn.__name__)
        return fn
    return mark


def kernel_sources(names, backend: str = "numpy") -> list[str]:
    """The source of the kernels ``names`` and of what they call, each once, dependencies first
    (without the ``@kernel`` line), in ``backend``'s version."""
    table = BACKEND_KERNELS[backend]
    order: list[str] = []

    def visit(name):
        if name not in order:
            for dep in table[name].kernel_deps:
                visit(dep)
            order.append(name)
    for name in sorted(names):
        visit(name)
    return ["".join(line for line in inspect.getsourcelines(table[name])[0] if not line.startswith("@kernel"))
            for name in order]


# ---- the spec's layer


@dataclass(frozen=True)
class Layer:
    """One validated layer of a network's graph.

    ``index`` is its 1-based position (parameters are named after it: ``W3``, ``gamma2``),
    ``sources`` the positions of the layers it reads (0 is the network input), ``in_shapes`` their
    output shapes and ``shape`` its own, all for ONE example (PyTorch's layouts: (C, L), (C, H, W))."""
    index: int
    kind: "LayerKind"
    options: tuple                      # (field, value) pairs, validated
    activation: object                  # registry.Activation
    sources: tuple[int, ...]
    in_shapes: tuple[tuple[int, ...], ...]
    shape: tuple[int, ...]
    sequence: bool = False              # its output is a sequence (T, D): one row per time step

    @cached_property
    def opt(self) -> dict:
        return dict(self.options)

    @cached_property
    def params(self) -> dict[str, tuple[int, ...]]:
        """Parameter name -> shape: ``{"W2": (3, 18), "b2": (3,)}``."""
        return {f"{s}{self.index}": shape for s, shape in self.kind.param_shapes(self).items()}

    @cached_property
    def data(self) -> dict[str, tuple[int, ...]]:
        """Per-example data arrays the layer reads (a dropout mask ``M3``), name -> shape."""
        return {f"{s}{self.index}": shape for s, shape in self.kind.data_shapes(self).items()}

    @property
    def has_z(self) -> bool:
        """Whether the layer has a pre-activation z<i> (parameterised kinds always do; others
        when an activation other than identity follows)."""
        return self.kind.affine or self.activation.name != "identity"

    def param(self, suffix: str) -> str:
        return f"{suffix}{self.index}"

    @property
    def parameter_count(self) -> int:
        return sum(math.prod(shape) for shape in self.params.values())

    @property
    def values_per_example(self) -> int:
        """What one example needs here: the output, its z and its δ, the layer's data (a mask) and
        its workspace — counted from the shapes alone, so that a bound can refuse before allocating."""
        return (math.prod(self.shape) * (2 + self.has_z) + sum(math.prod(s) for s in self.data.values())
                + self.kind.workspace(self))

    def describe(self) -> str:
        """``conv2d(channels=2, kernel=3, padding=1) relu``: for titles, headers and signatures."""
        shown = [f"{k}={_plain(v)}" for k, v in self.options if self.kind.default(k) != v]
        act = "" if self.activation.name == "identity" else f" {self.activation.name}"
        return f"{self.kind.name}({', '.join(shown)}){act}"


def _plain(value) -> str:
    if isinstance(value, tuple):
        return "x".join(map(str, value)) if len(set(value)) > 1 else str(value[0])
    return repr(value) if isinstance(value, float) else str(value)


class LayerKind:
    """The base of every layer kind; see the module docstring. Subclasses set the class attributes
    and override what they need."""
    name = ""
    doc = ""
    fields: tuple[Field, ...] = ()
    params: tuple[str, ...] = ()        # parameter name prefixes in order: ("W", "b"), ("gamma", "beta")
    affine = False                      # output named z even with the identity activation
    couples_batch = False               # outputs depend on other examples of the batch (batch norm)
    cancels_bias = False                # subtracts a per-channel mean that a bias before it shifts alike (batch norm)
    unrolls = False                     # the trainer's unrolled scalar form supports it
    vector_input = False                # needs a vector (one-axis) input
    reads_ids = False                   # reads the network's integer ids (an embedding: the first layer)
    sequence_input = False              # needs a sequence (T, D) input (a recurrent layer)
    takes_activation = True             # an ``activation`` field may follow it (not a recurrent layer: its own)
    kernels: tuple[str, ...] = ()       # kernel names its array form calls

    def default(self, name):
        return next((f.default for f in self.fields if f.name == name), REQUIRED)

    # ---- structure
    def normalize(self, options: dict) -> dict:
        """The parsed fields with defaults that depend on others filled in (a pool's stride)."""
        return options

    def sources(self, options: dict, index: int) -> tuple[int, ...]:
        return (index - 1,)

    def check(self, options: dict, in_shapes) -> None:
        """LayerError when the fields do not fit the input shapes."""

    def output_shape(self, options: dict, in_shapes) -> tuple[int, ...]:
        return tuple(in_shapes[0])

    def check_sequence(self, options: dict, in_shapes, in_sequence: tuple[bool, ...]) -> None:
        """LayerError when the kind needs a sequence (T, D) input and is given another shape, or
        takes a (T, D) input per step only when it is a sequence (called before :meth:`check`)."""

    def sequence_output(self, options: dict, in_sequence: tuple[bool, ...]) -> bool:
        """Whether the output is a sequence (T, D), one row per time step: the shape-keeping kinds
        pass their input's on (dropout), per-step and recurrent kinds say (dense, rnn)."""
        return False

    def carry_name(self, layer: Layer) -> str | None:
        """The workspace dict in which the layer's kernels take the state a batch starts from and
        leave the one it ends with (a recurrent layer; what truncated BPTT carries), or None."""
        return None

    def param_shapes(self, layer: Layer) -> dict[str, tuple[int, ...]]:
        return {}

    def data_shapes(self, layer: Layer) -> dict[str, tuple[int, ...]]:
        return {}

    def workspace(self, layer: Layer) -> int:
        """Values one example needs beyond the layer's output, z and δ (a convolution's patch
        matrix): what the size bounds (``spec/limits.py``) add up before anything is allocated."""
        return 0

    def fans(self, layer: Layer) -> tuple[int, int]:
        """(fan_in, fan_out) for the initialisation of its weight."""
        return 1, 1

    def init(self, layer: Layer, prefix: str) -> str:
        """How ``init_params`` fills parameter ``prefix``: "he", "glorot", "zeros" or "ones"."""
        return "zeros"

    # ---- symbols
    def elements(self, layer: Layer, inputs: list, params: dict, data: dict, stage) -> np.ndarray:
        """The layer's pre-activation (or output) elements as SymPy expressions of one example's
        ``inputs`` (object arrays in the input shapes), ``params`` and ``data`` (prefix -> object
        array); for a kind that ``couples_batch``, of the whole batch (a leading example axis).
        ``stage(name, latex, defs, per_example=True)`` names an intermediate array (batch norm's
        mean) and returns its symbols, for later expressions to use; ``step=(t, T)`` names row t of
        a (T, ...) array filled one time step at a time (a recurrent layer's h_t, which step t + 1
        reads by its symbols: the recurrence is never expanded into one formula)."""
        raise NotImplementedError

    # ---- arrays
    def forward(self, layer: Layer, inputs: list, params: dict, data: dict) -> np.ndarray:
        """The pre-activation (or output) for a batch: ``inputs`` (N, *in_shape) arrays, ``params``
        and ``data`` by prefix. Training mode. Used by the independent check (verify.py)."""
        raise NotImplementedError

    def array_forward(self, layer: Layer, b, inputs: list, params: dict, data: dict, mode: str):
        """Add this layer's intermediate statements to the builder ``b`` and return
        (expression of its pre-activation or output, LaTeX of that statement). ``inputs``, ``params``
        and ``data`` are the array symbols; ``mode`` is "train" or "eval" (running statistics, no dropout)."""
        raise NotImplementedError

    def array_backward(self, layer: Layer, b, delta, inputs: list, params: dict, data: dict, need: tuple) -> list:
        """Add the gradient statements of this layer's parameters (``b.grad``) for the gradient
        ``delta`` of its pre-activation (or output), and return the expression of the gradient
        with respect to each input (None where ``need[i]`` is false)."""
        raise NotImplementedError

    def branches(self, layer: Layer, inputs: list) -> np.ndarray | None:
        """For a kind whose output is piecewise in its inputs, the branch each output element takes
        for a batch of ``inputs`` (max-pool: which element of its window is the maximum); None for
        a smooth kind. Where the branches at θ − h and θ + h differ, a central difference straddles
        the kink (verify.kink), and ``kink_note`` says what the derivative there is."""
        return None

    kink_note = ""

    # ---- text
    def latex_forward(self, layer: Layer, out: str, ins: list[str]) -> str:
        """The forward rule in tensor form, e.g. ``z^{(1)} = W^{(1)} x + b^{(1)}``."""
        raise NotImplementedError

    def latex_backward(self, layer: Layer, delta: str, ins: list[str]) -> "Backward":
        """The backward rules for the gradient ``delta`` of its output: each parameter's gradient
        (a full line), the gradient it passes to each input (an expression) and notes."""
        raise NotImplementedError

    def text_local_derivative(self, layer: Layer) -> str | None:
        """How text output says ∂(an output element)/∂(the input element ``{x}``) where the
        formula would read worse than words (max-pool's case split over its window), or None."""
        return None

    # ---- explain: the kind's part of a worked example (blocks of symbackprop.writers.document, from a
    # worksheet.Sheet of one pass's numbers; ``lm`` is the layer's LayerModel)
    def explain_forward(self, lm, sheet) -> list:
        """How the layer's elements come from its inputs, with numbers: its rule, one element
        written out, and its own intermediates (the layer's values are tabulated after it)."""
        from ...writers.document import Display
        ins = [sheet.input_tex(lm, k) for k in range(len(lm.sources))]
        return [Display((self.latex_forward(lm.layer, sheet.out_tex(lm), ins),))]

    def explain_backward(self, lm, sheet, wanted: set) -> list:
        """The gradients of the layer's parameters in ``wanted`` (and of its own intermediates)."""
        return []

    def explain_input_gradient(self, lm, sheet, k: int, part=None) -> list:
        """The gradient the layer passes back to input ``k``: its rule, with numbers, and a table;
        ``part`` holds its values when another layer's path adds to that input's gradient."""
        return rule_and_tables(self, lm, sheet, k, part)

    # ---- check: the mistakes people make in this kind's arithmetic
    def slips(self, layer: Layer, ctx: "SlipContext") -> list["Slip"]:
        """The catalogued mistakes of this kind, each a rewrite of its own element definitions
        (``ctx.rerun`` with a field, a parameter or an input changed, or one element rewritten)."""
        return []


@dataclass(frozen=True)
class Backward:
    """A layer's backward rules in LaTeX: ``grads`` maps a parameter to its line
    (``\\frac{\\partial C}{\\partial W^{(2)}} = ...``), ``inputs`` holds the gradient passed to each
    input as an expression, ``notes`` say what a reader needs (stride, padding, ties), as prose
    with ``$math$``."""
    grads: dict = field(default_factory=dict)
    inputs: tuple = ()
    notes: tuple = ()


def rule_and_tables(kind, lm, sheet, k, part, notes=True) -> list:
    """The backward rule for input ``k`` as a display, its notes, and the values passed back."""
    from ...writers.document import Display, Para
    ins = [sheet.input_tex(lm, i) for i in range(len(lm.sources))]
    rule = kind.latex_backward(lm.layer, sheet.grad_tex(lm), ins)
    out = [Display((rf"\frac{{\partial C}}{{\partial {ins[k]}}} = {rule.inputs[k]}",))]
    if notes and rule.notes:
        out.append(Para(" ".join(rule.notes)))      # notes are prose with $math$
    src = lm.layer.sources[k]
    return out + sheet.tables(rf"\partial C/\partial a^{{({src})}}", sheet.passed(lm, k, part), f"dC/da{src}")


def param_tex(name: str) -> str:
    """A parameter's or mask's LaTeX name: ``W2`` -> ``W^{(2)}``, ``gamma2`` -> ``\\gamma^{(2)}``."""
    head = name.rstrip("0123456789")
    base = {"gamma": r"\gamma", "beta": r"\beta"}.get(head, head)
    if "_" in base:                  # a recurrent layer's W_ih, b_hh: {W_{ih}}, a group an element's index can follow
        base = "{" + base.replace("_", "_{", 1) + "}}"
    return f"{base}^{{({name[len(head):]})}}"


def index_tuples(shape) -> list[tuple[int, ...]]:
    return list(np.ndindex(*shape)) if shape else [()]


# ---- check's mistakes, as rewrites of an entry's own definitions


@dataclass(frozen=True)
class Slip:
    """A catalogued mistake in a layer's arithmetic. ``defs()`` gives the mistaken definitions, in
    the layer's own symbols: stage name ("z", "a", "mean", "var", "xhat") -> {element index:
    definition} for every element the slip touches. ``where`` names the numbers it is tried on, each
    with its rank (lower: commoner) and the diagnosis's words: ``"forward"`` the stage's own values,
    ``"inputs"`` the gradients passed back through the mistaken definitions (their local derivatives
    taken by ``sympy.diff``), ``"params"`` the parameters' gradients. A ``generic`` slip is made in
    every element alike (tried on a whole quantity at once, and beyond the number's own formula);
    the others only in the number's own formula or those it reads. ``one(stage, index)`` is one
    element's mistaken definition (None where the slip does not touch it), quicker than ``defs()``."""
    where: dict
    defs: Callable
    generic: bool = True
    one: Callable | None = None

    def element(self, stage: str, index):
        if self.one is not None:
            return self.one(stage, index)
        return self.defs().get(stage, {}).get(tuple(index))


@dataclass
class SlipContext:
    """What a layer's slips are built from: its symbols in the model — one example's, or the whole
    batch's (a leading example axis) for a kind that couples it — and check's labels for them."""
    layer: Layer
    inputs: list                    # one array per input, in the input shapes
    params: dict                    # prefix -> array ("W", "b", "gamma")
    data: dict                      # prefix -> array ("M")
    stages: dict                    # stage name -> (symbols, defs) arrays
    label: Callable                 # symbol -> "a1[2]"
    pre: list = field(default_factory=list)   # per input, the pre-activation it came through (or None)

    @property
    def out(self) -> str:
        """The stage holding the entry's elements: "z" where the layer has a pre-activation, else "a"."""
        return "z" if self.layer.has_z else "a"

    def rerun(self, layer: Layer | None = None, inputs=None, params=None, data=None) -> dict:
        """The entry's own element expressions with its fields (``layer``), inputs, parameters or
        data changed: stage name -> definition array; intermediate stages read the model's own
        symbols of the stages before them."""
        found = {}

        def stage(name, tex, defs, per_example=True, step=None):
            if step is not None:
                defs = np.asarray(defs, dtype=object)
                found.setdefault(name, np.empty((step[1], *defs.shape), dtype=object))[step[0]] = defs
                return self.stages[name][0][step[0]]
            found[name] = np.asarray(defs, dtype=object)
            return self.stages[name][0]
        layer = layer or self.layer
        found[self.out] = np.asarray(layer.kind.elements(layer, inputs or self.inputs, {**self.params, **(params or {})},
                                                         {**self.data, **(data or {})}, stage), dtype=object)
        return found

    def slip(self, where: dict, generic=True, stages=None, then=None, **changes) -> Slip:
        """A slip whose definitions are :meth:`rerun` with ``changes`` (computed when first asked),
        of ``stages`` (default: all that rerun gives), each passed through ``then`` where given
        (avg-pool's mean times the window size: the window's sum)."""
        def defs():
            found = self.rerun(**changes)
            return {name: {idx: then(d) if then else d for idx, d in np.ndenumerate(arr)}
                    for name, arr in found.items() if stages is None or name in stages}
        return Slip(where, functools.cache(defs), generic)

    def rewrite(self, where: dict, mapping: dict, stage: str | None = None, element=None, generic=True) -> Slip:
        """A slip substituting ``mapping`` in the definitions of ``stage`` (default: the entry's
        output), in one ``element`` only when given."""
        name = stage or self.out

        def defs():
            arr = self.stages[name][1]
            at = [tuple(element)] if element is not None else [idx for idx, _ in np.ndenumerate(arr)]
            return {name: {idx: arr[idx].xreplace(mapping) for idx in at}}

        def one(st, index):
            if st != name or (element is not None and tuple(index) != tuple(element)):
                return None
            return self.stages[name][1][tuple(index)].xreplace(mapping)
        return Slip(where, functools.cache(defs), generic, one)

    def scaled(self, where: dict, factor, stage: str | None = None) -> Slip:
        """A slip multiplying every definition of ``stage`` (default: the entry's output) by ``factor``."""
        name = stage or self.out
        return Slip(where, functools.cache(lambda: {name: {idx: d * factor for idx, d in np.ndenumerate(self.stages[name][1])}}))


def with_options(layer: Layer, **changes) -> Layer:
    """``layer`` with some fields changed (for a slip's rerun; not validated, the shape kept)."""
    return replace(layer, options=tuple((k, changes.get(k, v)) for k, v in layer.options))


def zeros(shape) -> np.ndarray:
    return np.full(shape, sympy.Integer(0), dtype=object)


def label(name: str, index) -> str:
    """A quantity's element as check names it, 1-based: ``label("W2", (0, 1))`` -> ``W2[1][2]``."""
    return name + "".join(f"[{i + 1}]" for i in index)
