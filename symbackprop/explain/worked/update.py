"""The update of a worked example (the optimizer's rule with every trained parameter's numbers),
how much the loss fell, the same gradients with plain SGD, and a short training run."""
import numpy as np
import sympy

from ...writers.document import Curve, Display, Para, Table
from ...entries.layers.base import param_tex
from ...entries.optimizers import CLIP, HYPER, LATEX_NAMES, rule_latex
from ..worksheet import code_names

WRITTEN_PER_PARAMETER = 12   # elements of one parameter array whose update is written out
TABLE_PER_PARAMETER = 60     # rows of one parameter array in the update's table
TRAINING_ROWS = 30           # a longer run's table shows the first and last ENDS steps and every power of ten
ENDS = 10


def label(name: str, index) -> str:
    return param_tex(name) + "_{" + ",".join(str(i + 1) for i in index) + "}"


def build(work) -> list:
    u, n = work.e.update, work.n
    opt, settings = u.optimizer, u.settings
    hyper = settings.values(opt)
    out = [Para("All parameters are updated at once (simultaneous updates): every gradient above was "
                "computed with the parameters before the step, and no parameter's new value is used "
                f"until the step is complete. This is step $t = {u.t}$"
                + ("; the optimizer's state starts at zero." if opt.state else "."))]
    rules = [rule_latex(opt, target, expr) for target, expr in opt.assignments(settings)]
    out += clipping(work, u)
    out += [Para(f"The {opt.name} rule, element by element, for a parameter $\\theta$ with gradient $g$"
                 + (f" ({code_names(opt.note)})" if opt.note else "") + ":"), Display(tuple(rules))]
    given = dict(settings.given)
    hp = ", ".join(f"${LATEX_NAMES[HYPER[k]]} = {n.tex(val)}$" + ("" if k in given else " (default)")
                   for k, val in hyper.items())
    notes = [f"Hyper-parameters: {hp}."]
    if opt.bias_corrected:
        if settings.bias_correction:
            notes.append("Bias correction is on: $\\hat m$ and $\\hat v$ divide by $1 - \\beta^t$."
                         + (" On the first step $\\hat m = g$ and $\\hat v = g^2$, so each parameter moves "
                            "by $\\eta\\, g / (|g| + \\epsilon)$: almost exactly $\\eta$, against the sign of "
                            "its gradient, whatever the gradient's size." if u.t == 1 else ""))
        else:
            notes.append("Bias correction is off (`bias_correction = false`): $\\hat m = m$, $\\hat v = v$.")
    notes += _frozen_notes(u)
    unused = sorted(k for k in given if k not in hyper)
    if unused:
        notes.append(f"Not used by {opt.name}: " + ", ".join(f"`{k}`" for k in unused) + ".")
    if work.e.wrt:
        notes.append("Shown: " + ", ".join(f"${param_tex(p)}$" for p in work.e.wrt) + " (`--wrt`); every parameter "
                     "is updated all the same.")
    out.append(Para(" ".join(notes)))
    out += [Display(block) for block in update_lines(work, u)]
    return out + update_table(work)


def clipping(work, u) -> list:
    """The global-norm clipping before the rule (``clip_norm``), from its one definition
    (:data:`~symbackprop.entries.optimizers.CLIP`), with this step's numbers."""
    if u.clip is None:
        return []
    n, (norm, coef) = work.n, u.clip
    limit = u.settings.clip_norm
    verdict = ("the norm is above $C$, so every gradient is scaled down by the same factor"
               if coef < 1 else "the norm is at most $C$ less $10^{-6}$: the factor is 1 and the gradients keep their values")
    return [Para(f"First the gradients are clipped by their global norm (`clip_norm` $C = {n.tex(limit)}$), as "
                 "`torch.nn.utils.clip_grad_norm_` does: the 2-norm of every trained parameter's gradient together, "
                 "and one factor for all of them:"),
            Display(tuple(CLIP.latex())),
            Display((f"\\lVert g \\rVert &= {n.tex(norm)}",
                     f"{CLIP.factor_latex({CLIP.norm: n.tex(norm), CLIP.limit: n.tex(limit)})} &= {n.tex(coef)}")),
            Para(f"Here {verdict}; the rule below reads the clipped $g$.")]


def _frozen_notes(u) -> list[str]:
    settings = u.settings
    frozen = [t.name for t in u.traces if t.frozen]
    if not frozen:
        return []
    names = ", ".join(f"${param_tex(p)}$" for p in frozen)
    if settings.train is not None:
        trained = ", ".join(f"`{p}`" for p in settings.train)
        why = f"`train = [{trained}]`" + (" and `train_biases = false`" if not settings.train_biases else "")
        return [f"Not trained ({why}): {names} keep their values."]
    return [f"The biases are frozen (`train_biases = false`): {names} keep their values."]


