"""Tests for d2l_attn.decoding: greedy search, beam search, sampling, sequence log-probabilities.

Most tests use :class:`tiny_models.TableModel`, whose probabilities are known exactly, so that
search results can be checked against exhaustive enumeration and against hand-computed numbers;
the others run the real GRU and Transformer models of chapters 4 and 7.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from tiny_models import (
    BOS,
    EOS,
    T_EOS,
    T_PAD,
    TGT_VOCAB,
    ScriptedModel,
    TableModel,
    padded_sources,
    tiny_gpt,
    tiny_gru,
    tiny_transformer,
)
from torch import nn

from d2l_attn.decoding import beam_search, greedy_decode, sample, sequence_log_prob
from d2l_attn.losses import shift_right
from d2l_attn.models.gpt import GPT

A, B, X, Y, Z = 3, 4, 5, 6, 7  # ordinary tokens of the hand-made tables (V = 8)


def sources(*ids: int, src_len: int = 1):
    """One source row per id (the TableModel reads only the first token), all of length ``src_len``."""
    src = torch.tensor([[i] + [T_PAD] * (src_len - 1) for i in ids])
    return src, torch.full((len(ids),), src_len)


def with_eos(tokens: list[int], max_len: int, eos: int = T_EOS) -> list[int]:
    """A decoder's token list as the scored output: ``<eos>`` appended unless it stopped at ``max_len``."""
    return tokens + [eos] if len(tokens) < max_len else tokens


def all_outputs(vocab_size: int, max_len: int, eos: int = T_EOS):
    """Every output a decoder can return, as scored sequences: each non-<eos> prefix of length
    < max_len followed by <eos>, and every length-max_len sequence without <eos>."""
    ordinary = [t for t in range(vocab_size) if t != eos]
    for length in range(max_len + 1):
        for body in itertools.product(ordinary, repeat=length):
            yield list(body) + [eos] if length < max_len else list(body)


# -- beam search: exact when the beam holds everything -------------------------------------------
@pytest.mark.parametrize("alpha", [0.0, 0.75])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_search_with_a_full_beam_is_exhaustive_search(seed, alpha):
    vocab_size, max_len = 6, 3
    model = TableModel.random(num_sources=3, vocab_size=vocab_size, max_len=max_len, seed=seed)
    candidates = list(all_outputs(vocab_size, max_len))
    assert len(candidates) == 1 + 5 + 25 + 125  # <pad> and <bos> are tokens like any other here
    src, lens = sources(0, 1, 2)
    found = beam_search(model, src, lens, max_len, beam_size=len(candidates), length_penalty=alpha)
    for s in range(3):
        scores = [model.log_prob(s, y) / len(y) ** alpha for y in candidates]
        best = candidates[max(range(len(candidates)), key=scores.__getitem__)]
        assert with_eos(found[s], max_len) == best, (s, found[s], best)
        # sequence_log_prob (through step) gives the table's numbers
        tgt = torch.tensor([best + [T_PAD] * (max_len - len(best))])
        lp = sequence_log_prob(model, src[s : s + 1], lens[s : s + 1], tgt, [len(best)])
        assert lp.item() == pytest.approx(model.log_prob(s, best), abs=1e-5)


@pytest.mark.parametrize(
    "make",
    [
        lambda: tiny_gru(seed=7, tgt_vocab_size=6),
        lambda: tiny_transformer(seed=7, d_model=8, num_heads=2, num_layers=1),
    ],
)
def test_full_beam_finds_the_most_likely_output_of_a_real_model(make):
    """The same on a real (untrained) model, scored by its teacher-forced forward pass."""
    model = make()
    vocab_size, max_len = model.decoder.vocab_size, 3
    if vocab_size > 6:  # the Transformer's 15 tokens: keep the enumeration small
        max_len = 2
    candidates = list(all_outputs(vocab_size, max_len, eos=EOS))
    src, lens = padded_sources(seed=7, batch_size=1, num_steps=4)
    found = beam_search(model, src, lens, max_len, beam_size=len(candidates), length_penalty=0.0)[0]
    width = max(len(y) for y in candidates)
    tgt = torch.tensor([y + [BOS] * (width - len(y)) for y in candidates])  # (N, width), BOS as filler
    n = len(candidates)
    with torch.no_grad():
        log_p = model(src.expand(n, -1), lens.expand(n), shift_right(tgt, BOS)).log_softmax(-1)  # (N, width, V)
    token_lp = log_p.gather(-1, tgt.unsqueeze(-1)).squeeze(-1)  # (N, width)
    real = torch.arange(width) < torch.tensor([len(y) for y in candidates])[:, None]
    totals = (token_lp * real).sum(-1)  # (N,)
    found_score = totals[candidates.index(with_eos(found, max_len, EOS))]
    assert found_score >= totals.max() - 1e-5


