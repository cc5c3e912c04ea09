"""Worked examples, as a good textbook writes them: ``symbackprop explain``.

For a spec with parameters and a sample, :func:`explain` computes one training step in full
float64 — the forward pass, the loss, every factor of the backward pass, the optimizer's update and
the forward pass after it — and, with ``steps > 1``, a short training run that stops by the seed
notes' three conditions. :class:`Explanation` renders it as Markdown (``$…$`` math), a LaTeX
document or a standalone HTML page with a drawing of the network, and renders itself in Jupyter.

Numbers are rounded only when printed (``digits`` significant digits): every number shown is
computed from unrounded float64 values, never from the rounded ones printed before it.

>>> from symbackprop.spec.network import load
>>> e = explain(load("examples/seed.toml"), optimizer="adam")
>>> round(float(e.values.gradients["W2"][0, 0]), 5)
-0.05754
>>> print(e.markdown())          # doctest: +SKIP
"""
import math
from dataclasses import dataclass

import numpy as np
import sympy

from ..derive.derivation import Derivation
from ..writers.document import Display, Figure, Heading, Para, Table, _aligned, _display_tex, to_html, to_latex, to_markdown
from ..errors import SpecError
from ..spec.inputs import as_network
from ..derive.model import Model
from ..numeric.values import Values, evaluate, evaluator
from ..entries.optimizers import OPTIMIZERS, Optimizer, Settings, step as opt_step
from .worksheet import Num as _Num

__all__ = ["Display", "Explanation", "Figure", "Heading", "Iteration", "Para", "Table", "Trace", "Update", "explain",
           "to_html", "to_latex", "to_markdown", "_Num", "_aligned"]

FORMATS = ("markdown", "latex", "html")
MAX_PARAMETERS = 2000   # a worked example of more is a book nobody reads (about 20 s, 3 MB of text)


# ---------------------------------------------------------------------------------------------
# The computation: plain data, no strings


@dataclass(frozen=True)
class Trace:
    """One parameter array's update: the optimizer's rules evaluated in order on it."""
    name: str                                   # "W2"
    frozen: bool                                # not trained (train, train_biases = false)
    theta: np.ndarray                           # before the step
    grad: np.ndarray                            # the g the rules read: clipped with clip_norm
    state_before: dict[str, np.ndarray]         # "m", "v", ...
    assigned: tuple[tuple[sympy.Symbol, sympy.Expr, np.ndarray], ...]  # target, rule, value
    theta_after: np.ndarray
    state_after: dict[str, np.ndarray]


@dataclass(frozen=True)
class Update:
    optimizer: Optimizer
    settings: Settings
    t: int                                      # the step number, 1 for the first
    traces: tuple[Trace, ...]
    params: dict[str, np.ndarray]               # after the step
    state: dict[str, dict[str, np.ndarray]]     # after the step
    clip: tuple[float, float] | None = None     # with clip_norm: the gradients' global norm and the factor


@dataclass(frozen=True)
class Iteration:
    t: int
    loss_before: float
    loss_after: float


