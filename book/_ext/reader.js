// Reader layout (book/_ext/reader_layout.py): scroll cues, slider names, Colab links, figure zoom.
(function () {
  "use strict";

  // 1. Scroll containers that overflow get a visible cue (edge shadows and a one-line hint).
  function markScrollers() {
    document.querySelectorAll("div.math, .d2l-table-wrap").forEach(function (el) {
      var wide = el.scrollWidth > el.clientWidth + 1;
      el.classList.toggle("d2l-scrolls", wide);
      if (wide && !el.hasAttribute("tabindex")) {
        el.setAttribute("tabindex", "0"); // reachable by keyboard, scrolls with the arrow keys
      }
      var hint = el.nextElementSibling;
      var hasHint = hint && hint.classList.contains("d2l-scroll-hint");
      if (wide && !hasHint) {
        hint = document.createElement("span");
        hint.className = "d2l-scroll-hint";
        hint.setAttribute("aria-hidden", "true");
        hint.textContent = "\u2194 scroll sideways to see all of it";
        el.insertAdjacentElement("afterend", hint);
      } else if (!wide && hasHint) {
        hint.remove();
      }
    });
  }

  // 2. Slider handles (ipywidgets, role=slider) get their label as name and their readout as value.
  //    A frame slider (d2l_attn.widgets.frame_slider: a slider over the tabs of precomputed
  //    figures) describes the frame it shows: the handle's value text is "label (frame k of n)",
  //    and a line under the figure, a polite live region, says the same when the frame changes
  //    (the frame's image is named after its tab, reader_pages.js).
  function frameText(vbox) {
    var tabs = vbox.querySelectorAll(":scope > .widget-tab .lm-TabBar-tab");
    if (!tabs.length) return "";
    var index = Array.prototype.findIndex.call(tabs, function (t) { return t.classList.contains("lm-mod-current"); });
    if (index < 0) return "";
    return tabs[index].textContent.trim() + " (frame " + (index + 1) + " of " + tabs.length + ")";
  }
  function frameStatus(vbox, text) {
    var status = vbox.nextElementSibling;
    if (!status || !status.classList.contains("d2l-frame-status")) {
      status = document.createElement("p");
      status.className = "d2l-frame-status";
      status.setAttribute("aria-live", "polite");
      vbox.insertAdjacentElement("afterend", status);
    }
    var line = "Showing " + text;
    if (status.textContent !== line) status.textContent = line;
  }
  function nameSliders() {
    document.querySelectorAll(".widget-slider").forEach(function (w) {
      var label = w.querySelector(".widget-label");
      var readout = w.querySelector(".widget-readout");
      var name = (label && label.textContent.trim()) || "choose the figure";
      var vbox = w.parentElement && w.parentElement.classList.contains("widget-vbox") ? w.parentElement : null;
      var frame = vbox ? frameText(vbox) : "";
      if (frame) frameStatus(vbox, frame);
      w.querySelectorAll("[role=slider]").forEach(function (h) {
        if (h.getAttribute("aria-label") !== name) h.setAttribute("aria-label", name);
        var value = frame || (readout ? readout.textContent.trim() : "");
        if (value && h.getAttribute("aria-valuetext") !== value) h.setAttribute("aria-valuetext", value);
      });
    });
  }

  // 3. "Explore it live" links of the live explorers open this chapter in Colab.
  function colabLinks() {
    var meta = document.querySelector('meta[name="d2l-attn-colab"]');
    if (!meta) return;
    document.querySelectorAll("a.d2l-live-colab").forEach(function (a) {
      if (a.href !== meta.content) a.href = meta.content;
    });
  }

  // 4. "Questions this chapter answers" tables: stacked on a phone (reader.css).
  function questionTables() {
    document.querySelectorAll(".admonition").forEach(function (box) {
      var title = box.querySelector(".admonition-title");
      if (!title || title.textContent.trim().indexOf("Questions this chapter answers") !== 0) return;
      box.querySelectorAll("table").forEach(function (t) { t.classList.add("d2l-questions"); });
    });
  }

  // 5. Figures enlarge to their natural size on tap or click; Escape, the button or a tap closes.
  var ZOOMABLE = ".cell_output img, figure img, .jupyter-widgets img";
  function markZoomable() {
    document.querySelectorAll(ZOOMABLE).forEach(function (img) {
      if (img.closest("a") || img.classList.contains("d2l-zoomable")) return;
      img.classList.add("d2l-zoomable");
      if (!img.title) img.title = "Tap or click to enlarge";
    });
  }
  function openZoom(img) {
    var layer = document.createElement("div");
    layer.className = "d2l-zoom";
    layer.setAttribute("role", "dialog");
    layer.setAttribute("aria-modal", "true");
    layer.setAttribute("aria-label", "Enlarged figure");
    var close = document.createElement("button");
    close.type = "button";
    close.textContent = "Close";
    var big = document.createElement("img");
    big.src = img.currentSrc || img.src;
    big.alt = img.alt || "";
    // at least the natural size; frame-slider frames are drawn at 80 dpi (small labels): 1.5x
    var scale = img.closest(".jupyter-widgets") ? 1.5 : 1;
    if (img.naturalWidth) big.style.width = Math.round(img.naturalWidth * scale) + "px";
    layer.appendChild(close);
    layer.appendChild(big);
    function shut() {
      layer.remove();
      document.removeEventListener("keydown", onKey);
      img.focus && img.focus();
    }
    function onKey(e) { if (e.key === "Escape") shut(); }
    layer.addEventListener("click", function (e) { if (e.target !== big) shut(); });
    document.addEventListener("keydown", onKey);
    document.body.appendChild(layer);
    close.focus();
  }
  document.addEventListener("click", function (e) {
    var img = e.target.closest && e.target.closest("img.d2l-zoomable");
    if (img && !img.closest(".d2l-zoom")) openZoom(img);
  });

  var queued = false;
  function update() {
    queued = false;
    markScrollers();
    nameSliders();
    colabLinks();
    questionTables();
    markZoomable();
  }
  function schedule() {
    if (!queued) {
      queued = true;
      window.requestAnimationFrame(update);
    }
  }
  function start() {
    update();
    // widgets and MathJax render after the page loaded: update when they change the page
    new MutationObserver(schedule).observe(document.body, { childList: true, subtree: true, characterData: true });
    window.addEventListener("resize", schedule);
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) MathJax.startup.promise.then(schedule);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
