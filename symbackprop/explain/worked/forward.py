"""The forward pass of a worked example (before the step and after it) and the loss: layer by
layer, the entry's own part (``explain_forward``), then the activation and the layer's values."""
import numpy as np
import sympy

from ...writers.document import Display, Heading, Para, Table
from ..worksheet import EXAMPLES_SHOWN, MATRIX_MAX, WRITE_ALL


def build(work, sheet, new: bool = False) -> list:
    settings = work.e.update.settings
    out = []
    if new:
        frozen = [p for p in work.net.parameter_shapes() if not settings.trains(p)]
        out.append(Para("The same forward pass with the parameters after the step"
                        + (f" ({', '.join(frozen)} not trained: as before)" if frozen else "")
                        + (", for example 1; the tables give every example." if work.N > 1 else ".")))
    elif work.N > 1:
        out.append(Para("Written out for example 1; the tables give every example."))
    for lm in work.model.layers:
        out.append(Heading(3, title(work, lm)))
        out += lm.layer.kind.explain_forward(lm, sheet)
        out += activation(work, sheet, lm)
        out += values(work, sheet, lm)
    return out


def title(work, lm) -> str:
    layer = lm.layer
    if work.net.is_stack:
        return f"Layer {lm.index} ({'output' if lm.index == work.L else 'hidden'}, {layer.activation.name})"
    return f"Layer {lm.index}: {layer.describe()}"


def activation(work, sheet, lm) -> list:
    layer, l, n = lm.layer, lm.index, sheet.n
    act = layer.activation
    if not layer.has_z:
        return []
    if act.name == "identity" and not work.net.is_stack:
        return [Para(f"No activation: $a^{{({l})}} = z^{{({l})}}$.")]
    z, a = lm.stage("z"), lm.stage("a")
    if not act.elementwise:
        row = a.symbols[0].shape[-1]          # a sequence's: each step's row, the first written out
        lines = [f"{sheet.names[s]} &= {sheet.model.latex(d)} = {sheet.plug(d, 0, wrap=False)} {n.eq(sheet.val(s))}"
                 for s, d in zip(a.symbols[0].ravel()[:row], a.defs[0].ravel()[:row])]
        where = "over each step's row (the first step written out)" if layer.sequence else "on the whole layer"
        return [Para(f"Then the activation ({act.name}), {where}:"), Display(tuple(lines))]
    pairs = list(zip(a.symbols[0, ...].ravel(), z.symbols[0, ...].ravel()))
    shown = pairs if len(pairs) <= WRITE_ALL else pairs[:1]
    lines = [f"{sheet.names[s]} &= {act.latex}({sheet.names[t]}) = {act.latex}({n.tex(sheet.val(t))}) {n.eq(sheet.val(s))}"
             for s, t in shown]
    defined = "" if named_function(act) else f" with ${act.latex}(z) = {sympy.latex(act.expr)}$"
    out = [Para(f"Then the activation, element by element: $a^{{({l})}}_j = {act.latex}(z^{{({l})}}_j)$"
                + defined + (":" if len(shown) == len(pairs) else "; the first element:")),
           Display(tuple(lines))]
    return out


def values(work, sheet, lm) -> list:
    """The layer's values: for a vector layer with a batch (or a long vector), one table of z and a
    per example; for arrays, a table per channel of each."""
    layer, l = lm.layer, lm.index
    names = ["z", "a"] if layer.has_z else ["a"]      # (a GRU's stage z is its update gate, tabulated with the gates)
    if layer.has_z and layer.activation.name == "identity" and not work.net.is_stack:
        names = ["z"]
    if len(layer.shape) == 1:
        if work.N == 1 and layer.shape[0] <= MATRIX_MAX:
            return []
        return _vector_pair(work, sheet, lm, names)
    out = []
    for name in names:
        tex = f"{name}^{{({l})}}"
        out.append(Para(f"${tex}$" + (f" $= a^{{({l})}}$" if names == ["z"] and layer.has_z else "") + ":"))
        out += sheet.tables(tex, sheet.stage(lm, name), f"{name}{l}")
    return out