@dataclass
class Explanation:
    """A worked example; ``markdown()``, ``latex()``, ``html()`` render it."""
    network: object
    derivation: Derivation
    values: Values              # before the step
    update: Update
    after: Values               # the forward pass (and backward) with the updated parameters
    history: list[Iteration]    # one entry per training step taken (at least one)
    stop: str                   # why the run ended, in words
    final: dict[str, np.ndarray]
    digits: int = 5
    conditions: tuple = ()      # (max_iters, loss_below, min_delta) as given
    limit: int = 1              # the most steps the run could take
    comparison: tuple | None = None   # (the sgd Update, its new loss) when the optimizer is not sgd
    wrt: tuple = ()             # the parameters the backward pass and the update show (all when empty)

    def blocks(self) -> list:
        """The document as Heading/Para/Display/Table/Figure blocks (built once per ``digits``)."""
        from .worked import build
        cache = self.__dict__.setdefault("_blocks", {})
        if self.digits not in cache:
            cache[self.digits] = build(self)
        return cache[self.digits]

    def markdown(self) -> str:
        return to_markdown(self.blocks())

    def latex(self, fragment: bool = False) -> str:
        return to_latex(self.blocks(), self.title, fragment)

    def html(self) -> str:
        from ..writers.html import standalone_page
        return standalone_page(self.title, to_html(self.blocks()))

    def text(self) -> str:
        """Plain text for a terminal (``explain --format text``): math as text, tables aligned."""
        from ..writers.text import to_text
        return to_text(self.blocks())

    def render(self, fmt: str) -> str:
        return {"markdown": self.markdown, "latex": self.latex, "html": self.html, "text": self.text}[fmt]()

    def steps_csv(self) -> str:
        """Every step of the run, one CSV row each (``explain --steps-csv``): the step t, the loss
        before and after it, the change and the relative change in percent, numbers in full (repr).

        >>> explain("examples/seed.toml", steps=2).steps_csv().splitlines()[0]
        'step,loss_before,loss_after,change,relative_change_percent'
        """
        rows = ["step,loss_before,loss_after,change,relative_change_percent"]
        for it in self.history:
            change = it.loss_after - it.loss_before
            relative = change / it.loss_before * 100 if it.loss_before else 0.0
            rows.append(f"{it.t},{it.loss_before!r},{it.loss_after!r},{change!r},{relative!r}")
        return "\n".join(rows) + "\n"

    def __repr__(self) -> str:
        from ..report.derived import describe
        n = _Num(self.digits)
        return (f"<Explanation {describe(self.network)}, {len(self.history)} {self.update.optimizer.name} "
                f"step{'s' if len(self.history) > 1 else ''}: C = {n.text(self.history[0].loss_before)} "
                f"-> {n.text(self.history[-1].loss_after)}>")

    @property
    def title(self) -> str:
        net = self.network
        what = f"a {'-'.join(map(str, net.layers))} network" if net.is_stack else \
            "a network of " + ", ".join(dict.fromkeys(layer.kind.name for layer in net.graph)) + " layers"
        runs = f", and a run of {len(self.history)} steps" if len(self.history) > 1 else ""
        return f"Backpropagation worked by hand: {what}, one {self.update.optimizer.name} step{runs}"

    # Jupyter: HTML (a fragment whose $...$ the notebook typesets), Markdown, LaTeX (display math)
    def _repr_markdown_(self) -> str:
        return self.markdown()

    def _repr_html_(self) -> str:
        return to_html(self.blocks())

    def _repr_latex_(self) -> str:
        return "\n".join(f"$${_display_tex(b.lines)}$$" for b in self.blocks() if isinstance(b, Display))


def check_size(network) -> None:
    """SpecError, naming where the spec sets the network's size (``network.layers``, or ``layer`` for
    a ``[[layer]]`` list), when it has too many parameters for a worked example."""
    if network.parameter_count > MAX_PARAMETERS:
        raise SpecError(network.size_field, f"{network.parameter_count} parameters is too many for a worked "
                                            f"example (at most {MAX_PARAMETERS}); try symbackprop derive")


