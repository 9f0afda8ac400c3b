"""Exercises of chapter 9: pretraining (perplexity, BERT's masking, what BERT is, the KV cache, top-p, the LM loss)."""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from ..decoding import _filter_logits
from ..losses import lm_loss
from .core import ChoiceExercise, FunctionExercise, NumberExercise

perplexity = NumberExercise(
    id="ch09-perplexity",
    prompt=(
        "A language model's held-out loss is 4.0 nats per token. What is its perplexity? And what is the "
        "perplexity of a model that predicts every one of V tokens with probability 1/V?"
    ),
    solution=math.exp(4.0),
    rtol=1e-2,
    wrong_answers=[2**4.0, 4.0, math.log(4.0), 10**4.0],
    hints=[
        "Perplexity is exp(mean cross-entropy) when the loss is measured in nats.",
        "exp(4.0); the uniform model's loss is ln V, so its perplexity is exactly V.",
    ],
    explanation="e^4 = 54.6: the model is as unsure as a uniform choice among about 55 tokens.",
)

masked_count = NumberExercise(
    id="ch09-masked-count",
    prompt=(
        "BERT's masking picks 15% of the 200 real, non-special tokens of a sequence; each picked token becomes "
        "[MASK] with probability 0.8, a random token with probability 0.1 and stays unchanged with probability "
        "0.1. How many [MASK] tokens does the input hold on average?"
    ),
    solution=200 * 0.15 * 0.8,
    rtol=1e-3,
    wrong_answers=[200 * 0.15, 200 * 0.8, 200 * 0.15 * 0.9, 200 * 0.15 * 0.1],
    hints=[
        "First count the picked positions, then the share of them that becomes [MASK].",
        "200 * 0.15 positions are predicted; 80% of them are replaced by [MASK].",
    ],
)

what_bert_is = ChoiceExercise(
    id="ch09-what-bert-is",
    prompt="Which statements about BERT (Devlin et al., 2019) are true? Choose all that apply.",
    options=[
        "Its position embedding is a learned table with one vector per absolute position.",
        "Each encoder layer applies its feed-forward network twice.",
        "Its self-attention is bidirectional: no causal mask, every token sees every real token.",
        "Its output for a token is the MLM head's prediction added to the self-attention output.",
        "The masked-LM loss is computed only at the picked positions, including the 10% left unchanged.",
    ],
    solution={"a", "c", "e"},
    wrong_answers=["a, b, c", "b, d", "a, c, d, e", "c", "a, c"],
    hints=[
        "Look at bert.position_embedding and at the modules of one block (section 9.4).",
        "The MLM head runs on top of the last layer during pretraining only; nothing is added back.",
    ],
)

kv_cache_size = NumberExercise(
    id="ch09-kv-cache",
    prompt=(
        "GPT-2 small has 12 layers of width d = 768. How many numbers does its key/value cache hold for one "
        "sequence of 1024 tokens (all heads together)?"
    ),
    solution=2 * 12 * 1024 * 768,
    rtol=1e-3,
    wrong_answers=[12 * 1024 * 768, 2 * 1024 * 768, 2 * 12 * 1024 * 1024, 3 * 12 * 1024 * 768],
    hints=[
        "Every layer keeps one key and one value vector of width d per token (the heads split d).",
        "2 (keys and values) x 12 layers x 1024 tokens x 768.",
    ],
    explanation="18,874,368 numbers: about 75 MB in float32, per sequence.",
)


def _top_p_inputs(seed: int):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(4, 7 + seed, generator=g) * 2  # distinct values: no ties at the boundary
    return logits, [0.1, 0.5, 0.8, 0.9, 0.95][seed % 5]


def _reference_top_p(logits: torch.Tensor, p: float) -> torch.Tensor:
    return _filter_logits(logits, None, p)


def _wrong_top_p_exclusive(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keeps tokens while the cumulative probability *including* them is below p (drops the one that crosses)."""
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    drop_sorted = sorted_logits.softmax(-1).cumsum(-1) > p
    drop_sorted[:, 0] = False
    return logits.masked_fill(drop_sorted.scatter(-1, order, drop_sorted), float("-inf"))


top_p = FunctionExercise(
    id="ch09-top-p",
    prompt=(
        "Write top_p_filter(logits (B, V), p): set to -inf every logit outside the smallest set of most likely "
        "tokens whose total probability reaches p (nucleus sampling); the most likely token is always kept."
    ),
    solution=_reference_top_p,
    make_inputs=_top_p_inputs,
    wrong_answers=[_wrong_top_p_exclusive, lambda z, p: z],
    hints=[
        "Sort the probabilities in descending order and take their cumulative sum.",
        "Keep a token if the probability of the tokens *before* it is still below p; scatter the mask back "
        "to vocabulary order.",
    ],
)


def _lm_inputs(seed: int):
    g = torch.Generator().manual_seed(seed)
    B, T, V = 2 + seed % 2, 5 + seed, 11
    return torch.randn(B, T, V, generator=g), torch.randint(0, V, (B, T), generator=g)


def _reference_lm_loss(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    return lm_loss(logits, tokens)


causal_lm_loss = FunctionExercise(
    id="ch09-lm-loss",
    prompt=(
        "Write causal_lm_loss(logits (B, T, V), tokens (B, T)): the mean cross-entropy of a causal language "
        "model, where logits[:, t] predicts tokens[:, t + 1]."
    ),
    solution=_reference_lm_loss,
    make_inputs=_lm_inputs,
    wrong_answers=[
        lambda z, x: F.cross_entropy(z.flatten(0, 1), x.flatten()),  # no shift: predicts the token it sees
        lambda z, x: F.cross_entropy(z[:, 1:].flatten(0, 1), x[:, :-1].flatten()),  # shifted the wrong way
    ],
    hints=[
        "The last position has no next token, and the first token is never predicted.",
        "F.cross_entropy(logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten()).",
    ],
)

EXERCISES = [perplexity, masked_count, what_bert_is, kv_cache_size, top_p, causal_lm_loss]
