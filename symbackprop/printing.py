"""NumPy code for SymPy expressions: stable primitives, the rewrite rules that introduce them, a printer.

Three things live here, and nowhere else:

* **Stable primitives** — the SymPy functions of :mod:`symbackprop.arrayops` (:class:`Sigmoid`,
  :class:`Softplus`, :class:`Clip`, and the row-wise array operations of the matrix form), which
  the rules below introduce and the printer prints.
* **Rewrite rules** — :data:`RULES`, a tuple of ``sympy.codegen.rewriting.ReplaceOptim`` applied
  in order by :func:`stabilize`: ``1/(1 + exp(-u))`` → σ(u), ``log(1 + exp(u))`` → softplus(u),
  ``log σ(u)`` → −softplus(−u), ``log(1 − σ(u))`` → −softplus(u), c₁·softplus(−u) + c₂·softplus(u)
  → (c₁ + c₂)·softplus(u) − c₁·u (binary cross-entropy from z: softplus(z) − y·z), ``log softmax(u)`` →
  u − logsumexp(u), relu's Piecewise → max(u, 0), leaky relu's → max(u, c·u), ``exp(u) − 1`` →
  expm1(u), and number constants (√2, π) → Python floats, so float32 arrays are never upcast.
* **The printer** — :class:`StablePrinter`, a ``NumPyPrinter`` that prints those in forms that
  raise no floating-point warning under ``numpy.errstate(all="raise")`` for |z| up to 1e4:
  σ(u) as ``0.5 + 0.5*np.tanh(0.5*u)`` (no exp at all: even ``np.exp(-1e4)`` raises *underflow*),
  softplus as max(u, 0) + logaddexp(0, max(−|u|, EXP_LO)) (no exp argument below ``EXP_LO``),
  every other exp clipped to [``EXP_LO``, ``EXP_HI``] (exp(EXP_LO) is tiny**(1/3), so products of
  up to three such small factors stay normal numbers: no *underflow* either), erf through ``_erf``
  (``math.erf``; NumPy has none), two-branch Piecewise as ``np.where`` (``np.select`` is several times slower) or a boolean mask, sums as
  methods (``x.sum(axis=0)``: np.sum's Python wrapper costs as much as a small sum), and sums
  of terms with a positive term first (``a - y``, not ``-y + a``: one array negation fewer).

The printed code refers to a few names the generated module defines (``templates/functions.py.jinja``):
``np``, ``DTYPE``, ``EPS``, ``EXP_LO``, ``EXP_HI``, ``_erf``, ``_softmax``, ``_logsumexp``.

>>> from sympy import Symbol, exp, log
>>> u = Symbol("u", real=True)
>>> code(stabilize(log(1 / (1 + exp(-u)))))
'-(np.maximum(-u, 0) + np.logaddexp(0, np.maximum(-np.abs(u), EXP_LO)))'
"""
import sympy
from sympy import Add, Function, Mul, Piecewise, exp, log
from sympy.codegen.cfunctions import expm1
from sympy.codegen.rewriting import Optimization, ReplaceOptim, optimize
from sympy.printing.numpy import NumPyPrinter

from .arrayops import Clip, ColSum, Dot, Kernel, LogSumExp, RowSum, Sigmoid, Softmax, Softplus, T, Total

# ---------------------------------------------------------------------------------------------
# Rewrite rules


def _one_plus_exp(e):
    """The u of ``1 + exp(u)``, or None."""
    if e.is_Add and len(e.args) == 2 and sympy.S.One in e.args:
        other = e.args[0] if e.args[1] == 1 else e.args[1]
        if isinstance(other, exp):
            return other.args[0]
    return None


def _neg_sigmoid(e):
    """The u of ``1 - Sigmoid(u)``, or None."""
    if e.is_Add and len(e.args) == 2 and sympy.S.One in e.args:
        other = e.args[0] if e.args[1] == 1 else e.args[1]
        if other.is_Mul and other.args == (-1, other.args[1]) and isinstance(other.args[1], Sigmoid):
            return other.args[1].args[0]
    return None