def test_full_beam_finds_the_most_likely_continuation_of_a_gpt():
    """The exhaustive oracle on chapter 9's GPT: it runs through GPT.reorder_state at every step."""
    from d2l_attn.models.gpt import GPT, GPTConfig

    torch.manual_seed(7)
    vocab_size, eos, max_len = 5, 4, 3
    model = GPT(GPTConfig(vocab_size=vocab_size, max_len=8, num_layers=2, num_heads=2, d_model=8, eos_id=eos)).eval()
    prompt = torch.tensor([[1, 0, 2]])
    candidates = list(all_outputs(vocab_size, max_len, eos=eos))
    found = beam_search(model, prompt, torch.tensor([3]), max_len, beam_size=len(candidates), length_penalty=0.0)[0]
    totals = []
    with torch.no_grad():
        for y in candidates:
            log_p = model(torch.cat([prompt, torch.tensor([y])], dim=1)).log_softmax(-1)[0]  # (3 + |y|, V)
            totals.append(sum(float(log_p[2 + i, t]) for i, t in enumerate(y)))  # position 2 + i predicts y_i
    assert totals[candidates.index(with_eos(found, max_len, eos))] >= max(totals) - 1e-5


# -- beam search vs greedy: hand-made tables -------------------------------------------------------
BEAM_BEATS_GREEDY = {
    (): {A: 0.55, B: 0.40},  # greedy takes A, the locally best first token ...
    (A,): {X: 0.36, Y: 0.34, T_EOS: 0.25},
    (A, X): {T_EOS: 0.95},  # ... and ends with P = .55 * .36 * .95 = .1881
    (B,): {T_EOS: 0.90},  # B <eos> has P = .4 * .9 = .36
}


def test_beam_search_beats_greedy_when_the_best_first_token_leads_nowhere():
    model = TableModel.from_probs(8, 3, BEAM_BEATS_GREEDY)
    src, lens = sources(0)
    greedy = greedy_decode(model, src, lens, 3)
    beam = beam_search(model, src, lens, 3, beam_size=2, length_penalty=0.0)
    assert greedy == [[A, X]] and beam == [[B]]
    tgt = torch.tensor([[A, X, T_EOS], [B, T_EOS, T_PAD]])
    lp = sequence_log_prob(model, src.expand(2, -1), lens.expand(2), tgt, [3, 2])
    torch.testing.assert_close(lp, torch.tensor([math.log(0.55 * 0.36 * 0.95), math.log(0.4 * 0.9)]))
    assert beam_search(model, src, lens, 3, beam_size=1) == greedy


LENGTH_MATTERS = {
    (): {T_EOS: 0.50, A: 0.45},  # the empty output: P = .5, one token (<eos>)
    (A,): {B: 0.90},
    (A, B): {T_EOS: 0.90},  # A B <eos>: P = .45 * .9 * .9 = .3645, three tokens
}


def test_the_length_penalty_flips_the_winner():
    model = TableModel.from_probs(8, 3, LENGTH_MATTERS)
    src, lens = sources(0)
    # alpha = 0: log .5 = -0.693 > log .3645 = -1.009;  alpha = 1: -0.693 / 1 < -1.009 / 3 = -0.336
    assert beam_search(model, src, lens, 3, beam_size=2, length_penalty=0.0) == [[]]
    assert beam_search(model, src, lens, 3, beam_size=2, length_penalty=1.0) == [[A, B]]
    lp = sequence_log_prob(
        model, src.expand(2, -1), lens.expand(2), torch.tensor([[T_EOS, 0, 0], [A, B, T_EOS]]), [1, 3]
    )
    torch.testing.assert_close(lp, torch.tensor([math.log(0.5), math.log(0.45 * 0.9 * 0.9)]))


