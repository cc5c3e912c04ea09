"""``attention`` and ``posembed``: a transformer's layers on a (T, d) input (PyTorch's conventions).

* attention (``heads``; ``causal`` default false; ``bias`` default true): multi-head self-attention,
  as ``nn.MultiheadAttention(d, heads, batch_first=True)`` with separate projections — ``Wq<i>``,
  ``Wk<i>``, ``Wv<i>``, ``Wo<i>`` (d, d) and ``bq<i>`` … ``bo<i>`` (d,) (PyTorch's ``in_proj_weight`` is
  Wq, Wk, Wv stacked; ``out_proj`` is Wo, bo). Q = x Wqᵀ + bq (likewise K, V); per head h (its d_k =
  d/heads columns) S_h = Q_h K_hᵀ/√d_k, a causal mask setting the keys after each query to −∞,
  A_h = softmax(S_h) over the keys, O = the heads' A_h V_h joined; z = O Woᵀ + bo. Named stages (check's
  names): ``q<i>``, ``k<i>``, ``v<i>`` (T, d), ``scores<i>``, ``weights<i>`` ((heads, T, T), or (T, T) for
  one head; a masked score is the unmasked Q Kᵀ/√d_k and its weight exactly 0), ``o<i>`` (T, d).
* posembed (``length``): a learned positional embedding ``P<i>`` (length, d); a (T, d) input gets its
  first T rows added (T ≤ length). ∂C/∂P's rows after T are 0.

Backward (attention_kernels.py; each proven equal to SymPy's derivative of the element expressions in
tests/test_attention_rules.py): dV = Aᵀ dO, dA = dO Vᵀ, dS = A ⊙ (dA − rowsum(A ⊙ dA)),
dQ = dS K/√d_k, dK = dSᵀ Q/√d_k, then each projection's ∂C/∂W = Σ δᵀ x, ∂C/∂b = Σ δ, and the input's
dQ Wq + dK Wk + dV Wv. A masked weight gets exactly 0 gradient; a key bias's gradient is exactly 0
(bk shifts every score of a row by the same q·bk, which a softmax ignores).
"""
import math

import numpy as np
import sympy

from ..arrayops import Kernel
from ...errors import shown
from .attention_kernels import attn_mix, attn_weights, pos_add, project  # noqa: F401  (registers the kernels)
from .attention_text import AttentionText, PosEmbedText
from .base import Field, LayerError, LayerKind, index_tuples, positive_int, shape_text
from .dense import sup

PROJECTIONS = ("q", "k", "v", "o")


def boolean(value):
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {shown(value)}")
    return value


def needs_sequence(kind: str, in_shape) -> None:
    if len(in_shape) != 2:
        raise LayerError("type", f"{kind} needs a (T, d) sequence input, got shape {shape_text(in_shape)}")


def allowed(causal: bool, t: int, s: int) -> bool:
    """Whether query position t may attend to key position s."""
    return s <= t or not causal


def softmax_rows(scores, causal: bool, mask=None):
    """The softmax of each row of ``scores`` (heads, T, T) over its allowed keys; a masked weight is 0.
    ``mask(t, s)`` (default: the causal rule) says which keys are allowed."""
    mask = mask or (lambda t, s: allowed(causal, t, s))
    out = np.empty(scores.shape, dtype=object)
    for h, t in np.ndindex(*scores.shape[:2]):
        keys = [s for s in range(scores.shape[2]) if mask(t, s)]
        den = sympy.Add(*[sympy.exp(scores[h, t, s]) for s in keys])
        for s in range(scores.shape[2]):
            # a row of one key keeps e^S / e^S as written (SymPy would make it 1 and forget that it reads S)
            out[h, t, s] = (sympy.Mul(sympy.exp(scores[h, t, s]), sympy.Pow(den, -1, evaluate=False), evaluate=False)
                            if len(keys) == 1 and s in keys else
                            sympy.exp(scores[h, t, s]) / den if s in keys else sympy.Integer(0))
    return out


