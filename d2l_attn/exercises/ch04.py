"""Exercises of chapter 4: Bahdanau attention, the masked loss, BLEU, greedy and beam search."""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from ..losses import masked_cross_entropy
from ..metrics import bleu, brevity_penalty
from .core import ChoiceExercise, FunctionExercise, NumberExercise

_PRED, _LABEL = "je suis calme .", "je suis chez moi ."

query = ChoiceExercise(
    id="ch04-query",
    prompt=(
        "In the Bahdanau decoder of this chapter, what is the attention *query* at decoding step t'? "
        "(Keys and values are the encoder states.)"
    ),
    options=[
        "the decoder's hidden state after the previous step, s_{t'-1}",
        "the encoder's final hidden state, the same at every step",
        "the embedding of the previous target token only",
        "the average of all encoder hidden states",
    ],
    solution="a",
    wrong_answers=["b", "c", "d"],
    hints=[
        "The query must change from step to step, and it must know what has been translated so far.",
        "Look at AttentionDecoder.attend: which tensor is passed through W_q?",
    ],
    explanation="The query is the top layer of s_{t'-1}: what the decoder has produced so far decides where to look.",
)

bleu_value = NumberExercise(
    id="ch04-bleu-value",
    prompt=(
        f"Compute D2L's BLEU with k = 2 of the prediction '{_PRED}' against the reference '{_LABEL}'. (3 decimals)"
    ),
    solution=round(bleu(_PRED, _LABEL, k=2), 3),
    rtol=2e-3,
    wrong_answers=[
        round((3 / 4) ** 0.5 * (1 / 3) ** 0.25, 3),  # forgot the brevity penalty
        round(math.exp(-0.25) * (3 / 4 * 1 / 3) ** 0.5, 3),  # geometric mean (sacreBLEU-style weights)
        round(math.exp(1 - 4 / 5) * (3 / 4) ** 0.5 * (1 / 3) ** 0.25, 3),  # lengths swapped in the penalty
    ],
    hints=[
        "Three factors: the brevity penalty exp(min(0, 1 - 5/4)), p_1^(1/2) and p_2^(1/4).",
        "p_1 = 3/4 (je, suis, . match; calme does not); p_2 = 1/3 (only 'je suis' matches).",
    ],
)

beam_facts = ChoiceExercise(
    id="ch04-beam-facts",
    prompt="Which statements about decoding are true? Choose all that apply.",
    options=[
        "Beam search with beam size 1 is greedy search.",
        "Beam search always finds the most likely output sequence.",
        "Exhaustive search over outputs of length T' costs on the order of |V|^T' evaluations.",
        "Greedy search maximizes the probability of the whole output sequence.",
    ],
    solution={"a", "c"},
    wrong_answers=["a", "a, b, c", "b, d", "c, d"],
    hints=[
        "Greedy search is optimal step by step, not for the sequence; beam search keeps only k prefixes.",
        "A prefix dropped early can never come back, however likely its continuation would have been.",
    ],
    explanation=(
        "Beam search keeps the k best prefixes at every step; with k = 1 that is greedy search, and it is "
        "exact only when k covers every prefix. Otherwise it can miss the most likely sentence, and a larger "
        "beam can even return a less likely sentence than a smaller one (chapter 4, section 4.6)."
    ),
)


def _reference_brevity(len_pred: int, len_label: int) -> float:
    return brevity_penalty(len_pred, len_label)


def _bp_inputs(seed: int) -> tuple:
    # fixed cases first (shorter, equal, longer prediction), then random lengths
    fixed = [(3, 5), (5, 5), (7, 4), (1, 6)]
    if seed < len(fixed):
        return fixed[seed]
    g = torch.Generator().manual_seed(seed)
    len_pred, len_label = torch.randint(1, 15, (2,), generator=g).tolist()
    return len_pred, len_label


