"""Expressions that differ only in their symbols' names, recognised by one key (a *template*).

A convolution's 256 outputs are one expression over different symbols:
``W1_0_0_1_1*x_0_0_0_0 + ... + b1_0`` and ``W1_1_0_1_1*x_0_0_0_0 + ... + b1_1``. The key is the
expression's tree with its free symbols replaced, in name order, by their positions; the template
itself has them renamed to placeholders ``_p00000, _p00001, ...`` of the same assumptions. The
renaming keeps the symbols' relative order, so SymPy orders the template's terms and factors (and a
printer prints them) exactly as the original's: whatever is computed from a template — a
derivative, a compiled function — is, renamed back, what the original gives.

>>> import sympy
>>> a, b, c, d = sympy.symbols("a b c d", real=True)
>>> template_key(2*a + b)[0] == template_key(2*c + d)[0], template_key(2*c + d)[1]
(True, (c, d))
>>> placeholders(2*c + d, (c, d))[0]
2*_p00000 + _p00001
"""
import sympy

_ASSUMPTIONS: dict = {}


def _assumptions(s) -> tuple:
    found = _ASSUMPTIONS.get(s)
    if found is None:
        found = _ASSUMPTIONS[s] = tuple(sorted(s.assumptions0.items()))
    return found


def _shape(e, index):
    """The tree of e with each symbol replaced by its index: hashable, equal for equal templates."""
    if e.is_Symbol:
        return index[e]
    args = e.args
    if not args:
        return e                                   # a number, or another atom: compared as itself
    return (e.func, tuple(_shape(a, index) for a in args))


def template_key(expr) -> tuple:
    """(key, symbols): a hashable key shared by the expressions that differ only in their symbols'
    names (the names in the same relative order, of the same assumptions), and expr's free symbols
    in name order (the placeholders' values)."""
    symbols = tuple(sorted(expr.free_symbols, key=lambda s: s.name))
    index = {s: i for i, s in enumerate(symbols)}
    return (tuple(map(_assumptions, symbols)), _shape(expr, index)), symbols


def placeholders(expr, symbols):
    """expr over placeholders _p00000, ... (symbols in name order, their assumptions kept)."""
    ps = [sympy.Symbol(f"_p{i:05d}", **s.assumptions0) for i, s in enumerate(symbols)]
    return expr.xreplace(dict(zip(symbols, ps))), ps


def rename(expr, mapping):
    """``expr.xreplace(mapping)`` for a renaming that keeps the symbols' relative order and
    assumptions (a template's placeholders back to its symbols, an activation's z to an element's):
    the tree rebuilt as it stands, each node unevaluated — the same expression, without SymPy
    re-deriving each node's canonical form (a Piecewise re-proves its conditions, ~1 ms a node).

    >>> import sympy
    >>> z, u = sympy.Symbol("z", real=True), sympy.Symbol("u", real=True)
    >>> relu = sympy.Piecewise((0, z <= 0), (z, True))
    >>> rename(relu, {z: u}) == relu.xreplace({z: u})
    True
    """
    found = mapping.get(expr)
    if found is not None:
        return found
    args = expr.args
    if not args:
        return expr
    new = [rename(a, mapping) for a in args]
    try:
        return expr.func(*new, evaluate=False)
    except TypeError:                      # a node that always evaluates (a pair of a Piecewise)
        return expr.func(*new)


def substitute(expr, symbol, value):
    """``expr.xreplace({symbol: value})``, by :func:`rename` where ``value`` is a symbol of
    ``symbol``'s assumptions and ``symbol`` is expr's only one (an activation's formula applied to
    an element: no other symbol to keep in order)."""
    if value.is_Symbol and value.assumptions0 == symbol.assumptions0 and expr.free_symbols <= {symbol}:
        return rename(expr, {symbol: value})
    return expr.xreplace({symbol: value})
