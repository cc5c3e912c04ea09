"""Interval arithmetic on SymPy expressions: the range of values an expression can take when each
of its symbols may lie anywhere in an interval.

``check`` needs this because a written number stands for an interval (0.29 means [0.285, 0.295]) and
a later number follows from earlier ones when it lies in the range their intervals imply. Endpoints
are floats rounded outwards after every operation, so a computed range always contains the true one.

:func:`bound` is the natural interval extension (each operation on intervals) intersected, where a
symbol occurs more than once, with the mean-value form f(c, Y) + Σ ∂f/∂xᵢ(X, Y)·(Xᵢ − cᵢ) in those
symbols xᵢ (the others, Y, kept as their intervals), which stays
tight for a(1 − a) where the natural extension is not.

>>> import sympy
>>> a = sympy.Symbol("a")
>>> r = bound(a * (1 - a), {a: Interval(0.5885, 0.5895)})
>>> round(r.lo, 5), round(r.hi, 5)
(0.24199, 0.24217)
"""
import math
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

import sympy

INF = math.inf


def _down(x: float) -> float:
    return math.nextafter(x, -INF) if math.isfinite(x) else x


def _up(x: float) -> float:
    return math.nextafter(x, INF) if math.isfinite(x) else x


@dataclass(frozen=True)
class Interval:
    """The closed interval [lo, hi]; lo = -inf or hi = inf for unbounded. NaN endpoints make the
    empty interval :data:`EMPTY`: the value of an expression outside its domain (√ of a negative
    interval), which meets no other interval."""
    lo: float
    hi: float

    def __post_init__(self):
        lo, hi = float(self.lo), float(self.hi)
        if math.isnan(lo) or math.isnan(hi):
            lo = hi = math.nan
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)
        if lo > hi:
            raise ValueError(f"empty interval [{self.lo}, {self.hi}]")

    @classmethod
    def point(cls, x: float) -> "Interval":
        return cls(x, x)

    @classmethod
    def hull(cls, *values: float) -> "Interval":
        """The smallest interval holding ``values``, rounded outwards."""
        if any(math.isnan(v) for v in values):
            return EMPTY
        return cls(_down(min(values)), _up(max(values)))

    @property
    def empty(self) -> bool:
        return math.isnan(self.lo)

    @property
    def mid(self) -> float:
        """The midpoint; the finite end of a half-unbounded interval; ±inf for [±inf, ±inf]; NaN
        where there is no value to name: the empty interval and [-inf, inf].

        >>> Interval(1, 2).mid, Interval(INF, INF).mid, Interval(0, INF).mid, EMPTY.mid
        (1.5, inf, 0.0, nan)
        """
        if self.lo == self.hi:
            return self.lo
        if math.isfinite(self.lo) and math.isfinite(self.hi):
            return self.lo + (self.hi - self.lo) / 2
        return self.lo if math.isfinite(self.lo) else self.hi if math.isfinite(self.hi) else math.nan

    @property
    def width(self) -> float:
        return self.hi - self.lo

    def contains(self, x: float) -> bool:
        return self.lo <= x <= self.hi

    def intersects(self, other: "Interval") -> bool:
        return self.lo <= other.hi and other.lo <= self.hi

    def intersect(self, other: "Interval") -> "Interval | None":
        if self.empty or other.empty:
            return None
        lo, hi = max(self.lo, other.lo), min(self.hi, other.hi)
        return Interval(lo, hi) if lo <= hi else None

    def join(self, other: "Interval") -> "Interval":
        if self.empty or other.empty:
            return other if self.empty else self
        return Interval(min(self.lo, other.lo), max(self.hi, other.hi))

    def widen(self, by: float) -> "Interval":
        return Interval(_down(self.lo - by), _up(self.hi + by))

    # arithmetic -------------------------------------------------------------------------------
    def __add__(self, other):
        other = _as_interval(other)
        if self.empty or other.empty:
            return EMPTY
        lo, hi = self.lo + other.lo, self.hi + other.hi   # NaN only from inf - inf: unbounded
        return Interval(-INF if math.isnan(lo) else _down(lo), INF if math.isnan(hi) else _up(hi))

    __radd__ = __add__

    def __neg__(self):
        return Interval(-self.hi, -self.lo)

    def __sub__(self, other):
        return self + (-_as_interval(other))

    def __rsub__(self, other):
        return _as_interval(other) + (-self)

    def __mul__(self, other):
        other = _as_interval(other)
        if self.empty or other.empty:
            return EMPTY
        products = [_mul(p, q) for p in (self.lo, self.hi) for q in (other.lo, other.hi)]
        return Interval.hull(*products)

    __rmul__ = __mul__

    def reciprocal(self) -> "Interval":
        if self.empty or (self.lo == 0 and self.hi == 0):
            return EMPTY
        if self.lo > 0 or self.hi < 0:
            return Interval.hull(1 / self.lo if self.lo else INF, 1 / self.hi if self.hi else -INF)
        if self.lo == 0 and self.hi > 0:
            return Interval(_down(1 / self.hi), INF)
        if self.hi == 0 and self.lo < 0:
            return Interval(-INF, _up(1 / self.lo))
        return Interval(-INF, INF)

    def __truediv__(self, other):
        return self * _as_interval(other).reciprocal()

    def __rtruediv__(self, other):
        return _as_interval(other) * self.reciprocal()

    def __pow__(self, exponent):
        return power(self, exponent)


