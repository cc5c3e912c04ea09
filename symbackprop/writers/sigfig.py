"""Numbers to a number of significant digits, the one rule every output uses.

A rounded number shows every digit asked for, trailing zeros included: 1.604 at 5 digits is
``1.6040``, so the reader sees the precision. A number that is exactly what fewer digits say (a
weight of 0.2, an input of 3, up to float noise) is shown as it is, without padding: those zeros
would claim nothing.

>>> significant(1.60399999, 5), significant(0.2, 5), significant(-3, 5), significant(2.5e-7 / 3, 3)
('1.6040', '0.2', '-3', '8.33e-08')
"""
import math

EXACT = 1e-12   # relative: within this a printed value is the value (float noise, not rounding)


def significant(value, digits: int) -> str:
    """``value`` (a float, an exact SymPy number, or an arbitrary-precision one beyond float64's
    range, such as e^1e4 = 8.8068e+4342) to ``digits`` significant digits."""
    x = float(value)
    if _beyond_float(value, x):
        import mpmath
        mantissa, _, exponent = mpmath.nstr(mpmath.mpf(value), digits, strip_zeros=False,
                                            min_fixed=1, max_fixed=0).partition("e")
        return f"{mantissa}e{int(exponent):+d}"
    if not math.isfinite(x):
        return "nan" if math.isnan(x) else "inf" if x > 0 else "-inf"
    short = f"{x:.{digits}g}"
    if short in ("0", "-0") or is_exact(x, short):
        return "0" if short == "-0" else short
    padded = f"{x:#.{digits}g}"
    mantissa, e, exponent = padded.partition("e")
    return mantissa.rstrip(".") + e + exponent


def is_exact(x: float, shown: str) -> bool:
    """Whether the printed ``shown`` is ``x`` (so "=" and not "≈" belongs before it)."""
    printed = float(shown)
    return math.isfinite(printed) and math.isclose(printed, x, rel_tol=EXACT, abs_tol=1e-300)


def _beyond_float(value, x: float) -> bool:
    """Whether ``value`` is a finite, non-zero arbitrary-precision number float64 cannot hold."""
    if type(value).__module__.split(".")[0] not in ("mpmath", "sympy") or (math.isfinite(x) and x != 0):
        return False
    import mpmath
    try:
        v = mpmath.mpf(value)
    except (TypeError, ValueError):
        return False
    return mpmath.isfinite(v) and v != 0
