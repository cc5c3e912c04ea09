"""Drive Debian's headless Chromium from tests, with no Python dependency.

chromium_dom(path) gives the DOM after the page's scripts ran;
chromium_screenshot(path, png) saves a 1200x900 screenshot.
Both raise FileNotFoundError when no chromium binary is on PATH.
"""

import pathlib
import shutil
import subprocess
import tempfile

# Flags that keep Chromium from reaching the network or a display: tests run
# offline, as root (hence --no-sandbox), on machines without a GPU.
_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
    "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
    # Scripts run in virtual time, so the DOM/screenshot is taken after them.
    "--virtual-time-budget=5000",
]


def chromium_binary() -> str | None:
    return shutil.which("chromium")


def _run(html_path, extra: list[str]) -> str:
    binary = chromium_binary()
    if binary is None:
        raise FileNotFoundError("no chromium on PATH (bash .ci/install-chromium.sh)")
    url = pathlib.Path(html_path).resolve().as_uri()
    # A fresh profile each run: no state leaks between tests.
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        proc = subprocess.run(
            [binary, *_FLAGS, f"--user-data-dir={profile}", *extra, url],
            capture_output=True, text=True, timeout=120,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"chromium exited {proc.returncode}: {proc.stderr[-2000:]}")
    return proc.stdout


def chromium_dom(html_path, extra: tuple = ()) -> str:
    """The serialized DOM of the page at html_path after its scripts ran (``extra``: more flags,
    e.g. a longer --virtual-time-budget, which overrides the one above)."""
    return _run(html_path, ["--dump-dom", *extra])


def chromium_screenshot(html_path, png_path, size: str = "1200,900") -> None:
    """Save a PNG screenshot of the page at html_path to png_path."""
    png_path = pathlib.Path(png_path).resolve()
    _run(html_path, [f"--screenshot={png_path}", f"--window-size={size}"])
    if not png_path.exists():
        raise RuntimeError(f"chromium wrote no screenshot to {png_path}")
