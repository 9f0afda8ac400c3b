"""The figures of chapters 8-12, drawn with the kit of ``figure_kit.py`` (run ``make_figures.py``).

Each follows the library's definitions: the online softmax of ``efficient.tiled_attention``,
the three objectives of chapter 9 (``gpt``, ``bert`` with ``losses.mask_tokens``,
``data.text.span_corrupt``), ``models.vit.ViT``, ``attribution.attention_rollout`` and
``attention_flow`` (the numbers of the worked case are computed here, from the two layers that
chapter 11's check cell works by hand), and ``blocks.AddNorm`` in both orders. Canvases are at
most 900 units wide and no label is smaller than 12, so that a phone's narrow column still reads.
"""

from __future__ import annotations

from figure_kit import COLOURS, INK, MUTED, Svg

GREY = "#9a9a9a"
SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def sub(n: int) -> str:
    return str(n).translate(SUB)


# ---------------------------------------------------------------------------------------------
# chapter 8: tiled attention with the online softmax over key blocks
# ---------------------------------------------------------------------------------------------
def tiled_attention() -> Svg:
    s = Svg(900, 500, "Tiled attention: one block of queries meets the key and value blocks one "
                      "at a time; a running maximum m, sum l and unnormalized output a are "
                      "rescaled and updated after each tile, and the output is a divided by l")
    qc, kc, vc, red = (COLOURS[k][0] for k in ("query", "key", "value", "weight"))
    cxs = [300, 490, 680]
    s.box(20, 58, 130, 40, "Qᵢ (b_q queries)", "query", size=14, bold=True)
    s.line([(150, 78), (cxs[-1] - 34, 78)], qc, arrow=False)
    s.text_lines(20, 124, ["one tile of scores", "Sⱼ = Qᵢ Kⱼᵀ / √d,", "b_q × b_k at a time"], step=18,
                 anchor="start", colour=MUTED)
    for j, cx in enumerate(cxs, start=1):
        s.box(cx - 64, 10, 62, 36, f"K{sub(j)}", "key", size=14, bold=True)
        s.box(cx + 2, 10, 62, 36, f"V{sub(j)}", "value", size=14, bold=True)
        s.line([(cx - 14, 46), (cx - 14, 100)], kc, halo=True)
        s.line([(cx - 34, 78), (cx - 34, 100)], qc)
        s.grid(cx - 42, 100, 16, [[True] * 4 for _ in range(3)], "weight")
        s.text(cx - 10, 162, f"S{sub(j)}", size=13, colour=red, bold=True)
        s.line([(cx - 10, 172), (cx - 10, 226)], red)
        s.line([(cx + 33, 46), (cx + 33, 226)], vc)
        s.box(cx - 65, 226, 130, 64, lines=["update m, ℓ, a", f"with S{sub(j)} and V{sub(j)}"], kind="op",
              size=13)
    s.box(20, 236, 160, 44, lines=["start: m = −∞,", "ℓ = 0, a = 0"], kind="op", size=13)
    for x0, x1 in [(180, cxs[0] - 65), (cxs[0] + 65, cxs[1] - 65), (cxs[1] + 65, cxs[2] - 65)]:
        s.line([(x0, 258), (x1, 258)], INK, width=2.0)
        s.text((x0 + x1) / 2, 244, "m, ℓ, a", size=12, colour=MUTED)
    s.line([(cxs[2] + 65, 258), (775, 258)], COLOURS["output"][0], width=2.0)
    s.box(775, 232, 110, 52, lines=["Oᵢ = a / ℓ", "(exact)"], kind="output", size=14, bold=True)
    # the update rule, per query row, with a block's scores s and values V_j
    s.box(20, 318, 865, 112, "", "plain")
    s.text(36, 338, "per query row, when block j arrives with scores s and values Vⱼ:", size=13,
           anchor="start", colour=MUTED, italic=True)
    s.rich(36, 368, "m′ = max(m, maxₖ sₖ)", size=15, anchor="start")
    s.rich(300, 368, "ℓ′ = e^{m − m′} ℓ + Σₖ e^{sₖ − m′}", size=15, anchor="start")
    s.rich(610, 368, "a′ = e^{m − m′} a + e^{s − m′} Vⱼ", size=15, anchor="start")
    s.rich(36, 398, "e^{m − m′} ≤ 1 shrinks what was summed under the old maximum, so no exponential",
           size=13, anchor="start", colour=MUTED)
    s.text(36, 416, "overflows; after the last block, a / ℓ is exactly softmax(s) V over all the keys.",
           size=13, anchor="start", colour=MUTED)
    s.text(20, 458, "on chip (SRAM in FlashAttention): Qᵢ, Kⱼ, Vⱼ, one tile, m, ℓ, a", size=13,
           anchor="start", colour=INK)
    s.text(20, 480, "in memory (HBM): Q, K, V, O — the n × n matrix of scores is never stored",
           size=13, anchor="start", colour=INK)
    return s


