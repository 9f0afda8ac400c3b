/* The attention view of d2l_attn.attention_view (no dependencies, no network).
 *
 * mount(id) finds <div id=id> with its JSON payload {keys, queries, layers, heads, scale,
 * weights[L][h][T_q][T_k] (integers, weight * scale)} and draws queries (left) and keys (right)
 * joined by lines whose opacity is the weight. Hover, focus or click a query to see its row;
 * the readout lists its largest weights (ties: the earlier key first).
 */
window.D2LAttentionView = (function () {
  "use strict";
  var ROW = 22; // px per token, as .d2l-av-tok's height in attention_view.css
  var WIDTH = 140; // px between the columns, as the grid's middle column
  var SVG = "http://www.w3.org/2000/svg"; // a namespace name, not a request
  var TOP = 3; // weights listed in the readout

  function make(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /* The weights of one query under the chosen layer and head ("mean": mean over heads). */
  function row(data, layer, head, i) {
    var maps = data.weights[layer], n = data.keys.length, out = new Array(n), j, k;
    if (head !== "mean") {
      for (j = 0; j < n; j++) out[j] = maps[head][i][j] / data.scale;
      return out;
    }
    for (j = 0; j < n; j++) {
      var sum = 0;
      for (k = 0; k < data.heads; k++) sum += maps[k][i][j];
      out[j] = sum / data.scale / data.heads;
    }
    return out;
  }

  /* Key indices by decreasing weight; sort is stable, so ties keep the earlier key first. */
  function ranked(weights) {
    return weights.map(function (_, j) { return j; }).sort(function (a, b) { return weights[b] - weights[a]; });
  }

  function mount(id) {
    var root = document.getElementById(id);
    if (!root || root.getAttribute("data-mounted") === "true") return;
    var data = JSON.parse(root.querySelector(".d2l-av-data").textContent);
    var state = { layer: 0, head: "mean", pinned: -1, hover: -1, focus: -1 };
    var nojs = root.querySelector(".d2l-av-nojs");
    if (nojs) nojs.remove();

    var controls = make("div", "d2l-av-controls");
    function selector(label, cls, options) {
      var wrap = make("label", null, label + " ");
      var select = make("select", cls);
      options.forEach(function (o) {
        var option = make("option", null, o[1]);
        option.value = String(o[0]);
        select.appendChild(option);
      });
      wrap.appendChild(select);
      controls.appendChild(wrap);
      return select;
    }
    var layerSelect = selector("Layer", "d2l-av-layer", data.layers.map(function (name, l) { return [l, name]; }));
    var headOptions = [["mean", "all heads (mean)"]];
    for (var h = 0; h < data.heads; h++) headOptions.push([h, "head " + (h + 1)]);
    var headSelect = selector("Head", "d2l-av-head", headOptions);

    var body = make("div", "d2l-av-body");
    var left = make("div", "d2l-av-col d2l-av-queries");
    left.setAttribute("role", "group");
    left.setAttribute("aria-label", "queries");
    var right = make("div", "d2l-av-col d2l-av-keys");
    right.setAttribute("aria-hidden", "true"); // the readout says the same in words
    var rows = Math.max(data.queries.length, data.keys.length);
    var svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("class", "d2l-av-lines");
    svg.setAttribute("width", WIDTH);
    svg.setAttribute("height", rows * ROW);
    svg.setAttribute("aria-hidden", "true");
    var queryNodes = data.queries.map(function (token, i) {
      var b = make("button", "d2l-av-tok d2l-av-q", token);
      b.type = "button";
      b.title = token;
      b.setAttribute("data-index", i);
      b.setAttribute("aria-pressed", "false");
      b.setAttribute("aria-label", "query " + (i + 1) + " of " + data.queries.length + ": " + token);
      left.appendChild(b);
      return b;
    });
    var keyNodes = data.keys.map(function (token, j) {
      var s = make("span", "d2l-av-tok d2l-av-k", token);
      s.setAttribute("data-index", j);
      right.appendChild(s);
      return s;
    });
    body.appendChild(left);
    body.appendChild(svg);
    body.appendChild(right);
    var readout = make("p", "d2l-av-readout");
    readout.setAttribute("aria-live", "polite");
    root.appendChild(controls);
    root.appendChild(body);
    root.appendChild(readout);

    function shown() {
      return state.hover >= 0 ? state.hover : state.focus >= 0 ? state.focus : state.pinned;
    }

    function line(i, j, w) {
      var l = document.createElementNS(SVG, "line");
      l.setAttribute("x1", 0);
      l.setAttribute("y1", (i + 0.5) * ROW);
      l.setAttribute("x2", WIDTH);
      l.setAttribute("y2", (j + 0.5) * ROW);
      l.setAttribute("stroke-opacity", w.toFixed(3));
      svg.appendChild(l);
    }

    function render() {
      var q = shown(), where = data.layers[state.layer] + ", " +
        (state.head === "mean" ? "all heads (mean)" : "head " + (state.head + 1));
      while (svg.firstChild) svg.removeChild(svg.firstChild);
      queryNodes.forEach(function (b, i) {
        b.classList.toggle("d2l-av-shown", i === q);
        b.setAttribute("aria-pressed", i === state.pinned ? "true" : "false");
      });
      if (q < 0) {
        for (var i = 0; i < data.queries.length; i++) {
          row(data, state.layer, state.head, i).forEach(function (w, j) { if (w >= 0.01) line(i, j, w); });
        }
        keyNodes.forEach(function (s) { s.style.backgroundColor = ""; s.removeAttribute("title"); });
        readout.textContent = where + ": hover over, tap or tab to a query token (left) to see its attention over the keys (right).";
        readout.removeAttribute("data-query");
        readout.removeAttribute("data-top-key");
        readout.removeAttribute("data-top-weight");
        return;
      }
      var weights = row(data, state.layer, state.head, q);
      weights.forEach(function (w, j) {
        if (w > 0) line(q, j, w);
        keyNodes[j].style.backgroundColor = "rgba(var(--d2l-av-rgb)," + w.toFixed(3) + ")";
        keyNodes[j].title = data.keys[j] + ": " + w.toFixed(3);
      });
      var order = ranked(weights).slice(0, TOP);
      readout.textContent = where + ", query " + (q + 1) + " \u201c" + data.queries[q] + "\u201d attends to " +
        order.map(function (j) {
          return "\u201c" + data.keys[j] + "\u201d (key " + (j + 1) + ") " + weights[j].toFixed(3);
        }).join(", ");
      readout.setAttribute("data-query", q);
      readout.setAttribute("data-top-key", order[0]);
      readout.setAttribute("data-top-weight", weights[order[0]].toFixed(3));
    }

    function index(event) {
      var b = event.target.closest ? event.target.closest(".d2l-av-q") : null;
      return b && left.contains(b) ? Number(b.getAttribute("data-index")) : -1;
    }
    left.addEventListener("mouseover", function (e) { var i = index(e); if (i >= 0) { state.hover = i; render(); } });
    left.addEventListener("mouseleave", function () { state.hover = -1; render(); });
    left.addEventListener("focusin", function (e) { state.focus = index(e); render(); });
    left.addEventListener("focusout", function () { state.focus = -1; render(); });
    left.addEventListener("click", function (e) {
      var i = index(e);
      if (i < 0) return;
      state.pinned = state.pinned === i ? -1 : i; // click (or Enter/Space) pins; again unpins
      state.hover = -1;
      render();
    });
    left.addEventListener("keydown", function (e) {
      var i = index(e), next = e.key === "ArrowDown" ? i + 1 : e.key === "ArrowUp" ? i - 1 : -2;
      if (e.key === "Escape") { state.pinned = -1; render(); return; }
      if (next >= 0 && next < queryNodes.length) { e.preventDefault(); queryNodes[next].focus(); }
    });
    layerSelect.addEventListener("change", function () { state.layer = Number(layerSelect.value); render(); });
    headSelect.addEventListener("change", function () {
      state.head = headSelect.value === "mean" ? "mean" : Number(headSelect.value);
      render();
    });
    root.setAttribute("data-mounted", "true");
    render();
  }

  return { mount: mount, row: row, ranked: ranked };
})();