brevity = FunctionExercise(
    id="ch04-brevity-penalty",
    prompt=(
        "Write brevity_penalty(len_pred, len_label) -> float: BLEU's penalty for predictions shorter than "
        "the reference, exp(min(0, 1 - len_label / len_pred)) (both lengths >= 1)."
    ),
    solution=_reference_brevity,
    make_inputs=_bp_inputs,
    num_trials=8,
    forbidden=["d2l_attn"],
    wrong_answers=[
        lambda len_pred, len_label: math.exp(1 - len_label / len_pred),  # rewards long predictions
        lambda len_pred, len_label: math.exp(min(0.0, 1 - len_pred / len_label)),  # ratio upside down
        lambda len_pred, len_label: min(1.0, len_pred / len_label),  # a linear penalty
        brevity_penalty,  # right, but the exercise is to write it
    ],
    hints=[
        "A prediction at least as long as the reference gets no penalty (factor 1).",
        "Check (3, 5): the penalty is exp(1 - 5/3), about 0.513.",
    ],
)


def _loss_inputs(seed: int) -> tuple:
    g = torch.Generator().manual_seed(100 + seed)
    batch, steps, vocab = torch.randint(1, 5, (3,), generator=g).tolist()
    steps, vocab = steps + 2, vocab + 3
    logits = torch.randn(batch, steps, vocab, generator=g)
    targets = torch.randint(0, vocab, (batch, steps), generator=g)
    valid_lens = torch.randint(1, steps + 1, (batch,), generator=g)
    valid_lens[0] = 1 if steps > 1 else valid_lens[0]  # at least one padded row
    return logits, targets, valid_lens


def _reference_masked_loss(logits, targets, valid_lens):
    return masked_cross_entropy(logits, targets, valid_lens)


def _unmasked(logits, targets, valid_lens):
    return F.cross_entropy(logits.transpose(1, 2), targets)


def _divide_by_all(logits, targets, valid_lens):
    keep = torch.arange(logits.shape[1]) < valid_lens[:, None]
    per_token = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    return (per_token * keep).sum() / keep.numel()


masked_loss = FunctionExercise(
    id="ch04-masked-loss",
    prompt=(
        "Write masked_loss(logits (B, T, V), targets (B, T), valid_lens (B,)) -> the mean cross-entropy over "
        "the real target tokens only (position t of row b is real iff t < valid_lens[b])."
    ),
    solution=_reference_masked_loss,
    make_inputs=_loss_inputs,
    wrong_answers=[_unmasked, _divide_by_all, masked_cross_entropy],
    forbidden=["d2l_attn"],
    hints=[
        "Build a (B, T) boolean mask with torch.arange(T) < valid_lens[:, None].",
        "Average over the real tokens: divide by the number of True entries, not by B * T.",
    ],
)

bidirectional = ChoiceExercise(
    id="ch04-bidirectional",
    prompt=(
        "The encoder becomes a bidirectional GRU with H hidden units per direction; the decoder stays as it "
        "is otherwise. What must change? Choose all that apply."
    ),
    options=[
        "Keys and values become 2H-dimensional, so the attention's key projection W_k must accept 2H inputs.",
        "The context vector becomes 2H-dimensional, so the decoder GRU's input grows by H.",
        "The decoder's initial state must be computed from the encoder's final states of both directions "
        "(e.g. a linear layer; Bahdanau et al. use the backward state).",
        "The decoder must be bidirectional too.",
        "The target vocabulary must be rebuilt.",
    ],
    solution={"a", "b", "c"},
    wrong_answers=["a", "a, b", "a, b, c, d", "d, e"],
    hints=[
        "Follow the shapes: what does the encoder now return per source position, and per layer at the end?",
        "The decoder still generates left to right, one token at a time; only what it reads from the encoder changes shape.",
    ],
)

EXERCISES = [query, bleu_value, beam_facts, brevity, masked_loss, bidirectional]
