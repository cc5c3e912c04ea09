"""The builders of a worked example: one module per part of the document (the setting, the
forward pass and loss, the backward pass, the update and what follows it), each turning an
:class:`~symbackprop.explain.example.Explanation`'s numbers into blocks of :mod:`symbackprop.writers.document`.

They walk the network's layers and leave each kind's own part to its entry (``explain_forward``,
``explain_backward``, ``explain_input_gradient`` in :mod:`symbackprop.entries.layers`): nothing here asks
which kind a layer is.
"""
from ...writers.document import Heading
from ..worksheet import Sheet


class Work:
    """What every builder reads: the explanation, a :class:`~symbackprop.explain.worksheet.Sheet` for the
    pass before the step and one for the pass after it, and which layers and parameters the
    backward and update sections show (``--wrt``)."""

    def __init__(self, e):
        self.e, self.net, self.d = e, e.network, e.derivation
        self.model = self.d.model
        self.before = Sheet(self.net, self.d, e.values, self.net.parameters, e.digits)
        self.after = Sheet(self.net, self.d, e.after, e.update.params, e.digits)
        self.n = self.before.n
        self.N = self.net.x.shape[0]
        self.L = len(self.model.layers)
        self.wanted = set(e.wrt) if e.wrt else set(self.net.parameter_shapes())
        self.needed = _needed(self.model, self.wanted)
        self.sections = 0

    def section(self, title: str) -> Heading:
        self.sections += 1
        return Heading(2, f"{self.sections}. {title}")

    def consumers(self, index: int) -> list:
        """The layers reading layer ``index``'s output, with the position of that input."""
        return [(lm, k) for lm in self.model.layers for k, src in enumerate(lm.layer.sources) if src == index]


def _needed(model, wanted) -> set:
    """The layers the backward pass must go through for the gradients of ``wanted``: every layer
    at or after the first that holds one of them and reads (through others) from it."""
    holders = {lm.index for lm in model.layers if wanted & set(lm.params)}
    reach = set(holders)
    for lm in model.layers:
        if any(s in reach for s in lm.layer.sources):
            reach.add(lm.index)
    return reach


def build(e) -> list:
    """The worked example's blocks."""
    from . import backward, forward, setting, update
    work = Work(e)
    out = [Heading(1, e.title)]
    out += setting.build(work)
    out += [work.section("Forward pass")] + forward.build(work, work.before)
    out += [work.section("Loss")] + forward.loss(work, work.before, "C")
    out += [work.section("Backward pass")] + backward.build(work)
    out += [work.section(f"Update: {e.update.optimizer.name}")] + update.build(work)
    out += [work.section("Forward pass with the updated parameters")] + forward.build(work, work.after, new=True)
    out += [Heading(3, "The new loss")] + forward.loss(work, work.after, r"C_{\text{new}}") + update.fall(work)
    if e.comparison is not None:
        out += [work.section("For comparison: plain gradient descent")] + update.compare(work)
    if len(e.history) > 1 or any(c is not None for c in e.conditions):
        out += [work.section(f"Training: {len(e.history)} step{'s' if len(e.history) > 1 else ''}")]
        out += update.training(work)
    return out
