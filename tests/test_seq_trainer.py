"""Trainers of sequence models (issue 21): data files of integer ids and class-index targets, validated
with one-line errors naming file, row or line, column and position; a character language model's
--text corpus and the vocabulary its checkpoint keeps."""
import numpy as np
import pytest

from symbackprop import Network
from symbackprop.codegen.trainer import render
from test_trainer_cli import call, checkpoint_arrays
from test_trainer_validation import module_of, one_line_error

# embedding -> dense per step -> softmax: the smallest next-character model (no recurrence)
PER_STEP = {"network": {"input": [6], "loss": "cross_entropy"},
            "layer": [{"type": "embedding", "vocab": 16, "dim": 4},
                      {"type": "dense", "units": 16, "activation": "softmax"}],
            "optimizer": {"name": "sgd", "learning_rate": 0.5}}
# one class per example: flatten the steps, one softmax over the vocabulary
PER_EXAMPLE = {"network": {"input": [3], "loss": "cross_entropy"},
               "layer": [{"type": "embedding", "vocab": 5, "dim": 2}, {"type": "flatten"},
                         {"type": "dense", "units": 4, "activation": "softmax"}]}
TEXT = "the cat sat on the mat. the dog sat on the log.\n" * 4


def trainer_file(folder, table, name, **options):
    path = folder / f"{name}.py"
    path.write_text(render(Network.from_dict(table), **options))
    return path


@pytest.fixture(scope="module")
def per_step(tmp_path_factory):
    folder = tmp_path_factory.mktemp("seq")
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 16, (20, 7))
    np.savetxt(folder / "d.csv", np.hstack([ids[:, :6], ids[:, 1:]]), fmt="%d", delimiter=",")
    np.savez(folder / "d.npz", X=ids[:, :6], Y=ids[:, 1:])
    (folder / "corpus.txt").write_text(TEXT, encoding="utf-8")
    return trainer_file(folder, PER_STEP, "per_step"), folder


def test_the_context_says_ids_and_class_indices():
    from symbackprop.codegen.trainer import data_context
    step = data_context(Network.from_dict(PER_STEP))
    assert (step["vocab"], step["classes"], step["y_shape"], step["n_y"], step["text"]) == (16, 16, (6,), 6, True)
    example = data_context(Network.from_dict(PER_EXAMPLE))
    assert (example["vocab"], example["classes"], example["y_shape"], example["n_y"], example["text"]) == \
        (5, 4, (), 1, False)
    dense = data_context(Network.from_dict({"network": {"layers": [3, 2], "activations": ["softmax"],
                                                        "loss": "cross_entropy"}}))
    assert (dense["vocab"], dense["classes"], dense["y_shape"]) == (None, None, (2,))


def test_ids_and_classes_from_csv_and_npz_are_the_same_examples(per_step):
    trainer, folder = per_step
    module = module_of(trainer)
    Xc, Yc = module.load_data(str(folder / "d.csv"))
    Xn, Yn = module.load_data(str(folder / "d.npz"))
    assert Xc.shape == (20, 6) and Yc.shape == (20, 6)
    np.testing.assert_array_equal(Xc, Xn)
    np.testing.assert_array_equal(Yc, Yn)
    result = call(trainer, "--data", folder / "d.csv", "--epochs", 2, "--quiet")
    assert result.returncode == 0 and "final loss" in result.stdout


@pytest.mark.parametrize("where, value, fragments", [
    ("X", 16, ["line 4, column 3 (example 4, position 3)", "id 16 is not an integer in [0, 16)"]),
    ("X", -1, ["line 4, column 3 (example 4, position 3)", "id -1 is not an integer in [0, 16)"]),
    ("X", 2.5, ["line 4, column 3 (example 4, position 3)", "id 2.5 is not an integer"]),
    ("Y", 17, ["line 4, column 9 (example 4, position 3)", "class 17 is not an integer in [0, 16)"]),
    ("Y", 0.5, ["line 4, column 9 (example 4, position 3)", "class 0.5 is not an integer"]),
])
def test_a_bad_id_or_class_in_a_csv_is_one_line_naming_line_column_example_and_position(tmp_path, per_step,
                                                                                        where, value, fragments):
    trainer, folder = per_step
    table = np.loadtxt(folder / "d.csv", delimiter=",")
    table[3, 2 if where == "X" else 8] = value
    np.savetxt(tmp_path / "bad.csv", table, fmt="%g", delimiter=",")
    one_line_error(call(trainer, "--data", tmp_path / "bad.csv"), "bad.csv", *fragments)


@pytest.mark.parametrize("where, fragments", [
    ("X", ["X[3, 2] (example 4, position 3)", "id 16 is not an integer in [0, 16)"]),
    ("Y", ["Y[3, 2] (example 4, position 3)", "class 16 is not an integer in [0, 16)"]),
])
def test_a_bad_id_or_class_in_an_npz_names_the_array_example_and_position(tmp_path, per_step, where, fragments):
    trainer, folder = per_step
    with np.load(folder / "d.npz") as data:
        arrays = {k: data[k].copy() for k in data.files}
    arrays[where][3, 2] = 16
    np.savez(tmp_path / "bad.npz", **arrays)
    one_line_error(call(trainer, "--data", tmp_path / "bad.npz"), "bad.npz", *fragments)