# ---------------------------------------------------------------------------------------------
# chapter 9: the three pretraining objectives and the three architectures
# ---------------------------------------------------------------------------------------------
def _tokens(s: Svg, x: float, y: float, tokens, kinds=None, size=13, gap=6, h=30):
    """A row of token boxes from x; returns the centre of each box."""
    centres = []
    for i, tok in enumerate(tokens):
        w = max(34, 10 + 7.6 * len(tok))
        kind = kinds[i] if kinds else "plain"
        if tok:
            s.box(x, y, w, h, tok, kind, size=size, rx=5)
        centres.append(x + w / 2)
        x += w + gap
    return centres


def pretraining_objectives() -> Svg:
    s = Svg(900, 520, "Three pretraining objectives: causal language modelling with a "
                      "decoder-only model (GPT), masked language modelling with an encoder-only "
                      "model (BERT), and span corruption with an encoder-decoder (T5)")
    purple = COLOURS["output"][0]
    panels = [(10, 270, "causal LM", "decoder-only (GPT)"),
              (300, 270, "masked LM", "encoder-only (BERT)"),
              (590, 300, "span corruption", "encoder–decoder (T5)")]
    for x0, w, title, arch in panels:
        s.add(f'<rect x="{x0}" y="6" width="{w}" height="508" rx="10" fill="none" stroke="#dddddd" '
              f'stroke-width="1.2"/>')
        s.text(x0 + w / 2, 28, title, size=16, bold=True)
        s.text(x0 + w / 2, 50, arch, size=14, colour=MUTED, italic=True)

    # causal LM: predict token t+1 at every position t
    words = ["the", "cat", "sat", "on", "the", "mat"]
    ins = _tokens(s, 22, 262, words[:5])
    outs = [c for c in ins]
    for c, word in zip(outs, words[1:]):
        s.box(c - 19, 80, 38, 30, word, "output", size=13, rx=5)
    for c in ins:
        s.line([(c, 262), (c, 212)])
        s.line([(c, 162), (c, 112)], purple)
    s.box(22, 162, 246, 50, lines=["decoder stack", "causal self-attention"], kind="query", size=13)
    s.grid(40, 318, 13, [[j <= i for j in range(5)] for i in range(5)], "query")
    s.text_lines(118, 324, ["causal mask:", "t sees ≤ t"], step=18, anchor="start", colour=MUTED)
    s.text_lines(140, 420, ["predict the next token at", "every position: a loss on", "all of them"], step=18)

    # masked LM: 15% picked; the loss only at the picked positions
    masked = ["the", "[MASK]", "sat", "on", "the", "mat"]
    ins = _tokens(s, 312, 262, masked, ["plain", "weight", "plain", "plain", "plain", "plain"])
    s.box(ins[1] - 19, 80, 38, 30, "cat", "output", size=13, rx=5)
    for c in ins:
        s.line([(c, 262), (c, 212)])
    s.line([(ins[1], 162), (ins[1], 112)], purple)
    s.box(312, 162, 246, 50, lines=["encoder stack", "bidirectional self-attention"], kind="key",
          size=13)
    s.grid(330, 318, 13, [[True] * 5 for _ in range(5)], "weight")
    s.text_lines(408, 324, ["no mask:", "all see all"], step=18, anchor="start", colour=MUTED)
    s.text_lines(430, 420, ["15% of tokens picked:", "80% → [MASK], 10% random,", "10% kept; a loss only at",
                            "the picked positions"], step=18)

    # span corruption: spans -> sentinels in the encoder; the decoder writes sentinel + span
    enc_in = ["the", "<X0>", "on", "the", "<X1>"]
    dec_out = ["<X0>", "cat", "sat", "<X1>", "mat"]
    ins = _tokens(s, 602, 262, enc_in, ["plain", "weight", "plain", "plain", "weight"])
    for c in ins:
        s.line([(c, 262), (c, 240)])
    s.box(602, 206, 276, 34, "encoder (no mask)", "key", size=13)
    outs = _tokens(s, 602, 80, dec_out, ["weight", "output", "output", "weight", "output"])
    s.box(602, 132, 276, 34, "decoder (causal mask)", "query", size=13)
    for c in outs:
        s.line([(c, 132), (c, 112)], purple)
    s.line([(640, 206), (640, 166)], COLOURS["key"][0], width=2.0)
    s.text(650, 186, "cross-attention to the encoder", size=12, anchor="start",
           colour=COLOURS["key"][0])
    s.text_lines(740, 324, ["input: the cat sat on the mat", "with “cat sat” and “mat” dropped"], step=18,
                 colour=MUTED)
    s.text_lines(740, 402, ["15% of tokens dropped in spans", "(mean length 3); each span",
                            "becomes one sentinel, and the", "decoder writes every sentinel",
                            "followed by its span"], step=18)
    return s