class FunctionOptim(Optimization):
    """A rewrite that needs the whole expression (``ReplaceOptim`` sees one node at a time)."""

    def __init__(self, function, **kwargs):
        super().__init__(**kwargs)
        self.function = function

    def __call__(self, expr):
        return self.function(expr)


def _exp_with_sigmoid(expr):
    """exp(u) where σ(−u) or σ(u) also appears: exp(u) = σ(u)/σ(−u), so the powers cancel."""
    sigmoids = {s.args[0] for s in expr.atoms(Sigmoid)}
    return expr.replace(
        lambda e: isinstance(e, exp) and (-e.args[0] in sigmoids or e.args[0] in sigmoids),
        lambda e: Sigmoid(e.args[0]) / Sigmoid(-e.args[0]))


def _is_relu(e):
    """Piecewise((c*u, u <= 0), (u, True)) with 0 <= c < 1: relu (c = 0) or leaky relu."""
    if not (isinstance(e, Piecewise) and len(e.args) == 2 and e.args[1].cond == sympy.true):
        return False
    (low, cond), (high, _) = e.args
    if not (isinstance(cond, sympy.LessThan) and cond.rhs == 0 and cond.lhs == high):
        return False
    c = sympy.cancel(low / high) if low != 0 else sympy.S.Zero
    return c.is_number and 0 <= c < 1


def _relu_value(e):
    (low, _), (high, _) = e.args
    return sympy.Max(high, low) if low != 0 else sympy.Max(high, 0)


def _numbers_to_floats(expr):
    """Irrational constants (√2, π, log 2) as Python floats: NumPy scalars would upcast float32."""
    return expr.replace(
        lambda e: e.is_number and not e.is_Rational and not e.is_Float and not e.atoms(Function),
        lambda e: sympy.Float(e.evalf(20), 20))


def _softplus_term(t):
    """(c, u) for a term c·softplus(u), else None."""
    factors = Mul.make_args(t)
    found = [f for f in factors if isinstance(f, Softplus)]
    if len(found) != 1:
        return None
    return Mul(*[f for f in factors if f is not found[0]]), found[0].args[0]


def _softplus_pair(e) -> bool:
    """An Add with terms in softplus(u) and softplus(−u)."""
    if not e.is_Add:
        return False
    args = {st[1] for st in map(_softplus_term, e.args) if st is not None}
    return any(-u in args for u in args)


def _merge_softplus(e):
    """c₁·softplus(−u) + c₂·softplus(u) → (c₁ + c₂)·softplus(u) − c₁·u, since softplus(−u) =
    softplus(u) − u: one softplus where there were two (binary cross-entropy from z becomes
    softplus(z) − y·z, the form TensorFlow's sigmoid_cross_entropy_with_logits uses)."""
    coeffs, rest = {}, []
    for t in e.args:
        st = _softplus_term(t)
        if st is None:
            rest.append(t)
            continue
        c, u = st
        key, sign = (-u, -1) if u.could_extract_minus_sign() else (u, 1)
        pos, neg = coeffs.get(key, (0, 0))
        coeffs[key] = (pos + c, neg) if sign == 1 else (pos, neg + c)
    for u, (pos, neg) in coeffs.items():
        rest.append(sympy.expand(pos + neg) * Softplus(u) - neg * u)
    return Add(*rest)


