"""``rnn``, ``lstm`` and ``gru``: recurrent layers over a sequence (T, D), as ``nn.RNN``, ``nn.LSTM``
and ``nn.GRU`` with ``batch_first=True``, h_0 = c_0 = 0, one layer, one direction.

Parameters, with PyTorch's shapes and stacking (G gate blocks of ``hidden`` rows each):
``W_ih<i>`` (G·hidden, D), ``W_hh<i>`` (G·hidden, hidden), ``b_ih<i>``, ``b_hh<i>`` (G·hidden,) —
rnn G = 1; lstm G = 4 in the order i, f, g, o; gru G = 3 in the order r, z, n. ``return`` =
"sequence" outputs every h_t, (T, hidden); "last" outputs h_T alone, (hidden,).

    rnn:  s_t = W_ih x_t + b_ih + W_hh h_{t−1} + b_hh,   h_t = tanh(s_t)  (or relu)
    lstm: i, f, o = σ(·), g = tanh(·) of the four blocks of W_ih x_t + b_ih + W_hh h_{t−1} + b_hh,
          c_t = f ⊙ c_{t−1} + i ⊙ g,   h_t = o ⊙ tanh(c_t)
    gru:  r, z = σ(·) of their blocks, n = tanh(W_in x_t + b_in + r ⊙ (W_hn h_{t−1} + b_hn)),
          h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}

The element expressions name each step's values (``s1[t][j]``, ``h1[t][j]``, the gates ``i1`` …
``o1``, ``c1``, ``r1``, ``z1``, ``n1``) with the ``stage(..., step=(t, T))`` mechanism: step t + 1
reads h_t by its symbols, so no expression ever holds the whole recurrence. The array form runs a
Python loop over the steps, vectorised over the batch: the forward kernel keeps each step's values,
a BPTT kernel gives the pre-activations' gradients δ_t — the gradient from step t's own output plus
the one from step t + 1 (through W_hh), and for the LSTM the cell's
δc_t = δh_t ⊙ o_t ⊙ (1 − tanh² c_t) + δc_{t+1} ⊙ f_{t+1} — and the shared weights' gradients are
sums over the steps: ∂C/∂W_ih = Σ_t δ_t x_tᵀ, ∂C/∂W_hh = Σ_t δ_t h_{t−1}ᵀ (h_{t−1}, not h_t),
∂C/∂b = Σ_t δ_t. Each kernel is proven equal to SymPy's derivative of the element expressions in
tests/test_sequence_rules.py.
"""
import numpy as np
import sympy

from ..arrayops import Kernel
from ..registry import ACTIVATIONS
from .base import Field, LayerError, LayerKind, kernel, positive_int, shape_text
from .recurrent_text import RecurrentText

GATES = {"rnn": ("s",), "lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n")}


def choice(*options):
    def parse(value):
        if value not in options:
            raise ValueError(f"expected one of {', '.join(map(repr, options))}, got {value!r}"[:200])
        return value
    return parse


# ---------------------------------------------------------------------------------- kernels


@kernel()
def sigmoid(u):
    """σ(u) = ½ + ½ tanh(u/2): no exp to overflow."""
    return 0.5 + 0.5 * np.tanh(0.5 * u)


@kernel()
def carried(ws, count):
    """The state a recurrent layer starts from: ``ws["initial"]`` — (h_0,) or (h_0, c_0), arrays
    (N, hidden) that truncated BPTT carries over from the previous chunk — or Nones (zeros: h_0 =
    c_0 = 0, as PyTorch without hx). Whether the caller asked for the final state back."""
    got = None if ws is None else ws.get("initial")
    return (tuple(got) if got is not None else (None,) * count), ws is not None and "initial" in ws


@kernel(carried)
def rnn_forward(x, W_ih, b_ih, W_hh, b_hh, relu, out=None, ws=None):
    """h (N, T, hidden): h_t = f(x_t W_ihᵀ + b_ih + h_{t−1} W_hhᵀ + b_hh), f tanh (relu); h_0 = 0 or
    the carried ``ws["initial"]`` (then ``ws["final"]`` receives (h_T,))."""
    n, steps, d = x.shape
    (h0,), back = carried(ws, 1)
    pre = (x.reshape(n * steps, d) @ W_ih.T).reshape(n, steps, -1) + (b_ih + b_hh)
    h = np.empty_like(pre) if out is None else out
    for t in range(steps):
        prev = h[:, t - 1] if t else h0
        u = pre[:, t] if prev is None else pre[:, t] + prev @ W_hh.T
        h[:, t] = np.maximum(u, 0) if relu else np.tanh(u)
    if back:
        ws["final"] = (h[:, -1].copy(),)
    return h