def _vector_pair(work, sheet, lm, names) -> list:
    """One table of z and a, a row per example (as a batch's tables have always been)."""
    n, rows, where = sheet.n, [], []
    arrays = [(name, sheet.stage(lm, name)) for name in names]
    size = lm.layer.shape[0]
    cols = list(range(size)) if size <= MATRIX_MAX else [*range(4), None, size - 1]
    header = (sheet.example_head,) + tuple("⋯" if j is None else f"${sheet.column_name(lm.stage(name).symbols, (j,))}$"
                                  for name, _ in arrays for j in cols)
    shown = range(min(work.N, EXAMPLES_SHOWN))
    for i in shown:
        rows.append((str(i + 1),) + tuple("⋯" if j is None else f"${n.tex(arr[i, j])}$" for _, arr in arrays for j in cols))
        where.append(tuple(None if j is None else (f"{name}{lm.index}", (i, j) if work.net.batched else (j,))
                           for name, _ in arrays for j in cols))
    out = [Table(header, tuple(rows), tuple(where))]
    if work.N > len(shown):
        out.append(Para(f"(examples {len(shown) + 1} to {work.N} not shown)"))
    return out


def loss(work, sheet, name: str) -> list:
    n, loss_, net, model = sheet.n, work.net.loss, work.net, work.model
    out_syms = model.output_array
    per = [sheet.val(e, i) for i, e in enumerate(_per_example_losses(work))]
    out = []
    if name == "C":
        out.append(Para(f"The loss is `{loss_.name}`: $C = {sympy.latex(loss_.formula())}$, where $a_j$ is "
                        f"output $a^{{({work.L})}}_j$, $y_j$ its target and $n = {net.output_size}$."
                        + (f" On a sequence it is taken on each step's row and averaged over the "
                           f"{len(net.output_shape) and net.output_shape[0]} steps, as F.cross_entropy on the "
                           "(N·T, V) rows" + (f", the steps whose target is ignore_index {net.ignore_index} left out "
                                              f"(each example's mean scaled by {net.target_weight}, the batch's steps "
                                              "over the ones kept)" if net.ignore_index is not None else "") + "."
                           if len(net.output_shape) > 1 else "")
                        + (" The targets are class indices: $y$ is their one-hot rows." if net.targets is not None else "")
                        + (" It is computed for each example $i$ as $C_i$; $C$ is their mean." if work.N > 1 else "")))
    head = name if work.N == 1 else (name + "_1" if name == "C" else r"C_{\text{new},1}")
    first = _per_example_losses(work)[0]
    out.append(Display((f"{head} &= {sheet.sym(first)}", f"&= {sheet.plug(first, 0)}", f"&{n.eq(per[0])}")))
    if work.N > 1:
        shown = range(min(work.N, EXAMPLES_SHOWN))
        cols = list(np.ndindex(*net.output_shape))[:12]        # a sequence's first steps
        rows = tuple((str(i + 1),) + tuple(f"${n.tex(sheet.val(sheet.at(out_syms, i, j), i))}$"
                                           for j in cols) + (f"${n.tex(per[i])}$",) for i in shown)
        header = (sheet.example_head,) + tuple(f"${sheet.column_name(out_syms, j)}$" for j in cols) + ("$C_i$",)
        out.append(Table(header, rows))
        if work.N > len(shown):
            out.append(Para(f"(examples {len(shown) + 1} to {work.N} not shown)"))
        terms = per if work.N <= 12 else per[:9]
        more = "" if work.N <= 12 else r" + \cdots"
        out.append(Display((f"{name} = \\frac{{1}}{{{work.N}}}\\left({n.sum(list(terms))}{more}\\right) "
                            f"{n.eq(float(sheet.values.loss))}",)))
    return out


def _per_example_losses(work) -> list:
    """Each example's loss as an expression in the model's symbols (one example's, evaluated in
    turn, for a model built for one; each example's own for a model over the batch)."""
    model = work.model
    if model.examples == 1:
        return [model.loss_def] * work.N
    return [work.net.example_loss(model.output_array[i], model.Y[i]) for i in range(model.examples)]


def named_function(act) -> bool:
    """Whether an activation's definition is its own name applied to z (tanh(z) = tanh(z)): then
    writing it out says nothing."""
    return act.expr.is_Function and len(act.expr.args) == 1 and act.expr.args[0].is_Symbol