RULES = (
    # log(1 + exp(u)) -> softplus(u)
    ReplaceOptim(lambda e: isinstance(e, log) and _one_plus_exp(e.args[0]) is not None,
                 lambda e: Softplus(_one_plus_exp(e.args[0]))),
    # (1 + exp(u))**-k -> σ(-u)**k
    ReplaceOptim(lambda e: e.is_Pow and e.exp.is_negative and _one_plus_exp(e.base) is not None,
                 lambda e: Sigmoid(-_one_plus_exp(e.base)) ** (-e.exp)),
    # exp(u) beside σ(±u): σ(u)/σ(-u)
    FunctionOptim(_exp_with_sigmoid),
    # 1 - σ(u) -> σ(-u) (no cancellation)
    ReplaceOptim(lambda e: _neg_sigmoid(e) is not None, lambda e: Sigmoid(-_neg_sigmoid(e))),
    # log σ(u) -> -softplus(-u); log σ(u)**k likewise
    ReplaceOptim(lambda e: isinstance(e, log) and isinstance(e.args[0], Sigmoid),
                 lambda e: -Softplus(-e.args[0].args[0])),
    ReplaceOptim(lambda e: isinstance(e, log) and e.args[0].is_Pow and isinstance(e.args[0].base, Sigmoid),
                 lambda e: -e.args[0].exp * Softplus(-e.args[0].base.args[0])),
    # c1·softplus(-u) + c2·softplus(u) -> (c1 + c2)·softplus(u) - c1·u
    ReplaceOptim(_softplus_pair, _merge_softplus),
    # log softmax(u) -> u - logsumexp(u)
    ReplaceOptim(lambda e: isinstance(e, log) and isinstance(e.args[0], Softmax),
                 lambda e: e.args[0].args[0] - LogSumExp(e.args[0].args[0])),
    # relu / leaky relu Piecewise -> Max
    ReplaceOptim(_is_relu, _relu_value),
    # exp(u) - 1 -> expm1(u)
    ReplaceOptim(lambda e: e.is_Add and sympy.S.NegativeOne in e.args and len(e.args) == 2
                 and any(isinstance(x, exp) for x in e.args),
                 lambda e: expm1(next(x for x in e.args if isinstance(x, exp)).args[0])),
    FunctionOptim(_numbers_to_floats),
)


def stabilize(expr: sympy.Expr) -> sympy.Expr:
    """``expr`` with every rule of :data:`RULES` applied, in order."""
    return optimize(sympy.sympify(expr), RULES)


def log_domain(term: sympy.Expr, a: sympy.Symbol) -> sympy.Expr:
    """What to put for the output ``a`` in a loss ``term`` and its derivative so that its logs stay
    finite: ``Clip(a, lo, hi)`` with a ≥ EPS if it has log(a), a ≤ 1 − EPS if it has log(1 − a);
    ``a`` itself for a loss without logs. (Fused output deltas need no such guard.)"""
    logs = [l.args[0] for l in term.atoms(log)]
    lo = int(any(arg == a for arg in logs))
    hi = int(any(arg == 1 - a for arg in logs))
    return Clip(a, lo, hi) if (lo or hi) else a


# ---------------------------------------------------------------------------------------------
# The printer


