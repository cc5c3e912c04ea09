"""The setting of a worked example: the network, its parameters, the example or batch, and for a
stack of dense layers a drawing of the network."""
import numpy as np

from ...writers.document import Display, Figure, Para, Table, user_text
from ...entries.layers.base import param_tex
from ..worksheet import EXAMPLES_SHOWN, LEAD_MAX, MATRIX_MAX, tex_index


def build(work) -> list:
    net, e = work.net, work.e
    source = "" if net.source.startswith("<") else f" ({user_text(net.source)})"   # set as text, never as markup
    digits = (f"Indices start at 1. Numbers are shown to {e.digits} significant digits but every one is "
              "computed from unrounded values.")
    if net.is_stack:
        out = [Para(f"The network{source}: {_stack_parts(work)}; the loss is `{net.loss.name}`. Layer $l$ computes "
                    f"$z^{{(l)}} = W^{{(l)}} a^{{(l-1)}} + b^{{(l)}}$ and $a^{{(l)}} = f(z^{{(l)}})$ element by element, "
                    f"with $a^{{(0)}} = x$; $W^{{(l)}}_{{j,k}}$ is the weight from neuron $k$ of layer $l-1$ to neuron $j$ "
                    f"of layer $l$. {digits}")]
    else:
        out = [Para(f"The network{source}: an input of shape {_shape(net.input)}, then the layers below; the loss is "
                    f"`{net.loss.name}`. Layer $l$ computes its output $a^{{(l)}}$ from its input ($a^{{(0)}} = x$), "
                    "through a pre-activation $z^{(l)}$ where it has parameters or an activation. Arrays are laid "
                    f"out as PyTorch's: (channels, length) or (channels, height, width). {digits} Tables show at most "
                    f"{MATRIX_MAX} rows and columns, {LEAD_MAX} channels and {EXAMPLES_SHOWN} examples; past that, "
                    "the middle ones are elided (⋯)."),
               _layer_table(work)]
    out += [Para("The parameters:"), Display(tuple(_parameter_lines(work)))]
    out += _sample(work)
    if net.masks:
        out.append(Para(f"The dropout masks: {net.mask_source}."))
    if not net.is_stack:
        out.append(Figure(graph_drawing(work), "The layers, from the input down: each box is a layer with the "
                          "shape of its output; a red curve is a residual connection (an add layer reading an "
                          "earlier layer too). Beside each layer whose output is an image or a sequence, example "
                          "1's values before the step, a small heat map per channel (blue below 0, red above, "
                          "each map scaled to its largest magnitude; the pointer on a map shows its range)."))
    if net.is_stack:
        out.append(Figure(drawing(work), "The network before the step: each neuron's value"
                          + (" for example 1" if work.N > 1 else "") + " and bias b, each edge's weight w "
                          "and the gradient g = ∂C/∂w (drawn on the edge, or, where a layer is large, shown "
                          "when the pointer rests on it; a neuron shows its z, δ and ∂C/∂b the same way). An edge's "
                          "colour is the neuron it leads into (see the legend), not a sign."))
    return out