@kernel()
def rnn_deltas(dh, h, W_hh, relu, out=None, ws=None):
    """δ_t = ∂C/∂s_t (N, T, hidden), from the last step back: (∂C/∂h_t from step t's own output, dh,
    plus W_hhᵀ δ_{t+1} from step t + 1) ⊙ f′(s_t), with f′ = 1 − h_t² (tanh) or [h_t > 0] (relu).
    ``dh`` (N, hidden) is the gradient of h_T alone (return = "last"). A carried h_0 is a constant
    (detached, as truncated BPTT has it): nothing flows back into it."""
    steps = h.shape[1]
    D = np.empty_like(h) if out is None else out
    for t in range(steps - 1, -1, -1):
        own = dh[:, t] if dh.ndim == 3 else dh if t == steps - 1 else 0 * h[:, t]
        g = own if t == steps - 1 else own + D[:, t + 1] @ W_hh
        D[:, t] = g * (h[:, t] > 0) if relu else g * (1 - h[:, t] * h[:, t])
    return D


@kernel(carried)
def lstm_forward(x, W_ih, b_ih, W_hh, b_hh, out=None, ws=None):
    """Each step's i, f, g, o, c, h, stacked on the last axis: (N, T, 6·hidden); h_0 = c_0 = 0 or the
    carried ``ws["initial"]`` (then ``ws["final"]`` receives (h_T, c_T)). The input side's products
    for every step at once; per step one product with W_hh and the four gates from one tanh:
    σ(u) = ½ + ½ tanh(u/2) on the i, f, o blocks, tanh(u) on g's."""
    n, steps, d = x.shape
    k = W_hh.shape[1]
    (h0, c0), back = carried(ws, 2)
    pre = (x.reshape(n * steps, d) @ W_ih.T).reshape(n, steps, 4 * k)
    pre += b_ih + b_hh
    S = np.empty((n, steps, 6 * k), dtype=pre.dtype) if out is None else out
    scale = np.full(4 * k, 0.5, dtype=pre.dtype)
    scale[2 * k:3 * k] = 1                      # tanh(u/2) for the sigmoids, tanh(u) for g
    shift = 0.5 * (scale == 0.5)                # then ½ t + ½ on σ's blocks, t as it is on g's
    u, fc = np.empty((n, 4 * k), dtype=pre.dtype), np.empty((n, k), dtype=pre.dtype)
    W_hhT = np.ascontiguousarray(W_hh.T)        # (a transposed view multiplies 1.3x slower)
    for t in range(steps):
        prev = S[:, t - 1, 5 * k:] if t else h0
        if prev is None:
            np.multiply(pre[:, t], scale, out=u)
        else:
            np.matmul(prev, W_hhT, out=u)
            u += pre[:, t]
            u *= scale
        gates = S[:, t, :4 * k]
        np.tanh(u, out=gates)
        gates *= scale
        gates += shift
        c = S[:, t, 4 * k:5 * k]
        np.multiply(gates[:, :k], gates[:, 2 * k:3 * k], out=c)            # i ⊙ g
        c_prev = S[:, t - 1, 4 * k:5 * k] if t else c0
        if c_prev is not None:
            c += np.multiply(gates[:, k:2 * k], c_prev, out=fc)            # + f ⊙ c_{t−1}
        h = S[:, t, 5 * k:]
        np.tanh(c, out=h)
        h *= gates[:, 3 * k:]
    if back:
        ws["final"] = (S[:, -1, 5 * k:].copy(), S[:, -1, 4 * k:5 * k].copy())
    return S