class StablePrinter(NumPyPrinter):
    """NumPy code with ``np.`` names, Python-float constants and the stable forms above."""
    _module = "np"

    def __init__(self, settings=None):
        super().__init__({"fully_qualified_modules": True, **(settings or {})})

    def _module_format(self, fqn, register=True):
        if fqn.startswith("numpy."):
            fqn = "np." + fqn[len("numpy."):]
        return super()._module_format(fqn, register)

    def _print_Float(self, expr):
        return repr(float(expr))

    def _print_Add(self, expr, order=None):
        # lead with a term that has no minus sign: ``a2 - Y``, not ``-Y + a2`` (one array negation fewer)
        terms = list(self._as_ordered_terms(expr, order=order))
        i = next((k for k, t in enumerate(terms) if not t.could_extract_minus_sign()), 0)
        terms.insert(0, terms.pop(i))
        return super()._print_Add(Add(*terms, evaluate=False), order="none")

    def _print_Mul(self, expr):
        # -y*(u - v) as y*(v - u): the minus goes into the one sum, not onto an array
        coeff, factors = expr.as_coeff_mul()
        sums = [f for f in factors if f.is_Add]
        if coeff == -1 and len(sums) == 1:
            return self._print(Mul(*[-f if f is sums[0] else f for f in factors], evaluate=False))
        return super()._print_Mul(expr)

    def _print_Sigmoid(self, expr):
        return f"(0.5 + 0.5*np.tanh({self._print(expr.args[0] / 2)}))"

    def _print_Softplus(self, expr):
        arg = expr.args[0]
        u = self._print(arg)
        size = self._print(-arg if arg.could_extract_minus_sign() else arg)  # |−u| is |u|
        # logaddexp(0, v) is log1p(exp(v)) in one call; v >= EXP_LO keeps its exp from underflowing
        return f"(np.maximum({u}, 0) + np.logaddexp(0, np.maximum(-np.abs({size}), EXP_LO)))"

    def _print_exp(self, expr):
        return f"np.exp(np.clip({self._print(expr.args[0])}, EXP_LO, EXP_HI))"

    def _print_expm1(self, expr):
        return f"np.expm1(np.clip({self._print(expr.args[0])}, EXP_LO, EXP_HI))"

    def _print_erf(self, expr):
        return f"_erf({self._print(expr.args[0])})"

    def _print_Clip(self, expr):
        a, lo, hi = expr.args
        a = self._print(a)
        if lo and hi:
            return f"np.clip({a}, EPS, 1 - EPS)"
        return f"np.maximum({a}, EPS)" if lo else f"np.minimum({a}, 1 - EPS)"

    def _print_Max(self, expr):
        return self._pairwise("np.maximum", expr.args)

    def _print_Min(self, expr):
        return self._pairwise("np.minimum", expr.args)

    def _pairwise(self, fn, args):
        out = self._print(args[0])
        for arg in args[1:]:
            out = f"{fn}({out}, {self._print(arg)})"
        return out

    def _print_Relational(self, expr):
        op = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}[expr.rel_op]
        return f"({self._print(expr.lhs)} {op} {self._print(expr.rhs)})"

    def _print_Piecewise(self, expr):
        """Two branches as a boolean mask (values 0/1) or np.where; more as nested np.where."""
        *branches, (last, cond) = expr.args
        if cond != sympy.true:
            raise ValueError(f"Piecewise without a default branch: {expr}")
        out = self._value(last)
        for value, cond in reversed(branches):
            if value == 0 and last == 1 and len(branches) == 1:
                return self._print(cond.negated if isinstance(cond, sympy.core.relational.Relational) else sympy.Not(cond))
            if value == 1 and last == 0 and len(branches) == 1:
                return self._print(cond)
            out = f"np.where({self._print(cond)}, {self._value(value)}, {out})"
        return out

    def _value(self, value):
        # a branch that is a bare number must carry the dtype, or np.where returns float64
        return f"DTYPE({self._print(value)})" if value.is_number else self._print(value)

    def _print_Heaviside(self, expr):
        u = self._print(expr.args[0])
        half = self._print(expr.args[1]) if len(expr.args) > 1 else "0.5"
        return f"np.heaviside({u}, DTYPE({half}))"

    def _print_Dot(self, expr):
        return f"({self._print(expr.args[0])} @ {self._print(expr.args[1])})"

    def _print_T(self, expr):
        return f"{self._print(expr.args[0])}.T"

    # sums as methods: ``x.sum(axis=0)`` skips np.sum's Python wrapper (~1.5 µs a call, as much as
    # the sum of a small array)
    def _summand(self, arg):
        text = self._print(arg)
        return text if arg.is_Symbol or text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]) else f"({text})"

    def _print_RowSum(self, expr):
        return f"{self._summand(expr.args[0])}.sum(axis=1, keepdims=True)"

    def _print_ColSum(self, expr):
        return f"{self._summand(expr.args[0])}.sum(axis=0)"

    def _print_Total(self, expr):
        return f"{self._summand(expr.args[0])}.sum()"

    def _print_Softmax(self, expr):
        return f"_softmax({self._print(expr.args[0])})"

    def _print_Kernel(self, expr):
        return f"{expr.kernel}({', '.join(self._print(a) for a in expr.args[1:])})"

    def _print_Tuple(self, expr):
        items = [self._print(a) for a in expr.args]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"

    def _print_LogSumExp(self, expr):
        return f"_logsumexp({self._print(expr.args[0])})"


def _balanced(text: str) -> bool:
    """Whether the parentheses in ``text`` never close more than they opened."""
    depth = 0
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if depth < 0:
            return False
    return depth == 0


