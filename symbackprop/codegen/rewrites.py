"""The stable rewrites: SymPy expressions recast in forms whose NumPy code stays finite.

:data:`RULES` is a tuple of ``sympy.codegen.rewriting.ReplaceOptim`` applied in order by
:func:`stabilize`. They introduce the stable primitives of :mod:`symbackprop.entries.arrayops`
(:class:`Sigmoid`, :class:`Softplus`, :class:`LogSumExp`, ...), which :mod:`symbackprop.codegen.printing`
prints: ``1/(1 + exp(-u))`` → σ(u), ``log(1 + exp(u))`` → softplus(u), ``log σ(u)`` →
−softplus(−u), ``log(1 − σ(u))`` → −softplus(u), c₁·softplus(−u) + c₂·softplus(u) → (c₁ + c₂)·softplus(u)
− c₁·u (binary cross-entropy from z: softplus(z) − y·z), ``log softmax(u)`` → u − logsumexp(u),
relu's Piecewise → max(u, 0), leaky relu's → max(u, c·u), ``exp(u) − 1`` → expm1(u), and number
constants (√2, π) → Python floats, so float32 arrays are never upcast. :func:`log_domain` says
what to put for a loss's output so that its logs stay finite.

>>> from sympy import Symbol, exp, log
>>> u = Symbol("u", real=True)
>>> stabilize(log(1 / (1 + exp(-u))))
-Softplus(-u)
"""
import sympy
from sympy import Add, Function, Mul, Piecewise, exp, log
from sympy.codegen.cfunctions import expm1
from sympy.codegen.rewriting import Optimization, ReplaceOptim, optimize

from ..entries.arrayops import Clip, LogSumExp, Sigmoid, Softmax, Softplus


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
