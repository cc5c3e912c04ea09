"""One exercise from one seed: the spec's numbers completed (:mod:`symbackprop.exercise.numbers`),
the step and what it asks (:mod:`symbackprop.exercise.step`), and the texts that must agree — the
spec with its numbers, the worksheet, the hand-file skeleton, the answer key and the filled hand
file, the Moodle quiz.

>>> from symbackprop.spec.document import read_spec
>>> data, source = read_spec("examples/seed.toml")
>>> ex = build(data, source, seed=0, ask="loss")
>>> ex.asked, ex.answer_text("loss")
(['loss'], '0.169004')
"""
from dataclasses import dataclass, field

from ..errors import SpecError, shown
from ..check.hand import usable
from ..spec.network import Network
from ..writers.sigfig import significant
from . import tomlout
from .numbers import MODES, complete, draws
from .step import Step

DIGITS = 3             # significant digits asked by default
KEY_DIGITS = 6         # the key's digits (at least two more than asked)
SEED_MAX = 2**32 - 1
TRIES = 60             # friendly draws tried for a step without ties or kinks (then the last is kept)
SMALL = 200            # parameters up to which all of them are tried; a bigger network gets 3


@dataclass
class Exercise:
    network: Network
    data: dict                # the spec's data with every number (the spec file written)
    seed: int
    step: Step
    asked: list[str]
    digits: int = DIGITS
    source: str = "spec"
    # role -> the file name the documents cite (the command sets them from -o)
    files: dict = field(default_factory=lambda: {"spec": "SPEC", "hand": "HAND", "key_hand": "KEY"})
    _explanation: object = None

    @property
    def optimizer(self) -> str:
        return self.step.optimizer

    @property
    def title(self) -> str:
        net = self.network
        what = f"a {'-'.join(map(str, net.layers))} network" if net.is_stack else \
            "a network of " + ", ".join(dict.fromkeys(layer.kind.name for layer in net.graph)) + " layers"
        return f"Exercise: backpropagation by hand, {what}, one {self.optimizer} step (seed {self.seed})"

    def explanation(self):
        """``explain``'s worked example of exactly these numbers (made once)."""
        if self._explanation is None:
            from ..explain.example import explain
            self._explanation = explain(self.network, self.optimizer, digits=max(5, self.digits + 2))
        return self._explanation

    def numbers(self, name: str) -> list[tuple[tuple, float]]:
        """(index, exact value) for each number of ``name``, in order."""
        answers = self.step.answers()
        return [(index, answers[(name, index)]) for index in self.step.elements(name)]

    def written(self, value: float) -> str:
        """A key's number: :data:`KEY_DIGITS` significant digits (two more than asked at least),
        which ``check`` reads as an interval holding the exact value."""
        return significant(value, max(KEY_DIGITS, self.digits + 2))

    def answer_text(self, name: str) -> str:
        """``name``'s answer as the filled hand file writes it."""
        return tomlout.hand_value(self._nested(name, lambda v: tomlout.Raw(self.written(v))))

    def _nested(self, name, element):
        values = dict(self.numbers(name))
        return tomlout.nested(self.step.shapes[name], lambda index: element(values[index]))

    # the files ------------------------------------------------------------------------------
    def spec_text(self) -> str:
        return tomlout.dumps(self.data, f"The spec of an exercise: {self.source} with its numbers, seed {self.seed}\n"
                                        "(symbackprop exercise; the worksheet, skeleton and key agree with it).")

    def skeleton(self) -> str:
        """The hand file to fill in: every asked quantity, each number blank ("")."""
        header = (f"Your numbers for {self.title}.\nFill in each \"\" (a number, or a string such as \"0.50\" to keep "
                  f"its zero), then\n  symbackprop check {self.files['spec']} THIS-FILE\nIndices count "
                  "from 1; a number left blank is reported missing.")
        return tomlout.hand_text({n: self._nested(n, lambda v: "") for n in self.asked}, header)

    def key_hand(self) -> str:
        """The filled hand file: every asked number to :meth:`written`'s digits."""
        header = (f"The answer key of {self.title}:\n  symbackprop check {self.files['spec']} THIS-FILE\n"
                  "reports every number ok.")
        return tomlout.hand_text({n: self._nested(n, lambda v: tomlout.Raw(self.written(v))) for n in self.asked},
                                 header)

    def document(self, which: str, fmt: str) -> str:
        """The worksheet or the key (``which``) as markdown, latex or html."""
        from ..writers.document import to_html, to_latex, to_markdown
        from . import sheet
        blocks = sheet.worksheet(self) if which == "worksheet" else sheet.key(self)
        title = self.title if which == "worksheet" else f"Answer key: {self.title}"
        if fmt == "latex":
            return to_latex(blocks, title)
        if fmt == "html":
            from ..writers.html import standalone_page
            return standalone_page(title, to_html(blocks))
        return to_markdown(blocks)


def build(data: dict, source: str, seed: int = 0, mode: str = "friendly", optimizer: str | None = None,
          ask: str | None = None, digits: int = DIGITS, redraw: bool = False) -> Exercise:
    """The exercise of spec ``data`` (read from ``source``) for ``seed``; with ``redraw``, the
    spec's own parameters and sample are dropped and drawn too. SpecError on bad input."""
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= SEED_MAX:
        raise SpecError("--seed", f"expected an integer from 0 to {SEED_MAX}, got {seed!r}")
    if mode not in MODES:
        raise SpecError("--numbers", f"expected one of {', '.join(MODES)}, got {mode!r}")
    if not isinstance(digits, int) or not 1 <= digits <= 10:
        raise SpecError("--digits", f"expected an integer from 1 to 10, got {digits!r}")
    table = data.get("optimizer", {})
    if not isinstance(table, dict):
        raise SpecError("optimizer", "expected a table")
    from ..entries.optimizers import OPTIMIZERS
    if optimizer is not None and optimizer not in OPTIMIZERS:
        raise SpecError("--optimizer", f"unknown optimizer {shown(optimizer)} (known: {', '.join(OPTIMIZERS)})")
    name = optimizer or table.get("name", "sgd")
    data = {k: v for k, v in data.items() if not redraw or k not in ("parameters", "sample", "masks")}
    data["optimizer"] = {**table, "name": name}
    _check_size(data)
    step = network = drawn = None
    tries = TRIES if _bare(data).parameter_count <= SMALL else 3      # a big step takes a while to build
    for attempt, drawn in enumerate(draws(data, seed, mode), 1):
        network = Network.from_dict(drawn, source=source)
        usable(network)
        step = Step(network, name)
        # the first half of the tries also asks for pre-activations of a friendly size
        if attempt >= tries or step.clean() and (step.mild() or 2 * attempt > tries):
            break
    asked = step.select(ask)
    return Exercise(network, drawn, seed, step, asked, digits, source)


def fixed(data: dict) -> bool:
    """Whether the spec's data gives every number (an exercise of it is the same for every seed)."""
    return complete(data, _bare(data).parameter_shapes())


def _bare(data: dict) -> Network:
    return Network.from_dict({k: v for k, v in data.items() if k not in ("parameters", "sample", "masks")},
                             source="spec")


def _check_size(data: dict) -> None:
    """SpecError before any drawing for a network too big to work by hand (check's limit)."""
    from ..explain.example import MAX_PARAMETERS
    bare = _bare(data)
    if bare.parameter_count > MAX_PARAMETERS:
        raise SpecError(bare.size_field, f"an exercise is worked by hand: at most {MAX_PARAMETERS} parameters "
                                         f"(explain's limit), this network has {bare.parameter_count}")
