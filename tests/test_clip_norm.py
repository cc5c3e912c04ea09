"""Gradient clipping by global norm (``clip_norm``, ``--clip-norm``), defined once as
``entries.optimizers.CLIP``: a clipped step of every trainer form and of ``optimizers.step`` equals
``torch.nn.utils.clip_grad_norm_`` followed by the torch.optim step, in float64; ``explain`` shows it."""
import numpy as np
import pytest

from symbackprop import Network, load
from symbackprop.codegen.trainer import render
from symbackprop.entries import optimizers as opt
from symbackprop.errors import SpecError

from test_generate import data, load_trainer

torch = pytest.importorskip("torch")

CNN = {"network": {"input": [1, 6, 6], "loss": "cross_entropy"},
       "layer": [{"type": "conv2d", "channels": 2, "kernel": 3, "activation": "relu"},
                 {"type": "flatten"},
                 {"type": "dense", "units": 3, "activation": "softmax"}]}
DENSE = {"network": {"layers": [4, 5, 3], "activations": ["tanh", "softmax"], "loss": "cross_entropy"}}


def torch_optimizer(name, tensors, lr):
    """torch.optim's optimizer that our entry ``name`` (with its defaults) is the rule of."""
    return {"sgd": lambda: torch.optim.SGD(tensors, lr=lr),
            "momentum": lambda: torch.optim.SGD(tensors, lr=lr, momentum=0.9),
            "adam": lambda: torch.optim.Adam(tensors, lr=lr, eps=1e-8)}[name]()


def torch_steps(network, params, batches, name, lr, clip, trained=None):
    """The reference: our compiled gradients (tested elsewhere against PyTorch and finite differences)
    set as .grad, then clip_grad_norm_ and torch.optim's step, once per batch."""
    compiled = network.compile()
    tensors = {k: torch.tensor(v, dtype=torch.float64) for k, v in params.items()}
    trained = trained or list(tensors)
    optimizer = torch_optimizer(name, [tensors[k] for k in trained], lr)
    norms = []
    for X, Y in batches:
        grads = compiled.gradients({k: v.numpy() for k, v in tensors.items()}, X, Y)
        for k in trained:
            tensors[k].grad = torch.tensor(grads[k])
        norms.append(float(torch.nn.utils.clip_grad_norm_([tensors[k] for k in trained], clip)))
        optimizer.step()
    return {k: v.numpy() for k, v in tensors.items()}, norms


CASES = [  # spec, render options, clip_norm: one that clips, one above the norm (factor 1)
    ("seed", {"form": "scalar", "optimizer": "sgd"}, 0.05),
    ("seed", {"form": "array", "optimizer": "sgd"}, 0.05),       # plain SGD: lr folded into the gradients
    ("dense", {"form": "array", "optimizer": "adam"}, 0.3),
    ("dense", {"form": "array", "optimizer": "momentum"}, 100.0),
    ("cnn", {"form": "array", "optimizer": "momentum"}, 0.2),
    ("dense", {"backend": "torch", "optimizer": "adam"}, 0.3),
    ("cnn", {"backend": "torch", "optimizer": "sgd"}, 0.2),
]


def spec(case):
    return {"seed": lambda: load("examples/seed.toml"), "dense": lambda: Network.from_dict(DENSE),
            "cnn": lambda: Network.from_dict(CNN)}[case]()


@pytest.mark.parametrize("case, options, clip", CASES)
def test_clipped_steps_equal_clip_grad_norm_and_torch_optim(tmp_path, case, options, clip):
    network = spec(case)
    module = load_trainer(render(network, learning_rate=0.1, **options), tmp_path)
    params = {k: np.asarray(v, dtype=np.float64) for k, v in module.init_params(seed=3).items()} \
        if options.get("backend") != "torch" else {k: v.numpy().copy() for k, v in module.init_params(seed=3).items()}
    if case == "seed":
        params = {k: np.asarray(v, dtype=np.float64) for k, v in network.parameters.items()}
    batches = [data(network, 5, seed=s) for s in (1, 2, 3)]
    expected, norms = torch_steps(network, params, batches, options["optimizer"], 0.1, clip)
    assert (max(norms) > clip) == (clip < 1), f"the case should {'' if clip < 1 else 'not '}clip: norms {norms}"
    if options.get("backend") == "torch":
        mine = {k: torch.tensor(v) for k, v in params.items()}
        to = lambda a: torch.tensor(a)
    else:
        mine, to = {k: v.copy() for k, v in params.items()}, lambda a: a
    state = module.init_state(mine)
    for X, Y in batches:
        module.step(mine, state, to(X), to(Y), 0.1, clip_norm=clip)
    for k in params:
        got = mine[k].numpy() if options.get("backend") == "torch" else mine[k]
        np.testing.assert_allclose(got, expected[k], rtol=1e-10, atol=1e-13, err_msg=f"{case} {options} {k}")


