"""Messages that echo a user's text: every echo is cut short and printable, so a megabyte of input
gives a short line and no input can move a terminal's cursor or reverse its text."""
import json

import pytest

from symbackprop.cli import main
from symbackprop.errors import ECHO, SpecError, printable, shown
from symbackprop.entries.registry import LOSSES, Activation, z
from symbackprop.report.chain import render_text
from symbackprop import Network

HUGE = "x" * 1_000_000
ESCAPES = "\x1b[2J\x07\u202eevil"
RAW = ("\x1b", "\x07", "\u202e")
GOOD = {"network": {"layers": [3, 2, 1], "activations": ["sigmoid", "sigmoid"], "loss": "squared_error"},
        "parameters": {"W1": [[0.2, -0.5, 0.1], [-0.3, 0.4, 0.2]], "b1": [0.3, -0.1], "W2": [[0.5, 0.2]],
                       "b2": [0.1]},
        "sample": {"x": [2, 3, -1], "y": [1]}}


def spec_with(tmp_path, change, text):
    data = json.loads(json.dumps(GOOD))
    change(data, text)
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def set_in(*keys):
    def change(data, text):
        target = data
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = text
    return change


def rename_key(data, text):
    data["sample"][text] = 1


PLACES = {
    "layer size": (set_in("network", "layers", 1), "network.layers[1]"),
    "loss name": (set_in("network", "loss"), "network.loss"),
    "activation": (set_in("network", "activations", 0), "network.activations[0]"),
    "weight": (lambda d, t: d["parameters"]["b2"].__setitem__(0, t), "parameters.b2[0]"),
    "optimizer name": (lambda d, t: d.setdefault("optimizer", {}).__setitem__("name", t), "optimizer.name"),
    "hyper-parameter": (lambda d, t: d.setdefault("optimizer", {}).__setitem__("eps", t), "optimizer.eps"),
    "unknown key": (rename_key, "sample."),
}


@pytest.mark.parametrize("place", sorted(PLACES))
def test_a_megabyte_of_text_gives_a_short_line(tmp_path, capsys, place):
    change, field = PLACES[place]
    assert main(["derive", str(spec_with(tmp_path, change, HUGE))]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and field in err and len(err) < 700, (len(err), err[:300])
    assert "x" * (ECHO + 100) not in err


@pytest.mark.parametrize("place", sorted(PLACES))
def test_terminal_escapes_and_bidi_overrides_are_shown_escaped(tmp_path, capsys, place):
    change, field = PLACES[place]
    assert main(["derive", str(spec_with(tmp_path, change, ESCAPES))]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and not any(c in err for c in RAW), repr(err)
    assert "\\x1b[2J" in err or "U+001B" in err or "U+202E" in err, err


def test_a_megabyte_formula_is_refused_without_echo(tmp_path, capsys):
    path = spec_with(tmp_path, set_in("network", "activations", 0), "z+" * 500_000 + "z")
    assert main(["derive", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 200 and "400 characters" in err, err


@pytest.mark.parametrize("key", [HUGE, ESCAPES, "grad.W9" + "9" * 10_000], ids=["huge", "escapes", "digits"])
def test_a_hand_file_key_is_echoed_short_and_printable(tmp_path, capsys, key):
    hand = tmp_path / "hand.toml"
    hand.write_text("[values]\n" + json.dumps(key) + " = 0.5\n", encoding="utf-8")
    assert main(["check", "examples/seed.toml", str(hand)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 700 and not any(c in err for c in RAW), err[:300]
    assert "values." in err


def test_a_hand_value_written_as_a_megabyte_string_is_echoed_short(tmp_path, capsys):
    hand = tmp_path / "hand.toml"
    hand.write_text('[values]\nloss = "' + "1" * 1_000_000 + 'x"\n', encoding="utf-8")
    assert main(["check", "examples/seed.toml", str(hand)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 300 and "values.loss" in err, err[:300]


def test_a_huge_command_line_argument_is_echoed_short(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["derive", "examples/seed.toml", "--digits", HUGE])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 500, len(err)
    assert main(["derive", "examples/seed.toml", "--wrt", HUGE]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 300, len(err)


def test_spec_error_bounds_and_escapes_whatever_it_is_given():
    err = SpecError("values." + ESCAPES * 100_000, "unknown " + HUGE + ESCAPES)
    text = str(err)
    assert len(text) < 600 and not any(c in text for c in RAW) and "\n" not in text
    assert text.startswith("values.\\x1b[2J") and text.endswith("…")


@pytest.mark.parametrize("value, expected", [
    ("l2", "'l2'"), (10**5000, "an integer of about 5001 digits"), ([[[[[[1]]]]]], "[[[[...]]]]"),
    ("\x1b[2J", "'\\x1b[2J'"), ("a\u202eb", "'a\\u202eb'"),
], ids=["name", "5000 digits", "nested", "escape", "bidi"])
def test_shown_is_short_and_printable_for_anything(value, expected):
    assert shown(value) == expected


def test_shown_cuts_long_text_to_the_echo_length():
    assert len(shown(HUGE)) == ECHO and shown(HUGE).endswith("…")
    nested = []
    for _ in range(100_000):
        nested = [nested]
    assert len(shown(nested)) <= ECHO


def test_printable_escapes_what_a_terminal_acts_on_and_keeps_the_rest():
    assert printable("π ≤ −1 · ü") == "π ≤ −1 · ü"
    assert printable("a\x1b[2J\x07\u202e\u2028\udcff") == "a\\x1b[2J\\x07\\u202e\\u2028\\xff"


def test_derive_text_shows_activation_names_printable():
    act = Activation("z\x1b[2J\u202e", z, "f")     # as a layer kind from elsewhere might name itself
    net = Network.stack((1, 1), (act,), LOSSES["squared_error"])
    from symbackprop.derive.derivation import Derivation
    from symbackprop.derive.model import Model
    text = render_text(Derivation(Model(net)), None)
    # a custom activation is named by its parsed formula (here z), never by its raw text
    assert not any(c in text for c in RAW) and "Network 1-1 (z)" in text


def test_derive_and_explain_of_a_spec_named_with_escapes_print_no_raw_escape(tmp_path, capsys):
    spec = tmp_path / ("seed" + ESCAPES + ".toml")
    spec.write_text(open("examples/seed.toml").read())
    for argv in (["explain", str(spec)], ["check", str(spec), "examples/seed-hand.toml"],
                 ["derive", str(spec) + "-missing"]):
        main(argv)
        out, err = capsys.readouterr()
        assert not any(c in out + err for c in RAW), argv
        shown = "seed\\x1b[2J\\x07\\u202eevil"       # explain's Markdown escapes the user's \ and [ (as shown)
        assert (shown if argv[0] != "explain" else "seed\\\\x1b\\[2J\\\\x07\\\\u202eevil") in out + err, argv
