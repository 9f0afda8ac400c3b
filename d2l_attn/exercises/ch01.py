"""Exercises of chapter 1: attention cues, queries, keys and values, visualizing weights."""

from __future__ import annotations

import torch

from ..pooling import gaussian_scores, soft_lookup
from .core import ChoiceExercise, FunctionExercise, NumberExercise, TensorExercise

_KEYS = torch.tensor([1.0, 2.0, 3.0])
_VALUES = torch.tensor([10.0, 20.0, 30.0])

cues = ChoiceExercise(
    id="ch01-cues",
    prompt="Which of these are volitional (task-driven, top-down) cues? Choose all that apply.",
    options=[
        "You scan a crowd for a friend who said she would wear a yellow jacket.",
        "A sudden bang makes you turn your head.",
        "You reread a paragraph because the exam will ask about it.",
        "A flashing light at the edge of your vision grabs your gaze.",
    ],
    solution={"a", "c"},
    wrong_answers=["a", "b, d", ["a", "b", "c"], "d"],
    hints=[
        "Volitional cues come from your own goal (the query); nonvolitional cues come from the "
        "saliency of the stimulus itself (the keys).",
        "Two options are driven by a goal you hold; the other two would grab anyone's attention.",
    ],
    explanation="Goal-driven search is volitional; a bang or a flash is salient by itself.",
)

valid_weights = ChoiceExercise(
    id="ch01-valid-weights",
    prompt="Which rows could be a row of softmax attention weights over 3 keys? Choose all that apply.",
    options=["[0.2, 0.5, 0.3]", "[0.5, 0.6, -0.1]", "[0.3, 0.3, 0.3]", "[0.0, 0.0, 1.0]"],
    solution={"a", "d"},
    wrong_answers=["a", "a, b", "a, c, d", "c"],
    hints=[
        "Softmax weights are non-negative and sum to 1.",
        "Check each row: is any entry negative? Does it sum to exactly 1? (A one-hot row is the "
        "limit of a very sharp softmax; a masked softmax gives exact zeros.)",
    ],
)

soft_lookup_value = NumberExercise(
    id="ch01-soft-lookup-value",
    prompt=(
        "Keys k = (1, 2, 3), values v = (10, 20, 30), Gaussian scores a(q, k) = -(q - k)^2 / 2 "
        "(sigma = 1). What does the soft lookup return for the query q = 2.5? (2 decimals)"
    ),
    solution=float(soft_lookup(torch.tensor([2.5]), _KEYS, _VALUES, 1.0)[0].item()),
    rtol=2e-3,
    wrong_answers=[25.0, 20.0, 30.0, "22"],
    hints=[
        "Compute the three scores -(2.5-1)^2/2, -(2.5-2)^2/2, -(2.5-3)^2/2, then a softmax.",
        "The weights are proportional to exp(-1.125), exp(-0.125), exp(-0.125); "
        "the answer is sum_i weight_i * v_i, which lies between 20 and 25.",
    ],
)

weights_matrix = TensorExercise(
    id="ch01-weights-matrix",
    prompt=(
        "Compute the attention-weight matrix (shape (2, 4)) for queries (0, 2) over keys "
        "(0, 1, 2, 3) with Gaussian scores and sigma = 1: rows are queries, columns keys."
    ),
    solution=torch.softmax(gaussian_scores(torch.tensor([0.0, 2.0]), torch.tensor([0.0, 1.0, 2.0, 3.0])), -1),
    wrong_answers=[
        torch.softmax(gaussian_scores(torch.tensor([0.0, 2.0]), torch.tensor([0.0, 1.0, 2.0, 3.0])), 0),
        torch.exp(gaussian_scores(torch.tensor([0.0, 2.0]), torch.tensor([0.0, 1.0, 2.0, 3.0]))),
        torch.full((4, 2), 0.25),
    ],
    starter=torch.zeros(2, 4),
    hints=[
        "Build the (2, 4) score matrix S[i, j] = -(q_i - k_j)^2 / 2, then normalize each row.",
        "Softmax over the keys means dim=-1 (each row sums to 1), not over the queries.",
    ],
)


def _reference_soft_lookup(queries, keys, values, sigma):
    return soft_lookup(queries, keys, values, sigma)[0]


def _soft_lookup_inputs(seed: int):
    g = torch.Generator().manual_seed(1000 + seed)
    n_q, n_k, d, d_v = 1 + seed, 3 + 2 * seed, 1 + seed % 3, 1 + (seed + 1) % 3
    queries = torch.randn(n_q, d, generator=g, dtype=torch.float64)
    keys = torch.randn(n_k, d, generator=g, dtype=torch.float64)
    values = torch.randn(n_k, d_v, generator=g, dtype=torch.float64)
    sigma = [0.3, 1.0, 2.0, 0.7, 5.0][seed % 5]
    return queries, keys, values, sigma


def _wrong_no_normalization(queries, keys, values, sigma):
    scores = -(torch.cdist(queries, keys) ** 2) / (2 * sigma**2)
    return torch.exp(scores) @ values


def _wrong_sign(queries, keys, values, sigma):
    scores = torch.cdist(queries, keys) ** 2 / (2 * sigma**2)
    return torch.softmax(scores, -1) @ values


def _wrong_mean(queries, keys, values, sigma):
    return values.mean(0, keepdim=True).expand(queries.shape[0], -1)


soft_lookup_function = FunctionExercise(
    id="ch01-soft-lookup-fn",
    prompt=(
        "Write soft_lookup(queries, keys, values, sigma) for queries (n_q, d), keys (n_k, d), "
        "values (n_k, d_v) that returns the (n_q, d_v) attention output with Gaussian scores "
        "-||q - k||^2 / (2 sigma^2)."
    ),
    solution=_reference_soft_lookup,
    make_inputs=_soft_lookup_inputs,
    wrong_answers=[_wrong_no_normalization, _wrong_sign, _wrong_mean, soft_lookup, "not a function"],
    forbidden=["d2l_attn"],
    hints=[
        "Three steps: a (n_q, n_k) score matrix, a softmax over the keys (dim=-1), a matrix product with values.",
        "Pairwise squared distances: ((queries[:, None, :] - keys[None, :, :]) ** 2).sum(-1).",
    ],
)

_NO_EXP_SCORES = -((2.5 - _KEYS) ** 2) / 2  # the Gaussian scores of exercise 1.3: all <= 0

no_exp_value = NumberExercise(
    id="ch01-no-exp-value",
    prompt=(
        "Same keys, values and query as exercise 1.3, but with weights a(q, k_i) / sum_j a(q, k_j) "
        "(the Gaussian scores normalized without the exponential). What does the lookup return? (2 decimals)"
    ),
    solution=float(_NO_EXP_SCORES / _NO_EXP_SCORES.sum() @ _VALUES),
    rtol=2e-3,
    wrong_answers=[
        float(torch.softmax(_NO_EXP_SCORES, -1) @ _VALUES),  # the softmax answer of exercise 1.3
        20.0,  # the plain average
        float(_NO_EXP_SCORES @ _VALUES),  # not normalized
    ],
    hints=[
        "The scores are -1.125, -0.125 and -0.125; divide each by their sum, -1.375.",
        "The weights are 0.818, 0.091 and 0.091: the *farthest* key gets the most weight.",
    ],
    explanation="Without the exponential the nearest keys get the least weight: the lookup is pulled "
    "towards k = 1, the opposite of attention.",
)

EXERCISES = [cues, valid_weights, soft_lookup_value, weights_matrix, soft_lookup_function, no_exp_value]
