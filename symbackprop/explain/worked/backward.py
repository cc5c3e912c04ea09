"""The backward pass of a worked example: from the output back, for each layer the gradient
arriving at its output, its activation's factors and δ, the entry's own part (its parameters'
gradients, ``explain_backward``) and the gradient it passes back to each input
(``explain_input_gradient``). ``--wrt`` keeps the layers the chosen gradients need."""
import numpy as np
import sympy

from ...writers.document import Heading, Para, Table
from ..worksheet import EXAMPLES_SHOWN, WRITE_ALL, code_names
from .forward import named_function, title


def build(work) -> list:
    n_ex = work.N
    out = [Para("The chain rule, layer by layer from the output back. For every neuron, "
                "$\\delta = \\partial C/\\partial z$ is its error signal. Each gradient is a product "
                "of local derivatives in chain order, as the seed notes write it: "
                "$\\frac{\\partial C}{\\partial w} = \\frac{\\partial z}{\\partial w}\\,"
                "\\frac{\\partial a}{\\partial z}\\,\\frac{\\partial C}{\\partial a}$."
                + (_batch_note(work) if n_ex > 1 else ""))]
    if work.e.wrt:
        layers = sorted(work.needed)
        out.append(Para(f"Only the gradients of {', '.join(f'`{p}`' for p in work.e.wrt)} are followed (`--wrt`), "
                        f"through the layer{'s' if len(layers) > 1 else ''} they need: "
                        f"{', '.join(map(str, reversed(layers)))}."))
    for lm in reversed(work.model.layers):
        if lm.index in work.needed:
            out += layer(work, lm)
    return out


def _batch_note(work) -> str:
    if work.model.examples > 1:
        return (" Batch normalization couples the examples, so here $C$ is the batch's mean loss throughout: every "
                "$\\delta$ is $\\partial C/\\partial z$ of it (each carries the mean's $1/N$), and each gradient "
                "sums over the examples.")
    return (" Each quantity is written out for example 1 (where $C$ stands for $C_1$); the gradient of $C$ "
            "is the mean over the examples, given in the tables.")


def layer(work, lm) -> list:
    sheet, kind = work.before, lm.layer.kind
    out = [Heading(3, title(work, lm))]
    out += incoming(work, lm)
    out += activation(work, lm)
    out += kind.explain_backward(lm, sheet, work.wanted & set(lm.params))
    out += steps_table(work, lm)
    for k, src in enumerate(lm.layer.sources):
        if src > 0 and src in work.needed:
            out.append(Para(f"The gradient it passes back to its input $a^{{({src})}}$:"))
            out += kind.explain_input_gradient(lm, sheet, k, part(work, lm, src))
    return out


def _small(work, lm) -> bool:
    """A layer whose every element's lines are written: few values, vectors, one model per example."""
    return work.model.examples == 1 and all(st.symbols[0, ...].size <= WRITE_ALL for st in lm.stages) \
        and len(lm.layer.shape) == 1


def part(work, consumer, src):
    """The part of ∂C/∂a^{(src)} that comes through ``consumer`` (all of it, None, when it is the
    only layer reading a^{(src)})."""
    if len(work.consumers(src)) == 1:
        return None
    sheet, receiver = work.before, work.model.layers[src - 1]
    stage = receiver.stage("a")
    own = {s for st in consumer.stages for s in st.symbols.ravel()}

    def through(s, ex):
        step = sheet.steps[("dC/da", s)]
        return sum(sheet.val(sympy.Mul(*[f.expr for f in term]), ex)
                   for term, source in zip(step.terms, step.sources) if source in own)
    if stage.per_example and sheet.E == 1:
        return np.stack([np.vectorize(lambda s, ex=ex: through(s, ex), otypes=[float])(stage.symbols[0, ...])
                         for ex in range(work.N)])
    return np.vectorize(lambda s: through(s, 0), otypes=[float])(stage.symbols)


def incoming(work, lm) -> list:
    """∂C/∂a of the layer's output: from the loss, or passed back by the layers reading it."""
    sheet, l, a = work.before, lm.index, lm.stage("a")
    steps = [sheet.steps[("dC/da", s)] for s in a.symbols[0, ...].ravel()]
    if l == work.L:
        shape = work.net.output_shape
        loss = (sheet.sym(_first_loss(work)) if len(shape) == 1 else      # a sequence's: the mean of its steps' losses
                rf"\frac{{{sympy.latex(sympy.Rational(str(work.net.target_weight)))}}}{{{shape[0]}}} \sum_{{t=1}}^{{{shape[0]}}} C_t,\ "
                rf"C_t = {sympy.latex(work.net.loss.formula()).replace('{a}_{j}', 'a_{t,j}').replace('{y}_{j}', 'y_{t,j}')}")
        return [Para(f"$\\partial C/\\partial a$ comes from the loss, $C = {loss}$:")] \
            + sheet.steps_display(steps)
    readers = work.consumers(l)
    if len(readers) == 1:
        if lm.layer.has_z and lm.layer.activation.elementwise:
            return []          # shown where it was passed back, and used in δ below
        return [Para(f"$\\partial C/\\partial a^{{({l})}}$, passed back by layer {readers[0][0].index} (above), is the "
                     "gradient of this layer's output.")]
    names = " and ".join(f"layer {c.index}" for c, _ in readers)
    out = [Para(f"$a^{{({l})}}$ feeds {names}, so $\\partial C/\\partial a^{{({l})}}$ is the sum of the gradients both "
                "paths pass back (above): where the paths rejoin, their gradients add.")]
    out += sheet.steps_display(steps, limit=WRITE_ALL if len(lm.layer.shape) == 1 else 1)
    out += _path_sum_table(work, lm, readers)
    return out