# ---------------------------------------------------------------------------------------------
# chapter 10: the Vision Transformer
# ---------------------------------------------------------------------------------------------
DIGIT = ["..####..", ".##..##.", ".#....#.", ".#....#.", ".#....#.", ".#....#.", ".##..##.",
         "..####.."]


def vit_pipeline() -> Svg:
    s = Svg(900, 470, "The Vision Transformer: an image is cut into patches, each patch is mapped "
                      "linearly to a token, a learned [CLS] token is prepended and learned "
                      "positions are added, a stack of pre-LN encoder blocks mixes all tokens, and "
                      "a LayerNorm and a linear head read the [CLS] output")
    red, purple = COLOURS["weight"][0], COLOURS["output"][0]
    cell, x0, y0 = 12, 30, 292
    for i, row in enumerate(DIGIT):
        for j, pixel in enumerate(row):
            s.add(f'<rect x="{x0 + j * cell}" y="{y0 + i * cell}" width="{cell}" height="{cell}" '
                  f'fill="{"#333333" if pixel == "#" else "#ffffff"}" stroke="#dddddd" '
                  f'stroke-width="0.6"/>')
    for k in range(5):   # 2 x 2 patches: a red line every 2 pixels
        s.line([(x0 + 2 * k * cell, y0), (x0 + 2 * k * cell, y0 + 8 * cell)], red, 1.4, arrow=False)
        s.line([(x0, y0 + 2 * k * cell), (x0 + 8 * cell, y0 + 2 * k * cell)], red, 1.4, arrow=False)
    s.text_lines(78, 408, ["8 × 8 image:", "16 patches of 2 × 2,", "numbered row by row"], step=18, colour=MUTED)
    s.line([(x0 + 8 * cell, 340), (150, 340)])
    s.box(150, 312, 150, 56, lines=["one linear map W", "per patch (= Conv2d,", "kernel p, stride p)"],
          kind="op", size=12)
    cols = [(375, "[CLS]", "output", "E₀"), (470, "z₁", "plain", "E₁"), (560, "z₂", "plain", "E₂"),
            (650, "…", None, "…"), (740, "z₁₆", "plain", "E₁₆")]
    s.line([(300, 340), (320, 340), (320, 432), (740, 432)], INK, arrow=False)
    for cx, label, kind, pos in cols:
        if kind is None:
            s.text(cx, 378, "…", size=16)
            s.text(cx, 330, "…", size=16)
            continue
        s.box(cx - 36, 362, 72, 34, label, kind, size=14, bold=label == "[CLS]")
        if label != "[CLS]":
            s.line([(cx, 432), (cx, 396)])
        s.box(cx - 30, 314, 60, 28, f"+ {pos}", "norm", size=13, rx=5)
        s.line([(cx, 362), (cx, 342)], arrow=False)
        s.line([(cx, 314), (cx, 286)])
    s.text(375, 412, "learned", size=12, colour=purple)
    s.text(820, 328, "learned 1-D", size=12, anchor="start", colour=MUTED)
    s.text(820, 344, "positions", size=12, anchor="start", colour=MUTED)
    s.text(790, 379, "N + 1 = 17", size=12, anchor="start", colour=MUTED)
    s.text(790, 395, "tokens", size=12, anchor="start", colour=MUTED)
    s.add('<rect x="330" y="196" width="460" height="90" rx="12" fill="none" stroke="#9a9a9a" '
          'stroke-width="1.4" stroke-dasharray="6 4"/>')
    s.box(342, 206, 436, 70, lines=["pre-LN encoder block (GELU):", "x + MSA(LN(x)), then x + MLP(LN(x))",
                                    "every token attends to all 17"], kind="weight", size=13)
    s.text(800, 241, "× L", size=16, anchor="start", bold=True)
    for cx, label, kind, _ in cols[1:]:
        if kind is not None:
            s.line([(cx, 196), (cx, 176)], GREY, dashed=True)
    s.text(605, 162, "patch outputs (not read by the head)", size=12, colour=MUTED)
    s.line([(375, 196), (375, 170)], purple, width=2.0)
    s.box(315, 136, 120, 34, "LayerNorm", "norm", size=13)
    s.line([(375, 136), (375, 110)], purple, width=2.0)
    s.box(315, 76, 120, 34, "linear head", "output", size=13)
    s.line([(375, 76), (375, 52)], purple, width=2.0)
    s.box(290, 14, 170, 38, "10 class scores", "output", size=14, bold=True)
    s.text(470, 100, "reads output 0 ([CLS]) only;", size=12, anchor="start", colour=MUTED)
    s.text(470, 116, "pool = \"mean\": no [CLS], the mean", size=12, anchor="start", colour=MUTED)
    s.text(470, 132, "of the 16 patch outputs instead", size=12, anchor="start", colour=MUTED)
    return s


