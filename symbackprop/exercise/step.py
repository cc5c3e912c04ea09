"""What an exercise asks and its answers: the quantities of one training step — named as ``check``'s
hand files name them — chosen by stage or by name, in the order a person computes them, and each
number's exact value.

The step is ``check``'s own graph (:class:`~symbackprop.check.graph.CheckGraph`: the forward pass,
the loss, the backward pass, one step of the optimizer from zero state and the forward pass after
it), so a worksheet asks exactly what ``check`` can judge, in the order ``check`` lists it.

>>> from symbackprop.spec.network import load
>>> step = Step(load("examples/seed.toml"), "sgd")
>>> step.select("forward,loss")
['z1', 'a1', 'z2', 'a2', 'loss']
>>> step.select("grad.W2,delta2")       # in computing order, whatever the order asked
['delta2', 'grad.W2']
"""
import difflib
import math

from ..check.evaluate import Evaluator
from ..check.graph import CheckGraph
from ..check.hand import model_of, quantities
from ..check.judge import wide_nodes
from ..entries.optimizers import OPTIMIZERS, Settings
from ..errors import SpecError, shown

STAGES = ("forward", "loss", "backward", "update", "new")
MAX_ASKED = 64       # names in one --ask
MILD = 3.0           # |z| a friendly draw keeps within, where it can


def stage_of(name: str) -> str:
    """The stage a hand file's quantity belongs to.

    >>> [stage_of(n) for n in ("z1", "loss", "da2/dz2", "grad.W2", "adam.m.W2", "new.a1")]
    ['forward', 'loss', 'backward', 'backward', 'update', 'new']
    """
    if name.startswith("new."):
        return "new"
    if name == "loss":
        return "loss"
    if name.split(".")[0] in OPTIMIZERS:
        return "update"
    if "/" in name or name.startswith(("grad.", "delta")):
        return "backward"
    return "forward"


class Step:
    """One training step of ``network`` (with its numbers) by ``optimizer``: its quantities in
    computing order (``names``), their shapes, and (:meth:`answers`) their exact values."""

    def __init__(self, network, optimizer: str):
        if optimizer not in OPTIMIZERS:
            raise SpecError("--optimizer", f"unknown optimizer {shown(optimizer)} (known: {', '.join(OPTIMIZERS)})")
        self.network, self.optimizer = network, optimizer
        self.table = {**network.optimizer, "name": optimizer}
        self.settings = Settings.of({k: v for k, v in self.table.items() if k != "name"})
        self.graph = CheckGraph(network, self.table, [optimizer], optimizer, model_of(network))
        self.shapes = quantities(network)
        first = {}
        for (name, _), symbol in self.graph.named.items():
            order = self.graph.nodes[symbol].order
            first[name] = min(first.get(name, order), order)
        self.names = [n for n in sorted(first, key=first.get) if self._part(n)]
        self._values = None

    def _part(self, name: str) -> bool:
        """Whether ``name`` is a number of this step: an optimizer's only for parameters it trains."""
        if stage_of(name) != "update":
            return True
        return self.settings.trains(name.rsplit(".", 1)[1])

    def select(self, ask: str | None) -> list[str]:
        """The quantities ``ask`` names (stages and quantity names, comma-separated; None: all), in
        computing order. SpecError (naming --ask) for a name this step lacks."""
        if ask is None:
            return list(self.names)
        words = [w.strip() for w in str(ask).split(",")]
        if len(words) > MAX_ASKED:
            raise SpecError("--ask", f"at most {MAX_ASKED} stages and names (the limit), got {len(words)}")
        wanted = set()
        for word in words:
            if word in STAGES:
                wanted |= {n for n in self.names if stage_of(n) == word}
            elif word in self.names:
                wanted.add(word)
            else:
                raise SpecError("--ask", self._lacks(word))
        return [n for n in self.names if n in wanted]

    def _lacks(self, word: str) -> str:
        if not word:
            return f"an empty name (expected stages {', '.join(STAGES)} or quantity names, comma-separated)"
        head = word.split(".")[0]
        if word in self.shapes and head in OPTIMIZERS and head != self.optimizer:
            return (f"{shown(word)} is a {head} step, the exercise's optimizer is {self.optimizer} "
                    f"(--optimizer {head} asks it)")
        if word in self.shapes and stage_of(word) == "update":
            return f"{shown(word)}: the step does not train {word.rsplit('.', 1)[1]} (the spec's [optimizer] train)"
        close = difflib.get_close_matches(word, self.names, n=1) if len(word) <= 100 else []
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return (f"this network has no quantity {shown(word)} (expected a stage — {', '.join(STAGES)} — or one of "
                f"{', '.join(self.names[:12])}{', ...' if len(self.names) > 12 else ''}){hint}")

    def answers(self) -> dict:
        """(quantity, index) -> its exact value (arbitrary precision, rounded once to float64)."""
        if self._values is None:
            truth = Evaluator(self.graph).true_values() or {}
            self._values = {key: truth.get(s, math.nan) for key, s in self.graph.named.items()}
        return self._values

    def elements(self, name: str) -> list[tuple]:
        """The 0-based indices of ``name``'s numbers, in order."""
        return sorted(index for (n, index) in self.graph.named if n == name)

    def mild(self, bound: float = MILD) -> bool:
        """Whether every pre-activation (``z``) is within ±``bound``: a sigmoid or tanh far from
        saturation, numbers of a size a person works with."""
        return all(abs(v) <= bound for (n, _), v in self.answers().items()
                   if stage_of(n) == "forward" and n.rstrip("0123456789") == "z")

    def clean(self) -> bool:
        """Whether every number of the step has one right value (no max-pool tie, no activation at
        its kink) and a finite one, and some gradient is not 0: an exercise worth setting."""
        exact, _ = Evaluator(self.graph).ranges({})
        if wide_nodes(exact):
            return False
        values = self.answers()
        if not all(math.isfinite(v) for v in values.values()):
            return False
        return any(v != 0 for (n, _), v in values.items() if n.startswith("grad."))