@kernel(carried)
def lstm_deltas(dh, S, W_hh, out=None, ws=None):
    """The gates' pre-activation gradients (N, T, 4·hidden), i f g o, from the last step back:
    δh_t = dh_t + W_hhᵀ δ_{t+1}; δc_t = δh_t ⊙ o_t ⊙ (1 − tanh² c_t) + δc_{t+1} ⊙ f_{t+1};
    then δi = δc ⊙ g ⊙ i(1 − i), δf = δc ⊙ c_{t−1} ⊙ f(1 − f), δg = δc ⊙ i ⊙ (1 − g²),
    δo = δh ⊙ tanh c_t ⊙ o(1 − o) (c_0 = 0, or the carried one, a constant). The factors that do not
    depend on δ are computed for every step at once; the loop does a product and four products
    of arrays a step."""
    n, steps, six = S.shape
    k = six // 6
    (_, c0), _ = carried(ws, 2)
    D = np.empty((n, steps, 4 * k), dtype=np.result_type(dh, S)) if out is None else out
    i, f, g, o, c = (S[:, :, m * k:(m + 1) * k] for m in range(5))
    tc = np.tanh(c)
    A = o * (1 - tc * tc)                                   # δc_t = δh_t ⊙ A_t + δc_{t+1} ⊙ f_{t+1}
    P = np.empty((n, steps, 3, k), dtype=D.dtype)           # δi, δf, δg = δc_t ⊙ P_t
    np.multiply(g * i, 1 - i, out=P[:, :, 0])
    P[:, 1:, 1] = c[:, :-1]
    if c0 is None:
        P[:, 0, 1] = 0
    else:
        P[:, 0, 1] = c0
    P[:, :, 1] *= f * (1 - f)
    np.multiply(i, 1 - g * g, out=P[:, :, 2])
    Po = tc * o * (1 - o)                                   # δo = δh_t ⊙ Po_t
    D4 = D.reshape(n, steps, 4, k)
    gh, dc, carry = (np.empty((n, k), dtype=D.dtype) for _ in range(3))
    for t in range(steps - 1, -1, -1):
        if t == steps - 1:
            gh[...] = dh[:, t] if dh.ndim == 3 else dh
        else:
            np.matmul(D[:, t + 1], W_hh, out=gh)
            if dh.ndim == 3:
                gh += dh[:, t]
        np.multiply(gh, A[:, t], out=dc)
        if t < steps - 1:
            dc += np.multiply(carry, f[:, t + 1], out=carry)
        np.multiply(P[:, t], dc[:, None, :], out=D4[:, t, :3])
        np.multiply(gh, Po[:, t], out=D4[:, t, 3])
        dc, carry = carry, dc
    return D


@kernel(sigmoid, carried)
def gru_forward(x, W_ih, b_ih, W_hh, b_hh, out=None, ws=None):
    """Each step's r, z, n, h and W_hn h_{t−1} + b_hn, stacked on the last axis: (N, T, 5·hidden);
    h_0 = 0 or the carried ``ws["initial"]`` (then ``ws["final"]`` receives (h_T,))."""
    n, steps, d = x.shape
    k = W_hh.shape[1]
    (h0,), back = carried(ws, 1)
    gi = (x.reshape(n * steps, d) @ W_ih.T).reshape(n, steps, -1) + b_ih
    S = np.empty((n, steps, 5 * k), dtype=gi.dtype) if out is None else out
    for t in range(steps):
        prev = S[:, t - 1, 3 * k:4 * k] if t else h0
        gh = b_hh + 0 * gi[:, t] if prev is None else prev @ W_hh.T + b_hh
        r, z = sigmoid(gi[:, t, :k] + gh[:, :k]), sigmoid(gi[:, t, k:2 * k] + gh[:, k:2 * k])
        nn = np.tanh(gi[:, t, 2 * k:] + r * gh[:, 2 * k:])
        h = (1 - z) * nn if prev is None else (1 - z) * nn + z * prev
        S[:, t, :k], S[:, t, k:2 * k], S[:, t, 2 * k:3 * k], S[:, t, 3 * k:4 * k], S[:, t, 4 * k:] = r, z, nn, h, gh[:, 2 * k:]
    if back:
        ws["final"] = (S[:, -1, 3 * k:4 * k].copy(),)
    return S