EMPTY = Interval(math.nan, math.nan)


def _mul(p: float, q: float) -> float:
    if (p == 0 and math.isinf(q)) or (q == 0 and math.isinf(p)):
        return 0.0
    return p * q


def _as_interval(x) -> Interval:
    return x if isinstance(x, Interval) else Interval.hull(float(x))


def _monotone(fn, x: Interval, increasing=True) -> Interval:
    if x.empty:
        return EMPTY
    lo, hi = _safe(fn, x.lo), _safe(fn, x.hi)
    return Interval.hull(lo, hi) if increasing else Interval.hull(hi, lo)


def _safe(fn, v: float) -> float:
    try:
        return fn(v)
    except OverflowError:
        return INF
    except ValueError:
        return math.nan


def exp(x: Interval) -> Interval:
    r = _monotone(math.exp, x)
    return Interval(max(r.lo, 0.0), r.hi)


def log(x: Interval) -> Interval:
    if x.empty or x.hi < 0:
        return EMPTY
    if x.hi == 0:  # log 0 = -inf, as its limit: the loss -log(a) at a = 0 is infinite, not undefined
        return Interval(-INF, -INF)
    lo = -INF if x.lo <= 0 else _safe(math.log, x.lo)
    return Interval.hull(lo, _safe(math.log, x.hi)) if math.isfinite(lo) else Interval(-INF, _up(_safe(math.log, x.hi)))


def sqrt(x: Interval) -> Interval:
    if x.empty or x.hi < 0:
        return EMPTY
    r = _monotone(math.sqrt, Interval(max(x.lo, 0.0), x.hi))
    return Interval(max(r.lo, 0.0), r.hi)


def power(x: Interval, exponent) -> Interval:
    """x ** exponent for a constant exponent (integer, or real with x >= 0)."""
    if isinstance(exponent, Interval):
        if exponent.width == 0:
            exponent = exponent.lo
        else:
            return exp(exponent * log(x))
    e = float(exponent)
    if x.empty:
        return EMPTY
    if e == int(e):
        n = int(e)
        if n == 0:
            return Interval.point(1.0)
        if n < 0:
            return power(x, -n).reciprocal()
        if n == 1:
            return x
        lo, hi = _safe(lambda v: v ** n, x.lo), _safe(lambda v: v ** n, x.hi)
        if n % 2 == 0 and x.lo < 0 < x.hi:
            return Interval(0.0, _up(max(lo, hi)))
        r = Interval.hull(lo, hi)
        return Interval(max(r.lo, 0.0), r.hi) if n % 2 == 0 else r
    if e == 0.5:
        return sqrt(x)
    if x.empty or x.hi < 0:
        return EMPTY
    base = Interval(max(x.lo, 0.0), x.hi)
    return _monotone(lambda v: v ** e if v > 0 else (0.0 if e > 0 else INF), base, increasing=e > 0)


def tanh(x: Interval) -> Interval:
    r = _monotone(math.tanh, x)
    return Interval(max(r.lo, -1.0), min(r.hi, 1.0))


def erf(x: Interval) -> Interval:
    r = _monotone(math.erf, x)
    return Interval(max(r.lo, -1.0), min(r.hi, 1.0))


def absolute(x: Interval) -> Interval:
    if x.empty:
        return EMPTY
    if x.lo >= 0:
        return x
    if x.hi <= 0:
        return -x
    return Interval(0.0, max(-x.lo, x.hi))


def sign(x: Interval) -> Interval:
    if x.empty:
        return EMPTY
    lo = -1.0 if x.lo < 0 else (0.0 if x.lo == 0 else 1.0)
    hi = 1.0 if x.hi > 0 else (0.0 if x.hi == 0 else -1.0)
    return Interval(lo, hi)