def _shape(shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ")"


def _stack_parts(work) -> str:
    net, sizes = work.net, work.net.layers
    parts = [f"{sizes[0]} inputs"]
    for l in range(1, len(sizes)):
        kind = "an output layer" if l == work.L else "a hidden layer"
        act = net.activations[l - 1]
        parts.append(f"{kind} of {sizes[l]} neuron{'s' if sizes[l] > 1 else ''} (`{act.name}`, ${act.latex}$)")
    return ", ".join(parts)


def _layer_table(work) -> Table:
    rows = []
    for lm in work.model.layers:
        layer = lm.layer
        reads = ", ".join("x" if s == 0 else f"layer {s}" for s in layer.sources)
        params = ", ".join(f"${param_tex(p)}$ {_shape(s)}" for p, s in layer.params.items()) or "none"
        rows.append((str(layer.index), f"`{layer.describe()}`", reads, _shape(layer.shape), params))
    return Table(("layer", "type", "reads", "output shape", "parameters"), tuple(rows))


def _parameter_lines(work) -> list[str]:
    """Each parameter as a matrix (a vector as a column); an array of more axes as a matrix per
    leading index (a convolution's kernel per output and input channel)."""
    n, lines = work.n, []
    for name, value in work.net.parameters.items():
        tex = param_tex(name)
        if value.ndim <= 2:
            lines.append(f"{tex} &= {n.matrix(value) if value.ndim == 2 else n.column(value)}")
            continue
        leads = list(np.ndindex(*value.shape[:-2]))
        shown = leads if len(leads) <= LEAD_MAX else leads[:3] + [None] + leads[-1:]
        for lead in shown:
            if lead is None:
                lines.append(rf"&\ \vdots \quad \text{{({len(leads) - 4} more kernels)}}")
                continue
            lines.append(f"{tex}_{{{tex_index(lead)},\\cdot,\\cdot}} &= {n.matrix(value[lead])}")
    return lines


def _sample(work) -> list:
    net, n, sheet = work.net, work.n, work.before
    if net.is_stack and work.N == 1:
        return [Para("The example:"), Display((f"x = {n.column(net.x[0])}, \\qquad y = {n.column(net.y[0])}",))]
    out = []
    if work.N > 1:
        out.append(Para(f"The batch has $N = {work.N}$ examples. The loss $C$ is the mean of the per-example losses, "
                        "$C = \\frac{1}{N}\\sum_{i=1}^{N} C_i$, so every gradient of $C$ is the mean of the "
                        "per-example gradients. The arithmetic is written out for example 1; the tables give every "
                        "example."))
    if net.is_stack:
        model = work.model
        header = ("example",) + tuple(f"${model.latex_names[s]}$" for s in model.x + model.y)
        rows = tuple((str(i + 1),) + tuple(f"${n.tex(v)}$" for v in [*net.x[i], *net.y[i]]) for i in range(work.N))
        return out + [Table(header, rows)]
    out.append(Para("The input" + (" of each example" if work.N > 1 else "") + ":"))
    out += sheet.tables("x", net.x, what="channel")
    out.append(Para("The target" + ("s" if work.N > 1 else "") + ":"))
    out += sheet.tables("y", net.y)
    return out


def drawing(work) -> str:
    """The drawing of a dense stack: each neuron's value and bias, each edge's weight and gradient."""
    from ...writers.html import network_svg
    v, t, model, net = work.e.values, work.n.text, work.model, work.net
    labels = {(0, k): f"x{k + 1} = {t(v.env[s][0])}" for k, s in enumerate(model.x)}
    edges, biases, tips = {}, {}, {}
    deltas = {(s.layer, s.index[0]): s.symbol for s in work.d.steps if s.kind == "delta"}
    for layer in model.layers:
        l = layer.index
        for j, s in enumerate(layer.a):
            labels[(l, j)] = f"a = {t(v.env[s][0])}"
            if l == work.L:
                labels[(l, j)] += f", y = {t(v.env[model.y[j]][0])}"
            biases[(l, j)] = f"b = {t(net.parameters[f'b{l}'][j])}"
            tips[(l, j)] = (f"z{l}[{j + 1}] = {t(v.env[layer.z[j]][0])}, "
                            f"δ = {t(v.env[deltas[(l, j)]][0])}, ∂C/∂b = {t(v.gradients[f'b{l}'][j])}")
            for k in range(len(layer.inputs)):
                edges[(l, j, k)] = f"w = {t(net.parameters[f'W{l}'][j, k])}, g = {t(v.gradients[f'W{l}'][j, k])}"
    minus = lambda d: {k: s.replace("-", "−") for k, s in d.items()}                  # noqa: E731
    titles = ["input"] + [f"{'output' if l == work.L else f'hidden {l}'} ({a.name})"
                          for l, a in enumerate(net.activations, 1)]
    return network_svg(list(net.layers), minus(labels), minus(edges), titles, minus(biases), minus(tips))


def graph_drawing(work) -> str:
    """The drawing of a graph of layers: a box per layer, the residual edges, and example 1's
    feature maps beside the layers whose outputs are images or sequences."""
    from ...writers.layergraph import layer_graph_svg
    net = work.net
    boxes = [("input x", "shape " + _shape(net.input))]
    skips, maps = [], {}
    if len(net.input) > 1:
        maps[0] = _channels(net.x[0])
    for lm in work.model.layers:
        layer = lm.layer
        boxes.append((f"{layer.index}. {layer.describe()}", "output " + _shape(layer.shape)))
        skips += [(s, layer.index) for s in layer.sources if s != layer.index - 1]
        if len(layer.shape) > 1:
            maps[layer.index] = _channels(work.before.stage(lm, "a")[0])
    return layer_graph_svg(boxes, skips, maps)


def _channels(value) -> list:
    """One 2-D array per channel: (C, H, W) as C images, (C, L) as C rows."""
    value = np.asarray(value, dtype=np.float64)
    return [channel.reshape(1, -1) if channel.ndim == 1 else channel for channel in value]
