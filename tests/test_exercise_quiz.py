"""The Moodle quiz (``exercise --format moodle``) and class grading (``check SPEC DIR/``).

Moodle's XML format (docs.moodle.org, "Moodle XML format"): a <quiz> of <question type=...>; every
question has <name><text> and <questiontext format=...><text>; a numerical question's <answer
fraction="100"> holds <text> (the number) and <tolerance>; a multichoice question has <single>,
<shuffleanswers>, <answernumbering> and <answer fraction=...> options, each with <feedback><text>."""
import csv
import io
import math
import xml.etree.ElementTree as ET

import pytest

from symbackprop.cli import main
from symbackprop.check.distractors import Distractors
from symbackprop.exercise.make import build
from symbackprop.exercise.moodle import quiz, tolerance
from symbackprop.spec.document import read_spec
from symbackprop.writers.sigfig import significant


@pytest.fixture(scope="module")
def seed_exercise():
    data, source = read_spec("examples/seed.toml")
    return build(data, source, 0, optimizer="sgd")


def test_the_quiz_parses_and_has_moodles_structure(seed_exercise):
    ex = seed_exercise
    root = ET.fromstring(quiz(ex, choices=3).encode("utf-8"))
    assert root.tag == "quiz"
    questions = list(root)
    assert all(q.tag == "question" for q in questions)
    assert questions[0].get("type") == "category" and questions[0].find("category/text").text.startswith("$course$/")
    assert questions[1].get("type") == "description"
    numbers = [(n, i, v) for n in ex.asked for i, v in ex.numbers(n)]
    numerical = [q for q in questions if q.get("type") == "numerical"]
    assert len(numerical) == len(numbers)                           # one per asked number, in order
    for q, (name, index, value) in zip(numerical, numbers):
        assert q.find("name/text").text.split(" ", 1)[1].startswith(name)
        assert q.find("questiontext").get("format") == "html" and q.find("questiontext/text").text
        (answer,) = q.findall("answer")
        assert answer.get("fraction") == "100"
        assert float(answer.find("text").text) == value
        tol = float(answer.find("tolerance").text)
        rounded = float(significant(value, ex.digits))               # an answer rounded to the digits asked is right
        assert abs(rounded - value) <= tol * (1 + 1e-9) + 1e-300
        assert tol <= 0.5 * 10 ** (math.floor(math.log10(abs(value))) - ex.digits + 1) * 1.001 if value else tol == 0
    choice = [q for q in questions if q.get("type") == "multichoice"]
    assert choice
    for q in choice:
        assert q.find("single").text == "true" and q.find("shuffleanswers").text == "true"
        assert q.find("answernumbering").text in ("abc", "ABC", "123")
        options = q.findall("answer")
        assert len(options) == 3 and [o.get("fraction") for o in options] == ["100", "0", "0"]
        shown = [o.find("text").text for o in options]
        assert len(set(shown)) == 3                  # every distractor differs from the answer at the digits shown
        assert all(o.find("feedback/text").text for o in options)


def test_distractors_are_the_catalogues_values_each_named(seed_exercise):
    ex = seed_exercise
    root = ET.fromstring(quiz(ex, choices=2).encode("utf-8"))
    q = next(q for q in root if q.get("type") == "multichoice" and "dC/da2[1]" in q.find("name/text").text)
    wrong = q.findall("answer")[1]
    assert wrong.find("text").text == significant(ex.numbers("dC/da2")[0][1] / 2, ex.digits)
    assert "the 2 of d/da (a − y)² dropped" in wrong.find("feedback/text").text
    slips = Distractors(ex.step.graph)(ex.step.graph.named[("dC/da2", (0,))])
    assert slips[0][1] == "the 2 of d/da (a − y)² dropped"


def test_a_distractor_equal_to_the_answer_at_the_digits_shown_is_dropped():
    from symbackprop.exercise.moodle import _wrong
    found = [(1, "a", 0.28901), (2, "b", 0.3), (3, "c", 0.30001), (4, "d", 0.5)]
    assert _wrong(found, 0.289, 3) == [("b", 0.3), ("d", 0.5)]
    assert tolerance(0.2891, 3) == 0.0005 and tolerance(-12.5, 2) == 0.5


def test_the_cli_writes_a_quiz(tmp_path, capsys):
    assert main(["exercise", "examples/cnn-exercise.toml", "--choices", "2", "-o", str(tmp_path / "q.xml")]) == 0
    root = ET.parse(tmp_path / "q.xml").getroot()
    assert {q.get("type") for q in root} == {"category", "description", "numerical", "multichoice"}


def test_grading_a_folder_one_line_per_file_and_a_csv(tmp_path, capsys):
    assert main(["exercise", "examples/seed.toml", "--key", "--ask", "forward,loss", "-o", str(tmp_path / "s.md")]) == 0
    hands = tmp_path / "hands"
    hands.mkdir()
    key = (tmp_path / "s.key.toml").read_text()
    (hands / "a.toml").write_text(key)
    (hands / "b.toml").write_text((tmp_path / "s.hand.toml").read_text())
    (hands / "c.toml").write_text(key.replace("z1 = [-0.9, 0.3]", "z1 = [-0.8, 0.3]"))
    (hands / "d.toml").write_text("not toml [")
    capsys.readouterr()
    code = main(["check", str(tmp_path / "s.spec.toml"), str(hands), "-o", str(tmp_path / "grades.csv")])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0].endswith("a.toml: 7 numbers: 7 ok, 0 carried, 0 wrong, 0 missing")
    assert out[1].endswith("b.toml: 7 numbers: 0 ok, 0 carried, 0 wrong, 7 missing")
    assert "c.toml: 7 numbers: " in out[2] and " 1 wrong" in out[2] and "d.toml: error: " in out[3]
    rows = list(csv.DictReader(io.StringIO((tmp_path / "grades.csv").read_text())))
    assert [r["file"].rsplit("/", 1)[1] for r in rows] == ["a.toml", "b.toml", "c.toml", "d.toml"]
    assert list(rows[0])[:7] == ["file", "numbers", "ok", "carried", "wrong", "missing", "right_by_method"]
    assert list(rows[0])[7:] == ["z1", "a1", "z2", "a2", "loss", "error"]
    assert rows[0]["right_by_method"] == "7" and rows[1]["z1"] == "missing" and rows[2]["z1"] == "wrong"
    assert int(rows[2]["right_by_method"]) == int(rows[2]["ok"]) + int(rows[2]["carried"])
    assert rows[3]["error"] and rows[3]["numbers"] == "0"


def test_several_files_grade_and_one_file_keeps_its_exit_status(capsys):
    assert main(["check", "examples/seed.toml", "examples/seed-hand.toml"]) == 1     # a wrong number: 1, as before
    single = capsys.readouterr().out
    assert single.startswith("checked against examples/seed.toml") and "missing" not in single
    assert main(["check", "examples/seed.toml", "examples/seed-hand.toml", "examples/seed-hand.toml"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[-1].startswith("graded 2 hand files")


@pytest.mark.parametrize("argv, field", [(["-o", "g.txt"], "-o"), (["--format", "json", "-o", "g.csv"], "--format")])
def test_grading_bad_input_is_one_line(tmp_path, capsys, argv, field):
    code = main(["check", "examples/seed.toml", "examples/seed-hand.toml", *[a if not a.startswith("g.")
                                                                            else str(tmp_path / a) for a in argv]])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and f"error: {field}" in err
