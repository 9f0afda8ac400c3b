"""Exercises of chapter 8: efficient attention (cost, sparse, low-rank, linear, tiled, GQA)."""

from __future__ import annotations

import torch

from ..masking import window_mask
from .core import ChoiceExercise, FunctionExercise, NumberExercise

linformer_entries = NumberExercise(
    id="ch08-linformer-entries",
    prompt=(
        "Linformer with n = 4096 tokens and projection size k = 256: how many attention scores does one "
        "head compute per sequence?"
    ),
    solution=4096 * 256,
    wrong_answers=[4096**2, 256**2, 4096, 64 * 64],
    hints=[
        "The keys are projected from n rows to k rows; every query still gets a score against each of them.",
        "The score matrix Q (E K)^T has shape (n, k).",
    ],
)

window_pairs = NumberExercise(
    id="ch08-window-pairs",
    prompt=(
        "Causal sliding-window attention with window w = 4 (query i sees keys i-3, ..., i) on n = 10 tokens: "
        "how many (query, key) pairs are kept in total?"
    ),
    solution=int(window_mask(10, window=4, causal=True).sum()),
    wrong_answers=[40, 55, 100, 28],
    hints=[
        "Count row by row: query i keeps min(i + 1, 4) keys.",
        "The first three rows are short (1, 2, 3 keys); the remaining 7 rows keep 4 each.",
    ],
)

linear_memory = ChoiceExercise(
    id="ch08-linear-memory",
    prompt=(
        "For a fixed head size d, which of these compute an attention layer's output with activation memory "
        "that grows only linearly in the sequence length n? Choose all that apply."
    ),
    options=[
        "Tiled (FlashAttention-style) exact softmax attention with an online softmax.",
        "The textbook order: S = QK^T / sqrt(d), P = softmax(S), O = PV.",
        "Linear (kernel) attention phi(Q) (phi(K)^T V).",
        "Linformer with a fixed projection size k.",
        "Scaling the scores by 1/sqrt(d) before the softmax.",
    ],
    solution={"a", "c", "d"},
    wrong_answers=["a", "a, b, c, d", "a, c, d, e", "b, e"],
    hints=[
        "Ask for each: is an n x n tensor ever stored?",
        "Scaling multiplies the n x n scores by a constant: same shape, same cost. Tiling computes the same "
        "softmax without storing S or P.",
    ],
)

kv_cache_mib = NumberExercise(
    id="ch08-kv-cache-mib",
    prompt=(
        "A decoder with 24 layers, 32 query heads of size 128 and grouped-query attention with 8 key/value "
        "heads caches keys and values in bfloat16 (2 bytes). How many MiB does the cache of one sequence of "
        "4096 tokens take?"
    ),
    solution=2 * 24 * 8 * 128 * 4096 * 2 / 2**20,
    wrong_answers=[
        2 * 24 * 32 * 128 * 4096 * 2 / 2**20,
        24 * 8 * 128 * 4096 * 2 / 2**20,
        2 * 24 * 8 * 128 * 4096 * 4 / 2**20,
    ],
    hints=[
        "Bytes = 2 (keys and values) x layers x key/value heads x head size x tokens x bytes per value.",
        "Only the 8 key/value heads are cached, not the 32 query heads; 1 MiB = 2^20 bytes.",
    ],
)


def _blockwise_logsumexp(x: torch.Tensor, block: int) -> torch.Tensor:
    return torch.logsumexp(x, dim=-1)


def _inputs(seed: int):
    g = torch.Generator().manual_seed(seed)
    n, block = [(12, 4), (16, 8), (30, 5), (7, 7), (64, 16)][seed % 5]
    return (torch.randn(3, n, generator=g, dtype=torch.float64) * (1 + 50 * seed), block)


def _wrong_no_rescale(x, block):  # adds exp sums with different maxima without correcting them
    total = torch.zeros(x.shape[:-1], dtype=x.dtype)
    m = torch.full(x.shape[:-1], -float("inf"), dtype=x.dtype)
    for j in range(0, x.shape[-1], block):
        tile = x[..., j : j + block]
        m = torch.maximum(m, tile.amax(-1))
        total = total + torch.exp(tile - m[..., None]).sum(-1)
    return m + torch.log(total)


def _wrong_last_block(x, block):
    return torch.logsumexp(x[..., -block:], dim=-1)


online_logsumexp = FunctionExercise(
    id="ch08-online-logsumexp",
    prompt=(
        "Write logsumexp_by_blocks(x, block) that returns log(sum_j exp(x[..., j])) for x of shape (B, n), "
        "reading x one block of `block` columns at a time and keeping only a running maximum m and a running "
        "sum l per row (the online softmax of FlashAttention). Inputs can be large (exp would overflow)."
    ),
    solution=_blockwise_logsumexp,
    make_inputs=_inputs,
    wrong_answers=[_wrong_no_rescale, _wrong_last_block, lambda x, block: torch.logsumexp(x, dim=-1), "not a function"],
    forbidden=["d2l_attn", "torch.logsumexp"],
    forbidden_reason="this exercise asks you to build the log-sum-exp from a running maximum and sum.",
    hints=[
        "Keep m (the largest value seen) and l = sum of exp(x_j - m) over the values seen so far.",
        "With a new block: m_new = max(m, block max); l = l * exp(m - m_new) + sum(exp(block - m_new)). "
        "The answer is m + log(l).",
    ],
)

EXERCISES = [linformer_entries, window_pairs, linear_memory, kv_cache_mib, online_logsumexp]