@kernel(carried)
def gru_deltas(dh, S, W_hh, out=None, ws=None):
    """The pre-activation gradients (N, T, 6·hidden), from the last step back: the input side's r z n
    blocks (what W_ih and b_ih see), then the hidden side's (W_hh, b_hh: the n block times r).
    δh_t = dh_t + (from t + 1: δh_{t+1} ⊙ z_{t+1} + W_hhᵀ δ^hidden_{t+1}); δn = δh ⊙ (1 − z) ⊙ (1 − n²),
    δz = δh ⊙ (h_{t−1} − n) ⊙ z(1 − z), δr = δn ⊙ (W_hn h_{t−1} + b_hn) ⊙ r(1 − r); h_0 = 0 or the
    carried one (a constant)."""
    n, steps, five = S.shape
    k = five // 5
    (h0,), _ = carried(ws, 1)
    D = np.empty((n, steps, 6 * k), dtype=np.result_type(dh, S)) if out is None else out
    carry = None
    for t in range(steps - 1, -1, -1):
        r, z, nn, hn = S[:, t, :k], S[:, t, k:2 * k], S[:, t, 2 * k:3 * k], S[:, t, 4 * k:]
        own = dh[:, t] if dh.ndim == 3 else dh if t == steps - 1 else 0 * nn
        gh = own if carry is None else own + carry
        prev = S[:, t - 1, 3 * k:4 * k] if t > 0 else (0 * nn if h0 is None else h0)
        dn = gh * (1 - z) * (1 - nn * nn)
        dz = gh * (prev - nn) * z * (1 - z)
        dr = dn * hn * r * (1 - r)
        D[:, t, :k], D[:, t, k:2 * k], D[:, t, 2 * k:3 * k] = dr, dz, dn
        D[:, t, 3 * k:4 * k], D[:, t, 4 * k:5 * k], D[:, t, 5 * k:] = dr, dz, dn * r
        carry = gh * z + D[:, t, 3 * k:] @ W_hh
    return D


@kernel(carried)
def prev_weight_grad(D, h, out=None, ws=None):
    """∂C/∂W_hh = Σ over examples and steps of δ_t h_{t−1}ᵀ: from step 2 on, and at step 1 with the
    carried h_0 where there is one (h_0 = 0 adds nothing)."""
    n, steps, g = D.shape
    (h0, *_), _ = carried(ws, 2)
    prev = np.empty(h.shape, dtype=h.dtype)     # h_{t−1} at step t: one copy of h, not of the larger D
    prev[:, 1:] = h[:, :-1]
    prev[:, 0] = 0 if h0 is None else h0
    return np.dot(D.reshape(n * steps, g).T, prev.reshape(n * steps, -1), out=out)


@kernel(view=True)
def seq_part(S, start, stop):
    """Blocks start:stop of the last axis of S (a view): a recurrent layer's h among its step values."""
    return S[..., start:stop]


@kernel(view=True)
def last_step(h):
    """h_T: the last step of h (N, T, hidden), a view (return = "last")."""
    return h[:, -1]


# ---------------------------------------------------------------------------------- the entries


