"""Parse a user's formula (a custom activation) without ever evaluating it as Python.

``sympify`` and ``parse_expr`` call ``eval``. Here the text is parsed by ``ast`` and each node is
checked against an allow-list and translated to SymPy by hand: numbers, the given variables, a few
constants, + - * / ** and unary minus, and calls of a short list of functions. Anything else —
attribute access, subscripts, lambdas, comprehensions, unknown names or functions, keyword
arguments, several lines, comments, characters that are not printable — is refused with a one-line
:class:`SpecError`.

The work a formula may ask for is bounded, and a refusal names the limit it hit: its length
(:data:`MAX_LENGTH` characters), the arguments of ``max``/``min`` (:data:`MAX_ARGUMENTS`), the
size of its derivative (:data:`MAX_OPERATIONS` operations, SymPy's ``count_ops``; every backward
step and every printed line is built from it) and the time to build both
(:data:`limits.FORMULA_SECONDS <symbackprop.spec.limits.FORMULA_SECONDS>`). A formula must be
real-valued: a constant that is not real (``sqrt(-1)``, ``log(-1)``, ``(-1)**0.5``) is refused.

``max`` and ``min`` of two values are SymPy's ``Max`` and ``Min``; of more, :class:`Max` and
:class:`Min` below, whose derivative is written with the pairwise steps H(a_i − a_j) instead of
SymPy's H(a_i − Max(the others)), which NumPy printing cannot evaluate and which grows as n³.
At a tie of two arguments either way gives each half the derivative, as JAX does.

>>> import sympy
>>> z = sympy.Symbol("z", real=True)
>>> parse_formula("z/(1 + abs(z))", {"z": z}, "activations[0]")
z/(Abs(z) + 1)
"""
import ast
import math

import sympy

from . import limits
from ..errors import SpecError, shown

FUNCTIONS = {
    "exp": sympy.exp, "log": sympy.log, "sqrt": sympy.sqrt, "abs": sympy.Abs,
    "sin": sympy.sin, "cos": sympy.cos, "tanh": sympy.tanh, "atan": sympy.atan,
    "asinh": sympy.asinh, "erf": sympy.erf, "max": sympy.Max, "min": sympy.Min,
}
CONSTANTS = {"pi": sympy.pi, "e": sympy.E}
_BINARY = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b, ast.Pow: lambda a, b: a**b,
}
MAX_LENGTH = 400
MAX_EXPONENT = 100          # z**(10**10) or 9**9**9 would hang SymPy or overflow every float
MAX_NUMBER = 1e300
MAX_ARGUMENTS = 8           # of max() and min(): SymPy's Max compares its arguments pairwise
# The derivative's size, SymPy's count_ops. The registry's activations have at most 20, and a
# 400-character formula of ordinary functions under 300 (20 terms sin(k z) exp(z/k): 259); max()
# of 39 powers, which took 31 s to differentiate with SymPy's Max, would have thousands.
MAX_OPERATIONS = 500


class _Pairwise:
    """The derivative of a max or min of n > 2 arguments with respect to its i-th argument:
    the product of H(a_i − a_j) (H(a_j − a_i) for min) over the others."""

    def fdiff(self, argindex=1):
        args = self.args
        if len(args) <= 2:
            return super().fdiff(argindex)
        i = argindex - 1
        sign = 1 if isinstance(self, sympy.Max) else -1
        return sympy.Mul(*[sympy.Heaviside(sign * (args[i] - other)) for j, other in enumerate(args) if j != i])

    # SymPy's simplification of the arguments tests ``cls == Min`` and ``con == cls``: run it as
    # the SymPy class this one extends, or it keeps the wrong argument
    @classmethod
    def _collapse_arguments(cls, args, **assumptions):
        return cls.extends._collapse_arguments(args, **assumptions)

    @classmethod
    def _find_localzeros(cls, values, **options):
        return cls.extends._find_localzeros(values, **options)


class Max(_Pairwise, sympy.Max):
    """SymPy's Max of three or more arguments, with a derivative NumPy printing can evaluate."""
    extends = sympy.Max


class Min(_Pairwise, sympy.Min):
    """SymPy's Min of three or more arguments, with a derivative NumPy printing can evaluate."""
    extends = sympy.Min


def _minmax(name, args):
    kind = sympy.Max if name == "max" else sympy.Min
    flat = []
    for arg in args:          # max(a, max(b, c)) is max(a, b, c), as SymPy would flatten it
        flat += list(arg.args) if isinstance(arg, kind) else [arg]
    if len(flat) > MAX_ARGUMENTS:
        return len(flat)
    return (kind if len(flat) <= 2 else Max if name == "max" else Min)(*flat)


