/* Attention, Executable: the practice page (book/practice.md).
 *
 * Cards come from window.D2L_ATTN_PRACTICE, exported at build time from the question appendix
 * (book/_ext/practice.py), and, on request, from the chapters' exercises that answer on the page
 * (window.D2L_ATTN_EXERCISES, checked by D2LExercises.makeChecker from exercises.js: the same
 * rules and messages as on the chapter pages; nothing is evaluated as code).
 *
 * Schedule: Leitner boxes 0 (new) to 5, due again after INTERVALS[box] days (see the page).
 * Progress is kept in localStorage under STORAGE_KEY, versioned; nothing is sent anywhere.
 * Time comes from Date.now() only, so a test can move the clock.
 */
(function (root, factory) {
  "use strict";
  // exercises.js (loaded first on the page; a sibling file under Node) lends its storage and
  // its UMD ending
  var nodeModule = typeof module === "object" && module.exports ? module : null;
  var shared = nodeModule ? require("./exercises.js") : root.D2LExercises;
  shared.expose(root, "D2LPractice", factory(shared), nodeModule);
})(typeof self !== "undefined" ? self : this, function (shared) {
  "use strict";

  var STORAGE_KEY = "d2l-attn:practice";
  var VERSION = 1;
  var INTERVALS = [0, 1, 3, 7, 14, 30];  // days, by box
  var MAX_BOX = INTERVALS.length - 1;
  var RATINGS = [
    {key: "1", name: "again", label: "Again"},
    {key: "2", name: "hard", label: "Hard"},
    {key: "3", name: "good", label: "Good"},
    {key: "4", name: "easy", label: "Easy"},
  ];
  var ROUND_SIZE = 10;

  // ------------------------------------------------------------------------------------------
  // The schedule: pure functions
  // ------------------------------------------------------------------------------------------

  /** The local day number of a time in ms (days change at local midnight). */
  function dayOf(ms) {
    var offset = new Date(ms).getTimezoneOffset() * 60000;
    return Math.floor((ms - offset) / 86400000);
  }

  /** The box and due day after a rating given on `today`. */
  function schedule(entry, rating, today) {
    var box = entry ? entry.box : 0;
    if (rating === "again") { box = 1; }
    else if (rating === "hard") { box = Math.max(1, box); }
    else if (rating === "good") { box = Math.min(MAX_BOX, box + 1); }
    else if (rating === "easy") { box = Math.min(MAX_BOX, box + 2); }
    else { throw new Error("unknown rating " + rating); }
    var due = rating === "again" ? today : today + INTERVALS[box];
    return {box: box, due: due, reviews: (entry ? entry.reviews : 0) + 1, last: today};
  }

  function isDue(entry, today) { return !entry || entry.due <= today; }

  function describe(rating, entry) {
    var next = schedule(entry, rating, 0);
    if (rating === "again") { return "again today"; }
    return "in " + next.due + (next.due === 1 ? " day" : " days");
  }

  // ------------------------------------------------------------------------------------------
  // Storage (versioned; a state of another version is not read)
  // ------------------------------------------------------------------------------------------

  function storeOf(win) {
    return shared.versionedStore(
      win,
      STORAGE_KEY,
      function () { return {version: VERSION, cards: {}}; },
      function (state) { return state.version === VERSION && state.cards && typeof state.cards === "object"; }
    );
  }

  // ------------------------------------------------------------------------------------------
  // The cards
  // ------------------------------------------------------------------------------------------

  function questionCards(data) {
    return data.cards.map(function (c) {
      return {id: c.id, type: "question", set: c.set, chapters: c.chapters, data: c};
    });
  }

  function exerciseCards(exercises, chapters) {
    if (!exercises) { return []; }
    return Object.keys(exercises.exercises).sort().map(function (id) {
      return exercises.exercises[id];
    }).filter(function (ex) {
      return ex.kind !== "code" && chapters[ex.chapter.slice(2)];
    }).map(function (ex) {
      return {id: "ex:" + ex.id, type: "exercise", set: "Exercise", chapters: [ex.chapter.slice(2)], data: ex};
    });
  }

  function el(doc, tag, attrs, children) {
    var node = doc.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") { node.textContent = attrs[name]; }
      else if (name === "html") { node.innerHTML = attrs[name]; }  // build-time HTML from Sphinx only
      else if (name === "className") { node.className = attrs[name]; }
      else { node.setAttribute(name, attrs[name]); }
    });
    (children || []).forEach(function (child) { if (child) { node.appendChild(child); } });
    return node;
  }

  function typeset(win, node) {
    var mj = win.MathJax;
    if (mj && mj.typesetPromise) {
      var go = function () { return mj.typesetPromise([node]).catch(function () { /* shown as TeX */ }); };
      if (mj.startup && mj.startup.promise) { mj.startup.promise.then(go); } else { go(); }
    }
  }

  function shortNumber(x) {
    return Number.isInteger(x) ? String(x) : String(Number(x.toPrecision(4)));
  }

  /** The reference answer of an exercise card, as text, from its exported rules. */
  function exerciseSolution(ex) {
    if (ex.kind === "number") { return shortNumber(ex.number.solution); }
    if (ex.kind === "choice") { return ex.choice.correct.join(", "); }
    var values = ex.tensor.values.map(shortNumber);
    return "shape (" + ex.tensor.shape.join(", ") + "), entries " + values.join(", ");
  }

  // ------------------------------------------------------------------------------------------
  // The page
  // ------------------------------------------------------------------------------------------

  function mount(doc, win, host, data) {
    var store = storeOf(win);
    var state = store.load();
    var checker = win.D2L_ATTN_EXERCISES ? shared.makeChecker(win.D2L_ATTN_EXERCISES) : null;
    var questions = questionCards(data);
    var exercises = checker ? exerciseCards(win.D2L_ATTN_EXERCISES, data.chapters) : [];
    var round = [], current = null, revealed = false, wrongTries = 0;

    function today() { return dayOf(Date.now()); }

    // controls
    var setSelect = el(doc, "select", {id: "d2l-practice-set", className: "d2l-practice-set"},
      [el(doc, "option", {value: "", text: "All sets"})].concat(data.sets.map(function (s) {
        return el(doc, "option", {value: s, text: s});
      })));
    var chapterSelect = el(doc, "select", {id: "d2l-practice-chapter", className: "d2l-practice-chapter"},
      [el(doc, "option", {value: "", text: "All chapters"})].concat(Object.keys(data.chapters).sort().map(function (n) {
        return el(doc, "option", {value: n, text: data.chapters[n].title});
      })));
    var dueBox = el(doc, "input", {type: "checkbox", id: "d2l-practice-due", className: "d2l-practice-due"});
    dueBox.checked = true;
    var exBox = el(doc, "input", {type: "checkbox", id: "d2l-practice-ex", className: "d2l-practice-ex"});
    if (!exercises.length) { exBox.disabled = true; }
    var randomButton = el(doc, "button", {type: "button", className: "d2l-practice-random",
      text: ROUND_SIZE + " random due questions"});
    var allButton = el(doc, "button", {type: "button", className: "d2l-practice-all", text: "All matching cards"});
    var resetButton = el(doc, "button", {type: "button", className: "d2l-practice-reset", text: "Reset progress"});
    var status = el(doc, "p", {className: "d2l-practice-status", role: "status", "aria-live": "polite"});

    function field(label, control) {
      return el(doc, "div", {className: "d2l-practice-field"},
        [el(doc, "label", {"for": control.id, text: label}), control]);
    }
    function check(label, control) {
      return el(doc, "div", {className: "d2l-practice-field d2l-practice-toggle"},
        [control, el(doc, "label", {"for": control.id, text: label})]);
    }
    var controls = el(doc, "fieldset", {className: "d2l-practice-controls"}, [
      el(doc, "legend", {text: "Choose the cards"}),
      field("Question set", setSelect),
      field("Chapter", chapterSelect),
      check("Due only", dueBox),
      check("Add chapter exercises (" + exercises.length + ")", exBox),
      el(doc, "div", {className: "d2l-practice-buttons"}, [randomButton, allButton, resetButton]),
    ]);
    var card = el(doc, "section", {className: "d2l-practice-card", "aria-label": "Practice card", tabindex: "-1"});
    host.textContent = "";
    host.appendChild(controls);
    host.appendChild(status);
    host.appendChild(card);

    function pool() {
      var set = setSelect.value, chapter = chapterSelect.value;
      var cards = questions.concat(exBox.checked ? exercises : []);
      return cards.filter(function (c) {
        // the set filter chooses among the questions; exercises join when asked for
        return (!set || c.set === set || c.type === "exercise") && (!chapter || c.chapters.indexOf(chapter) >= 0);
      });
    }
    function dueOf(cards) {
      var t = today();
      return cards.filter(function (c) { return isDue(state.cards[c.id], t); });
    }
    function updateStatus() {
      var t = today();
      var due = questions.filter(function (c) { return isDue(state.cards[c.id], t); });
      var fresh = due.filter(function (c) { return !state.cards[c.id]; }).length;
      status.setAttribute("data-due", String(due.length));
      status.setAttribute("data-left", String(round.length + (current ? 1 : 0)));
      status.textContent = due.length + " of " + questions.length + " questions due today (" + fresh + " new). " +
        "This round: " + (round.length + (current ? 1 : 0)) + " cards left.";
    }

    function startRound(cards) {
      round = cards.slice();
      next();
    }
    function startFiltered() { startRound(dueBox.checked ? dueOf(pool()) : pool()); }
    function startRandom() {
      var due = dueOf(pool());
      for (var i = due.length - 1; i > 0; i--) {  // Fisher-Yates
        var j = Math.floor(Math.random() * (i + 1)), tmp = due[i];
        due[i] = due[j];
        due[j] = tmp;
      }
      startRound(due.slice(0, ROUND_SIZE));
    }

    function next() {
      current = round.shift() || null;
      revealed = false;
      wrongTries = 0;
      render();
    }

    function rate(rating) {
      if (!current || !revealed) { return; }
      state.cards[current.id] = schedule(state.cards[current.id], rating, today());
      store.save(state);
      if (rating === "again") { round.push(current); }
      next();
      card.focus();
    }

    function reveal() {
      if (!current || revealed) { return; }
      revealed = true;
      render();
      var first = card.querySelector(".d2l-practice-rate button");
      if (first) { first.focus(); }
    }

    function meta(c) {
      var box = state.cards[c.id] ? state.cards[c.id].box : 0;
      var chapter = c.chapters.map(function (n) { return data.chapters[n] ? data.chapters[n].title : n; }).join("; ");
      return el(doc, "p", {className: "d2l-practice-meta",
        text: c.set + (chapter ? " · " + chapter : "") + " · box " + box + (box ? "" : " (new)")});
    }

    function ratingButtons() {
      var entry = state.cards[current.id];
      return el(doc, "div", {className: "d2l-practice-rate", role: "group", "aria-label": "How well did you know it?"},
        RATINGS.map(function (r) {
          var when = describe(r.name, entry);
          // the accessible name is the visible text ("3 Good in 1 day"): no aria-label that could differ
          var b = el(doc, "button", {type: "button", className: "d2l-practice-" + r.name, "data-rating": r.name,
            title: r.label + " (key " + r.key + "): this card comes back " + when, "aria-keyshortcuts": r.key},
            [el(doc, "kbd", {text: r.key}), doc.createTextNode(" " + r.label + " "),
             el(doc, "span", {className: "d2l-practice-when", text: when})]);
          b.addEventListener("click", function () { rate(r.name); });
          return b;
        }));
    }

    function renderQuestion(c) {
      var q = c.data;
      card.appendChild(el(doc, "h2", {className: "d2l-practice-question", html: q.question}));
      card.appendChild(el(doc, "p", {className: "d2l-practice-chinese", lang: "zh-CN", text: q.chinese}));
      if (!revealed) {
        var show = el(doc, "button", {type: "button", className: "d2l-practice-reveal", "aria-keyshortcuts": "Space"},
          [doc.createTextNode("Show the answer "), el(doc, "kbd", {text: "Space"})]);
        show.addEventListener("click", reveal);
        card.appendChild(show);
        return;
      }
      var links = el(doc, "p", {className: "d2l-practice-links"}, [doc.createTextNode("At length: ")]);
      q.links.forEach(function (link, i) {
        if (i) { links.appendChild(doc.createTextNode("; ")); }
        links.appendChild(el(doc, "a", {href: link.href, className: "d2l-practice-link", text: link.text}));
      });
      links.appendChild(doc.createTextNode(" · "));
      links.appendChild(el(doc, "a", {href: q.entry, className: "d2l-practice-entry", text: "the entry in the appendix"}));
      card.appendChild(el(doc, "div", {className: "d2l-practice-answer", "aria-label": "Short answer", role: "region",
        html: q.answer}));
      card.appendChild(links);
      card.appendChild(ratingButtons());
    }

    function renderExercise(c) {
      var ex = c.data, chapter = data.chapters[c.chapters[0]];
      card.appendChild(el(doc, "h2", {className: "d2l-practice-question", text: ex.prompt}));
      var form = el(doc, "form", {className: "d2l-practice-exform"});
      var read;
      if (ex.kind === "choice") {
        var single = ex.choice.correct.length === 1, inputs = [];
        var list = el(doc, "fieldset", {className: "d2l-practice-options"},
          [el(doc, "legend", {text: single ? "Choose one" : "Choose all that apply"})]);
        ex.choice.options.forEach(function (option, i) {
          var id = "d2l-practice-opt-" + i;
          var input = el(doc, "input", {type: single ? "radio" : "checkbox", name: "d2l-practice-opt", id: id,
            value: ex.choice.letters[i]});
          inputs.push(input);
          list.appendChild(el(doc, "div", {}, [input, el(doc, "label", {"for": id,
            text: ex.choice.letters[i] + ") " + option})]));
        });
        form.appendChild(list);
        read = function () { return inputs.filter(function (i) { return i.checked; }).map(function (i) { return i.value; }).join(", "); };
      } else {
        var box = el(doc, "input", {type: "text", className: "d2l-practice-input", id: "d2l-practice-input",
          autocomplete: "off", spellcheck: "false"});
        form.appendChild(el(doc, "label", {"for": box.id, text: ex.kind === "tensor" ? "Your tensor (nested lists)" : "Your answer"}));
        form.appendChild(box);
        read = function () { return box.value; };
      }
      var checkButton = el(doc, "button", {type: "submit", className: "d2l-practice-check", text: "Check"});
      var giveUp = el(doc, "button", {type: "button", className: "d2l-practice-giveup", text: "Show the answer"});
      var out = el(doc, "p", {className: "d2l-practice-feedback", role: "status", "aria-live": "polite"});
      form.appendChild(el(doc, "div", {className: "d2l-practice-buttons"}, [checkButton, giveUp]));
      form.appendChild(out);
      card.appendChild(form);
      if (chapter) {
        card.appendChild(el(doc, "p", {className: "d2l-practice-links"}, [doc.createTextNode("In its chapter: "),
          el(doc, "a", {href: chapter.href + "#exercises", className: "d2l-practice-link", text: chapter.title})]));
      }
      function finish(rating, text) {
        revealed = true;
        out.textContent = text;
        checkButton.disabled = true;
        giveUp.disabled = true;
        var go = el(doc, "button", {type: "button", className: "d2l-practice-next", text: "Next card"});
        go.addEventListener("click", function () { rate(rating); });
        form.parentNode.appendChild(go);
        go.focus();
      }
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        if (revealed) { return; }
        var fb = checker.check(ex.id, read(), wrongTries);
        var said = checker.data.heads[fb.status] + " " + fb.message + (fb.hint ? " Hint: " + fb.hint : "");
        out.setAttribute("data-status", fb.status);
        if (fb.status === "correct") {
          finish(wrongTries ? "hard" : "good", said);
        } else {
          if (fb.status === "wrong") { wrongTries++; }  // as on the chapter pages: unreadable input costs no hint
          out.textContent = said;
        }
      });
      giveUp.addEventListener("click", function () {
        out.setAttribute("data-status", "shown");
        finish("again", "The answer: " + exerciseSolution(ex) + ". " + (ex.explanation || ""));
      });
    }

    function render() {
      card.textContent = "";
      updateStatus();
      if (!current) {
        card.setAttribute("data-card", "");
        card.appendChild(el(doc, "p", {className: "d2l-practice-done",
          text: "No card left in this round. Choose other cards above, or come back when more are due."}));
        return;
      }
      card.setAttribute("data-card", current.id);
      card.setAttribute("data-revealed", revealed ? "true" : "false");
      card.appendChild(meta(current));
      if (current.type === "question") { renderQuestion(current); } else { renderExercise(current); }
      typeset(win, card);
    }

    [setSelect, chapterSelect, dueBox, exBox].forEach(function (control) {
      control.addEventListener("change", startFiltered);
    });
    allButton.addEventListener("click", startFiltered);
    randomButton.addEventListener("click", startRandom);
    resetButton.addEventListener("click", function () {
      store.reset();
      state = store.load();
      startFiltered();
    });
    doc.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey || !current || current.type !== "question") { return; }
      var target = event.target, tag = target && target.tagName;
      if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA" || (target && target.isContentEditable)) { return; }
      if ((event.key === " " || event.key === "Spacebar") && !revealed) {
        if (tag === "BUTTON" || tag === "A") { return; }  // Space activates a focused control itself
        event.preventDefault();
        reveal();
        return;
      }
      var rating = RATINGS.filter(function (r) { return r.key === event.key; })[0];
      if (rating && revealed) {
        event.preventDefault();
        rate(rating.name);
      }
    });
    startFiltered();
    return {state: function () { return state; }, round: function () { return round; }};
  }

  function start(doc, win) {
    var run = function () {
      var host = doc.getElementById("d2l-practice");
      if (host && win.D2L_ATTN_PRACTICE) { win.D2LPractice.page = mount(doc, win, host, win.D2L_ATTN_PRACTICE); }
    };
    if (doc.readyState === "loading") { doc.addEventListener("DOMContentLoaded", run); } else { run(); }
  }

  return {start: start, schedule: schedule, dayOf: dayOf, isDue: isDue, INTERVALS: INTERVALS,
          STORAGE_KEY: STORAGE_KEY, VERSION: VERSION};
});
