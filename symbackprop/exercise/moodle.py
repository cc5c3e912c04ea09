"""An exercise as a Moodle XML quiz (Moodle's "Moodle XML format" for question import): a category,
a description question holding the network and its numbers, then one numerical question per asked
number in computing order, its tolerance half a unit of the last digit asked (an answer rounded to
the digits asked is right, and so is any closer one); with ``choices``, a multiple-choice question
per number too, whose wrong options are the values the catalogued mistakes of the number's own
formula give (:class:`~symbackprop.check.distractors.Distractors`, the catalogue ``check`` names),
each option's feedback naming its mistake. Options that read the same as the right answer, or as
each other, at the digits shown are dropped; a number with too few left gets no multiple-choice
question.

The text of each question is HTML (escaped into the XML); math is written ``\\(...\\)`` and
``$$...$$``, as Moodle's MathJax filter reads it.
"""
import math
import re
import xml.etree.ElementTree as ET

from ..check.distractors import Distractors
from ..check.graph import index_text
from ..errors import SpecError
from ..writers.sigfig import significant
from .sheet import describe

PENALTY = "0.3333333"


def quiz(ex, choices: int | None = None) -> str:
    """The quiz's XML text. SpecError (naming --choices) when no asked number has ``choices - 1``
    distinct catalogued wrong values."""
    root = ET.Element("quiz")
    category = ET.SubElement(ET.SubElement(root, "question", type="category"), "category")
    _text(category, f"$course$/top/symbackprop exercise/seed {ex.seed}")
    setting = ET.SubElement(root, "question", type="description")
    _named(setting, f"seed {ex.seed}: the network and its numbers", _setting_html(ex))
    numbers = [(name, index, value) for name in ex.asked for index, value in ex.numbers(name)]
    for k, (name, index, value) in enumerate(numbers, 1):
        _numerical(root, ex, k, f"{name}{index_text(index)}", describe(name), value)
    if choices is not None:
        slips = Distractors(ex.step.graph)
        options = [(k, name, index, value, _wrong(slips(ex.step.graph.named[(name, index)]), value, ex.digits))
                   for k, (name, index, value) in enumerate(numbers, 1)]
        most = max((len(wrong) for *_, wrong in options), default=0)
        if choices - 1 > most:
            raise SpecError("--choices", f"at most {most + 1} choices: the mistake catalogue gives at most {most} "
                                         f"wrong values that differ at {ex.digits} digits for any number asked")
        for k, name, index, value, wrong in options:
            if len(wrong) >= choices - 1:
                _multichoice(root, ex, k, f"{name}{index_text(index)}", describe(name), value, wrong[:choices - 1])
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def shown(value: float, digits: int) -> str:
    """``value`` to ``digits`` significant digits, as an option shows it."""
    return significant(value, digits)


def tolerance(value: float, digits: int) -> float:
    """Half a unit of the last of ``digits`` significant digits of ``value`` (0 for 0): Moodle's
    absolute tolerance around the exact answer.

    >>> tolerance(0.2891, 3), tolerance(-12.5, 2), tolerance(0.0, 3)
    (0.0005, 0.5, 0.0)
    """
    if value == 0 or not math.isfinite(value):
        return 0.0
    exponent = math.floor(math.log10(abs(value))) - digits + 1
    return float(f"{0.5 * 10.0 ** exponent:.3g}")


def _wrong(found, value, digits) -> list[tuple[str, float]]:
    """The catalogued wrong values that differ from the answer, and from each other, at ``digits``."""
    def label(v):                     # the number the digits shown say (0.3 and 0.300 are one)
        return float(f"{v:.{digits}g}")
    seen, out = {label(value)}, []
    for _, text, wrong in found:
        if label(wrong) not in seen:
            seen.add(label(wrong))
            out.append((text, wrong))
    return out


def _text(parent, text: str) -> ET.Element:
    element = ET.SubElement(parent, "text")
    element.text = text
    return element


def _named(question, name: str, html: str) -> None:
    _text(ET.SubElement(question, "name"), name)
    _text(ET.SubElement(question, "questiontext", format="html"), html)


def _common(question) -> None:
    ET.SubElement(question, "defaultgrade").text = "1"
    ET.SubElement(question, "penalty").text = PENALTY
    ET.SubElement(question, "hidden").text = "0"


def _ask(ex, label, what) -> str:
    return (f"<p>In the exercise of seed {ex.seed} (the network and its numbers are in the description above), "
            f"what is <code>{_esc(label)}</code> ({_esc(what)})? Give {ex.digits} significant digits.</p>")


def _numerical(root, ex, k, label, what, value) -> None:
    q = ET.SubElement(root, "question", type="numerical")
    _named(q, f"{k:03d} {label}", _ask(ex, label, what))
    _text(ET.SubElement(q, "generalfeedback", format="html"),
          f"<p>{_esc(label)} = {shown(value, max(ex.digits + 2, 6))}</p>")
    _common(q)
    answer = ET.SubElement(q, "answer", fraction="100", format="moodle_auto_format")
    _text(answer, repr(float(value)))
    _text(ET.SubElement(answer, "feedback", format="html"), "<p>Right.</p>")
    ET.SubElement(answer, "tolerance").text = repr(tolerance(value, ex.digits))


def _multichoice(root, ex, k, label, what, value, wrong) -> None:
    q = ET.SubElement(root, "question", type="multichoice")
    _named(q, f"{k:03d} {label} (choice)", _ask(ex, label, what).replace(f" Give {ex.digits} significant digits.",
                                                                         " Choose one."))
    _text(ET.SubElement(q, "generalfeedback", format="html"), f"<p>{_esc(label)} = {shown(value, ex.digits)}</p>")
    _common(q)
    ET.SubElement(q, "single").text = "true"
    ET.SubElement(q, "shuffleanswers").text = "true"
    ET.SubElement(q, "answernumbering").text = "abc"
    right = ET.SubElement(q, "answer", fraction="100", format="html")
    _text(right, shown(value, ex.digits))
    _text(ET.SubElement(right, "feedback", format="html"), "<p>Right.</p>")
    for mistake, number in wrong:
        option = ET.SubElement(q, "answer", fraction="0", format="html")
        _text(option, shown(number, ex.digits))
        _text(ET.SubElement(option, "feedback", format="html"), f"<p>This is what you get with {_esc(mistake)}.</p>")


def _setting_html(ex) -> str:
    """The worksheet's setting (network, numbers, step) as HTML, math as Moodle's MathJax reads it."""
    from ..writers.document import Figure, Heading, to_html
    from . import sheet
    blocks = [b for b in sheet.worksheet(ex) if not isinstance(b, Figure)]
    cut = next(i for i, b in enumerate(blocks) if isinstance(b, Heading) and b.text == "To find")
    html = to_html(blocks[2:cut])
    return re.sub(r"(?<![$\\])\$(?!\$)(.+?)(?<![\\$])\$(?!\$)", r"\\(\1\\)", html)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
