"""Each layer entry's catalogued mistakes (:meth:`~symbackprop.entries.layers.base.LayerKind.slips`) made
in a check graph's numbers: a slip's mistaken definitions taken as a forward value's own
expression, or differentiated by ``sympy.diff`` into the gradients passed back through them."""
import functools

import numpy as np
import sympy

from .graph import index_text
from ..entries.arrayops import unfreeze
from ..entries.layers import Slip, SlipContext


class SlipBook:
    """The slips of every layer of ``graph``, built once, keyed by the model's element indices."""

    def __init__(self, graph):
        self.graph = graph
        self._built: dict[int, list] = {}
        self._readers_of: dict = {}

    def __call__(self, lm) -> list:
        """The layer entry's catalogued mistakes (built once), keyed by the model's element indices:
        for a kind built per example, the entry's slips for each example of the model, merged."""
        if lm.index in self._built:
            return self._built[lm.index]
        kind = lm.layer.kind
        if kind.couples_batch:
            found = kind.slips(lm.layer, self._slip_context(lm, None))
        else:
            per = [kind.slips(lm.layer, self._slip_context(lm, e)) for e in range(self.graph.model.examples)]
            found = [_merged([p[i] for p in per]) for i in range(len(per[0]))]
        self._built[lm.index] = found
        return found

    def _slip_context(self, lm, e) -> SlipContext:
        layer = lm.layer
        strip = (lambda arr: arr) if e is None else (lambda arr: arr[e, ...])
        i = layer.index
        prefix = lambda d: {k[: -len(str(i))]: v for k, v in d.items()}      # noqa: E731
        stages = {st.name: (strip(st.symbols), strip(st.defs)) if st.per_example else (st.symbols, st.defs)
                  for st in lm.stages}
        pre = []
        for src in layer.sources:
            feeder = self.graph.model.layers[src - 1] if src > 0 else None
            z = feeder.stage("z") if feeder is not None and feeder.layer.has_z and feeder.layer.activation.elementwise else None
            pre.append(None if z is None else strip(z.symbols))
        return SlipContext(layer, [strip(a) for a in lm.sources], prefix(lm.params),
                           {k: strip(v) for k, v in prefix(lm.data).items()}, stages, self.model_label, pre)

    def model_label(self, s) -> str:
        """A model symbol's name as hand files write it, without the example: a1[2], W2[1][1], x[3]."""
        if not hasattr(self, "_model_labels"):
            names = {}
            for name, index, sym in self.graph.model.parameters():
                names[sym] = f"{name}{index_text(index)}"
            arrays = [("x", self.graph.model.X), ("y", self.graph.model.Y)]
            arrays += [(name, arr) for lm in self.graph.model.layers for name, arr in lm.data.items()]
            arrays += [(st.quantity, st.symbols) for st in self.graph.model.stages() if st.per_example]
            for name, arr in arrays:
                for idx, sym in np.ndenumerate(arr):
                    names[sym] = name + index_text(idx[1:] if self.graph.model.examples == 1 else idx)
            for st in self.graph.model.stages():
                if not st.per_example:
                    for idx, sym in np.ndenumerate(st.symbols):
                        names[sym] = st.quantity + index_text(idx)
            self._model_labels = names
        return self._model_labels.get(s, str(s))

    def forward(self, node, slip):
        """``node``'s expression with ``slip`` made in its own definition, or None."""
        alt = slip.element(node.meta["stage"], node.meta["element"])
        if alt is None:
            return None
        alt = self.graph.ren(alt, node.meta["example"])
        return alt.xreplace(self.graph.new_replace) if node.kind.startswith("new.") else alt

    def backward(self, node, slip, lm):
        """``node``'s gradient with ``slip`` made in layer ``lm``'s definitions — their local
        derivatives by ``sympy.diff`` — and every other term as it was; None if nothing changes."""
        touched, u = slip.defs(), node.meta["u"]
        readers = self._readers(slip)
        kept = [(f, src, n) for f, src, n in node.meta["terms"]
                if not (self.graph.where[src][0] is lm and self.graph.where[src][2] in touched.get(self.graph.where[src][1].name, {}))]
        extra = [(unfreeze(sympy.diff(touched[st][idx], u)), lm.stage(st).symbols[idx]) for st, idx in readers.get(u, ())]
        if not extra and len(kept) == len(node.meta["terms"]):
            return None
        if node.kind == "grad":
            return node.meta["scale"] * self.graph.sum_terms(kept + [(f, s, n) for f, s in extra for n in self.graph.examples(True)])
        return self.graph.sum_terms(kept + [(f, s, node.meta["example"]) for f, s in extra])

    def _readers(self, slip) -> dict:
        """Symbol -> the (stage, index) of each mistaken definition reading it."""
        key = id(slip)
        if key not in self._readers_of:
            found = {}
            for st, elements in slip.defs().items():
                for idx, alt in elements.items():
                    for u in alt.free_symbols:
                        found.setdefault(u, []).append((st, idx))
            self._readers_of[key] = (slip, found)
        return self._readers_of[key][1]


def _merged(slips) -> Slip:
    """One slip from the same slip of each example of the model (keys: the model's indices, the
    example first)."""
    first = slips[0]

    def defs():
        return {st: {(e, *idx): alt for e, sl in enumerate(slips) for idx, alt in sl.defs().get(st, {}).items()}
                for st in {st for sl in slips for st in sl.defs()}}

    def one(st, idx):
        return slips[idx[0]].element(st, idx[1:])
    return Slip(first.where, functools.cache(defs), first.generic, one)
