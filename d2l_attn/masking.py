r"""Masks and the masked softmax (taught in chapter 3, used from chapter 1 on).

Attention weights are a softmax over keys. Two kinds of keys must get *exactly* zero weight:

* **padding**: a batch pads sequences to a common length; key ``j`` of example ``b`` is real
  only if ``j < valid_lens[b]`` (or ``j < valid_lens[b, i]`` per query ``i``);
* **the future**: in a causal (autoregressive) model query ``i`` may not look at keys ``j > i``.

Chapter 8 adds two *sparse patterns* that keep only some keys per query (:func:`window_mask`,
:func:`block_sparse_mask`): local attention and the block-sparse patterns with global tokens of
Longformer and BigBird.

All are expressed as a boolean mask ``keep`` (``True`` = may attend) and

.. math::

    \alpha_{ij} = \frac{\mathbb{1}[\text{keep}_{ij}]\, \exp(s_{ij})}
                       {\sum_{j'} \mathbb{1}[\text{keep}_{ij'}]\, \exp(s_{ij'})},

with the convention that a row with no key to keep gets all-zero weights (not NaN, and not
the uniform weights that D2L's ``masked_softmax`` returns when ``valid_len = 0``).

Shapes are batch-first: scores are ``(B, ..., T_q, T_k)``; ``valid_lens`` is ``(B,)`` (one
length per sequence) or ``(B, T_q)`` (one length per query).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ._checks import bool_mask, nonnegative_int, positive_int

__all__ = [
    "Mask",
    "as_valid_lens",
    "sequence_mask",
    "padding_mask",
    "key_padding_mask",
    "causal_mask",
    "window_mask",
    "block_sparse_mask",
    "masked_softmax",
]


def as_valid_lens(
    valid_lens: torch.Tensor | Sequence[int],
    *,
    max_len: int,
    device: torch.device | None = None,
    name: str = "valid_lens",
) -> torch.Tensor:
    """Validate ``valid_lens`` and return it as an ``int64`` tensor.

    Accepts an integer tensor, a float tensor holding whole numbers, or a list of ints.
    Raises ``ValueError`` naming ``name`` for non-integer values, values below 0 or above
    ``max_len``. The value checks read the numbers on the host, so they run for CPU tensors and
    lists only: for lengths that already live on a GPU they would synchronize every step, and they
    are skipped there (and while ``torch.compile`` traces); the dtype is checked everywhere.
    """
    if not isinstance(valid_lens, torch.Tensor):
        try:
            valid_lens = torch.as_tensor(valid_lens)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"{name} must be a tensor or a (nested) list of integers, got {type(valid_lens).__name__}"
            ) from exc
    if valid_lens.dtype == torch.bool or valid_lens.is_complex():
        raise ValueError(f"{name} must hold integer lengths, got dtype {valid_lens.dtype}")
    check_values = valid_lens.device.type == "cpu" and not torch.compiler.is_compiling()
    if check_values and valid_lens.is_floating_point():
        if not torch.all(torch.isfinite(valid_lens)) or not torch.equal(valid_lens, valid_lens.round()):
            raise ValueError(
                f"{name} must hold whole numbers (lengths), got non-integer values {valid_lens.flatten()[:8].tolist()}"
            )
    if check_values and valid_lens.numel() > 0:
        low, high = torch.aminmax(valid_lens)
        if low < 0 or high > max_len:
            raise ValueError(
                f"{name} must lie in [0, {max_len}] (the number of keys), got values from {int(low)} to {int(high)}"
            )
    return valid_lens.to(dtype=torch.int64, device=device)


def key_padding_mask(valid_lens: torch.Tensor, num_keys: int, num_axes: int = 4) -> torch.Tensor:
    """Keep mask ``(B, 1, ..., 1, T_k)`` with ``num_axes`` axes from lengths ``(B,)``: key ``j`` is real iff ``j < valid_lens[b]``.

    The same for every query and head, it broadcasts against scores ``(B, h, T_q, T_k)`` without
    materializing them (what :func:`torch.nn.functional.scaled_dot_product_attention` handles
    best). ``valid_lens`` must already be checked (:func:`as_valid_lens`); nothing is checked here.
    """
    positions = torch.arange(num_keys, device=valid_lens.device)  # (T_k,)
    lens = valid_lens.view(valid_lens.shape[0], *([1] * (num_axes - 1)))  # (B, 1, ..., 1)
    return positions < lens  # (B, 1, ..., 1, T_k)


def sequence_mask(valid_lens: torch.Tensor | Sequence[int], max_len: int) -> torch.Tensor:
    """Boolean mask ``keep[..., j] = j < valid_lens[...]`` of shape ``valid_lens.shape + (max_len,)``.

    >>> sequence_mask(torch.tensor([1, 3]), 4)
    tensor([[ True, False, False, False],
            [ True,  True,  True, False]])
    """
    if not isinstance(max_len, int) or isinstance(max_len, bool) or max_len < 0:
        raise ValueError(f"max_len must be a non-negative int, got {max_len!r}")
    lens = as_valid_lens(valid_lens, max_len=max_len)
    positions = torch.arange(max_len, device=lens.device)  # (max_len,)
    return positions < lens.unsqueeze(-1)  # (..., max_len)


def padding_mask(valid_lens: torch.Tensor | Sequence[int], num_queries: int, num_keys: int) -> torch.Tensor:
    """Key-padding mask of shape ``(B, T_q, T_k)`` from lengths ``(B,)`` or ``(B, T_q)``.

    ``keep[b, i, j] = j < valid_lens[b]`` for 1-D lengths and ``j < valid_lens[b, i]`` for 2-D.
    """
    nonnegative_int("num_queries", num_queries)
    nonnegative_int("num_keys", num_keys)
    lens = as_valid_lens(valid_lens, max_len=num_keys)
    if lens.dim() == 1:
        lens = lens.unsqueeze(1).expand(-1, num_queries)  # (B, T_q)
    elif lens.dim() == 2:
        if lens.shape[1] != num_queries:
            raise ValueError(
                f"2-D valid_lens must have shape (batch_size, num_queries) = (B, {num_queries}), "
                f"got {tuple(lens.shape)}"
            )
    else:
        raise ValueError(
            f"valid_lens must have shape (batch_size,) or (batch_size, num_queries), got {tuple(lens.shape)}"
        )
    return sequence_mask(lens, num_keys)  # (B, T_q, T_k)


def _last_positions(caller: str, num_queries: int, num_keys: int | None) -> int:
    """Check the sizes of a mask whose queries are the last ``T_q`` of ``T_k`` positions; return ``T_k``."""
    num_keys = num_queries if num_keys is None else num_keys
    nonnegative_int("num_queries", num_queries)
    nonnegative_int("num_keys", num_keys)
    if num_keys < num_queries:
        raise ValueError(
            f"{caller} needs num_keys >= num_queries (queries are the last positions), "
            f"got num_queries={num_queries}, num_keys={num_keys}"
        )
    return num_keys


def causal_mask(
    num_queries: int, num_keys: int | None = None, *, device: torch.device | str | None = None
) -> torch.Tensor:
    """Lower-triangular mask ``(T_q, T_k)``: query ``i`` may attend to key ``j`` iff ``j <= i + T_k - T_q``.

    With ``T_k == T_q`` this is the usual "no peeking at the future" mask. When the keys include
    ``T_k - T_q`` earlier positions (a key/value cache during generation), the queries are the
    *last* ``T_q`` positions and each still sees every key up to and including its own position.
    """
    num_keys = _last_positions("causal_mask", num_queries, num_keys)
    ones = torch.ones(num_queries, num_keys, dtype=torch.bool, device=device)
    return torch.tril(ones, diagonal=num_keys - num_queries)  # (T_q, T_k)


def window_mask(
    num_queries: int,
    num_keys: int | None = None,
    *,
    window: int,
    causal: bool = False,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Sliding-window (local) mask ``(T_q, T_k)``: query ``i`` sees keys less than ``window`` steps away.

    Query ``i`` sits at position ``p = i + T_k - T_q`` (the last ``T_q`` positions, as in
    :func:`causal_mask`) and keeps key ``j`` iff ``|p - j| < window`` (``p - window < j <= p`` if
    ``causal``). ``window = 1`` keeps only the query's own position; each row keeps at most
    ``2 window - 1`` keys (``window`` if causal), so a kernel that skips masked keys does
    ``O(n w)`` work instead of ``O(n^2)``.
    """
    num_keys = _last_positions("window_mask", num_queries, num_keys)
    positive_int("window", window)
    query_pos = torch.arange(num_queries, device=device)[:, None] + (num_keys - num_queries)  # (T_q, 1)
    offset = query_pos - torch.arange(num_keys, device=device)[None, :]  # (T_q, T_k): p - j
    keep = offset.abs() < window
    return keep & (offset >= 0) if causal else keep  # (T_q, T_k)


