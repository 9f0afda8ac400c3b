"""Tests for d2l_attn.losses: shift-right, masked cross-entropy (with label smoothing), seq2seq loss."""

from __future__ import annotations

import math

import pytest
import torch
from tiny_models import BOS, EOS, PAD, padded_sources, tiny_gru
from torch import nn

from d2l_attn.losses import masked_cross_entropy, seq2seq_loss, shift_right

V = 13


def random_batch(seed=0, lens=(5, 2, 3)):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(len(lens), 5, V, generator=g, dtype=torch.float64)
    targets = torch.randint(0, V, (len(lens), 5), generator=g)
    return logits, targets, torch.tensor(lens)


# -- shift_right --------------------------------------------------------------------------------------
def test_shift_right_puts_bos_first_and_drops_the_last_token():
    targets = torch.tensor([[5, 6, 7, EOS], [8, EOS, PAD, PAD]])
    out = shift_right(targets, BOS)
    assert out.tolist() == [[BOS, 5, 6, 7], [BOS, 8, EOS, PAD]]  # a roll would put EOS/PAD first
    assert out.dtype == torch.long and out.shape == targets.shape
    assert shift_right(torch.tensor([[9]]), 4).tolist() == [[4]]
    assert targets.tolist() == [[5, 6, 7, EOS], [8, EOS, PAD, PAD]]  # the input is not modified


@pytest.mark.parametrize("bos_id", [-1, 1.0, True, "2", None])
def test_shift_right_rejects_a_bad_bos_id(bos_id):
    with pytest.raises(ValueError, match="bos_id must be a non-negative int"):
        shift_right(torch.zeros(2, 3, dtype=torch.long), bos_id)


@pytest.mark.parametrize("targets", [torch.zeros(2, 3), torch.zeros(3, dtype=torch.long), [[1, 2]]])
def test_shift_right_rejects_bad_targets(targets):
    with pytest.raises(ValueError, match=r"targets must be an int64 tensor of token ids with shape \(B, T\)"):
        shift_right(targets, BOS)


# -- masked_cross_entropy -------------------------------------------------------------------------
def loop_cross_entropy(logits, targets, lens, eps=0.0):
    """The loss by hand: one term per real position, (1-eps) NLL + eps * mean over the vocabulary of -log p."""
    terms = []
    for b in range(logits.shape[0]):
        for t in range(int(lens[b])):
            log_p = logits[b, t].double().log_softmax(-1)  # (V,)
            terms.append((1 - eps) * -log_p[targets[b, t]] + eps * -log_p.mean())
    return sum(terms) / len(terms)


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.35])
def test_masked_cross_entropy_equals_a_loop_over_real_positions(eps):
    logits, targets, lens = random_batch()
    loss = masked_cross_entropy(logits, targets, lens, label_smoothing=eps)
    torch.testing.assert_close(loss.double(), loop_cross_entropy(logits, targets, lens, eps), rtol=1e-6, atol=1e-6)
    # averaging over all positions (padding included) or per sentence would give another number
    all_positions = loop_cross_entropy(logits, targets, torch.full_like(lens, 5), eps)
    assert abs(loss.item() - all_positions.item()) > 1e-3


def test_label_smoothing_equals_the_mixture_of_two_cross_entropies():
    """(1-eps) CE(y) + eps CE(uniform): the same number written the other way round."""
    logits, targets, lens = random_batch(seed=1)
    eps = 0.2
    plain = masked_cross_entropy(logits, targets, lens)
    keep = torch.arange(5) < lens[:, None]
    uniform_ce = -logits[keep].double().log_softmax(-1).mean(-1).mean()  # mean over real positions and over V
    smoothed = masked_cross_entropy(logits, targets, lens, label_smoothing=eps)
    torch.testing.assert_close(smoothed.double(), (1 - eps) * plain.double() + eps * uniform_ce, rtol=1e-6, atol=1e-6)


def test_padded_positions_change_neither_loss_nor_gradient():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, V, generator=g, requires_grad=True)
    targets = torch.randint(0, V, (3, 5), generator=g)
    lens = torch.tensor([5, 2, 3])
    loss = masked_cross_entropy(logits, targets, lens)
    (grad,) = torch.autograd.grad(loss, logits)
    keep = torch.arange(5) < lens[:, None]
    per_token = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    torch.testing.assert_close(loss, per_token[keep].mean())
    # change the logits and targets at padded positions, even to inf/NaN: nothing changes
    changed = logits.detach().clone()
    noise = torch.rand(changed[~keep].shape, generator=g)
    changed[~keep] = torch.where(noise < 0.3, float("nan"), torch.where(noise < 0.6, float("inf"), 1e4))
    changed.requires_grad_(True)
    other_targets = targets.clone()
    other_targets[~keep] = 99  # not even a token id of the vocabulary: padding is never read
    loss2 = masked_cross_entropy(changed, other_targets, lens)
    (grad2,) = torch.autograd.grad(loss2, changed)
    assert loss2.item() == loss.item()
    torch.testing.assert_close(grad2, grad)
    assert torch.all(grad2[~keep] == 0)
    # equivalent to cross_entropy with ignore_index when padding carries the pad id
    padded_targets = targets.masked_fill(~keep, PAD)
    ignore = torch.nn.functional.cross_entropy(logits.transpose(1, 2), padded_targets, ignore_index=PAD)
    torch.testing.assert_close(loss, ignore)


