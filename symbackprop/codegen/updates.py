"""The update step as printed code: the optimizer's SymPy assignments (from
:mod:`symbackprop.entries.optimizers`) written as NumPy or torch lines, in place where they can be,
or as Python-float lines for the unrolled form; and the expression printers the trainer uses.
"""
import math
from dataclasses import dataclass

import sympy
from sympy.printing.pycode import PythonCodePrinter

from . import inplace, printing, rewrites
from ..entries import optimizers as opt
from ..errors import SpecError
from ..spec.network import Network


# ---------------------------------------------------------------------------------------- printers

class ScalarPrinter(PythonCodePrinter):
    """Python-float code for the unrolled form, after the numerically stable rewrites of
    :func:`symbackprop.codegen.rewrites.stabilize` (softplus and sigmoid in place of log(1 + exp) and
    1/(1 + exp), which overflow): the math module, a stable ``sigmoid`` the trainer defines, the
    builtins ``max``/``min``."""

    def _print_Sigmoid(self, expr):
        return f"sigmoid({self._print(expr.args[0])})"

    def _print_Max(self, expr):
        return f"max({', '.join(self._print(a) for a in expr.args)})"

    def _print_Min(self, expr):
        return f"min({', '.join(self._print(a) for a in expr.args)})"

    def _print_Float(self, expr):
        return repr(float(expr))


def array_code(expr: sympy.Expr, names: dict | None = None, backend: str = "numpy") -> str:
    """NumPy (or torch) code, after the stable rewrites of :func:`symbackprop.codegen.rewrites.stabilize`,
    printed by :func:`symbackprop.codegen.printing.code`, the printer of :mod:`symbackprop.codegen.compiled`'s array program."""
    return printing.code(rewrites.stabilize(_renamed(expr, names)), backend)


def scalar_code(expr: sympy.Expr, names: dict | None = None) -> str:
    """Python-float code for one number at a time."""
    return ScalarPrinter({"allow_unknown_functions": False}).doprint(rewrites.stabilize(_renamed(expr, names)))


def _renamed(expr, names):
    if not names:
        return expr
    return expr.xreplace({s: sympy.Symbol(names[s.name], real=True)
                          for s in expr.free_symbols if s.name in names})


# --------------------------------------------------------------------------------------- optimizer

def optimizer_settings(network: Network, name: str | None, learning_rate: float | None):
    """The optimizer and its settings: the spec's ``[optimizer]`` values where the chosen optimizer
    reads them, ``--learning-rate`` over all."""
    table = dict(network.optimizer)
    name = name or table.get("name") or "sgd"
    if name not in opt.OPTIMIZERS:
        raise SpecError("optimizer.name", f"unknown optimizer {name!r} (known: {', '.join(opt.OPTIMIZERS)})")
    table.pop("name", None)
    if learning_rate is not None:
        if not (isinstance(learning_rate, (int, float)) and math.isfinite(learning_rate) and learning_rate > 0):
            raise SpecError("--learning-rate", f"expected a positive number, got {learning_rate!r}")
        table["learning_rate"] = float(learning_rate)
    return opt.OPTIMIZERS[name], opt.Settings.of(table)


@dataclass(frozen=True)
class Update:
    """One printed assignment of the update: ``target op code``, and the rule it comes from."""
    target: str
    op: str        # "=" (a temporary), "[...] =", "+=", "-=" or "*=" (in place)
    code: str
    rule: str = ""  # set on the first line printed for a rule
    scratch: str = ""  # a temporary this line writes into: a tensor of the parameter's shape kept per parameter


