"""BERT (chapter 9): shapes, bidirectionality, padding invariance, MLM/NSP heads, Hugging Face weights."""

from __future__ import annotations

import pytest
import torch

from d2l_attn.interop import bert_state_dict_to_ours, from_hf_bert
from d2l_attn.models.bert import BERT, BERTConfig


def tiny(**kw) -> BERT:
    torch.manual_seed(0)
    cfg = dict(vocab_size=30, max_len=16, num_layers=2, num_heads=2, d_model=16, dropout=0.0)
    cfg.update(kw)
    return BERT(BERTConfig(**cfg)).eval()


def test_shapes_and_pred_positions():
    model = tiny()
    tokens = torch.randint(0, 30, (3, 8))
    segments = torch.tensor([[0] * 4 + [1] * 4] * 3)
    out = model(tokens, segments, return_weights=True)
    assert out.hidden.shape == (3, 8, 16) and out.mlm_logits.shape == (3, 8, 30) and out.nsp_logits.shape == (3, 2)
    assert len(out.weights) == 2 and out.weights[0].shape == (3, 2, 8, 8)
    pos = torch.tensor([[1, 5], [0, 7], [2, 2]])
    picked = model(tokens, segments, pred_positions=pos).mlm_logits
    torch.testing.assert_close(picked, out.mlm_logits.gather(1, pos[..., None].expand(-1, -1, 30)))
    assert model.mlm.decoder.weight is model.token_embedding.weight


def test_bidirectional_a_later_token_changes_earlier_states():
    model = tiny()
    a = torch.randint(0, 30, (1, 8))
    b = a.clone()
    b[0, 6] = (b[0, 6] + 1) % 30
    assert not torch.allclose(model(a).hidden[:, :6], model(b).hidden[:, :6])


def test_segments_and_positions_matter():
    model = tiny()
    tokens = torch.randint(0, 30, (1, 6))
    assert not torch.allclose(model(tokens, torch.ones_like(tokens)).hidden, model(tokens).hidden)
    # learned absolute positions: the same token at two positions gets two different vectors
    same = torch.full((1, 4), 3)
    h = model.encode(same)
    assert not torch.allclose(h[0, 0], h[0, 1])


def test_padding_invariance():
    model = tiny()
    x = torch.randint(0, 30, (1, 5))
    padded = torch.cat([x, torch.randint(0, 30, (1, 3))], dim=1)
    torch.testing.assert_close(model.encode(padded, valid_lens=torch.tensor([5]))[:, :5], model.encode(x))


def test_bad_inputs():
    model = tiny()
    with pytest.raises(ValueError, match="max_len=16"):
        model(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="segments must have the shape"):
        model(torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="segments holds"):
        model(torch.zeros(1, 4, dtype=torch.long), torch.full((1, 4), 2))
    with pytest.raises(ValueError, match="pred_positions"):
        model(torch.zeros(2, 4, dtype=torch.long), pred_positions=torch.zeros(1, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="word_embeddings"):
        bert_state_dict_to_ours({}, 1)


@pytest.mark.parametrize("cls_name", ["BertModel", "BertForPreTraining"])
def test_loads_hugging_face_bert(cls_name):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.BertConfig(
        vocab_size=40,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=24,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        attn_implementation="eager",
    )
    hf = getattr(transformers, cls_name)(cfg).eval()
    with torch.no_grad():
        for name, p in hf.named_parameters():
            if "LayerNorm" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    ours = from_hf_bert(hf).eval()
    # eps 1e-12 vs 1e-5 is invisible at 1e-5 tolerance on unit-scale activations: check every LayerNorm
    norms = [m for m in ours.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert len(norms) == 2 * 2 + 2 and all(m.eps == 1e-12 for m in norms)
    tokens = torch.randint(0, 40, (2, 9))
    segments = torch.tensor([[0] * 5 + [1] * 4, [0] * 3 + [1] * 6])
    mask = torch.tensor([[1] * 9, [1] * 6 + [0] * 3])
    with torch.no_grad():
        out = hf(input_ids=tokens, token_type_ids=segments, attention_mask=mask, output_attentions=True)
        mine = ours(tokens, segments, valid_lens=torch.tensor([9, 6]), return_weights=True)
    if cls_name == "BertModel":
        hidden, pooled = out.last_hidden_state, out.pooler_output
    else:
        hidden = None
        torch.testing.assert_close(mine.mlm_logits[0], out.prediction_logits[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(mine.mlm_logits[1, :6], out.prediction_logits[1, :6], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(mine.nsp_logits, out.seq_relationship_logits, atol=1e-5, rtol=1e-5)
    if hidden is not None:
        torch.testing.assert_close(mine.hidden[0], hidden[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(mine.hidden[1, :6], hidden[1, :6], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ours.nsp.pool(mine.hidden[:, 0]), pooled, atol=1e-5, rtol=1e-5)
    for w_ours, w_hf in zip(mine.weights, out.attentions):
        torch.testing.assert_close(w_ours[0], w_hf[0], atol=1e-5, rtol=1e-5)
