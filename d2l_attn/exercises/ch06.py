"""Exercises of chapter 6: self-attention, CNN/RNN comparison and positional encodings."""

from __future__ import annotations

import math

import torch

from ..positional import sinusoidal_encoding, sinusoidal_shift_matrix
from .core import ChoiceExercise, FunctionExercise, NumberExercise, TensorExercise

pe_value = NumberExercise(
    id="ch06-pe-value",
    prompt=("With d_model = 8, what is the sinusoidal encoding P[50, 2] (position 50, column 2)? Give 3 decimals."),
    solution=float(sinusoidal_encoding(51, 8, dtype=torch.float64)[50, 2]),
    rtol=2e-3,
    atol=1e-3,
    wrong_answers=[
        math.cos(50 / 10000 ** (2 / 8)),  # cos instead of sin
        50 / 10000 ** (2 / 8),  # no sine at all (the bug of the encoder in Notes B §3)
        math.sin(50 / 10000 ** (4 / 8)),  # exponent 2j/d with j = 2 instead of 2i/d with i = 1
    ],
    hints=[
        "Column 2 is even, so it is a sine: P[p, 2i] = sin(p / 10000^(2i/d)) with i = 1.",
        "10000^(2/8) = 10; the answer is sin(50 / 10) = sin(5) (in radians).",
    ],
)

path_length = ChoiceExercise(
    id="ch06-path-length",
    prompt=(
        "For a sequence of n tokens, which statements are true (one layer each, d hidden units)? Choose all that apply."
    ),
    options=[
        "In self-attention, the first and the last token interact within one layer (path length O(1)).",
        "An RNN needs O(n) sequential steps to process the sequence.",
        "A convolution with kernel size k connects the first and the last token in one layer.",
        "Self-attention needs O(n) sequential steps because each query is computed after the previous one.",
    ],
    solution={"a", "b"},
    wrong_answers=["a", "a, b, c", "a, b, d", "c, d"],
    hints=[
        "Path length: how many layers (or steps) a signal needs from one position to another.",
        "A centred kernel of size k reaches (k - 1) / 2 positions to each side per layer, so one layer "
        "connects the first and the last of n tokens only if k >= 2n - 1; the n queries of self-attention "
        "are one matrix product, computed in parallel.",
    ],
    explanation=(
        "(a) and (b) are true. (c) holds only for k >= 2n - 1 (every output must see every input); with a "
        "smaller kernel a stack of about 2(n - 1)/(k - 1) layers is needed. (d) is false: self-attention has "
        "O(1) sequential operations."
    ),
)


def _flops_ratio(n: int, d: int) -> float:
    recurrent = n * d * d  # n steps, each a (d x d) matrix-vector product
    attention = n * n * d  # QK^T and the weighted sum of values: n^2 d each (factor 2 cancels below)
    return recurrent / attention


flops_ratio = NumberExercise(
    id="ch06-flops-ratio",
    prompt=(
        "Sentences of n = 64 tokens, d = 512. By the complexity table, how many times more "
        "multiply-adds does one recurrent layer (O(n d^2)) need than the attention step of self-attention "
        "(O(n^2 d))?"
    ),
    solution=_flops_ratio(64, 512),
    wrong_answers=[_flops_ratio(512, 64), 64, 512 / 64**2],
    hints=[
        "Divide n d^2 by n^2 d and simplify.",
        "The ratio is d / n: self-attention's quadratic term is cheaper as long as n < d.",
    ],
)

shift_matrix = TensorExercise(
    id="ch06-shift-matrix",
    prompt=(
        "For d_model = 4, write down the 4 x 4 matrix M_1 with P[p + 1] = M_1 P[p] for every position p "
        "(P the sinusoidal encoding, columns sin, cos, sin, cos)."
    ),
    solution=sinusoidal_shift_matrix(1, 4, dtype=torch.float64),
    wrong_answers=[
        sinusoidal_shift_matrix(1, 4, dtype=torch.float64).T,  # rotation in the wrong direction
        torch.eye(4),  # the identity: no shift at all
        sinusoidal_shift_matrix(1, 2, dtype=torch.float64).repeat(2, 2)
        * torch.block_diag(torch.ones(2, 2), torch.ones(2, 2)),  # both pairs with the first pair's frequency
    ],
    starter=torch.zeros(4, 4),
    hints=[
        "Use sin(a + b) = sin a cos b + cos a sin b and cos(a + b) = cos a cos b - sin a sin b with "
        "b = omega_i, one 2 x 2 block per (sin, cos) pair.",
        "The frequencies are omega_0 = 1 and omega_1 = 10000^(-2/4) = 0.01; each block is "
        "[[cos w, sin w], [-sin w, cos w]]; off-diagonal blocks are zero.",
    ],
)


