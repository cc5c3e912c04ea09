"""The symbolic model: one SymPy symbol per input, target, parameter, mask and intermediate value.

Symbols have code-safe names (``W2_0_1``, 0-based like the arrays) and a LaTeX name (``W^{(2)}_{1,2}``,
1-based like the math) kept in :attr:`Model.latex_names`. Each layer of the network's graph is a
:class:`LayerModel` holding its named arrays in order (:class:`Stage` s): intermediates its entry
names (batch norm's mean, var and x̂), then its pre-activation z (``z<i>``, where it has one) and its
output a (``a<i>``) — every element a symbol with a local definition in the previous ones, taken
from the layer kind's element expressions. :meth:`Model.expand` substitutes them all the way down
to the parameters and the data.

The model is built for one example, whose values a batch gives in turn, unless a layer couples the
examples of a batch (batch norm): then it is built for the whole batch — every per-example symbol
gets the example as its first index — and C is the mean of the examples' losses.

>>> from symbackprop.spec.network import Network
>>> m = Model(Network.from_dict({"network": {"layers": [3, 2, 1],
...     "activations": ["sigmoid", "sigmoid"], "loss": "squared_error"}}))
>>> m.layers[1].z_def[0]
W2_0_0*a1_0 + W2_0_1*a1_1 + b2_0
>>> m.latex_names[m.layers[1].W[0][1]]
'W^{(2)}_{1,2}'
"""
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import sympy

from ..entries.layers import Layer
from ..entries.layers.base import index_tuples, param_tex
from ..spec.network import Network


def _arr(values) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


@dataclass
class Stage:
    """One named array of a layer: ``name`` ("z", "a", "mean", ...), its LaTeX base, its symbols
    and their definitions (object arrays of the same shape; a leading example axis when
    ``per_example``), ``quantity`` its name in outputs and hand files ("z2", "mean2")."""
    name: str
    latex: str
    symbols: np.ndarray
    defs: np.ndarray
    quantity: str
    per_example: bool = True
    stepped: bool = False       # filled one time step at a time (axis 1, after the example's): a recurrence


@dataclass
class LayerModel:
    """One layer's symbols: ``sources`` (its inputs, (E, *shape) object arrays), ``params`` and
    ``data`` (name -> object array), ``stages`` in order, the last being its output a."""
    layer: Layer
    sources: list
    params: dict
    data: dict
    stages: list = field(default_factory=list)

    @property
    def index(self) -> int:
        return self.layer.index

    @property
    def output(self) -> np.ndarray:
        return self.stages[-1].symbols

    def stage(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.name == name), None)

    def element_groups(self) -> list[tuple[Stage, list]]:
        """(stage, its element indices) in the order of computation: a whole stage at a time, but a
        recurrence's stages step by step (see :meth:`chunks`)."""
        out, stepped = [], [st for st in self.stages if st.stepped]
        for st in self.stages:
            if not st.stepped:
                out.append((st, list(np.ndindex(*st.symbols.shape))))
            elif st is stepped[0]:
                out += [(s, [idx for idx in np.ndindex(*s.symbols.shape) if idx[1] == t])
                        for t in range(st.symbols.shape[1]) for s in stepped]
        return out

    def chunks(self) -> list[tuple[Stage, np.ndarray, np.ndarray]]:
        """(stage, symbols, definitions) in the order of computation: a whole stage at a time, but
        the stages filled step by step (a recurrent layer's) interleaved by step — every stage's row
        t, then row t + 1 — since step t + 1 reads step t's symbols."""
        out, stepped = [], [st for st in self.stages if st.stepped]
        for st in self.stages:
            if not st.stepped:
                out.append((st, st.symbols.ravel(), st.defs.ravel()))
            elif st is stepped[0]:
                out += [(s, s.symbols[:, t].ravel(), s.defs[:, t].ravel())
                        for t in range(st.symbols.shape[1]) for s in stepped]
        return out

    # the flat views explain and check use for dense stacks (one example, vectors)
    @property
    def z(self) -> list | None:
        s = self.stage("z")
        return None if s is None else list(s.symbols.ravel())

    @property
    def a(self) -> list:
        return list(self.stage("a").symbols.ravel())

    @property
    def z_def(self) -> list | None:
        s = self.stage("z")
        return None if s is None else list(s.defs.ravel())

    @property
    def a_def(self) -> list:
        return list(self.stage("a").defs.ravel())

    @property
    def inputs(self) -> list:
        return list(self.sources[0].ravel())

    @property
    def W(self) -> list:
        return self.params[self.layer.param("W")].tolist()

    @property
    def b(self) -> list:
        return self.params[self.layer.param("b")].tolist()