def update_lines(work, u) -> list[tuple[str, ...]]:
    """Each shown parameter's rules with its numbers plugged in: one aligned block per element, or,
    for a one-rule optimizer (plain SGD), one line per element in a single block; past
    :data:`WRITTEN_PER_PARAMETER` elements of an array, the first few and a note."""
    n = work.n
    fixed = {HYPER[k]: n.par(val) for k, val in u.settings.values(u.optimizer).items()}
    fixed[sympy.Symbol("t", positive=True, integer=True)] = str(u.t)
    blocks, single, notes = [], [], []
    for trace in u.traces:
        if trace.frozen or trace.name not in work.wanted:
            continue
        indices = list(np.ndindex(trace.theta.shape))
        shown = indices if len(indices) <= WRITTEN_PER_PARAMETER else indices[:3]
        for index in shown:
            env = {"theta": trace.theta[index], "g": trace.grad[index]}
            env.update({k: val[index] for k, val in trace.state_before.items()})
            block = [f"\\text{{for }} \\theta = {label(trace.name, index)}: \\quad g &= {n.tex(trace.grad[index])}"]
            for target, rule, value in trace.assigned:
                names = dict(fixed)
                names.update({s: n.par(env[s.name]) for s in rule.free_symbols if s.name in env})
                line = f"{rule_latex(u.optimizer, target, rule, names, times=True)} {n.eq(value[index])}"
                block.append(line)
                env[target.name] = value[index]
            blocks.append(tuple(block))
            if len(trace.assigned) == 1:
                single.append(label(trace.name, index) + line[line.index(" &"):])
        if len(shown) < len(indices):
            notes.append(rf"&\text{{(the other {len(indices) - len(shown)} elements of }} {param_tex(trace.name)}"
                         r"\text{ the same way: the table gives every one)}")
    if single and len(single) == len(blocks):
        return [tuple(single + notes)]
    return blocks + ([tuple(notes)] if notes else [])


def update_table(work) -> list:
    n, u = work.n, work.e.update
    state = u.optimizer.state
    header = ("parameter", "before", "gradient $g$") + tuple(f"${k}$ after" for k in state) + ("after", "change")
    rows, elided = [], []
    for trace in u.traces:
        if trace.name not in work.wanted:
            continue
        indices = list(np.ndindex(trace.theta.shape))
        if len(indices) > TABLE_PER_PARAMETER:
            elided.append((trace.name, len(indices)))
            indices = indices[:TABLE_PER_PARAMETER - 5] + [None] + indices[-4:]
        for index in indices:
            if index is None:
                rows.append(("⋮",) * (len(header)))
                continue
            before, after = trace.theta[index], trace.theta_after[index]
            rows.append((f"${label(trace.name, index)}$", f"${n.tex(before)}$", f"${n.tex(trace.grad[index])}$")
                        + tuple(f"${n.tex(trace.state_after[k][index])}$" for k in state)
                        + (f"${n.tex(after)}$", "frozen" if trace.frozen else f"${n.tex(after - before)}$"))
    out = [Para("Every parameter before and after the step"
                + (" (" + "; ".join(f"of ${param_tex(p)}$'s {k}, the first {TABLE_PER_PARAMETER - 5} and the last 4"
                                    for p, k in elided) + ")" if elided else "") + ":"),
           Table(header, tuple(rows))]
    return out


def fall(work) -> list:
    n = work.n
    old, new = float(work.e.values.loss), float(work.e.after.loss)
    drop = old - new
    verb = "fell" if drop > 0 else "rose" if drop < 0 else "did not change"
    rel = abs(drop) / old * 100 if old else float("nan")
    return [Para(f"The loss {verb}: from $C = {n.tex(old)}$ to $C_{{\\text{{new}}}} = {n.tex(new)}$"
                 + (f", by $\\lvert C - C_{{\\text{{new}}}} \\rvert = {n.tex(abs(drop))}$ "
                    f"(${n.tex(rel)}\\%$ of $C$)." if drop else "."))]


