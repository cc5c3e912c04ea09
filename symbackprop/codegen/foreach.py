"""The torch trainer's update as multi-tensor calls: each of the optimizer's SymPy assignments (from
:mod:`symbackprop.entries.optimizers`, the one definition) printed once over the lists of every trained
parameter's tensors (``torch._foreach_mul_(ms, beta1)``), as ``torch.optim``'s ``foreach`` path runs
its updates, in place of a Python loop of a few small calls per parameter.

Why: a tiny GPT has 38 parameters; Adam's update printed per parameter is ~9 torch calls each, ~340
Python-level calls a step, ~20 % of the step (notes/attn.md). A foreach call loops over the tensors in
C++ (one fused kernel per call on CUDA).

The rules are printed as they are (no algebra beyond :func:`symbackprop.codegen.updates.in_place`'s
split of ``m ← β₁m + (1 − β₁)g`` into ``*=`` and ``+=``), so the numbers are those of the per-parameter
form. Temporaries (m̂, v̂, a divisor) are written into scratch lists the step keeps (``scratch[k]``,
tensors of the parameters' shapes), or into the gradients once no later rule reads them; nothing is
allocated per step. A rule outside what :class:`ListWriter` can write raises LookupError and
:func:`foreach_update` returns None: the trainer then prints the per-parameter loop.

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
    """The name of the list of every trained parameter's ``name`` tensors: ``ms``, ``thetas``."""
    return f"{name}s"


class ListWriter:
    """Lines writing element-wise expressions into lists of tensors with in-place foreach calls.
    ``out`` is always a list the step may overwrite (a scratch list, or the spent gradients)."""

    def __init__(self):
        self.lines: list[str] = []
        self.scratch = 0              # scratch lists used
        self.spare: list[str] = []    # lists free to overwrite (the spent gradients) before scratch

    def new_scratch(self) -> str:
        if self.spare:
            return self.spare.pop()
        self.scratch += 1
        return f"scratch[{self.scratch - 1}]"

    def call(self, fn, *args, **keywords):
        kw = [f"{k}={code(v, 'torch')}" for k, v in keywords.items() if v is not None]
        self.lines.append(f"torch._foreach_{fn}({', '.join([*args, *kw])})")

    def operand(self, e) -> str:
        """A list holding ``e``: its own for a parameter's array, else a scratch list written with it."""
        if e.is_Symbol:
            return lists(e.name)
        out = self.new_scratch()
        self.write(e, out)
        return out

    def write(self, e, out: str):
        """``out ← e`` element-wise, in place."""
        if e.is_Symbol and _is_array(e):
            if lists(e.name) != out:
                self.call("copy_", out, lists(e.name))
        elif e.is_Add:
            terms = sorted(sympy.Add.make_args(e), key=lambda a: (not _is_array(a), lists(str(a)) != out))
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


def foreach_update(optimizer, settings):
    """The update over lists: ([(rule comment or "", line)], the arrays listed from params, grads and
    state in the order the step binds them, the number of scratch lists), or None where a rule
    cannot be written so."""
    rules = optimizer.assignments(settings)
    writer, lines, temporaries = ListWriter(), [], {}
    try:
        for n, (target, expr) in enumerate(rules):
            expr = rewrites.stabilize(expr)
            start = len(writer.lines)
            later = set().union(*[e.free_symbols for _, e in rules[n + 1:]])
            in_g = {opt.g, *[t for t, held in temporaries.items() if held == lists("g")]}  # what the list gs holds
            writer.spare = [lists("g")] if not in_g & (later | expr.free_symbols) else []
            if target.name in ("theta", "m", "v", "s"):
                for op, part in in_place(target, expr):
                    if op == "*=":
                        writer.scale(lists(target.name), part)
                    elif op in ("+=", "-="):
                        writer.add(lists(target.name), part, -1 if op == "-=" else 1)
                    else:
                        out = writer.new_scratch()
                        writer.write(expr, out)
                        writer.call("copy_", lists(target.name), out)
            else:   # a temporary (g_hat, m_hat, v_hat): into the gradients once they are spent, else a scratch list
                spent = opt.g not in later and opt.g in expr.free_symbols
                writer.spare = []
                out = lists("g") if spent else writer.new_scratch()
                writer.write(expr, out)
                writer.lines.append(f"{lists(target.name)} = {out}")
                temporaries[target] = out
            rule = _rule_text(target, rules[n][1])
            lines += [(rule if i == start else "", line) for i, line in enumerate(writer.lines[start:], start)]
    except (LookupError, IndexError):
        return None
    bound = [x.name for x in sorted(set().union(*[e.free_symbols for _, e in rules]) | {opt.theta, opt.g},
                                    key=lambda x: x.name) if x.name in ("theta", "g", *optimizer.state)]
    order = ["theta", "g", *optimizer.state]
    return lines, sorted(bound, key=order.index), writer.scratch
