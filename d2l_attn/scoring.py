r"""Attention scoring functions (taught in chapter 3, used by chapters 4, 5 and 7).

Attention pooling (chapter 1) turns scores :math:`a(\mathbf{q}, \mathbf{k}_j)` into weights
with a softmax over the keys and averages the values with them:

.. math::

    \operatorname{attention}(\mathbf{q}, \{(\mathbf{k}_j, \mathbf{v}_j)\})
        = \sum_j \alpha_j \mathbf{v}_j, \qquad
    \alpha_j = \frac{\exp a(\mathbf{q}, \mathbf{k}_j)}{\sum_{j'} \exp a(\mathbf{q}, \mathbf{k}_{j'})}.

This module holds the two classic scores:

* **additive** (Bahdanau et al., 2015) -- a one-hidden-layer MLP, for queries and keys of
  different sizes: :math:`a(\mathbf{q}, \mathbf{k}) = \mathbf{w}_v^\top
  \tanh(\mathbf{W}_q\mathbf{q} + \mathbf{W}_k\mathbf{k})`;
* **scaled dot product** (Vaswani et al., 2017), for queries and keys of the same size
  :math:`d`: :math:`a(\mathbf{q}, \mathbf{k}) = \mathbf{q}^\top\mathbf{k} / \sqrt{d}`.

Both modules implement one interface, :class:`AttentionFn` (and so do chapter 8's variants):

* ``queries (B, T_q, d_q)``, ``keys (B, T_k, d_k)``, ``values (B, T_k, d_v)`` (batch-first;
  :class:`DotProductAttention` also accepts extra leading axes, e.g. heads ``(B, h, T, d)``);
* ``mask``: a :class:`d2l_attn.masking.Mask` or ``None``. A reader's direct call builds one with
  ``Mask.of(valid_lens, attn_mask, is_causal)``: ``valid_lens`` ``(B,)`` or ``(B, T_q)`` integer
  lengths (key ``j`` is real iff ``j < valid_len``), ``attn_mask`` boolean, ``True`` = may attend
  (the convention of :func:`torch.nn.functional.scaled_dot_product_attention`), broadcastable to
  ``(..., T_q, T_k)``; if both are given, a key must pass both;
* ``need_weights``; the result is always an :class:`AttentionOutput` ``(output (..., T_q, d_v),
  weights (..., T_q, T_k) or None)``.

A query whose keys are *all* masked gets all-zero weights and a zero output (never NaN), in
every path. The returned weights are the softmax *before* dropout (each row sums to 1 over its
kept keys); in training mode the output is computed with the dropped-out weights, rescaled by
``1 / (1 - p)`` as :class:`torch.nn.Dropout` does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol

import torch
from torch import nn
from torch.nn import functional as F

from ._checks import positive_int, unit_interval
from .masking import Mask, causal_mask, masked_softmax

__all__ = ["AttentionOutput", "AttentionFn", "AdditiveAttention", "DotProductAttention"]

#: ``score_mod(scores (..., T_q, T_k), q_idx (T_q, 1), k_idx (1, T_k), head (h, 1, 1)) -> scores``
ScoreMod = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
#: ``weights_mod(weights (..., T_q, T_k), values (..., T_k, d_v)) -> new weights or None``
WeightsMod = Callable[[torch.Tensor, torch.Tensor], "torch.Tensor | None"]


class AttentionOutput(NamedTuple):
    """What every attention function returns: ``output (..., T_q, d_v)`` and, when asked for,
    ``weights (..., T_q, T_k)`` (``None`` otherwise)."""

    output: torch.Tensor
    weights: torch.Tensor | None


class AttentionFn(Protocol):
    """The interface of an attention kernel (this module's two, chapter 8's variants, QK-norm):
    ``queries (..., T_q, d)``, ``keys (..., T_k, d)``, ``values (..., T_k, d_v)``, an optional
    :class:`~d2l_attn.masking.Mask`, and whether to return the weights. Any module with this
    ``__call__`` plugs into :class:`d2l_attn.multihead.MultiHeadAttention` via ``attention=``."""

    def __call__(
        self,
        queries: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        mask: Mask | None = None,
        need_weights: bool = False,
    ) -> AttentionOutput: ...


def _resolve(mask: object, scores_shape: Sequence[int], device: torch.device) -> Mask:
    """``mask`` (a :class:`~d2l_attn.masking.Mask`) checked against ``scores_shape`` once."""
    if not isinstance(mask, Mask):
        raise ValueError(
            f"mask must be a d2l_attn.masking.Mask (e.g. Mask.of(valid_lens, attn_mask)) or None, got {type(mask).__name__}"
        )
    return mask.resolve(scores_shape, device)


# --------------------------------------------------------------------------------------------
# input checks shared by both modules
# --------------------------------------------------------------------------------------------
def _check_tensor(x, name: str, expected: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a tensor of shape {expected}, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor of shape {expected}, got dtype {x.dtype}")
    if x.dim() < 3:
        raise ValueError(f"{name} must have shape {expected}, got {tuple(x.shape)}")
    return x


def _check_qkv(queries, keys, values, *, same_dim: bool) -> None:
    """Validate ``queries (..., T_q, d_q)``, ``keys (..., T_k, d_k)``, ``values (..., T_k, d_v)``."""
    _check_tensor(queries, "queries", "(B, T_q, d_q) or (B, ..., T_q, d)")
    _check_tensor(keys, "keys", "(B, T_k, d_k) or (B, ..., T_k, d)")
    _check_tensor(values, "values", "(B, T_k, d_v) or (B, ..., T_k, d_v)")
    lead = tuple(queries.shape[:-2])
    if tuple(keys.shape[:-2]) != lead or tuple(values.shape[:-2]) != lead:
        raise ValueError(
            "queries, keys and values must share their leading (batch) axes: expected "
            f"keys (*{lead}, T_k, d_k) and values (*{lead}, T_k, d_v), got queries {tuple(queries.shape)}, "
            f"keys {tuple(keys.shape)}, values {tuple(values.shape)}"
        )
    num_keys = keys.shape[-2]
    if values.shape[-2] != num_keys:
        raise ValueError(
            f"values must have one row per key: expected shape (*{lead}, T_k={num_keys}, d_v), "
            f"got {tuple(values.shape)}"
        )
    if same_dim and queries.shape[-1] != keys.shape[-1]:
        raise ValueError(
            "dot-product scores need queries and keys of the same size d: expected keys of shape "
            f"(*{lead}, T_k, d={queries.shape[-1]}), got {tuple(keys.shape)} "
            "(use AdditiveAttention for different sizes)"
        )
    if not (queries.dtype == keys.dtype == values.dtype):
        raise ValueError(
            f"queries, keys and values must have the same dtype, got {queries.dtype}, {keys.dtype}, {values.dtype}"
        )


def _zero_masked_keys(
    keys: torch.Tensor, values: torch.Tensor, keep: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``keys (..., T_k, d)`` and ``values (..., T_k, d_v)`` with zeros where no query may look.

    Attention adds the mask to the scores, and ``NaN + (-inf)`` is NaN; the weight 0 of a masked
    key times a NaN value is NaN too. Padding that holds NaN or inf (e.g. from user data) must not
    poison the output, so :meth:`DotProductAttention.forward` zeroes the keys and values that
    ``keep (..., T_q, T_k)`` hides from every query; finite inputs give the same output either way.
    Returns the inputs unchanged when ``keep`` is ``None``.
    """
    if keep is None:
        return keys, values
    dead = ~keep.any(dim=-2).unsqueeze(-1)  # (..., T_k, 1): keys no query attends to
    return keys.masked_fill(dead, 0.0), values.masked_fill(dead, 0.0)  # (..., T_k, d), (..., T_k, d_v)