def test_the_length_in_the_penalty_counts_eos():
    """<eos> alone: P = .3, L = 1; A <eos>: P = .6 * .45 = .27, L = 2. With alpha = 1 the longer
    wins (-1.204 / 1 < -1.309 / 2); a length that left out <eos> (0 -> 1 and 1) would pick <eos> alone."""
    model = TableModel.from_probs(8, 2, {(): {T_EOS: 0.30, A: 0.60}, (A,): {T_EOS: 0.45}})
    src, lens = sources(0)
    assert beam_search(model, src, lens, 2, beam_size=2, length_penalty=1.0) == [[A]]
    assert beam_search(model, src, lens, 2, beam_size=2, length_penalty=0.0) == [[]]


LARGER_BEAM_WORSE = {
    (): {A: 0.50, B: 0.45},
    (A,): {X: 0.40},  # A X: .2 -- the other tokens get .6 / 7 each
    (A, X): {T_EOS: 0.99},  # A X <eos>: .198
    (B,): {Y: 0.50, Z: 0.49},  # B Y: .225 and B Z: .2205 both beat A X: a beam of 2 drops A X
    (B, Y): {T_EOS: 0.20},  # B Y <eos>: .045, the best that beam of 2 can still reach
}


def test_a_larger_beam_can_return_a_less_likely_output():
    """Beam search is not monotone in the beam size: 1 and 3 find P = .198, 2 finds only .045."""
    model = TableModel.from_probs(8, 3, LARGER_BEAM_WORSE)
    src, lens = sources(0)
    results = {k: beam_search(model, src, lens, 3, beam_size=k, length_penalty=0.0)[0] for k in (1, 2, 3)}
    assert results == {1: [A, X], 2: [B, Y], 3: [A, X]}
    assert model.log_prob(0, [A, X, T_EOS]) == pytest.approx(math.log(0.5 * 0.4 * 0.99))
    assert model.log_prob(0, [B, Y, T_EOS]) == pytest.approx(math.log(0.45 * 0.5 * 0.2))


# -- weights and batches ------------------------------------------------------------------------------
def test_beam_and_greedy_weights_are_those_of_the_returned_hypothesis():
    """The weights come from each hypothesis' own history (beam search reorders them at every step)."""
    max_len = 3
    model = TableModel.random(num_sources=4, vocab_size=6, max_len=max_len, seed=3, src_len=5)
    src, lens = sources(0, 1, 2, 3, src_len=5)
    lens = torch.tensor([5, 2, 4, 1])
    for decode in (
        lambda: greedy_decode(model, src, lens, max_len, return_weights=True),
        lambda: beam_search(model, src, lens, max_len, beam_size=4, return_weights=True),
    ):
        outputs, mats = decode()
        for s, (tokens, mat) in enumerate(zip(outputs, mats)):
            y = with_eos(tokens, max_len)
            _, teacher = sequence_log_prob(
                model, src[s : s + 1], lens[s : s + 1], torch.tensor([y]), return_weights=True
            )  # (1, len(y), T)
            assert mat.shape == (len(y), int(lens[s]))
            torch.testing.assert_close(mat, teacher[0, :, : int(lens[s])])


@pytest.mark.parametrize("make", [lambda: tiny_gru(2, seed=4), lambda: tiny_transformer(seed=4)])
@pytest.mark.parametrize("beam_size", [1, 3])
def test_decoded_weights_equal_the_teacher_forced_forward_pass(make, beam_size):
    model = make()
    src, lens = padded_sources(seed=4, batch_size=3, num_steps=6)
    outputs, mats = beam_search(model, src, lens, 5, beam_size=beam_size, return_weights=True)
    if beam_size == 1:
        assert outputs == greedy_decode(model, src, lens, 5)
    for b, (tokens, mat) in enumerate(zip(outputs, mats)):
        y = torch.tensor([with_eos(tokens, 5, EOS)])
        _, weights = model(src[b : b + 1], lens[b : b + 1], shift_right(y, BOS), return_weights=True)
        if not isinstance(weights, torch.Tensor):  # the Transformer: last layer's cross-attention, mean over heads
            weights = weights.decoder_cross[:, -1].mean(1)
        torch.testing.assert_close(mat, weights[0, :, : int(lens[b])], atol=1e-5, rtol=1e-4)


