"""Exercises of chapter 3: attention scoring functions (masked softmax, additive, scaled dot product)."""

from __future__ import annotations

import math

import torch

from ..masking import Mask, masked_softmax
from ..scoring import AdditiveAttention, DotProductAttention
from .core import ChoiceExercise, FunctionExercise, NumberExercise, TensorExercise

softmax_value = NumberExercise(
    id="ch03-softmax-value",
    prompt="What is the second entry of softmax([2, 3, 1])? (3 decimals)",
    solution=float(torch.softmax(torch.tensor([2.0, 3.0, 1.0], dtype=torch.float64), -1)[1]),
    rtol=2e-3,
    wrong_answers=[0.513, 0.5, 1 / 3, 3 / 6],
    hints=[
        "softmax(x)_i = exp(x_i) / sum_j exp(x_j): compute e^2, e^3 and e^1 first.",
        "e^3 / (e^2 + e^3 + e^1) = 1 / (e^-1 + 1 + e^-2); the answer lies between 0.6 and 0.7.",
    ],
    explanation="softmax([2, 3, 1]) = [0.245, 0.665, 0.090].",
)

_Q_VAR, _K_VAR, _D = 4.0, 1.0, 16
score_variance = NumberExercise(
    id="ch03-score-variance",
    prompt=(
        f"Queries and keys have d = {_D} independent entries with mean 0; a query's entries have "
        f"variance {_Q_VAR:g}, a key's entries variance {_K_VAR:g}. What is the variance of the "
        "unscaled score q.k?"
    ),
    solution=_D * _Q_VAR * _K_VAR,
    wrong_answers=[_D, _Q_VAR * _K_VAR, math.sqrt(_D) * _Q_VAR * _K_VAR, _D * (_Q_VAR + _K_VAR)],
    hints=[
        "q.k = sum_i q_i k_i is a sum of d independent terms: variances add.",
        "For independent zero-mean q_i and k_i, Var(q_i k_i) = E[q_i^2] E[k_i^2] = Var(q_i) Var(k_i).",
    ],
    explanation="Var(q.k) = d Var(q_i) Var(k_i); dividing by sqrt(d) would still leave variance 4 here.",
)

with torch.random.fork_rng(devices=[]):  # building the module must not move the global RNG
    _additive = AdditiveAttention(query_dim=20, key_dim=30, num_hiddens=16)
additive_params = NumberExercise(
    id="ch03-additive-params",
    prompt=(
        "How many trainable parameters does AdditiveAttention(query_dim=20, key_dim=30, "
        "num_hiddens=16) have? (W_q, W_k and w_v, no biases.) Dot-product attention has none."
    ),
    solution=sum(p.numel() for p in _additive.parameters()),
    rtol=0.0,
    atol=0.5,
    wrong_answers=[16 * (20 + 30), 20 * 30, 16 * (20 + 30 + 1) + 2 * 16 + 1, 16 * 20 * 30],
    hints=[
        "W_q maps a query (20 numbers) to 16 hidden units, W_k a key (30 numbers) to 16 hidden units.",
        "W_q is 16 x 20, W_k is 16 x 30 and w_v has 16 entries.",
    ],
)

scaling_effects = ChoiceExercise(
    id="ch03-scaling-effects",
    prompt="Dividing the dot-product scores by sqrt(d) changes which of these? Choose all that apply.",
    options=[
        "the order of the cost, O(T_q T_k d) multiply-adds",
        "the variance of the scores",
        "which key gets the largest weight",
        "how peaked (saturated) the softmax weights are",
    ],
    solution={"b", "d"},
    wrong_answers=["a", "b", "a, b, d", "b, c, d"],
    hints=[
        "Scaling multiplies every score of a row by the same positive number 1/sqrt(d).",
        "A positive factor keeps the order of the scores (the argmax) but changes their spread, and "
        "the spread decides how peaked the softmax is. It adds one multiplication per score.",
    ],
    explanation="It adds T_q T_k multiplications to 2 T_q T_k d: the order is unchanged.",
)


def _reference_masked_softmax(scores, valid_lens):
    return masked_softmax(scores, valid_lens)


def _masked_softmax_inputs(seed: int):
    g = torch.Generator().manual_seed(300 + seed)
    batch, num_queries, num_keys = 2 + seed % 2, 1 + seed, 3 + seed
    scores = torch.randn(batch, num_queries, num_keys, generator=g, dtype=torch.float64) * 3
    valid_lens = torch.randint(1, num_keys + 1, (batch,), generator=g)
    if seed % 2 == 0:
        valid_lens[0] = 0  # an empty sequence: its weights must be all zero
    if seed == 4:
        valid_lens[-1] = num_keys  # no padding at all
    return scores, valid_lens