class Model:
    """The forward expressions of a Network and its loss, symbol by symbol."""

    def __init__(self, network: Network):
        self.network = network
        self.names: dict[sympy.Symbol, str] = {}
        batch = network.x.shape[0] if network.x is not None else 2
        self.examples = batch if any(l.kind.couples_batch for l in network.graph) else 1
        E = self.examples
        self.X = self._symbols("x", "x", (E, *network.input), per_example=True)
        self.Y = self._symbols("y", "y", (E, *network.output_shape), per_example=True)
        self.layers: list[LayerModel] = []
        outputs = {0: self.X}
        for layer in network.graph:
            lm = LayerModel(layer, [outputs[s] for s in layer.sources],
                            {name: self._symbols(name, param_tex(name), shape) for name, shape in layer.params.items()},
                            {name: self._symbols(name, param_tex(name), (E, *shape), per_example=True)
                             for name, shape in layer.data.items()})
            self._build(lm)
            self.layers.append(lm)
            outputs[layer.index] = lm.output
        self.output_array = outputs[network.graph[-1].index]
        losses = [network.example_loss(self.output_array[n], self.Y[n]) for n in range(E)]
        self.loss_def = losses[0] if E == 1 else sympy.Add(*losses) / E
        self.latex_names = self.names

    # ---- building
    def _symbols(self, name: str, tex: str, shape, per_example=False) -> np.ndarray:
        """Symbols ``name_i_j`` (LaTeX ``tex_{i+1,j+1}``) in ``shape``; for a per-example array the
        first axis is the example, left out of the names when the model has one example."""
        out = np.empty(shape, dtype=object)
        for idx in index_tuples(shape):
            shown = idx[1:] if per_example and self.examples == 1 else idx
            code = "_".join([name, *map(str, shown)]) if shown else name
            sub = ",".join(str(i + 1) for i in shown)
            s = sympy.Symbol(code, real=True)
            self.names[s] = f"{tex}_{{{sub}}}" if sub else tex
            out[idx] = s
        return out

    def _build(self, lm: LayerModel):
        layer, E = lm.layer, self.examples
        i = layer.index
        prefix = lambda name: {k[: -len(str(i))]: v for k, v in name.items()}
        params, data = prefix(lm.params), prefix(lm.data)
        pending: dict[str, list] = {}
        stepped: set[str] = set()

        def stage(name, tex, defs, per_example=True, example=None, step=None):
            defs = np.asarray(defs, dtype=object) if not isinstance(defs, np.ndarray) else defs
            if step is not None:           # row t of T of a stage filled step by step (a recurrent layer's h_t)
                t, steps = step
                entry = pending.get(name)
                if entry is None:
                    symbols = self._symbols(f"{name}{i}", f"{tex}^{{({i})}}", (E, steps, *defs.shape), per_example=True)
                    entry = pending[name] = [tex, symbols, [np.empty((steps, *defs.shape), dtype=object) for _ in range(E)]]
                    stepped.add(name)
                entry[2][example][t] = defs
                mine = np.empty(defs.shape, dtype=object)
                mine[...] = entry[1][example, t]
                return mine
            if example is None:            # the whole batch (a kind that couples it), or a batch statistic
                shape = defs.shape
                symbols = self._symbols(f"{name}{i}", f"{tex}^{{({i})}}", shape, per_example=per_example)
                lm.stages.append(Stage(name, tex, symbols, defs, f"{name}{i}", per_example))
                return symbols
            symbols = self._symbols(f"{name}{i}", f"{tex}^{{({i})}}", (E, *defs.shape), per_example=True)
            pending.setdefault(name, [tex, symbols, []])[2].append(defs)
            mine = np.empty(defs.shape, dtype=object)
            mine[...] = symbols[example]
            return mine

        if layer.kind.couples_batch:
            pre = layer.kind.elements(layer, lm.sources, params, data, stage)
        else:
            rows = []
            for n in range(E):
                at = lambda name, tex, defs, per_example=True, step=None, n=n: stage(name, tex, defs, per_example, n, step)
                rows.append(layer.kind.elements(layer, [s[n] for s in lm.sources], params,
                                                {k: v[n] for k, v in data.items()}, at))
            for name, (tex, symbols, defs) in pending.items():
                lm.stages.append(Stage(name, tex, symbols, _stack(defs), f"{name}{i}", stepped=name in stepped))
            pre = _stack(rows)
        if layer.has_z:
            z = stage("z", "z", pre)
            a_defs = np.empty(z.shape, dtype=object)
            for n in range(E):      # a vector activation (softmax) over the last axis: each step's row of a sequence
                rows = z[n].reshape(-1, z.shape[-1]) if layer.sequence else z[n].reshape(1, -1)
                a_defs[n] = np.array([layer.activation.apply(list(r)) for r in rows], dtype=object).reshape(z.shape[1:])
            stage("a", "a", a_defs)
        else:
            stage("a", "a", pre)

    # ---- queries
    @property
    def x(self) -> list:
        """Every input symbol, flat (one example's, for a one-example model)."""
        return list(self.X.ravel())

    @property
    def y(self) -> list:
        return list(self.Y.ravel())

    @property
    def output(self) -> list:
        return list(self.output_array.ravel())

    def parameters(self):
        """(name, index, symbol) for every parameter, layer by layer: W1, b1, W2, ..."""
        for lm in self.layers:
            for name, symbols in lm.params.items():
                for idx in index_tuples(symbols.shape):
                    yield name, idx, symbols[idx]

    def data(self):
        """(name, index, symbol) for every mask element; index starts with the example."""
        for lm in self.layers:
            for name, symbols in lm.data.items():
                for idx in index_tuples(symbols.shape):
                    yield name, idx, symbols[idx]

    def stages(self):
        for lm in self.layers:
            yield from lm.stages

    @cached_property
    def definitions(self) -> dict[sympy.Symbol, sympy.Expr]:
        """Every intermediate symbol mapped to its local definition, in the order of computation."""
        defs = {}
        for lm in self.layers:
            for _, symbols, definitions in lm.chunks():
                defs.update(zip(symbols, definitions))
        return defs

    def expand(self, expr: sympy.Expr, extra: dict | None = None) -> sympy.Expr:
        """``expr`` with every intermediate replaced, down to parameters, inputs and targets."""
        defs = {**self.definitions, **(extra or {})}
        order = list(defs)  # later layers refer to earlier ones: substitute last-defined first
        for s in reversed(order):
            if s in expr.free_symbols:
                expr = expr.xreplace({s: defs[s]})
        return expr

    @cached_property
    def expanded_loss(self) -> sympy.Expr:
        return self.expand(self.loss_def)

    def latex(self, expr) -> str:
        """LaTeX of an expression in the model's symbols, with their mathematical names."""
        return sympy.latex(expr, symbol_names=self.latex_names)


def _stack(rows) -> np.ndarray:
    out = np.empty((len(rows), *np.shape(rows[0])), dtype=object)
    for n, row in enumerate(rows):
        out[n, ...] = row
    return out