def test_table_model_decodes_a_batch_like_each_sentence_alone():
    model = TableModel.random(num_sources=5, vocab_size=6, max_len=4, seed=5, src_len=6)
    src, _ = sources(0, 1, 2, 3, 4, src_len=6)
    lens = torch.tensor([6, 1, 3, 2, 5])
    for decode in (
        lambda s, n: greedy_decode(model, s, n, 4, return_weights=True),
        lambda s, n: beam_search(model, s, n, 4, beam_size=3, return_weights=True),
    ):
        batched, batched_w = decode(src, lens)
        for b in range(5):
            alone, alone_w = decode(src[b : b + 1, : lens[b]], lens[b : b + 1])
            assert alone == batched[b : b + 1]
            torch.testing.assert_close(alone_w[0], batched_w[b])


@pytest.mark.parametrize(
    "make", [lambda: tiny_gru(1, seed=5), lambda: tiny_transformer(seed=5), lambda: tiny_gpt(seed=5)]
)
def test_real_models_decode_a_padded_batch_like_each_sentence_alone(make):
    # for a GPT (prompts without padding) beam search runs through GPT.reorder_state: a cache row
    # moved to the wrong hypothesis changes that row's continuation
    model = make()
    src, lens = padded_sources(seed=5, batch_size=5, num_steps=6, padding=not isinstance(model, GPT))
    for decode in (
        lambda s, n: greedy_decode(model, s, n, 6),
        lambda s, n: beam_search(model, s, n, 6, beam_size=3, length_penalty=0.0),
        lambda s, n: beam_search(model, s, n, 6, beam_size=4, length_penalty=0.75),
    ):
        batched = decode(src, lens)
        for b in range(5):
            assert decode(src[b : b + 1, : lens[b]], lens[b : b + 1]) == batched[b : b + 1]


def test_rows_that_finished_stay_finished():
    """One row stops at once, the other runs to max_len; every decoder keeps them apart."""
    model = TableModel.from_probs(8, 4, {(): {T_EOS: 0.999}})  # source 0: <eos> first
    table = torch.cat([model.logits, torch.zeros_like(model.logits)])  # source 1: uniform
    table[1, :, T_EOS] = -30.0  # source 1 never stops
    model = TableModel(table)
    src, lens = sources(0, 1)
    for out in (
        greedy_decode(model, src, lens, 4),
        beam_search(model, src, lens, 4, beam_size=2),
        sample(model, src, lens, 4, generator=torch.Generator().manual_seed(0)),
    ):
        assert out[0] == [] and len(out[1]) == 4 and T_EOS not in out[1]


# -- greedy decoding ---------------------------------------------------------------------------------
def test_greedy_decode_matches_teacher_forcing_on_its_own_output():
    model = tiny_gru(2)
    src, lens = padded_sources(seed=4)
    outputs, mats = greedy_decode(model, src, lens, max_len=6, return_weights=True)
    for b, tokens in enumerate(outputs):
        logits = model(src[b : b + 1], lens[b : b + 1], torch.tensor([[BOS] + tokens]))
        predicted = logits.argmax(-1)[0].tolist()
        assert predicted[: len(tokens)] == tokens
        assert mats[b].shape[1] == lens[b]
        torch.testing.assert_close(mats[b].sum(-1), torch.ones(mats[b].shape[0]))


def test_greedy_decode_matches_argmax_of_full_recomputation():
    """The Transformer decodes with its key/value cache; recompute the whole prefix at every step instead."""
    model = tiny_transformer(seed=3)
    src, lens = padded_sources(seed=3, num_steps=6, vocab_size=13)
    out = greedy_decode(model, src, lens, max_len=6)
    prefix = torch.full((4, 1), BOS)
    for _ in range(6):
        nxt = model(src, lens, prefix)[:, -1].argmax(-1, keepdim=True)
        prefix = torch.cat([prefix, nxt], 1)
    expected = [row[: row.index(EOS)] if EOS in row else row for row in prefix[:, 1:].tolist()]
    assert out == expected


