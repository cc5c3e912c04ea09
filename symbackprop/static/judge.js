// The worksheet's judge: symbackprop/check/judge.py's statuses and diagnoses, step for step, over the
// data symbackprop/exercise/judging.py generates from check's own graph (DATA: nodes in the order
// of computation, their exact ranges, mistakes and ties; FORMULAS: every local formula as interval
// code). Needs intervals.js (I). Judge(DATA, FORMULAS).judge(given) takes {node number: a written
// number (I.written)} and returns, in check's order of results, {node, status, diagnosis}.
"use strict";
function Judge(DATA, FORMULAS) {
  var SLACK = 1e-9, MAX_MATCHES = 2, TOLERANCE = 1e-9;
  var nodes = DATA.nodes, first = DATA.first, size = first + nodes.length;
  function num(v) { return typeof v === "string" ? Number(v) : v; }
  function iv(pair) { return I.iv(num(pair[0]), num(pair[1])); }
  var exact = nodes.map(function (n) { return iv(n.exact); });
  var leaves = new Array(size);
  DATA.leaves.forEach(function (l) { leaves[l[0]] = I.iv(num(l[1]), num(l[2])); });
  var position = {};          // symbol place -> node number
  nodes.forEach(function (n, i) { position[n.s] = i; });
  var byRank = nodes.map(function (n, i) { return i; }).sort(function (a, b) { return nodes[a].rank - nodes[b].rank; });

  function slack(x) { return I.widen(x, SLACK * Math.max(Math.abs(x.lo), Math.abs(x.hi)) + 1e-300); }
  function same(p, q) {
    return Math.abs(p.lo - q.lo) <= SLACK * Math.abs(p.lo) + 1e-300 && Math.abs(p.hi - q.hi) <= SLACK * Math.abs(p.hi) + 1e-300;
  }
  function family(text) { return text.replace(/\[\d+\]/g, ""); }
  function bound(f, env) { return I.bound(FORMULAS[f], env); }

  // evaluate.py's carried: what a written number stands for downstream
  function carried(mine, derived, ex, written) {
    var cut = I.intersect(mine, derived) || (ex ? I.intersect(mine, ex) : null);
    if (cut === null) return mine;
    if (isFinite(written) && I.contains(mine, written)) cut = I.join(cut, I.point(written));
    return cut;
  }
  // evaluate.py's ranges: each node's range from its inputs, and the values used downstream
  function ranges(given) {
    var env = leaves.slice(), derived = new Array(nodes.length);
    nodes.forEach(function (n, i) {
      derived[i] = bound(n.f, env);
      env[n.s] = given[i] ? carried(given[i].interval, derived[i], exact[i], given[i].value) : derived[i];
    });
    return {derived: derived, env: env};
  }
  // ties.py's broken: the written tied gradients where a valid split first becomes impossible
  function broken(given) {
    var found = {};
    DATA.ties.forEach(function (shares) {
      var low = 0, high = 0, last = null, stopped = false;
      for (var k = 0; k < shares.length; k++) {
        var g = position[shares[k][0]], base = num(shares[k][1]), whole = num(shares[k][2]);
        if (!given[g]) { high += 1; continue; }
        var w = given[g].interval, r = I.intersect(I.hull((w.lo - base) / whole, (w.hi - base) / whole), I.iv(0, 1));
        if (r === null) { stopped = true; break; }
        low += r.lo; high += r.hi; last = g;
        if (low > 1 + TOLERANCE) { found[g] = true; stopped = true; break; }
      }
      if (!stopped && last !== null && high < 1 - TOLERANCE) found[last] = true;
    });
    return found;
  }
  // evaluate.py's scope: the node, the unwritten nodes it was computed through, the written at their edge
  function scope(i, given) {
    var seen = {}, stack = [i], out = [i];
    seen[i] = true;
    while (stack.length) {
      nodes[stack.pop()].in.forEach(function (s) {
        var j = position[s];
        if (j === undefined || seen[j]) return;
        seen[j] = true; out.push(j);
        if (!given[j]) stack.push(j);
      });
    }
    return out.sort(function (a, b) { return a - b; });
  }
  // evaluate.py's replay: i's range had each target of alts been computed by its alternative formula
  function replay(i, alts, sc, given, env) {
    if (alts.has(i)) return bound(alts.get(i), env);
    var local = env.slice(), changed = {}, start = Infinity;
    alts.forEach(function (f, t) { local[nodes[t].s] = bound(f, env); changed[nodes[t].s] = true; start = Math.min(start, sc.indexOf(t)); });
    for (var k = start + 1; k < sc.length; k++) {
      var s = sc[k];
      if (alts.has(s) || (s !== i && given[s])) continue;
      if (nodes[s].in.some(function (x) { return changed[x]; })) {
        var r = bound(nodes[s].f, local);
        if (s === i) return r;
        local[nodes[s].s] = r; changed[nodes[s].s] = true;
      }
    }
    return I.EMPTY;   // i does not depend on the targets
  }
  function where(text, t, i, given) {
    if (t === i) return text;
    var label = DATA.labels[nodes[t].s];
    return given[t] ? text + " (in the " + label + " used here)" : text + " (in " + label + ")";
  }
  // judge.py's diagnose: the catalogued mistakes that reproduce the number, and whether they are pairs
  function diagnose(i, given, env) {
    var mine = slack(given[i].interval), sc = scope(i, given), near = {}, sizes = {};
    near[i] = true;
    nodes[i].in.forEach(function (s) { if (position[s] !== undefined) near[position[s]] = true; });
    sc.forEach(function (t) { sizes[nodes[t].q] = (sizes[nodes[t].q] || 0) + 1; });
    var targets = sc.slice().reverse().filter(function (t) { return nodes[t].m.length || nodes[t].pairs.length; });
    function singles() {
      var out = [], families = new Map();
      targets.forEach(function (t) {
        nodes[t].m.forEach(function (mk) {
          var rank = mk[0], text = mk[1], f = mk[2], generic = mk[3];
          if (!generic && !near[t]) return;
          if (near[t] || sizes[nodes[t].q] === 1) out.push([rank, where(text, t, i, given), new Map([[t, f]])]);
          if (generic) {
            var key = JSON.stringify([nodes[t].q, rank, family(text)]);
            if (!families.has(key)) families.set(key, new Map());
            families.get(key).set(t, f);
          }
        });
      });
      families.forEach(function (alts, key) {
        var k = JSON.parse(key);
        if (alts.size > 1) out.push([k[1], k[2] + " (in every element of " + k[0] + ")", alts]);
      });
      return out;
    }
    function pairs() {
      var out = [];
      targets.forEach(function (t) {
        if (!near[t]) return;
        nodes[t].pairs.forEach(function (p) { out.push([p[0], where(p[1], t, i, given), new Map([[t, p[2]]])]); });
      });
      return out;
    }
    var tries = [singles, pairs];
    for (var k = 0; k < tries.length; k++) {
      var found = [];
      tries[k]().forEach(function (tr) {
        var r = replay(i, tr[2], sc, given, env);
        if (I.intersects(mine, r)) found.push([!tr[2].has(i), tr[0], tr[1], r]);
      });
      if (found.length) {
        found.sort(function (a, b) { return (a[0] - b[0]) || (a[1] - b[1]); });
        return {cands: found, pairs: k === 1};
      }
    }
    return {cands: [], pairs: false};
  }
  // judge.py's _kept: the most specific of the mistakes that reproduce a number
  function kept(found, given) {
    var mine = slack(given), narrowest = found.length ? Math.min.apply(null, found.map(function (f) { return I.width(f[3]); })) : 0;
    var out = [];
    found.forEach(function (f) {
      if (I.width(f[3]) <= 4 * narrowest + I.width(mine) && !out.some(function (k) { return same(f[3], k[3]); })) out.push(f);
    });
    return out;
  }

  function judge(given) {
    var ties = broken(given), r = ranges(given), derived = r.derived, env = r.env;
    if (DATA.override) {        // what none of the person's numbers feeds is the exact value
      var fed = {};
      nodes.forEach(function (n, i) {
        if (given[i]) fed[n.s] = true;
        if (n.in.some(function (s) { return fed[s]; })) fed[n.s] = true;
        else derived[i] = exact[i];
      });
    }
    var status = {}, tainted = {};
    nodes.forEach(function (n, i) {
      var upstream = n.in.some(function (s) { return tainted[s]; });
      if (!given[i]) { tainted[n.s] = upstream; return; }
      var mine = slack(given[i].interval);
      if (ties[i] && I.intersects(mine, exact[i])) status[i] = "wrong";
      else if (I.intersects(mine, exact[i])) status[i] = "ok";
      else if (I.intersects(mine, derived[i])) status[i] = upstream ? "carried" : "ok";
      else status[i] = "wrong";
      tainted[n.s] = status[i] !== "ok";
    });
    var ordered = byRank.filter(function (i) { return given[i]; }), found = {}, fits = {};
    ordered.forEach(function (i) { if (status[i] === "wrong") found[i] = diagnose(i, given, env); });
    Object.keys(found).forEach(function (i) {
      var families = {};
      found[i].cands.forEach(function (c) { families[family(c[2])] = true; });
      Object.keys(families).forEach(function (f) {
        var key = JSON.stringify([nodes[i].q, f]);
        fits[key] = (fits[key] || 0) + 1;
      });
    });
    var seen = {};
    return ordered.map(function (i) {
      var diagnosis = null, n = nodes[i];
      if (found[i]) {
        var fit = function (c) { return fits[JSON.stringify([n.q, family(c[2])])] || 0; };
        var cands = found[i].cands.slice().sort(function (a, b) { return (a[0] - b[0]) || (fit(b) - fit(a)) || (a[1] - b[1]); });
        cands = kept(cands, given[i].interval);
        var mineSeen = cands.filter(function (c) { return seen[c[1]]; }), own = cands.filter(function (c) { return !c[0]; });
        cands = mineSeen.length ? mineSeen : own.length ? own : cands;
        var names = [];
        cands.forEach(function (c) { if (names.indexOf(c[2]) < 0) names.push(c[2]); });
        names = names.slice(0, found[i].pairs ? 1 : MAX_MATCHES);
        if (cands.length) seen[cands[0][1]] = true;
        diagnosis = names.length ? names.join(" or ") : null;
      } else if (n.tie !== null) {
        var m = slack(given[i].interval);
        if (I.intersects(m, exact[i]) && !I.contains(m, num(n.tie))) {
          diagnosis = "at a tie (a window's shared maximum, or a kink) any choice between the sides is right; expected: PyTorch's convention";
        }
      }
      return {node: i, status: status[i], diagnosis: diagnosis};
    });
  }
  return {judge: judge, nodes: nodes, expected: function (i) { return num(nodes[i].expected); }};
}
if (typeof module !== "undefined") module.exports = Judge;
