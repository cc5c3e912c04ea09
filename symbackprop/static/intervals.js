// Interval arithmetic for the interactive worksheet: symbackprop/check/intervals.py, rule for rule.
// A written number stands for the interval its digits allow (0.29 -> [0.285, 0.295]); every
// operation rounds its endpoints outwards (one step, as math.nextafter does), so a computed range
// always holds the true one. The worksheet's formulas are printed into calls of these functions by
// symbackprop/exercise/jsprint.py; tests/test_intervals_js.py runs this file against the Python rules.
"use strict";
var I = (function () {
  var INF = Infinity, ERF_ERROR = 1e-13;
  var buf = new DataView(new ArrayBuffer(8));

  function next(x, up) {   // math.nextafter(x, +-inf)
    if (!isFinite(x)) return x;
    if (x === 0) return up ? 5e-324 : -5e-324;
    buf.setFloat64(0, x);
    var bits = buf.getBigInt64(0);
    bits += ((x > 0) === up) ? 1n : -1n;
    buf.setBigInt64(0, bits);
    return buf.getFloat64(0);
  }
  function down(x) { return next(x, false); }
  function up(x) { return next(x, true); }

  function Iv(lo, hi) {
    if (isNaN(lo) || isNaN(hi)) { lo = NaN; hi = NaN; }
    if (lo > hi) throw new RangeError("empty interval [" + lo + ", " + hi + "]");
    this.lo = lo; this.hi = hi;
  }
  var EMPTY = new Iv(NaN, NaN);
  function iv(lo, hi) { return new Iv(lo, hi); }
  function point(x) { return new Iv(x, x); }
  function hull() {
    var lo = INF, hi = -INF;
    for (var i = 0; i < arguments.length; i++) {
      var v = arguments[i];
      if (isNaN(v)) return EMPTY;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    return new Iv(down(lo), up(hi));
  }
  function isEmpty(x) { return isNaN(x.lo); }
  function mid(x) {
    if (x.lo === x.hi) return x.lo;
    if (isFinite(x.lo) && isFinite(x.hi)) return x.lo + (x.hi - x.lo) / 2;
    return isFinite(x.lo) ? x.lo : isFinite(x.hi) ? x.hi : NaN;
  }
  function width(x) { return x.hi - x.lo; }
  function contains(x, v) { return x.lo <= v && v <= x.hi; }
  function intersects(x, y) { return x.lo <= y.hi && y.lo <= x.hi; }
  function intersect(x, y) {   // null where they do not meet
    if (isEmpty(x) || isEmpty(y)) return null;
    var lo = Math.max(x.lo, y.lo), hi = Math.min(x.hi, y.hi);
    return lo <= hi ? new Iv(lo, hi) : null;
  }
  function join(x, y) {
    if (isEmpty(x) || isEmpty(y)) return isEmpty(x) ? y : x;
    return new Iv(Math.min(x.lo, y.lo), Math.max(x.hi, y.hi));
  }
  function widen(x, by) { return new Iv(down(x.lo - by), up(x.hi + by)); }

  // arithmetic ------------------------------------------------------------------------------
  function add(x, y) {
    if (isEmpty(x) || isEmpty(y)) return EMPTY;
    var lo = x.lo + y.lo, hi = x.hi + y.hi;   // NaN only from inf - inf: unbounded
    return new Iv(isNaN(lo) ? -INF : down(lo), isNaN(hi) ? INF : up(hi));
  }
  function neg(x) { return new Iv(-x.hi, -x.lo); }
  function sub(x, y) { return add(x, neg(y)); }
  function mul1(p, q) { return ((p === 0 && !isFinite(q)) || (q === 0 && !isFinite(p))) ? 0 : p * q; }
  function mul(x, y) {
    if (isEmpty(x) || isEmpty(y)) return EMPTY;
    return hull(mul1(x.lo, y.lo), mul1(x.lo, y.hi), mul1(x.hi, y.lo), mul1(x.hi, y.hi));
  }
  function reciprocal(x) {
    if (isEmpty(x) || (x.lo === 0 && x.hi === 0)) return EMPTY;
    if (x.lo > 0 || x.hi < 0) return hull(x.lo ? 1 / x.lo : INF, x.hi ? 1 / x.hi : -INF);
    if (x.lo === 0 && x.hi > 0) return new Iv(down(1 / x.hi), INF);
    if (x.hi === 0 && x.lo < 0) return new Iv(-INF, up(1 / x.lo));
    return new Iv(-INF, INF);
  }
  function div(x, y) { return mul(x, reciprocal(y)); }
  function sum(parts) { var t = parts[0]; for (var i = 1; i < parts.length; i++) t = add(t, parts[i]); return t; }
  function prod(parts) { var t = parts[0]; for (var i = 1; i < parts.length; i++) t = mul(t, parts[i]); return t; }

  function safe(fn, v) {     // Python's math: an overflow is inf, a domain error NaN
    var r = fn(v);
    return (r === INF || r === -INF) && isFinite(v) ? INF : r;
  }
  function monotone(fn, x, increasing) {
    if (isEmpty(x)) return EMPTY;
    var lo = safe(fn, x.lo), hi = safe(fn, x.hi);
    return increasing === false ? hull(hi, lo) : hull(lo, hi);
  }
  function exp(x) { var r = monotone(Math.exp, x); return new Iv(Math.max(r.lo, 0), r.hi); }
  function log(x) {
    if (isEmpty(x) || x.hi < 0) return EMPTY;
    if (x.hi === 0) return new Iv(-INF, -INF);   // log 0 = -inf, as its limit
    var lo = x.lo <= 0 ? -INF : safe(Math.log, x.lo);
    return isFinite(lo) ? hull(lo, safe(Math.log, x.hi)) : new Iv(-INF, up(safe(Math.log, x.hi)));
  }
  function sqrt(x) {
    if (isEmpty(x) || x.hi < 0) return EMPTY;
    var r = monotone(Math.sqrt, new Iv(Math.max(x.lo, 0), x.hi));
    return new Iv(Math.max(r.lo, 0), r.hi);
  }
  function ipow(v, n) { var r = Math.pow(v, n); return (r === INF || r === -INF) && isFinite(v) ? INF : r; }
  function power(x, e) {     // x ** e for a constant e (integer, or real with x >= 0)
    if (isEmpty(x)) return EMPTY;
    if (e === Math.trunc(e)) {
      if (e === 0) return point(1);
      if (e < 0) return reciprocal(power(x, -e));
      if (e === 1) return x;
      var lo = ipow(x.lo, e), hi = ipow(x.hi, e), even = e % 2 === 0;
      if (even && x.lo < 0 && 0 < x.hi) return new Iv(0, up(Math.max(lo, hi)));
      var r = hull(lo, hi);
      return even ? new Iv(Math.max(r.lo, 0), r.hi) : r;
    }
    if (e === 0.5) return sqrt(x);
    if (x.hi < 0) return EMPTY;
    var base = new Iv(Math.max(x.lo, 0), x.hi);
    return monotone(function (v) { return v > 0 ? Math.pow(v, e) : (e > 0 ? 0 : INF); }, base, e > 0);
  }
  function powi(x, e) {      // an interval exponent
    if (e.hi - e.lo === 0) return power(x, e.lo);
    return exp(mul(e, log(x)));
  }
  function clamp1(r) { return new Iv(Math.max(r.lo, -1), Math.min(r.hi, 1)); }
  function tanh(x) { return clamp1(monotone(Math.tanh, x)); }
  function erf(x) {          // erf1 is good to 1e-13, not to a float step: widened by that
    var r = monotone(erf1, x);
    return isEmpty(r) ? r : clamp1(widen(r, ERF_ERROR * Math.max(Math.abs(r.lo), Math.abs(r.hi))));
  }
  function abs(x) {
    if (isEmpty(x)) return EMPTY;
    if (x.lo >= 0) return x;
    if (x.hi <= 0) return neg(x);
    return new Iv(0, Math.max(-x.lo, x.hi));
  }
  function sign(x) {
    if (isEmpty(x)) return EMPTY;
    return new Iv(x.lo < 0 ? -1 : x.lo === 0 ? 0 : 1, x.hi > 0 ? 1 : x.hi === 0 ? 0 : -1);
  }
  function periodic(fn, shift) {   // sin or cos: the endpoint values, and +-1 where a peak lies inside
    return function (x) {
      if (isEmpty(x)) return EMPTY;
      if (x.hi - x.lo >= 2 * Math.PI || !isFinite(x.hi - x.lo)) return new Iv(-1, 1);
      var values = [fn(x.lo), fn(x.hi)];
      for (var k = Math.ceil((x.lo - shift) / (Math.PI / 2)); shift + k * Math.PI / 2 <= x.hi; k++) {
        values.push(fn(shift + k * Math.PI / 2));
      }
      return clamp1(hull.apply(null, values));
    };
  }
  function heaviside(x) { return new Iv(x.lo <= 0 ? 0 : 1, x.hi >= 0 ? 1 : 0); }
  function indicator(x, v) {      // [x = v] of an id (an embedding's row): data, an exact point
    if (x.lo === x.hi) return point(x.lo === v ? 1 : 0);
    return x.lo <= v && v <= x.hi ? new Iv(0, 1) : point(0);
  }
  function minmax(pick, parts) {
    for (var i = 0; i < parts.length; i++) if (isEmpty(parts[i])) return EMPTY;
    return new Iv(pick.apply(null, parts.map(function (p) { return p.lo; })),
                  pick.apply(null, parts.map(function (p) { return p.hi; })));
  }

  // erf, which JavaScript lacks: its series near 0, the continued fraction of erfc beyond
  function erf1(x) {
    if (isNaN(x)) return NaN;
    var a = Math.abs(x), r;
    if (a < 2.5) {
      var term = a, total = a, x2 = a * a;
      for (var n = 1; n < 200 && Math.abs(term) > 1e-17 * Math.abs(total); n++) {
        term *= -x2 / n;
        total += term / (2 * n + 1);
      }
      r = total * 2 / Math.sqrt(Math.PI);
    } else if (a < 27) {
      var f = 0;                           // erfc(a) = exp(-a^2)/sqrt(pi) / (a + 1/2/(a + 1/(a + 3/2/(a + ...))))
      for (var k = 60; k >= 1; k--) f = (k / 2) / (a + f);
      r = 1 - Math.exp(-a * a) / Math.sqrt(Math.PI) / (a + f);
    } else {
      r = 1;
    }
    return x < 0 ? -r : r;
  }

  // conditions: true, false or null (undecided) -----------------------------------------------
  function cmp(op, left, right) {
    var strict = op === "<" || op === ">", small, big;
    if (op === "<" || op === "<=") { small = left; big = right; }
    else if (op === ">" || op === ">=") { small = right; big = left; }
    else return null;
    if (small.hi < big.lo || (!strict && small.hi <= big.lo)) return true;
    if (small.lo > big.hi || (strict && small.lo >= big.hi)) return false;
    return null;
  }
  function all(results) {
    if (results.indexOf(false) >= 0) return false;
    return results.every(function (r) { return r === true; }) ? true : null;
  }
  function any(results) {
    if (results.indexOf(true) >= 0) return true;
    return results.every(function (r) { return r === false; }) ? false : null;
  }
  function not(r) { return r === null ? null : !r; }

  function restrict(env, s, region) {   // env with symbol s cut to region; null if nothing is left
    var cut = intersect(env[s], region);
    if (cut === null) return null;
    var out = env.slice();
    out[s] = cut;
    return out;
  }
  // branches: [value(env), condition(env), region]; region [symbol, lo, hi, lo, hi]: where the
  // condition holds and where it fails, or null
  function piecewise(env, branches) {
    var result = null, rest = env;
    for (var i = 0; i < branches.length; i++) {
      var b = branches[i], region = b[2], decided = b[1](rest);
      if (decided === false) continue;
      var inside = rest;
      if (decided === null && region !== null) inside = restrict(rest, region[0], new Iv(region[1], region[2]));
      var v = inside !== null ? b[0](inside) : null;
      if (v !== null) result = result === null ? v : join(result, v);
      if (decided === true) break;
      if (region === null) continue;
      rest = restrict(rest, region[0], new Iv(region[3], region[4]));
      if (rest === null) break;
    }
    return result !== null ? result : EMPTY;
  }

  // bound: natural extension, tightened by the mean-value form ---------------------------------
  // formula: [natural(env), repeated] with repeated [[symbol, derivative(env) or null], ...]
  function bound(formula, env) {
    var natural = formula[0](env), repeated = formula[1];
    if (isEmpty(natural) || !repeated) return natural;
    var wide = repeated.filter(function (r) { return env[r[0]].hi - env[r[0]].lo > 0; });
    if (!wide.length) return natural;
    var total;
    try {
      var centre = env.slice();
      wide.forEach(function (r) { centre[r[0]] = point(mid(env[r[0]])); });
      total = formula[0](centre);
      wide.forEach(function (r) {
        if (r[1] === null) throw new RangeError("no interval rule");
        total = add(total, mul(r[1](env), sub(env[r[0]], hull(mid(env[r[0]])))));
      });
    } catch (err) {
      if (err instanceof RangeError) return natural;
      throw err;
    }
    return intersect(natural, total) || natural;
  }

  // a written number: the interval its digits allow (check/hand.py's Written.parse) --------------
  var NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/, DIGIT = /\p{Nd}/u, DIGITS = /\p{Nd}/gu;
  function ascii(d) {        // a decimal digit of any script as 0-9, as Python reads it (each script's run 0-9 is consecutive)
    var cp = d.codePointAt(0), start = cp;
    while (DIGIT.test(String.fromCodePoint(start - 1))) start--;
    return String((cp - start) % 10);
  }
  function written(raw) {    // {text, value, interval}, or null for what is not a number
    var text = String(raw).trim().replace(/\u2212/g, "-").replace(DIGITS, ascii);
    if (text.length > 400 || !NUMBER.test(text)) return null;
    var value = Number(text);
    if (!isFinite(value)) return null;
    var parts = text.toLowerCase().split("e"), mantissa = parts[0], exponent = parts.length > 1 ? parseInt(parts[1], 10) : 0;
    if (mantissa.indexOf(".") < 0 && parts.length === 1) return {text: text, value: value, interval: point(value)};
    var digits = mantissa.replace(/^[+-]/, ""), negative = mantissa[0] === "-", dot = digits.indexOf(".");
    var decimals = dot < 0 ? 0 : digits.length - dot - 1;
    var m = BigInt((digits.replace(".", "") || "0")) * 10n;   // value +- half, as 10*digits +- 5, exactly
    var scale = "e" + (exponent - decimals - 1);
    var lo = negative ? -Number((m + 5n) + scale) : Number((m - 5n) + scale);
    var hi = negative ? -Number((m - 5n) + scale) : Number((m + 5n) + scale);
    return {text: text, value: value, interval: hull(lo, hi)};
  }

  return {
    INF: INF, EMPTY: EMPTY, Iv: Iv, iv: iv, point: point, hull: hull, isEmpty: isEmpty, mid: mid, width: width,
    contains: contains, intersects: intersects, intersect: intersect, join: join, widen: widen,
    add: add, neg: neg, sub: sub, mul: mul, reciprocal: reciprocal, div: div, sum: sum, prod: prod,
    power: power, powi: powi, exp: exp, log: log, sqrt: sqrt, tanh: tanh, erf: erf, abs: abs, sign: sign,
    atan: function (x) { return monotone(Math.atan, x); }, asinh: function (x) { return monotone(Math.asinh, x); },
    sin: periodic(Math.sin, 0), cos: periodic(Math.cos, 0), heaviside: heaviside, indicator: indicator,
    max: function (parts) { return minmax(Math.max, parts); }, min: function (parts) { return minmax(Math.min, parts); },
    cmp: cmp, all: all, any: any, not: not, piecewise: piecewise, bound: bound, written: written,
    // a constant: exact where the float is the number, else the float's neighbours around it
    c: point, cw: function (v) { return hull(v); }
  };
})();
if (typeof module !== "undefined") module.exports = I;