@pytest.mark.parametrize("bad_id", [V, -1])
def test_out_of_range_target_ids_at_real_positions_are_rejected(bad_id):
    logits, targets, lens = random_batch()
    targets[1, 1] = bad_id  # a real position (lens[1] = 2)
    with pytest.raises(ValueError, match=rf"targets \(at real positions\) holds token ids .*{V} tokens"):
        masked_cross_entropy(logits, targets, lens)


@pytest.mark.parametrize(
    "args, match",
    [
        ((torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.long), [1, 1]), r"logits must have shape \(B, T, V\)"),
        ((torch.zeros(2, 3, 4), torch.zeros(2, 2, dtype=torch.long), [1, 1]), r"targets must have shape \(B, T\)"),
        ((torch.zeros(2, 3, 4), torch.zeros(2, 3), [1, 1]), "targets must hold int64"),
        ((torch.zeros(2, 3, 4), torch.zeros(2, 3, dtype=torch.long), [0, 0]), "no target token"),
        ((torch.zeros(2, 3, 4), torch.zeros(2, 3, dtype=torch.long), [1, 4]), r"valid_lens must lie in \[0, 3\]"),
        ((torch.zeros(2, 3, 4), torch.zeros(2, 3, dtype=torch.long), [1, 1, 1]), r"valid_lens must have shape \(B,\)"),
        ((torch.zeros(2, 3, 4), torch.zeros(2, 3, dtype=torch.long), [1, 1], 1.0), "label_smoothing"),
        ((torch.zeros(2, 3, 4), torch.zeros(2, 3, dtype=torch.long), [1, 1], -0.1), "label_smoothing"),
        ((torch.zeros(2, 3, 4), torch.zeros(2, 3, dtype=torch.long), [1, 1], math.nan), "label_smoothing"),
    ],
)
def test_masked_cross_entropy_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        masked_cross_entropy(*args)


# -- seq2seq_loss ---------------------------------------------------------------------------------
class RecordingModel(nn.Module):
    """Returns fixed logits and records the decoder input it was given."""

    bos_id = BOS

    def __init__(self, logits):
        super().__init__()
        self.logits, self.seen = logits, None

    def forward(self, src, src_valid_lens, tgt_in):
        self.seen = tgt_in
        return self.logits


@pytest.mark.parametrize("as_list", [False, True])
def test_seq2seq_loss_teacher_forces_and_counts_real_tokens(as_list):
    logits, tgt, tgt_lens = random_batch(seed=2, lens=(4, 1, 5))
    model = RecordingModel(logits)
    src, src_lens = padded_sources(batch_size=3)
    lens_arg = tgt_lens.tolist() if as_list else tgt_lens
    loss, count = seq2seq_loss(model, (src, src_lens, tgt, lens_arg))
    assert count == 10 and isinstance(count, int)
    assert model.seen.tolist() == [[BOS] + row[:-1] for row in tgt.tolist()]
    torch.testing.assert_close(loss.double(), loop_cross_entropy(logits, tgt, tgt_lens))


def test_seq2seq_loss_of_a_real_model_is_its_teacher_forced_cross_entropy():
    model = tiny_gru(seed=1)
    src, src_lens = padded_sources(seed=1)
    tgt = torch.tensor([[5, 6, EOS, PAD], [7, EOS, PAD, PAD], [4, 4, 4, EOS], [EOS, PAD, PAD, PAD]])
    tgt_lens = torch.tensor([3, 2, 4, 1])
    loss, count = seq2seq_loss(model, (src, src_lens, tgt, tgt_lens))
    logits = model(src, src_lens, torch.cat([torch.full((4, 1), BOS), tgt[:, :-1]], 1))  # shift right by hand
    torch.testing.assert_close(loss.double(), loop_cross_entropy(logits, tgt, tgt_lens), rtol=1e-5, atol=1e-6)
    assert count == 10


@pytest.mark.parametrize("bad", [nn.Linear(2, 2), "model", None])
def test_seq2seq_loss_rejects_a_model_without_the_encoder_decoder_interface(bad):
    src = torch.zeros(1, 3, dtype=torch.long)
    lens = torch.tensor([3])
    with pytest.raises(ValueError, match=r"model must be an encoder-decoder"):
        seq2seq_loss(bad, (src, lens, src, lens))


def test_seq2seq_loss_rejects_a_malformed_batch():
    with pytest.raises(ValueError, match=r"batch must be \(src, src_valid_lens, tgt, tgt_valid_lens\)"):
        seq2seq_loss(tiny_gru(), (torch.zeros(1, 3, dtype=torch.long),))


def test_seq2seq_loss_label_smoothing_is_the_smoothed_cross_entropy():
    class Toy(nn.Module):
        bos_id = 1

        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(6, 6)

        def forward(self, src, src_lens, tgt_in):
            return self.emb(tgt_in)  # (B, T, V)

    torch.manual_seed(0)
    model = Toy()
    batch = (
        torch.zeros(2, 3, dtype=torch.long),
        torch.tensor([3, 3]),
        torch.tensor([[2, 3, 4], [5, 2, 0]]),
        torch.tensor([3, 2]),
    )
    loss, n = seq2seq_loss(model, batch, label_smoothing=0.1)
    logits = model.emb(shift_right(batch[2], 1))
    logp = logits.log_softmax(-1)
    keep = torch.tensor([[1, 1, 1], [1, 1, 0]], dtype=torch.bool)
    nll = -logp.gather(-1, batch[2].unsqueeze(-1)).squeeze(-1)
    by_hand = (0.9 * nll - 0.1 * logp.mean(-1))[keep].mean()  # (1 - eps) NLL + eps * uniform CE
    torch.testing.assert_close(loss, by_hand)
    assert n == 5
