"""In-place code: the expressions :mod:`symbackprop.codegen.printing` prints, written into preallocated
arrays with ``out=`` (what :mod:`symbackprop.codegen.compiled` uses for the backward pass).

:class:`InplaceWriter` holds the rules that break an expression into calls writing into ``out``
and scratch arrays, spelled in the words of :class:`Words` (NumPy's); :class:`TorchInplaceWriter`
overrides the words, and a few rules, for PyTorch. The loss, a scalar sum, is written by
:func:`_total`. :func:`inplace_code` is the entry point.

Why: a freshly allocated array of a few hundred kB comes from the C allocator, which hands large
freed blocks back to the OS; measured here, the allocating form of a 784-256-256-256-10 backward
pass took ~1,800 page faults a call and ran 1.5x slower than the same code writing into buffers.

On small arrays each NumPy call costs ~0.5-1 µs whatever it computes, so the NumPy lines also avoid
what adds to that: a Python number operand (the ufunc converts it on every call, ~0.4 µs: numbers
print as ``_C[0.5]``, 0-d arrays of DTYPE the generated module keeps), np.matmul's extra dispatch
(2-D products print as ``np.dot``, 0.3-1 µs less a call at these sizes), and reductions along the
examples (``x.sum(axis=0)`` over a (32, 32) array takes ~3 µs, the product ``ones @ x`` ~1 µs:
``np.dot(_ones(N), x)``). The batch mean's 1/N prints as ``inv_N``, a 0-d array the generated
function sets (to learning_rate/N in an SGD step, whose gradients are linear in it).

>>> from sympy import Symbol, tanh
>>> x, y = Symbol("x"), Symbol("y")
>>> inplace_code(tanh(x) * y, "out", lambda: "s")
['np.tanh(x, out=out)', 'np.multiply(out, y, out=out)']
>>> inplace_code(tanh(x) * y, "out", lambda: "s", "torch")
['torch.tanh(x, out=out)', 'torch.mul(out, y, out=out)']
"""
import sympy
from sympy import Mul, Piecewise, exp, log
from sympy.codegen.cfunctions import expm1

from ..entries.arrayops import ColSum, Dot, Kernel, LogSumExp, RowSum, Sigmoid, Softmax, Softplus, T, Total
from .printing import TORCH_NAMES, code, torch_code

_UFUNCS = {sympy.tanh: "tanh", log: "log", sympy.Abs: "absolute", sympy.sign: "sign",
           sympy.sin: "sin", sympy.cos: "cos", sympy.atan: "arctan", sympy.asinh: "arcsinh",
           sympy.codegen.cfunctions.log1p: "log1p"}


def _is_mask(e) -> bool:
    """A Piecewise that prints as a boolean mask (values 0 and 1)."""
    return (isinstance(e, Piecewise) and len(e.args) == 2 and e.args[1].cond == sympy.true
            and {e.args[0].expr, e.args[1].expr} == {sympy.S.Zero, sympy.S.One})


def _reciprocal_count(e) -> bool:
    """1/N for an integer symbol N (the batch size)."""
    return e.is_Pow and e.base.is_Symbol and e.exp == -1 and e.base.is_integer


def _cheap(e) -> bool:
    """Operands used as they are: names, numbers, masks, transposes, row sums and log-sum-exps (N x 1)."""
    return (e.is_Symbol or e.is_number or isinstance(e, (sympy.core.relational.Relational, T, RowSum, LogSumExp))
            or (isinstance(e, Kernel) and e.view) or _is_mask(e) or _reciprocal_count(e))


def _negated(e):
    """x for a term -x (Mul(-1, x)), else None."""
    if e.is_Mul and e.args[0] == -1:
        return Mul(*e.args[1:])
    return None


def _vdot_pair(term):
    """(x, y) for a term x*y of two array names (x·y summed is one np.vdot), else None."""
    if term.is_Mul and len(term.args) == 2 and all(f.is_Symbol and not f.is_integer for f in term.args):
        return term.args
    return None


