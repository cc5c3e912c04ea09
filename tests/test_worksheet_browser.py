"""The interactive worksheet judges every typed number as ``check`` does, in a real (headless) Chromium.

One browser run opens every page (tests/worksheet_cases.py: dense, conv, max- and avg-pool, batch
and layer norm, dropout, residual add, batches and a max-pool tie; the example hand files, every
planted mistake of the check tests, true, rounded and randomly wrong numbers) in turn in a frame,
types each hand's numbers into its boxes, and reads each box's verdict and diagnosis back; each
must equal ``check``'s on the same numbers. The page shows no expected value until "show" is
pressed, and its export is a hand file ``check`` reads back to the same numbers.

CI installs Debian's chromium (.ci/install-chromium.sh); elsewhere the test is skipped when no
chromium is on PATH.
"""
import contextlib
import html
import io
import json
import os
import re
import sys
from collections import Counter

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # tests/ is no package
from browser import chromium_binary, chromium_dom  # noqa: E402

from symbackprop.check.graph import index_text  # noqa: E402
from symbackprop.check.hand import Hand, Written, load_hand  # noqa: E402
from symbackprop.check.judge import check  # noqa: E402
from symbackprop.cli import main  # noqa: E402
from symbackprop.exercise.page import render  # noqa: E402

pytestmark = pytest.mark.skipif(chromium_binary() is None,
                                reason="no chromium on PATH: run bash .ci/install-chromium.sh")

TYPE_ONE_BY_ONE = 30     # hands up to this many numbers are typed number by number, each judged as typed

DRIVER = """<!DOCTYPE html><html><head><meta charset="utf-8"></head><body><pre id="out">running</pre>
<script>
var CASES = %s, results = [];
function run(k) {
  if (k === CASES.length) { document.getElementById("out").textContent = JSON.stringify(results); return; }
  var frame = document.createElement("iframe");
  frame.onload = function () {
    var doc = frame.contentDocument, win = frame.contentWindow, boxes = {}, out = {hands: [], missing: []};
    try {
      doc.querySelectorAll(".box").forEach(function (b) { boxes[b.dataset.key] = b; });
      out.answers = Object.values(boxes).map(function (b) { return b.querySelector(".answer").textContent; }).join("");
      CASES[k].hands.forEach(function (hand, j) {
        Object.values(boxes).forEach(function (b) { b.querySelector("input").value = ""; });
        var keys = Object.keys(hand), one = keys.length <= %d, last = null;
        keys.forEach(function (key) {
          var b = boxes[key];
          if (!b) { out.missing.push(key); return; }
          b.querySelector("input").value = hand[key];
          last = b;
          if (one) b.querySelector("input").dispatchEvent(new win.Event("input"));
        });
        if (!one && last) last.querySelector("input").dispatchEvent(new win.Event("input"));
        win.worksheet.update();      // a big page waits for a pause in the typing: judge now
        var verdicts = {};
        Object.keys(boxes).forEach(function (key) {
          var b = boxes[key];
          if (b.dataset.status) verdicts[key] = [b.dataset.status, b.dataset.diagnosis === undefined ? null : b.dataset.diagnosis];
        });
        out.hands.push(verdicts);
        if (j === 0) {
          out.toml = win.worksheet.toml();
          var first = boxes[keys[0]];
          first.querySelector(".show").click();
          out.shown = [keys[0], first.querySelector(".answer").textContent];
        }
      });
    } catch (err) { out.error = String(err && err.stack || err); }
    results.push(out);
    frame.remove();
    run(k + 1);
  };
  frame.src = CASES[k].page;
  document.body.appendChild(frame);
}
run(0);
</script></body></html>
"""


@pytest.fixture(scope="module")
def sheets():
    from worksheet_cases import sheets
    return sheets()


def _key(name, index) -> str:
    return f"{name}{index_text(index)}"


