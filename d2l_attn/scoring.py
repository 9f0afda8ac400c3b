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

Both modules take the same inputs and return the same outputs:

* ``queries (B, T_q, d_q)``, ``keys (B, T_k, d_k)``, ``values (B, T_k, d_v)`` (batch-first;
  :class:`DotProductAttention` also accepts extra leading axes, e.g. heads ``(B, h, T, d)``);
* ``valid_lens``: ``(B,)`` or ``(B, T_q)`` integer lengths as in :mod:`d2l_attn.masking`
  (key ``j`` is real iff ``j < valid_len``);
* ``attn_mask``: a boolean tensor, ``True`` = may attend (the convention of
  :func:`torch.nn.functional.scaled_dot_product_attention`), broadcastable to ``(..., T_q, T_k)``.
  If both are given, a key must pass both;
* the output ``(..., T_q, d_v)``, or ``(output, weights (..., T_q, T_k))`` with
  ``return_weights=True``.

A query whose keys are *all* masked gets all-zero weights and a zero output (never NaN), in
every path. The returned weights are the softmax *before* dropout (each row sums to 1 over its
kept keys); in training mode the output is computed with the dropped-out weights, rescaled by
``1 / (1 - p)`` as :class:`torch.nn.Dropout` does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ._checks import positive_int, unit_interval
from .masking import Mask, causal_mask, masked_softmax

__all__ = ["AdditiveAttention", "DotProductAttention", "combine_masks"]


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