def _path_sum_table(work, lm, readers) -> list:
    sheet, n, l = work.before, work.n, lm.index
    parts = [(c, part(work, c, l)) for c, _ in readers]
    total = sheet.grad(lm, "a")
    flat = lambda arr: arr[0].ravel()                                                      # noqa: E731
    size = flat(total).size
    shown = list(range(size)) if size <= 12 else [*range(9), size - 2, size - 1]
    header = (f"element of $a^{{({l})}}$ (example 1)",) + tuple(f"from layer {c.index}" for c, _ in parts) + ("sum",)
    rows = tuple((str(i + 1),) + tuple(f"${n.tex(flat(p)[i])}$" for _, p in parts) + (f"${n.tex(flat(total)[i])}$",)
                 for i in shown)
    return [Table(header, rows)]


def _first_loss(work):
    model = work.model
    if model.examples == 1:
        return model.loss_def
    return work.net.example_loss(model.output_array[0], model.Y[0])


def activation(work, lm) -> list:
    """∂a/∂z and δ = ∂C/∂z, element by element (or on the whole layer, for softmax)."""
    layer, sheet, l = lm.layer, work.before, lm.index
    if not layer.has_z:
        return []
    act, z = layer.activation, lm.stage("z")
    large = not _small(work, lm)
    limit = 1 if large else WRITE_ALL
    if act.name == "identity" and not work.net.is_stack:
        came = "from the loss" if l == work.L else "as passed back"
        return [Para(f"No activation: $\\delta^{{({l})}} = \\partial C/\\partial a^{{({l})}}$, {came}.")]
    out = []
    if act.elementwise:
        deriv = sympy.latex(act.simple_derivative)
        defined = "" if named_function(act) else f" = {sympy.latex(act.expr)}"
        text = (f"The activation's derivative: $a = {act.latex}(z){defined}$ gives "
                f"${act.latex}'(z) = {deriv}$")
        if act.output_form is not None and not act.output_form.is_Number:
            text += f", written in its output: ${act.latex}'(z) = {sympy.latex(act.output_form)}$"
        if act.note:
            text += f" ({code_names(act.note)})"
        steps = [sheet.steps[("da/dz", s)] for s in z.symbols[0, ...].ravel()]
        out += [Para(text + ":")] + sheet.steps_display(steps, limit=limit)
        if large:
            out += sheet.tables(f"\\partial a^{{({l})}}/\\partial z^{{({l})}}",
                                sheet.array(sheet.step_symbols(z, "da/dz")), None)
    if not act.elementwise:
        out.append(Para(f"Each output of {act.name} depends on every $z^{{({l})}}_i$ "
                        f"(${sheet.names[lm.stage('a').symbols[0].ravel()[0]]} = {sheet.model.latex(lm.stage('a').defs[0].ravel()[0])}$, "
                        f"...), so the error signal $\\delta^{{({l})}}_i$ sums over the outputs $j$; SymPy's derivative "
                        f"$\\partial a^{{({l})}}_j / \\partial z^{{({l})}}_i$ equals "
                        f"$a^{{({l})}}_j ([i = j] - a^{{({l})}}_i)$:"))
    elif l == work.L:
        out.append(Para("The error signal $\\delta = \\partial C / \\partial z$ of each output neuron:"))
    else:
        out.append(Para(_recursion(work, lm)))
    steps = [sheet.steps[("delta", s)] for s in z.symbols[0, ...].ravel()]
    out += sheet.steps_display(steps, limit=limit)
    if large:
        out += sheet.tables(f"\\delta^{{({l})}}", sheet.grad(lm, "z"), None)
    return out


def _recursion(work, lm) -> str:
    layer, l = lm.layer, lm.index
    act = layer.activation
    readers = work.consumers(l)
    if work.net.is_stack:
        return (f"The error signal, by the recursion $\\delta^{{({l})}}_k = \\Big(\\sum_j "
                f"W^{{({l + 1})}}_{{j,k}}\\, \\delta^{{({l + 1})}}_j\\Big)\\, {act.latex}'(z^{{({l})}}_k)$:")
    came = " and ".join(f"layer {c.index}" for c, _ in readers)
    return (f"The error signal $\\delta^{{({l})}} = \\frac{{\\partial C}}{{\\partial a^{{({l})}}}} \\odot "
            f"{act.latex}'(z^{{({l})}})$, element by element, with $\\partial C/\\partial a^{{({l})}}$ as {came} "
            "passed it back:")


def steps_table(work, lm) -> list:
    """For a batch, every quantity of a small layer for each example, and each gradient's mean."""
    if work.N == 1 or not _small(work, lm):
        return []
    sheet, n = work.before, work.n
    steps = [s for s in work.d.steps if s.layer == lm.index and (s.kind != "grad" or s.param in work.wanted)]
    shown = range(min(work.N, EXAMPLES_SHOWN))
    header = ("quantity",) + tuple(f"example {i + 1}" for i in shown) + ("mean (the gradient of $C$)",)
    rows = []
    for s in steps:
        each = sheet.values.env[s.symbol]
        mean = f"${n.tex(np.mean(each))}$" if s.kind == "grad" else ""
        rows.append((f"${s.label}$",) + tuple(f"${n.tex(each[i])}$" for i in shown) + (mean,))
    out = [Table(header, tuple(rows))]
    if work.N > len(shown):
        out.append(Para(f"(examples {len(shown) + 1} to {work.N} not shown; the means are over all {work.N})"))
    return out
