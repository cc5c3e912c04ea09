"""The one error type bad input raises — it names the field and the problem — and the two helpers
that make a user's text safe to show: :func:`printable` (for terminals and text files) and
:func:`shown` (a value quoted in a message, cut short).

Every echo of user text goes through here, so no input can make a message long or make it move a
terminal's cursor: a 1 MB loss name is shown as its first :data:`ECHO` characters and "…", and
control characters, terminal escapes, bidi overrides and undecodable bytes of a file name become
visible escapes.
"""
import reprlib

ECHO = 60            # characters of a user's value quoted in a message
FIELD = 160          # characters of a field name (it may hold a user's key or a file's path)
MESSAGE = 400        # characters of a whole problem; a backstop for messages built elsewhere


def printable(text) -> str:
    r"""``text`` with every character a terminal or an editor would act on made visible: control
    characters (``\x1b``, BEL, newlines), format characters (bidi overrides such as U+202E, zero
    widths), line and paragraph separators, and the surrogates that stand for the undecodable bytes
    of a file name (``\xff``). Ordinary text, accents and symbols (π, ≤, −) are kept.

    >>> printable("a\x1b[2Jb\u202ec"), printable("caf\udcc3.toml")
    ('a\\x1b[2Jb\\u202ec', 'caf\\xc3.toml')
    """
    text = str(text)
    if text.isprintable():
        return text
    out = []
    for ch in text:
        code = ord(ch)
        if ch == " " or ch.isprintable():
            out.append(ch)
        elif 0xDC80 <= code <= 0xDCFF:          # a byte os.fsdecode could not decode
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x100:
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(ch, f"\\x{code:02x}"))
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)


def cut(text: str, limit: int = ECHO) -> str:
    """``text`` if it has at most ``limit`` characters, else its start and "…" (``limit`` in all).

    >>> cut("x" * 100, 10)
    'xxxxxxxxx…'
    """
    return text if len(text) <= limit else text[: limit - 1] + "…"


def cut_middle(text: str, limit: int) -> str:
    """``text`` with its middle replaced by "…" if it is longer than ``limit``: for a field, whose
    end (the key, after a long file name) says most.

    >>> cut_middle("a" * 50 + "b" * 50, 11)
    'aa…bbbbbbbb'
    """
    if len(text) <= limit:
        return text
    head = (limit - 1) // 4
    return text[:head] + "…" + text[len(text) - (limit - 1 - head):]


_repr = reprlib.Repr()
_repr.maxlevel, _repr.maxlist, _repr.maxdict = 3, 6, 4
_repr.maxstring = _repr.maxother = _repr.maxlong = ECHO + 2


def shown(value, limit: int = ECHO) -> str:
    """A user's value as a message quotes it: its repr, at most ``limit`` characters, printable.
    Safe for anything — a 1 MB string, a list nested 10⁵ deep, an integer of 5,000 digits.

    >>> shown("l2"), shown("x" * 1_000_000)[-3:], shown([[[[[1]]]]])
    ("'l2'", 'xx…', '[[[[...]]]]')
    """
    if isinstance(value, str):
        return cut(printable(repr(value[: limit + 1])), limit)
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 3 * limit:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    return cut(printable(_repr.repr(value)), limit)


class SpecError(ValueError):
    """Bad input. ``str(err)`` is the one line the command line prints: the field and the
    problem, both printable and bounded (:data:`FIELD` characters, its middle cut out, and
    :data:`MESSAGE`), whatever
    text they were built from.

    >>> str(SpecError("network.loss", "unknown loss 'l2'"))
    "network.loss: unknown loss 'l2'"
    >>> len(str(SpecError("values." + "k" * 10**6, "unknown quantity")))
    178
    """

    def __init__(self, field: str, problem: str):
        self.field, self.problem = cut_middle(printable(field), FIELD), cut(printable(problem), MESSAGE)
        super().__init__(f"{self.field}: {self.problem}")


def one_line(message, limit: int = MESSAGE) -> str:
    """A message from elsewhere (argparse, the OS) as one printable, bounded line."""
    return cut(printable(message), limit)
