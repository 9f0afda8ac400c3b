"""Pretraining losses (chapter 9): LM shift, BERT's 80/10/10 masking, MLM and NSP losses."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from d2l_attn.losses import IGNORE_INDEX, lm_loss, mask_tokens, mlm_loss, nsp_loss


def test_lm_loss_scores_next_token_and_skips_padding():
    torch.manual_seed(0)
    logits, tokens = torch.randn(2, 5, 7), torch.randint(0, 7, (2, 5))
    expected = F.cross_entropy(logits[:, :-1].reshape(-1, 7), tokens[:, 1:].reshape(-1))
    torch.testing.assert_close(lm_loss(logits, tokens), expected)
    # valid_lens 3 for row 1: only its first 2 predictions count; garbage beyond does not matter
    logits2 = logits.clone()
    logits2[1, 2:] = float("nan")
    want = F.cross_entropy(torch.cat([logits[0, :4], logits[1, :2]]), torch.cat([tokens[0, 1:], tokens[1, 1:3]]))
    torch.testing.assert_close(lm_loss(logits2, tokens, torch.tensor([5, 3])), want)


def test_uniform_logits_give_ln_v():
    assert math.isclose(
        float(lm_loss(torch.zeros(1, 4, 13), torch.zeros(1, 4, dtype=torch.long))), math.log(13), rel_tol=1e-6
    )
    assert math.isclose(float(nsp_loss(torch.zeros(4, 2), torch.tensor([0, 1, 0, 1]))), math.log(2), rel_tol=1e-6)


def test_masking_rate_and_80_10_10_split():
    gen = torch.Generator().manual_seed(0)
    V, mask_id, cls_id = 1000, 4, 5
    tokens = torch.randint(10, V, (400, 100))
    tokens[:, 0] = cls_id
    lens = torch.randint(20, 101, (400,))
    out = mask_tokens(tokens, mask_id=mask_id, vocab_size=V, special_ids=[cls_id], valid_lens=lens, generator=gen)
    chosen = out.labels != IGNORE_INDEX
    # exactly round(15% of the candidates) per row; never a special token, never padding
    n_candidates = lens - 1
    assert torch.equal(chosen.sum(1), (0.15 * n_candidates.float()).round().long().clamp(min=1))
    assert not chosen[:, 0].any()
    assert not (chosen & (torch.arange(100) >= lens[:, None])).any()
    assert torch.equal(out.labels[chosen], tokens[chosen])
    assert torch.equal(out.inputs[~chosen], tokens[~chosen])
    n = int(chosen.sum())
    masked = float((out.inputs[chosen] == mask_id).sum()) / n
    kept = float((out.inputs[chosen] == tokens[chosen]).sum()) / n
    random_ = 1 - masked - kept
    assert abs(masked - 0.8) < 0.02 and abs(kept - 0.1) < 0.02 and abs(random_ - 0.1) < 0.02
    # seeded: same generator seed, same corruption; global RNG untouched
    state = torch.get_rng_state()
    again = mask_tokens(
        tokens,
        mask_id=mask_id,
        vocab_size=V,
        special_ids=[cls_id],
        valid_lens=lens,
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.equal(again.inputs, out.inputs) and torch.equal(torch.get_rng_state(), state)


def test_mlm_loss_counts_only_predicted_positions():
    logits = torch.randn(2, 4, 9)
    labels = torch.full((2, 4), IGNORE_INDEX)
    labels[0, 1], labels[1, 3] = 2, 7
    want = F.cross_entropy(torch.stack([logits[0, 1], logits[1, 3]]), torch.tensor([2, 7]))
    torch.testing.assert_close(mlm_loss(logits, labels), want)


def test_bad_inputs():
    with pytest.raises(ValueError, match="T >= 2"):
        lm_loss(torch.zeros(1, 1, 3), torch.zeros(1, 1, dtype=torch.long))
    with pytest.raises(ValueError, match="no position"):
        mlm_loss(torch.zeros(1, 2, 3), torch.full((1, 2), IGNORE_INDEX))
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        nsp_loss(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="mask_id"):
        mask_tokens(torch.zeros(1, 3, dtype=torch.long), mask_id=9, vocab_size=5)
    with pytest.raises(ValueError, match="rate"):
        mask_tokens(torch.zeros(1, 3, dtype=torch.long), mask_id=1, vocab_size=5, rate=1.5)
