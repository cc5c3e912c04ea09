// The worksheet page's behaviour: read every box, judge them all (judge.js), show each verdict, keep
// the export link's hand file current. A box's expected value shows only when its "show" is pressed.
"use strict";
(function () {
  var judge = Judge(DATA, FORMULAS);
  var boxes = Array.prototype.slice.call(document.querySelectorAll(".box"));
  var byNode = {}, lastTyped = {};
  boxes.forEach(function (b) { byNode[b.dataset.node] = b; });

  function shown(v) {
    if (isNaN(v)) return "undefined";
    if (!isFinite(v)) return v > 0 ? "inf" : "-inf";
    return String(Number(v.toPrecision(6)));
  }
  function toml(typed) {   // what was typed as a hand file: whole quantities as arrays, else element keys
    var lines = ["# typed into the worksheet: " + document.title.replace(/[\r\n]/g, " "),
                 "# check it: symbackprop check SPEC hand.toml", "", "[values]"];
    document.querySelectorAll(".quantity").forEach(function (q) {
      var cells = Array.prototype.slice.call(q.querySelectorAll(".box"));
      var texts = cells.map(function (b) { return typed[b.dataset.node]; });
      if (!texts.some(function (t) { return t !== undefined; })) return;
      var name = q.dataset.quantity;
      if (texts.every(function (t) { return t !== undefined; })) {
        var shape = JSON.parse(q.dataset.shape), k = 0;
        var nest = function (d) {
          if (d === shape.length) return JSON.stringify(texts[k++]);
          var parts = [];
          for (var i = 0; i < shape[d]; i++) parts.push(nest(d + 1));
          return "[" + parts.join(", ") + "]";
        };
        lines.push(JSON.stringify(name) + " = " + nest(0));
      } else {
        cells.forEach(function (b, i) { if (texts[i] !== undefined) lines.push(JSON.stringify(b.dataset.key) + " = " + JSON.stringify(texts[i])); });
      }
    });
    return lines.join("\n") + "\n";
  }

  function update() {
    var given = {}, typed = {}, invalid = 0;
    boxes.forEach(function (b) {
      var text = b.querySelector("input").value, w = text.trim() ? I.written(text) : null;
      b.classList.remove("ok", "wrong", "carried", "invalid");
      b.querySelector(".verdict").textContent = "";
      b.removeAttribute("data-status");
      b.removeAttribute("data-diagnosis");
      if (!text.trim()) return;
      if (w === null) {
        b.classList.add("invalid");
        b.querySelector(".verdict").textContent = "not a number";
        invalid++;
        return;
      }
      given[b.dataset.node] = w;
      typed[b.dataset.node] = w.text;
    });
    lastTyped = typed;
    var counts = {ok: 0, wrong: 0, carried: 0};
    judge.judge(given).forEach(function (r) {
      var b = byNode[r.node];
      counts[r.status]++;
      b.classList.add(r.status);
      b.dataset.status = r.status;
      if (r.diagnosis !== null) b.dataset.diagnosis = r.diagnosis;
      b.querySelector(".verdict").textContent = r.status + (r.diagnosis ? ": " + r.diagnosis : "");
    });
    document.getElementById("counts").textContent = counts.ok + " ok, " + counts.wrong + " wrong, " +
      counts.carried + " carried, " + (boxes.length - Object.keys(given).length) + " to go" +
      (invalid ? ", " + invalid + " not a number" : "");
    document.getElementById("export").href = "data:application/toml;charset=utf-8," + encodeURIComponent(toml(typed));
  }

  // judging a big page with many wrong numbers takes a while: then wait for a pause in the typing
  var slow = false, pending = null;
  function typed() {
    if (pending !== null) clearTimeout(pending);
    pending = null;
    if (!slow) { var t = Date.now(); update(); slow = Date.now() - t > 60; return; }
    pending = setTimeout(function () { pending = null; var t = Date.now(); update(); slow = Date.now() - t > 60; }, 250);
  }
  boxes.forEach(function (b) {
    b.querySelector("input").addEventListener("input", typed);
    b.querySelector(".show").addEventListener("click", function () {
      b.querySelector(".answer").textContent = "= " + shown(judge.expected(Number(b.dataset.node)));
    });
  });
  window.worksheet = {update: update, toml: function () { return toml(lastTyped); }};
  update();
})();