def test_unclipped_step_differs_so_the_test_can_fail(tmp_path):
    network = Network.from_dict(DENSE)
    module = load_trainer(render(network, learning_rate=0.1, optimizer="adam"), tmp_path)
    params = module.init_params(seed=3)
    X, Y = data(network, 5, seed=1)
    expected, _ = torch_steps(network, params, [(X, Y)], "sgd", 0.1, 0.01)
    sgd = load_trainer(render(network, learning_rate=0.1, optimizer="sgd"), tmp_path)
    mine = {k: v.copy() for k, v in params.items()}
    sgd.step(mine, sgd.init_state(mine), X, Y, 0.1)
    assert not np.allclose(mine["W1"], expected["W1"])


@pytest.mark.parametrize("name", ["sgd", "adam", "momentum"])
def test_optimizers_step_with_clip_norm_is_torchs(name):
    """explain's numbers come from optimizers.step: with settings.clip_norm it clips first, over the
    trained parameters only (a frozen one is neither clipped nor counted in the norm)."""
    network = Network.from_dict(DENSE)
    rng = np.random.default_rng(0)
    params = {k: rng.normal(size=s) for k, s in network.parameter_shapes().items()}
    X, Y = data(network, 6)
    settings = opt.Settings.of({"learning_rate": 0.1, "clip_norm": 0.25, "train": ["W1", "W2", "b2"]})
    expected, _ = torch_steps(network, params, [(X, Y)], name, 0.1, 0.25, trained=["W1", "W2", "b2"])
    optimizer = opt.OPTIMIZERS[name]
    record = {}
    new, _ = opt.step(optimizer, settings, params, network.compile().gradients(params, X, Y),
                      optimizer.init_state(params), t=1, record=record)
    norm, factor = record["clip"]
    assert factor < 1 and norm > 0.25
    for k in params:
        np.testing.assert_allclose(new[k], expected[k], rtol=1e-12, atol=1e-14, err_msg=k)


def test_clip_entry_is_the_one_definition():
    """The trainer's factor code and explain's lines are printed from CLIP.factor()."""
    import sympy
    f = opt.CLIP.factor()
    assert float(f.subs({opt.CLIP.norm: 3.0, opt.CLIP.limit: 1.0})) == pytest.approx(1 / (3 + 1e-6), rel=1e-15)
    assert f.subs({opt.CLIP.norm: 0.5, opt.CLIP.limit: 1.0}) == 1
    assert sympy.simplify(opt.CLIP.factor(shown=True).doit() - f) == 0
    text = render(Network.from_dict(DENSE), optimizer="sgd")
    assert "factor = min(1, clip_norm/(grad_norm + 1e-06))" in text
    torch_text = render(Network.from_dict(DENSE), optimizer="sgd", backend="torch")
    assert "factor = torch.clamp(clip_norm/(grad_norm + 1e-06), max=1)" in torch_text


def test_spec_clip_norm_is_the_trainers_default_and_explain_shows_it(tmp_path):
    import tomllib
    from symbackprop.explain.example import explain
    table = {**DENSE, "optimizer": {"name": "sgd", "clip_norm": 0.5}}
    module = load_trainer(render(Network.from_dict(table)), tmp_path)
    assert module.CLIP_NORM == 0.5
    assert module.build_parser().parse_args([]).clip_norm == 0.5
    assert module.build_parser().parse_args(["--clip-norm", "2"]).clip_norm == 2.0
    doc = tomllib.loads(open("examples/seed.toml").read())
    doc["optimizer"]["clip_norm"] = 0.05
    text = explain(Network.from_dict(doc)).markdown()
    assert "clip_grad_norm_" in text and r"\lVert g \rVert &= 0.25239" in text
    doc["optimizer"].pop("clip_norm")
    assert "clip_grad_norm_" not in explain(Network.from_dict(doc)).markdown()


@pytest.mark.parametrize("value", [0, -1, "1", True])
def test_bad_clip_norm_is_one_line_naming_it(value):
    with pytest.raises(SpecError, match=r"optimizer\.clip_norm: expected a number greater than 0"):
        Network.from_dict({**DENSE, "optimizer": {"clip_norm": value}})


def test_check_refuses_a_clipped_update_in_one_line(tmp_path, capsys):
    from symbackprop.cli import main
    hand = tmp_path / "hand.toml"
    hand.write_text(open("examples/seed-hand.toml").read().replace("train = ", "clip_norm = 0.1\ntrain = ", 1))
    assert main(["check", "examples/seed.toml", str(hand)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "optimizer.clip_norm" in err[0]


def test_explain_clip_norm_option_over_the_spec(tmp_path, capsys):
    from symbackprop.cli import main
    out = tmp_path / "e.md"
    assert main(["explain", "examples/seed.toml", "--clip-norm", "0.1", "-o", str(out)]) == 0
    text = out.read_text()
    assert r"\lVert g \rVert &= 0.25239" in text and r"\frac{0.1}{0.25239 + 10^{-6}}\right) &= 0.39620" in text
    for bad in ("0", "-2", "abc", "nan"):
        assert main(["explain", "examples/seed.toml", "--clip-norm", bad]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--clip-norm: expected a number greater than 0" in err[0]