class Attention(AttentionText, LayerKind):
    name = "attention"
    doc = ("multi-head self-attention on a (T, d) input, as nn.MultiheadAttention(d, heads, batch_first=True) "
           "with separate projections Wq, Wk, Wv, Wo (d, d), bq, bk, bv, bo (d,)")
    fields = (Field("heads", positive_int, doc="number of heads; d must be divisible by it"),
              Field("causal", boolean, False, "default false; true: each position attends to itself and earlier ones"),
              Field("bias", boolean, True, "default true; false: no bq, bk, bv, bo"))
    affine = True
    sequence_input = True
    kernels = ("project", "project_weight_grad", "project_input_grad", "attn_weights", "attn_mix", "attn_value_grad",
               "attn_score_grad", "attn_query_grad", "attn_key_grad", "attn_input_grad", "axis_sum")

    params = tuple(f"W{p}" for p in PROJECTIONS) + tuple(f"b{p}" for p in PROJECTIONS)

    def sequence_output(self, options, in_sequence):
        return True         # (T, d): one row per position, whatever the input was marked

    def check(self, options, in_shapes):
        needs_sequence("attention", in_shapes[0])
        d = in_shapes[0][1]
        if d % options["heads"]:
            raise LayerError("heads", f"the input's d = {d} is not divisible by heads = {options['heads']}")

    def param_shapes(self, layer):
        d = layer.shape[1]
        out = {f"W{p}": (d, d) for p in PROJECTIONS}
        if layer.opt["bias"]:
            out.update({f"b{p}": (d,) for p in PROJECTIONS})
        return out

    def workspace(self, layer):
        t, d = layer.shape
        return 8 * t * d + 2 * layer.opt["heads"] * t * t

    def fans(self, layer):
        return layer.shape[1], layer.shape[1]

    def init(self, layer, prefix):
        return "weight" if prefix.startswith("W") else "zeros"

    def sizes(self, layer):
        """(T, d, heads, d_k)."""
        t, d = layer.shape
        h = layer.opt["heads"]
        return t, d, h, d // h

    # ---- symbols
    def elements(self, layer, inputs, params, data, stage):
        x = inputs[0]
        t, d, h, dk = self.sizes(layer)
        bias = lambda p: params[f"b{p}"] if layer.opt["bias"] else None        # noqa: E731
        q, k, v = (stage(p, p, linear(x, params[f"W{p}"], bias(p))) for p in "qkv")
        scores = self.head_view(layer, stage("scores", "S", self.flat(layer, score_defs(q, k, h))))
        weights = self.head_view(layer, stage("weights", "A", self.flat(layer, softmax_rows(scores, layer.opt["causal"]))))
        o = stage("o", "o", mix(weights, v, h))
        return linear(o, params["Wo"], bias("o"))

    def local_form(self, lm, stage, derivative):
        """∂A_ts/∂S_ts' in the weights: e^{S}/Σ e^{S} is A, so A(1 − A) and −A_ts A_ts' (the softmax's
        Jacobian), not ratios of exponentials. Each e^{c S_ts} becomes (A_ts Z)^c with Z the row's
        normaliser, which then cancels; where it would not, the derivative is kept as it was."""
        if stage != "weights" or not derivative.has(sympy.exp):
            return derivative
        rows, exps = _softmax_symbols(lm)
        found = derivative.xreplace(rows)
        found = found.replace(lambda e: isinstance(e, sympy.exp) and _score_of(e, exps) is not None,
                              lambda e: (exps[_score_of(e, exps)[0]] ** _score_of(e, exps)[1]))
        found = sympy.factor_terms(found)
        return derivative if found.has(sympy.exp) or found.free_symbols & set(rows.values()) else found

    def flat(self, layer, arr):
        """A (heads, T, T) array as the stage holds it: (T, T) for one head."""
        return arr[0] if layer.opt["heads"] == 1 else arr

    def head_view(self, layer, arr):
        """A stage's scores or weights as (heads, T, T)."""
        return arr[None] if layer.opt["heads"] == 1 else arr

    # ---- arrays
    def forward(self, layer, inputs, params, data):
        x, (_, _, h, dk) = inputs[0], self.sizes(layer)
        b = lambda p: params.get(f"b{p}")                                         # noqa: E731
        q, k, v = (project(x, params[f"W{p}"], b(p)) for p in "qkv")
        a = attn_weights(q, k, h, layer.opt["causal"], 1 / math.sqrt(dk))
        return project(attn_mix(a, v, h), params["Wo"], b("o"))

    def _project(self, x, params, p):
        W, b = params[f"W{p}"], params.get(f"b{p}")
        return Kernel("project", x, W) if b is None else Kernel("project", x, W, b)

    def array_forward(self, layer, b, inputs, params, data, mode):
        i, x, (t, d, h, dk) = layer.index, inputs[0], self.sizes(layer)
        rows, x_tex = ("N", t, d), b.tex(x)
        qkv = [b.add(f"{p}{i}", self._project(x, params, p), self.tex_projection(layer, p, x_tex), rows) for p in "qkv"]
        a = b.add(f"weights{i}", Kernel("attn_weights", *qkv[:2], h, layer.opt["causal"], sympy.Float(1 / math.sqrt(dk), 17)),
                  self.tex_weights(layer), ("N", h, t, t))
        o = b.add(f"o{i}", Kernel("attn_mix", a, qkv[2], h), self.tex_mix(layer), rows)
        return self._project(o, params, "o"), None

    def array_backward(self, layer, b, delta, inputs, params, data, need):
        i, x, (t, d, h, dk) = layer.index, inputs[0], self.sizes(layer)
        rows, tex = ("N", t, d), self.latex_backward(layer, b.tex(delta), [b.tex(x)])
        q, k, v, a, o = (b.symbol(f"{p}{i}") for p in ("q", "k", "v", "weights", "o"))
        scale = sympy.Float(1 / math.sqrt(dk), 17)
        steps = dict(zip(("do", "dv", "da", "ds", "dq", "dk"), tex.steps))
        b.grad(layer.param("Wo"), Kernel("project_weight_grad", delta, o), tex.grads[layer.param("Wo")])
        if layer.opt["bias"]:
            b.grad(layer.param("bo"), Kernel("axis_sum", delta, (0, 1)), tex.grads[layer.param("bo")])
        do = b.add(f"do{i}", Kernel("project_input_grad", delta, params["Wo"]), steps["do"], rows)
        dv = b.add(f"dv{i}", Kernel("attn_value_grad", a, do, h), steps["dv"], rows)
        ds = b.add(f"dscores{i}", Kernel("attn_score_grad", a, do, v, h), steps["da"] + r",\ " + steps["ds"], ("N", h, t, t))
        dq = b.add(f"dq{i}", Kernel("attn_query_grad", ds, k, h, scale), steps["dq"], rows)
        dk_ = b.add(f"dk{i}", Kernel("attn_key_grad", ds, q, h, scale), steps["dk"], rows)
        for p, dp in zip("qkv", (dq, dk_, dv)):
            b.grad(layer.param(f"W{p}"), Kernel("project_weight_grad", dp, x), tex.grads[layer.param(f"W{p}")])
            if layer.opt["bias"]:
                b.grad(layer.param(f"b{p}"), Kernel("axis_sum", dp, (0, 1)), tex.grads[layer.param(f"b{p}")])
        if not need[0]:
            return [None]
        return [(Kernel("attn_input_grad", dq, dk_, dv, params["Wq"], params["Wk"], params["Wv"]), tex.inputs[0])]