def _wrong_d2l_fill(scores, valid_lens):
    """D2L's version: fill with -1e6, so a length-0 row becomes uniform instead of zero."""
    keep = torch.arange(scores.shape[-1])[None, None, :] < valid_lens[:, None, None]
    return torch.softmax(scores.masked_fill(~keep, -1e6), dim=-1)


def _wrong_zero_after_softmax(scores, valid_lens):
    """Softmax over all keys, then zero the padding: rows no longer sum to 1."""
    keep = torch.arange(scores.shape[-1])[None, None, :] < valid_lens[:, None, None]
    return torch.softmax(scores, dim=-1) * keep


def _wrong_no_mask(scores, valid_lens):
    return torch.softmax(scores, dim=-1)


masked_softmax_function = FunctionExercise(
    id="ch03-masked-softmax-fn",
    prompt=(
        "Write masked_softmax(scores, valid_lens) for scores (B, T_q, T_k) and lengths (B,): a "
        "softmax over the first valid_lens[b] keys of example b, exactly 0 on the others, and all "
        "zeros for a sequence of length 0."
    ),
    solution=_reference_masked_softmax,
    make_inputs=_masked_softmax_inputs,
    wrong_answers=[_wrong_d2l_fill, _wrong_zero_after_softmax, _wrong_no_mask, masked_softmax, "not a function"],
    forbidden=["d2l_attn"],
    hints=[
        "Build a boolean mask keep[b, i, j] = j < valid_lens[b] with torch.arange and broadcasting, "
        "set the masked scores to a very negative number, take the softmax, then ...",
        "... set the masked weights to exactly 0 afterwards: a row with no valid key would otherwise "
        "be uniform (every score equally negative).",
    ],
)

_Q = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])  # (1, 2, 2)
_K = torch.tensor([[[1.0, 1.0], [2.0, 0.0], [0.0, -1.0]]])  # (1, 3, 2)
_V = torch.eye(3)[None]  # (1, 3, 3): the output rows are the weights
_LENS = torch.tensor([[3, 2]])  # (1, T_q): the second query sees only 2 keys
dot_weights = TensorExercise(
    id="ch03-dot-weights",
    prompt=(
        "Queries Q = [[1, 0], [0, 2]] and keys K = [[1, 1], [2, 0], [0, -1]] (d = 2). Compute the "
        "(2, 3) scaled dot-product attention weights when the first query sees all 3 keys and the "
        "second only the first 2 (valid_lens = [[3, 2]] per query)."
    ),
    solution=DotProductAttention()(_Q, _K, _V, Mask.of(_LENS), need_weights=True)[1][0],
    wrong_answers=[
        torch.softmax(_Q[0] @ _K[0].T, -1),
        masked_softmax(_Q @ _K.transpose(1, 2), _LENS)[0],
        masked_softmax(_Q @ _K.transpose(1, 2) / 3, _LENS)[0],
        torch.softmax(_Q[0] @ _K[0].T / math.sqrt(2), -1),
    ],
    starter=torch.zeros(2, 3),
    hints=[
        "Scores first: Q K^T is (2, 3); divide by sqrt(d) = sqrt(2), not by the number of keys.",
        "Then a softmax over each row, but the second row only over its first two keys (the third weight is 0).",
    ],
)

_D_MODEL, _D_PROJ = 512, 64
general_params = NumberExercise(
    id="ch03-general-params",
    prompt=(
        f"Luong's general score q^T W k with d_q = d_k = {_D_MODEL} has a {_D_MODEL} x {_D_MODEL} matrix W. "
        f"How many parameters does the factored form (W_q q)^T (W_k k) have, with projections W_q and W_k "
        f"to {_D_PROJ} dimensions (no biases)?"
    ),
    solution=2 * _D_PROJ * _D_MODEL,
    rtol=0.0,
    atol=0.5,
    wrong_answers=[_D_MODEL * _D_MODEL, _D_PROJ * _D_MODEL, _D_PROJ * _D_PROJ],
    hints=[
        "Each projection maps a 512-dimensional vector to 64 dimensions.",
        "W_q and W_k are both 64 x 512 matrices; W = W_q^T W_k is 512 x 512 but has rank at most 64.",
    ],
    explanation="65,536 instead of 262,144: a rank-64 W. Multi-head attention uses this factored form, "
    "one pair of projections per head.",
)

EXERCISES = [
    softmax_value,
    score_variance,
    additive_params,
    scaling_effects,
    masked_softmax_function,
    dot_weights,
    general_params,
]