def _periodic(fn, shift):
    """sin or cos: the endpoint values, and ±1 where a peak lies inside."""
    def apply(x: Interval) -> Interval:
        if x.empty:
            return EMPTY
        if x.width >= 2 * math.pi or not math.isfinite(x.width):
            return Interval(-1.0, 1.0)
        values = [fn(x.lo), fn(x.hi)]
        k = math.ceil((x.lo - shift) / (math.pi / 2))
        while shift + k * math.pi / 2 <= x.hi:
            values.append(fn(shift + k * math.pi / 2))
            k += 1
        r = Interval.hull(*values)
        return Interval(max(r.lo, -1.0), min(r.hi, 1.0))
    return apply


FUNCTIONS = {
    sympy.exp: exp, sympy.log: log, sympy.tanh: tanh, sympy.erf: erf, sympy.Abs: absolute,
    sympy.sign: sign, sympy.atan: lambda x: _monotone(math.atan, x),
    sympy.asinh: lambda x: _monotone(math.asinh, x),
    sympy.sin: _periodic(math.sin, 0.0), sympy.cos: _periodic(math.cos, 0.0),
    sympy.Heaviside: lambda x: Interval(0.0 if x.lo <= 0 else 1.0, 1.0 if x.hi >= 0 else 0.0),
}


# evaluation ---------------------------------------------------------------------------------
def _compare(rel, left: Interval, right: Interval):
    """True, False or None (undecided) for a relation between intervals."""
    if isinstance(rel, (sympy.LessThan, sympy.StrictLessThan)):
        strict = isinstance(rel, sympy.StrictLessThan)
        small, big = left, right
    elif isinstance(rel, (sympy.GreaterThan, sympy.StrictGreaterThan)):
        strict = isinstance(rel, sympy.StrictGreaterThan)
        small, big = right, left
    else:
        return None
    if (small.hi < big.lo) or (not strict and small.hi <= big.lo):
        return True
    if (small.lo > big.hi) or (strict and small.lo >= big.hi):
        return False
    return None


@lru_cache(maxsize=None)
def _compile(expr):
    """A function env -> Interval for ``expr`` (cached: the same local expressions recur)."""
    if expr.is_Symbol:
        return lambda env: env[expr]
    if expr.is_Number or expr.is_NumberSymbol:
        f = float(expr)
        exact = expr.is_Float or (expr.is_Rational and sympy.Rational(f) == expr)
        value = Interval.point(f) if exact else Interval.hull(f)
        return lambda env: value
    if expr.is_Add:
        parts = [_compile(a) for a in expr.args]
        def add(env):
            total = parts[0](env)
            for p in parts[1:]:
                total = total + p(env)
            return total
        return add
    if expr.is_Mul:
        parts = [_compile(a) for a in expr.args]
        def mul(env):
            total = parts[0](env)
            for p in parts[1:]:
                total = total * p(env)
            return total
        return mul
    if expr.is_Pow:
        base = _compile(expr.base)
        if expr.exp.is_Number:
            e = float(expr.exp)
            if expr.exp == sympy.S.Half:
                return lambda env: sqrt(base(env))
            return lambda env: power(base(env), e)
        exponent = _compile(expr.exp)
        if expr.base == sympy.E:
            return lambda env: exp(exponent(env))
        return lambda env: power(base(env), exponent(env))
    if isinstance(expr, (sympy.Max, sympy.Min)):
        parts = [_compile(a) for a in expr.args]
        pick = max if isinstance(expr, sympy.Max) else min
        return lambda env: _minmax(pick, [p(env) for p in parts])
    if isinstance(expr, sympy.Piecewise):
        branches = [(_compile(e), _compile_condition(c), _region(c)) for e, c in expr.args]
        def piecewise(env):
            result, rest = None, env      # rest: the box where every earlier condition is false
            for value, cond, region in branches:
                decided = cond(rest)
                if decided is False:
                    continue
                inside = rest
                if decided is None and region is not None:
                    s, when_true, when_false = region
                    inside = _restrict(rest, s, when_true)
                v = value(inside) if inside is not None else None
                if v is not None:
                    result = v if result is None else result.join(v)
                if decided is True:
                    break
                if region is None:
                    continue
                rest = _restrict(rest, s, when_false)
                if rest is None:
                    break
            return result if result is not None else EMPTY
        return piecewise
    if expr.func in FUNCTIONS:
        fn, arg = FUNCTIONS[expr.func], _compile(expr.args[0])
        return lambda env: fn(arg(env))
    if expr.func.__name__ == "Indicator":         # [x = v] of an id: data, an exact point
        arg, v = _compile(expr.args[0]), float(expr.args[1])
        def indicator(env):
            x = arg(env)
            if x.lo == x.hi:
                return Interval.point(1.0 if x.lo == v else 0.0)
            return Interval(0.0, 1.0) if x.lo <= v <= x.hi else Interval.point(0.0)
        return indicator
    raise ValueError(f"no interval rule for {expr.func.__name__}")


