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
