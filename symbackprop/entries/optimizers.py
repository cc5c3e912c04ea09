"""Optimizers, each defined once as ordered SymPy assignments, element-wise on one parameter.

From the one definition come the formulas ``explain`` prints (:meth:`Optimizer.latex`), the numbers
``explain`` and ``check`` compute (:func:`step`), and the code ``generate`` writes
(:meth:`Optimizer.assignments`). Symbols: θ the parameter, g its gradient, t the step number
(1 for the first step), the optimizer's state (m, v, ...; zero before the first step) and the
hyper-parameters, named as in the spec's ``[optimizer]`` table. The update formulas are PyTorch's
(momentum accumulates gradients and the step is lr·v; ``weight_decay`` is L2 added to the gradient,
except in AdamW where it is decoupled). The defaults are each entry's ``defaults``; they differ from
PyTorch's for RMSprop (ρ = 0.9 and lr = 0.001, as in Keras) and for ε, 1e-8 everywhere.

>>> import numpy as np
>>> opt = OPTIMIZERS["sgd"]
>>> new, state = step(opt, Settings.of({"learning_rate": 0.1}), {"W": np.array([0.5])},
...                   {"W": np.array([-0.2])}, opt.init_state({"W": np.array([0.5])}), t=1)
>>> new["W"].tolist()
[0.52]
"""
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sympy
from sympy import Symbol, sqrt

from ..errors import SpecError, shown


