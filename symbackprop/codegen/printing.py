"""The code printers: SymPy expressions as NumPy (or PyTorch) code, in stable forms.

:class:`StablePrinter`, a ``NumPyPrinter``, prints the stable primitives of
:mod:`symbackprop.entries.arrayops` (:class:`Sigmoid`, :class:`Softplus`, :class:`Clip`, and the row-wise
array operations of the matrix form), which the rules of :mod:`symbackprop.codegen.rewrites` introduce, in
forms that raise no floating-point warning under ``numpy.errstate(all="raise")`` for |z| up to 1e4:
σ(u) as ``0.5 + 0.5*np.tanh(0.5*u)`` (no exp at all: even ``np.exp(-1e4)`` raises *underflow*),
softplus as max(u, 0) + logaddexp(0, max(−|u|, EXP_LO)) (no exp argument below ``EXP_LO``),
every other exp clipped to [``EXP_LO``, ``EXP_HI``] (exp(EXP_LO) is tiny**(1/3), so products of
up to three such small factors stay normal numbers: no *underflow* either), erf through ``_erf``
(``math.erf``; NumPy has none), two-branch Piecewise as ``np.where`` (``np.select`` is several times slower) or a boolean mask, sums as
methods (``x.sum(axis=0)``: np.sum's Python wrapper costs as much as a small sum), and sums
of terms with a positive term first (``a - y``, not ``-y + a``: one array negation fewer).
:class:`TorchPrinter` prints the same forms as PyTorch; :func:`code` prints with either.
(The same expressions written into preallocated arrays: :mod:`symbackprop.codegen.inplace`.)

The printed code refers to a few names the generated module defines (``templates/functions.py.jinja``):
``np``, ``DTYPE``, ``EPS``, ``EXP_LO``, ``EXP_HI``, ``_erf``, ``_softmax``, ``_logsumexp``.

>>> from sympy import Symbol, exp, log
>>> from symbackprop.codegen.rewrites import stabilize
>>> u = Symbol("u", real=True)
>>> code(stabilize(log(1 / (1 + exp(-u)))))
'-(np.maximum(-u, 0) + np.logaddexp(0, np.maximum(-np.abs(u), EXP_LO)))'
"""
import sympy
from sympy import Add, Mul
from sympy.printing.numpy import NumPyPrinter


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

    def _print_Indicator(self, expr):
        return f"np.where({self._print(expr.args[0])} == {self._print(expr.args[1])}, 1.0, 0.0)"

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
        return f"{self._summand(expr.args[0])}.sum(axis=-1, keepdims=True)"

    def _print_ColSum(self, expr):
        return f"{self._summand(expr.args[0])}.sum(axis=0)"

    def _print_Total(self, expr):
        return f"{self._summand(expr.args[0])}.sum()"

    def _print_Softmax(self, expr):
        return f"_softmax({self._print(expr.args[0])})"

    def _print_Kernel(self, expr):
        args = [self._print(a) for a in expr.call_args]
        if expr.state is not None:      # the workspace dict the calls of one layer share
            args.append(f'ws=_ws.setdefault("{expr.state}", {{}})')
        return f"{expr.kernel}({', '.join(args)})"

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
    >>> from symbackprop.codegen.rewrites import stabilize
    >>> u = Symbol("u", real=True)
    >>> torch_code(stabilize(log(1 / (1 + exp(-u)))))
    '-(torch.clamp(-u, min=0) + torch.log1p(torch.exp(torch.clamp(-torch.abs(u), min=EXP_LO))))'
    """
    _module = "torch"

    def _module_format(self, fqn, register=True):
        head, _, name = fqn.partition(".")
        if head in ("numpy", "np", "torch") and name:
            fqn = "torch." + TORCH_NAMES.get(name, name)
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
        return f"{self._summand(expr.args[0])}.sum(dim=-1, keepdim=True)"

    def _print_ColSum(self, expr):
        return f"{self._summand(expr.args[0])}.sum(dim=0)"


# NumPy's names of the functions whose torch names differ
TORCH_NAMES = {"arctan": "atan", "arcsinh": "asinh", "arctanh": "atanh", "arccos": "acos", "arcsin": "asin",
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
