"""The pieces of :mod:`.chain`'s rendering that are not about layout: a LaTeX label's text name
(one name per quantity: the names ``check`` reads), which backward steps a ``--wrt`` selection
needs, and how a value is shown — 0 where its terms cancel exactly, a fraction where it is exact."""
import re

import sympy

from ..derive.derivation import Derivation, Step
from ..writers.sigfig import significant

# the LaTeX bases of stages whose text name differs (norm.py's stages: mean, var, xhat)
STAGE_NAMES = {r"\mu": "mean", r"\mathrm{var}": "var", r"\hat{x}": "xhat"}
WIDE = 12            # columns: a matrix wider than this is printed a row a line
NOISE = 1e-13        # a float this small against its terms' size is their rounding: shown as 0


def _total(values) -> float | None:
    """The sum of ``values``, None where one is not a finite real number."""
    try:
        return sum(values)
    except (TypeError, ValueError, OverflowError, ZeroDivisionError):
        return None


def _fraction(value) -> str:
    """An exact Rational that is not an integer as "p/q" (short ones only), else ""."""
    if isinstance(value, sympy.Rational) and not value.is_Integer and len(str(value)) <= 24:
        return str(value)
    return ""


def plain(label: str, stages: dict | None = None) -> str:
    r"""The text name of a LaTeX label: ``W^{(2)}_{1,2}`` -> ``W2[1,2]``, ``\delta`` -> ``delta``;
    a stage's LaTeX base by its name in outputs and hand files (``stages``: LaTeX base -> name,
    default batch norm's): ``\hat{x}^{(2)}_{1,1}`` -> ``xhat2[1,1]``, ``\mu^{(2)}_{1}`` -> ``mean2[1]``.

    >>> plain(r"\frac{\partial C}{\partial \mathrm{var}^{(2)}_{1}}"), plain(r"{W_{hh}}^{(2)}_{1,2}")
    ('dC/dvar2[1]', 'W_hh2[1,2]')
    """
    for tex, name in (STAGE_NAMES if stages is None else stages).items():
        label = label.replace(tex + "^{(", name + "^{(")
    label = re.sub(r"\{([A-Za-z]+)_\{([a-z]+)\}\}\^", r"\1_\2^", label)   # a recurrent layer's {W_{hh}}^{(2)}: W_hh2
    text = re.sub(r"\^\{\((\d+)\)\}_\{([\d,]+)\}", r"\1[\2]", label)
    text = re.sub(r"\^\{\((\d+)\)\}", r"\1", text)
    text = re.sub(r"_\{([\d,]+)\}", r"[\1]", text)
    text = re.sub(r"\\frac\{\\partial ([^{}]+)\}\{\\partial ([^{}]+)\}", r"d\1/d\2", text)
    return text.replace("\\delta", "delta").replace("\\", "")


def backward_steps(derivation: Derivation, wrt: list[str] | None) -> list[Step]:
    """The backward pass's steps the selected gradients need (all of them without ``wrt``), in
    order: ``--wrt W4`` stops at layer 4's δ, as ``explain --wrt`` does."""
    steps = [s for s in derivation.steps if s.kind != "grad"]
    if not wrt:
        return steps
    needed, stack = set(), [s.symbol for s in _selected(derivation, wrt)]
    while stack:
        step = derivation.by_symbol.get(stack.pop())
        if step is None:
            continue
        for term in step.terms:
            for f in term:
                for u in sympy.sympify(f.expr).free_symbols:
                    if u in derivation.by_symbol and u not in needed:
                        needed.add(u)
                        stack.append(u)
    return [s for s in steps if s.symbol in needed]


def _selected(derivation: Derivation, wrt: list[str] | None) -> list[Step]:
    grads = derivation.gradients()
    if not wrt:
        return grads
    return [g for g in grads if g.param in wrt]


def array_lines(name: str, values, by_example: bool, digits: int) -> list[str]:
    """A forward quantity's values as ``explain`` tabulates them: a vector on one line
    (``mean2 = [0.1, 0.2]``), a matrix as aligned rows, an image per channel (``z1, channel 1
    (8×8):``), each example in turn where the first axis is the example's (``by_example``).

    >>> import numpy as np
    >>> print("\\n".join(array_lines("z1", np.arange(8.0).reshape(2, 2, 2), False, 3)))
    z1, channel 1 (2×2):
      0  1
      2  3
    z1, channel 2 (2×2):
      4  5
      6  7
    """
    import numpy as np
    if isinstance(values, dict):                     # named parts (a kernel per channel pair)
        return [line for part, each in values.items() for line in array_lines(f"{name}, {part}", each, False, digits)]
    values = np.asarray(values, dtype=object)
    if by_example:
        return [line for n, each in enumerate(values) for line in array_lines(f"{name}, example {n + 1}", each, False, digits)]
    if values.ndim <= 1:
        return [f"{name} = [" + ", ".join(significant(v, digits) for v in values.ravel()) + "]"]
    if values.ndim == 2 and values.shape[1] > WIDE:          # a wide matrix: a row a line
        return [line for r, row in enumerate(values) for line in array_lines(f"{name}, row {r + 1}", row, False, digits)]
    if values.ndim == 2:
        cells = [[significant(v, digits) for v in row] for row in values]
        width = max(len(c) for row in cells for c in row)
        return [f"{name} ({values.shape[0]}×{values.shape[1]}):"] + ["  " + "  ".join(c.rjust(width) for c in row)
                                                                     for row in cells]
    what = "channel" if values.ndim == 3 else "index"
    return [line for c, each in enumerate(values) for line in array_lines(f"{name}, {what} {c + 1}", each, False, digits)]
