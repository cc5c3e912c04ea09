"""check's local formulas printed as JavaScript interval code for the interactive worksheet.

:class:`IntervalPrinter` is SymPy's ``JavascriptCodePrinter`` with each operation printed as a call of
the interval module ``symbackprop/static/intervals.js`` (``I.add``, ``I.exp``, ``I.piecewise``, ...)
instead of JavaScript's arithmetic, rule for rule as :func:`symbackprop.check.intervals._compile`
reads the same expression: sums and products folded left in the expression's own argument order,
a number exact where its float is the number and widened by a float step where not, x**(1/2) as
``sqrt``, a Piecewise's conditions decided on intervals and its branches evaluated on the box cut
by the condition. A symbol is ``e[k]``, its place in the worksheet's array of values; an
optimizer's hyperparameters are constants of the formula.

:func:`formula` adds what :func:`~symbackprop.check.intervals.bound` adds: the derivative in each
symbol that occurs more than once (the mean-value form), ``null`` where one cannot be printed.

>>> import sympy
>>> a, b = sympy.symbols("a b", real=True)
>>> js(a * (1 - a) + sympy.Rational(1, 3), {a: 0})
'I.sum([I.cw(0.3333333333333333), I.prod([e[0], I.sum([I.c(1.0), I.prod([I.c(-1.0), e[0]])])])])'
"""
import sympy
from sympy.printing.jscode import JavascriptCodePrinter

from ..check.intervals import _repeated

FUNCTIONS = {sympy.exp: "I.exp", sympy.log: "I.log", sympy.tanh: "I.tanh", sympy.erf: "I.erf",
             sympy.Abs: "I.abs", sympy.sign: "I.sign", sympy.atan: "I.atan", sympy.asinh: "I.asinh",
             sympy.sin: "I.sin", sympy.cos: "I.cos", sympy.Heaviside: "I.heaviside"}
RELATIONS = {sympy.LessThan: "<=", sympy.StrictLessThan: "<", sympy.GreaterThan: ">=", sympy.StrictGreaterThan: ">"}


class NoRule(ValueError):
    """An expression the interval rules do not cover (check's ``_compile`` refuses it too)."""