class Words:
    """How one backend spells its in-place lines, NumPy's here: the code of an operand, a call that
    writes into ``out``, a copy, a column sum. ``scratch()`` gives a fresh buffer name of ``out``'s
    shape; ``lines`` collects what is emitted. A backend's writer overrides these words."""

    def __init__(self, scratch):
        self.scratch = scratch
        self.lines: list[str] = []

    def emit(self, line):
        self.lines.append(line)

    def code(self, e) -> str:
        return code(e)

    def const(self, text: str) -> str:
        """A number operand: a 0-d DTYPE array the generated module keeps (``_C[0.5]``)."""
        return f"_C[{text}]"

    def leaf(self, e) -> str:
        """The code of a cheap operand: numbers as 0-d DTYPE arrays, 1/N as ``inv_N``, row sums as products."""
        if e.is_number:
            return self.const(self.code(e))
        if _reciprocal_count(e):
            return f"inv_{e.base}"
        if isinstance(e, RowSum):
            return f"_rowsum({self.leaf(e.args[0]) if _cheap(e.args[0]) else self.code(e.args[0])})"
        if _is_mask(e) and isinstance(e.args[0].cond, sympy.core.relational.Relational):
            (value, cond), _ = e.args          # 1 where cond holds (or where it does not)
            return self.leaf(cond if value == 1 else cond.negated)
        if isinstance(e, sympy.core.relational.Relational) and e.rhs.is_number and not e.lhs.is_number:
            return f"({self.code(e.lhs)} {e.rel_op} {self.leaf(e.rhs)})"
        return self.code(e)

    def op(self, fn, *args, out):
        """``fn`` (a NumPy ufunc's name; ``matmul`` of 2-D arrays as np.dot) of ``args`` (code) into ``out``."""
        self.emit(f"np.{'dot' if fn == 'matmul' else fn}({', '.join(args)}, out={out})")

    def copy(self, out, value):
        self.emit(f"np.copyto({out}, {value})")

    def col_sum(self, x, out):
        self.emit(f"np.dot(_ones(N), {x}, out={out})")


class InplaceWriter(Words):
    """Lines of NumPy that compute an expression into the array named ``out``, using ufuncs with
    ``out=`` and scratch arrays from ``scratch()`` (a callable giving a fresh buffer name of
    ``out``'s shape) for sub-expressions that cannot be folded into ``out``. Anything it has no
    rule for is computed by the allocating code and copied (``np.copyto``). Every line is spelled
    in the words of :class:`Words` (:meth:`op`, :meth:`copy`, :meth:`code`, ...), which a backend's
    writer overrides."""

    def write(self, e, out):
        code = self.code
        if isinstance(e, Dot):
            self.op("matmul", code(e.args[0]), code(e.args[1]), out=out)
        elif e.is_Add:
            self._add(e, out)
        elif e.is_Mul:
            self._mul(e, out)
        elif e.is_Pow and e.exp == 2:
            self._unary(e.base, out, lambda x: self.op("multiply", x, x, out=out))
        elif e.is_Pow and e.exp == -1:
            self._unary(e.base, out, lambda x: self.op("divide", self.const("1"), x, out=out))
        elif type(e) in _UFUNCS:
            self._unary(e.args[0], out, lambda x, fn=_UFUNCS[type(e)]: self.op(fn, x, out=out))
        elif isinstance(e, (exp, expm1)):
            self._unary(e.args[0], out, lambda x: self.op("clip", x, self.const("EXP_LO"), self.const("EXP_HI"), out=out))
            self.op(type(e).__name__, out, out=out)
        elif isinstance(e, Sigmoid):
            self.write(e.args[0] / 2, out)
            self.op("tanh", out, out=out)
            self.op("multiply", out, self.const("0.5"), out=out)
            self.op("add", out, self.const("0.5"), out=out)
        elif isinstance(e, (sympy.Max, sympy.Min)) and len(e.args) == 2:
            self._binary("maximum" if isinstance(e, sympy.Max) else "minimum", e.args, out)
        elif isinstance(e, Softmax):
            self.emit(f"_softmax({code(e.args[0])}, out={out})")
        elif isinstance(e, Kernel) and not e.view:
            self.emit(f"{code(e)[:-1]}, out={out})")
        elif isinstance(e, ColSum):
            self.col_sum(self._operand(e.args[0]), out)
        elif isinstance(e, Softplus):
            # max(u, 0) + logaddexp(0, max(-|u|, EXP_LO)), as the printer writes it (-|u| = copysign(u, -1))
            u, s = self._operand(e.args[0]), self.scratch()
            self.op("copysign", u, self.const("-1"), out=s)
            self.op("maximum", s, self.const("EXP_LO"), out=s)
            self.op("logaddexp", self.const("0"), s, out=s)
            self.op("maximum", u, self.const("0"), out=out)
            self.op("add", out, s, out=out)
        else:
            self.copy(out, code(e))
        return self.lines

    def total(self, e, out):
        """``out = e`` for a scalar ``e`` (the loss; see :func:`_total`), or None."""
        return _total(self, e, out)

    def _operand(self, e):
        """Code for ``e`` as an operand: itself if cheap, else a scratch buffer holding it."""
        if _cheap(e):
            return self.leaf(e)
        s = self.scratch()
        self.write(e, s)
        return s

    def _unary(self, arg, out, line):
        """line(x) applied to arg: straight from arg if cheap, else after computing arg into out."""
        if _cheap(arg):
            line(self.leaf(arg))
        else:
            self.write(arg, out)
            line(out)

    def _binary(self, fn, args, out):
        x, y = args
        if _cheap(x) and _cheap(y):
            if x.is_number:      # the array first: np.maximum(z, 0) runs ~1.5x faster than np.maximum(0, z)
                x, y = y, x
            self.op(fn, self.leaf(x), self.leaf(y), out=out)
            return
        if _cheap(y):
            x, y = y, x
        self.write(y, out)
        self.op(fn, out, self._operand(x), out=out)

    @staticmethod
    def _main(args):
        """The argument computed straight into ``out``: one holding a matrix product if there is
        one, else the first that is not cheap (and not a negated or reciprocal term)."""
        for arg in args:
            if isinstance(arg, Dot) or (arg.is_Mul and any(isinstance(f, Dot) for f in arg.args)):
                return arg
        return next((arg for arg in args if not _cheap(arg) and _negated(arg) is None
                     and not (arg.is_Pow and arg.exp == -1)), None)

    def _add(self, e, out):
        code = self.code
        terms = list(e.args)
        main = self._main(terms)
        if main is not None:
            terms.remove(main)
            self.write(main, out)
        else:
            positive = next((t for t in terms if _negated(t) is None), None)
            if positive is None or len(terms) < 2:
                self.copy(out, code(e))
                return
            terms.remove(positive)
            second = terms.pop(0)
            neg = _negated(second)
            op = "add" if neg is None else "subtract"
            operand = second if neg is None else neg
            if _cheap(operand):
                self.op(op, self.leaf(positive), self.leaf(operand), out=out)
            else:  # c - f(x): f(x) into out, then c - out
                self.write(operand, out)
                self.op(op, self.leaf(positive), out, out=out)
        for term in terms:
            neg = _negated(term)
            op = "add" if neg is None else "subtract"
            self.op(op, out, self._operand(term if neg is None else neg), out=out)

    def _mul(self, e, out):
        code = self.code
        coeff, factors = e.as_coeff_mul()
        factors = list(factors)
        main = self._main(factors)
        if main is not None:
            factors.remove(main)
            self.write(main, out)
        else:
            first = next((f for f in factors if not (f.is_Pow and f.exp == -1)), None)
            if first is not None and len(factors) == 1 and coeff != 1:
                self.op("multiply", self.leaf(first), self.leaf(coeff), out=out)
                return
            if first is None or len(factors) < 2:
                self.copy(out, code(e))
                return
            factors.remove(first)
            op, operand = self._factor(factors.pop(0))
            self.op(op, self.leaf(first), operand, out=out)
        for f in factors:
            op, operand = self._factor(f)
            self.op(op, out, operand, out=out)
        if coeff != 1:
            self.op("multiply", out, self.leaf(coeff), out=out)

    def _factor(self, f):
        if f.is_Pow and f.exp == -1 and not _reciprocal_count(f):
            return "divide", self._operand(f.base)
        return "multiply", self._operand(f)


