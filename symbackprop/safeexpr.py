"""Parse a user's formula (a custom activation) without ever evaluating it as Python.

``sympify`` and ``parse_expr`` call ``eval``. Here the text is parsed by ``ast`` and each node is
checked against an allow-list and translated to SymPy by hand: numbers, the given variables, a few
constants, + - * / ** and unary minus, and calls of a short list of functions. Anything else —
attribute access, subscripts, lambdas, comprehensions, unknown names or functions, keyword
arguments, several lines — is refused with a one-line :class:`SpecError`.

>>> import sympy
>>> z = sympy.Symbol("z", real=True)
>>> parse_formula("z/(1 + abs(z))", {"z": z}, "activations[0]")
z/(Abs(z) + 1)
"""
import ast
import math

import sympy

from .errors import SpecError

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


def parse_formula(text: str, variables: dict[str, sympy.Symbol], field: str) -> sympy.Expr:
    """The SymPy expression ``text`` denotes, built from an allow-list; SpecError otherwise."""
    if not isinstance(text, str):
        raise SpecError(field, f"expected a formula as a string, got {type(text).__name__}")
    if "\n" in text or "\r" in text or ";" in text:
        raise SpecError(field, "a formula must be a single expression on one line")
    if len(text) > MAX_LENGTH:
        raise SpecError(field, f"formula longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        raise SpecError(field, f"cannot parse formula {text!r}") from None
    expr = _build(tree.body, variables, field)
    if not any(s in expr.free_symbols for s in variables.values()):
        raise SpecError(field, f"formula {text!r} does not use {', '.join(variables)}")
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
        raise SpecError(field, f"unknown name {node.id!r} in formula (allowed: {allowed})")
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _build(node.left, variables, field), _build(node.right, variables, field)
        if isinstance(node.op, ast.Pow) and right.is_Number and abs(right) > MAX_EXPONENT:
            raise SpecError(field, f"exponent {right} is too large (at most {MAX_EXPONENT} in size)")
        return _finite(_BINARY[type(node.op)](left, right), field)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitXor):
        raise SpecError(field, "use ** for powers, not ^")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = _build(node.operand, variables, field)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in FUNCTIONS:
            raise SpecError(field, f"function {ast.unparse(node.func)!r} is not allowed "
                                   f"(allowed: {', '.join(FUNCTIONS)})")
        if node.keywords or not node.args or any(isinstance(a, ast.Starred) for a in node.args):
            raise SpecError(field, f"{name}() takes plain positional arguments")
        args = [_build(a, variables, field) for a in node.args]
        if name not in ("max", "min") and len(args) != 1:
            raise SpecError(field, f"{name}() takes one argument")
        return _finite(FUNCTIONS[name](*args), field)
    raise SpecError(field, f"{type(node).__name__} is not allowed in a formula: {ast.unparse(node)!r}")


def _finite(expr, field):
    """``expr`` unless it is or holds an infinity, an undefined value (z/0) or a number beyond float range."""
    if expr.has(sympy.zoo, sympy.oo, -sympy.oo, sympy.nan):
        raise SpecError(field, "the formula has an infinite or undefined part (a division by zero?)")
    if any(abs(n) > MAX_NUMBER for n in expr.atoms(sympy.Number)):
        raise SpecError(field, f"a number in the formula is beyond {MAX_NUMBER:g}")
    return expr
