"""The symbolic model: one SymPy symbol per input, target, weight, bias and intermediate value.

Symbols have code-safe names (``W2_0_1``, 0-based like the arrays) and a LaTeX name (``W^{(2)}_{1,2}``,
1-based like the math) kept in :attr:`Model.latex_names`. Each layer holds its local definitions —
z^{(l)}_j in terms of a^{(l-1)} and the layer's parameters, a^{(l)}_j in terms of z^{(l)} — and
:meth:`Model.expand` substitutes them all the way down to the parameters and the inputs.

>>> from symbackprop.spec import Network
>>> m = Model(Network.from_dict({"network": {"layers": [3, 2, 1],
...     "activations": ["sigmoid", "sigmoid"], "loss": "squared_error"}}))
>>> m.layers[1].z_def[0]
W2_0_0*a1_0 + W2_0_1*a1_1 + b2_0
>>> m.latex_names[m.layers[1].W[0][1]]
'W^{(2)}_{1,2}'
"""
from dataclasses import dataclass
from functools import cached_property

import sympy

from .spec import Network


def _symbol(name: str, latex: str, names: dict) -> sympy.Symbol:
    s = sympy.Symbol(name, real=True)
    names[s] = latex
    return s


@dataclass(frozen=True)
class Layer:
    """Weight layer l (1-based): z = W a_prev + b, a = f(z)."""
    index: int
    W: list[list[sympy.Symbol]]
    b: list[sympy.Symbol]
    z: list[sympy.Symbol]
    a: list[sympy.Symbol]
    inputs: list[sympy.Symbol]        # a^{(l-1)}, or x for the first layer
    z_def: list[sympy.Expr]
    a_def: list[sympy.Expr]


class Model:
    """The forward expressions of a Network and its loss, symbol by symbol."""

    def __init__(self, network: Network):
        self.network = network
        names: dict[sympy.Symbol, str] = {}
        sizes = network.layers
        self.x = [_symbol(f"x_{k}", f"x_{{{k + 1}}}", names) for k in range(sizes[0])]
        self.y = [_symbol(f"y_{j}", f"y_{{{j + 1}}}", names) for j in range(sizes[-1])]
        self.layers: list[Layer] = []
        prev = self.x
        for l in range(1, len(sizes)):
            W = [[_symbol(f"W{l}_{j}_{k}", f"W^{{({l})}}_{{{j + 1},{k + 1}}}", names)
                  for k in range(sizes[l - 1])] for j in range(sizes[l])]
            b = [_symbol(f"b{l}_{j}", f"b^{{({l})}}_{{{j + 1}}}", names) for j in range(sizes[l])]
            zs = [_symbol(f"z{l}_{j}", f"z^{{({l})}}_{{{j + 1}}}", names) for j in range(sizes[l])]
            As = [_symbol(f"a{l}_{j}", f"a^{{({l})}}_{{{j + 1}}}", names) for j in range(sizes[l])]
            z_def = [sympy.Add(*[W[j][k] * prev[k] for k in range(len(prev))], b[j]) for j in range(sizes[l])]
            a_def = network.activations[l - 1].apply(zs)
            self.layers.append(Layer(l, W, b, zs, As, prev, z_def, a_def))
            prev = As
        self.output = prev
        self.loss_def = network.loss.total(self.output, self.y)
        self.latex_names = names

    def parameters(self):
        """(name, index, symbol) for every weight and bias, layer by layer: W1, b1, W2, ..."""
        for layer in self.layers:
            for j, row in enumerate(layer.W):
                for k, s in enumerate(row):
                    yield f"W{layer.index}", (j, k), s
            for j, s in enumerate(layer.b):
                yield f"b{layer.index}", (j,), s

    @cached_property
    def definitions(self) -> dict[sympy.Symbol, sympy.Expr]:
        """Every intermediate symbol (z and a) mapped to its local definition."""
        defs = {}
        for layer in self.layers:
            defs.update(zip(layer.z, layer.z_def))
            defs.update(zip(layer.a, layer.a_def))
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