_SOFTMAX_SYMBOLS: dict = {}       # id(LayerModel) -> (the model, its rows' normalisers, e^S -> A Z)


def _softmax_symbols(lm):
    """For the weights stage of ``lm``: each row's normaliser Σ e^{S} -> a symbol Z of its own, and
    each allowed score S -> A Z (its weight times that row's Z)."""
    kept = _SOFTMAX_SYMBOLS.get(id(lm))
    if kept is not None and kept[0] is lm:
        return kept[1], kept[2]
    weights, scores = lm.stage("weights"), lm.stage("scores")
    rows, exps = {}, {}
    for idx, (A, d) in enumerate(zip(weights.symbols.ravel(), weights.defs.ravel())):
        S = scores.symbols.ravel()[idx]
        if d == 0:
            continue
        num, den = d.as_numer_denom()
        Z = rows.setdefault(den, sympy.Dummy("Z", positive=True))
        exps[S] = A * Z
    if len(_SOFTMAX_SYMBOLS) > 64:
        _SOFTMAX_SYMBOLS.clear()
    _SOFTMAX_SYMBOLS[id(lm)] = (lm, rows, exps)
    return rows, exps


def _score_of(e, exps):
    """(S, c) where the exponential ``e`` is e^{c S} of a score S, else None."""
    c, S = e.args[0].as_coeff_Mul()
    return (S, c) if S in exps else None


