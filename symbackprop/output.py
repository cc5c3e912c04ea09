"""Writing results: standard output, or a file that is replaced atomically and never clobbered.

An existing file is overwritten only with ``force`` — or when ``ours(old_text)`` says symbackprop
wrote it (generated trainers carry a marker). The text goes to a temporary file in the same folder,
then ``os.replace`` puts it in place, so a crash never leaves a half-written file.
"""
import os
import sys
import tempfile
from pathlib import Path

from .errors import SpecError


def write_text(text: str, path: str | None, force: bool = False, ours=None) -> None:
    """Print ``text``, or write it to ``path`` atomically; SpecError if that would clobber a file."""
    if path is None or path == "-":
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    target = Path(path)
    if target.is_dir():
        raise SpecError("-o", f"{path} is a directory")
    if target.exists() and not force:
        try:
            mine = ours is not None and ours(target.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            mine = False
        if not mine:
            raise SpecError("-o", f"{path} exists; pass --force to overwrite it")
    if not target.parent.exists():
        raise SpecError("-o", f"folder {target.parent} does not exist")
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        # mkstemp makes the file 0600: give it the mode an ordinary new file would have
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, target.stat().st_mode & 0o7777 if target.exists() else 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# what each extension of -o means; a command writes the formats it has
EXTENSIONS = {".txt": "text", ".text": "text", ".md": "markdown", ".markdown": "markdown",
              ".tex": "latex", ".json": "json", ".html": "html", ".htm": "html"}


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