def _total(w, e, out):
    """``w``'s lines for ``out = e``, a scalar ``e`` = c·Σ(x)·(1/N)... (the loss): x computed into
    scratch arrays, its products of two arrays summed by np.vdot. None if ``e`` is not of that form."""
    factors = Mul.make_args(e)
    sums = [f for f in factors if isinstance(f, Total)]
    if len(sums) != 1 or not all(f.is_number or f.is_Symbol or _reciprocal_count(f) for f in factors if f is not sums[0]):
        return None
    terms, parts = [], []
    for term in sympy.Add.make_args(sums[0].args[0]):
        neg = _negated(term)
        pair = _vdot_pair(term if neg is None else neg)
        if pair is not None:
            parts.append(("-" if neg is not None else "+", f"np.vdot({code(pair[0])}, {code(pair[1])})"))
        else:
            terms.append(term)
    if terms:
        s = w.scratch()
        negs = [_negated(t) for t in terms]
        if all(n is not None for n in negs):    # -Σ x: the sign on the sum, not on every entry
            w.write(sympy.Add(*negs), s)
            parts.insert(0, ("-", f"np.add.reduce({s}, axis=None)"))
        else:
            w.write(sympy.Add(*terms), s)
            parts.insert(0, ("+", f"np.add.reduce({s}, axis=None)"))
    total = ("-" if parts[0][0] == "-" else "") + parts[0][1] + "".join(f" {sign} {p}" for sign, p in parts[1:])
    placeholder = sympy.Symbol("_TOTAL_")
    w.emit(f"{out} = " + code(Mul(*[f for f in factors if f is not sums[0]], placeholder))
              .replace("_TOTAL_", f"({total})" if len(parts) > 1 or parts[0][0] == "-" else total))
    return w.lines