def test_one_class_per_example(tmp_path):
    trainer = trainer_file(tmp_path, PER_EXAMPLE, "per_example")
    rng = np.random.default_rng(1)
    X, Y = rng.integers(0, 5, (12, 3)), rng.integers(0, 4, 12)
    np.savetxt(tmp_path / "d.csv", np.hstack([X, Y[:, None]]), fmt="%d", delimiter=",")
    module = module_of(trainer)
    Xc, Yc = module.load_data(str(tmp_path / "d.csv"))
    assert Yc.shape == (12,) and np.array_equal(Yc, Y)
    assert call(trainer, "--data", tmp_path / "d.csv", "--epochs", 1, "--quiet").returncode == 0
    Y[5] = 4
    np.savetxt(tmp_path / "bad.csv", np.hstack([X, Y[:, None]]), fmt="%d", delimiter=",")
    one_line_error(call(trainer, "--data", tmp_path / "bad.csv"), "line 6, column 4 (example 6)",
                   "class 4 is not an integer in [0, 4)")
    assert "--text" not in call(trainer, "--help").stdout     # not a next-character model


def test_accuracy_counts_every_step(per_step):
    module = module_of(per_step[0])
    outputs = np.zeros((2, 6, 16))
    outputs[:, :, 3] = 1
    Y = np.full((2, 6), 3.0)
    Y[1, :2] = 0
    assert module.correct(outputs, Y) == 10 and module.COUNTED == 6


# ------------------------------------------------------------------------------------------ --text

