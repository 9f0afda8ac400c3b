r"""Small generated tasks whose right answer is known exactly (chapters 2, 5, 8 and 11).

Real data tells us whether a model works; generated data tells us *why*, because we know which
inputs each output must depend on. Every function draws from a ``torch.Generator`` the caller
passes in (the global random state is never touched), so the same generator state gives the same
data.

* :func:`sine_regression` -- chapter 2's curve :math:`y = 2\sin x + x^{0.8} + \epsilon`;
* :func:`neighbor_lookup` -- chapter 5's task: output :math:`i` needs part *a* of token
  :math:`i-1` and part *b* of token :math:`i+1` (two lookups a single head cannot do at once);
* :func:`copy_task` -- reproduce a random token sequence after a separator (attention must look
  back exactly :math:`n + 1` positions);
* :func:`associative_recall` -- key-value pairs followed by a query key; the answer is the value
  stored with that key (a lookup whose true source position is known, for chapter 11).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .._checks import positive_int

__all__ = ["sine_regression", "neighbor_lookup", "copy_task", "RecallBatch", "associative_recall"]


def _generator(generator: object) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator (seeded by the caller), got {type(generator).__name__}")
    return generator


def sine_regression(
    n: int, generator: torch.Generator, *, noise_std: float = 0.5, high: float = 5.0, sort: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""``n`` points :math:`x \sim U(0, \text{high})`, :math:`y = 2\sin x + x^{0.8} + \epsilon`, :math:`\epsilon \sim \mathcal{N}(0, \sigma^2)`.

    Draws ``x`` first, then the noise (the order chapter 2 uses). ``sort`` sorts the ``x`` (and
    draws the noise afterwards). Returns ``x (n,)``, ``y (n,)``.
    """
    positive_int("n", n)
    g = _generator(generator)
    if not noise_std >= 0:
        raise ValueError(f"noise_std must be >= 0, got {noise_std!r}")
    x = torch.rand(n, generator=g) * high  # (n,)
    if sort:
        x = torch.sort(x).values
    y = 2 * torch.sin(x) + x**0.8 + noise_std * torch.randn(n, generator=g)  # (n,)
    return x, y


def neighbor_lookup(
    batch_size: int, num_tokens: int, part_size: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Chapter 5's two-lookup task (cyclic neighbours).

    Token :math:`i` is :math:`[a_i; b_i; e_i]`: two random content parts of ``part_size`` and the
    one-hot position :math:`e_i`. The target of token :math:`i` is :math:`[a_{i-1}; b_{i+1}]`.
    Returns ``x (B, T, 2C + T)`` and ``y (B, T, 2C)``.
    """
    for name, value in (("batch_size", batch_size), ("num_tokens", num_tokens), ("part_size", part_size)):
        positive_int(name, value)
    g = _generator(generator)
    content = torch.randn(batch_size, num_tokens, 2 * part_size, generator=g)  # (B, T, 2C)
    position = torch.eye(num_tokens).expand(batch_size, num_tokens, num_tokens)  # (B, T, T)
    x = torch.cat([content, position], dim=-1)  # (B, T, 2C + T)
    a_left = content[..., :part_size].roll(1, dims=1)  # a of token i-1: (B, T, C)
    b_right = content[..., part_size:].roll(-1, dims=1)  # b of token i+1: (B, T, C)
    return x, torch.cat([a_left, b_right], dim=-1)  # (B, T, 2C + T), (B, T, 2C)


def copy_task(
    batch_size: int, length: int, vocab_size: int, generator: torch.Generator, *, separator: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequences ``[s_1..s_n, sep, s_1..s_n]`` for next-token prediction; the symbols ``s_i`` are
    uniform over every id except ``separator``.

    Returns ``tokens (B, 2n + 1)`` and ``targets (B, 2n + 1)`` (the next token, ``-100`` -- ignored by
    :func:`torch.nn.functional.cross_entropy` -- where nothing is predictable: before and at the
    separator, and after the last token). At the second half, position ``n + 1 + i`` must attend
    to position ``i + 1``, exactly ``n`` positions back.
    """
    for name, value in (("batch_size", batch_size), ("length", length)):
        positive_int(name, value)
    if not isinstance(vocab_size, int) or vocab_size < 2:
        raise ValueError(f"vocab_size must be an int >= 2 (one separator and at least one symbol), got {vocab_size!r}")
    if not isinstance(separator, int) or not 0 <= separator < vocab_size:
        raise ValueError(f"separator must be a token id in [0, {vocab_size}), got {separator!r}")
    g = _generator(generator)
    symbols = torch.randint(0, vocab_size - 1, (batch_size, length), generator=g)  # (B, n), vocab_size - 1 ids
    symbols = symbols + (symbols >= separator).long()  # skip the separator's id
    sep = torch.full((batch_size, 1), separator, dtype=torch.long)
    tokens = torch.cat([symbols, sep, symbols], dim=1)  # (B, 2n + 1)
    targets = torch.full_like(tokens, -100)
    targets[:, length : 2 * length] = symbols  # after the separator, predict the copy
    return tokens, targets


class RecallBatch(NamedTuple):
    """An associative-recall batch: ``tokens (B, 2P + 1)``, ``answer (B,)``, ``source (B,)``
    (the position of the value the answer is read from)."""

    tokens: torch.Tensor
    answer: torch.Tensor
    source: torch.Tensor


def associative_recall(
    batch_size: int, num_pairs: int, num_keys: int, num_values: int, generator: torch.Generator
) -> RecallBatch:
    """``k_1 v_1 k_2 v_2 ... k_P v_P q`` with distinct keys; the answer is the value stored after key ``q``.

    Keys are ids ``0..num_keys-1``; values are ids ``num_keys..num_keys+num_values-1`` (one shared
    vocabulary of ``num_keys + num_values`` tokens). The query is one of the ``P`` keys, uniformly;
    ``source`` is the position of its value (``2j + 1`` for pair ``j``), the ground truth an
    explanation method should point to.
    """
    for name, value in (("batch_size", batch_size), ("num_pairs", num_pairs), ("num_values", num_values)):
        positive_int(name, value)
    positive_int("num_keys", num_keys)
    if num_pairs > num_keys:
        raise ValueError(f"num_pairs ({num_pairs}) must be <= num_keys ({num_keys}): keys in a sequence are distinct")
    g = _generator(generator)
    keys = torch.rand(batch_size, num_keys, generator=g).argsort(dim=1)[:, :num_pairs]  # (B, P) distinct
    values = num_keys + torch.randint(0, num_values, (batch_size, num_pairs), generator=g)  # (B, P)
    pick = torch.randint(0, num_pairs, (batch_size,), generator=g)  # (B,)
    rows = torch.arange(batch_size)
    query = keys[rows, pick]  # (B,)
    tokens = torch.stack([keys, values], dim=2).reshape(batch_size, 2 * num_pairs)  # (B, 2P): k v k v ...
    tokens = torch.cat([tokens, query.unsqueeze(1)], dim=1)  # (B, 2P + 1)
    return RecallBatch(tokens, values[rows, pick], 2 * pick + 1)
