"""The torch trainer's update as multi-tensor calls: each of the optimizer's SymPy assignments (from
:mod:`symbackprop.entries.optimizers`, the one definition) printed once over the lists of every trained
parameter's tensors (``torch._foreach_mul_(ms, beta1)``), as ``torch.optim``'s ``foreach`` path runs
its updates, in place of a Python loop of a few small calls per parameter.

Why: a tiny GPT has 38 parameters; Adam's update printed per parameter is ~9 torch calls each, ~340
Python-level calls a step, ~20 % of the step (notes/attn.md). On CPU a foreach call still costs ~1 µs
per tensor (it loops over them in C++; on CUDA it is one fused kernel), so where every parameter is
trained the gradients (already views of one flat tensor), the state and the temporaries are flat
tensors over all parameters and a call that does not write θ is one tensor call (``m.mul_(beta1)``);
only θ's lines are foreach calls over the lists (measured on the tiny GPT's 38 tensors: Adam 1.1 ms
as foreach calls, 0.17 ms flat).

The rules are printed as they are (no algebra beyond :func:`symbackprop.codegen.updates.in_place`'s
split of ``m ← β₁m + (1 − β₁)g`` into ``*=`` and ``+=``), so the numbers are those of the per-parameter
form. Temporaries (m̂, v̂, a divisor) are written into scratch tensors the step keeps, or into the
gradients once no later rule reads them; nothing is allocated per step. A rule outside what
:class:`ListWriter` can write raises LookupError and :func:`foreach_update` returns None: the trainer
then prints the per-parameter loop.

>>> from symbackprop.entries import optimizers as opt
>>> lines, lists, k = foreach_update(opt.OPTIMIZERS["momentum"], opt.Settings.of({}))
>>> [line for _, line in lines], lists, k
(['torch._foreach_mul_(vs, momentum)', 'torch._foreach_add_(vs, gs)', 'torch._foreach_add_(thetas, vs, alpha=-learning_rate)'], ['theta', 'g', 'v'], 0)
"""
import sympy

from ..entries import optimizers as opt
from . import rewrites
from .printing import code
from .updates import _rule_text, in_place

_ARRAYS = {"theta", "g", "m", "v", "s", "g_hat", "m_hat", "v_hat"}  # the rest are numbers


def _is_array(e) -> bool:
    return bool({x.name for x in e.free_symbols} & _ARRAYS)


def lists(name: str) -> str:
    """The name of the list of every trained parameter's ``name`` tensors: ``ms``, ``thetas``, ``scratches[0]``."""
    return f"scratches[{name[7:]}]" if name.startswith("scratch") else f"{name}s"


def flat_name(name: str) -> str:
    """The name of the flat tensor ``name`` is over all parameters: ``m``, ``scratch[0]``."""
    return f"scratch[{name[7:]}]" if name.startswith("scratch") else name


class Arr(str):
    """An array operand of a call: the name of its storage ("g", "m", "theta", "scratch0")."""


