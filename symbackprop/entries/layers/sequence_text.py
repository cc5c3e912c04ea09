"""What a worked example says of the sequence kinds (blocks of :mod:`symbackprop.writers.document`
from a worksheet ``sheet`` of one pass's numbers): a sequence up to :data:`STEPS_WRITTEN` steps is
written out step by step, a longer one its first steps and then tabulated. Each quantity is the
derivation's own step (its chain-rule terms with their numbers), so a recurrent layer's ∂C/∂h_t
shows both of its parts — from step t's own output and from step t + 1 — and a shared weight's
gradient its sum of per-step terms; an embedding row's gradient sums the positions of its id."""
import numpy as np
import sympy

STEPS_WRITTEN = 4        # a sequence this long is written out step by step; a longer one its first 2
UNITS_WRITTEN = 4        # units of a step written out (the first 2 past this)
GRADS_WRITTEN = 2        # elements of each parameter's gradient written out as per-step sums


def _steps(T: int) -> list[int]:
    return list(range(T)) if T <= STEPS_WRITTEN else [0, 1]


def _units(k: int) -> list[int]:
    return list(range(k)) if k <= UNITS_WRITTEN else [0, 1]


def stage_lines(sheet, symbol, definition) -> list[str]:
    """name = formula ≈ value; the sum written out with its numbers where it is a plain sum; a gate
    σ or tanh of a long pre-activation u as f(u) with u's value (its sum is the layer's rule above)."""
    if definition.is_Add and all(len(t.free_symbols) <= 2 for t in definition.args):
        return sheet.written_sum(symbol)
    f, u = _squashed(definition)
    n = sheet.n
    if u is not None and len(u.free_symbols) > 3:
        return [f"{sheet.names[symbol]} &= {f}(u) = {f}\\left({n.tex(sheet.val(u))}\\right) {n.eq(sheet.val(symbol))}"]
    return [f"{sheet.names[symbol]} &= {sheet.sym(definition)} = {sheet.plug(definition)} {n.eq(sheet.val(symbol))}"]


def _squashed(definition):
    """(LaTeX of f, u) where the definition is tanh(u) or σ(u) = 1/(1 + e^{−u}); else (None, None)."""
    if isinstance(definition, sympy.tanh):
        return r"\tanh", definition.args[0]
    if definition.is_Pow and definition.exp == -1 and definition.base.is_Add:
        exps = [t for t in definition.base.args if isinstance(t, sympy.exp)]
        if len(exps) == 1 and definition.base - exps[0] == 1:
            return r"\sigma", -exps[0].args[0]
    return None, None


def forward_steps(lm, sheet, names, intro) -> list:
    """The stages ``names`` of a recurrent layer step by step (the first steps where T is long),
    then a table of each."""
    from ...writers.document import Display, Para
    stages = [lm.stage(name) for name in names]
    T, k = stages[-1].symbols.shape[1], stages[-1].symbols.shape[2]
    gates = "s" not in names
    out = [Para(intro + (" Here $u$ is a gate's pre-activation, its row of the rule above." if gates else ""))]
    for t in _steps(T):
        lines = []
        for st in stages:
            width = st.symbols.shape[2]
            for j in _units(width):
                lines += stage_lines(sheet, st.symbols[0, t, j], st.defs[0, t, j])
        out += [Para(f"Step {t + 1}" + (" ($h_0 = 0$):" if t == 0 else f", reading step {t}'s values by name:")),
                Display(tuple(lines))]
    if T > len(_steps(T)) or k > len(_units(k)):
        out.append(Para(f"The other steps and units the same way; the tables give every value."))
    for st in stages:
        out += [Para(f"${st.latex}^{{({lm.index})}}$, a row per step:")]
        out += sheet.tables(f"{st.latex}^{{({lm.index})}}", sheet.stage(lm, st.name), st.quantity)
    return out