def in_place(target: sympy.Symbol, expr: sympy.Expr) -> list[tuple[str, sympy.Expr]]:
    """``target = expr`` as in-place operations when expr = c·target + rest (rest free of target):
    ``target *= c`` then ``target += rest``; otherwise ``target[...] = expr``. The arrays stay the
    caller's (``params`` and ``state`` change in place).

    >>> m, g, b = sympy.symbols("m g beta1")
    >>> in_place(m, b*m + (1 - b)*g)
    [('*=', beta1), ('+=', g*(1 - beta1))]
    """
    coeff, rest = sympy.Integer(0), sympy.Integer(0)
    for term in sympy.Add.make_args(expr):
        if target not in term.free_symbols:
            rest += term
            continue
        for part in sympy.Add.make_args(sympy.expand_mul(term)):
            if target not in part.free_symbols:
                rest += part
                continue
            c = part / target
            if target in c.free_symbols:
                return [("[...] =", expr)]
            coeff += c
    ops = []
    if coeff != 1:
        ops.append(("*=", coeff))
    if rest != 0:
        ops.append(("-=", -rest) if rest.could_extract_minus_sign() else ("+=", rest))
    return ops


def _rule_text(target, expr) -> str:
    """The rule as a comment, in the textbook order explain prints it: ``theta ← theta - learning_rate*g``."""
    arrow = "←" if target.name in ("theta", "m", "v", "s") else "="
    return f"{target.name} {arrow} {sympy.sstr(opt.textbook_order(expr, target), order='none')}"


def clip_formula() -> str:
    """The clipping rule (:data:`~symbackprop.entries.optimizers.CLIP`) as text for comments."""
    factor = sympy.sstr(opt.CLIP.factor(shown=True), order="none").replace("Min(", "min(")
    return f"g ← g*{factor}, grad_norm = sqrt(sum of g**2 over every trained parameter)"


def update_formulas(optimizer, settings) -> list[str]:
    """The optimizer's rules as text for comments: ``m ← beta1*m + g*(1 - beta1)``."""
    return [_rule_text(target, expr) for target, expr in optimizer.assignments(settings)]


_ARRAYS = {"theta", "g", "m", "v", "s", "g_hat", "m_hat", "v_hat"}  # the rest are numbers


def array_update(optimizer, settings, backend: str = "numpy") -> list[Update]:
    """The update of one parameter ``theta`` with gradient ``g``, on arrays (or tensors), in place.

    The gradient array is scratch: once no later rule reads ``g``, the step added to θ is computed
    into it (``np.multiply(g, learning_rate, out=g)``, then ``theta -= g``) instead of into a new
    array — for a 784×128 weight that saves allocating (and page-faulting) 800 kB a step."""
    lines = []
    rules = optimizer.assignments(settings)
    for n, (target, expr) in enumerate(rules):
        ops = in_place(target, expr) if target.name in ("theta", "m", "v", "s") else [("=", expr)]
        g_dead = not any(opt.g in later.free_symbols for _, later in rules[n + 1:])
        for i, (op, part) in enumerate(ops):
            rule = "" if i else _rule_text(target, expr)
            fused = _fused(target.name, op, part, g_dead) if backend == "torch" else None
            into_g = _into_gradient(part, backend) if g_dead and op in ("+=", "-=") and not fused else None
            if fused is not None:
                scratch = target.name if op == "=" else ""
                lines += [Update("", "", line, rule if j == 0 else "", scratch) for j, line in enumerate(fused)]
            elif into_g is not None:
                lines += [Update("", "", line, rule if j == 0 else "") for j, line in enumerate(into_g)]
                lines.append(Update(target.name, op, "g"))
            else:
                lines.append(Update(target.name, op, array_code(part, backend=backend), rule))
    return lines


