"""The documents of an exercise, as blocks of :mod:`symbackprop.writers.document` (Markdown, LaTeX
and HTML writers render them): the worksheet — the network described (``explain``'s setting
section, without its drawings, which show values), the numbers given, the step's settings and the
quantities to find, stage by stage, each with its shape and a blank — and the answer key (the
same tables filled in, then ``explain``'s worked example of exactly these numbers).

A builder: it formats the numbers :class:`~symbackprop.exercise.make.Exercise` computed, and
computes none.
"""
from ..entries.optimizers import OPTIMIZERS
from ..writers.document import Display, Figure, Heading, Para, Table
from .step import stage_of

SECTIONS = {"forward": "Forward pass", "loss": "Loss", "backward": "Backward pass",
            "update": "Update", "new": "Forward pass with the updated parameters"}


def worksheet(ex) -> list:
    """The worksheet's blocks: nothing in them gives an asked number away."""
    out = [Heading(1, ex.title), Para(_instructions(ex))]
    out += _setting(ex)
    out += [Heading(2, "To find")]
    out += _tables(ex, None)
    return out


def key(ex) -> list:
    """The answer key's blocks: the answers to the digits of the filled hand file, then the worked
    example."""
    e = ex.explanation()
    out = [Heading(1, f"Answer key: {ex.title}"),
           Para(f"The answers, as the filled hand file `{ex.files['key_hand']}` writes them (each passes "
                f"`symbackprop check {ex.files['spec']} {ex.files['key_hand']}`), then the worked example of "
                "exactly these numbers.")]
    out += _tables(ex, ex.answer_text)
    out += [Heading(2, "Worked example"), Para(f"`symbackprop explain {ex.files['spec']}` works it:")]
    return out + e.blocks()[1:]


def _instructions(ex) -> str:
    return (f"Work one training step of the network below by hand (seed {ex.seed}). Give every number to "
            f"{ex.digits} significant digits or more, and compute each from your own earlier numbers. Indices "
            f"start at 1. Write your numbers into `{ex.files['hand']}` (every quantity asked is there, blank) "
            f"and check them with `symbackprop check {ex.files['spec']} {ex.files['hand']}`: each number is "
            "judged ok, wrong (with the mistake that gives it, where one does) or carried (it follows from "
            "your own earlier wrong numbers).")


def _setting(ex) -> list:
    from ..explain.worked import Work, setting
    work = Work(ex.explanation())
    out = [b for b in setting.build(work) if not isinstance(b, Figure)]
    if ex.network.masks:               # the masks' values: a person cannot work dropout without them
        lines = tuple(f"\\text{{{name}}} &= {work.n.matrix(m.reshape(m.shape[0], -1))}"
                      for name, m in ex.network.masks.items())
        out.append(Para("The keep-masks (1 keeps an element, 0 drops it; a row per example, the elements in "
                        "PyTorch's order):"))
        out.append(Display(lines))
    out.append(Figure(_drawing(ex.network), "The layers, from the input down: each box is a layer with the "
                                            "shape of its output."))
    return out + [Para(_step_text(ex))]


def _step_text(ex) -> str:
    name, settings = ex.optimizer, ex.step.settings
    hyper = ", ".join(f"{k} = {v:g}" for k, v in settings.values(OPTIMIZERS[name]).items() if v or k != "weight_decay")
    shapes = ex.network.parameter_shapes()
    trained = [p for p in shapes if settings.trains(p)]
    which = "every parameter" if len(trained) == len(shapes) else ", ".join(f"`{p}`" for p in trained) + " only"
    extra = ""
    if OPTIMIZERS[name].bias_corrected:
        extra = " with bias correction" if settings.bias_correction else " without bias correction"
    return (f"The update: one step of `{name}` ({hyper}){extra} from zero state (t = 1), every gradient taken "
            f"before the step; it changes {which}. The loss is `{ex.network.loss.name}`"
            + (", the mean over the batch." if ex.network.x.shape[0] > 1 else "."))


def _drawing(network) -> str:
    from ..writers.layergraph import layer_graph_svg
    boxes = [("input x", "shape " + _shape(network.input))]
    skips = []
    for layer in network.graph:
        boxes.append((f"{layer.index}. {layer.describe()}", "output " + _shape(layer.shape)))
        skips += [(s, layer.index) for s in layer.sources if s != layer.index - 1]
    return layer_graph_svg(boxes, skips)


def _tables(ex, answer) -> list:
    """One table per stage asked: number, quantity, what it is, shape, and the answer (blank for
    the worksheet)."""
    out, number = [], 0
    for stage in SECTIONS:
        names = [n for n in ex.asked if stage_of(n) == stage]
        if not names:
            continue
        rows = []
        for name in names:
            number += 1
            rows.append((str(number), f"`{name}`", describe(name), _shape(ex.step.shapes[name]),
                         answer(name) if answer else ""))
        out += [Heading(3, SECTIONS[stage]), Table(("#", "quantity", "what", "shape", "answer"), tuple(rows))]
    return out


def describe(name: str) -> str:
    """A quantity's name in words.

    >>> describe("da2/dz2"), describe("adam.m.W2"), describe("new.a1")
    ('∂a/∂z of layer 2, element by element', "adam's m for W2 after the step", 'a1 after the step')
    """
    if name.startswith("new."):
        return f"{name[4:]} after the step"
    if name == "loss":
        return "the loss C"
    parts = name.split(".")
    if parts[0] in OPTIMIZERS:
        return f"{parts[1]} after the step" if len(parts) == 2 else f"{parts[0]}'s {parts[1]} for {parts[2]} after the step"
    if name.startswith("grad."):
        return f"∂C/∂{parts[1]}, the gradient of {parts[1]}"
    if name.startswith("delta"):
        return f"δ of layer {name[5:]}, ∂C/∂z{name[5:]}"
    if name.startswith("da") and "/dz" in name:
        return f"∂a/∂z of layer {name.split('/')[0][2:]}, element by element"
    if name.startswith("dC/d"):
        return f"∂C/∂{name[4:]}"
    stem = name.rstrip("0123456789")
    words = {"z": "pre-activation", "a": "output", "mean": "batch mean", "var": "batch variance",
             "xhat": "normalised input"}
    return f"{words.get(stem, stem)} of layer {name[len(stem):]}"


def _shape(shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")" if shape else "scalar"