def _reference_sinusoidal(max_len, d_model):
    return sinusoidal_encoding(max_len, d_model, dtype=torch.float64)


def _sinusoidal_inputs(seed: int):
    return [(5, 4), (12, 6), (30, 8), (100, 16), (7, 2)][seed % 5]


def _wrong_swapped(max_len, d_model):  # cos in the even columns, sin in the odd ones
    angles = torch.arange(max_len, dtype=torch.float64)[:, None] * 10000 ** (
        -torch.arange(0, d_model, 2, dtype=torch.float64) / d_model
    )  # (L, d/2)
    return torch.stack([torch.cos(angles), torch.sin(angles)], dim=-1).reshape(max_len, d_model)


def _wrong_notes_b(max_len, d_model):  # Notes B §3: no sine or cosine
    import numpy as np

    table = np.array(
        [
            [pos / np.power(10000, 2 * (j // 2)) for j in range(d_model)] if pos != 0 else [0] * d_model
            for pos in range(max_len)
        ]
    )
    return torch.tensor(table, dtype=torch.float64)


def _wrong_exponent(max_len, d_model):
    pos = torch.arange(max_len, dtype=torch.float64)[:, None]
    j = torch.arange(d_model, dtype=torch.float64)[None, :]
    angles = pos / 10000 ** (j / d_model)  # every column its own frequency
    return torch.where(j.long() % 2 == 0, torch.sin(angles), torch.cos(angles))


sinusoidal_function = FunctionExercise(
    id="ch06-sinusoidal-fn",
    prompt=(
        "Write sinusoidal(max_len, d_model) that returns the (max_len, d_model) table "
        "P[p, 2i] = sin(p / 10000^(2i/d)), P[p, 2i+1] = cos(p / 10000^(2i/d)) (d_model even)."
    ),
    solution=_reference_sinusoidal,
    make_inputs=_sinusoidal_inputs,
    wrong_answers=[
        _wrong_swapped,
        _wrong_notes_b,
        _wrong_exponent,
        lambda n, d: sinusoidal_encoding(n, d, dtype=torch.float64),
        "not a function",
    ],
    forbidden=["d2l_attn"],
    hints=[
        "Build a (max_len, 1) column of positions and a (1, d_model / 2) row of frequencies "
        "10000^(-2i/d); their product is the (max_len, d_model / 2) table of angles.",
        "Fill the even columns with sin(angles) (P[:, 0::2] = ...) and the odd ones with cos(angles); "
        "the frequency of columns 2i and 2i + 1 is the same.",
    ],
)

equivariance = ChoiceExercise(
    id="ch06-equivariance",
    prompt=(
        "A self-attention layer without positional information is permutation equivariant. Which of these "
        "additions make its output depend on the order of the tokens? Choose all that apply."
    ),
    options=[
        "Adding sinusoidal positional encodings to the inputs.",
        "A causal mask (query i sees keys j <= i only).",
        "Multiplying every input vector by 2.",
        "Rotating queries and keys with RoPE.",
    ],
    solution={"a", "b", "d"},
    wrong_answers=["a", "a, d", "a, b, c, d", "c"],
    hints=[
        "Ask for each: does it treat position 0 differently from position 5?",
        "Scaling every token the same way commutes with any permutation; a mask that depends on i and j does not.",
    ],
)

causal_position = ChoiceExercise(
    id="ch06-causal-position",
    prompt=(
        "A causally masked self-attention layer without positional encoding, on a sequence of n tokens. "
        "Which statements are true? Choose all that apply."
    ),
    options=[
        "Permuting the inputs permutes the outputs in the same way.",
        "The output at position 0 depends only on the token at position 0.",
        "Permuting the first n - 1 tokens leaves the output at the last position unchanged.",
        "The layer can tell every position apart exactly.",
    ],
    solution={"b", "c"},
    wrong_answers=["a", "b", "a, b, c", "b, c, d"],
    hints=[
        "How many keys does query 0 see? And the last query?",
        "A softmax-weighted sum over a *set* of keys does not depend on their order; the mask decides which set.",
    ],
    explanation="Query 0 sees one key (weight 1), so position 0 is identified exactly; other positions are "
    "told apart only through how many keys they average over.",
)

EXERCISES = [pe_value, path_length, flops_ratio, shift_matrix, sinusoidal_function, equivariance, causal_position]
