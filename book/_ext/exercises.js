/* Attention, Executable: the exercises' browser checker.
 *
 * On the static site there is no kernel behind the ipywidgets answer boxes. This script finds
 * each exercise on a chapter page (the HTML marker that d2l_attn.exercises emits: the widget's
 * title line `.d2l-exercise[data-exercise-id]`, or the feedback of a starter cell
 * `.d2l-feedback[data-exercise-id]`), puts a plain HTML answer form in its place and checks
 * answers in the browser: no network, no eval, works from file://.
 *
 * It holds no rule of its own. Tolerances, options, correct sets, hints, limits, the whitespace
 * set and every message come from window.D2L_ATTN_EXERCISES, exported at build time from the
 * exercise definitions (d2l_attn/exercises/web.py). The functions below mirror
 * d2l_attn/exercises/answers.py and core.py line by line; tests/test_exercise_parity.py runs
 * both on the same answers and requires identical verdicts.
 *
 * Progress (solved exercises and the hint level of each) is kept in localStorage, per chapter;
 * nothing is sent anywhere.
 */
(function (root, factory) {
  "use strict";
  var api = factory();
  api.expose(root, "D2LExercises", api, typeof module === "object" && module.exports ? module : null);
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  // ------------------------------------------------------------------------------------------
  // The checker: pure functions of the exported data and the reader's text
  // ------------------------------------------------------------------------------------------

  function makeChecker(data) {
    var WS = new Set(Array.from(data.whitespace));
    var L = data.limits;
    var M = data.messages;
    var WRAPPERS = ["torch.tensor(", "tensor(", "numpy.array(", "np.array(", "array("];

    function AnswerError(message) { this.message = message; }

    function msg(key, fields) {
      fields = fields || {};
      return M[key].replace(/\{(\w+)\}/g, function (_, name) { return String(fields[name]); });
    }
    function fail(key, fields) { return new AnswerError(msg(key, fields)); }

    // text helpers: code points, not UTF-16 units, as in Python
    function len(text) { return Array.from(text).length; }
    function strip(text) {
      var cps = Array.from(text), i = 0, j = cps.length;
      while (i < j && WS.has(cps[i])) { i++; }
      while (j > i && WS.has(cps[j - 1])) { j--; }
      return cps.slice(i, j).join("");
    }
    function echo(text) {
      var s = strip(text), cps = Array.from(s);
      return cps.length <= L.echo_chars ? s : cps.slice(0, L.echo_chars - 3).join("") + "...";
    }
    function asciiLower(text) { return text.replace(/[A-Z]/g, function (c) { return c.toLowerCase(); }); }
    function lstripZeros(s) { return s.replace(/^0+/, ""); }
    function formatShape(shape) {
      return shape.length === 1 ? "(" + shape[0] + ",)" : "(" + shape.join(", ") + ")";
    }

    // numbers (answers.parse_number_text)
    var FRACTION = /^([+-]?)([0-9]+)\/([0-9]+)$/;
    var DECIMAL = /^([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?)([0-9]+))?$/;
    var COMPLEX = /^[+-]?[0-9.eE+-]*[0-9.][ijIJ]$/;

    function parseNumberText(text) {
      if (len(text) > L.number_chars) { throw fail("too_long", {length: len(text), limit: L.number_chars}); }
      var said = echo(text);
      var s = "";
      for (var c of text) {
        if (WS.has(c) || c === "_") { continue; }
        s += c === "\u2212" ? "-" : c;
      }
      if (!s) { throw fail("empty"); }
      var percent = s.endsWith("%");
      if (percent) { s = s.slice(0, -1); }
      var value, m;
      if ((m = FRACTION.exec(s))) {
        if (lstripZeros(m[2]).length > L.fraction_digits || lstripZeros(m[3]).length > L.fraction_digits) {
          throw fail("fraction_digits", {limit: L.fraction_digits});
        }
        if (Number(m[3]) === 0) { throw fail("zero_division", {answer: said}); }
        value = Number(m[2]) / Number(m[3]);  // exact operands (< 2^53), one rounding
        if (m[1] === "-") { value = -value; }
      } else if ((m = DECIMAL.exec(s)) && (m[2] || m[3])) {
        var exp = lstripZeros(m[5] || "0") || "0";
        if (exp.length > L.exponent_digits) { throw fail("exponent", {answer: said, limit: L.exponent_digits}); }
        value = Number(m[1] + (m[2] || "0") + "." + (m[3] || "0") + "e" + (m[4] || "") + exp);
      } else if (COMPLEX.test(s)) {
        throw fail("complex", {answer: said});
      } else {
        throw fail("not_a_number", {answer: said});
      }
      if (percent) { value = value / 100; }
      if (!Number.isFinite(value)) { throw fail("overflow", {answer: said}); }
      return value;
    }

    function isclose(a, b, rtol, atol) {  // math.isclose
      if (a === b) { return true; }
      if (!Number.isFinite(a) || !Number.isFinite(b)) { return false; }
      var diff = Math.abs(b - a);
      return diff <= Math.abs(rtol * b) || diff <= Math.abs(rtol * a) || diff <= atol;
    }

    // choices (answers.option_key, answers.split_choice_text, ChoiceExercise._normalize)
    function optionKey(text) { return asciiLower(strip(text)); }
    function splitChoiceText(text) {
      var parts = [], current = "";
      for (var c of asciiLower(text)) {
        if (c === "(" || c === ")") { continue; }
        if (WS.has(c) || c === "," || c === ";") {
          if (current) { parts.push(current); }
          current = "";
        } else {
          current += c;
        }
      }
      if (current) { parts.push(current); }
      return parts;
    }
    function normalizeChoice(rules, text) {
      if (len(text) > L.choice_chars) { throw fail("too_long", {length: len(text), limit: L.choice_chars}); }
      var letters = rules.letters;
      var index = rules.keys.lastIndexOf(optionKey(text));  // Python's dict keeps the last
      if (index >= 0) { return [letters[index]]; }
      var parts = splitChoiceText(text);
      var unknown = [];
      parts.forEach(function (p) {
        if (letters.indexOf(p) < 0 && unknown.indexOf(p) < 0) { unknown.push(p); }
      });
      if (unknown.length) {
        throw fail("choice_unknown", {unknown: echo(unknown.join(", ")), letters: letters.join(", ")});
      }
      if (!parts.length) { throw fail("choice_empty"); }
      return Array.from(new Set(parts)).sort();
    }
    function checkChoice(rules, text) {
      var chosen = normalizeChoice(rules, text), correct = rules.correct;
      if (correct.length === 1 && chosen.length > 1) { throw fail("choice_one"); }
      if (chosen.join(",") === correct.join(",")) { return ["correct", msg("choice_right", {chosen: chosen.join(", ")})]; }
      if (correct.length === 1) { return ["wrong", msg("choice_wrong_one")]; }
      if (chosen.length !== correct.length) {
        return ["wrong", msg("choice_wrong_count", {chosen: chosen.length, correct: correct.length})];
      }
      return ["wrong", msg("choice_wrong_set", {correct: correct.length})];
    }

    // small tensors (answers.parse_tensor_text, TensorExercise._check)
    function tokens(text) {
      var out = [], current = "";
      for (var c of text) {
        if (c === "[" || c === "]" || c === ",") {
          if (current) { out.push(current); }
          current = "";
          out.push(c);
        } else if (WS.has(c)) {
          if (current) { out.push(current); }
          current = "";
        } else {
          current += c;
        }
      }
      if (current) { out.push(current); }
      return out;
    }
    function parseTensorText(text) {
      if (len(text) > L.tensor_chars) { throw fail("too_long", {length: len(text), limit: L.tensor_chars}); }
      var s = strip(text);
      if (!s) { throw fail("tensor_empty"); }
      for (var i = 0; i < WRAPPERS.length; i++) {
        if (s.startsWith(WRAPPERS[i]) && s.endsWith(")")) {
          s = strip(s.slice(WRAPPERS[i].length, -1));
          break;
        }
      }
      var toks = tokens(s), values = [], pos = 0;
      var tooBig = function () { return fail("tensor_too_big", {limit: L.tensor_entries, depth: L.tensor_depth}); };

      function value(depth) {
        if (depth > L.tensor_depth) { throw tooBig(); }
        if (pos >= toks.length) { throw fail("tensor_syntax"); }
        var token = toks[pos];
        pos += 1;
        if (token === "]" || token === ",") { throw fail("tensor_syntax"); }
        if (token !== "[") {
          if (values.length >= L.tensor_entries) { throw tooBig(); }
          try {
            values.push(parseNumberText(token));
          } catch (e) {
            if (e instanceof AnswerError) { throw fail("tensor_entry", {index: values.length + 1, message: e.message}); }
            throw e;
          }
          return [];
        }
        var shapes = [], afterComma = true;
        for (;;) {
          if (pos >= toks.length) { throw fail("tensor_syntax"); }
          token = toks[pos];
          if (token === "]") { pos += 1; break; }
          if (token === ",") {
            if (afterComma) { throw fail("tensor_syntax"); }
            afterComma = true;
            pos += 1;
            continue;
          }
          shapes.push(value(depth + 1));
          afterComma = false;
        }
        for (var k = 1; k < shapes.length; k++) {
          if (shapes[k].join(",") !== shapes[0].join(",") || shapes[k].length !== shapes[0].length) {
            throw fail("tensor_ragged");
          }
        }
        return [shapes.length].concat(shapes.length ? shapes[0] : []);
      }

      var shape = value(1);
      if (pos !== toks.length) { throw fail("tensor_syntax"); }
      return {shape: shape, values: values};
    }
    function checkTensor(rules, text) {
      var parsed = parseTensorText(text), expected = rules.values;
      if (parsed.shape.join(",") !== rules.shape.join(",") || parsed.shape.length !== rules.shape.length) {
        return ["wrong", msg("tensor_shape", {expected: formatShape(rules.shape), got: formatShape(parsed.shape)})];
      }
      if (!parsed.values.every(Number.isFinite)) { return ["wrong", msg("tensor_nonfinite")]; }
      var bad = 0;
      for (var i = 0; i < expected.length; i++) {
        if (!(Math.abs(parsed.values[i] - expected[i]) <= rules.atol + rules.rtol * Math.abs(expected[i]))) { bad++; }
      }
      if (bad === 0) { return ["correct", msg("tensor_right", {total: parsed.values.length})]; }
      return ["wrong", msg("tensor_wrong", {bad: bad, total: parsed.values.length})];
    }

    function checkNumber(rules, text) {
      var value = parseNumberText(text), shown = echo(text);
      if (isclose(value, rules.solution, rules.rtol, rules.atol)) { return ["correct", msg("number_right", {answer: shown})]; }
      return ["wrong", msg("number_wrong", {answer: shown})];
    }

    /** Exercise.evaluate: {status: correct|wrong|invalid, message}. */
    function evaluate(exercise, text) {
      var result;
      try {
        if (exercise.kind === "number") { result = checkNumber(exercise.number, text); }
        else if (exercise.kind === "choice") { result = checkChoice(exercise.choice, text); }
        else if (exercise.kind === "tensor") { result = checkTensor(exercise.tensor, text); }
        else { throw new Error("exercise " + exercise.id + " is answered in code"); }
      } catch (e) {
        if (e instanceof AnswerError) { return {status: "invalid", message: e.message}; }
        throw e;
      }
      return {status: result[0], message: result[1]};
    }

    /** Exercise.hint_for: the hint after `wrongBefore` wrong answers (the last one repeats). */
    function hintFor(exercise, wrongBefore) {
      var hints = exercise.hints || [];
      return hints.length ? hints[Math.min(wrongBefore, hints.length - 1)] : null;
    }

    /** Exercise.feedback: the explanation when correct, the next hint when wrong. */
    function feedback(exercise, verdict, wrongBefore) {
      if (verdict.status === "correct") {
        var text = verdict.message + (exercise.explanation ? " " + exercise.explanation : "");
        return {status: "correct", passed: true, message: text, hint: null};
      }
      return {status: verdict.status, passed: false, message: verdict.message,
              hint: verdict.status === "wrong" ? hintFor(exercise, wrongBefore) : null};
    }

    return {
      data: data, evaluate: evaluate, feedback: feedback, hintFor: hintFor,
      parseNumberText: parseNumberText, parseTensorText: parseTensorText, formatShape: formatShape,
      byId: function (id) { return data.exercises[id]; },
      /** evaluate + feedback by id (used by the parity tests). */
      check: function (id, text, wrongBefore) {
        var exercise = data.exercises[id];
        return feedback(exercise, evaluate(exercise, text), wrongBefore || 0);
      },
    };
  }

  // ------------------------------------------------------------------------------------------
  // The page: answer forms, feedback, progress
  // ------------------------------------------------------------------------------------------

  var STORAGE_PREFIX = "d2l-attn:exercises:";

  /** A state kept in localStorage under `key` (in memory where storage is off, e.g. some
   *  file:// or private windows): load() returns the stored state if isValid(state), else
   *  empty(); save(state); reset(). Shared with the practice page (practice.js). */
  function versionedStore(win, key, empty, isValid) {
    var memory = null, persistent = true;
    try {
      win.localStorage.setItem(key + ":probe", "1");
      win.localStorage.removeItem(key + ":probe");
    } catch (e) {
      persistent = false;
    }
    return {
      persistent: persistent,
      load: function () {
        if (!persistent) { return memory || empty(); }
        try {
          var state = JSON.parse(win.localStorage.getItem(key) || "null");
          if (state && typeof state === "object" && isValid(state)) { return state; }
        } catch (e) { /* unreadable: start afresh */ }
        return empty();
      },
      save: function (state) {
        if (!persistent) { memory = state; return; }
        try { win.localStorage.setItem(key, JSON.stringify(state)); } catch (e) { memory = state; }
      },
      reset: function () {
        memory = null;
        if (persistent) { try { win.localStorage.removeItem(key); } catch (e) { /* ignore */ } }
      },
    };
  }

  function storeFor(win, chapter) {
    return versionedStore(
      win,
      STORAGE_PREFIX + chapter,
      function () { return {version: 1, solved: {}, wrong: {}}; },
      function (state) { return state.version === 1 && state.solved && state.wrong; }
    );
  }

  /** The UMD ending of this script and practice.js: `api` becomes module.exports under Node
   *  (the tests), else window[name], started on the page. */
  function expose(root, name, api, nodeModule) {
    if (nodeModule) {
      nodeModule.exports = api;
    } else {
      root[name] = api;
      if (typeof document !== "undefined") { api.start(document, root); }
    }
    return api;
  }

  function el(doc, tag, attrs, children) {
    var node = doc.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") { node.textContent = attrs[name]; }
      else if (name === "className") { node.className = attrs[name]; }
      else { node.setAttribute(name, attrs[name]); }
    });
    (children || []).forEach(function (child) { if (child) { node.appendChild(child); } });
    return node;
  }

  /** The page's Colab URL, used as a link: only an https:// URL (never javascript: or data:). */
  function colabLink(doc) {
    var meta = doc.querySelector('meta[name="d2l-attn-colab"]');
    var launch = doc.querySelector('a[href*="colab.research.google.com"]');
    var url = meta && meta.getAttribute("content") ? meta.getAttribute("content") : (launch ? launch.getAttribute("href") : null);
    return url && /^https:\/\//i.test(url.trim()) ? url.trim() : null;
  }

  /** Find the exercises on the page: the first visible marker of each id (not in a folded solution). */
  function findMarkers(doc, data) {
    var found = {}, order = [];
    doc.querySelectorAll(".d2l-exercise[data-exercise-id], .d2l-feedback[data-exercise-id]").forEach(function (marker) {
      var id = marker.getAttribute("data-exercise-id");
      if (!data.exercises[id] || found[id] || marker.closest("details")) { return; }
      found[id] = marker;
      order.push(id);
    });
    return order.map(function (id) { return {id: id, marker: found[id]}; });
  }

  function mount(doc, win, data) {
    var checker = makeChecker(data);
    var markers = findMarkers(doc, data);
    if (!markers.length) { return null; }
    var chapter = markers[0].id.slice(0, 4);
    var store = storeFor(win, chapter);
    var state = store.load();
    var colab = colabLink(doc);
    var views = [];

    var progress = buildProgress(doc, store, function () {
      store.reset();
      state = store.load();
      views.forEach(function (view) { view.reset(); });
      refresh();
    });
    var section = doc.getElementById("exercises");
    var heading = section && section.querySelector("h2");
    if (heading) { heading.insertAdjacentElement("afterend", progress.node); }
    else { markers[0].marker.insertAdjacentElement("beforebegin", progress.node); }

    function refresh() {
      var checkable = views.filter(function (v) { return v.checkable; });
      var solved = checkable.filter(function (v) { return state.solved[v.id]; }).length;
      progress.update(solved, checkable.length, views.length - checkable.length);
    }

    markers.forEach(function (item) {
      var exercise = data.exercises[item.id];
      var view = buildExercise(doc, checker, exercise, colab, {
        solved: function () { return !!state.solved[exercise.id]; },
        wrong: function () { return state.wrong[exercise.id] || 0; },
        record: function (verdict) {
          if (verdict.status === "correct") { state.solved[exercise.id] = true; }
          if (verdict.status === "wrong") { state.wrong[exercise.id] = (state.wrong[exercise.id] || 0) + 1; }
          store.save(state);
          refresh();
        },
      });
      var output = item.marker.closest(".output") || item.marker;
      var host = item.marker.closest(".cell_output");
      if (host) { host.classList.add("d2l-ex-host"); }
      output.classList.add("d2l-ex-replaced");
      output.insertAdjacentElement("afterend", view.node);
      views.push(view);
    });
    refresh();
    return {checker: checker, chapter: chapter, views: views};
  }

  function buildProgress(doc, store, onReset) {
    var count = el(doc, "span", {className: "d2l-progress-count"});
    var reset = el(doc, "button", {type: "button", className: "d2l-progress-reset", text: "Reset progress"});
    var note = el(doc, "span", {className: "d2l-progress-note", text: store.persistent
      ? "Kept in this browser only (localStorage); nothing is sent anywhere."
      : "This browser does not let the page keep progress: it is lost when you leave."});
    var node = el(doc, "div", {className: "d2l-progress", role: "status"}, [count, reset, note]);
    reset.addEventListener("click", onReset);
    return {
      node: node,
      update: function (solved, total, code) {
        node.setAttribute("data-solved", String(solved));
        node.setAttribute("data-total", String(total));
        count.textContent = "Solved " + solved + " of " + total + " exercises on this page" +
          (code ? " (+ " + code + " code exercise" + (code > 1 ? "s" : "") + " to run in a notebook)." : ".");
      },
    };
  }

  function buildExercise(doc, checker, exercise, colab, progress) {
    var id = exercise.id;
    var badge = el(doc, "span", {className: "d2l-ex-badge", text: "\u2714 Solved"});
    var title = el(doc, "div", {className: "d2l-ex-title"}, [el(doc, "code", {text: id}), badge]);
    var node = el(doc, "div", {className: "d2l-ex d2l-ex-" + exercise.kind, "data-exercise-id": id}, [title]);

    if (exercise.kind === "code") {
      var link = colab
        ? el(doc, "a", {href: colab, target: "_blank", rel: "noopener", className: "d2l-ex-colab", text: "Open this chapter in Colab"})
        : null;
      node.appendChild(el(doc, "p", {className: "d2l-ex-code-note"}, [
        doc.createTextNode("This exercise is answered in code: it needs a running notebook, where check(\u2026) runs it. "),
        link,
        doc.createTextNode(link ? " (or run the notebook locally)." : ""),
      ]));
      return {id: id, node: node, checkable: false, reset: function () {}};
    }

    var read, clear, control;
    if (exercise.kind === "choice") {
      var rules = exercise.choice, multi = rules.correct.length > 1, inputs = [];
      var legend = el(doc, "legend", {text: multi ? "Choose all that apply:" : "Choose one:"});
      control = el(doc, "fieldset", {className: "d2l-ex-options"}, [legend]);
      rules.options.forEach(function (option, i) {
        var input = el(doc, "input", {type: multi ? "checkbox" : "radio", name: "d2l-ex-" + id, value: rules.letters[i]});
        inputs.push(input);
        control.appendChild(el(doc, "label", {className: "d2l-ex-option"},
          [input, doc.createTextNode(" (" + rules.letters[i] + ") " + option)]));
      });
      read = function () {
        return inputs.filter(function (i) { return i.checked; }).map(function (i) { return i.value; }).join(", ");
      };
      clear = function () { inputs.forEach(function (i) { i.checked = false; }); };
    } else {
      var tensor = exercise.kind === "tensor";
      var box = el(doc, tensor ? "textarea" : "input", tensor
        ? {rows: "2", spellcheck: "false", "aria-label": "Your answer",
           placeholder: "nested lists, shape " + checker.formatShape(exercise.tensor.shape) + ", e.g. [[0.1, 0.2], [0.3, 0.4]]"}
        : {type: "text", inputmode: "decimal", autocomplete: "off", spellcheck: "false", "aria-label": "Your answer",
           placeholder: "a number, e.g. 0.25, 1/4 or 2.5e-1"});
      box.className = "d2l-ex-input";
      box.addEventListener("keydown", function (event) {
        if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); run(); }
      });
      control = el(doc, "label", {className: "d2l-ex-answer"}, [doc.createTextNode("Answer: "), box]);
      read = function () { return box.value; };
      clear = function () { box.value = ""; };
    }
    var button = el(doc, "button", {type: "button", className: "d2l-ex-check", text: "Check"});
    var out = el(doc, "div", {className: "d2l-ex-feedback", role: "status", "aria-live": "polite"});
    node.appendChild(el(doc, "form", {className: "d2l-ex-form", autocomplete: "off"}, [control, button]));
    node.appendChild(out);
    button.addEventListener("click", run);
    node.querySelector("form").addEventListener("submit", function (event) { event.preventDefault(); run(); });

    function show(result) {
      out.textContent = "";
      out.setAttribute("data-status", result.status);
      out.appendChild(el(doc, "strong", {className: "d2l-ex-head", text: (result.passed ? "\u2714 " : "\u2718 ") + checker.data.heads[result.status]}));
      out.appendChild(doc.createTextNode(" " + result.message));
      if (result.hint) {
        out.appendChild(el(doc, "div", {className: "d2l-ex-hint"}, [el(doc, "strong", {text: "Hint: "}), doc.createTextNode(result.hint)]));
      }
    }
    function run() {
      var verdict = checker.evaluate(exercise, read());
      var result = checker.feedback(exercise, verdict, progress.wrong());
      progress.record(verdict);
      show(result);
      sync();
    }
    function sync() { node.setAttribute("data-solved", progress.solved() ? "true" : "false"); }
    sync();
    if (progress.solved()) {
      out.setAttribute("data-status", "solved-earlier");
      out.textContent = "You solved this exercise earlier (in this browser).";
    }
    return {
      id: id, node: node, checkable: true,
      reset: function () { clear(); out.textContent = ""; out.removeAttribute("data-status"); sync(); },
    };
  }

  function start(doc, win) {
    var run = function () {
      var data = win.D2L_ATTN_EXERCISES;
      if (!data || data.version !== 1) { return; }
      win.D2LExercises.page = mount(doc, win, data);
    };
    if (doc.readyState === "loading") { doc.addEventListener("DOMContentLoaded", run); } else { run(); }
  }

  return {makeChecker: makeChecker, start: start, colabLink: colabLink, STORAGE_PREFIX: STORAGE_PREFIX,
          versionedStore: versionedStore, expose: expose};
});
