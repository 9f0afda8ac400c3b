// Attention, Executable: accessible names for the kernel-free widgets (book/_ext/reader_pages.py).
// The embed manager renders the widgets after load: a frame slider's images get alt text from
// the tab that names the frame, and slider handles (role=slider) get the slider's description.
(function () {
  "use strict";
  function sectionTitle(el) {
    var section = el.closest("section");
    var heading = section && section.querySelector("h1, h2, h3, h4");
    return heading ? heading.textContent.replace(/#\s*$/, "").trim() : document.title;
  }
  function tabTitles(tab) {
    return Array.prototype.map.call(tab.querySelectorAll(".lm-TabBar-tab"), function (t) {
      return t.textContent.trim();
    });
  }
  function nameImages(root) {
    root.querySelectorAll(".jupyter-widgets img:not([alt])").forEach(function (img) {
      var tab = img.closest(".widget-tab");
      var where = sectionTitle(img);
      var label = "";
      if (tab) {
        var panels = tab.querySelector(".widget-tab-contents");
        var panel = panels && Array.prototype.find.call(panels.children, function (p) { return p.contains(img); });
        var index = panel ? Array.prototype.indexOf.call(panels.children, panel) : -1;
        label = tabTitles(tab)[index] || "";
      }
      img.setAttribute("alt", "Figure of the section \u201c" + where + "\u201d" + (label ? ", frame " + label : ""));
    });
  }
  function nameSliders(root) {
    root.querySelectorAll('.jupyter-widgets [role="slider"]:not([aria-label]):not([aria-labelledby])')
      .forEach(function (handle) {
        var widget = handle.closest(".widget-slider, .jupyter-widgets");
        var label = widget && widget.querySelector(".widget-label");
        var text = label ? label.textContent.trim() : "";
        handle.setAttribute("aria-label", text || "Frame of the figure in \u201c" + sectionTitle(handle) + "\u201d");
      });
  }
  var pending = false;
  function run() {
    pending = false;
    nameImages(document);
    nameSliders(document);
  }
  function schedule() {
    if (!pending) { pending = true; window.requestAnimationFrame(run); }
  }
  function start() {
    run();
    new MutationObserver(schedule).observe(document.body, {childList: true, subtree: true});
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();

// Search snippets are cut from the pages' text, where math is still TeX ("\(\sqrt{d_k}\)"):
// the snippet shows it as plain text ("√d_k") instead.
(function () {
  "use strict";
  var GREEK = {alpha: "α", beta: "β", gamma: "γ", delta: "δ", epsilon: "ε", theta: "θ", lambda: "λ",
    mu: "μ", pi: "π", rho: "ρ", sigma: "σ", tau: "τ", phi: "φ", omega: "ω", Sigma: "Σ", sum: "Σ",
    prod: "Π", infty: "∞", cdot: "·", times: "×", le: "≤", leq: "≤", ge: "≥", geq: "≥", ne: "≠",
    approx: "≈", to: "→", rightarrow: "→", in: "∈", ell: "ℓ", top: "ᵀ", log: "log", exp: "exp"};
  function plainTex(tex) {
    var out = tex;
    for (var i = 0; i < 3; i++) {
      out = out.replace(/\\frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}/g, "($1)/($2)")
        .replace(/\\sqrt\s*\{([^{}]*)\}/g, "√($1)")
        .replace(/\\(?:mathbf|mathrm|mathit|operatorname|text|boldsymbol|mathcal)\s*\{([^{}]*)\}/g, "$1");
    }
    out = out.replace(/\\([A-Za-z]+)/g, function (m, name) { return GREEK[name] !== undefined ? GREEK[name] : ""; })
      .replace(/\\[,;!: ]/g, " ").replace(/[{}]/g, "");
    return out.replace(/\s+/g, " ").trim();
  }
  function plainMath(text) {
    return text.replace(/\\\(([\s\S]*?)\\\)/g, function (m, tex) { return plainTex(tex); })
      .replace(/\\\[([\s\S]*?)\\\]/g, function (m, tex) { return plainTex(tex); })
      .replace(/\$\$([\s\S]*?)\$\$/g, function (m, tex) { return plainTex(tex); });
  }
  window.D2LPlainMath = plainMath;
  function patch() {
    // searchtools.js declares `const Search`: a global binding, not a property of window
    var search = typeof Search !== "undefined" ? Search : null;  // eslint-disable-line no-undef
    if (!search || !search.htmlToText || search.htmlToText._d2l) { return; }
    var original = search.htmlToText;
    search.htmlToText = function (html, anchor) { return plainMath(original(html, anchor)); };
    search.htmlToText._d2l = true;
  }
  patch();
  document.addEventListener("DOMContentLoaded", patch);
})();
