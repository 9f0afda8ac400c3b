r"""Efficient attention: sparse, low-rank, kernel (linear), random-feature and tiled (chapter 8).

Softmax attention over :math:`n` keys computes an :math:`n \times n` score matrix per head:
:math:`O(n^2 d)` time and, done naively, :math:`O(n^2)` *activation* memory (the parameters do
not grow with :math:`n` at all). Each class here attacks that term, with the interface of
:class:`d2l_attn.scoring.AttentionFn` -- ``forward(queries, keys, values, mask=None,
need_weights=False) -> AttentionOutput`` on ``(..., T, d)`` tensors, with a
:class:`d2l_attn.masking.Mask` -- so any of them plugs into
:class:`d2l_attn.multihead.MultiHeadAttention` via ``attention=``. A mask a variant cannot honour
(a general ``keep`` where it handles key lengths only) is refused with a ``ValueError`` rather
than ignored.

* :class:`LocalAttention`, :class:`BlockSparseAttention` -- keep a sparse set of keys per query
  (:func:`d2l_attn.masking.window_mask`, :func:`d2l_attn.masking.block_sparse_mask`); exact
  softmax attention under that mask.
* :class:`LowRankAttention` (Linformer, Wang et al. 2020) -- project the :math:`n` keys and values
  to :math:`k` rows: :math:`\operatorname{softmax}(\mathbf{Q}(\mathbf{E}\mathbf{K})^\top/\sqrt{d})
  \mathbf{F}\mathbf{V}`, :math:`O(nkd)`.
* :class:`LinearAttention` (Katharopoulos et al. 2020) -- replace :math:`\exp(\mathbf{q}^\top
  \mathbf{k})` by :math:`\phi(\mathbf{q})^\top\phi(\mathbf{k})` and reassociate:
  :math:`\phi(\mathbf{Q})(\phi(\mathbf{K})^\top\mathbf{V})`, :math:`O(n d^2)`; causal decoding is
  an RNN with a :math:`d \times d_v` state (:meth:`LinearAttention.step`).
* :class:`PerformerAttention` (Choromanski et al. 2021) -- positive random features whose dot
  products estimate :math:`\exp(\mathbf{q}^\top\mathbf{k}/\sqrt{d})` without bias.
* :func:`tiled_attention` / :class:`TiledAttention` (Milakov & Gimelshein 2018; Dao et al. 2022) --
  *exact* softmax attention by blocks with an online softmax: never builds an :math:`n \times n`
  tensor, and reads :math:`\mathbf{K}, \mathbf{V}` once per query block (:class:`IOCount`).

Multi-query / grouped-query attention (Shazeer 2019; Ainslie et al. 2023) is not a kernel but a
projection choice: :class:`d2l_attn.multihead.MultiHeadAttention` with ``num_kv_heads``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ._checks import heads_divide, positive_int
from .masking import Mask, block_sparse_mask, causal_mask, window_mask
from .scoring import AttentionOutput, DotProductAttention, _check_qkv, _resolve

__all__ = [
    "LocalAttention",
    "BlockSparseAttention",
    "LowRankAttention",
    "LinearAttention",
    "PerformerAttention",
    "IOCount",
    "tiled_attention",
    "TiledAttention",
    "attention_cost",
]


def _lengths_only(name: str, mask: Mask | None, queries, keys, *, causal_ok: bool) -> tuple[torch.Tensor | None, bool]:
    """``(real (B, 1.., T_k, 1) or None, is_causal)`` for a variant that handles key lengths (and
    perhaps causality) only; any other mask is refused with a clear error instead of ignored.

    Padded positions are later replaced (``torch.where``), never multiplied by 0: ``nan * 0`` is ``nan``.
    """
    if mask is None:
        return None, False
    mask = _resolve(mask, (*queries.shape[:-1], keys.shape[-2]), queries.device)
    if mask.is_causal and not causal_ok:
        raise ValueError(f"{name} does not support is_causal=True")
    if mask.keep is not None and mask.lengths is None:
        raise ValueError(f"{name} does not support attn_mask (a general keep mask): give key lengths (B,) only")
    if mask.lengths is None:
        return None, mask.is_causal
    lens = mask.lengths
    if tuple(lens.shape) != (keys.shape[0],):
        raise ValueError(f"valid_lens must have shape (B,) = ({keys.shape[0]},) here, got {tuple(lens.shape)}")
    num_keys = keys.shape[-2]
    real = torch.arange(num_keys, device=keys.device) < lens[:, None]  # (B, T_k)
    return real.view(keys.shape[0], *([1] * (keys.dim() - 3)), num_keys, 1), mask.is_causal


def _accumulator_dtype(x: torch.Tensor) -> torch.dtype:
    """float32 for float16/bfloat16 inputs (sums over many keys overflow float16's 65,504), else ``x.dtype``."""
    return torch.promote_types(x.dtype, torch.float32)


def _safe_divide(numerator: torch.Tensor, denominator: torch.Tensor, eps) -> torch.Tensor:
    """``numerator / (denominator + eps)``, and 0 for a row with no keys (denominator 0), whatever ``eps``."""
    return numerator / torch.where(denominator > 0, denominator + eps, torch.ones_like(denominator))


def attention_cost(num_steps: int, d_model: int, num_heads: int = 1, bytes_per_value: int = 4) -> dict[str, int]:
    r"""FLOPs and activation bytes of one self-attention layer on ``num_steps`` tokens (batch 1).

    * ``projection_flops`` :math:`= 8 n d^2` (four :math:`d \times d` projections, 2 FLOPs per multiply-add);
    * ``score_flops`` :math:`= 2 n^2 d` (:math:`\mathbf{Q}\mathbf{K}^\top`, all heads together);
    * ``mix_flops`` :math:`= 2 n^2 d` (weights times :math:`\mathbf{V}`);
    * ``parameter_bytes`` :math:`= 4 d^2` values (no :math:`n` in it);
    * ``score_bytes`` :math:`= h n^2` values: one score matrix per head -- the quadratic *memory*.
    """
    n, d = positive_int("num_steps", num_steps), heads_divide(d_model, num_heads) * num_heads
    return {
        "projection_flops": 8 * n * d * d,
        "score_flops": 2 * n * n * d,
        "mix_flops": 2 * n * n * d,
        "parameter_bytes": 4 * d * d * bytes_per_value,
        "score_bytes": num_heads * n * n * bytes_per_value,
    }


# --------------------------------------------------------------------------------------------
# sparse patterns: exact softmax attention under a sparse mask
# --------------------------------------------------------------------------------------------
class _PatternAttention(DotProductAttention):
    """Dot-product attention restricted to ``self.pattern(T_q, T_k)`` (``True`` = may attend)."""

    def pattern(self, num_queries: int, num_keys: int, device) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def forward(self, queries, keys, values, mask: Mask | None = None, need_weights: bool = False) -> AttentionOutput:
        _check_qkv(queries, keys, values, same_dim=True)
        keep = self.pattern(queries.shape[-2], keys.shape[-2], queries.device)  # (T_q, T_k)
        if mask is None:
            mask = Mask(keep)
        else:
            mask = _resolve(mask, (*queries.shape[:-1], keys.shape[-2]), queries.device)
            both = keep if mask.keep is None else mask.keep & keep
            mask = Mask(both, is_causal=mask.is_causal, sanitize=mask.sanitize)
        return super().forward(queries, keys, values, mask, need_weights)


class LocalAttention(_PatternAttention):
    r"""Sliding-window attention: query :math:`i` attends to keys :math:`j` with :math:`|i - j| <` ``window``.

    Exactly :class:`~d2l_attn.scoring.DotProductAttention` with
    :func:`~d2l_attn.masking.window_mask` (``causal=True``: :math:`i - w < j \le i`). This
    reference computes the full score matrix and masks it; a kernel that skips the masked blocks
    does :math:`O(n w d)` work. The receptive field grows by ``window - 1`` per layer.
    """

    def __init__(self, window: int, *, causal: bool = False, dropout: float = 0.0, fused: bool = True):
        super().__init__(dropout=dropout, fused=fused)
        self.window, self.causal = positive_int("window", window), bool(causal)

    def pattern(self, num_queries, num_keys, device) -> torch.Tensor:
        return window_mask(num_queries, num_keys, window=self.window, causal=self.causal, device=device)

    def extra_repr(self) -> str:
        return f"window={self.window}, causal={self.causal}"


class BlockSparseAttention(_PatternAttention):
    """Attention within the same and adjacent blocks, plus ``num_global`` global tokens (BigBird-style).

    Exactly :class:`~d2l_attn.scoring.DotProductAttention` with
    :func:`~d2l_attn.masking.block_sparse_mask` (self-attention: ``T_q == T_k``).
    """

    def __init__(self, block_size: int, *, num_global: int = 0, dropout: float = 0.0, fused: bool = True):
        super().__init__(dropout=dropout, fused=fused)
        self.block_size = positive_int("block_size", block_size)
        if not isinstance(num_global, int) or isinstance(num_global, bool) or num_global < 0:
            raise ValueError(f"num_global must be a non-negative int, got {num_global!r}")
        self.num_global = num_global

    def pattern(self, num_queries, num_keys, device) -> torch.Tensor:
        if num_queries != num_keys:
            raise ValueError(f"BlockSparseAttention is self-attention: needs T_q == T_k, got {num_queries}, {num_keys}")
        return block_sparse_mask(num_keys, self.block_size, num_global=min(self.num_global, num_keys), device=device)

    def extra_repr(self) -> str:
        return f"block_size={self.block_size}, num_global={self.num_global}"


# --------------------------------------------------------------------------------------------
# low rank: Linformer
# --------------------------------------------------------------------------------------------
class LowRankAttention(nn.Module):
    r"""Linformer attention: keys and values projected along the sequence to ``rank`` rows.

    .. math::

        \operatorname{softmax}\!\Big(\frac{\mathbf{Q}(\mathbf{E}\mathbf{K})^\top}{\sqrt{d}}\Big)
        (\mathbf{F}\mathbf{V}), \qquad \mathbf{E}, \mathbf{F} \in \mathbb{R}^{k \times n}.

    The score matrix is :math:`n \times k`: :math:`O(nkd)` time and :math:`O(nk)` memory, linear
    in :math:`n` for a fixed :math:`k`. ``E`` and ``F`` are learned and tied to the maximum length
    ``seq_len`` (shorter inputs use their first columns); padded keys (``valid_lens``) are zeroed
    before the projection. Not causal: every projected row mixes all positions.
    """

    def __init__(self, seq_len: int, rank: int):
        super().__init__()
        self.seq_len, self.rank = positive_int("seq_len", seq_len), positive_int("rank", rank)
        self.E = nn.Parameter(torch.randn(rank, seq_len) / math.sqrt(rank))  # (k, n)
        self.F = nn.Parameter(torch.randn(rank, seq_len) / math.sqrt(rank))  # (k, n)

    def forward(self, queries, keys, values, mask: Mask | None = None, need_weights: bool = False) -> AttentionOutput:
        _check_qkv(queries, keys, values, same_dim=True)
        num_keys = keys.shape[-2]
        if num_keys > self.seq_len:
            raise ValueError(f"keys have T_k={num_keys} steps, more than seq_len={self.seq_len}")
        real, _ = _lengths_only("LowRankAttention", mask, queries, keys, causal_ok=False)  # (B, 1.., T_k, 1)
        if real is not None:
            keys, values = torch.where(real, keys, 0.0), torch.where(real, values, 0.0)
        E, F_ = self.E[:, :num_keys].to(keys.dtype), self.F[:, :num_keys].to(keys.dtype)  # (k, T_k)
        k_low, v_low = E @ keys, F_ @ values  # (..., k, d), (..., k, d_v)
        weights = torch.softmax(
            queries @ k_low.transpose(-2, -1) / math.sqrt(queries.shape[-1]), dim=-1
        )  # (..., T_q, k)
        output = weights @ v_low  # (..., T_q, d_v)
        return AttentionOutput(output, weights if need_weights else None)

    def extra_repr(self) -> str:
        return f"seq_len={self.seq_len}, rank={self.rank}"


# --------------------------------------------------------------------------------------------
# kernel (linear) attention and random features
# --------------------------------------------------------------------------------------------
class LinearAttention(nn.Module):
    r"""Kernel attention with :math:`\phi(x) = \operatorname{elu}(x) + 1` (Katharopoulos et al., 2020).

    .. math::

        \mathbf{o}_i = \frac{\phi(\mathbf{q}_i)^\top \sum_j \phi(\mathbf{k}_j)\mathbf{v}_j^\top}
                            {\phi(\mathbf{q}_i)^\top \sum_j \phi(\mathbf{k}_j)}

    computed right to left, :math:`\phi(\mathbf{Q})\,(\phi(\mathbf{K})^\top\mathbf{V})`: :math:`O(n d d_v)`
    time, no :math:`n \times n` tensor. Causal (``is_causal``): the sums run over :math:`j \le i`
    (prefix sums), which is the recurrence :math:`\mathbf{S}_i = \mathbf{S}_{i-1} +
    \phi(\mathbf{k}_i)\mathbf{v}_i^\top`, :math:`\mathbf{z}_i = \mathbf{z}_{i-1} + \phi(\mathbf{k}_i)`
    of :meth:`step`. ``need_weights=True`` also returns the (quadratic) normalized weights
    :math:`\phi(\mathbf{q}_i)^\top\phi(\mathbf{k}_j) / \sum_{j'} \phi(\mathbf{q}_i)^\top\phi(\mathbf{k}_{j'})`.
    """

    def __init__(self, eps: float = 1e-6):
        super().__init__()
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 <= eps < math.inf:
            raise ValueError(f"eps must be a finite number >= 0 (added to the denominator), got {eps!r}")
        self.eps = float(eps)

    def features(self, x: torch.Tensor, *, is_query: bool) -> torch.Tensor:
        """The feature map :math:`\\phi`, ``(..., T, d) -> (..., T, m)``, positive."""
        return F.elu(x) + 1.0

    def feature_pair(self, queries, keys, real=None, is_causal=False) -> tuple[torch.Tensor, torch.Tensor, object]:
        """``phi(Q)``, ``phi(K)`` (padded keys, ``real == False``, set to 0) and the ``eps`` of each row."""
        phi_q, phi_k = self.features(queries, is_query=True), self.features(keys, is_query=False)  # (..., T, m)
        return phi_q, phi_k if real is None else torch.where(real, phi_k, 0.0), self.eps

    def forward(self, queries, keys, values, mask: Mask | None = None, need_weights: bool = False) -> AttentionOutput:
        _check_qkv(queries, keys, values, same_dim=True)
        real, is_causal = _lengths_only(type(self).__name__, mask, queries, keys, causal_ok=True)  # (B, 1.., T_k, 1)
        if is_causal and queries.shape[-2] != keys.shape[-2]:
            raise ValueError("causal linear attention needs T_q == T_k (use step() to decode with a state)")
        dtype, work = values.dtype, _accumulator_dtype(values)  # sums in float32 for float16 inputs
        queries, keys, values = queries.to(work), keys.to(work), values.to(work)
        if real is not None:
            values = torch.where(real, values, 0.0)  # padded values never reach the output (nan * 0 = nan)
        phi_q, phi_k, eps = self.feature_pair(queries, keys, real, is_causal)  # (..., T, m)
        if need_weights:  # the quadratic definition, for checks and plots
            weights = phi_q @ phi_k.transpose(-2, -1)  # (..., T_q, T_k)
            if is_causal:
                weights = weights.masked_fill(~causal_mask(weights.shape[-2], device=weights.device), 0.0)
            weights = _safe_divide(weights, weights.sum(-1, keepdim=True), eps)
            return AttentionOutput((weights @ values).to(dtype), weights.to(dtype))
        if is_causal:
            state = torch.cumsum(phi_k.unsqueeze(-1) * values.unsqueeze(-2), dim=-3)  # (..., T, m, d_v): S_i
            norm = torch.cumsum(phi_k, dim=-2)  # (..., T, m): z_i
            numerator = (phi_q.unsqueeze(-2) @ state).squeeze(-2)  # (..., T, d_v)
            denominator = (phi_q * norm).sum(-1, keepdim=True)  # (..., T, 1)
        else:
            kv = phi_k.transpose(-2, -1) @ values  # (..., m, d_v): sum_j phi(k_j) v_j^T
            numerator = phi_q @ kv  # (..., T_q, d_v)
            denominator = phi_q @ phi_k.sum(-2).unsqueeze(-1)  # (..., T_q, 1)
        return AttentionOutput(_safe_divide(numerator, denominator, eps).to(dtype), None)

    def step(self, query, key, value, state=None) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """One causal decoding step: ``query``, ``key`` ``(..., d)``, ``value`` ``(..., d_v)``.

        ``state = (S (..., m, d_v), z (..., m))`` or ``None`` at the start (kept in float32 for
        float16 inputs). Returns ``(output (..., d_v), new_state)``: constant memory per step,
        however long the prefix; the outputs equal ``forward(..., Mask.causal())``.
        """
        dtype, work = value.dtype, _accumulator_dtype(value)
        phi_q, phi_k, eps = self.feature_pair(query.to(work)[..., None, :], key.to(work)[..., None, :], None, True)
        phi_q, phi_k = phi_q.squeeze(-2), phi_k.squeeze(-2)  # (..., m)
        S, z = (0.0, 0.0) if state is None else state
        S = S + phi_k.unsqueeze(-1) * value.to(work).unsqueeze(-2)  # (..., m, d_v)
        z = z + phi_k  # (..., m)
        eps = eps.squeeze(-1) if isinstance(eps, torch.Tensor) else eps  # (..., 1)
        output = _safe_divide((phi_q.unsqueeze(-2) @ S).squeeze(-2), (phi_q * z).sum(-1, keepdim=True), eps)
        return output.to(dtype), (S, z)


class PerformerAttention(LinearAttention):
    r"""Softmax attention estimated with ``num_features`` positive random features (Performer, FAVOR+).

    With :math:`\mathbf{x}' = \mathbf{x} / d^{1/4}` and rows :math:`\mathbf{w}_r \sim \mathcal{N}(0, \mathbf{I})`,

    .. math::

        \phi(\mathbf{x}) = \frac{1}{\sqrt{m}}\exp\!\Big(\mathbf{W}\mathbf{x}' - \frac{\|\mathbf{x}'\|^2}{2}\Big),
        \qquad \mathbb{E}\big[\phi(\mathbf{q})^\top\phi(\mathbf{k})\big] = \exp\!\Big(\frac{\mathbf{q}^\top\mathbf{k}}{\sqrt{d}}\Big),

    so linear attention with :math:`\phi` estimates softmax attention; the error shrinks like
    :math:`1/\sqrt{m}`. The features are drawn once, from ``generator`` (a private
    :class:`torch.Generator`; no global state is touched), and kept as a buffer. Constants are
    subtracted inside the exponentials (see :meth:`feature_pair`); they cancel in the ratio, and
    no output depends on a padded key or, with ``is_causal``, on a later one.
    """

    def __init__(
        self, head_dim: int, num_features: int, *, generator: torch.Generator | None = None, eps: float = 1e-6
    ):
        super().__init__(eps=eps)
        self.head_dim = positive_int("head_dim", head_dim)
        self.num_features = positive_int("num_features", num_features)
        self.register_buffer("W", torch.randn(num_features, head_dim, generator=generator))  # (m, d)

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`\\mathbf{W}\\mathbf{x}' - \\|\\mathbf{x}'\\|^2/2`, ``(..., T, d) -> (..., T, m)``."""
        if x.shape[-1] != self.head_dim:
            raise ValueError(f"expected queries and keys of size head_dim={self.head_dim}, got {x.shape[-1]}")
        x = x / self.head_dim**0.25  # (..., T, d)
        return x @ self.W.to(x.dtype).T - (x * x).sum(-1, keepdim=True) / 2  # (..., T, m)

    def _key_bound(self, dtype) -> torch.Tensor:
        """:math:`\\max_r \\|\\mathbf{w}_r\\|^2/2`, the largest value :meth:`_project` can give (for any key)."""
        return (self.W.to(dtype).square().sum(-1).amax() / 2).detach()

    def features(self, x: torch.Tensor, *, is_query: bool) -> torch.Tensor:
        """:math:`\\phi(\\mathbf{x})` up to a constant factor: queries shifted by their row maximum,
        keys by :meth:`_key_bound` (the same for every key, so it cancels in the ratio)."""
        projected = self._project(x)
        shift = projected.amax(-1, keepdim=True).detach() if is_query else self._key_bound(projected.dtype)
        return torch.exp(projected - shift) / math.sqrt(self.num_features)

    def feature_pair(self, queries, keys, real=None, is_causal=False) -> tuple[torch.Tensor, torch.Tensor, object]:
        """The features with their shifts, and ``eps`` expressed in the shifted units.

        Query row :math:`i` is shifted by its own maximum :math:`a_i`; all keys by one constant
        :math:`c`: the maximum over the *real* keys of the example (padded keys never enter it),
        or, causally, the bound :meth:`_key_bound` (it depends on no key, so no output depends on
        a later key). Adding :math:`\\epsilon e^{-a_i - c}` to the shifted denominator is adding
        :math:`\\epsilon` to the unshifted one: the output is the same whichever shifts are used.
        """
        pq, pk = self._project(queries), self._project(keys)  # (..., T_q, m), (..., T_k, m)
        shift_q = pq.amax(-1, keepdim=True).detach()  # (..., T_q, 1)
        if is_causal:
            shift_k = self._key_bound(pk.dtype)
        else:
            row_max = pk.amax(-1, keepdim=True).detach()  # (..., T_k, 1)
            if real is not None:
                row_max = row_max.masked_fill(~real, -math.inf)
            shift_k = row_max.amax(-2, keepdim=True)  # (..., 1, 1)
            shift_k = torch.where(torch.isfinite(shift_k), shift_k, 0.0)  # an example with no real key
        phi_q = torch.exp(pq - shift_q) / math.sqrt(self.num_features)
        phi_k = torch.exp(pk - shift_k) / math.sqrt(self.num_features)
        if real is not None:
            phi_k = torch.where(real, phi_k, 0.0)
        return phi_q, phi_k, self.eps * torch.exp(-(shift_q + shift_k))  # eps: (..., T_q, 1)

    def extra_repr(self) -> str:
        return f"head_dim={self.head_dim}, num_features={self.num_features}"


# --------------------------------------------------------------------------------------------
# IO-aware tiling with the online softmax
# --------------------------------------------------------------------------------------------
@dataclass
class IOCount:
    """Elements read from and written to the large ("HBM") tensors, counted by :func:`tiled_attention`."""

    reads: int = 0
    writes: int = 0


def tiled_attention(
    queries: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    *,
    block_q: int = 128,
    block_k: int = 128,
    is_causal: bool = False,
    io: IOCount | None = None,
) -> torch.Tensor:
    r"""Exact softmax attention computed tile by tile, with an online softmax (FlashAttention's order).

    For each block of ``block_q`` queries, loop over blocks of ``block_k`` keys keeping a running
    maximum :math:`m`, a running denominator :math:`\ell` and an unnormalized output
    :math:`\mathbf{a}`; a new tile with scores :math:`\mathbf{S}` updates them as

    .. math::

        m' = \max(m, \max_j S_j), \quad
        \ell' = e^{m - m'}\ell + \sum_j e^{S_j - m'}, \quad
        \mathbf{a}' = e^{m - m'}\mathbf{a} + e^{\mathbf{S} - m'}\mathbf{V}_\text{tile},

    and the output is :math:`\mathbf{a}/\ell`. The largest temporary is one
    ``(..., block_q, block_k)`` tile: memory :math:`O(n d + b_q b_k)`, linear in :math:`n`.
    ``T_q`` and ``T_k`` must be multiples of the block sizes. With ``is_causal`` the queries are
    the last ``T_q`` positions and key tiles wholly in their future are skipped. ``io`` counts the
    elements read/written from/to the full ``Q, K, V, O`` tensors.
    """
    _check_qkv(queries, keys, values, same_dim=True)
    positive_int("block_q", block_q)
    positive_int("block_k", block_k)
    num_q, num_k = queries.shape[-2], keys.shape[-2]
    for name, steps, block in (("T_q", num_q, block_q), ("T_k", num_k, block_k)):
        if steps % block:
            raise ValueError(f"{name}={steps} must be divisible by its block size {block} (pad the sequence)")
    if is_causal and num_q > num_k:
        raise ValueError(f"is_causal needs T_k >= T_q, got T_q={num_q}, T_k={num_k}")
    scale, offset = 1.0 / math.sqrt(queries.shape[-1]), num_k - num_q
    work = _accumulator_dtype(queries)  # running max, denominator, accumulator: float32 for float16 inputs
    output = queries.new_empty(*queries.shape[:-1], values.shape[-1])  # (..., T_q, d_v)
    for i in range(0, num_q, block_q):
        q = queries[..., i : i + block_q, :].to(work) * scale  # (..., b_q, d)
        m = torch.full((*q.shape[:-1], 1), -math.inf, dtype=work, device=q.device)  # (..., b_q, 1)
        denom = torch.zeros_like(m)  # (..., b_q, 1)
        acc = torch.zeros(*q.shape[:-1], values.shape[-1], dtype=work, device=q.device)  # (..., b_q, d_v)
        last_key = i + block_q - 1 + offset if is_causal else num_k - 1
        for j in range(0, last_key + 1, block_k):
            s = q @ keys[..., j : j + block_k, :].to(work).transpose(-2, -1)  # (..., b_q, b_k)
            if is_causal and j + block_k - 1 > i + offset:  # the tile crosses the diagonal
                rows = torch.arange(i, i + block_q, device=q.device)[:, None] + offset
                s = s.masked_fill(torch.arange(j, j + block_k, device=q.device) > rows, -math.inf)
            m_new = torch.maximum(m, s.amax(-1, keepdim=True))  # (..., b_q, 1)
            p = torch.exp(s - m_new)  # (..., b_q, b_k)
            correction = torch.exp(m - m_new)  # (..., b_q, 1)
            denom = correction * denom + p.sum(-1, keepdim=True)
            acc = correction * acc + p @ values[..., j : j + block_k, :].to(work)  # (..., b_q, d_v)
            m = m_new
            if io is not None:
                io.reads += keys[..., j : j + block_k, :].numel() + values[..., j : j + block_k, :].numel()
        output[..., i : i + block_q, :] = _safe_divide(acc, denom, 0.0)  # no keys: zeros, as DotProductAttention
        if io is not None:
            io.reads += q.numel()
            io.writes += acc.numel()
    return output  # (..., T_q, d_v)


class TiledAttention(nn.Module):
    """:func:`tiled_attention` with :class:`~d2l_attn.scoring.DotProductAttention`'s interface.

    Supports causal masks; refuses other masks, lengths and ``need_weights`` (it never builds the weights).
    """

    def __init__(self, block_q: int = 128, block_k: int = 128):
        super().__init__()
        self.block_q, self.block_k = positive_int("block_q", block_q), positive_int("block_k", block_k)

    def forward(self, queries, keys, values, mask: Mask | None = None, need_weights: bool = False) -> AttentionOutput:
        if need_weights:
            raise ValueError("TiledAttention does not support need_weights=True (it never builds the weights)")
        if mask is not None and (mask.keep is not None or mask.lengths is not None):
            raise ValueError("TiledAttention does not support attn_mask or valid_lens (causal masks only)")
        is_causal = mask is not None and mask.is_causal
        output = tiled_attention(
            queries,
            keys,
            values,
            block_q=min(self.block_q, queries.shape[-2]),
            block_k=min(self.block_k, keys.shape[-2]),
            is_causal=is_causal,
        )
        return AttentionOutput(output, None)

    def extra_repr(self) -> str:
        return f"block_q={self.block_q}, block_k={self.block_k}"