# ---------------------------------------------------------------------------------------------
# chapter 11: attention rollout and attention flow on a two-token, two-layer case
# ---------------------------------------------------------------------------------------------
HAND_ATTENTION = [[[1.0, 0.0], [0.5, 0.5]], [[0.5, 0.5], [0.0, 1.0]]]   # layer 1, layer 2 (one head)


def _raw_graph(a, residual=0.5):
    """rownorm(r I + (1 - r) A), as attribution._layer_graphs computes it."""
    mixed = [[residual * (i == j) + (1 - residual) * a[i][j] for j in range(2)] for i in range(2)]
    return [[v / sum(row) for v in row] for row in mixed]


def _num(v: float) -> str:
    return f"{v:g}"


def rollout_and_flow() -> Svg:
    s = Svg(900, 500, "Attention rollout and attention flow on two tokens and two layers: each "
                      "layer's attention, mixed half and half with the residual, is a graph; "
                      "rollout multiplies the edge weights along every path and adds the paths, "
                      "flow adds the bottleneck of each path")
    g1, g2 = (_raw_graph(a) for a in HAND_ATTENTION)
    red, green = COLOURS["weight"][0], COLOURS["value"][0]
    xs, ys = [110, 330], {0: 420, 1: 255, 2: 90}
    names = {0: ["x₁", "x₂"], 1: ["layer 1, pos 1", "layer 1, pos 2"], 2: ["output 1", "output 2"]}
    kinds = {0: "plain", 1: "op", 2: "output"}
    for layer, graph in ((2, g2), (1, g1)):
        for i in range(2):
            for j in range(2):
                cap = graph[i][j]
                (xa, ya), (xb, yb) = (xs[i], ys[layer] + 22), (xs[j], ys[layer - 1] - 22)
                hot = layer == 2 and i == 0 or layer == 1
                colour = (red if j == 0 else green) if layer == 1 else INK
                if layer == 1 and cap == 0:
                    colour = GREY
                s.line([(xa, ya), (xb, yb)], colour if hot else GREY, width=1.2 + 5 * cap,
                       arrow=False, dashed=cap == 0, opacity=1.0 if (hot and i == 0) or layer == 1 else 0.6)
                t = 0.3 if i != j else 0.5
                lx, ly = xa + t * (xb - xa), ya + t * (yb - ya)
                s.add(f'<rect x="{lx - 19}" y="{ly - 10}" width="38" height="20" rx="4" fill="#ffffff" '
                      f'fill-opacity="0.9"/>')
                s.text(lx, ly, _num(cap), size=13, bold=True)
    for layer in (0, 1, 2):
        for i in range(2):
            s.box(xs[i] - 62, ys[layer] - 22, 124, 44, names[layer][i], kinds[layer], size=13,
                  bold=layer != 1)
    s.text(220, 478, "edge (ℓ, i) → (ℓ − 1, j): A′ℓ[i, j], line width ∝ weight", size=12, colour=MUTED)
    # the computation for output 1
    x = 470
    s.text(x, 24, "each layer: A′ = rownorm(0.5 I + 0.5 Ā), Ā = heads averaged", size=13,
           anchor="start", colour=MUTED)
    s.text(x, 56, "A′₂ =", size=14, anchor="start")
    s.matrix(x + 50, 44, [[_num(v) for v in row] for row in g2], size=13)
    s.text(x + 170, 56, "A′₁ =", size=14, anchor="start")
    s.matrix(x + 220, 44, [[_num(v) for v in row] for row in g1], size=13)
    # two paths from output 1 to each input: via layer-1 position 1 and position 2
    for k, (j, colour) in enumerate(((0, red), (1, green))):
        y = 130 + 170 * k
        name = "x₁" if j == 0 else "x₂"
        paths = [(g2[0][m], g1[m][j]) for m in range(2)]
        rollout = sum(a * b for a, b in paths)
        flow = sum(min(a, b) for a, b in paths)
        s.text(x, y, f"output 1 → {name}", size=15, anchor="start", colour=colour, bold=True)
        s.text(x, y + 28, "rollout: multiply along each path, add the paths", size=13,
               anchor="start", colour=MUTED, italic=True)
        s.text(x + 10, y + 52, " + ".join(f"{_num(a)} × {_num(b)}" for a, b in paths)
               + f" = {_num(rollout)}", size=14, anchor="start")
        s.text(x, y + 84, "flow: the bottleneck of each path, added (max flow)", size=13,
               anchor="start", colour=MUTED, italic=True)
        s.text(x + 10, y + 108, " + ".join(f"min({_num(a)}, {_num(b)})" for a, b in paths)
               + f" = {_num(flow)}", size=14, anchor="start")
    s.text(x, 478, "rollout's row sums to 1; flow's need not", size=13, anchor="start", colour=MUTED)
    return s


