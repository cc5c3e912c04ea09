"""Expressions as people read them in plain text: the one text printer of symbackprop.

SymPy's ``StrPrinter`` writes Python (``Piecewise((1/100, a <= 0), (1, True))``, ``Abs(z)``,
``x**2``, ``RowSum(y)``); :class:`TextPrinter` changes only what must read as mathematics:

>>> from sympy import Abs, Piecewise, Rational, Symbol, diff
>>> a, z = Symbol("a", real=True), Symbol("z", real=True)
>>> text(Piecewise((Rational(1, 100), a <= 0), (1, True)))
'1/100 if a ≤ 0 else 1'
>>> text(1 / (1 + Abs(z)) ** 2)
'1/(|z| + 1)²'
>>> text((a + Rational(1, 100)) ** Rational(-3, 2))
'1/(a + 1/100)^(3/2)'
>>> from symbackprop.entries.arrayops import RowSum
>>> text(a * RowSum(Symbol("y")) - Symbol("y"))
'a*Σ_j y_j - y'

Symbols print by the names given (``{W2_0_1: "W2[1,2]"}``), else by their own.
"""
import sympy
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
_RELATIONS = {"<=": "≤", ">=": "≥", "<": "<", ">": ">", "==": "=", "!=": "≠"}


class TextPrinter(StrPrinter):
    """``StrPrinter`` with conditionals as ``A if c else B``, |x|, x², Σ, and named symbols."""
    printmethod = "_symbackprop_text"   # not _sympystr: Indexed's would print a[j]

    def __init__(self, names: dict | None = None, settings: dict | None = None):
        super().__init__(settings)
        self.names = names or {}
        self._top = None

    def doprint(self, expr):
        self._top = expr
        return super().doprint(expr)

    def _print_Symbol(self, expr):
        return self.names.get(expr, expr.name)

    def _print_Piecewise(self, expr):
        # the left branch owns its condition, as the registry writes kinks: "0 if z ≤ 0 else z"
        parts = []
        for value, cond in expr.args:
            shown = self._branch(value)
            parts.append(shown if cond == sympy.true else f"{shown} if {self._print(cond)} else")
        if expr.args[-1][1] != sympy.true:
            parts.append("undefined")
        out = " ".join(parts)
        return out if expr is self._top else f"({out})"

    def _branch(self, value):
        return f"({self._print(value)})" if isinstance(value, sympy.Piecewise) else self._print(value)

    def _print_Relational(self, expr):
        op = _RELATIONS.get(expr.rel_op)
        if op is None:
            return super()._print_Relational(expr)
        prec = PRECEDENCE["Relational"]
        return f"{self.parenthesize(expr.lhs, prec)} {op} {self.parenthesize(expr.rhs, prec)}"

    def _print_Abs(self, expr):
        return f"|{self._print(expr.args[0])}|"

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.base, expr.exp
        if exp.is_Integer and exp > 1:
            return self.parenthesize(base, PRECEDENCE["Pow"], strict=False) + str(exp).translate(_SUPERSCRIPT)
        if exp.is_Integer and exp < -1:
            return "1/" + self._print_Pow(sympy.Pow(base, -exp, evaluate=False))
        if exp.is_Rational and not exp.is_Integer and abs(exp) != sympy.S.Half:
            if exp < 0:
                return "1/" + self._print_Pow(sympy.Pow(base, -exp, evaluate=False))
            return f"{self.parenthesize(base, PRECEDENCE['Pow'], strict=True)}^({exp.p}/{exp.q})"
        out = super()._print_Pow(expr, rational)
        return out.replace("**", "^")         # mathematics, not Python

    def _print_Sum(self, expr):
        body = expr.function
        shown = f"({self._print(body)})" if body.is_Add else self._print(body)
        # inside a product, in parentheses: (Σ_j (a_j - y_j)²)/n, never Σ_j (a_j - y_j)²/n
        limits = ", ".join(f"{self._print(i)}={self._print(lo)}..{self._print(hi)}" if lo is not None else
                           self._print(i) for i, lo, hi in (_limit(x) for x in expr.limits))
        out = f"Σ_({limits}) {shown}" if "," in limits else f"Σ_{{{limits}}} {shown}"
        return out if expr is self._top else f"({out})"

    def _print_Indexed(self, expr):
        return f"{self._print(expr.base.label)}_{','.join(self._print(i) for i in expr.indices)}"

    # the array operations of the matrix form (symbackprop.entries.arrayops), by class name so that
    # printing needs nothing from the modules that define them
    def _print_RowSum(self, expr):
        return "Σ_j " + self._summand(expr.args[0], "j")

    def _print_ColSum(self, expr):
        return "Σ_n " + self._summand(expr.args[0], "n")

    def _print_Total(self, expr):
        return "Σ " + self._summand(expr.args[0], None)

    def _summand(self, arg, index):
        if index is not None:  # every array in the summand, element j: a*g -> a_j*g_j
            arg = arg.xreplace({s: sympy.Symbol(f"{self._print(s)}_{index}") for s in arg.free_symbols})
        text = self._print(arg)
        return f"({text})" if arg.is_Add else text

    def _print_Sigmoid(self, expr):
        return f"σ({self._print(expr.args[0])})"

    def _print_Softplus(self, expr):
        return f"softplus({self._print(expr.args[0])})"

    def _print_Indicator(self, expr):
        return f"[{self._print(expr.args[0])} = {self._print(expr.args[1])}]"


def _limit(limit):
    return (limit[0], limit[1], limit[2]) if len(limit) == 3 else (limit[0], None, None)


def text(expr, names: dict | None = None) -> str:
    """``expr`` as plain text; ``names`` maps symbols to the names to print for them."""
    return TextPrinter(names).doprint(sympy.sympify(expr))
