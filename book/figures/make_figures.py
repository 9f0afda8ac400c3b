"""Draw the book's architecture figures as SVG files next to this script.

    python book/figures/make_figures.py

One small set of helpers (``figure_kit.py``: boxes, arrows, labels) gives every figure the same
look: the colours of the chapters' plots (queries blue, keys orange, values green, weights red,
outputs purple), rounded boxes, one font. This file draws the figures of chapters 1-7,
``figures_8_12.py`` those of chapters 8-12. The SVGs are committed; rerun the script after
changing either. Text uses Unicode sub- and superscripts and a generic sans-serif font, so the
files need nothing else.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the kit and the later chapters' figures
from figure_kit import COLOURS, INK, MUTED, Svg  # noqa: E402
from figures_8_12 import LATER_FIGURES  # noqa: E402

HERE = Path(__file__).resolve().parent


# ---------------------------------------------------------------------------------------------
# (a) attention pooling: query and keys -> scores -> softmax -> weights -> weighted sum of values
# ---------------------------------------------------------------------------------------------
def attention_pooling() -> Svg:
    s = Svg(1000, 500, "Attention pooling: a query is scored against every key, a softmax turns "
                       "the scores into weights, and the output is the weighted sum of the values")
    cols = [300, 450, 600, 750]
    weights = ["0.10", "0.60", "0.25", "0.05"]
    s.box(40, 12, 150, 40, "query q", "query", bold=True)
    s.line([(190, 32), (cols[-1] - 38, 32)], COLOURS["query"][0], arrow=False)
    for c in cols:
        s.line([(c - 38, 32), (c - 38, 130)], COLOURS["query"][0])
    for i, c in enumerate(cols, start=1):
        s.box(c - 22, 64, 74, 36, f"key k{'₁₂₃₄'[i - 1]}", "key", size=14)
        s.line([(c + 15, 100), (c + 15, 130)], COLOURS["key"][0])
        s.box(c - 58, 130, 116, 40, f"a(q, k{'₁₂₃₄'[i - 1]})", "op", size=14)
        s.line([(c, 170), (c, 202)])
        s.line([(c, 240), (c, 272)], COLOURS["weight"][0])
        alpha = float(weights[i - 1])
        s.box(c - 50, 272, 100, 36, f"α{'₁₂₃₄'[i - 1]} = {weights[i - 1]}", "weight", size=14,
              fill=COLOURS["weight"][0], opacity=0.08 + 0.5 * alpha)
        s.line([(c, 308), (c, 356)], COLOURS["weight"][0])
        s.box(c - 112, 352, 66, 36, f"v{'₁₂₃₄'[i - 1]}", "value", size=14)
        s.line([(c - 46, 370), (c - 16, 370)], COLOURS["value"][0])
        s.circle(c, 370, 15, "×")
        s.line([(c, 385), (c, 440)], COLOURS["output"][0], arrow=False)
    s.box(cols[0] - 58, 202, cols[-1] - cols[0] + 116, 38, "softmax over the keys", "weight", size=14)
    s.line([(cols[0], 440), (852, 440)], COLOURS["output"][0])
    s.circle(870, 440, 18, "Σ", "output", size=18)
    s.line([(870, 422), (870, 392)], COLOURS["output"][0])
    s.box(808, 320, 170, 72, lines=["output", "Σᵢ αᵢ vᵢ"], kind="output", size=15, bold=True)
    for y, label in [(82, "keys"), (150, "scores"), (221, "softmax"), (290, "weights"),
                     (370, "values"), (440, "weighted sum")]:
        s.text(40, y, label, size=14, anchor="start", colour=MUTED, italic=True)
    s.text(500, 482, "weights ≥ 0 and sum to 1: the output is a convex combination of the values",
           size=13, colour=MUTED)
    return s


# ---------------------------------------------------------------------------------------------
# (b) Bahdanau: GRU encoder, GRU decoder, additive attention with the previous decoder state
# ---------------------------------------------------------------------------------------------
def bahdanau() -> Svg:
    s = Svg(1000, 470, "Bahdanau attention: the decoder's previous state queries all encoder "
                       "states; the context vector enters the next decoder step")
    enc = [80, 185, 290, 395]
    dec = [620, 760, 900]
    # encoder
    for t, x in enumerate(enc, start=1):
        sub = "₁₂₃₄"[t - 1]
        s.box(x - 30, 370, 60, 34, f"x{sub}", "plain", size=14)
        s.line([(x, 370), (x, 322)])
        s.box(x - 36, 282, 72, 40, f"h{sub}", "key", size=15, bold=True)
        if t < 4:
            s.line([(x + 36, 302), (enc[t] - 36, 302)], COLOURS["key"][0])
        s.line([(x, 282), (x, 236)], COLOURS["key"][0], arrow=False)
    s.line([(enc[0], 236), (455, 236), (455, 98)], COLOURS["key"][0])
    s.text(240, 222, "keys = values: h₁ … h₄", size=13, colour=COLOURS["key"][0])
    s.text(237, 432, "encoder (GRU) reads the source", size=14, colour=MUTED, italic=True)
    # attention
    s.box(410, 22, 360, 76, lines=["additive attention", "α₂,ₜ = softmax over t of a(s₁, hₜ)",
                                   "c₂ = Σₜ α₂,ₜ hₜ"], kind="weight", size=14)
    # decoder
    inputs = ["<bos>", "y₁", "y₂"]
    outputs = ["y₁", "y₂", "y₃"]
    for k, x in enumerate(dec):
        sub = "₁₂₃"[k]
        s.box(x - 36, 370, 72, 34, inputs[k], "plain", size=14)
        s.line([(x, 370), (x, 322)])
        s.box(x - 40, 282, 80, 40, f"s{sub}", "query", size=15, bold=True)
        s.line([(x, 282), (x, 186)], COLOURS["output"][0])
        s.box(x - 24, 152, 48, 34, outputs[k], "output", size=14)
        if k < 2:
            s.line([(x + 40, 302), (dec[k + 1] - 40, 302)], COLOURS["query"][0])
    # initial state: encoder's last state
    s.line([(enc[-1] + 36, 312), (dec[0] - 40, 312)], MUTED, dashed=True)
    s.text(500, 326, "initial state", size=12, colour=MUTED)
    # query: s1 -> attention; context: attention -> s2
    s.line([(dec[0] - 40, 290), (545, 290), (545, 98)], COLOURS["query"][0])
    s.text(551, 200, "query s₁", size=13, anchor="start", colour=COLOURS["query"][0])
    s.line([(dec[1] - 30, 98), (dec[1] - 30, 282)], COLOURS["weight"][0], width=2.0)
    s.text(dec[1] - 36, 232, "context c₂", size=13, anchor="end", colour=COLOURS["weight"][0])
    s.text(760, 432, "decoder (GRU) writes the translation", size=14, colour=MUTED, italic=True)
    s.text(760, 452, "(drawn for step 2; every step gets its own context)", size=12, colour=MUTED)
    return s


# ---------------------------------------------------------------------------------------------
# (c) multi-head attention
# ---------------------------------------------------------------------------------------------
def multihead() -> Svg:
    s = Svg(1000, 560, "Multi-head attention: queries, keys and values are projected into h heads, "
                       "each head runs scaled dot-product attention, and the heads are concatenated "
                       "and mixed by an output projection")
    xs = {"q": 220, "k": 420, "v": 620}
    names = {"q": ("queries Q", "query", "W_q"), "k": ("keys K", "key", "W_k"),
             "v": ("values V", "value", "W_v")}
    for key, x in xs.items():
        label, kind, w = names[key]
        s.box(x - 75, 492, 150, 40, label, kind, bold=True)
        s.line([(x, 492), (x, 440)], COLOURS[kind][0])
        for depth in (2, 1, 0):   # stacked copies: one slice per head
            off = 8 * depth
            s.box(x - 75 + off, 392 - off, 150, 48, "" if depth else f"linear {w}", kind,
                  size=14, opacity=1.0)
        s.line([(x, 376), (x, 320)], COLOURS[kind][0])
    for depth in (2, 1, 0):
        off = 8 * depth
        s.box(135 + off, 250 - off, 570, 68, "" if depth else "",
              "weight", opacity=1.0)
    s.text(420, 272, "scaled dot-product attention, one per head", size=15, bold=True)
    s.text(420, 296, "softmax(Qᵢ Kᵢᵀ / √(d/h)) Vᵢ,  i = 1 … h", size=14)
    s.line([(420, 234), (420, 196)], COLOURS["weight"][0])
    s.box(250, 154, 340, 42, "concatenate the heads [H₁, …, Hₕ]", "op", size=14)
    s.line([(420, 154), (420, 118)])
    s.box(280, 76, 280, 42, "linear W_o (mixes the heads)", "output", size=14)
    s.line([(420, 76), (420, 44)], COLOURS["output"][0])
    s.box(330, 6, 180, 38, "output", "output", bold=True)
    # shapes and notes on the right
    s.text(760, 512, "(B, T, d)", size=14, anchor="start", colour=MUTED)
    s.text(760, 416, "one d × d projection per role,", size=13, anchor="start", colour=MUTED)
    s.text(760, 434, "split into h heads of d/h columns", size=13, anchor="start", colour=MUTED)
    s.text(760, 284, "(B, h, T, d/h): all heads in", size=13, anchor="start", colour=MUTED)
    s.text(760, 302, "one batched matrix product", size=13, anchor="start", colour=MUTED)
    s.text(760, 175, "merge: (B, T, d)", size=13, anchor="start", colour=MUTED)
    s.text(760, 97, "(B, T_q, d)", size=14, anchor="start", colour=MUTED)
    s.text(720, 364, "h copies", size=12, anchor="start", colour=MUTED, italic=True)
    return s


# ---------------------------------------------------------------------------------------------
# (d) CNN vs RNN vs self-attention: sequential operations and path length
# ---------------------------------------------------------------------------------------------
def cnn_rnn_self_attention() -> Svg:
    s = Svg(1000, 470, "Convolution, recurrence and self-attention over five tokens: which "
                       "outputs each input reaches in one layer, the sequential operations and "
                       "the maximum path length")
    n = 5
    red = COLOURS["weight"][0]
    grey = "#9a9a9a"
    panels = [(130, "convolution (k = 3)"), (420, "recurrent layer (RNN)"), (710, "self-attention")]
    for p, (x0, title) in enumerate(panels):
        xs = [x0 + 10 + 56 * i for i in range(n)]
        mid = x0 + 122
        y_in, y_out = 290, 110
        s.text(mid, 30, title, size=16, bold=True)
        for i, x in enumerate(xs):
            s.box(x - 18, y_in, 36, 32, f"x{'₁₂₃₄₅'[i]}", "plain", size=14)
            s.box(x - 18, y_out - 32, 36, 32, f"y{'₁₂₃₄₅'[i]}" if p != 1 else f"h{'₁₂₃₄₅'[i]}",
                  "output", size=14)
        if p == 0:
            for i, xo in enumerate(xs):
                for j in (i - 1, i, i + 1):
                    if 0 <= j < n:
                        hot = j == 0
                        s.line([(xs[j], y_in), (xo, y_out + 2)], red if hot else grey,
                               width=2.2 if hot else 1.2, arrow=False)
            s.text(mid, 345, "x₁ reaches y₁, y₂ in one layer;", size=13, colour=MUTED)
            s.text(mid, 363, "y₅ only after n − 1 = 4 layers", size=13, colour=MUTED)
        elif p == 1:
            for i, x in enumerate(xs):
                s.line([(x, y_in), (x, y_out + 2)], red if i == 0 else grey, width=2.2 if i == 0 else 1.2)
                if i < n - 1:
                    s.line([(x + 18, y_out - 16), (xs[i + 1] - 18, y_out - 16)], red, width=2.0)
            s.text(mid, 345, "x₁ reaches h₅ through", size=13, colour=MUTED)
            s.text(mid, 363, "n − 1 = 4 steps, one after another", size=13, colour=MUTED)
        else:
            for i, xo in enumerate(xs):
                for j in range(n):
                    hot = j == 0
                    s.line([(xs[j], y_in), (xo, y_out + 2)], red if hot else grey,
                           width=2.2 if hot else 1.0, arrow=False, opacity=1.0 if hot else 0.7)
            s.text(mid, 345, "every output sees every input:", size=13, colour=MUTED)
            s.text(mid, 363, "x₁ reaches y₅ in one step", size=13, colour=MUTED)
    rows = [("sequential operations", ["O(1)", "O(n)", "O(1)"]),
            ("maximum path length", ["O(n/k)", "O(n)", "O(1)"]),
            ("cost per layer", ["O(k n d²)", "O(n d²)", "O(n² d)"])]
    for r, (name, values) in enumerate(rows):
        y = 400 + 24 * r
        s.add(f'<line x1="10" y1="{y - 12}" x2="990" y2="{y - 12}" stroke="#dddddd" stroke-width="1"/>')
        s.text(14, y, name, size=13, anchor="start", colour=MUTED, italic=True)
        for p, value in enumerate(values):
            s.text(panels[p][0] + 122, y, value, size=14, bold=r < 2)
    return s


# ---------------------------------------------------------------------------------------------
# (e) the Transformer encoder-decoder with its masks
# ---------------------------------------------------------------------------------------------
def transformer() -> Svg:
    s = Svg(1000, 790, "The Transformer: an encoder stack of self-attention and feed-forward "
                       "blocks, a decoder stack of causal self-attention, cross-attention and "
                       "feed-forward blocks, with a padding mask on the source keys and a causal "
                       "mask in the decoder")
    ex, dx, w = 270, 640, 230          # column centres and block width
    left_e, left_d = ex - w / 2, dx - w / 2

    def block(x_left, y, h, label=None, kind="plain", lines=None, size=14, bold=False):
        s.box(x_left, y, w, h, label or "", kind, size=size, lines=lines, bold=bold)

    def up(x, y_from, y_to, colour=INK):
        s.line([(x, y_from), (x, y_to)], colour)

    # encoder, bottom to top
    block(left_e, 712, 36, "source tokens")
    up(ex, 712, 678)
    block(left_e, 642, 36, "embedding × √d + positions")
    up(ex, 642, 596)
    s.add(f'<rect x="{left_e - 18}" y="370" width="{w + 36}" height="246" rx="12" fill="none" '
          f'stroke="#9a9a9a" stroke-width="1.4" stroke-dasharray="6 4"/>')
    s.text(left_e - 28, 500, "L ×", size=16, anchor="end", bold=True)
    block(left_e, 552, 44, kind="weight", lines=["multi-head self-attention", "padding mask"])
    up(ex, 552, 528)
    block(left_e, 498, 30, "add & norm", "norm", size=13)
    up(ex, 498, 472)
    block(left_e, 432, 40, "position-wise FFN", "ffn")
    up(ex, 432, 410)
    block(left_e, 380, 30, "add & norm", "norm", size=13)
    for y_from, y_to in [(606, 513), (482, 395)]:      # residual connections
        s.line([(ex, y_from), (left_e + w + 8, y_from), (left_e + w + 8, y_to), (left_e + w, y_to)],
               MUTED, width=1.2)
    up(ex, 380, 336)
    block(left_e, 300, 36, "encoder output (memory)", "key", bold=True)
    s.text(ex, 772, "encoder", size=15, colour=MUTED, italic=True)

    # decoder, bottom to top
    block(left_d, 712, 36, "target tokens, shifted right")
    up(dx, 712, 678)
    block(left_d, 642, 36, "embedding × √d + positions")
    up(dx, 642, 600)
    s.add(f'<rect x="{left_d - 18}" y="248" width="{w + 36}" height="372" rx="12" fill="none" '
          f'stroke="#9a9a9a" stroke-width="1.4" stroke-dasharray="6 4"/>')
    s.text(left_d + w + 28, 330, "× L", size=16, anchor="start", bold=True)
    block(left_d, 556, 44, kind="query", lines=["masked self-attention", "causal mask"])
    up(dx, 556, 534)
    block(left_d, 504, 30, "add & norm", "norm", size=13)
    up(dx, 504, 478)
    block(left_d, 430, 48, kind="weight", lines=["cross-attention", "padding mask (source)"])
    up(dx, 430, 408)
    block(left_d, 378, 30, "add & norm", "norm", size=13)
    up(dx, 378, 352)
    block(left_d, 312, 40, "position-wise FFN", "ffn")
    up(dx, 312, 290)
    block(left_d, 260, 30, "add & norm", "norm", size=13)
    for y_from, y_to in [(610, 519), (490, 393), (364, 275)]:   # residual connections
        s.line([(dx, y_from), (left_d - 8, y_from), (left_d - 8, y_to), (left_d, y_to)],
               MUTED, width=1.2)
    # keys and values from the encoder into every cross-attention
    s.line([(left_e + w, 318), (455, 318), (455, 454), (left_d, 454)], COLOURS["key"][0],
           width=2.2, halo=True)
    s.text(448, 352, "keys, values", size=13, anchor="end", colour=COLOURS["key"][0])
    up(dx, 260, 206)  # leaves the stack
    block(left_d, 170, 36, "linear + softmax", "output")
    up(dx, 170, 136)
    block(left_d, 100, 36, "next-token probabilities", "output", bold=True)
    s.text(dx, 772, "decoder", size=15, colour=MUTED, italic=True)

    # the masks as 5 x 5 matrices (rows: queries, columns: keys; filled = may attend)
    padding = [[j < 3 for j in range(5)] for _ in range(5)]
    causal = [[j <= i for j in range(5)] for i in range(5)]
    s.grid(22, 544, 12, padding, "weight")
    s.text(52, 616, "padding mask", size=12, colour=MUTED)
    s.text(52, 631, "3 real keys", size=12, colour=MUTED)
    s.line([(84, 574), (left_e - 2, 574)], MUTED, width=1.0, dashed=True, arrow=False)
    s.grid(902, 548, 12, causal, "query")
    s.text(932, 620, "causal mask", size=12, colour=MUTED)
    s.text(932, 635, "i sees j ≤ i", size=12, colour=MUTED)
    s.line([(900, 578), (left_d + w + 2, 578)], MUTED, width=1.0, dashed=True, arrow=False)
    s.grid(902, 424, 12, padding, "weight")
    s.text(932, 496, "padding mask", size=12, colour=MUTED)
    s.text(932, 511, "(source keys)", size=12, colour=MUTED)
    s.line([(900, 454), (left_d + w + 2, 454)], MUTED, width=1.0, dashed=True, arrow=False)
    s.text(500, 40, "Masks act before the softmax: a masked key gets weight exactly 0.",
           size=13, colour=MUTED)
    s.text(500, 60, "Padding mask: no query attends to padded source positions. "
                    "Causal mask: no target position attends to later ones.", size=13, colour=MUTED)
    return s


FIGURES = {
    "attention_pooling.svg": attention_pooling,
    "bahdanau.svg": bahdanau,
    "multihead_attention.svg": multihead,
    "cnn_rnn_self_attention.svg": cnn_rnn_self_attention,
    "transformer.svg": transformer,
    **LATER_FIGURES,
}


def main() -> None:
    for name, draw in FIGURES.items():
        (HERE / name).write_text(draw().render(), encoding="utf-8")
        print("wrote", HERE / name)


if __name__ == "__main__":
    main()