def _minmax(pick, values):
    if any(v.empty for v in values):
        return EMPTY
    return Interval(pick(v.lo for v in values), pick(v.hi for v in values))


def _region(cond):
    """(symbol, interval where cond holds, interval where it fails) for ``symbol <= number`` and
    the like; None for other conditions. Strictness is ignored: the intervals are closed."""
    if not isinstance(cond, sympy.core.relational.Relational):
        return None
    lhs, rhs = cond.lhs, cond.rhs
    if lhs.is_Symbol and rhs.is_Number:
        s, c, below = lhs, float(rhs), isinstance(cond, (sympy.LessThan, sympy.StrictLessThan))
    elif rhs.is_Symbol and lhs.is_Number:
        s, c, below = rhs, float(lhs), isinstance(cond, (sympy.GreaterThan, sympy.StrictGreaterThan))
    else:
        return None
    if not isinstance(cond, (sympy.LessThan, sympy.StrictLessThan, sympy.GreaterThan, sympy.StrictGreaterThan)):
        return None
    low, high = Interval(-INF, c), Interval(c, INF)
    return (s, low, high) if below else (s, high, low)


def _restrict(env, symbol, region):
    """``env`` with ``symbol``'s interval cut to ``region``; None if nothing is left."""
    cut = env[symbol].intersect(region)
    return None if cut is None else {**env, symbol: cut}


def _compile_condition(cond):
    if cond is sympy.true:
        return lambda env: True
    if cond is sympy.false:
        return lambda env: False
    if isinstance(cond, sympy.core.relational.Relational):
        left, right = _compile(cond.lhs), _compile(cond.rhs)
        return lambda env: _compare(cond, left(env), right(env))
    if isinstance(cond, (sympy.And, sympy.Or)):     # max-pool's "this value is >= every later one"
        parts, both = [_compile_condition(c) for c in cond.args], isinstance(cond, sympy.And)
        return lambda env: _all([p(env) for p in parts]) if both else _any([p(env) for p in parts])
    if isinstance(cond, sympy.Not):
        inner = _compile_condition(cond.args[0])
        return lambda env: (lambda r: None if r is None else not r)(inner(env))
    return lambda env: None


def _all(results):
    """And of decided (True/False) and undecided (None) conditions."""
    return False if False in results else True if all(r is True for r in results) else None


def _any(results):
    return True if True in results else False if all(r is False for r in results) else None


def evaluate(expr, env: dict) -> Interval:
    """The natural interval extension of ``expr`` with each symbol's interval from ``env``."""
    return _compile(sympy.sympify(expr))(env)


@lru_cache(maxsize=None)
def _repeated(expr) -> tuple:
    """Symbols occurring more than once in ``expr``: where the natural extension overestimates.
    Nothing for expressions that may jump (the mean-value form needs a continuous function)."""
    if expr.has(sympy.Piecewise, sympy.sign, sympy.Heaviside):
        return ()
    counts = Counter(x for x in sympy.preorder_traversal(expr) if x.is_Symbol)
    return tuple(sorted((s for s, n in counts.items() if n > 1), key=str))


@lru_cache(maxsize=None)
def _derivative(expr, symbol):
    """∂expr/∂symbol, compiled; of a sum, from the terms holding the symbol only (batch norm's
    variance sums a term per value: differentiating all of them for each is quadratic)."""
    if expr.is_Add:
        return _compile(sympy.Add(*[sympy.diff(a, symbol) for a in expr.args if symbol in a.free_symbols]))
    return _compile(sympy.diff(expr, symbol))


def bound(expr, env: dict) -> Interval:
    """The range of ``expr`` over the box ``env``: natural extension, tightened by the mean-value
    form in the symbols with a non-degenerate interval that occur more than once."""
    expr = sympy.sympify(expr)
    natural = _compile(expr)(env)
    if natural.empty or not any(env[s].width > 0 for s in _repeated(expr)):
        return natural
    # the mean-value theorem in the repeated symbols alone (those occurring once are enclosed
    # exactly enough by the natural extension), the others kept as their intervals
    wide = [s for s in _repeated(expr) if env[s].width > 0]
    centre = {**env, **{s: Interval.point(env[s].mid) for s in wide}}
    try:
        total = _compile(expr)(centre)
        for s in wide:
            total = total + _derivative(expr, s)(env) * (env[s] - env[s].mid)
    except (ValueError, TypeError, ZeroDivisionError):
        return natural
    return natural.intersect(total) or natural
