"""Run JavaScript from tests: with node where it is installed, else in headless Chromium.

run_js(sources, main) evaluates the scripts ``sources`` in order, then the expression ``main``, and
returns its value read back as JSON.
"""
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from browser import chromium_binary, chromium_dom


def available() -> bool:
    return bool(shutil.which("node") or chromium_binary())


def run_js(sources: list[str], main: str):
    with tempfile.TemporaryDirectory(prefix="jsrun-") as tmp:
        if shutil.which("node"):
            path = Path(tmp) / "run.js"
            body = "\n;\n".join(sources)
            path.write_text(f"{body}\n;process.stdout.write(JSON.stringify({main}));\n", encoding="utf-8")
            out = subprocess.run(["node", str(path)], capture_output=True, text=True, timeout=120)
            if out.returncode:
                raise RuntimeError(out.stderr[-3000:])
            return json.loads(out.stdout)
        page = Path(tmp) / "run.html"
        scripts = "".join(f"<script>{s.replace('</', '<' + chr(92) + '/')}</script>" for s in sources)
        page.write_text(f'<!DOCTYPE html><html><head><meta charset="utf-8"></head><body><pre id="out"></pre>{scripts}'
                        f'<script>document.getElementById("out").textContent = JSON.stringify({main});</script>'
                        f'</body></html>', encoding="utf-8")
        import html
        found = re.search(r'<pre id="out">(.*?)</pre>', chromium_dom(page), re.S)
        return json.loads(html.unescape(found.group(1)))