def compare(work) -> list:
    n, e = work.n, work.e
    plain, loss = e.comparison
    mine = e.update.optimizer.name
    rule = [rule_latex(plain.optimizer, t, x) for t, x in plain.optimizer.assignments(plain.settings)]
    lr = plain.settings.values(plain.optimizer)["learning_rate"]
    frozen = [t.name for t in plain.traces if t.frozen]
    out = [Para(f"The same gradients with plain gradient descent and $\\eta = {n.tex(lr)}$"
                + (f" ({', '.join(f'${param_tex(p)}$' for p in frozen)} not trained)" if frozen else "") + ":"),
           Display(tuple(rule))]
    out += [Display(block) for block in update_lines(work, plain)]
    rows = []
    for mine_trace, sgd_trace in zip(e.update.traces, plain.traces):
        if mine_trace.name not in work.wanted:
            continue
        indices = list(np.ndindex(mine_trace.theta.shape))
        for index in indices[:TABLE_PER_PARAMETER]:
            rows.append((f"${label(mine_trace.name, index)}$", f"${n.tex(mine_trace.theta[index])}$",
                         f"${n.tex(sgd_trace.theta_after[index])}$", f"${n.tex(mine_trace.theta_after[index])}$"))
    out.append(Table(("parameter", "before", "after sgd", f"after {mine}"), tuple(rows)))
    old, new = float(e.values.loss), float(e.after.loss)
    out.append(Para(f"After the sgd step the loss would be ${n.tex(loss)}$ (a change of ${n.tex(loss - old)}$); "
                    f"after the {mine} step it is ${n.tex(new)}$ (a change of ${n.tex(new - old)}$)."))
    return out


def training(work) -> list:
    e, n = work.e, work.n
    max_iters, loss_below, min_delta = e.conditions
    conds = [f"at most {e.limit} step{'s' if e.limit > 1 else ''}"]
    if loss_below is not None:
        conds.append(f"until the loss is below ${n.tex(loss_below)}$")
    if min_delta is not None:
        conds.append(f"until the loss changes by less than ${n.tex(min_delta)}$ in one step")
    carried = " (its state carried from step to step)" if e.update.optimizer.state else ""
    out = [Para(f"The same step repeated with {e.update.optimizer.name}{carried}, stopping by the three conditions of a training loop: a maximum number of "
                "steps, a loss below a threshold, a change of loss below a threshold. Here: " + "; ".join(conds) + ".")]
    shown = shown_steps(len(e.history))
    if len(shown) < len(e.history):
        powers = [str(10 ** k) for k in range(2, 10) if ENDS < 10 ** k <= len(e.history) - ENDS]
        out.append(Para(f"A run of more than {TRAINING_ROWS} steps is tabulated in part: steps 1 to {ENDS}"
                        + (f", {', '.join(powers)}" if powers else "") + f" and the last {ENDS} of its "
                        f"{len(e.history):,} (the stopping conditions are tested after every step; the last row is "
                        "where the run stopped). `--steps-csv FILE` writes every step."))
    rows = tuple(("⋮",) * 5 if i is None else _training_row(n, e.history[i]) for i in shown)
    out.append(Table(("step $t$", "loss before", "loss after", "change", "relative change"), rows))
    out.append(Para(f"Stopped: {e.stop}."))
    if len(e.history) > 1:
        points = ((0, e.history[0].loss_before),) + tuple((it.t, it.loss_after) for it in e.history)
        out.append(Curve((("loss", points),), "step", "loss",
                         f"The loss before step 1 and after each of the {len(e.history):,} steps."))
    lines, kernels = [], []
    for name, value in e.final.items():
        value = np.asarray(value)
        if value.ndim <= 2:
            lines.append(f"{param_tex(name)} &= {n.matrix(value) if value.ndim == 2 else n.column(value)}")
        else:                        # a kernel per table, as the parameters were shown before the step
            kernels += work.before.tables(param_tex(name), value, per_example=False, what="kernel")
    out += [Para(f"The parameters after step {e.history[-1].t}:")] + ([Display(tuple(lines))] if lines else []) + kernels
    return out


def shown_steps(count: int) -> list:
    """The rows of a run of ``count`` steps that its table shows, as indices into its history (None:
    a gap): all up to :data:`TRAINING_ROWS`; past that, the first and last :data:`ENDS` and the powers
    of ten between them.

    >>> shown_steps(1000)[9:13]
    [9, None, 99, None]
    """
    if count <= TRAINING_ROWS:
        return list(range(count))
    keep = sorted({*range(ENDS), *range(count - ENDS, count),
                   *(10 ** k - 1 for k in range(2, 10) if 10 ** k <= count)})
    out = []
    for i in keep:
        if out and i - out[-1] > 1:
            out.append(None)
        out.append(i)
    return out


def _training_row(n, it) -> tuple:
    change = it.loss_after - it.loss_before
    return (str(it.t), f"${n.tex(it.loss_before)}$", f"${n.tex(it.loss_after)}$", f"${n.tex(change)}$",
            f"${n.tex(change / it.loss_before * 100 if it.loss_before else 0)}\\%$")
