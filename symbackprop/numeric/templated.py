"""Many element expressions of one shape, compiled once and evaluated as one array operation.

A convolution's 256 outputs, or its 256 δs, are the same expression over different symbols:
``W1_0_0_1_1*x_0_0_0_0 + ... + b1_0`` and ``W1_1_0_1_1*x_0_0_0_0 + ... + b1_1``. Lambdifying each
(and running the stability rewrites on each) is what made a worked CNN take a minute. Here each
expression is reduced to a *template* — its tree with the free symbols renamed, in name order, to
placeholders ``_p00000, _p00001, ...`` of the same assumptions — and each distinct template is
rewritten and lambdified once per process; the expressions sharing it are then evaluated by one call
on stacked arguments (one row per expression).

The numbers are those of lambdifying each expression on its own: the template prints as the
original would (:mod:`symbackprop.entries.template`), the rewrites depend only on the tree, and NumPy
computes every element of an element-wise operation alike, whatever the other rows hold.

>>> import numpy as np, sympy
>>> a, b, c, d = sympy.symbols("a b c d", real=True)
>>> [v.tolist() for v in evaluate_many([2*a + b, 2*c + d], {a: np.array([1.0]), b: np.array([2.0]),
...                                     c: np.array([3.0]), d: np.array([4.0])}, 1, compile_one)]
[[4.0], [10.0]]
"""
import numpy as np
import sympy

from ..entries.template import placeholders, template_key


def compile_one(expr, symbols):
    """The default compiler: plain ``lambdify`` (tests and the doctest)."""
    template, ps = placeholders(expr, symbols)
    return sympy.lambdify(ps, template, "numpy")


CACHE_LIMIT = 20000      # compiled templates kept (a worked CNN has ~40)
_PREPARED: dict = {}     # tuple of expressions -> their templates (kept for the next call: a
                         # worked example evaluates the same pass again after the step)


def prepare(exprs) -> list:
    """The expressions grouped by template: [(key, first expression, positions, symbol rows)]."""
    exprs = tuple(exprs)
    found = _PREPARED.get(exprs)
    if found is not None:
        return found
    groups: dict = {}
    for i, e in enumerate(exprs):
        key, symbols = template_key(e)
        group = groups.get(key)
        if group is None:
            groups[key] = group = (key, e, [], [])
        group[2].append(i)
        group[3].append(symbols)
    if len(_PREPARED) >= 64:
        _PREPARED.clear()
    found = _PREPARED[exprs] = list(groups.values())
    return found


def evaluate_many(exprs, env, batch, compile_fn, cache=None) -> list:
    """The values (arrays of shape (batch,)) of ``exprs`` over ``env`` (symbol -> (batch,) array):
    one compiled function and one call per distinct template. ``compile_fn(expr, symbols)`` compiles
    a template's first expression into a function of its symbols' values; ``cache`` (a dict) keeps
    them by key."""
    cache = {} if cache is None else cache
    out = [None] * len(exprs)
    for key, first, where, symbol_rows in prepare(exprs):
        fn = cache.get(key)
        if fn is None:
            if len(cache) >= CACHE_LIMIT:      # a long-lived process of many networks: start again
                cache.clear()
            fn = cache[key] = compile_fn(first, symbol_rows[0])
        args = [np.stack([env[row[j]] for row in symbol_rows]) for j in range(len(symbol_rows[0]))]
        value = fn(*args)
        value = np.broadcast_to(np.asarray(value[0] if isinstance(value, list) else value, dtype=np.float64),
                                (len(where), batch))
        for i, row in zip(where, value):
            out[i] = row
    return out
