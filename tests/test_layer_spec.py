"""Bad layer specs: one line naming the layer (position and type) and the field, exit status 2."""
import copy
import json
import subprocess
import sys

import numpy as np
import pytest

from cases import graph
from symbackprop.errors import SpecError
from symbackprop import Network

BASE = {"network": {"input": [1, 6, 6], "loss": "cross_entropy"},
        "layer": [dict(type="conv2d", channels=2, kernel=3, padding=1, activation="relu"),
                  dict(type="maxpool2d", kernel=2), dict(type="flatten"), dict(type="dense", units=3, activation="softmax")]}

CASES = [  # (name, edit of BASE, the message's start, a word it must contain)
    ("kernel larger than the padded input", lambda d: d["layer"][0].update(kernel=9), "layer 1 (conv2d).kernel:", "larger"),
    ("pool window larger than its input", lambda d: d["layer"][1].update(kernel=7), "layer 2 (maxpool2d).kernel:", "larger"),
    ("stride 0", lambda d: d["layer"][0].update(stride=0), "layer 1 (conv2d).stride:", "positive"),
    ("negative padding", lambda d: d["layer"][0].update(padding=-1), "layer 1 (conv2d).padding:", "non-negative"),
    ("no channels", lambda d: d["layer"][0].update(channels=0), "layer 1 (conv2d).channels:", "positive"),
    ("a kernel of three sizes", lambda d: d["layer"][0].update(kernel=[3, 3, 3]), "layer 1 (conv2d).kernel:", "list of 2"),
    ("unknown field", lambda d: d["layer"][1].update(size=2), "layer 2 (maxpool2d).size:", "unknown field"),
    ("from pointing forward", lambda d: d["layer"].insert(2, {"type": "add", "from": 5}), "layer 3 (add).from:", "forward"),
    ("from at another shape", lambda d: d["layer"].insert(2, {"type": "add", "from": 0}), "layer 3 (add).from:", "match"),
    ("dense after an image", lambda d: d["layer"].pop(2), "layer 3 (dense).type:", "flatten"),
    ("an image layer given a vector", lambda d: d["network"].update(input=[36]), "layer 1 (conv2d).type:", "(channels, height, width)"),
    ("batch norm momentum over 1", lambda d: d["layer"].insert(1, {"type": "batchnorm", "momentum": 1.5}),
     "layer 2 (batchnorm).momentum:", "0 <= m <= 1"),
    ("dropout rate 1", lambda d: d["layer"].insert(2, {"type": "dropout", "rate": 1.0}), "layer 3 (dropout).rate:", "0 <= p < 1"),
    ("dropout rate negative", lambda d: d["layer"].insert(2, {"type": "dropout", "rate": -0.1}), "layer 3 (dropout).rate:", "0 <= p < 1"),
    ("unknown type", lambda d: d["layer"][1].update(type="pool"), "layer 2.type:", "unknown layer type"),
    ("no type", lambda d: d["layer"][1].pop("type"), "layer 2.type:", "missing"),
    ("a required field missing", lambda d: d["layer"][1].pop("kernel"), "layer 2 (maxpool2d).kernel:", "missing"),
    ("softmax before the last layer", lambda d: d["layer"][0].update(activation="softmax"), "layer 1 (conv2d).activation:", "last layer"),
    ("unknown activation", lambda d: d["layer"][0].update(activation="rleu"), "layer 1 (conv2d).activation:", "unknown activation"),
    ("an input size of 0", lambda d: d["network"].update(input=[1, 0, 6]), "network.input[1]:", "positive"),
    ("layers and a layer list", lambda d: d["network"].update(layers=[3, 2]), "network.layers:", "replaces"),
    ("no vector at the end", lambda d: d["layer"].__delitem__(slice(2, 4)), "layer 2 (maxpool2d):", "vector"),
    ("a layer that is not a table", lambda d: d["layer"].insert(0, 3), "layer 1:", "table"),
    ("a single example for batch norm", lambda d: (d["layer"].insert(1, {"type": "batchnorm"}),
                                                   d.update(sample={"x": np.zeros((1, 6, 6)).tolist(), "y": [0, 1, 0]})),
     "layer 2 (batchnorm):", "at least 2 examples"),
    ("parameters of the wrong shape", lambda d: d.update(parameters={"W1": [[1.0]], "b1": [0, 0], "W4": [[0] * 18] * 3,
                                                                     "b4": [0, 0, 0]}), "parameters.W1:", "(2, 1, 3, 3)"),
    ("a mask of the wrong shape", lambda d: (d["layer"].insert(2, {"type": "dropout", "rate": 0.5}),
                                             d.update(sample={"x": np.zeros((1, 6, 6)).tolist(), "y": [0, 1, 0]},
                                                      masks={"M3": [[1, 0]]})), "masks.M3:", "shape"),
    ("a mask that is not 0/1", lambda d: (d["layer"].insert(2, {"type": "dropout", "rate": 0.5}),
                                          d.update(sample={"x": np.zeros((1, 6, 6)).tolist(), "y": [0, 1, 0]},
                                                   masks={"M3": np.full((2, 3, 3), 0.5).tolist()})), "masks.M3:", "0s and 1s"),
    ("a mask for no dropout layer", lambda d: d.update(sample={"x": np.zeros((1, 6, 6)).tolist(), "y": [0, 1, 0]},
                                                       masks={"M2": [1]}), "masks.M2:", "unknown mask"),
    ("an example of the wrong shape", lambda d: d.update(sample={"x": [[1, 2, 3]], "y": [0, 1, 0]}), "sample.x:", "shape"),
    # a graph with no parameters at all (once: an empty derivation, and a traceback from the LaTeX
    # renderers and the torch trainer)
    ("no layer with parameters", lambda d: (d["network"].update(loss="mse"), d["layer"].pop(0), d["layer"].pop()),
     "layer:", "no layer has parameters"),
    # an update that changes nothing (once: the torch trainer's step indexed TRAINED[0] of an empty list)
    ("train an empty list", lambda d: d.update(optimizer={"train": []}), "optimizer.train:", "an empty list"),
    ("train biases only, without biases", lambda d: d.update(optimizer={"train": ["b1", "b4"], "train_biases": False}),
     "optimizer.train:", "b1, b4: biases only"),
]