class TorchPrinter(StablePrinter):
    """PyTorch code for the same expressions, in the same stable forms: ``torch.`` functions under
    torch's names (``torch.atan``, not arctan), ``torch.clamp`` where NumPy clips or takes the
    maximum with a number, ``log1p(exp(v))`` for NumPy's ``logaddexp(0, v)`` (v <= 0 there),
    ``torch.erf``, sums with ``dim=``/``keepdim=``, and two-number Piecewise branches built from a
    tensor (``torch.where`` of two numbers would give the default dtype, float32). The names the
    code refers to (``EPS``, ``EXP_LO``, ``EXP_HI``, ``_softmax``, ``_logsumexp``) are those of
    ``templates/functions_torch.py.jinja``.

    >>> from sympy import Symbol, exp, log
    >>> u = Symbol("u", real=True)
    >>> torch_code(stabilize(log(1 / (1 + exp(-u)))))
    '-(torch.clamp(-u, min=0) + torch.log1p(torch.exp(torch.clamp(-torch.abs(u), min=EXP_LO))))'
    """
    _module = "torch"

    def _module_format(self, fqn, register=True):
        head, _, name = fqn.partition(".")
        if head in ("numpy", "np", "torch") and name:
            fqn = "torch." + _TORCH_NAMES.get(name, name)
        return NumPyPrinter._module_format(self, fqn, register)

    def _print_Sigmoid(self, expr):
        return f"(0.5 + 0.5*torch.tanh({self._print(expr.args[0] / 2)}))"

    def _print_Softplus(self, expr):
        arg = expr.args[0]
        u = self._print(arg)
        size = self._print(-arg if arg.could_extract_minus_sign() else arg)
        return f"(torch.clamp({u}, min=0) + torch.log1p(torch.exp(torch.clamp(-torch.abs({size}), min=EXP_LO))))"

    def _print_exp(self, expr):
        return f"torch.exp(torch.clamp({self._print(expr.args[0])}, EXP_LO, EXP_HI))"

    def _print_expm1(self, expr):
        return f"torch.expm1(torch.clamp({self._print(expr.args[0])}, EXP_LO, EXP_HI))"

    def _print_erf(self, expr):
        return f"torch.erf({self._print(expr.args[0])})"

    def _print_Clip(self, expr):
        a, lo, hi = expr.args
        a = self._print(a)
        if lo and hi:
            return f"torch.clamp({a}, EPS, 1 - EPS)"
        return f"torch.clamp({a}, min=EPS)" if lo else f"torch.clamp({a}, max=1 - EPS)"

    def _pairwise(self, fn, args):
        bound = "min" if fn == "np.maximum" else "max"
        out, out_number = self._print(args[0]), args[0].is_number
        for arg in args[1:]:
            if arg.is_number or out_number:
                tensor, number = (out, self._print(arg)) if arg.is_number else (self._print(arg), out)
                out = f"torch.clamp({tensor}, {bound}={number})"
            else:
                out = f"torch.{fn[3:]}({out}, {self._print(arg)})"
            out_number = False
        return out

    def _print_Piecewise(self, expr):
        *branches, (last, cond) = expr.args
        if cond != sympy.true:
            raise ValueError(f"Piecewise without a default branch: {expr}")
        if len(branches) == 1 and {branches[0][0], last} == {sympy.S.Zero, sympy.S.One}:
            return super()._print_Piecewise(expr)     # a boolean mask
        out, number = self._print(last), last.is_number
        for value, cond in reversed(branches):
            if value.is_number and number:
                arrays = sorted(cond.free_symbols, key=str)
                if not arrays:
                    raise ValueError(f"Piecewise of numbers on a condition without arrays: {expr}")
                out = f"torch.full_like({self._print(arrays[0])}, {out})"
            out, number = f"torch.where({self._print(cond)}, {self._print(value)}, {out})", False
        return out

    def _print_Heaviside(self, expr):
        u = self._print(expr.args[0])
        half = self._print(expr.args[1]) if len(expr.args) > 1 else "0.5"
        return f"torch.heaviside({u}, torch.full_like({u}, {half}))"

    def _print_RowSum(self, expr):
        return f"{self._summand(expr.args[0])}.sum(dim=1, keepdim=True)"

    def _print_ColSum(self, expr):
        return f"{self._summand(expr.args[0])}.sum(dim=0)"