class TorchInplaceWriter(InplaceWriter):
    """The same lines for PyTorch: ``torch.<op>(..., out=)``, ``torch.clamp`` for a maximum or
    minimum with a number, ``out.copy_(...)`` for what has no rule."""

    def code(self, e) -> str:
        return torch_code(e)

    def const(self, text: str) -> str:
        return text

    def leaf(self, e) -> str:
        return self.code(e)

    def total(self, e, out):
        return None

    def _factor(self, f):
        if f.is_Pow and f.exp == -1:          # 1/N too: torch divides by a Python int at no cost
            return "divide", self._operand(f.base)
        return "multiply", self._operand(f)

    def op(self, fn, *args, out):
        if fn in ("maximum", "minimum") and any(map(_scalar, args)):
            x, c = (args[1], args[0]) if _scalar(args[0]) else args
            self.emit(f"torch.clamp({x}, {'min' if fn == 'maximum' else 'max'}={c}, out={out})")
        elif fn == "logaddexp" and args[0] == "0":   # log(1 + exp(v)); v >= EXP_LO keeps exp from underflowing
            self.emit(f"torch.exp({args[1]}, out={out})")
            self.emit(f"torch.log1p({out}, out={out})")
        else:
            self.emit(f"torch.{TORCH_NAMES.get(fn, fn)}({', '.join(args)}, out={out})")

    def copy(self, out, value):
        self.emit(f"{out}.copy_({value})")

    def col_sum(self, x, out):
        self.emit(f"torch.sum({x}, dim=0, out={out})")

    def write(self, e, out):
        if e.is_Pow and e.exp == sympy.S.Half:
            self._unary(e.base, out, lambda x: self.op("sqrt", x, out=out))
            return self.lines
        return super().write(e, out)

    def _add(self, e, out):
        # A @ B + b (a dense layer's z) as one addmm: the bias goes in with the product
        if len(e.args) == 2:
            product = next((t for t in e.args if isinstance(t, Dot)), None)
            bias = next((t for t in e.args if t is not product), None)
            if product is not None and bias.is_Symbol:
                A, B = product.args
                self.emit(f"torch.addmm({self.code(bias)}, {self.code(A)}, {self.code(B)}, out={out})")
                return
        super()._add(e, out)

    def _mul(self, e, out):
        # u ⊙ [x > c] (relu's derivative, say) as _gate(u, x, c): u where x > c, else 0, in one
        # op -- boolean tensors are slow in torch on the CPU (a comparison into one costs 20x a clamp)
        coeff, factors = e.as_coeff_mul()
        gates = [f for f in factors if _gate(f) is not None]
        if coeff != 1 or len(factors) != 2 or len(gates) != 1:
            return super()._mul(e, out)
        other = factors[0] if factors[1] is gates[0] else factors[1]
        x, c = _gate(gates[0])
        if _cheap(other):
            source = self.code(other)
        else:
            self.write(other, out)
            source = out
        self.emit(f"_gate({source}, {self.code(x)}, {self.code(c)}, out={out})")


def _gate(e):
    """(x, c) for a 0/1 Piecewise that is 1 exactly where x > c, c a number; else None."""
    if not _is_mask(e):
        return None
    (value, cond), _ = e.args
    where_one = cond if value == 1 else cond.negated
    if isinstance(where_one, sympy.StrictGreaterThan) and where_one.rhs.is_number:
        return where_one.lhs, where_one.rhs
    if isinstance(where_one, sympy.StrictLessThan) and where_one.lhs.is_number:
        return where_one.rhs, where_one.lhs
    return None


def _scalar(text: str) -> bool:
    """Whether printed code is a number (a literal or one of the module's constants)."""
    try:
        float(text)
        return True
    except ValueError:
        return text in ("EXP_LO", "EXP_HI", "EPS", "N")


WRITERS = {"numpy": InplaceWriter, "torch": TorchInplaceWriter}


def writer(backend: str, scratch) -> InplaceWriter:
    """The in-place writer of ``backend`` ("numpy" or "torch")."""
    return WRITERS[backend](scratch)


def inplace_code(expr: sympy.Expr, out: str, scratch, backend: str = "numpy", scalar: bool = False) -> list[str]:
    """The lines that compute ``expr`` into the existing array ``out`` (see :class:`InplaceWriter`);
    with ``scalar``, the lines that assign the scalar ``out`` (the loss: a sum over arrays), or
    none when ``expr`` (or the backend) has no such form."""
    w = writer(backend, scratch)
    if scalar:
        return w.total(expr, out) or []
    return w.write(expr, out)
