"""Tests for d2l_attn.embeddings: sqrt(d) scaling, positions (sinusoidal or learned), offsets, bad arguments."""

import math

import pytest
import torch

from d2l_attn.embeddings import TokenEmbedding
from d2l_attn.positional import sinusoidal_encoding

V, D, MAX_LEN = 11, 8, 20


def tokens(batch_size=3, num_steps=6, seed=0):
    return torch.randint(0, V, (batch_size, num_steps), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("d_model", [8, 64])
def test_output_is_sqrt_d_times_the_table_plus_sinusoidal_positions(d_model):
    torch.manual_seed(0)
    embed = TokenEmbedding(V, d_model, max_len=MAX_LEN)
    x = tokens()
    expected = math.sqrt(d_model) * embed.embedding.weight[x] + sinusoidal_encoding(MAX_LEN, d_model)[:6]
    torch.testing.assert_close(embed(x), expected)
    assert embed(x).shape == (3, 6, d_model)


def test_scaled_embeddings_have_the_scale_of_the_positions():
    """N(0, 1/d) initialization: sqrt(d) E[x] has variance 1 (D2L's N(0, 1) would give d)."""
    torch.manual_seed(0)
    embed = TokenEmbedding(2000, 256)
    scaled = math.sqrt(256) * embed.embedding.weight  # (V, d)
    assert abs(scaled.var().item() - 1.0) < 0.02  # 512,000 samples: the standard error is 0.002


@pytest.mark.parametrize("positions", ["sinusoidal", "learned"])
def test_offset_positions_equal_slicing_the_full_sequence(positions):
    """Generation embeds only the new tokens, at positions offset..: the same vectors as the whole prefix."""
    torch.manual_seed(0)
    embed = TokenEmbedding(V, D, max_len=MAX_LEN, positions=positions).eval()
    full = tokens(num_steps=9)
    whole = embed(full)  # (B, 9, d)
    for offset, length in [(0, 9), (4, 5), (8, 1)]:
        torch.testing.assert_close(
            embed(full[:, offset : offset + length], offset=offset), whole[:, offset : offset + length]
        )
    # the positions matter: the same token at another position gets another vector
    same = torch.full((1, 2), 3)
    assert not torch.allclose(embed(same)[0, 0], embed(same)[0, 1])


def test_learned_positions_are_a_trained_table_sinusoidal_ones_are_fixed():
    torch.manual_seed(0)
    learned = TokenEmbedding(V, D, max_len=MAX_LEN, positions="learned")
    fixed = TokenEmbedding(V, D, max_len=MAX_LEN)
    assert sum(p.numel() for p in learned.parameters()) == V * D + MAX_LEN * D
    assert sum(p.numel() for p in fixed.parameters()) == V * D  # the sinusoidal table is a buffer
    assert "pos_encoding.encoding" not in fixed.state_dict()  # recomputed, not saved
    x = tokens(num_steps=5)
    table = learned.pos_encoding.embedding.weight  # (max_len, d)
    torch.testing.assert_close(learned(x), math.sqrt(D) * learned.embedding.weight[x] + table[:5])
    learned(x).sum().backward()
    assert table.grad[:5].abs().sum() > 0 and torch.all(table.grad[5:] == 0)  # only the used positions learn
    assert learned.max_len == fixed.max_len == MAX_LEN


def test_dropout_only_in_training():
    torch.manual_seed(0)
    embed = TokenEmbedding(V, D, dropout=0.5)
    x = tokens()
    embed.eval()
    torch.testing.assert_close(embed(x), embed(x))
    embed.train()
    out = embed(x)
    assert (out == 0).float().mean() > 0.3  # about half the entries are dropped


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(vocab_size=0, d_model=8), "vocab_size"),
        (dict(vocab_size=5, d_model=0), "d_model"),
        (dict(vocab_size=5, d_model=8, dropout=1.0), "dropout"),
        (dict(vocab_size=5, d_model=8, positions="rotary"), "positions must be 'sinusoidal' or 'learned'"),
        (dict(vocab_size=5, d_model=7), "d_model must be even"),
        (dict(vocab_size=5, d_model=8, max_len=0), "max_len"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TokenEmbedding(**kwargs)


def test_positions_beyond_max_len_and_bad_offsets_are_rejected():
    embed = TokenEmbedding(V, D, max_len=6)
    with pytest.raises(ValueError, match="exceeds max_len=6"):
        embed(tokens(num_steps=7))
    with pytest.raises(ValueError, match="exceeds max_len=6"):
        embed(tokens(num_steps=3), offset=4)
    with pytest.raises(ValueError, match="offset"):
        embed(tokens(num_steps=3), offset=-1)
