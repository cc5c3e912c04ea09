"""The torch trainer's update printed as multi-tensor ``torch._foreach_*`` calls
(:mod:`symbackprop.codegen.foreach`) from the optimizer entries: every entry prints so, and a step of
the generated trainer equals torch.optim's step (its foreach path) in float64."""
import numpy as np
import pytest
import sympy

from symbackprop import Network
from symbackprop.codegen.foreach import foreach_update
from symbackprop.codegen.trainer import render
from symbackprop.entries import optimizers as opt

from test_generate import data, load_trainer

torch = pytest.importorskip("torch")

DENSE = {"network": {"layers": [4, 5, 3], "activations": ["tanh", "softmax"], "loss": "cross_entropy"}}


def torch_optimizer(name, tensors, lr, wd):
    """torch.optim's optimizer whose rule our entry ``name`` is, with its defaults (ours where they differ)."""
    return {"sgd": lambda: torch.optim.SGD(tensors, lr=lr, weight_decay=wd),
            "momentum": lambda: torch.optim.SGD(tensors, lr=lr, momentum=0.9, weight_decay=wd),
            "nesterov": lambda: torch.optim.SGD(tensors, lr=lr, momentum=0.9, nesterov=True, weight_decay=wd),
            "rmsprop": lambda: torch.optim.RMSprop(tensors, lr=lr, alpha=0.9, eps=1e-8, weight_decay=wd),
            "adagrad": lambda: torch.optim.Adagrad(tensors, lr=lr, eps=1e-8, weight_decay=wd),
            "adam": lambda: torch.optim.Adam(tensors, lr=lr, eps=1e-8, weight_decay=wd),
            "adamw": lambda: torch.optim.AdamW(tensors, lr=lr, eps=1e-8, weight_decay=wd)}[name]()


@pytest.mark.parametrize("bias_correction", [True, False])
@pytest.mark.parametrize("weight_decay", [0, 0.05])
@pytest.mark.parametrize("name", sorted(opt.OPTIMIZERS))
def test_every_optimizer_prints_as_foreach_calls(name, weight_decay, bias_correction):
    settings = opt.Settings.of({"weight_decay": weight_decay, "bias_correction": bias_correction})
    lines, bound, _ = foreach_update(opt.OPTIMIZERS[name], settings)
    assert bound[:2] == ["theta", "g"] and set(bound[2:]) == set(opt.OPTIMIZERS[name].state)
    assert all(line.startswith("torch._foreach_") or " = " in line for _, line in lines)
    assert any("thetas" in line.split(",")[0] for _, line in lines)


def test_a_rule_it_cannot_print_falls_back_to_the_per_parameter_loop():
    odd = opt.Optimizer("odd", ((opt.theta, opt.theta - opt.lr * sympy.tanh(opt.g)),), (("learning_rate", 0.1),))
    assert foreach_update(odd, opt.Settings.of({})) is None


@pytest.mark.parametrize("frozen", [False, True])
@pytest.mark.parametrize("weight_decay", [0, 0.05])
@pytest.mark.parametrize("name", sorted(opt.OPTIMIZERS))
def test_torch_trainer_steps_equal_torch_optim(tmp_path, name, weight_decay, frozen):
    """Three steps in float64: the parameters equal those of torch.optim's step on the same gradients
    (our compiled ones, tested elsewhere). Every parameter trained: the update runs on flat tensors
    (the state's tensors become views of one; between steps they are replaced by copies, as loading
    a checkpoint does, and the next step takes those); W1 frozen: over lists."""
    trained = ["W2", "b1", "b2"] if frozen else ["W1", "W2", "b1", "b2"]
    network = Network.from_dict({**DENSE, "optimizer": {"weight_decay": weight_decay, **({"train": trained} if frozen else {})}})
    text = render(network, learning_rate=0.05, optimizer=name, backend="torch")
    assert "torch._foreach_" in text and "theta, g = params[name], grads[name]" not in text
    assert ("_flat_state(state" in text) == (not frozen and name != "sgd")
    module = load_trainer(text, tmp_path)
    params = {k: v.numpy().copy() for k, v in module.init_params(seed=3).items()}
    batches = [data(network, 5, seed=s) for s in (1, 2, 3)]
    compiled = network.compile()
    tensors = {k: torch.tensor(v) for k, v in params.items()}
    optimizer = torch_optimizer(name, [tensors[k] for k in trained], 0.05, weight_decay)
    for X, Y in batches:
        grads = compiled.gradients({k: v.numpy() for k, v in tensors.items()}, X, Y)
        for k in trained:
            tensors[k].grad = torch.tensor(grads[k])
        optimizer.step()
    mine = {k: torch.tensor(v) for k, v in params.items()}
    state = module.init_state(mine)
    for X, Y in batches:
        module.step(mine, state, torch.tensor(X), torch.tensor(Y), 0.05)
        for key in module.STATE:
            state[key].update({k: v.clone() for k, v in state[key].items()})
    for k in params:
        np.testing.assert_allclose(mine[k].numpy(), tensors[k].detach().numpy(), rtol=1e-10, atol=1e-13, err_msg=k)
    assert not np.allclose(mine["W2"].numpy(), params["W2"])
    assert np.array_equal(mine["W1"].numpy(), params["W1"]) == frozen