# ---------------------------------------------------------------------------------------------
# chapter 12: post-LN and pre-LN, the residual path, and where warm-up matters
# ---------------------------------------------------------------------------------------------
def _branch_and_add(s: Svg, cx, box_x, box_y, below, plus_y, turn, res) -> None:
    """A residual unit's branch: the sublayer F (40 high, from ``below`` up) into a "+" at ``plus_y``,
    and the residual path from the block's input (y = 360), turning at ``turn``, into the same "+"."""
    s.line([(cx - 30, below), (cx - 30, box_y + 40)])
    s.box(box_x, box_y, 140, 40, "F: attention or FFN", "weight", size=13)
    s.line([(cx - 30, box_y), (cx - 30, plus_y), (cx - 14, plus_y)])
    s.circle(cx, plus_y, 14, "+")
    (x, y) = turn
    s.line([(x, 360), (x, y), (cx + 90, y), (cx + 90, plus_y), (cx + 14, plus_y)], res, width=2.4)


def post_pre_ln() -> Svg:
    s = Svg(900, 560, "Post-LN and pre-LN blocks: in post-LN the residual path passes through a "
                      "LayerNorm after every sublayer and the learning rate needs a warm-up; in "
                      "pre-LN the residual path is the identity from input to output and a final "
                      "LayerNorm follows the last block")
    res = COLOURS["key"][0]
    for cx, title, formula in ((230, "post-LN (Vaswani et al.)", "xₗ₊₁ = LN(xₗ + F(xₗ))"),
                               (670, "pre-LN (GPT-2, ViT)", "xₗ₊₁ = xₗ + F(LN(xₗ))")):
        s.text(cx, 24, title, size=16, bold=True)
        s.text(cx, 48, formula, size=15)
        s.box(cx - 60, 360, 120, 34, "xₗ", "plain", size=15, bold=True)
        s.box(cx - 60, 70, 120, 34, "xₗ₊₁", "plain", size=15, bold=True)
        s.frame(cx - 140, 116, 325, 232)
        s.text(cx + 195, 232, "× L", size=16, anchor="start", bold=True)
    # post-LN: F, then add, then LN on the sum (the residual path included)
    cx = 230
    _branch_and_add(s, cx, cx - 100, 266, 360, 228, (cx + 30, 330), res)
    s.line([(cx, 214), (cx, 186)], res, width=2.4)
    s.box(cx - 70, 146, 140, 40, "LayerNorm", "norm", size=14, bold=True)
    s.line([(cx, 146), (cx, 104)], res, width=2.4)
    s.text(cx + 100, 300, "residual", size=13, anchor="start", colour=res)
    s.text_lines(cx + 78, 160, ["residual path", "normalized", "in every block"], anchor="start", colour=res)
    # pre-LN: LN, then F, then add; the residual path bypasses both
    cx = 670
    s.line([(cx - 30, 360), (cx - 30, 330)])
    s.box(cx - 110, 296, 140, 34, "LayerNorm", "norm", size=14, bold=True)
    _branch_and_add(s, cx, cx - 110, 232, 296, 190, (cx + 40, 340), res)
    s.line([(cx, 176), (cx, 104)], res, width=2.4)
    s.text_lines(cx + 96, 300, ["residual:", "identity"], anchor="start", colour=res)
    s.text_lines(cx - 70, 80, ["after the last block:", "a final LayerNorm"], anchor="end", colour=MUTED)
    # where warm-up matters
    def verdict(x, kind, lines):
        stroke, fill = COLOURS[kind]
        s.box(x, 416, 420, 132, "", "plain", fill=fill)
        s.add(f'<rect x="{x}" y="416" width="420" height="132" rx="8" fill="none" stroke="{stroke}" '
              f'stroke-width="2"/>')
        for k, line in enumerate(lines):
            s.text(x + 16, 438 + 24 * k, line, size=14 if k == 0 else 13, anchor="start",
                   colour=stroke if k == 0 else INK, bold=k == 0)

    verdict(20, "weight", ["needs a learning-rate warm-up",
                           "at initialization the top blocks' gradients do not",
                           "shrink with depth (Xiong et al. 2020), and Adam's",
                           "first steps are ±η in every coordinate:",
                           "a warm-up keeps η small while both settle"])
    verdict(460, "value", ["trains without warm-up in §12.2's run",
                           "the top blocks' gradients shrink like",
                           "1/√L; warm-up is still common, for Adam's",
                           "sake, but no longer decisive"])
    return s


LATER_FIGURES = {
    "tiled_attention.svg": tiled_attention,
    "pretraining_objectives.svg": pretraining_objectives,
    "vit_pipeline.svg": vit_pipeline,
    "rollout_flow.svg": rollout_and_flow,
    "post_pre_ln.svg": post_pre_ln,
}