def linear(x, W, b=None):
    """x Wᵀ + b for a (T, d_in) object array: (T, d_out) sums."""
    t, m = x.shape
    return np.array([[sympy.Add(*[W[j, c] * x[r, c] for c in range(m)], *([b[j]] if b is not None else []))
                      for j in range(W.shape[0])] for r in range(t)], dtype=object)


def score_defs(q, k, heads: int):
    """S[h, t, s] = Σ_j q[t, h·d_k + j] k[s, h·d_k + j] / √d_k."""
    t, d = q.shape
    dk = d // heads
    out = np.empty((heads, t, t), dtype=object)
    for h, r, s in np.ndindex(heads, t, t):
        cols = range(h * dk, (h + 1) * dk)
        out[h, r, s] = sympy.Add(*[q[r, c] * k[s, c] for c in cols]) / sympy.sqrt(dk)
    return out


def mix(weights, v, heads: int):
    """o[t, h·d_k + j] = Σ_s A[h, t, s] v[s, h·d_k + j]: each head's weighted values, joined."""
    t, d = v.shape
    dk = d // heads
    out = np.empty((t, d), dtype=object)
    for r, c in np.ndindex(t, d):
        out[r, c] = sympy.Add(*[weights[c // dk, r, s] * v[s, c] for s in range(t)])
    return out


class PosEmbed(PosEmbedText, LayerKind):
    name = "posembed"
    doc = "a learned positional embedding P (length, d): a (T, d) input gets P's first T rows added (T <= length)"
    fields = (Field("length", positive_int, doc="the longest sequence it embeds"),)
    params = ("P",)
    sequence_input = True
    kernels = ("pos_add", "pos_grad")

    def sequence_output(self, options, in_sequence):
        return True

    def check(self, options, in_shapes):
        needs_sequence("posembed", in_shapes[0])
        if in_shapes[0][0] > options["length"]:
            raise LayerError("length", f"the input has T = {in_shapes[0][0]} positions, more than length = "
                                       f"{options['length']}")

    def param_shapes(self, layer):
        return {"P": (layer.opt["length"], layer.shape[1])}

    def fans(self, layer):
        return layer.shape[1], layer.shape[1]

    def init(self, layer, prefix):
        return "weight"

    def elements(self, layer, inputs, params, data, stage):
        x = inputs[0]
        out = np.empty(x.shape, dtype=object)
        for idx in index_tuples(x.shape):
            out[idx] = x[idx] + params["P"][idx]
        return out

    def forward(self, layer, inputs, params, data):
        return pos_add(inputs[0], params["P"])

    def array_forward(self, layer, b, inputs, params, data, mode):
        return Kernel("pos_add", inputs[0], params["P"]), None

    def array_backward(self, layer, b, delta, inputs, params, data, need):
        tex = self.latex_backward(layer, b.tex(delta), [b.tex(inputs[0])])
        b.grad(layer.param("P"), Kernel("pos_grad", delta, layer.opt["length"]), tex.grads[layer.param("P")])
        return [(delta, tex.inputs[0]) if need[0] else None]


def projection_tex(p: str, i: int) -> tuple[str, str]:
    return sup(f"W_{p}", i), sup(f"b_{p}", i)


ATTENTION, POSEMBED = Attention(), PosEmbed()
