r"""Attention pooling: a weighted average of values, weighted by query-key similarity.

Chapter 1 introduces attention as a *soft* database lookup. A database holds pairs
:math:`(\mathbf{k}_i, \mathbf{v}_i)`; a query :math:`\mathbf{q}` is compared with every key by a
scoring function :math:`a(\mathbf{q}, \mathbf{k}_i)`, the scores become weights by a softmax,
and the answer is the weighted average of the values:

.. math::

    \operatorname{attention}(\mathbf{q}, \{(\mathbf{k}_i, \mathbf{v}_i)\})
        = \sum_i \alpha(\mathbf{q}, \mathbf{k}_i)\, \mathbf{v}_i, \qquad
    \alpha(\mathbf{q}, \mathbf{k}_i) = \frac{\exp a(\mathbf{q}, \mathbf{k}_i)}{\sum_j \exp a(\mathbf{q}, \mathbf{k}_j)}.

The weights are non-negative and sum to one, so the output is a convex combination of the
values. With the Gaussian score :math:`a(\mathbf{q}, \mathbf{k}) = -\lVert \mathbf{q}-\mathbf{k}\rVert^2 / (2\sigma^2)`
and :math:`\sigma \to 0`, all weight goes to the nearest key: the soft lookup becomes the
ordinary (hard) lookup. Chapter 2 builds Nadaraya--Watson regression on the same function.

Shapes are batch-first: queries ``(..., n_q, d)``, keys ``(..., n_k, d)``, values
``(..., n_k, d_v)``; 1-D inputs ``(n_q,)``/``(n_k,)`` are treated as scalars (``d = 1``).
"""

from __future__ import annotations

import torch

from .masking import masked_softmax

__all__ = ["gaussian_scores", "attention_pool", "soft_lookup", "hard_lookup"]


def _as_points(x: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    if x.dim() == 0:
        raise ValueError(f"{name} must have shape (n,) or (..., n, d), got a scalar")
    return x.unsqueeze(-1) if x.dim() == 1 else x  # (n,) -> (n, 1)


def gaussian_scores(queries: torch.Tensor, keys: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    r"""Scores :math:`a(\mathbf{q}_i, \mathbf{k}_j) = -\lVert \mathbf{q}_i - \mathbf{k}_j \rVert^2 / (2\sigma^2)`.

    Args:
        queries: ``(n_q,)`` or ``(..., n_q, d)``.
        keys: ``(n_k,)`` or ``(..., n_k, d)`` with the same ``d``.
        sigma: bandwidth, > 0. Small sigma -> sharp (nearly hard) lookup.

    Returns:
        scores of shape ``(..., n_q, n_k)``.
    """
    if not (isinstance(sigma, (int, float)) and sigma > 0):
        raise ValueError(f"sigma must be a positive number, got {sigma!r}")
    q = _as_points(queries, "queries")  # (..., n_q, d)
    k = _as_points(keys, "keys")  # (..., n_k, d)
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"queries and keys must have the same feature size d, got queries {tuple(queries.shape)} "
            f"and keys {tuple(keys.shape)}"
        )
    diff = q.unsqueeze(-2) - k.unsqueeze(-3)  # (..., n_q, n_k, d)
    return -(diff**2).sum(-1) / (2 * sigma**2)  # (..., n_q, n_k)


def attention_pool(
    scores: torch.Tensor,
    values: torch.Tensor,
    valid_lens: torch.Tensor | None = None,
    *,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Turn scores into weights with a (masked) softmax and average the values.

    Args:
        scores: ``(..., n_q, n_k)``.
        values: ``(n_k,)`` or ``(..., n_k, d_v)``.
        valid_lens, mask: as in :func:`d2l_attn.masking.masked_softmax`.

    Returns:
        ``(output, weights)``: output ``(..., n_q, d_v)`` (or ``(..., n_q)`` for 1-D values) and
        weights ``(..., n_q, n_k)`` with :math:`\sum_j \alpha_{ij} = 1` over kept keys.
    """
    if scores.dim() < 2:
        raise ValueError(f"scores must have shape (..., n_q, n_k), got {tuple(scores.shape)}")
    squeeze = values.dim() == 1
    v = _as_points(values, "values").to(scores.dtype)  # (..., n_k, d_v)
    if v.shape[-2] != scores.shape[-1]:
        raise ValueError(
            f"values must have one row per key: scores have n_k={scores.shape[-1]} keys, "
            f"values have shape {tuple(values.shape)}"
        )
    if valid_lens is None and mask is None:
        weights = torch.softmax(scores, dim=-1)  # (..., n_q, n_k)
    else:
        weights = masked_softmax(scores, valid_lens, mask=mask)  # (..., n_q, n_k)
    output = weights @ v  # (..., n_q, d_v)
    return (output.squeeze(-1) if squeeze else output), weights


def soft_lookup(
    queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, sigma: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention with Gaussian scores: returns ``(output, weights)`` (see :func:`attention_pool`)."""
    return attention_pool(gaussian_scores(queries, keys, sigma), values)


def hard_lookup(queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """The value of the nearest key for every query: the ``sigma -> 0`` limit of :func:`soft_lookup`."""
    scores = gaussian_scores(queries, keys)  # (..., n_q, n_k)
    nearest = scores.argmax(dim=-1)  # (..., n_q)
    v = _as_points(values, "values")  # (..., n_k, d_v)
    if v.dim() == 2:
        out = v[nearest]  # (n_q, d_v)
    else:
        out = torch.gather(v, -2, nearest.unsqueeze(-1).expand(*nearest.shape, v.shape[-1]))
    return out.squeeze(-1) if values.dim() == 1 else out