@dataclass(frozen=True)
class Hyper:
    """A hyper-parameter: its name (as in the spec's ``[optimizer]`` table), its LaTeX name and
    the values it may take, an interval from ``low`` to ``high``, each end open or closed. Every
    optimizer reads its settings through :meth:`check`, so a setting outside its domain — β = 1,
    whose bias correction divides by zero, or ε = 0 — is refused where it is given, naming it.

    >>> HYPERS["beta1"].domain, HYPERS["eps"].domain
    ('in [0, 1)', 'greater than 0')
    """
    name: str
    latex: str
    low: float = 0.0
    high: float = math.inf
    low_open: bool = False
    high_open: bool = True

    def allows(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return math.isfinite(value) and above and below

    @property
    def domain(self) -> str:
        if self.high == math.inf:
            return f"greater than {self.low:g}" if self.low_open else f"at least {self.low:g}"
        return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"

    def check(self, value, field: str) -> float:
        """``value`` as a float, or SpecError naming ``field`` and the domain."""
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:     # an integer beyond float64
                number = math.inf
        if number is None or not self.allows(number):
            raise SpecError(field, f"expected a number {self.domain}, got {shown(value)}")
        return number


HYPERS = {h.name: h for h in [
    Hyper("learning_rate", r"\eta", low_open=True),
    Hyper("beta1", r"\beta_1", high=1.0),          # 1 - beta**t is the bias correction's divisor
    Hyper("beta2", r"\beta_2", high=1.0),
    Hyper("eps", r"\epsilon", low_open=True),      # the division by sqrt(v) + eps needs it
    Hyper("momentum", r"\mu"),
    Hyper("rho", r"\rho", high=1.0),
    Hyper("weight_decay", r"\lambda"),
]}

theta, g, t = Symbol("theta", real=True), Symbol("g", real=True), Symbol("t", positive=True, integer=True)
m, v, s = (Symbol(name, real=True) for name in ("m", "v", "s"))
g_hat, m_hat, v_hat = (Symbol(name, real=True) for name in ("g_hat", "m_hat", "v_hat"))
HYPER = {name: Symbol(name, nonnegative=True) for name in [*HYPERS, "bias_correction"]}
lr, beta1, beta2, eps, mu, rho, wd, bc = HYPER.values()

LATEX_NAMES = {theta: r"\theta", g: "g", t: "t", m: "m", v: "v", s: "s", g_hat: r"\tilde g",
               m_hat: r"\hat m", v_hat: r"\hat v", bc: "c",
               **{HYPER[name]: h.latex for name, h in HYPERS.items()}}

_L2 = (g_hat, g + wd * theta)  # the gradient with L2 weight decay folded in


@dataclass(frozen=True)
class Optimizer:
    name: str
    rules: tuple[tuple[Symbol, sympy.Expr], ...]  # ordered assignments; θ is assigned last
    defaults: tuple[tuple[str, float], ...]        # hyper-parameters this optimizer reads
    note: str = ""

    @property
    def bias_corrected(self) -> bool:
        """Whether the rules use the bias-correction switch (Adam's m̂ and v̂ do)."""
        return any(expr.has(bc) for _, expr in self.rules)

    @property
    def state(self) -> tuple[str, ...]:
        """Names of the state arrays (assigned and read back next step), zero-initialised."""
        return tuple(target.name for target, _ in self.rules if target in (m, v, s))

    def assignments(self, settings: "Settings") -> list[tuple[Symbol, sympy.Expr]]:
        """The rules with the switches of ``settings`` applied (bias correction on or off);
        hyper-parameters stay symbols but those set to 0 (weight decay) drop out, and temporaries
        that became trivial are inlined."""
        subs = {bc: 1 if settings.bias_correction else 0}
        subs.update({HYPER[k]: 0 for k, val in settings.values(self).items() if val == 0})
        out, inline = [], {}
        for target, expr in self.rules:
            expr = expr.xreplace(inline).xreplace(subs)
            if target in (g_hat, m_hat, v_hat) and expr.is_Symbol:
                inline[target] = expr
                continue
            out.append((target, expr))
        return out

    def init_state(self, params: dict) -> dict[str, dict]:
        return {name: {p: np.zeros_like(value) for p, value in params.items()} for name in self.state}

    def latex(self, settings: "Settings") -> list[str]:
        """One aligned LaTeX line per assignment, in textbook order: ``\\theta &\\leftarrow \\theta - \\eta g``."""
        return [rule_latex(self, target, expr) for target, expr in self.assignments(settings)]


_ADAM_MOMENTS = ((m, beta1 * m + (1 - beta1) * g_hat), (v, beta2 * v + (1 - beta2) * g_hat**2),
                 (m_hat, m / (1 - bc * beta1**t)), (v_hat, v / (1 - bc * beta2**t)))

OPTIMIZERS = {opt.name: opt for opt in [
    Optimizer("sgd", (_L2, (theta, theta - lr * g_hat)),
              (("learning_rate", 0.01), ("weight_decay", 0.0))),
    Optimizer("momentum", (_L2, (v, mu * v + g_hat), (theta, theta - lr * v)),
              (("learning_rate", 0.01), ("momentum", 0.9), ("weight_decay", 0.0)),
              "PyTorch's form: v accumulates gradients, the step is lr * v"),
    Optimizer("nesterov", (_L2, (v, mu * v + g_hat), (theta, theta - lr * (g_hat + mu * v))),
              (("learning_rate", 0.01), ("momentum", 0.9), ("weight_decay", 0.0)),
              "PyTorch's form of Nesterov momentum"),
    Optimizer("rmsprop", (_L2, (s, rho * s + (1 - rho) * g_hat**2), (theta, theta - lr * g_hat / (sqrt(s) + eps))),
              (("learning_rate", 0.001), ("rho", 0.9), ("eps", 1e-8), ("weight_decay", 0.0))),
    Optimizer("adagrad", (_L2, (s, s + g_hat**2), (theta, theta - lr * g_hat / (sqrt(s) + eps))),
              (("learning_rate", 0.01), ("eps", 1e-8), ("weight_decay", 0.0))),
    Optimizer("adam", (_L2, *_ADAM_MOMENTS, (theta, theta - lr * m_hat / (sqrt(v_hat) + eps))),
              (("learning_rate", 0.001), ("beta1", 0.9), ("beta2", 0.999), ("eps", 1e-8),
               ("weight_decay", 0.0)), "bias correction on unless bias_correction = false"),
    Optimizer("adamw", ((g_hat, g), *_ADAM_MOMENTS,
                        (theta, theta - lr * (m_hat / (sqrt(v_hat) + eps) + wd * theta))),
              (("learning_rate", 0.001), ("beta1", 0.9), ("beta2", 0.999), ("eps", 1e-8),
               ("weight_decay", 0.01)), "decoupled weight decay"),
]}


_HYPER_SYMBOLS = frozenset(HYPER.values())


@dataclass(frozen=True)
class Clip:
    """Gradient clipping by global norm, applied to the gradients before any optimizer's rules:
    ``g ← g · min(1, C / (‖g‖ + ε))`` where ‖g‖ is the 2-norm of every trained parameter's gradient
    together (one number per step, not per parameter) and ε = 1e-6 — ``torch.nn.utils.clip_grad_norm_``
    exactly (it too always multiplies, by 1 when the norm is below C). ``C`` is ``clip_norm`` in the
    spec's ``[optimizer]`` table or a trainer's ``--clip-norm``. From this one definition come the
    factor the trainers compute (:meth:`factor`, printed as code), the lines ``explain`` prints
    (:meth:`latex`) and the numbers of :func:`step`.

    >>> float(CLIP.factor().subs({CLIP.norm: 10.0, CLIP.limit: 1.0}))  # doctest: +ELLIPSIS
    0.09999999...
    """
    hyper: Hyper = Hyper("clip_norm", "C", low_open=True)
    eps: float = 1e-6
    norm: Symbol = Symbol("grad_norm", nonnegative=True)  # ‖g‖ over all trained parameters
    limit: Symbol = Symbol("clip_norm", positive=True)

    def factor(self, shown: bool = False) -> sympy.Expr:
        """The number every gradient is multiplied by: min(1, C / (‖g‖ + ε)); ``shown``: unevaluated,
        in the order it is written, for printing only."""
        if shown:
            return sympy.Min(1, self.limit / sympy.Add(self.norm, sympy.Float(self.eps), evaluate=False), evaluate=False)
        return sympy.Min(1, self.limit / (self.norm + sympy.Float(self.eps)))

    def rule(self) -> tuple[Symbol, sympy.Expr]:
        return g, g * self.factor()

    def norm_latex(self) -> str:
        return r"\lVert g \rVert &= \sqrt{\textstyle\sum_{\theta} \sum_k g_{\theta,k}^2}"

    def factor_latex(self, names: dict | None = None) -> str:
        """min(1, C / (‖g‖ + 10⁻⁶)) as LaTeX; ``names`` may map :attr:`norm` and :attr:`limit` to numbers."""
        eps = sympy.Symbol("epsilon_clip")
        expr = sympy.Min(1, self.limit / sympy.Add(self.norm, eps, evaluate=False), evaluate=False)
        names = {self.norm: r"\lVert g \rVert", self.limit: "C", eps: "10^{-6}", **(names or {})}
        return sympy.latex(expr, symbol_names=names, order="none")

    def latex(self) -> list[str]:
        """The two lines explain prints before the optimizer's: the global norm, then the scaling."""
        return [self.norm_latex(), f"g &\\leftarrow g \\cdot {self.factor_latex()}"]

    def apply(self, grads: dict, names, limit: float) -> tuple[dict, float, float]:
        """The clipped gradients of ``names`` (new arrays; the others as given), the global norm and
        the factor, in float64 as clip_grad_norm_ computes them."""
        norm = math.sqrt(sum(float(np.sum(np.square(np.asarray(grads[k], dtype=np.float64)))) for k in names))
        coef = min(1.0, limit / (norm + self.eps))
        return {k: (np.asarray(val) * coef if k in names else val) for k, val in grads.items()}, norm, coef


CLIP = Clip()


def textbook_order(expr: sympy.Expr, target: sympy.Symbol) -> sympy.Expr:
    """An update rule in the order textbooks write it, unevaluated for ``latex(order="none")``:
    the assigned quantity's old value first (θ − η g, β₁ m + (1 − β₁) g), hyper-parameters before
    variables in a product, ε last in a sum. The same expression: ``textbook_order(e, t).doit() == e``."""
    if expr.is_Add:
        def rank(term):
            if term.has(target):
                return 0
            if term.is_Number:
                return 1
            return 3 if term.free_symbols and term.free_symbols <= _HYPER_SYMBOLS else 2
        return sympy.Add(*[textbook_order(t, target) for t in sorted(expr.args, key=rank)], evaluate=False)
    if expr.is_Mul:
        coeff, factors = expr.as_coeff_mul()
        factors = sorted(factors, key=lambda f: 0 if f.free_symbols and f.free_symbols <= _HYPER_SYMBOLS else 1)
        args = ([coeff] if coeff != 1 else []) + [textbook_order(f, target) for f in factors]
        return sympy.Mul(*args, evaluate=False)
    if expr.is_Pow:
        return sympy.Pow(textbook_order(expr.base, target), expr.exp, evaluate=False)
    return expr


def rule_latex(optimizer: Optimizer, target, expr, names=None, times=False) -> str:
    """``target ← rule`` (``=`` for a temporary), the rule in textbook order; with ``names`` mapping
    symbols to numbers, the rule with its numbers plugged in."""
    arrow = r"\leftarrow" if target.name in optimizer.state or target == theta else "="
    rhs = sympy.latex(textbook_order(expr, target), order="none", symbol_names={**LATEX_NAMES, **(names or {})},
                      mul_symbol="times" if times else None)
    return f"{sympy.latex(target, symbol_names=LATEX_NAMES)} &{arrow} {rhs}"


def is_bias(name: str) -> bool:
    """Whether parameter ``name`` is a bias (``b2``; batch norm's shift ``beta2``, PyTorch's bias)."""
    return name.rstrip("0123456789") in ("b", "beta")


@dataclass(frozen=True)
class Settings:
    """Hyper-parameters as given in the spec's ``[optimizer]`` table (missing ones: defaults), and
    which parameters an update changes: those named in ``train`` (all when it is not given), but no
    bias with ``train_biases = false``."""
    given: tuple[tuple[str, float], ...] = ()
    bias_correction: bool = True
    train_biases: bool = True
    train: tuple[str, ...] | None = None
    clip_norm: float | None = None   # C of :data:`CLIP`, or None: no clipping

    @classmethod
    def of(cls, table: dict) -> "Settings":
        """Settings from an ``[optimizer]`` table; SpecError naming a hyper-parameter outside its
        domain (:data:`HYPERS`)."""
        given = tuple(sorted((k, HYPERS[k].check(val, f"optimizer.{k}")) for k, val in table.items() if k in HYPERS))
        train = tuple(table["train"]) if table.get("train") is not None else None
        clip = CLIP.hyper.check(table["clip_norm"], "optimizer.clip_norm") if table.get("clip_norm") is not None else None
        return cls(given, table.get("bias_correction", True), table.get("train_biases", True), train, clip)

    def trains(self, name: str) -> bool:
        """Whether an update changes parameter ``name``."""
        return (self.train is None or name in self.train) and (self.train_biases or not is_bias(name))

    def values(self, optimizer: Optimizer) -> dict[str, float]:
        """The hyper-parameters ``optimizer`` reads: the given ones, else its defaults."""
        given = dict(self.given)
        return {name: given.get(name, default) for name, default in optimizer.defaults}


@lru_cache(maxsize=None)
def _compiled(optimizer: Optimizer, settings: Settings):
    hyper = settings.values(optimizer)
    subs = {HYPER[k]: val for k, val in hyper.items()}
    subs.update({sym: 0 for name, sym in HYPER.items() if name not in hyper and name != "bias_correction"})
    compiled = []
    for target, expr in optimizer.assignments(settings):
        expr = expr.xreplace(subs)
        args = sorted(expr.free_symbols, key=lambda x: x.name)
        compiled.append((target.name, [a.name for a in args], sympy.lambdify(args, expr, "numpy")))
    return compiled


def step(optimizer: Optimizer, settings: Settings, params: dict, grads: dict, state: dict, t: int,
         names=None, record: dict | None = None):
    """One simultaneous update of every parameter: new arrays for params and state, the inputs
    untouched. Parameters ``settings`` does not train (:meth:`Settings.trains`) keep their values and state.
    With ``record``, ``record[name]`` gets each assignment's value in order ({"m": ..., "theta": ...}).
    With ``settings.clip_norm``, the trained parameters' gradients are first clipped together (:data:`CLIP`);
    ``record["clip"]`` then gets (‖g‖, factor)."""
    if settings.clip_norm is not None:
        trained = [k for k in (names or params) if settings.trains(k)]
        grads, norm, coef = CLIP.apply(grads, trained, settings.clip_norm)
        if record is not None:
            record["clip"] = (norm, coef)
    new_params = dict(params)
    new_state = {k: dict(val) for k, val in state.items()}
    for name in names or params:
        if not settings.trains(name):
            continue
        env = {"theta": params[name], "g": grads[name], "t": t}
        env.update({k: state[k][name] for k in state})
        assigned = {}
        for target, args, fn in _compiled(optimizer, settings):
            env[target] = assigned[target] = np.asarray(fn(*[env[a] for a in args]), dtype=np.float64) \
                * np.ones_like(params[name])
        if record is not None:
            record[name] = assigned
        new_params[name] = env["theta"]
        for k in state:
            new_state[k][name] = env[k]
    return new_params, new_state