class ListWriter:
    """Lines writing element-wise expressions with in-place calls. With ``flat``, every array but θ
    is one flat tensor over all the parameters (the gradients, the state, the scratch), so a call
    that does not touch θ is one tensor call (``m.mul_(beta1)``); a call that does runs over the
    lists of per-parameter tensors (``torch._foreach_addcdiv_(thetas, scratches[0], gs, ...)``, the
    flat ones' views). Without ``flat``, every call is a foreach call over lists. ``out`` is always
    storage the step may overwrite (a scratch tensor, or the spent gradients)."""

    def __init__(self, flat: bool = False):
        self.flat = flat
        self.lines: list[str] = []
        self.scratch = 0              # scratch tensors used
        self.spare: list[str] = []    # storage free to overwrite (the spent gradients) before scratch
        self.alias: dict[str, str] = {}   # a temporary (m_hat) -> the storage holding it

    def new_scratch(self) -> Arr:
        if self.spare:
            return Arr(self.spare.pop())
        self.scratch += 1
        return Arr(f"scratch{self.scratch - 1}")

    def array(self, symbol) -> Arr:
        return Arr(self.alias.get(symbol.name, symbol.name))

    def call(self, fn, out, *args, **keywords):
        kw = [f"{k}={code(v, 'torch')}" for k, v in keywords.items() if v is not None]
        arrays = [a for a in (out, *args) if isinstance(a, Arr)]
        if self.flat and "theta" not in arrays:
            shown = [flat_name(a) if isinstance(a, Arr) else a for a in args]
            self.lines.append(f"{flat_name(out)}.{fn}({', '.join([*shown, *kw])})")
        else:
            shown = [lists(a) if isinstance(a, Arr) else a for a in (out, *args)]
            self.lines.append(f"torch._foreach_{fn}({', '.join([*shown, *kw])})")

    def operand(self, e) -> Arr:
        """Storage holding ``e``: a parameter's array's own, else a scratch tensor written with it."""
        if e.is_Symbol:
            return self.array(e)
        out = self.new_scratch()
        self.write(e, out)
        return out

    def write(self, e, out: Arr):
        """``out ← e`` element-wise, in place."""
        if e.is_Symbol and _is_array(e):
            if self.array(e) != out:
                self.call("copy_", out, self.array(e))
        elif e.is_Add:
            terms = sorted(sympy.Add.make_args(e), key=lambda a: (not _is_array(a), not (a.is_Symbol and self.array(a) == out)))
            if not _is_array(terms[0]):
                raise LookupError(e)
            self.write(terms[0], out)
            for term in terms[1:]:
                self.add(out, term)
        elif e.is_Mul:
            scale = sympy.Mul(*[f for f in e.args if not _is_array(f)])
            arrays = [f for f in e.args if _is_array(f)]
            self.write(arrays[0], out)
            for f in arrays[1:]:
                if f.is_Pow and f.exp == -1:
                    self.call("div_", out, self.operand(f.base))
                else:
                    self.call("mul_", out, self.operand(f))
            self.scale(out, scale)
        elif e.is_Pow and e.exp in (2, sympy.Rational(1, 2), -1):
            self.write(e.base, out)
            if e.exp == 2:
                self.call("mul_", out, out)
            else:
                self.call("sqrt_" if e.exp == 1 / sympy.Integer(2) else "reciprocal_", out)
        else:
            raise LookupError(e)

    def scale(self, out, c):
        """``out *= c`` for a number c (a division by the base where c = 1/x, as the per-parameter form divides)."""
        if c == 1:
            return
        if c.is_Pow and c.exp == -1:
            self.call("div_", out, code(c.base, "torch"))
        else:
            self.call("mul_", out, code(c, "torch"))

    def add(self, out, term, sign=1):
        """``out += sign·term``: fused where term is c·X, c·X·Y or c·X/Y (X, Y arrays), as torch.optim writes it."""
        if not _is_array(term):
            self.call("add_", out, code(sign * term, "torch"))
            return
        scale, arrays, divisors = sympy.Integer(sign), [], []
        for f in sympy.Mul.make_args(term):
            if not _is_array(f):
                scale *= f
            elif f.is_Pow and f.exp == 2:
                arrays += [f.base, f.base]
            elif f.is_Pow and f.exp == -1:
                divisors.append(f.base)
            else:
                arrays.append(f)
        alpha = None if scale == 1 else scale
        if len(arrays) == 1 and not divisors:
            self.call("add_", out, self.operand(arrays[0]), alpha=alpha)
        elif len(arrays) == 2 and not divisors:
            self.call("addcmul_", out, self.operand(arrays[0]), self.operand(arrays[1]), value=alpha)
        elif len(arrays) == 1 and len(divisors) == 1:
            self.call("addcdiv_", out, self.operand(arrays[0]), self.operand(divisors[0]), value=alpha)
        else:
            self.call("add_", out, self.operand(term / scale), alpha=alpha)


def foreach_update(optimizer, settings, flat: bool = False):
    """The update of every trained parameter at once (:class:`ListWriter`; ``flat``: the gradients,
    state and scratch as flat tensors): ([(rule comment or "", line)], the arrays the step binds
    (θ, g, the state), the number of scratch tensors), or None where a rule cannot be written so."""
    rules = optimizer.assignments(settings)
    writer, lines = ListWriter(flat), []
    try:
        for n, (target, expr) in enumerate(rules):
            expr = rewrites.stabilize(expr)
            start = len(writer.lines)
            later = set().union(*[e.free_symbols for _, e in rules[n + 1:]])
            in_g = {opt.g, *[sympy.Symbol(t, real=True) for t, held in writer.alias.items() if held == "g"]}
            writer.spare = ["g"] if not in_g & (later | expr.free_symbols) else []   # the gradients, spent
            if target.name in ("theta", "m", "v", "s"):
                for op, part in in_place(target, expr):
                    if op == "*=":
                        writer.scale(Arr(target.name), part)
                    elif op in ("+=", "-="):
                        writer.add(Arr(target.name), part, -1 if op == "-=" else 1)
                    else:
                        out = writer.new_scratch()
                        writer.write(expr, out)
                        writer.call("copy_", Arr(target.name), out)
            else:   # a temporary (g_hat, m_hat, v_hat): into the gradients once they are spent, else scratch
                writer.spare = ["g"] if opt.g not in later and opt.g in expr.free_symbols else []
                out = writer.new_scratch()
                writer.write(expr, out)
                writer.alias[target.name] = out
            rule = _rule_text(target, rules[n][1])
            lines += [(rule if i == start else "", line) for i, line in enumerate(writer.lines[start:], start)]
    except (LookupError, IndexError):
        return None
    return lines, ["theta", "g", *optimizer.state], writer.scratch