def backward_steps(lm, sheet, wanted, names, intro) -> list:
    """∂C/∂ of the stages ``names`` from the last step back (each a derivation step: its terms with
    numbers), then each wanted parameter's gradient as its sum of per-step terms, and the matrices."""
    from ...writers.document import Display, Para
    stages = [lm.stage(name) for name in names]
    T = stages[0].symbols.shape[1]
    out = [Para(intro)]
    for t in reversed(_steps(T) if T <= STEPS_WRITTEN else [T - 1, T - 2]):
        lines = []
        for st in stages:
            for j in _units(st.symbols.shape[2]):
                step = sheet.steps.get((f"dC/d{st.name}", st.symbols[0, t, j]))
                if step is not None:
                    lines += sheet.step_lines(step)
        out += [Para(f"Step {t + 1}:"), Display(tuple(lines))]
    if T > STEPS_WRITTEN:
        out.append(Para(f"Steps {T - 2} down to 1 the same way."))
    return out + parameter_sums(lm, sheet, wanted)


def parameter_sums(lm, sheet, wanted) -> list:
    """Each wanted parameter's gradient: its first elements as their sums of per-step (or
    per-position) terms, then the whole gradient as a matrix."""
    from ...writers.document import Display, Para
    names = [p for p in lm.params if p in wanted]
    if not names:
        return []
    lines = []
    for name in names:
        steps = [st for st in sheet.d.gradients() if st.param == name][:GRADS_WRITTEN]
        lines += [line for st in steps for line in sheet.step_lines(st)]
    out = [Para("The parameters are shared by every step, so each gradient is a sum of per-step terms "
                f"(the first {GRADS_WRITTEN} elements of each written out):"), Display(tuple(lines)),
           Para("Every element, each in its parameter's shape" + (" (means over the batch)" if sheet.N > 1 else "") + ":")]
    for p in names:
        out += sheet.tables(f"\\partial C/\\partial {_tex(p)}", sheet.values.gradients[p], f"grad.{p}", per_example=False)
    return out


def _tex(name: str) -> str:
    from .base import param_tex
    return param_tex(name)


def embedding_backward(lm, sheet, wanted) -> list:
    """E's gradient row by row: Σ over the positions t of [x_t = v] δ_t — a repeated id's positions
    add (the rows of ids that repeat written out first)."""
    from ...writers.document import Para
    name = lm.layer.param("E")
    if name not in wanted:
        return []
    ids = sheet.inputs(lm)[0].astype(int).ravel()
    counts = np.bincount(ids, minlength=lm.layer.opt["vocab"])
    order = sorted(range(len(counts)), key=lambda v: -counts[v])[:2]
    out = [Para(f"Row $v$ of $E^{{({lm.index})}}$ is read at every position whose id is $v$: its gradient adds those "
                f"positions' gradients, $\\partial C/\\partial E_{{v,d}} = \\sum_t [x_t = v]\\, \\partial C/\\partial "
                f"a_{{t,d}}$ — a scatter-add, so a repeated id sums, and a row no id reads gets 0. Example 1's ids are "
                f"{', '.join(str(i) for i in ids)}; row {order[0] + 1} (id {order[0]}, read {counts[order[0]]} "
                f"time{'s' if counts[order[0]] != 1 else ''}) written out:")]
    steps = [st for st in sheet.d.gradients() if st.param == name and st.index[0] in order[:1]]
    from ...writers.document import Display
    out.append(Display(tuple(line for st in steps[:GRADS_WRITTEN] for line in sheet.step_lines(st))))
    return out + [Para("Every row" + (" (means over the batch)" if sheet.N > 1 else "") + ":")] + sheet.tables(
        f"\\partial C/\\partial {_tex(name)}", sheet.values.gradients[name], f"grad.{name}", per_example=False)


def dense_forward(lm, sheet) -> list:
    """A per-step dense layer: z_t = W a_t + b, the first step's sums written out."""
    from ...writers.document import Display, Para
    l, z = lm.index, lm.stage("z")
    k = z.symbols.shape[-1]
    lines = [line for j in _units(k) for line in sheet.written_sum(z.symbols[0, 0, j])]
    return [Para(f"The same $W^{{({l})}}$ and $b^{{({l})}}$ at every step: $z^{{({l})}}_t = W^{{({l})}} "
                 f"{sheet.input_tex(lm)}_t + b^{{({l})}}$. Step 1:"), Display(tuple(lines))]