def test_every_typed_number_is_judged_as_check_judges_it(tmp_path, sheets):
    cases = []
    for k, sheet in enumerate(sheets):
        page = tmp_path / f"page{k}.html"
        page.write_text(render(sheet.network, sheet.asked(), title=sheet.name), encoding="utf-8")
        cases.append({"page": page.name, "hands": [{_key(*key): text for key, text in hand.items()}
                                                   for _, hand in sheet.hands]})
    driver = tmp_path / "driver.html"
    driver.write_text(DRIVER % (json.dumps(cases).replace("</", "<\\/"), TYPE_ONE_BY_ONE), encoding="utf-8")
    dom = chromium_dom(driver, ("--allow-file-access-from-files", "--virtual-time-budget=600000"))
    found = re.search(r'<pre id="out">(.*?)</pre>', dom, re.S)
    assert found and found.group(1) != "running", dom[-2000:]
    results = json.loads(html.unescape(found.group(1)))
    assert len(results) == len(sheets)
    compared, differ, seen = 0, [], Counter()
    for sheet, page in zip(sheets, results):
        assert "error" not in page, (sheet.name, page["error"])
        assert not page["missing"] and page["answers"] == "", sheet.name     # nothing shown unasked
        for (hand_id, hand), verdicts in zip(sheet.hands, page["hands"]):
            written = {key: Written.parse(text, _key(*key)) for key, text in hand.items()}
            results_py = check(sheet.network, Hand(written, {key: _key(*key) for key in written}))
            rows = [r.to_json() for r in results_py]          # what check --format json prints
            if hand_id.startswith("examples/"):               # ... and does print, for the example files
                rows = _cli_json(sheet.spec, hand_id)
            assert [row["label"] for row in rows] == [r.label for r in results_py]
            assert set(verdicts) == {row["label"] for row in rows}, (sheet.name, hand_id)
            for r, row in zip(results_py, rows):
                compared += 1
                seen.update(feature for feature, holds in _features(hand_id, r).items() if holds)
                if verdicts[row["label"]] != [row["status"], row["diagnosis"]]:
                    differ.append((sheet.name, hand_id, row["label"], row["status"], row["diagnosis"], verdicts[row["label"]]))
        _export_reads_back(sheet, page, tmp_path)
    assert not differ, differ[:10]
    assert compared > 4000
    assert set(seen) == set(_features("", None)), seen     # check's subtler rules all came up


def _cli_json(spec: str, hand: str) -> list:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["check", spec, hand, "--format", "json"])
    return json.loads(out.getvalue())


def _features(hand_id, r) -> dict:
    """Which of check's subtler rules a result shows."""
    d = (r.diagnosis or "") if r else ""
    return {"carried": r and r.status == "carried", "a pair of mistakes": ", and " in d,
            "a mistake in an unwritten intermediate": bool(re.search(r"\(in [^)]*\)$", d)) and "used here" not in d,
            "a mistake in a written input as used": "used here" in d, "in every element": "every element" in d,
            "two mistakes fit": " or " in d, "a tie's convention": "at a tie" in d,
            "a broken split at a tie": r and hand_id in ("tie both", "tie double") and r.status == "wrong",
            "wrong, no mistake fits": r and r.status == "wrong" and not d}


def _export_reads_back(sheet, page, tmp_path):
    """The export of the first hand is a hand file check reads to the same numbers; "show" shows
    check's expected value, to 6 digits."""
    path = tmp_path / "exported.toml"
    path.write_text(page["toml"], encoding="utf-8")
    hand = load_hand(path, sheet.network)
    first = sheet.hands[0][1]
    assert {key: w.text for key, w in hand.values.items()} == first, sheet.name
    key, shown = page["shown"]
    expected = {r.label: r.expected for r in check(sheet.network, hand)}[key]
    assert shown.startswith("= ") and float(shown[2:]) == pytest.approx(expected, rel=5e-6, abs=1e-300), (shown, expected)