def edited(edit):
    data = copy.deepcopy(BASE)
    edit(data)
    return data


@pytest.mark.parametrize("name, edit, start, word", CASES, ids=[c[0] for c in CASES])
def test_bad_layer_specs_name_the_layer_and_the_field(name, edit, start, word):
    with pytest.raises(SpecError) as err:
        Network.from_dict(edited(edit))
    message = str(err.value)
    assert message.startswith(start) and word in message and "\n" not in message, message


@pytest.mark.parametrize("name, edit, start, word", CASES[:6], ids=[c[0] for c in CASES[:6]])
def test_the_command_line_prints_one_line_and_exits_2(name, edit, start, word, tmp_path):
    spec = tmp_path / "bad.json"
    spec.write_text(json.dumps(edited(edit)))
    run = subprocess.run([sys.executable, "-m", "symbackprop", "derive", str(spec)], capture_output=True, text=True)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.count("\n") == 1 and start in run.stderr and "Traceback" not in run.stderr


def test_batch_norm_momentum_1_keeps_the_last_batch_as_pytorch_allows():
    spec = copy.deepcopy(BASE)
    spec["layer"].insert(1, {"type": "batchnorm", "momentum": 1})
    assert Network.from_dict(spec).graph[1].opt["momentum"] == 1.0


def test_the_dense_stack_form_and_its_layer_list_are_one_network():
    stack = Network.from_dict({"network": {"layers": [3, 2, 1], "activations": ["sigmoid", "sigmoid"],
                                           "loss": "squared_error"}})
    graph_ = Network.from_dict({"network": {"input": [3], "loss": "squared_error"},
                                "layer": [dict(type="dense", units=2, activation="sigmoid"),
                                          dict(type="dense", units=1, activation="sigmoid")]})
    assert stack.graph == graph_.graph and stack.parameter_shapes() == graph_.parameter_shapes()
    assert stack.is_stack and graph_.is_stack


def test_masks_without_a_table_are_drawn_and_said_so():
    net = graph("dropout", 4)
    assert set(net.masks) == {"M2"} and net.masks["M2"].shape == (4, 5)
    assert "seeded with 0" in net.mask_source
    assert set(np.unique(net.masks["M2"])) <= {0.0, 1.0}


SEQ = {"network": {"input": [5, 4], "loss": "mse"},
       "layer": [dict(type="posembed", length=5), dict(type="attention", heads=2), dict(type="flatten"),
                 dict(type="dense", units=1)]}
SEQ_CASES = [
    ("d not divisible by heads", lambda d: d["layer"][1].update(heads=3), "layer 2 (attention).heads:",
     "d = 4 is not divisible by heads = 3"),
    ("no heads", lambda d: d["layer"][1].update(heads=0), "layer 2 (attention).heads:", "positive"),
    ("a sequence longer than posembed's length", lambda d: d["layer"][0].update(length=4), "layer 1 (posembed).length:",
     "T = 5 positions, more than length = 4"),
    ("attention on a vector input", lambda d: (d["network"].update(input=[20]), d["layer"].pop(0), d["layer"].pop(1)),
     "layer 1 (attention).type:", "(T, d) sequence input, got shape (20,)"),
    ("posembed on an image", lambda d: d["network"].update(input=[1, 5, 4]), "layer 1 (posembed).type:", "(T, d)"),
    ("causal not a boolean", lambda d: d["layer"][1].update(causal="yes"), "layer 2 (attention).causal:", "true or false"),
    ("layernorm over an unknown axis", lambda d: d["layer"].insert(1, dict(type="layernorm", over="first")),
     "layer 2 (layernorm).over:", '"all" or "last"'),
]


@pytest.mark.parametrize("name, edit, start, word", SEQ_CASES, ids=[c[0] for c in SEQ_CASES])
def test_bad_attention_specs_name_the_layer_and_exit_2(name, edit, start, word, tmp_path):
    data = copy.deepcopy(SEQ)
    edit(data)
    with pytest.raises(SpecError) as err:
        Network.from_dict(data)
    message = str(err.value)
    assert message.startswith(start) and word in message and "\n" not in message, message
    spec = tmp_path / "bad.json"
    spec.write_text(json.dumps(data))
    run = subprocess.run([sys.executable, "-m", "symbackprop", "gradcheck", str(spec), "--init", "0"],
                         capture_output=True, text=True)
    assert run.returncode == 2 and run.stdout == "" and run.stderr.count("\n") == 1 and start in run.stderr