class IntervalPrinter(JavascriptCodePrinter):
    """Interval code: ``symbols`` maps each symbol to its place in the values array ``e``,
    ``constants`` each hyperparameter symbol to its value."""

    def __init__(self, symbols: dict, constants: dict | None = None):
        super().__init__({"strict": False})
        self.places, self.constants = symbols, constants or {}

    def _print_Symbol(self, expr):
        if expr in self.constants:
            return self._number(self.constants[expr], True)
        if expr not in self.places:
            raise NoRule(f"no value for the symbol {expr}")
        return f"e[{self.places[expr]}]"

    def _number(self, value: float, exact: bool) -> str:
        return f"I.{'c' if exact else 'cw'}({_float(value)})"

    def _print_Number(self, expr):
        f = float(expr)
        return self._number(f, bool(expr.is_Float or (expr.is_Rational and sympy.Rational(f) == expr)))

    _print_Integer = _print_Rational = _print_Float = _print_Zero = _print_One = _print_NegativeOne = _print_Number
    _print_Half = _print_Infinity = _print_NegativeInfinity = _print_Number

    def _print_NumberSymbol(self, expr):
        return self._number(float(expr), False)

    _print_Exp1 = _print_Pi = _print_EulerGamma = _print_GoldenRatio = _print_Catalan = _print_NumberSymbol

    def _print_Add(self, expr, order=None):
        return f"I.sum([{', '.join(self._print(a) for a in expr.args)}])"

    def _print_Mul(self, expr):
        return f"I.prod([{', '.join(self._print(a) for a in expr.args)}])"

    def _print_Pow(self, expr, rational=False):
        base = self._print(expr.base) if expr.base != sympy.E or expr.exp.is_Number else None
        if expr.exp.is_Number:
            if expr.exp == sympy.S.Half:
                return f"I.sqrt({base})"
            return f"I.power({base}, {_float(float(expr.exp))})"
        if expr.base == sympy.E:
            return f"I.exp({self._print(expr.exp)})"
        return f"I.powi({base}, {self._print(expr.exp)})"

    def _print_Max(self, expr):
        return f"I.max([{', '.join(self._print(a) for a in expr.args)}])"

    def _print_Min(self, expr):
        return f"I.min([{', '.join(self._print(a) for a in expr.args)}])"

    def _print_Function(self, expr):
        if expr.func in FUNCTIONS:
            return f"{FUNCTIONS[expr.func]}({self._print(expr.args[0])})"
        raise NoRule(f"no interval rule for {expr.func.__name__}")

    def _print_Indicator(self, expr):
        # [x = v] of an id (check/intervals.py's rule): exact where the id is
        return f"I.indicator({self._print(expr.args[0])}, {_float(float(expr.args[1]))})"

    _print_exp = _print_log = _print_tanh = _print_erf = _print_Abs = _print_sign = _print_Function
    _print_atan = _print_asinh = _print_sin = _print_cos = _print_Heaviside = _print_Function

    def _print_Piecewise(self, expr):
        branches = [f"[function (e) {{ return {self._print(e)}; }}, {self._condition(c)}, {self._region(c)}]"
                    for e, c in expr.args]
        return f"I.piecewise(e, [{', '.join(branches)}])"

    def _condition(self, cond) -> str:
        return f"function (e) {{ return {self._decide(cond)}; }}"

    def _decide(self, cond) -> str:
        if cond is sympy.true:
            return "true"
        if cond is sympy.false:
            return "false"
        if isinstance(cond, sympy.core.relational.Relational):
            op = RELATIONS.get(type(cond))
            left, right = self._print(cond.lhs), self._print(cond.rhs)
            return f"I.cmp({op!r}, {left}, {right})".replace("'", '"') if op else "null"
        if isinstance(cond, (sympy.And, sympy.Or)):
            return f"I.{'all' if isinstance(cond, sympy.And) else 'any'}([{', '.join(self._decide(c) for c in cond.args)}])"
        if isinstance(cond, sympy.Not):
            return f"I.not({self._decide(cond.args[0])})"
        return "null"

    def _region(self, cond) -> str:
        """check's ``_region``: [symbol, the interval where cond holds, where it fails], or null."""
        if not isinstance(cond, tuple(RELATIONS)):
            return "null"
        lhs, rhs = cond.lhs, cond.rhs
        if lhs.is_Symbol and rhs.is_Number:
            s, c, below = lhs, float(rhs), isinstance(cond, (sympy.LessThan, sympy.StrictLessThan))
        elif rhs.is_Symbol and lhs.is_Number:
            s, c, below = rhs, float(lhs), isinstance(cond, (sympy.GreaterThan, sympy.StrictGreaterThan))
        else:
            return "null"
        if s not in self.places:
            raise NoRule(f"a condition on {s}, which has no value")
        low, high = ("-Infinity", _float(c)), (_float(c), "Infinity")
        first, second = (low, high) if below else (high, low)
        return f"[{self.places[s]}, {first[0]}, {first[1]}, {second[0]}, {second[1]}]"

    def emptyPrinter(self, expr):
        raise NoRule(f"no interval rule for {type(expr).__name__}")

    _print_Basic = _print_Expr = _print_Relational = _print_BooleanTrue = _print_BooleanFalse = emptyPrinter


def _float(value: float) -> str:
    """A float as JavaScript reads back the same float (both use the shortest round-trip digits)."""
    return "Infinity" if value == float("inf") else "-Infinity" if value == float("-inf") else \
        "NaN" if value != value else repr(float(value))


def js(expr, symbols: dict, constants: dict | None = None) -> str:
    """``expr`` as a JavaScript expression of the interval module over the values array ``e``."""
    return IntervalPrinter(symbols, constants)._print(sympy.sympify(expr))


def formula(expr, symbols: dict, constants: dict | None = None) -> str:
    """``[natural(e), repeated]``: what ``bound`` evaluates — the natural extension, and for each symbol
    occurring more than once (where it may jump, none) its place and derivative, as
    :func:`~symbackprop.check.intervals._derivative` takes it (of a sum, the terms holding it)."""
    expr = sympy.sympify(expr)
    natural = js(expr, symbols, constants)
    repeated = []
    for s in _repeated(expr):
        if s in (constants or {}):       # a hyperparameter's interval is a point: never wide
            continue
        part = (sympy.Add(*[sympy.diff(a, s) for a in expr.args if s in a.free_symbols]) if expr.is_Add
                else sympy.diff(expr, s))
        try:
            derivative = f"function (e) {{ return {js(part, symbols, constants)}; }}"
        except NoRule:
            derivative = "null"
        repeated.append(f"[{symbols[s]}, {derivative}]")
    tail = f"[{', '.join(repeated)}]" if repeated else "null"
    return f"[function (e) {{ return {natural}; }}, {tail}]"
