"""SymPy functions for what the matrix form and the generated code share: stable primitives
(:class:`Sigmoid`, :class:`Softplus`, :class:`Clip`), the indicator of an id (:class:`Indicator`, what an
embedding's element expressions read their row with) and whole-array operations, rows being examples
(:class:`Dot`, :class:`T`, :class:`RowSum`, :class:`ColSum`, :class:`Total`, :class:`Softmax`,
:class:`LogSumExp`). Each knows its LaTeX; how each prints as NumPy is :mod:`symbackprop.codegen.printing`'s
business. Nothing differentiates them: derivatives are taken before they are introduced.
"""
import sympy
from sympy import Function

# ---------------------------------------------------------------------------------------------
# Stable element-wise primitives


class Sigmoid(Function):
    """σ(u) = 1/(1 + exp(−u)), for printing only: nothing is differentiated after stabilize()."""
    nargs = 1

    def _latex(self, printer):
        return rf"\sigma\left({printer._print(self.args[0])}\right)"


class Softplus(Function):
    """softplus(u) = log(1 + exp(u)), for printing only."""
    nargs = 1

    def _latex(self, printer):
        return rf"\operatorname{{softplus}}\left({printer._print(self.args[0])}\right)"


class Clip(Function):
    """``Clip(a, lo, hi)``: a limited to a log-loss's domain; ``lo``/``hi`` are 0 or 1 flags for
    "keep a ≥ EPS" and "keep a ≤ 1 − EPS". Used for the value and the derivative alike (a
    straight-through guard: inside [EPS, 1 − EPS] it changes nothing)."""
    nargs = 3

    def _latex(self, printer):
        return rf"\operatorname{{clip}}\left({printer._print(self.args[0])}\right)"


class Indicator(Function):
    """``Indicator(x, v)``: 1 where the integer id x equals v, else 0 (Iverson's [x = v]). An
    embedding's element e_{t,d} = Σ_v [x_t = v] E_{v,d}: linear in E, so ``sympy.diff`` by E_{v,d}
    gives [x_t = v], and a gradient sums δ over the steps whose id is v (the scatter-add). Ids are
    data, not differentiated: its derivative in x is 0.

    >>> x = sympy.Symbol("x", real=True)
    >>> Indicator(3, 3), Indicator(2, 3), sympy.diff(Indicator(x, 3), x)
    (1, 0, 0)
    """
    nargs = 2

    @classmethod
    def eval(cls, x, v):
        if x.is_number and v.is_number:
            return sympy.S.One if sympy.Eq(x, v) == sympy.true else sympy.S.Zero

    def fdiff(self, argindex=1):
        return sympy.S.Zero

    def _latex(self, printer):
        return rf"\left[{printer._print(self.args[0])} = {printer._print(self.args[1])}\right]"

    def _mpmathcode(self, printer):
        return f"(1 if {printer._print(self.args[0])} == {printer._print(self.args[1])} else 0)"


# ---------------------------------------------------------------------------------------------
# Array operations of the matrix form (rows are examples)


class Dot(Function):
    """Matrix product ``A @ B``."""
    nargs = 2

    def _latex(self, printer):
        return " ".join(printer._print(x) for x in self.args)


class T(Function):
    """Transpose."""
    nargs = 1

    def _latex(self, printer):
        return rf"\left({printer._print(self.args[0])}\right)^\top"


def _summand_tex(printer, arg) -> str:
    """The LaTeX of what a Σ sums, in parentheses when it is itself a sum."""
    text = printer._print(arg)
    return rf"\left({text}\right)" if arg.is_Add else text


class RowSum(Function):
    """Σ over a row (the outputs of one example), keeping the column: shape (N, 1)."""
    nargs = 1

    def _latex(self, printer):
        return rf"\textstyle\sum_j {_summand_tex(printer, self.args[0])}"


class ColSum(Function):
    """Σ over the examples: shape (n,)."""
    nargs = 1

    def _latex(self, printer):
        return rf"\textstyle\sum_{{n}} {_summand_tex(printer, self.args[0])}"


class Total(Function):
    """Σ over every entry: a scalar."""
    nargs = 1

    def _latex(self, printer):
        return rf"\textstyle\sum {_summand_tex(printer, self.args[0])}"


class Softmax(Function):
    """Row-wise softmax."""
    nargs = 1

    def _latex(self, printer):
        return rf"\operatorname{{softmax}}\left({printer._print(self.args[0])}\right)"


class LogSumExp(Function):
    """Row-wise log Σ_j exp(u_j), shape (N, 1)."""
    nargs = 1

    def _latex(self, printer):
        return rf"\log\textstyle\sum_j e^{{{printer._print(self.args[0])}}}"


STATE = "_state_"    # the prefix of the symbol that carries a Kernel's state name
VIEW_KERNELS: set[str] = set()   # kernels that return a view of their first argument (flatten)


class Kernel(Function):
    """A call of a layer kernel (a NumPy function of :mod:`symbackprop.entries.layers`, embedded in
    generated code by its source): ``Kernel("conv_forward", X, W1, b1, (1, 1), (0, 0))`` prints as
    ``conv_forward(X, W1, b1, (1, 1), (0, 0))``. Tuples and numbers are its static arguments.

    ``state="conv1"``: the calls that share that name share one dict of the generated workspace,
    passed as ``ws=``, where a kernel keeps what a later call of the same pass reuses (a
    convolution's patch matrix, built by its forward kernel and read by its weight gradient's).
    The state is not an input of the math: it has no symbols and no LaTeX."""

    def __new__(cls, name, *args, state=None):
        static = [sympy.Tuple(*a) if isinstance(a, tuple) else sympy.sympify(a) for a in args]
        if state is not None:
            static.append(sympy.Symbol(STATE + state))
        return super().__new__(cls, sympy.Symbol(name) if isinstance(name, str) else name, *static)

    @property
    def kernel(self) -> str:
        return self.args[0].name

    @property
    def state(self) -> str | None:
        """The name of the workspace dict the call shares (see the class docstring), or None."""
        last = self.args[-1]
        return last.name[len(STATE):] if isinstance(last, sympy.Symbol) and last.name.startswith(STATE) else None

    @property
    def call_args(self) -> tuple:
        """The arguments the kernel is called with, its state left out."""
        return self.args[1:-1] if self.state is not None else self.args[1:]

    @property
    def view(self) -> bool:
        """Whether it returns a view of its first argument: no array (and no ``out=``) of its own."""
        return self.kernel in VIEW_KERNELS

    @property
    def free_symbols(self):
        return set().union(*(a.free_symbols for a in self.call_args))

    def _latex(self, printer):
        name = self.kernel.replace("_", r"\_")
        args = ", ".join(printer._print(a) for a in self.call_args)
        return rf"\operatorname{{{name}}}\left({args}\right)"


class Frozen(Function):
    """``Frozen(u)``: u's value with a zero derivative (a stop-gradient). Only a catalogued
    mistake's definitions use it, for a slip made in one path of a product and not the other (the
    1/√d_k left out of dQ but kept in dK); ``unfreeze`` takes it out once differentiated."""
    nargs = 1

    def fdiff(self, argindex=1):
        return sympy.S.Zero

    def _latex(self, printer):
        return printer._print(self.args[0])


def unfreeze(expr):
    """``expr`` with every ``Frozen(u)`` replaced by u."""
    return expr.replace(Frozen, lambda u: u) if expr.has(Frozen) else expr