@pytest.mark.parametrize(
    "make", [lambda s: tiny_gru(2, seed=s), lambda s: tiny_transformer(seed=s), lambda s: tiny_gpt(seed=s)]
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_search_with_one_beam_is_greedy(make, seed):
    model = make(seed)
    gpt = isinstance(model, GPT)  # its step returns no attention weights
    src, lens = padded_sources(seed=seed, batch_size=6, padding=not gpt)
    greedy = greedy_decode(model, src, lens, max_len=8, return_weights=not gpt)
    beam = beam_search(model, src, lens, max_len=8, beam_size=1, return_weights=not gpt)
    if gpt:
        assert beam == greedy
        return
    assert beam[0] == greedy[0]
    for a, b in zip(greedy[1], beam[1], strict=True):
        torch.testing.assert_close(a, b)


def test_beam_search_never_scores_below_greedy_without_length_normalization_here():
    """Not a theorem (see the non-monotone test above), but true for this model and these sentences."""
    model = tiny_gru(1, seed=5)
    src, lens = padded_sources(seed=5, batch_size=5)
    beams = beam_search(model, src, lens, max_len=6, beam_size=3, length_penalty=0.0)
    greedy = greedy_decode(model, src, lens, max_len=6)

    def log_prob(outputs):
        tgt = [with_eos(o, 6, EOS) for o in outputs]
        padded = torch.tensor([y + [EOS] * (6 - len(y)) for y in tgt])
        return sequence_log_prob(model, src, lens, padded, [len(y) for y in tgt])

    assert torch.all(log_prob(beams) >= log_prob(greedy) - 1e-5)


# -- sampling -----------------------------------------------------------------------------------------
def first_token_model(logits: list[float]) -> TableModel:
    """A TableModel whose first-step logits are ``logits`` (V = len(logits)); later steps uniform."""
    table = torch.zeros(1, 1 + len(logits), len(logits))
    table[0, 0] = torch.tensor(logits)
    return TableModel(table)


FIRST_LOGITS = [0.3, -1.0, 1.2, 2.0, 0.9, -0.4, 1.5, 0.0]


def nucleus(probs: torch.Tensor, top_p: float) -> set[int]:
    """The smallest set of most likely tokens whose probability reaches top_p (by hand)."""
    kept, mass = set(), 0.0
    for token in probs.argsort(descending=True).tolist():
        kept.add(token)
        mass += probs[token].item()
        if mass >= top_p:
            return kept
    return kept


@pytest.mark.parametrize(
    "temperature, top_k, top_p",
    [(1.0, None, None), (0.5, None, None), (2.0, None, None), (1.0, 3, None), (0.7, None, 0.6), (1.3, 4, 0.8)],
)
def test_sampled_first_tokens_follow_the_filtered_tempered_softmax(temperature, top_k, top_p):
    model = first_token_model(FIRST_LOGITS)
    n = 20_000
    src, lens = sources(*[0] * n)
    out = sample(
        model,
        src,
        lens,
        1,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        generator=torch.Generator().manual_seed(1),
    )
    first = torch.tensor([o[0] if o else T_EOS for o in out])
    counts = torch.bincount(first, minlength=len(FIRST_LOGITS)).double()
    probs = (torch.tensor(FIRST_LOGITS, dtype=torch.float64) / temperature).softmax(-1)
    allowed = set(range(len(FIRST_LOGITS)))
    if top_k is not None:
        allowed = set(probs.topk(top_k).indices.tolist())
    if top_p is not None:
        restricted = torch.zeros_like(probs)
        restricted[list(allowed)] = probs[list(allowed)]
        allowed = nucleus(restricted / restricted.sum(), top_p)
    outside = [t for t in range(len(FIRST_LOGITS)) if t not in allowed]
    assert counts[outside].sum() == 0, "a token outside the top-k / nucleus set was drawn"
    idx = sorted(allowed)
    expected = n * probs[idx] / probs[idx].sum()
    chi2 = ((counts[idx] - expected) ** 2 / expected).sum().item()
    dof = len(idx) - 1
    assert chi2 < dof + 5 * math.sqrt(2 * dof) + 5, (chi2, dof)  # far beyond the 99.9% quantile


@pytest.mark.parametrize(
    "make", [lambda: tiny_gru(2, seed=6), lambda: tiny_transformer(seed=6), lambda: tiny_gpt(seed=6)]
)
@pytest.mark.parametrize(
    "kwargs", [dict(temperature=1e-6), dict(top_k=1), dict(top_p=1e-9), dict(temperature=3.0, top_k=1)]
)
def test_sampling_that_leaves_one_choice_is_greedy(make, kwargs):
    model = make()
    src, lens = padded_sources(seed=6, batch_size=6, num_steps=6, padding=not isinstance(model, GPT))
    g = torch.Generator().manual_seed(0)
    assert sample(model, src, lens, 6, generator=g, **kwargs) == greedy_decode(model, src, lens, 6)


def test_top_k_keeps_exactly_k_tokens_even_when_logits_tie():
    model = first_token_model([0.0, 1.0, 1.0, 1.0, 1.0, -1.0])
    src, lens = sources(*[0] * 2000)
    out = sample(model, src, lens, 1, top_k=2, generator=torch.Generator().manual_seed(0))
    assert len({o[0] for o in out}) == 2


def test_a_seeded_generator_reproduces_draws_and_leaves_the_global_rng_alone():
    model = tiny_gru(1, seed=8)
    src, lens = padded_sources(seed=8, batch_size=8, num_steps=5)
    before = torch.get_rng_state()
    first = sample(model, src, lens, 6, temperature=1.5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(torch.get_rng_state(), before)
    again = sample(model, src, lens, 6, temperature=1.5, generator=torch.Generator().manual_seed(3))
    other = sample(model, src, lens, 6, temperature=1.5, generator=torch.Generator().manual_seed(4))
    assert first == again and first != other


# -- sequence_log_prob ---------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda: tiny_gru(2, seed=9), lambda: tiny_transformer(seed=9, norm_first=True)])
def test_sequence_log_prob_is_the_teacher_forced_sum_of_log_softmax(make):
    model = make()
    src, lens = padded_sources(seed=9, batch_size=3, num_steps=6)
    tgt = torch.tensor([[5, 6, 7, EOS, 4], [8, EOS, 9, 9, 9], [4, 5, 6, 7, 8]])
    tgt_lens = torch.tensor([4, 2, 5])
    lp = sequence_log_prob(model, src, lens, tgt, tgt_lens)
    with torch.no_grad():
        log_p = model(src, lens, shift_right(tgt, BOS)).log_softmax(-1)  # (B, T', V)
    expected = [sum(log_p[b, t, tgt[b, t]].item() for t in range(int(tgt_lens[b]))) for b in range(3)]
    torch.testing.assert_close(lp, torch.tensor(expected), atol=1e-5, rtol=1e-5)
    # tokens past tgt_valid_lens are not scored; without lengths every token is
    changed = tgt.clone()
    changed[0, 4], changed[1, 2:] = 9, 4
    torch.testing.assert_close(sequence_log_prob(model, src, lens, changed, tgt_lens), lp)
    full = sum(log_p[2, t, tgt[2, t]].item() for t in range(5))
    assert sequence_log_prob(model, src, lens, tgt)[2].item() == pytest.approx(full, abs=1e-5)


def test_sequence_log_prob_of_a_scripted_model():
    """The ScriptedModel puts logit +10 on its token and -10 on the 14 others: each step scores
    log(e^10 / (e^10 + 14 e^-10)) when the given token is the scripted one, and -20 + that otherwise."""
    model = ScriptedModel(lambda src: [5, 6], TGT_VOCAB)
    src, lens = padded_sources(batch_size=2, num_steps=3)
    hit = -math.log1p(14 * math.exp(-20))
    lp = sequence_log_prob(model, src, lens, torch.tensor([[5, 6, EOS], [5, 7, EOS]]))
    torch.testing.assert_close(lp, torch.tensor([3 * hit, 3 * hit - 20.0]))


# -- bad arguments ---------------------------------------------------------------------------------------
SRC, LENS = torch.ones(2, 3, dtype=torch.long) * 4, torch.tensor([3, 2])


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda m: greedy_decode(m, SRC, LENS, max_len=0), "max_len must be a positive int"),
        (lambda m: beam_search(m, SRC, LENS, 3, beam_size=0), "beam_size must be a positive int"),
        (lambda m: beam_search(m, SRC, LENS, 3, beam_size=2.0), "beam_size must be a positive int"),
        *[
            (
                lambda m, a=a: beam_search(m, SRC, LENS, 3, 2, length_penalty=a),
                r"length_penalty must be a number in \[0",
            )
            for a in (math.nan, math.inf, -1, "a", None, True)
        ],
        *[
            (lambda m, t=t: sample(m, SRC, LENS, 3, temperature=t), r"temperature must be a number in \(0")
            for t in (0, -1.0, math.nan, math.inf, "1")
        ],
        (lambda m: sample(m, SRC, LENS, 3, top_k=0), "top_k must be a positive int"),
        (lambda m: sample(m, SRC, LENS, 3, top_k=1.5), "top_k must be a positive int"),
        *[
            (lambda m, p=p: sample(m, SRC, LENS, 3, top_p=p), r"top_p must be a number in \(0.0, 1.0\]")
            for p in (0, 0.0, 1.5, math.nan, -0.2)
        ],
        (lambda m: sample(m, SRC, LENS, 3, generator=0), "generator must be a torch.Generator"),
        (lambda m: greedy_decode(m, SRC.float(), LENS, 3), "src must be an int64 tensor of token ids"),
        (lambda m: beam_search(m, SRC[0], LENS, 3), r"src must be an int64 tensor of token ids with shape \(B, T\)"),
        (lambda m: greedy_decode(m, SRC, LENS[:1], 3), r"src_valid_lens must have shape \(B,\) = \(2,\)"),
        (lambda m: sample(m, SRC, LENS[:, None], 3), r"src_valid_lens must have shape \(B,\)"),
        (lambda m: beam_search(m, SRC, [3, 4], 3), r"src_valid_lens must lie in \[0, 3\]"),
        (lambda m: greedy_decode(m, SRC + 20, LENS, 3), "src holds token ids from 24 to 24"),
        (lambda m: sequence_log_prob(m, SRC, LENS, SRC + 20), "tgt holds token ids from 24 to 24"),
        (lambda m: sequence_log_prob(m, SRC, LENS, SRC.float()), "tgt must be an int64 tensor"),
        (lambda m: sequence_log_prob(m, SRC, LENS, SRC[:1]), "need the batch size of src"),
        (lambda m: sequence_log_prob(m, SRC, LENS, SRC, [1, 4]), r"tgt_valid_lens must lie in \[0, 3\]"),
        (lambda m: sequence_log_prob(m, SRC, LENS, SRC[:, :0]), "at least one token"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call(tiny_gru())


@pytest.mark.parametrize("decode", [greedy_decode, lambda *a, **k: beam_search(*a, beam_size=2, **k)])
def test_asking_for_weights_a_model_does_not_return_is_an_error(decode):
    model = TableModel(torch.zeros(1, 10, 3))  # no weight_scores: step() returns weights None
    with pytest.raises(ValueError, match="returns no attention weights"):
        decode(model, *sources(0), 2, return_weights=True)


class Incomplete(nn.Module):
    bos_id, eos_id, pad_id = 1, 2, 0

    def init_state(self, src, lens):
        return None

    def step(self, tokens, state):
        return None


@pytest.mark.parametrize("bad", [nn.Linear(2, 2), "model", None, Incomplete()])
def test_decoders_reject_a_model_that_is_not_a_step_model(bad):
    src, lens = torch.zeros(1, 3, dtype=torch.long), torch.tensor([3])
    for call in (
        lambda: greedy_decode(bad, src, lens, 4),
        lambda: beam_search(bad, src, lens, 4),
        lambda: sample(bad, src, lens, 4),
        lambda: sequence_log_prob(bad, src, lens, src),
    ):
        with pytest.raises(ValueError, match=r"model must be an nn.Module with init_state"):
            call()


def test_every_decoder_accepts_no_lengths_for_an_unpadded_prompt():
    """``src_valid_lens=None``: all positions valid (a GPT prompt has no padding); same as full lengths."""
    from d2l_attn.models import GPT, GPTConfig

    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=16, max_len=16, num_layers=1, num_heads=2, d_model=8, eos_id=3)).eval()
    prompt = torch.tensor([[5, 6, 7], [8, 9, 10]])
    full = torch.tensor([3, 3])
    assert greedy_decode(gpt, prompt, None, 5) == greedy_decode(gpt, prompt, full, 5)
    assert beam_search(gpt, prompt, None, 5, beam_size=2) == beam_search(gpt, prompt, full, 5, beam_size=2)
    draw = lambda lens: sample(gpt, prompt, lens, 5, generator=torch.Generator().manual_seed(1))
    assert draw(None) == draw(full)
    tgt = torch.tensor([[1, 2, 3], [4, 5, 3]])
    torch.testing.assert_close(sequence_log_prob(gpt, prompt, None, tgt), sequence_log_prob(gpt, prompt, full, tgt))
