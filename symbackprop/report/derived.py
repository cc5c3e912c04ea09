"""The derivation with its numbers as the Python API returns it (:func:`symbackprop.backprop`):
renders itself in every format of :mod:`.chain`, and in Jupyter."""
from ..derive.derivation import Derivation
from ..writers.sigfig import significant
from .chain import RENDERERS, render_latex_body


class Derived:
    """A derivation with its numbers, as the Python API returns it; renders itself in Jupyter.

    >>> from symbackprop import backprop
    >>> result = backprop("examples/seed.toml")            # doctest: +SKIP
    >>> result.gradients["W2"]                             # doctest: +SKIP
    array([[-0.05753635, -0.11434446]])
    """

    def __init__(self, derivation: Derivation, values: "object | None", digits: int = 5):
        self.derivation, self.values, self.digits = derivation, values, digits

    @property
    def gradients(self):
        return None if self.values is None else self.values.gradients

    def render(self, fmt: str = "text", wrt=None) -> str:
        return RENDERERS[fmt](self.derivation, self.values, self.digits, wrt)

    def text(self) -> str:
        return self.render("text")

    def latex(self) -> str:
        return self.render("latex")

    def markdown(self) -> str:
        return self.render("markdown")

    def _repr_markdown_(self):
        return self.render("markdown")

    def _repr_latex_(self):
        rows = [row for _, block in render_latex_body(self.derivation, self.values, self.digits) for row in block]
        return "$$\\begin{aligned}" + " \\\\ ".join(rows) + "\\end{aligned}$$"

    def __str__(self):
        return self.render("text")

    def __repr__(self):
        return f"<Derived {describe(self.derivation.model.network)}" + (
            "" if self.values is None else f", C = {significant(self.values.loss, self.digits)}") + ">"


def describe(network) -> str:
    """A network in a few words: ``3-2-1 sigmoid/sigmoid squared_error, 11 parameters``."""
    from ..entries.registry import activation_name
    from ..entries.registry import ACTIVATIONS
    acts = "/".join(a.name if ACTIVATIONS.get(a.name) is a else f"({activation_name(a)})"
                    for a in network.activations)
    return (f"{'-'.join(map(str, network.layers))} {acts} {network.loss.name}, "
            f"{network.parameter_count} parameters")