def explain(network, optimizer: str | None = None, steps: int | None = None, digits: int = 5,
            max_iters: int | None = None, loss_below: float | None = None,
            min_delta: float | None = None, wrt=None, clip_norm: float | None = None) -> Explanation:
    """Work one training step of ``network`` (with its [parameters] and [sample]) in full, then
    train up to ``steps`` steps (default 1, or ``max_iters``), stopping early when the loss falls
    below ``loss_below`` or changes by less than ``min_delta``. Conditions not given here come from
    the spec's ``[optimizer]`` table (``max_iters`` there only caps ``steps``). ``wrt`` (parameter
    names) limits the backward pass and the update to those parameters and what they need.
    ``clip_norm`` (C > 0) clips the gradients by their global norm before every update, over the
    spec's ``[optimizer] clip_norm``.
    ``network`` is a Network, a spec's data as a dict, or a spec path. SpecError on bad input."""
    network = as_network(network)
    if network.parameters is None:
        raise SpecError("parameters", "missing: explain needs the spec's [parameters] table")
    if network.x is None:
        raise SpecError("sample", "missing: explain needs the spec's [sample] table (x and y)")
    check_size(network)
    name = optimizer or network.optimizer.get("name", "sgd")
    if name not in OPTIMIZERS:
        field = "--optimizer" if optimizer else "optimizer.name"
        raise SpecError(field, f"unknown optimizer {name!r} (known: {', '.join(OPTIMIZERS)})")
    if not isinstance(digits, int) or not 1 <= digits <= 17:
        raise SpecError("--digits", f"expected an integer from 1 to 17, got {digits!r}")
    for field, value in (("--steps", steps), ("--max-iters", max_iters)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise SpecError(field, f"expected a positive integer, got {value!r}")
    shapes = network.parameter_shapes()
    for param in wrt or ():
        if param not in shapes:
            raise SpecError("--wrt", f"unknown parameter {param!r} (expected {', '.join(shapes)})")
    for field, value in (("--loss-below", loss_below), ("--min-delta", min_delta)):
        if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise SpecError(field, f"expected a non-negative number, got {value!r}")
    # --steps asks for a run; a maximum caps it (--max-iters alone asks for that many steps, the
    # spec's max_iters only caps); thresholds given on the command line override the spec's
    table = network.optimizer
    limit = steps or max_iters or 1
    cap = max_iters or table.get("max_iters")
    limit = min(limit, cap) if cap else limit
    max_iters = cap
    loss_below = loss_below if loss_below is not None else table.get("loss_below")
    min_delta = min_delta if min_delta is not None else table.get("min_delta")

    table = dict(network.optimizer)
    if clip_norm is not None:
        table["clip_norm"] = clip_norm
    opt, settings = OPTIMIZERS[name], Settings.of(table)
    derivation = Derivation(Model(network))
    with np.errstate(all="ignore"):  # a non-finite number is reported below, not warned about
        values = evaluate(derivation)
        if not (math.isfinite(float(values.loss)) and all(np.isfinite(g).all() for g in values.gradients.values())):
            raise SpecError("parameters", f"the loss or a gradient is not finite at these parameters "
                                          f"(C = {float(values.loss):g}): there is nothing to work by hand")
        params = {k: np.array(val, dtype=np.float64) for k, val in network.parameters.items()}
        state = opt.init_state(params)
        update = _update(opt, settings, params, values.gradients, state, t=1)
        after = evaluate(derivation, parameters=update.params)
        if not math.isfinite(float(after.loss)):
            raise SpecError("optimizer.learning_rate", f"the loss after one {name} step is not finite "
                                                       f"(C = {float(after.loss):g}): the step diverged")
        run = evaluator(derivation)  # evaluate's loss and gradients, each expression lambdified once
        comparison = None
        if name != "sgd":  # plain gradient descent on the same gradients, as textbooks compare
            sgd = OPTIMIZERS["sgd"]
            plain = _update(sgd, settings, params, values.gradients, sgd.init_state(params), t=1)
            comparison = (plain, run(plain.params)[0])

        history = [Iteration(1, float(values.loss), float(after.loss))]
        stop = _stopped(history[-1], loss_below, min_delta)
        params, state = update.params, update.state
        if stop is None and limit > 1:
            loss, grads = float(after.loss), after.gradients
            for t in range(2, limit + 1):
                params, state = opt_step(opt, settings, params, grads, state, t)
                new_loss, grads = run(params)
                history.append(Iteration(t, loss, new_loss))
                loss = new_loss
                stop = _stopped(history[-1], loss_below, min_delta)
                if stop is not None:
                    break
    if stop is None:
        stop = f"reached the maximum of {limit} step{'s' if limit > 1 else ''}"
    return Explanation(network, derivation, values, update, after, history, stop, params, digits,
                       (max_iters, loss_below, min_delta), limit, comparison, tuple(dict.fromkeys(wrt or ())))


def _stopped(it: Iteration, loss_below, min_delta) -> str | None:
    if not math.isfinite(it.loss_after):
        return f"the loss is no longer finite after step {it.t} ({it.loss_after:g})"
    if loss_below is not None and it.loss_after < loss_below:
        return f"the loss fell below {loss_below:g} at step {it.t}"
    if min_delta is not None and abs(it.loss_before - it.loss_after) < min_delta:
        return f"the loss changed by less than {min_delta:g} at step {it.t}"
    return None


def _update(opt: Optimizer, settings: Settings, params, grads, state, t: int) -> Update:
    """One simultaneous step, with every rule's value as ``step`` computed it."""
    record = {}
    new_params, new_state = opt_step(opt, settings, params, grads, state, t, record=record)
    rules = opt.assignments(settings)
    clip = record.pop("clip", None)
    traces = []
    for name in params:
        frozen = name not in record
        assigned = () if frozen else tuple((target, rule, record[name][target.name]) for target, rule in rules)
        grad = grads[name] * clip[1] if clip is not None and not frozen else grads[name]
        traces.append(Trace(name, frozen, params[name], grad, {k: state[k][name] for k in state},
                            assigned, new_params[name], {k: new_state[k][name] for k in state}))
    return Update(opt, settings, t, tuple(traces), new_params, new_state, clip)