def block_sparse_mask(
    num_steps: int,
    block_size: int,
    *,
    num_global: int = 0,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Block-sparse mask ``(T, T)`` with global tokens (the pattern of Longformer and BigBird).

    Positions are cut into blocks of ``block_size``; query ``i`` keeps key ``j`` iff their blocks
    are equal or adjacent (``|i // b - j // b| <= 1``), or either is one of the first
    ``num_global`` *global* tokens, which attend to and are attended by every position. Each row
    keeps at most ``3 b + g`` keys (global rows keep all ``T``): ``O(n (b + g))`` work.
    """
    nonnegative_int("num_steps", num_steps)
    positive_int("block_size", block_size)
    nonnegative_int("num_global", num_global)
    if num_global > num_steps:
        raise ValueError(f"num_global must be at most num_steps={num_steps}, got {num_global}")
    block = torch.arange(num_steps, device=device) // block_size  # (T,)
    keep = (block[:, None] - block[None, :]).abs() <= 1  # (T, T)
    is_global = torch.arange(num_steps, device=device) < num_global  # (T,)
    return keep | is_global[:, None] | is_global[None, :]  # (T, T)


def masked_softmax(
    scores: torch.Tensor,
    valid_lens: torch.Tensor | Sequence[int] | None = None,
    *,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""Softmax over the last axis that gives masked keys exactly zero weight.

    Args:
        scores: attention scores, shape ``(B, ..., T_q, T_k)`` (at least 2-D; 3-D or 4-D usually).
        valid_lens: optional lengths, shape ``(B,)`` or ``(B, T_q)``, integers in ``[0, T_k]``.
        mask: optional boolean mask broadcastable to ``scores`` (``True`` = may attend). If both
            ``valid_lens`` and ``mask`` are given, a key must pass both.

    Returns:
        weights of the shape of ``scores``: every row sums to 1 over its kept keys, is 0 on masked
        keys, and is all zeros if no key is kept (length 0). Gradients stay finite.
    """
    if not isinstance(scores, torch.Tensor) or not scores.is_floating_point():
        raise ValueError("scores must be a floating-point tensor of shape (B, ..., T_q, T_k)")
    if valid_lens is None and mask is None:
        return torch.softmax(scores, dim=-1)
    if scores.dim() < 2:
        raise ValueError(f"scores must have shape (B, ..., T_q, T_k), got {tuple(scores.shape)}")
    keep = Mask.of(valid_lens, mask, scores_shape=scores.shape, device=scores.device, mask_name="mask").keep

    # A very negative *finite* fill keeps fully masked rows NaN-free (they become uniform here,
    # then are zeroed below), so gradients stay finite too.
    fill = torch.finfo(scores.dtype).min
    weights = torch.softmax(scores.masked_fill(~keep, fill), dim=-1)
    return weights.masked_fill(~keep, 0.0)


@dataclass(frozen=True)
class Mask:
    """Which keys each query may see, made once per call at a model's front door.

    * ``keep``: boolean, broadcastable to the scores ``(B, h, T_q, T_k)`` (``True`` = may attend),
      or ``None`` for "every key";
    * ``is_causal``: the causal pattern on top of ``keep`` (SDPA's ``is_causal``);
    * ``sanitize``: zero the masked keys and values before attending (NaN/inf padding from a
      reader's direct call must not leak); stacks, whose activations come from an embedding,
      build ``sanitize=False``;
    * ``lengths``: the checked lengths ``(B,)`` whose key-padding mask ``keep`` is (nothing else
      masks), or ``None`` -- kernels that cannot take a general mask (low-rank, linear) read them;
    * ``checked``: ``False`` for :meth:`of` called without ``scores_shape`` (a reader's direct call):
      ``keep`` and ``lengths`` then hold the raw arguments, and the layer that knows the scores'
      shape checks them once with :meth:`resolve`.

    Constructors: :meth:`from_lengths` (the only place that reads lengths on the host),
    :meth:`causal`, and :meth:`of` (lengths and/or a mask given to a layer directly).
    """

    keep: torch.Tensor | None = None
    is_causal: bool = False
    sanitize: bool = False
    lengths: torch.Tensor | None = None
    checked: bool = True

    def resolve(self, scores_shape: Sequence[int], device: torch.device | None = None) -> Mask:
        """This mask checked against scores ``(B, ..., T_q, T_k)`` (itself if already checked)."""
        if self.checked:
            return self
        return Mask.of(self.lengths, self.keep, self.is_causal, scores_shape=scores_shape, device=device)

    @classmethod
    def from_lengths(cls, valid_lens, x: torch.Tensor, name: str = "valid_lens", *, sanitize: bool = False) -> Mask:
        """Key mask ``(B, 1, 1, T)`` from lengths ``(B,)`` checked once against ``x (B, T, ...)``.

        ``valid_lens=None`` (no padding) gives an empty mask. Lengths must have shape ``(B,)`` with
        values in ``[0, T]``; the check reads them on the host (CPU tensors and lists only, see
        :func:`as_valid_lens`), so call this once per model call, never per layer.
        """
        if valid_lens is None:
            return cls(sanitize=sanitize)
        lens = as_valid_lens(valid_lens, max_len=x.shape[1], device=x.device, name=name)  # (B,)
        if tuple(lens.shape) != (x.shape[0],):
            raise ValueError(f"{name} must have shape (B,) = ({x.shape[0]},), got {tuple(lens.shape)}")
        return cls(key_padding_mask(lens, x.shape[1]), sanitize=sanitize, lengths=lens)

    @classmethod
    def causal(cls) -> Mask:
        """The causal mask: query ``i`` sees keys ``j <= i + T_k - T_q`` (see :func:`causal_mask`)."""
        return cls(is_causal=True)

    @classmethod
    def of(
        cls,
        valid_lens: torch.Tensor | Sequence[int] | None = None,
        attn_mask: torch.Tensor | None = None,
        is_causal: bool = False,
        *,
        scores_shape: Sequence[int] | None = None,
        device: torch.device | None = None,
        mask_name: str = "attn_mask",
    ) -> Mask:
        """The mask of a direct call: lengths ``(B,)`` or ``(B, T_q)`` AND a boolean ``attn_mask``.

        Without ``scores_shape`` the arguments are kept unchecked (``checked=False``) for the layer
        to :meth:`resolve`: ``layer(q, k, v, Mask.of(valid_lens))``. The result keeps
        ``sanitize=True``. ``keep`` is ``(B, 1, ..., 1, T_k)`` for lengths ``(B,)``,
        ``(B, 1, ..., T_q, T_k)`` for lengths ``(B, T_q)``.
        """
        keep = lengths = None
        if valid_lens is not None or attn_mask is not None:
            if scores_shape is None:
                return cls(attn_mask, is_causal=bool(is_causal), sanitize=True, lengths=valid_lens, checked=False)
            scores_shape = tuple(scores_shape)
            num_queries, num_keys = scores_shape[-2], scores_shape[-1]
        if valid_lens is not None:
            if len(scores_shape) < 3:
                raise ValueError(f"with valid_lens, scores must have shape (B, ..., T_q, T_k), got {scores_shape}")
            batch_size = scores_shape[0]
            lens = as_valid_lens(valid_lens, max_len=num_keys, device=device)
            if tuple(lens.shape) not in ((batch_size,), (batch_size, num_queries)):
                raise ValueError(
                    f"valid_lens must have shape (B,) = ({batch_size},) or (B, T_q) = ({batch_size}, {num_queries}), "
                    f"got {tuple(lens.shape)}: expected ({batch_size},) or ({batch_size}, {num_queries})"
                )
            if lens.dim() == 1:
                keep = key_padding_mask(lens, num_keys, len(scores_shape))  # (B, 1, ..., 1, T_k)
                lengths = lens if attn_mask is None else None
            else:
                positions = torch.arange(num_keys, device=lens.device)
                keep = positions < lens.unsqueeze(-1)  # (B, T_q, T_k)
                keep = keep.view(batch_size, *([1] * (len(scores_shape) - 3)), num_queries, num_keys)
        if attn_mask is not None:
            attn_mask = bool_mask(
                attn_mask,
                scores_shape,
                mask_name,
                f"(T_q, T_k) = ({num_queries}, {num_keys}), (B, T_q, T_k) or (B, 1, T_q, T_k)",
            )
            attn_mask = attn_mask.to(device) if device is not None else attn_mask
            keep = attn_mask if keep is None else keep & attn_mask
        return cls(keep, is_causal=bool(is_causal), sanitize=True, lengths=lengths)