def combine_masks(
    valid_lens: torch.Tensor | Sequence[int] | None,
    attn_mask: torch.Tensor | None,
    scores_shape: Sequence[int],
    *,
    device: torch.device | None = None,
) -> torch.Tensor | None:
    """One boolean ``keep`` mask (``True`` = may attend) broadcastable to ``scores_shape``.

    Args:
        valid_lens: ``(B,)`` or ``(B, T_q)`` integer lengths in ``[0, T_k]``, or ``None``.
        attn_mask: boolean, broadcastable to ``scores_shape = (B, ..., T_q, T_k)``, or ``None``.
        scores_shape: the shape of the score tensor, ``(B, ..., T_q, T_k)``.

    Returns:
        ``None`` if both are ``None``; otherwise ``valid-length mask AND attn_mask`` of a shape
        that broadcasts to ``scores_shape``: ``(B, 1, ..., 1, T_k)`` for lengths ``(B,)`` (the same
        for every query), ``(B, 1, ..., T_q, T_k)`` for lengths ``(B, T_q)``.
    """
    return Mask.of(valid_lens, attn_mask, scores_shape=scores_shape, device=device).keep


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
        valid_lens: torch.Tensor | Sequence[int] | None = None,
        attn_mask: torch.Tensor | None = None,
        return_weights: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Output ``(B, T_q, d_v)``, or ``(output, weights (B, T_q, T_k))`` if ``return_weights``."""
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
        keep = combine_masks(valid_lens, attn_mask, scores.shape, device=scores.device)
        weights = masked_softmax(scores, mask=keep)  # (B, T_q, T_k)
        output = self.dropout(weights) @ values  # (B, T_q, T_k) @ (B, T_k, d_v) -> (B, T_q, d_v)
        return (output, weights) if return_weights else output

    def extra_repr(self) -> str:
        return f"query_dim={self.query_dim}, key_dim={self.key_dim}, num_hiddens={self.num_hiddens}"


# --------------------------------------------------------------------------------------------
# scaled dot-product attention
# --------------------------------------------------------------------------------------------
class DotProductAttention(nn.Module):
    r"""Scaled dot-product attention (Vaswani et al., 2017).

    .. math::

        \operatorname{softmax}\!\Big(\frac{\mathbf{Q}\mathbf{K}^\top}{\sqrt{d}}\Big)\mathbf{V},
        \qquad \mathbf{Q} \in \mathbb{R}^{T_q \times d},\ \mathbf{K} \in \mathbb{R}^{T_k \times d},
        \ \mathbf{V} \in \mathbb{R}^{T_k \times d_v}.

    The factor :math:`1/\sqrt{d}` (``d`` = the size of a query and of a key) keeps the scores'
    variance at 1 when the entries of ``q`` and ``k`` are independent with variance 1; without
    it the variance is ``d``, the softmax saturates and its gradient vanishes (chapter 3).

    Two paths compute the same function:

    * the **reference** path (``fused=False`` or ``return_weights=True``): matmul, scale,
      :func:`d2l_attn.masking.masked_softmax`, dropout, matmul -- readable, returns the weights;
    * the **fused** path (default): :func:`torch.nn.functional.scaled_dot_product_attention`,
      which picks a memory-efficient kernel (FlashAttention on suitable GPUs) and never
      materializes the weights. Where PyTorch returns NaN for a query with no key to attend to,
      this path returns zeros, like the reference path.

    Args:
        dropout: dropout probability on the attention weights (training mode only).
        fused: use the fused path when the weights are not requested.
    """

    def __init__(self, dropout: float = 0.0, fused: bool = True):
        super().__init__()
        self.dropout = nn.Dropout(unit_interval("dropout", dropout))
        self.fused = bool(fused)

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
        valid_lens: torch.Tensor | Sequence[int] | None = None,
        attn_mask: torch.Tensor | None = None,
        return_weights: bool = False,
        is_causal: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Output ``(..., T_q, d_v)``, or ``(output, weights (..., T_q, T_k))`` if ``return_weights``.

        ``is_causal=True`` (self-attention): query ``i`` sees keys ``0..i`` only, combined with
        any other mask. With ``T_q < T_k`` (a key/value cache during generation) the queries are
        the *last* ``T_q`` positions (:func:`d2l_attn.masking.causal_mask`). With ``T_q == T_k``
        and no other mask the fused path hands SDPA its own ``is_causal`` flag instead of a mask
        tensor, which keeps the fastest GPU kernels (FlashAttention) eligible; the result is the same.
        """
        _check_qkv(queries, keys, values, same_dim=True)
        scores_shape = (*queries.shape[:-1], keys.shape[-2])  # (..., T_q, T_k)
        keep = combine_masks(valid_lens, attn_mask, scores_shape, device=queries.device)
        keys, values = _zero_masked_keys(keys, values, keep)
        return self.compute(queries, keys, values, keep, causal=is_causal, return_weights=return_weights)

    def compute(
        self,
        queries: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        keep: torch.Tensor | None = None,
        *,
        causal: bool = False,
        return_weights: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward` without its argument checks, for callers that checked once per call.

        ``keep``: a boolean mask (``True`` = may attend) broadcastable to ``(..., T_q, T_k)``, such
        as :func:`combine_masks` returns, or ``None``; ``causal``: as ``is_causal``. Multi-head
        attention and the Transformer blocks call this once per layer after checking their inputs
        once (no shape checks, no length checks, no device synchronization). Keys and values that
        no query may see must be finite (``forward`` zeroes them; it costs two passes over them).
        """
        num_q, num_k = queries.shape[-2], keys.shape[-2]
        if causal and num_q > num_k:
            raise ValueError(
                "is_causal needs at least as many keys as queries (the queries are the last positions), "
                f"got T_q={num_q} and T_k={num_k}"
            )
        causal = bool(causal) and num_q > 1  # one query, the last position, sees every key
        reference = return_weights or not self.fused
        # SDPA's own causal flag only where nothing else masks and SDPA computes the output
        if causal and (keep is not None or reference or num_q != num_k):
            mask = causal_mask(num_q, num_k, device=queries.device)  # (T_q, T_k)
            keep = mask if keep is None else keep & mask  # (..., T_q, T_k)
            causal = False
        if reference:
            scores = self.score(queries, keys)  # (..., T_q, T_k)
            weights = masked_softmax(scores, mask=keep)  # (..., T_q, T_k)
            output = self.dropout(weights) @ values  # (..., T_q, T_k) @ (..., T_k, d_v) -> (..., T_q, d_v)
            return (output, weights) if return_weights else output

        dropout_p = self.dropout.p if self.training else 0.0
        scale = 1.0 / math.sqrt(queries.shape[-1])
        if keep is None:
            return F.scaled_dot_product_attention(
                queries, keys, values, dropout_p=dropout_p, scale=scale, is_causal=causal
            )
        # A query with no key to attend to makes SDPA divide 0 by 0 (NaN in some versions). Let such
        # rows attend to every key (finite forward and backward), then zero their output.
        has_key = keep.any(dim=-1, keepdim=True)  # (..., T_q or 1, 1)
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
