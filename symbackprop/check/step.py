"""The check graph's nodes after the backward pass: one optimizer step from zero state (t = 1),
element by element, and the forward pass with the parameters after it (``new.*``).

Both read the graph built so far (:class:`~symbackprop.check.graph.CheckGraph`: its gradients, its
per-example copies) and add their nodes to it; each returns what the graph keeps of it.
"""
import numpy as np
import sympy

from .intervals import Interval
from ..entries.optimizers import HYPER, OPTIMIZERS, g, g_hat, m, m_hat, s as s_state, t, theta, v, v_hat

bc = HYPER["bias_correction"]


def optimizer_step(graph, rank: int, name: str) -> dict:
    """One step of ``name`` from zero state (t = 1), element by element, as nodes of ``graph``. The
    optimizer's own assignments are used as they are; its temporaries (g̃, m̂, v̂) are inlined. A
    parameter the settings do not train keeps its value and its zero state. Returns each
    parameter's symbol after the step (the parameter itself where it is not trained)."""
    opt, settings = OPTIMIZERS[name], graph.settings
    hyper = {HYPER[k]: Interval.point(val) for k, val in settings.values(opt).items()}
    for k, sym in HYPER.items():
        hyper.setdefault(sym, Interval.point(0.0))
    hyper[bc] = Interval.point(1.0 if settings.bias_correction else 0.0)
    hyper[t] = Interval.point(1.0)
    targets = [target for target, _ in opt.rules if target not in (g_hat, m_hat, v_hat)]
    updated = {}
    for p_rank, (pname, index, psym) in enumerate(graph.model.parameters()):
        grad = graph.named[(f"grad.{pname}", index)]
        trained = settings.trains(pname)
        current = {theta: psym, g: grad, m: 0, v: 0, s_state: 0}
        for target, rhs in opt.rules:
            expr = rhs.xreplace(current)
            if target in (g_hat, m_hat, v_hat):
                current[target] = expr
                continue
            if not trained:
                expr = psym if target == theta else sympy.Integer(0)
            quantity = f"{name}.{pname}" if target == theta else f"{name}.{target.name}.{pname}"
            sym = sympy.Symbol(f"{quantity}_{'_'.join(map(str, index))}", real=True)
            node = graph.add(sym, expr, "param" if target == theta else "state", quantity, index,
                             (1, rank, targets.index(target), p_rank), optimizer=name, param=psym,
                             state=target.name, trained=trained)
            node.hyper = hyper
            current[target] = sym
        updated[psym] = current[theta] if trained else psym
    return updated


def new_pass(graph, updated: dict) -> dict:
    """The forward pass with the parameters after the step (``updated``: each parameter's symbol
    after it), as nodes of ``graph``. Returns what it replaced: each updated parameter and each stage
    symbol -> its symbol after the step."""
    replace = {p: q for p, q in updated.items() if p != q}
    unchanged = set()        # the new pass's values that equal the old ones (untrained, unchanged inputs)
    for lm in graph.model.layers:
        own = {s for arr in lm.params.values() for s in arr.ravel()}
        old = {q: p for p, q in replace.items() if p in own}
        for stage in lm.stages:
            added = {}
            for n in graph.examples(stage.per_example):
                for idx, s in np.ndenumerate(stage.symbols):
                    base, expr = graph.sym(s, n), graph.ren(stage.defs[idx], n)
                    new = sympy.Symbol(f"new.{base.name}", real=True)
                    moved = [u for u in expr.free_symbols if u in replace and replace[u] not in unchanged]
                    # a value the step does not change is one quantity: new.a1 of an untrained layer
                    # is the person's own a1 (written or not), and nothing "from before the step" fits
                    inputs = {replace[u]: u for u in moved if u in graph.nodes}
                    graph.add(new, expr.xreplace(replace) if moved else base, f"new.{stage.name}",
                              f"new.{stage.quantity}", graph.index(idx, stage.per_example, n), layer=lm,
                              stage=stage.name, element=idx, example=n, old_params=old if moved else {},
                              old_inputs=inputs, unchanged=not moved)
                    added[base] = new
                    if not moved:
                        unchanged.add(new)
            replace.update(added)
    sym = sympy.Symbol("new.C", real=True)
    graph.add(sym, graph.nodes[graph.loss].expr.xreplace(replace), "new.loss", "new.loss", ())
    return replace
