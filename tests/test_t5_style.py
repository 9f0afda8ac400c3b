"""T5-style pretraining (chapter 9): span corruption on the chapter-7 encoder-decoder learns to fill spans."""

from __future__ import annotations

import torch

from d2l_attn.data.text import span_corrupt
from d2l_attn.decoding import greedy_decode
from d2l_attn.losses import seq2seq_loss
from d2l_attn.models.transformer import Transformer, TransformerConfig, TransformerDecoder, TransformerEncoder

PAD, BOS, EOS = 0, 1, 2
SENTINELS = list(range(3, 8))
V = 30


def pad(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    T = max(map(len, rows))
    return (torch.tensor([r + [PAD] * (T - len(r)) for r in rows]), torch.tensor([len(r) for r in rows]))


def test_span_corruption_trains_an_encoder_decoder_to_fill_spans():
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    cfg = TransformerConfig(d_model=32, num_heads=2, d_ff=64, num_layers=1, dropout=0.0, max_len=40)
    model = Transformer(TransformerEncoder(V, cfg), TransformerDecoder(V, cfg), bos_id=BOS, eos_id=EOS, pad_id=PAD)
    texts = [list(range(8 + i, 8 + i + 12)) for i in range(8)]  # 8 counting sequences, ids 8..26
    examples = [span_corrupt(t, SENTINELS, rate=0.25, mean_span=2, generator=gen) for t in texts]
    src, src_lens = pad([x for x, _ in examples])
    tgt, tgt_lens = pad([y + [EOS] for _, y in examples])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        loss, _ = seq2seq_loss(model, (src, src_lens, tgt, tgt_lens))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < 0.05 * losses[0]
    out = greedy_decode(model, src[:2], src_lens[:2], max_len=12)
    assert out == [examples[0][1], examples[1][1]]  # the dropped spans, after their sentinels