# --------------------------------------------------------------------------------------------
# additive attention
# --------------------------------------------------------------------------------------------
class AdditiveAttention(nn.Module):
    r"""Additive (Bahdanau) attention: an MLP scores each query-key pair.

    .. math::

        a(\mathbf{q}, \mathbf{k}) = \mathbf{w}_v^\top \tanh(\mathbf{W}_q \mathbf{q} + \mathbf{W}_k \mathbf{k}),
        \qquad \mathbf{W}_q \in \mathbb{R}^{h \times d_q},\ \mathbf{W}_k \in \mathbb{R}^{h \times d_k},
        \ \mathbf{w}_v \in \mathbb{R}^{h}.

    Queries and keys may have different sizes (``query_dim`` and ``key_dim``); ``num_hiddens``
    is ``h``. The module has ``h (d_q + d_k + 1)`` parameters (no biases).

    Args:
        query_dim: size ``d_q`` of a query.
        key_dim: size ``d_k`` of a key.
        num_hiddens: size ``h`` of the hidden layer.
        dropout: dropout probability on the attention weights (training mode only).
    """

    def __init__(self, query_dim: int, key_dim: int, num_hiddens: int, dropout: float = 0.0):
        super().__init__()
        for name, value in (("query_dim", query_dim), ("key_dim", key_dim), ("num_hiddens", num_hiddens)):
            positive_int(name, value)
        dropout = unit_interval("dropout", dropout)
        self.query_dim, self.key_dim, self.num_hiddens = query_dim, key_dim, num_hiddens
        self.W_q = nn.Linear(query_dim, num_hiddens, bias=False)
        self.W_k = nn.Linear(key_dim, num_hiddens, bias=False)
        self.w_v = nn.Linear(num_hiddens, 1, bias=False)
        self.dropout = nn.Dropout(dropout)

    def score(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        r"""Scores ``(..., T_q, T_k)``: :math:`\mathbf{w}_v^\top\tanh(\mathbf{W}_q\mathbf{q}_i + \mathbf{W}_k\mathbf{k}_j)`."""
        projected_q = self.W_q(queries)  # (..., T_q, h)
        projected_k = self.W_k(keys)  # (..., T_k, h)
        # broadcast every query against every key: (..., T_q, 1, h) + (..., 1, T_k, h)
        features = torch.tanh(projected_q.unsqueeze(-2) + projected_k.unsqueeze(-3))  # (..., T_q, T_k, h)
        return self.w_v(features).squeeze(-1)  # (..., T_q, T_k)

    def forward(
        self,
        queries: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        mask: Mask | None = None,
        need_weights: bool = False,
    ) -> AttentionOutput:
        """``AttentionOutput(output (B, T_q, d_v), weights (B, T_q, T_k) or None)``; ``mask`` as in
        :meth:`DotProductAttention.forward` (causal masks included)."""
        _check_qkv(queries, keys, values, same_dim=False)
        if queries.shape[-1] != self.query_dim:
            raise ValueError(
                f"queries must have shape (B, T_q, query_dim={self.query_dim}), got {tuple(queries.shape)}"
            )
        dtype = self.W_q.weight.dtype
        for name, x in (("queries", queries), ("keys", keys)):
            if x.dtype != dtype and not torch.is_autocast_enabled(x.device.type):
                raise ValueError(f"{name} has dtype {x.dtype} but the layer's parameters are {dtype}: convert one")
        if keys.shape[-1] != self.key_dim:
            raise ValueError(f"keys must have shape (B, T_k, key_dim={self.key_dim}), got {tuple(keys.shape)}")
        scores = self.score(queries, keys)  # (B, T_q, T_k)
        keep = None
        if mask is not None:
            mask = _resolve(mask, scores.shape, scores.device)
            keep = mask.keep
            if mask.is_causal:
                triangle = causal_mask(scores.shape[-2], scores.shape[-1], device=scores.device)
                keep = triangle if keep is None else keep & triangle
        weights = masked_softmax(scores, mask=keep)  # (B, T_q, T_k)
        output = self.dropout(weights) @ values  # (B, T_q, T_k) @ (B, T_k, d_v) -> (B, T_q, d_v)
        return AttentionOutput(output, weights if need_weights else None)

    def extra_repr(self) -> str:
        return f"query_dim={self.query_dim}, key_dim={self.key_dim}, num_hiddens={self.num_hiddens}"


# --------------------------------------------------------------------------------------------
# scaled dot-product attention
# --------------------------------------------------------------------------------------------
class DotProductAttention(nn.Module):
    r"""Scaled dot-product attention (Vaswani et al., 2017), an :class:`AttentionFn`.

    .. math::

        \operatorname{softmax}\!\Big(\frac{\mathbf{Q}\mathbf{K}^\top}{\sqrt{d}}\Big)\mathbf{V},
        \qquad \mathbf{Q} \in \mathbb{R}^{T_q \times d},\ \mathbf{K} \in \mathbb{R}^{T_k \times d},
        \ \mathbf{V} \in \mathbb{R}^{T_k \times d_v}.

    The factor :math:`1/\sqrt{d}` (``d`` = the size of a query and of a key) keeps the scores'
    variance at 1 when the entries of ``q`` and ``k`` are independent with variance 1; without
    it the variance is ``d``, the softmax saturates and its gradient vanishes (chapter 3).

    One ``forward``, two paths that compute the same function (nanoGPT's ``if self.flash:``):

    * the **fused** path (``fused=True``, no weights requested, no hook set):
      :func:`torch.nn.functional.scaled_dot_product_attention`, which picks a memory-efficient
      kernel (FlashAttention on suitable GPUs) and never materializes the weights. Where PyTorch
      returns NaN for a query with no key to attend to, this path returns zeros;
    * the **reference** path: matmul, scale, ``score_mod``, :func:`d2l_attn.masking.masked_softmax`,
      ``weights_mod``, dropout, matmul -- readable, and it returns the weights.

    Two declared hooks (``None`` by default) run on the reference path only:

    * ``score_mod(scores, q_idx, k_idx, head) -> scores`` (flex-attention's idea): ``scores``
      ``(..., T_q, T_k)``, ``q_idx (T_q, 1)`` and ``k_idx (1, T_k)`` the positions (queries are
      the last ``T_q`` of ``T_k`` positions), ``head (h, 1, 1)`` the head index (``0`` without a
      head axis); ALiBi and relative biases are score mods;
    * ``weights_mod(weights, values) -> weights or None``: sees the softmax weights
      ``(..., T_q, T_k)`` and the values; a tensor it returns replaces the weights
      (:func:`d2l_attn.interpret.replace_attention` sets it through a context manager).

    Args:
        dropout: dropout probability on the attention weights (training mode only).
        fused: use the fused path when the weights are not requested and no hook is set.
        score_mod: the score hook above (or set the attribute later).
    """

    def __init__(self, dropout: float = 0.0, fused: bool = True, score_mod: ScoreMod | None = None):
        super().__init__()
        self.dropout = nn.Dropout(unit_interval("dropout", dropout))
        self.fused = bool(fused)
        if score_mod is not None and not callable(score_mod):
            raise ValueError(f"score_mod must be a callable (scores, q_idx, k_idx, head) -> scores, got {score_mod!r}")
        self.score_mod: ScoreMod | None = score_mod
        self.weights_mod: WeightsMod | None = None

    @staticmethod
    def score(queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        r"""Scores ``(..., T_q, T_k)``: :math:`\mathbf{Q}\mathbf{K}^\top / \sqrt{d}`."""
        d = queries.shape[-1]
        return queries @ keys.transpose(-2, -1) / math.sqrt(d)  # (..., T_q, d) @ (..., d, T_k) -> (..., T_q, T_k)

    def forward(
        self,
        queries: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        mask: Mask | None = None,
        need_weights: bool = False,
    ) -> AttentionOutput:
        """``AttentionOutput(output (..., T_q, d_v), weights (..., T_q, T_k) or None)``.

        ``mask``: a :class:`~d2l_attn.masking.Mask` (``Mask.of(valid_lens, attn_mask, is_causal)``
        for a direct call, checked here against the scores' shape), or ``None``. With
        ``is_causal`` query ``i`` sees keys ``0..i`` only, combined with ``keep``; with ``T_q < T_k``
        (a key/value cache) the queries are the *last* ``T_q`` positions. With ``T_q == T_k`` and no
        other mask the fused path hands SDPA its own ``is_causal`` flag, which keeps the fastest GPU
        kernels eligible. ``sanitize`` masks have their masked keys and values zeroed first.
        """
        _check_qkv(queries, keys, values, same_dim=True)
        keep, causal = None, False
        if mask is not None:
            mask = _resolve(mask, (*queries.shape[:-1], keys.shape[-2]), queries.device)  # (..., T_q, T_k)
            keep, causal = mask.keep, mask.is_causal
            if mask.sanitize:
                keys, values = _zero_masked_keys(keys, values, keep)
        num_q, num_k = queries.shape[-2], keys.shape[-2]
        if causal and num_q > num_k:
            raise ValueError(
                "is_causal needs at least as many keys as queries (the queries are the last positions), "
                f"got T_q={num_q} and T_k={num_k}"
            )
        causal = causal and num_q > 1  # one query, the last position, sees every key
        reference = need_weights or not self.fused or self.score_mod is not None or self.weights_mod is not None
        # SDPA's own causal flag only where nothing else masks and SDPA computes the output
        if causal and (keep is not None or reference or num_q != num_k):
            triangle = causal_mask(num_q, num_k, device=queries.device)  # (T_q, T_k)
            keep = triangle if keep is None else keep & triangle  # (..., T_q, T_k)
            causal = False
        if reference:
            scores = self.score(queries, keys)  # (..., T_q, T_k)
            if self.score_mod is not None:
                scores = self.score_mod(scores, *_positions(scores))
            weights = masked_softmax(scores, mask=keep)  # (..., T_q, T_k)
            if self.weights_mod is not None:
                new = self.weights_mod(weights, values)
                if new is not None:
                    if not isinstance(new, torch.Tensor) or new.shape != weights.shape:
                        raise ValueError(f"weights_mod must return None or a tensor of shape {tuple(weights.shape)}")
                    weights = new
            output = self.dropout(weights) @ values  # (..., T_q, T_k) @ (..., T_k, d_v) -> (..., T_q, d_v)
            return AttentionOutput(output, weights if need_weights else None)
        return AttentionOutput(self._fused(queries, keys, values, keep, causal), None)

    def _fused(self, queries, keys, values, keep, causal: bool) -> torch.Tensor:
        """:func:`torch.nn.functional.scaled_dot_product_attention`, zeros for queries with no key."""
        dropout_p = self.dropout.p if self.training else 0.0
        scale = 1.0 / math.sqrt(queries.shape[-1])
        if keep is None:
            return F.scaled_dot_product_attention(
                queries, keys, values, dropout_p=dropout_p, scale=scale, is_causal=causal
            )
        # A query with no key to attend to makes SDPA divide 0 by 0 (NaN in some versions). Let such
        # rows attend to every key (finite forward and backward), then zero their output.
        has_key = keep.any(dim=-1, keepdim=True)  # (..., T_q or 1, 1)
        if dropout_p > 0.0 and keep.device.type == "cpu" and not torch.compiler.is_compiling():
            return _cpu_dropout_attention(queries, keys, values, keep, has_key, dropout_p, scale)
        if keep.device.type == "cpu" and not torch.compiler.is_compiling() and bool(has_key.all()):
            # the usual case, and on a CPU reading it costs no synchronization: skip the two passes
            return F.scaled_dot_product_attention(
                queries, keys, values, attn_mask=keep, dropout_p=dropout_p, scale=scale
            )  # (..., T_q, d_v)
        safe_keep = keep | ~has_key  # (..., T_q or 1, T_k)
        output = F.scaled_dot_product_attention(
            queries, keys, values, attn_mask=safe_keep, dropout_p=dropout_p, scale=scale
        )  # (..., T_q, d_v)
        return output.masked_fill(~has_key, 0.0)

    def extra_repr(self) -> str:
        return f"fused={self.fused}" + ("" if self.score_mod is None else f", score_mod={self.score_mod!r}")


def _cpu_dropout_attention(queries, keys, values, keep, has_key, dropout_p: float, scale: float) -> torch.Tensor:
    """SDPA's function for CPU training with dropout, in fewer passes than SDPA itself takes there.

    With ``dropout_p > 0`` PyTorch's CPU flash kernel is not eligible and SDPA runs its *math*
    path: it turns the boolean mask into a float one, scales the queries *and* the keys by
    :math:`d^{-1/4}` (two extra passes, and two more in backward) and adds the mask. Here: one
    product, the scale and the mask applied in place on the scores, softmax, the same
    :func:`torch.nn.functional.dropout` (the same random draws) and the second product. Queries
    with no key attend to every key and get zero output, as in :meth:`DotProductAttention._fused`.
    """
    scores = queries @ keys.transpose(-2, -1)  # (..., T_q, T_k)
    scores.mul_(scale)  # in place: a product's backward needs its inputs, not its output
    scores.masked_fill_(~(keep | ~has_key), float("-inf"))  # every row keeps at least one key
    weights = F.dropout(torch.softmax(scores, dim=-1), dropout_p, training=True)  # (..., T_q, T_k)
    output = weights @ values  # (..., T_q, d_v)
    return output if bool(has_key.all()) else output.masked_fill(~has_key, 0.0)


def _positions(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``q_idx (T_q, 1)``, ``k_idx (1, T_k)`` (queries are the last positions) and ``head (h, 1, 1)``."""
    num_q, num_k, device = scores.shape[-2], scores.shape[-1], scores.device
    q_idx = torch.arange(num_k - num_q, num_k, device=device)[:, None]  # (T_q, 1)
    k_idx = torch.arange(num_k, device=device)[None, :]  # (1, T_k)
    num_heads = scores.shape[-3] if scores.dim() >= 4 else 1
    return q_idx, k_idx, torch.arange(num_heads, device=device)[:, None, None]  # (h, 1, 1)