# NumPy's names of the functions whose torch names differ
_TORCH_NAMES = {"arctan": "atan", "arcsinh": "asinh", "arctanh": "atanh", "arccos": "acos", "arcsin": "asin",
                "arccosh": "acosh", "absolute": "abs", "multiply": "mul", "divide": "div", "subtract": "sub",
                "negative": "neg", "clip": "clamp", "power": "pow"}

BACKENDS = ("numpy", "torch")
_PRINTERS: dict = {}


def code(expr: sympy.Expr, backend: str = "numpy") -> str:
    """The NumPy (or torch) code of ``expr`` (already stabilized, or plain)."""
    printer = _PRINTERS.get(backend)
    if printer is None:
        printer = _PRINTERS[backend] = {"numpy": StablePrinter, "torch": TorchPrinter}[backend]()
    return printer.doprint(expr)


def torch_code(expr: sympy.Expr) -> str:
    """The PyTorch code of ``expr`` (see :class:`TorchPrinter`)."""
    return code(expr, "torch")


# ---------------------------------------------------------------------------------------------
# In-place code: the same expressions written into preallocated arrays with ``out=``.
#
# Why: a freshly allocated array of a few hundred kB comes from the C allocator, which hands large
# freed blocks back to the OS; measured here, the allocating form of a 784-256-256-256-10 backward
# pass took ~1,800 page faults a call and ran 1.5x slower than the same code writing into buffers.

#
# On small arrays each NumPy call costs ~0.5-1 µs whatever it computes, so the NumPy lines also avoid
# what adds to that: a Python number operand (the ufunc converts it on every call, ~0.4 µs: numbers
# print as ``_C[0.5]``, 0-d arrays of DTYPE the generated module keeps), np.matmul's extra dispatch
# (2-D products print as ``np.dot``, 0.3-1 µs less a call at these sizes), and reductions along the
# examples (``x.sum(axis=0)`` over a (32, 32) array takes ~3 µs, the product ``ones @ x`` ~1 µs:
# ``np.dot(_ones(N), x)``). The batch mean's 1/N prints as ``inv_N``, a 0-d array the generated
# function sets (to learning_rate/N in an SGD step, whose gradients are linear in it).

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


class InplaceWriter:
    """Lines of NumPy that compute an expression into the array named ``out``, using ufuncs with
    ``out=`` and scratch arrays from ``scratch()`` (a callable giving a fresh buffer name of
    ``out``'s shape) for sub-expressions that cannot be folded into ``out``. Anything it has no
    rule for is computed by the allocating code and copied (``np.copyto``). Every line goes through
    :meth:`op`, :meth:`copy` and :meth:`code`, which a backend's writer overrides."""

    def __init__(self, scratch):
        self.scratch = scratch
        self.lines: list[str] = []

    def emit(self, line):
        self.lines.append(line)

    # ---- the backend's words
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

    # ---- the rules
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
        """``out = e`` for a scalar ``e`` = c·Σ(x)·(1/N)... (the loss): x computed into scratch
        arrays, its products of two arrays summed by np.vdot. None if ``e`` is not of that form."""
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
            s = self.scratch()
            negs = [_negated(t) for t in terms]
            if all(n is not None for n in negs):    # -Σ x: the sign on the sum, not on every entry
                self.write(sympy.Add(*negs), s)
                parts.insert(0, ("-", f"np.add.reduce({s}, axis=None)"))
            else:
                self.write(sympy.Add(*terms), s)
                parts.insert(0, ("+", f"np.add.reduce({s}, axis=None)"))
        total = ("-" if parts[0][0] == "-" else "") + parts[0][1] + "".join(f" {sign} {p}" for sign, p in parts[1:])
        placeholder = sympy.Symbol("_TOTAL_")
        self.emit(f"{out} = " + code(Mul(*[f for f in factors if f is not sums[0]], placeholder))
                  .replace("_TOTAL_", f"({total})" if len(parts) > 1 or parts[0][0] == "-" else total))
        return self.lines

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
            self.emit(f"torch.{_TORCH_NAMES.get(fn, fn)}({', '.join(args)}, out={out})")

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