def _fused(target: str, op: str, part: sympy.Expr, g_dead: bool = False) -> list[str] | None:
    """Torch lines for ``target op part`` that make no temporary tensor, or None. With ``+=`` or
    ``-=`` and part c·X, c·X·Y or c·X/Y (c free of arrays): one fused in-place call,
    ``target.add_(X, alpha=c)``, ``addcmul_(X, Y, value=c)``, ``addcdiv_(X, Y, value=c)`` (torch.optim's
    own updates are written so), Y computed into the spent gradient g first when it is an expression;
    with ``=`` (a temporary such as m_hat) and part X·c or X/c: into the tensor ``target``, which the
    step keeps per parameter. Where ``+=`` of a product makes a temporary and a second pass, and a
    freshly allocated tensor faults its pages in again each step, these make neither.

    >>> theta, g, lr = sympy.symbols("theta g learning_rate")
    >>> _fused("theta", "-=", lr * g)
    ['theta.add_(g, alpha=-learning_rate)']
    """
    scale, arrays, divisors = sympy.Integer(1 if op != "-=" else -1), [], []
    for factor in sympy.Mul.make_args(part):
        if not {x.name for x in factor.free_symbols} & _ARRAYS:
            scale *= factor
        elif factor.is_Pow and factor.exp == 2:
            arrays += [factor.base, factor.base]
        elif factor.is_Pow and factor.exp == -1:
            divisors.append(factor.base)
        else:
            arrays.append(factor)
    code = lambda e: array_code(e, backend="torch")
    args = [code(a) for a in arrays]
    if op == "=":
        if len(arrays) != 1 or divisors:
            return None
        if scale.is_Pow and scale.exp == -1:
            return [f"torch.div({args[0]}, {code(scale.base)}, out={target})"]
        return [f"torch.mul({args[0]}, {code(scale)}, out={target})"]
    if op not in ("+=", "-="):
        return None
    if len(arrays) == 1 and not divisors:   # (+= X itself stays +=)
        return None if abs(scale) == 1 else [f"{target}.add_({args[0]}, alpha={code(scale)})"]
    if len(arrays) == 2 and not divisors:
        return [f"{target}.addcmul_({args[0]}, {args[1]}, value={code(scale)})"]
    if len(arrays) == 1 and len(divisors) == 1:
        (divisor,) = divisors
        first = []
        if g_dead and not divisor.is_Symbol and opt.g not in divisor.free_symbols | arrays[0].free_symbols:
            try:
                first = inplace.inplace_code(rewrites.stabilize(divisor), "g", _no_scratch, "torch")
                divisor = opt.g
            except LookupError:
                first = []
        return first + [f"{target}.addcdiv_({args[0]}, {code(divisor)}, value={code(scale)})"]
    return None


def _no_scratch():
    raise LookupError


def gradient_scale(optimizer, settings) -> str | None:
    """The code of c when the whole update is θ ← θ − c·g with c a number or hyper-parameters (plain
    SGD: c = learning_rate), else None. Every gradient is linear in the output delta, so a step can
    fold c into it (``_loss_and_gradients(..., scale=c)``) and subtract the gradients as they come."""
    rules = optimizer.assignments(settings)
    if len(rules) != 1 or rules[0][0] != opt.theta:
        return None
    c = sympy.cancel((opt.theta - rules[0][1]) / opt.g)
    if c.free_symbols & {opt.theta, opt.g, opt.t} or {x.name for x in c.free_symbols} & _ARRAYS:
        return None
    return array_code(c)


def _into_gradient(part: sympy.Expr, backend: str = "numpy") -> list[str] | None:
    """Lines computing ``part`` into the array ``g`` (which ``part`` may read only as c·g), or None."""
    arrays = {x.name for x in part.free_symbols} & _ARRAYS
    if part == opt.g:
        return None
    if arrays == {"g"}:
        coeff = sympy.cancel(part / opt.g)
        if {x.name for x in coeff.free_symbols} & _ARRAYS:
            return None
        writer = inplace.writer(backend, None)
        writer.op("multiply", "g", writer.code(rewrites.stabilize(coeff)), out="g")
        return writer.lines
    if "g" in arrays or not arrays:
        return None

    def no_scratch():
        raise LookupError

    try:
        return inplace.inplace_code(rewrites.stabilize(part), "g", no_scratch, backend)
    except LookupError:
        return None


def scalar_update(optimizer, settings, element: str, state: tuple[str, ...]) -> list[Update]:
    """The update of one number ``element`` (``W1_0_2``) with gradient ``d<element>``."""
    names = {"theta": element, "g": f"d{element}", **{k: f"{k}_{element}" for k in state}}
    return [Update(names.get(target.name, target.name), "=", scalar_code(expr, names))
            for target, expr in optimizer.assignments(settings)]
