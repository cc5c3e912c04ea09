"""generated/ holds the example trainers; they must be exactly what the templates produce now.

On a difference, look at it, then rewrite them with ``python -m symbackprop.codegen.trainer --update-examples``.
"""
from pathlib import Path

import numpy as np
import pytest

from symbackprop.codegen.trainer import EXAMPLES, ROOT, render
from symbackprop import load
from test_generate import data, finite_difference_check, load_trainer, numpy_view


@pytest.mark.parametrize("spec, output, options", EXAMPLES, ids=[e[1] for e in EXAMPLES])
def test_generated_file_is_up_to_date(spec, output, options):
    committed = (ROOT / output).read_text(encoding="utf-8")
    fresh = render(load(ROOT / spec), source=spec, **options)
    assert committed == fresh, (f"{output} differs from what the templates generate now; check the "
                                "difference, then run: python -m symbackprop.codegen.trainer --update-examples")


@pytest.mark.parametrize("spec, output, options", EXAMPLES, ids=[e[1] for e in EXAMPLES])
def test_generated_file_runs_and_its_gradients_are_right(spec, output, options, tmp_path):
    torch = pytest.importorskip("torch") if options.get("backend") == "torch" else None
    module = load_trainer((ROOT / output).read_text(encoding="utf-8"), tmp_path, Path(output).stem)
    network = load(ROOT / spec)
    rng = np.random.default_rng(0)
    start = {k: np.asarray(v) for k, v in module.init_params(seed=2).items()}
    params = {k: v + 0.05 * rng.standard_normal(v.shape) for k, v in start.items()}
    X, Y = data(network, 6)
    checked = numpy_view(module) if torch else module   # a torch trainer's functions return tensors
    finite_difference_check(checked, params, X, Y, directions=2)
    theirs = network.compile().gradients(params, X, Y)
    for name, value in checked.gradients(params, X, Y).items():
        np.testing.assert_allclose(value, theirs[name], rtol=1e-10, atol=1e-14, err_msg=name)
    if torch:
        params = {k: torch.from_numpy(v) for k, v in params.items()}
    state = module.init_state(params)
    assert np.isfinite(float(module.step(params, state, X, Y))) and state["t"] == 1
