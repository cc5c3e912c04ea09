"""Writing results: standard output, or a file that is replaced atomically and never clobbered.

An existing file is overwritten only with ``force`` — or when ``ours(old_text)`` says symbackprop
wrote it (generated trainers carry a marker). The text goes to a temporary file in the same folder,
then ``os.replace`` puts it in place, so a crash never leaves a half-written file.

Only regular files are written. A FIFO, a device, a socket or a directory is refused, even with
``force`` — opening a FIFO would block, and replacing a device node would destroy it; to send the
text to one, write to standard output (``-o -``, the default) and redirect it. The target is looked
at with ``os.stat`` and never opened before that, so nothing here can block. A symbolic link is
followed: the file it points to is replaced, the link stays.
"""
import os
import stat
import sys
import tempfile
from pathlib import Path

from ..errors import SpecError, printable

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
_SNIFF = 1 << 16   # bytes of an existing file that ``ours`` looks at


PROGRESS_ELEMENTS = 2000   # element values (the network's, over its examples) from which work is announced


def progress(command: str, text: str, stream=None) -> None:
    """A progress line on a terminal — ``symbackprop derive: deriving 7,955 steps…`` on standard
    error, and only where it is a terminal: nothing in a pipe, a file or a test's captured output."""
    stream = sys.stderr if stream is None else stream
    if getattr(stream, "isatty", lambda: False)():
        print(f"symbackprop {command}: {text}…", file=stream, flush=True)


def write_text(text: str, path: str | None, force: bool = False, ours=None, field: str = "-o") -> None:
    """Print ``text``, or write it to ``path`` atomically; SpecError (naming ``field``) if that
    would clobber a file or if ``path`` is not a regular file."""
    if path is None or path == "-":
        _print(text if text.endswith("\n") else text + "\n")
        return
    shown = printable(path)
    target, info = writable(path, force, ours, field)
    folder = target.parent
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as err:
        raise SpecError(field, f"cannot write in {printable(folder)}: {err.strerror or err}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as out:
            out.write(text)
        # mkstemp makes the file 0600: give it the mode an ordinary new file would have
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, info.st_mode & 0o7777 if info is not None else 0o666 & ~umask)
        os.replace(tmp, target)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise SpecError(field, f"cannot write {shown}: {err.strerror or err}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def writable(path: str, force: bool = False, ours=None, field: str = "-o"):
    """SpecError (naming ``field``) unless :func:`write_text` may write ``path``: a regular file or
    a new one in an existing folder, an existing one only with ``force`` or when ``ours`` knows it.
    Returns the file to replace (a link's target) and its ``os.stat``, None for a new file. A command
    writing two files checks both first, so that a refusal leaves neither written."""
    shown = printable(path)
    info = _stat(path, shown, field)
    if info is not None and not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _KINDS if test(info.st_mode)), "not a regular file")
        raise SpecError(field, f"{shown} is {kind}; {field} writes regular files only "
                               "(use -o - and a redirection to write to anything else)")
    target = Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)
    if info is not None and not force:
        try:
            with open(target, "rb") as old:
                mine = ours is not None and ours(old.read(_SNIFF).decode("utf-8", errors="replace"))
        except OSError:
            mine = False
        if not mine:
            raise SpecError(field, f"{shown} exists; pass --force to overwrite it")
    folder = target.parent
    if not folder.is_dir():
        problem = "does not exist" if not folder.exists() else "is not a directory"
        raise SpecError(field, f"folder {printable(folder)} {problem}")
    return target, info


# what each extension of -o means; a command writes the formats it has
EXTENSIONS = {".txt": "text", ".text": "text", ".md": "markdown", ".markdown": "markdown",
              ".tex": "latex", ".json": "json", ".html": "html", ".htm": "html", ".xml": "moodle"}


def output_format(path: str | None, given: str | None, formats: tuple, default: str, command: str) -> str:
    """The format to write: ``--format`` (``given``) if given, else the one ``-o``'s extension names,
    else ``default``. SpecError (one line, naming -o) for an extension the command cannot write,
    one that contradicts ``--format``, or one that names no format when ``--format`` is not given.

    >>> output_format("d.tex", None, ("text", "latex"), "text", "derive")
    'latex'
    >>> output_format("x.pdf", None, ("markdown", "latex"), "markdown", "explain")
    Traceback (most recent call last):
    ...
    symbackprop.errors.SpecError: -o: explain does not write PDF: write LaTeX (-o x.tex) and compile it with pdflatex
    """
    if path is None or path == "-":
        return given or default
    target = Path(path)
    suffix = target.suffix.lower()
    writes = ", ".join(ext for ext, fmt in EXTENSIONS.items() if fmt in formats)
    if suffix == ".pdf":
        raise SpecError("-o", f"{command} does not write PDF: write LaTeX (-o {target.with_suffix('.tex').name})"
                              " and compile it with pdflatex")
    implied = EXTENSIONS.get(suffix)
    if implied is not None and implied not in formats:
        raise SpecError("-o", f"{command} cannot write {suffix} files (it writes {writes})")
    if given is not None:
        if implied is not None and implied != given:
            raise SpecError("-o", f"{target.name} is a {suffix} file but --format is {given}")
        return given
    if implied is None and suffix:
        raise SpecError("-o", f"{suffix} names no format {command} writes ({writes}); or pass --format")
    return implied or default
def _stat(path: str, shown: str, field: str = "-o"):
    """``os.stat(path)`` (following links), or None if nothing is there yet."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        raise SpecError(field, f"{shown}: a part of the path before the file name is not a directory") from None
    except OSError as err:
        raise SpecError(field, f"cannot use {shown}: {err.strerror or err}") from None


def _print(text: str) -> None:
    """Standard output, whatever its encoding: characters it cannot encode (a file name's
    undecodable bytes) are written as escapes instead of raising."""
    try:
        sys.stdout.write(text)
    except UnicodeEncodeError:
        encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
        sys.stdout.write(text.encode(encoding, errors="backslashreplace").decode(encoding))