def parse_formula(text: str, variables: dict[str, sympy.Symbol], field: str) -> sympy.Expr:
    """The SymPy expression ``text`` denotes, built from an allow-list; SpecError otherwise."""
    if not isinstance(text, str):
        raise SpecError(field, f"expected a formula as a string, got {type(text).__name__}")
    if "\n" in text or "\r" in text or ";" in text:
        raise SpecError(field, "a formula must be a single expression on one line")
    if len(text) > MAX_LENGTH:
        raise SpecError(field, f"formula longer than {MAX_LENGTH} characters (the limit)")
    if "#" in text:
        raise SpecError(field, "a formula has no comments (#)")
    odd = next((ch for ch in text if not (ch == " " or ch.isprintable())), None)
    if odd is not None:
        raise SpecError(field, f"a formula is printable text: it holds the character U+{ord(odd):04X}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        raise SpecError(field, f"cannot parse formula {shown(text)}") from None
    with limits.deadline(limits.FORMULA_SECONDS, field, "building the formula and its derivative"):
        expr = _build(tree.body, variables, field)
        if not any(s in expr.free_symbols for s in variables.values()):
            raise SpecError(field, f"formula {shown(text)} does not use {', '.join(variables)}")
        if expr.is_extended_real is False:
            raise SpecError(field, f"formula {shown(text)} is not real-valued")
        size = max(sympy.count_ops(sympy.diff(expr, s)) for s in variables.values())
    if size > MAX_OPERATIONS:
        raise SpecError(field, f"formula too large: its derivative has {size} operations "
                               f"(the limit is {MAX_OPERATIONS})")
    return expr


def _build(node, variables, field):
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        if isinstance(node.value, float) and not math.isfinite(node.value):
            raise SpecError(field, "numbers in a formula must be finite")
        value = sympy.Rational(str(node.value)) if isinstance(node.value, float) else sympy.Integer(node.value)
        return _finite(value, field)
    if isinstance(node, ast.Name):
        if node.id in variables:
            return variables[node.id]
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        allowed = ", ".join([*variables, *CONSTANTS])
        raise SpecError(field, f"unknown name {shown(node.id)} in formula (allowed: {allowed})")
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _build(node.left, variables, field), _build(node.right, variables, field)
        if isinstance(node.op, ast.Pow) and right.is_Number and abs(right) > MAX_EXPONENT:
            raise SpecError(field, f"exponent {right} is too large (at most {MAX_EXPONENT} in size)")
        return _finite(_BINARY[type(node.op)](left, right), field, node)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitXor):
        raise SpecError(field, "use ** for powers, not ^")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = _build(node.operand, variables, field)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in FUNCTIONS:
            raise SpecError(field, f"function {shown(ast.unparse(node.func))} is not allowed "
                                   f"(allowed: {', '.join(FUNCTIONS)})")
        if node.keywords or not node.args or any(isinstance(a, ast.Starred) for a in node.args):
            raise SpecError(field, f"{name}() takes plain positional arguments")
        args = [_build(a, variables, field) for a in node.args]
        if name not in ("max", "min"):
            if len(args) != 1:
                raise SpecError(field, f"{name}() takes one argument")
            return _finite(FUNCTIONS[name](*args), field, node)
        expr = _minmax(name, args)
        if isinstance(expr, int):
            raise SpecError(field, f"{name}() of {expr} values: at most {MAX_ARGUMENTS} (the limit)")
        return _finite(expr, field, node)
    raise SpecError(field, f"{type(node).__name__} is not allowed in a formula: {shown(ast.unparse(node))}")


def _finite(expr, field, node=None):
    """``expr`` unless it is or holds an infinity, an undefined value (z/0), a number beyond float
    range, or a constant that is not real (sqrt(-1), log(-1) = iπ, (-1)**(1/3))."""
    if expr.has(sympy.zoo, sympy.oo, -sympy.oo, sympy.nan):
        raise SpecError(field, "the formula has an infinite or undefined part (a division by zero?)")
    if any(abs(n) > MAX_NUMBER for n in expr.atoms(sympy.Number)):
        raise SpecError(field, f"a number in the formula is beyond {MAX_NUMBER:g}")
    if expr.has(sympy.I) or (not expr.free_symbols and not _real_constant(expr)):
        part = f" ({shown(ast.unparse(node))} is not a real number)" if node is not None else ""
        raise SpecError(field, f"the formula is not real-valued{part}")
    return expr


def _real_constant(expr) -> bool:
    if expr.is_extended_real is not None:
        return bool(expr.is_extended_real)
    value = expr.evalf(30)      # SymPy could not decide: look at the number
    return value.is_extended_real is True or abs(sympy.im(value)) < 1e-25 * max(1, abs(sympy.re(value)))