def test_text_windows_are_the_next_characters(per_step):
    trainer, folder = per_step
    module = module_of(trainer)
    ids, vocabulary = module.load_text(str(folder / "corpus.txt"))
    assert vocabulary == "".join(sorted(set(TEXT))) and module.decode(ids, vocabulary) == TEXT
    X, Y = module.text_windows(ids)
    assert X.shape == ((len(TEXT) - 1) // 6, 6) == Y.shape
    for row in (0, 5, len(X) - 1):
        start = 6 * row
        assert module.decode(X[row], vocabulary) == TEXT[start:start + 6]
        assert module.decode(Y[row], vocabulary) == TEXT[start + 1:start + 7]


def test_text_training_keeps_the_vocabulary_and_resume_checks_it(tmp_path, per_step):
    trainer, folder = per_step
    ckpt = tmp_path / "lm.npz"
    result = call(trainer, "--text", folder / "corpus.txt", "--epochs", 3, "--save", ckpt, "--quiet")
    assert result.returncode == 0, result.stderr
    assert str(checkpoint_arrays(ckpt)["vocabulary"]) == '"' + "".join(sorted(set(TEXT))).replace("\n", "\\n") + '"'
    module = module_of(trainer)
    assert module.load_checkpoint(str(ckpt))["vocabulary"] == "".join(sorted(set(TEXT)))
    assert call(trainer, "--text", folder / "corpus.txt", "--epochs", 4, "--resume", ckpt, "--quiet").returncode == 0
    (tmp_path / "other.txt").write_text("abcdefgh" * 3)
    one_line_error(call(trainer, "--text", tmp_path / "other.txt", "--resume", ckpt),
                   "its characters (8) are not those", "trained on (15)")


@pytest.mark.parametrize("content, fragments", [
    ("abc", ["3 characters; one window and its next character need 7"]),
    ("abcdefghijklmnopqrs", ["19 distinct characters, more than the 16 ids of layer 1 (embedding, vocab = 16)"]),
    (b"\xff\xfe abc", ["not a UTF-8 text file (byte 0"]),
])
def test_a_bad_text_is_one_line(tmp_path, per_step, content, fragments):
    path = tmp_path / "t.txt"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    one_line_error(call(per_step[0], "--text", path), "t.txt", *fragments)


def test_text_and_data_exclude_each_other_and_a_missing_text_is_named(tmp_path, per_step):
    trainer, folder = per_step
    one_line_error(call(trainer, "--text", folder / "corpus.txt", "--data", folder / "d.csv"), "not allowed with")
    one_line_error(call(trainer, "--text", tmp_path / "nowhere.txt"), "text file", "nowhere.txt", "not found")


# ------------------------------------------------------------------------------------------ sample

@pytest.fixture(scope="module")
def trained(tmp_path_factory, per_step):
    trainer, folder = per_step
    ckpt = tmp_path_factory.mktemp("lm") / "lm.npz"
    assert call(trainer, "--text", folder / "corpus.txt", "--epochs", 30, "--save", ckpt, "--quiet").returncode == 0
    return trainer, ckpt


def test_sample_is_reproducible_with_a_seed_and_decodes_with_the_vocabulary(trained):
    trainer, ckpt = trained
    first = call(trainer, "sample", "--params", ckpt, "--start", "the ", "--length", 40, "--seed", 3)
    again = call(trainer, "sample", "--params", ckpt, "--start", "the ", "--length", 40, "--seed", 3)
    other = call(trainer, "sample", "--params", ckpt, "--start", "the ", "--length", 40, "--seed", 4)
    assert first.returncode == 0 and first.stdout == again.stdout != other.stdout
    text = first.stdout.rstrip("\n")
    assert text.startswith("the ") and len(text) == 44 and set(text) <= set(TEXT)


def test_sample_draws_from_the_models_distribution(trained):
    """The drawn characters follow the model's probabilities: with temperature 1, the next character's
    frequencies over many seeds match the model's output; a low temperature picks its most likely one."""
    trainer, ckpt = trained
    module = module_of(trainer)
    run = module.load_checkpoint(str(ckpt))
    vocabulary = run["vocabulary"]
    window = np.zeros((1, 6))
    window[0, :4] = module.encode("the ", vocabulary, "x")
    p = module.predict(run["params"], run["state"], window)[0, 3, :len(vocabulary)]
    draws = [module.sample(run["params"], run["state"], vocabulary, "the ", 1, 1.0, seed)[-1] for seed in range(600)]
    freq = np.array([draws.count(c) for c in vocabulary]) / len(draws)
    assert np.abs(freq - p / p.sum()).max() < 0.07
    cold = module.sample(run["params"], run["state"], vocabulary, "the ", 1, 0.01, 0)[-1]
    assert cold == vocabulary[int(np.argmax(p))]


def test_sample_refuses_in_one_line(tmp_path, trained, per_step):
    trainer, ckpt = trained
    one_line_error(call(trainer, "sample", "--params", ckpt, "--start", "thE"), "--start: character 3, 'E', is not in the vocabulary")
    one_line_error(call(trainer, "sample", "--params", ckpt, "--temperature", "0"), "--temperature", "positive")
    plain = tmp_path / "plain.npz"
    assert call(trainer, "--data", per_step[1] / "d.csv", "--epochs", 1, "--save", plain, "--quiet").returncode == 0
    one_line_error(call(trainer, "sample", "--params", plain), "holds no vocabulary", "not trained with --text")


def test_the_torch_trainer_samples_the_same_text_from_the_same_checkpoint(tmp_path, trained):
    """Both backends read one checkpoint layout: a NumPy run's checkpoint samples the same text in the
    torch trainer (the model's probabilities agree to rounding; the draws come from the same generator)."""
    pytest.importorskip("torch")
    trainer, ckpt = trained
    torch_trainer = trainer_file(tmp_path, PER_STEP, "per_step_torch", backend="torch")
    ours = call(trainer, "sample", "--params", ckpt, "--start", "the ", "--length", 30, "--seed", 5)
    theirs = call(torch_trainer, "sample", "--params", ckpt, "--start", "the ", "--length", 30, "--seed", 5,
                  "--device", "cpu", "--threads", 1)
    assert theirs.returncode == 0, theirs.stderr
    assert theirs.stdout == ours.stdout


def test_a_sequence_of_floats_with_one_hot_targets(tmp_path):
    """No embedding: X (N, T, D) numbers, Y one-hot rows of the (T, V) output; accuracy counts each
    step's prediction (COUNTED = T), predict writes each step's outputs and class."""
    spec = {"network": {"input": [4, 3], "loss": "cross_entropy"},
            "layer": [{"type": "lstm", "hidden": 5}, {"type": "dense", "units": 3, "activation": "softmax"}]}
    trainer = trainer_file(tmp_path, spec, "floats")
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(12, 4, 3)), np.eye(3)[rng.integers(0, 3, (12, 4))]
    np.savez(tmp_path / "d.npz", X=X, Y=Y)
    np.savetxt(tmp_path / "d.csv", np.hstack([X.reshape(12, -1), Y.reshape(12, -1)]), delimiter=",")
    module = module_of(trainer)
    assert module.COUNTED == 4 and module.Y_SHAPE == (4, 3)
    np.testing.assert_array_equal(module.load_data(str(tmp_path / "d.csv"))[1], Y)
    outputs = np.zeros((2, 4, 3))
    outputs[..., 1] = 1
    assert module.correct(outputs, np.eye(3)[[[1, 1, 0, 1], [2, 1, 1, 1]]]) == 6
    assert call(trainer, "--data", tmp_path / "d.npz", "--epochs", 1, "--save", tmp_path / "c.npz", "--quiet").returncode == 0
    result = call(trainer, "predict", "--params", tmp_path / "c.npz", "--data", tmp_path / "d.csv")
    header, first = result.stdout.splitlines()[:2]
    assert header.split(",")[-5:] == ["output_4_3", "class_1", "class_2", "class_3", "class_4"]
    assert len(first.split(",")) == 12 + 4