class Recurrent(RecurrentText, LayerKind):
    params = ("W_ih", "W_hh", "b_ih", "b_hh")
    sequence_input = True

    def __init__(self, name: str, gates: int, doc: str):
        self.name, self.gates, self.doc = name, gates, doc
        self.fields = (Field("hidden", positive_int, doc="the size of h"),
                       *((Field("nonlinearity", choice("tanh", "relu"), "tanh", '"tanh" (default) or "relu"'),)
                         if name == "rnn" else ()),
                       Field("return", choice("sequence", "last"), "sequence",
                             '"sequence" (every h_t, default) or "last" (h_T)'))
        self.kernels = (f"{name}_forward", f"{name}_deltas", "prev_weight_grad", "seq_part", "last_step",
                        "step_weight_grad", "step_bias_grad", "step_input_grad")

    def check_sequence(self, options, in_shapes, in_sequence):
        if len(in_shapes[0]) != 2 or not in_sequence[0]:
            raise LayerError("type", f"{self.name} needs a sequence input (T, D), got shape {shape_text(in_shapes[0])}")

    def output_shape(self, options, in_shapes):
        return (in_shapes[0][0], options["hidden"]) if options["return"] == "sequence" else (options["hidden"],)

    def sequence_output(self, options, in_sequence):
        return options["return"] == "sequence"

    def param_shapes(self, layer):
        k, d = layer.opt["hidden"] * self.gates, layer.in_shapes[0][-1]
        return {"W_ih": (k, d), "W_hh": (k, layer.opt["hidden"]), "b_ih": (k,), "b_hh": (k,)}

    def workspace(self, layer):
        return layer.in_shapes[0][0] * layer.opt["hidden"] * (2 * self.gates + 2)

    def init(self, layer, prefix):
        return "uniform"         # U(−1/√hidden, 1/√hidden) for every parameter, as PyTorch

    def init_scale(self, layer):
        return 1 / np.sqrt(layer.opt["hidden"])

    # ---- symbols
    def elements(self, layer, inputs, params, data, stage):
        x, k = inputs[0], layer.opt["hidden"]
        steps = x.shape[0]
        W_ih, W_hh, b_ih, b_hh = params["W_ih"], params["W_hh"], params["b_ih"], params["b_hh"]
        h = c = None
        hs = []
        for t in range(steps):
            gi = [sympy.Add(*[W_ih[j, m] * x[t, m] for m in range(x.shape[1])], b_ih[j]) for j in range(len(b_ih))]
            gh = [sympy.Add(*([W_hh[j, m] * h[m] for m in range(k)] if h is not None else []), b_hh[j])
                  for j in range(len(b_hh))]
            h, c = self.step(layer, t, steps, gi, gh, h, c, stage)
            hs.append(h)
        out = np.array(hs, dtype=object)
        return out if layer.opt["return"] == "sequence" else out[-1]

    def step(self, layer, t, steps, gi, gh, h, c, stage):
        """One step's staged values from the input side's and the hidden side's pre-activations
        (lists of G·hidden expressions); returns (h_t, c_t) as symbol arrays."""
        k, at = layer.opt["hidden"], (t, steps)
        block = lambda side, m: np.array(side[m * k:(m + 1) * k], dtype=object)
        sig, tanh = ACTIVATIONS["sigmoid"].apply, ACTIVATIONS["tanh"].apply
        if self.name == "rnn":
            s = stage("s", "s", block(gi, 0) + block(gh, 0), step=at)
            f = ACTIVATIONS[layer.opt["nonlinearity"]].apply
            return stage("h", "h", np.array(f(list(s)), dtype=object), step=at), None
        if self.name == "lstm":
            pre = [block(gi, m) + block(gh, m) for m in range(4)]
            i = stage("i", "i", np.array(sig(list(pre[0])), dtype=object), step=at)
            f = stage("f", "f", np.array(sig(list(pre[1])), dtype=object), step=at)
            g = stage("g", "g", np.array(tanh(list(pre[2])), dtype=object), step=at)
            o = stage("o", "o", np.array(sig(list(pre[3])), dtype=object), step=at)
            c = stage("c", "c", i * g if c is None else f * c + i * g, step=at)
            return stage("h", "h", o * np.array(tanh(list(c)), dtype=object), step=at), c
        r = stage("r", "r", np.array(sig(list(block(gi, 0) + block(gh, 0))), dtype=object), step=at)
        z = stage("z", "z", np.array(sig(list(block(gi, 1) + block(gh, 1))), dtype=object), step=at)
        n = stage("n", "n", np.array(tanh(list(block(gi, 2) + r * block(gh, 2))), dtype=object), step=at)
        return stage("h", "h", (1 - z) * n + (z * h if h is not None else 0), step=at), None

    # ---- arrays
    def states(self, layer, params, x):
        p = [params[name] for name in ("W_ih", "b_ih", "W_hh", "b_hh")]
        if self.name == "rnn":
            return rnn_forward(x, *p, layer.opt["nonlinearity"] == "relu")
        return (lstm_forward if self.name == "lstm" else gru_forward)(x, *p)

    def carry_name(self, layer) -> str:
        """The workspace dict its kernels share (``ws=``): where truncated BPTT puts the state a batch
        starts from (``"initial"``) and finds the one it ends with (``"final"``)."""
        return f"{self.name}{layer.index}"

    def h_block(self, layer) -> tuple[int, int]:
        """Where h lies on the last axis of the forward kernel's output."""
        k = layer.opt["hidden"]
        return {"rnn": (0, k), "lstm": (5 * k, 6 * k), "gru": (3 * k, 4 * k)}[self.name]

    def forward(self, layer, inputs, params, data):
        h = seq_part(self.states(layer, params, inputs[0]), *self.h_block(layer))
        return h if layer.opt["return"] == "sequence" else last_step(h)

    def array_forward(self, layer, b, inputs, params, data, mode):
        i, k, steps = layer.index, layer.opt["hidden"], layer.in_shapes[0][0]
        p = [params[name] for name in ("W_ih", "b_ih", "W_hh", "b_hh")]
        extra = (int(layer.opt["nonlinearity"] == "relu"),) if self.name == "rnn" else ()
        width = {"rnn": 1, "lstm": 6, "gru": 5}[self.name] * k
        name = f"h{i}" if self.name == "rnn" else f"steps{i}"
        S = b.add(name, Kernel(f"{self.name}_forward", inputs[0], *p, *extra, state=self.carry_name(layer)), self.latex_step(layer, b.tex(inputs[0])),
                  ("N", steps, width))
        h = S if self.name == "rnn" else b.add(f"h{i}", Kernel("seq_part", S, *self.h_block(layer)),
                                               rf"h^{{({i})}} = (h^{{({i})}}_1, \dots, h^{{({i})}}_T)", None)
        if layer.opt["return"] == "last":
            return Kernel("last_step", h), None
        return h, None

    def array_backward(self, layer, b, delta, inputs, params, data, need):
        i, k, steps = layer.index, layer.opt["hidden"], layer.in_shapes[0][0]
        x, h = inputs[0], b.symbol(f"h{i}")
        tex = self.latex_backward(layer, b.tex(delta), [b.tex(x)])
        G = self.gates * k
        if self.name == "rnn":
            D = b.add(f"D{i}", Kernel("rnn_deltas", delta, h, params["W_hh"], int(layer.opt["nonlinearity"] == "relu"), state=self.carry_name(layer)),
                      self.latex_deltas(layer), ("N", steps, G))
            Di = Dh = D
        elif self.name == "lstm":
            Di = Dh = b.add(f"D{i}", Kernel("lstm_deltas", delta, b.symbol(f"steps{i}"), params["W_hh"], state=self.carry_name(layer)),
                            self.latex_deltas(layer), ("N", steps, G))
        else:
            D = b.add(f"D{i}", Kernel("gru_deltas", delta, b.symbol(f"steps{i}"), params["W_hh"], state=self.carry_name(layer)),
                      self.latex_deltas(layer), ("N", steps, 2 * G))
            Di = b.add(f"Di{i}", Kernel("seq_part", D, 0, G), rf"\delta^{{({i})}}_{{ih}}", None)
            Dh = b.add(f"Dh{i}", Kernel("seq_part", D, G, 2 * G), rf"\delta^{{({i})}}_{{hh}}", None)
        b.grad(layer.param("W_ih"), Kernel("step_weight_grad", Di, x), tex.grads[layer.param("W_ih")])
        b.grad(layer.param("W_hh"), Kernel("prev_weight_grad", Dh, h, state=self.carry_name(layer)), tex.grads[layer.param("W_hh")])
        b.grad(layer.param("b_ih"), Kernel("step_bias_grad", Di), tex.grads[layer.param("b_ih")])
        b.grad(layer.param("b_hh"), Kernel("step_bias_grad", Dh), tex.grads[layer.param("b_hh")])
        return [(Kernel("step_input_grad", Di, params["W_ih"]), tex.inputs[0]) if need[0] else None]


RNN = Recurrent("rnn", 1, "h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh) over a sequence, as torch.nn.RNN "
                          "(batch_first); W_ih (hidden, D), W_hh (hidden, hidden), b_ih, b_hh (hidden,)")
LSTM = Recurrent("lstm", 4, "torch.nn.LSTM over a sequence (batch_first), c_0 = h_0 = 0; W_ih (4 hidden, D), "
                            "W_hh (4 hidden, hidden), b_ih, b_hh (4 hidden,), gate blocks i, f, g, o")
GRU = Recurrent("gru", 3, "torch.nn.GRU over a sequence (batch_first), h_0 = 0; W_ih (3 hidden, D), "
                          "W_hh (3 hidden, hidden), b_ih, b_hh (3 hidden,), gate blocks r, z, n")
