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
ordinary (hard) lookup.

Chapter 2 builds Nadaraya--Watson kernel regression on the same idea
(:func:`nadaraya_watson`, :class:`NadarayaWatson`): the weights are a kernel of the scaled
distance :math:`u = (q - k)/h`, normalized over the keys,

.. math::

    \hat f(q) = \sum_i \frac{K\big((q - k_i)/h\big)}{\sum_j K\big((q - k_j)/h\big)}\, v_i ,

and with the Gaussian kernel this *is* the soft lookup above with :math:`\sigma = h`.

Shapes are batch-first: queries ``(..., n_q, d)``, keys ``(..., n_k, d)``, values
``(..., n_k, d_v)``; 1-D inputs ``(n_q,)``/``(n_k,)`` are treated as scalars (``d = 1``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import torch
from torch import nn

from ._checks import bool_mask
from .masking import masked_softmax

__all__ = [
    "gaussian_scores",
    "attention_pool",
    "soft_lookup",
    "hard_lookup",
    "gaussian_kernel",
    "boxcar_kernel",
    "epanechnikov_kernel",
    "triangular_kernel",
    "KERNELS",
    "get_kernel",
    "average_pooling",
    "nadaraya_watson",
    "leave_one_out_mask",
    "NadarayaWatson",
]


def _as_points(x: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a tensor, got {type(x).__name__}")
    if x.is_complex():
        raise ValueError(f"{name} must be real-valued, got a complex tensor of dtype {x.dtype}")
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
    sigma = _check_bandwidth(sigma, "sigma")
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
    if not isinstance(scores, torch.Tensor) or scores.dim() < 2:
        got = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
        raise ValueError(f"scores must have shape (..., n_q, n_k) (a tensor), got {got}")
    v = _as_points(values, "values").to(scores.dtype)
    squeeze = values.dim() == 1  # (..., n_k, d_v)
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
    if v.shape[-2] != scores.shape[-1]:
        raise ValueError(
            f"values must have one entry per key: keys have n_k={scores.shape[-1]}, values {tuple(values.shape)}"
        )
    if v.dim() == 2:
        out = v[nearest]  # (n_q, d_v)
    else:
        out = torch.gather(v, -2, nearest.unsqueeze(-1).expand(*nearest.shape, v.shape[-1]))
    return out.squeeze(-1) if values.dim() == 1 else out


# ---------------------------------------------------------------------------------------------
# Chapter 2: kernels and Nadaraya--Watson kernel regression
# ---------------------------------------------------------------------------------------------

Kernel = Callable[[torch.Tensor], torch.Tensor]


def gaussian_kernel(u: torch.Tensor) -> torch.Tensor:
    r"""Gaussian kernel :math:`K(u) = \frac{1}{\sqrt{2\pi}} e^{-u^2/2}` (support: all of :math:`\mathbb{R}`)."""
    return torch.exp(-(u**2) / 2) / math.sqrt(2 * math.pi)


def boxcar_kernel(u: torch.Tensor) -> torch.Tensor:
    r"""Boxcar (uniform) kernel :math:`K(u) = \tfrac12\, \mathbb{1}[|u| \le 1]`.

    With it, Nadaraya--Watson regression is the plain average of the values whose keys lie in
    the window :math:`[q - h, q + h]` (a moving average). Its derivative is 0 almost everywhere,
    so a bandwidth cannot be learned through it by gradient descent.
    """
    return 0.5 * (u.abs() <= 1).to(u.dtype)


def epanechnikov_kernel(u: torch.Tensor) -> torch.Tensor:
    r"""Epanechnikov kernel :math:`K(u) = \tfrac34 (1 - u^2)\, \mathbb{1}[|u| \le 1]`.

    A parabola on :math:`[-1, 1]`; among non-negative kernels it minimizes the asymptotic mean
    integrated squared error of a kernel density estimate (Epanechnikov, 1969).

    Note: the kernel that *Dive into Deep Learning* calls "Epanechikov",
    :math:`\max(0, 1 - |u|)`, is the **triangular** kernel (:func:`triangular_kernel`), not
    this one (d2l-en issue #2440).
    """
    return 0.75 * (1 - u**2).clamp_min(0)


def triangular_kernel(u: torch.Tensor) -> torch.Tensor:
    r"""Triangular kernel :math:`K(u) = (1 - |u|)\, \mathbb{1}[|u| \le 1]` (D2L's "Epanechikov")."""
    return (1 - u.abs()).clamp_min(0)


#: Kernels by name. Each is a function of :math:`u = (q - k)/h`, symmetric, non-negative, and
#: integrates to 1 over the real line; all but the Gaussian vanish outside :math:`[-1, 1]`.
KERNELS: dict[str, Kernel] = {
    "gaussian": gaussian_kernel,
    "boxcar": boxcar_kernel,
    "epanechnikov": epanechnikov_kernel,
    "triangular": triangular_kernel,
}

_MISSPELLINGS = {
    "epanechikov": "D2L's 'Epanechikov' kernel max(0, 1 - |u|) is 'triangular'; "
    "the Epanechnikov kernel 3/4 (1 - u^2) is 'epanechnikov'"
}


def get_kernel(kernel: str | Kernel) -> Kernel:
    """The kernel function for a name in :data:`KERNELS` (case-insensitive); a callable is returned unchanged."""
    if callable(kernel):
        return kernel
    if isinstance(kernel, str):
        name = kernel.strip().lower()
        if name in KERNELS:
            return KERNELS[name]
        if name in _MISSPELLINGS:
            raise ValueError(f"unknown kernel {kernel!r}: {_MISSPELLINGS[name]}")
    raise ValueError(f"kernel must be one of {', '.join(repr(k) for k in KERNELS)} or a callable K(u), got {kernel!r}")


def _check_bandwidth(bandwidth, name: str = "bandwidth") -> float:
    if isinstance(bandwidth, torch.Tensor) and bandwidth.numel() == 1:
        bandwidth = bandwidth.item()
    if (
        isinstance(bandwidth, bool)
        or not isinstance(bandwidth, numbers.Real)
        or not (math.isfinite(bandwidth) and bandwidth > 0)
    ):
        raise ValueError(f"{name} must be a positive finite number h > 0, got {bandwidth!r}")
    return float(bandwidth)


def _check_mask(mask, shape: torch.Size) -> torch.Tensor:
    """A keep-mask (True = key may be used), broadcast to ``shape`` ``(..., n_q, n_k)``, with a key in every row."""
    mask = torch.broadcast_to(bool_mask(mask, shape, expected="(..., n_q, n_k)"), shape)  # (..., n_q, n_k)
    if not mask.any(-1).all():
        raise ValueError("mask leaves a query with no key: every row of mask needs at least one True")
    return mask


def _differences(queries: torch.Tensor, keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Validated pairwise differences ``q_i - k_j`` ``(..., n_q, n_k, d)`` and squared distances ``(..., n_q, n_k)``."""
    q = _as_points(queries, "queries")  # (..., n_q, d)
    k = _as_points(keys, "keys")  # (..., n_k, d)
    if k.shape[-2] == 0:
        raise ValueError(f"keys must hold at least one key to pool over, got shape {tuple(keys.shape)}")
    k = k.to(q.dtype)
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"queries and keys must have the same feature size d, got queries {tuple(queries.shape)} "
            f"and keys {tuple(keys.shape)}"
        )
    try:
        diff = q.unsqueeze(-2) - k.unsqueeze(-3)  # (..., n_q, n_k, d)
    except RuntimeError:
        raise ValueError(
            f"the leading (batch) dimensions of queries {tuple(queries.shape)} and keys "
            f"{tuple(keys.shape)} do not broadcast"
        ) from None
    return diff, (diff**2).sum(-1)  # (..., n_q, n_k, d), (..., n_q, n_k)


def _scaled_distance(diff: torch.Tensor, scale: torch.Tensor | float) -> torch.Tensor:
    r"""The kernel argument :math:`u_{ij}`: :math:`(q_i - k_j) \cdot w` for scalar points (signed), else
    :math:`\lVert q_i - k_j \rVert \cdot w` (:math:`w = 1/h`)."""
    if diff.shape[-1] == 1:
        return diff[..., 0] * scale  # (..., n_q, n_k)
    return torch.linalg.vector_norm(diff, dim=-1) * scale  # (..., n_q, n_k)


def _kernel_weights(
    u: torch.Tensor, kernel_fn: Kernel, sq_dist: torch.Tensor, mask: torch.Tensor | None
) -> torch.Tensor:
    """Normalized kernel weights ``(..., n_q, n_k)`` with the empty-window rule (see :func:`nadaraya_watson`)."""
    if kernel_fn is gaussian_kernel:
        scores = -(u**2) / 2  # (..., n_q, n_k): log K(u) up to a constant
        return torch.softmax(scores, -1) if mask is None else masked_softmax(scores, mask=mask)
    k_values = kernel_fn(u)  # (..., n_q, n_k)
    if not isinstance(k_values, torch.Tensor) or k_values.shape != u.shape:
        raise ValueError("kernel must map a tensor u to a tensor of the same shape")
    if not torch.isfinite(k_values).all() or (k_values < 0).any():
        raise ValueError("kernel values must be finite and non-negative")
    if mask is not None:
        k_values = k_values.masked_fill(~mask, 0.0)
    total = k_values.sum(-1, keepdim=True)  # (..., n_q, 1)
    empty = total == 0  # queries whose window holds no (allowed) key
    if empty.any():
        dist = sq_dist if mask is None else sq_dist.masked_fill(~mask, math.inf)
        nearest = (dist == dist.min(-1, keepdim=True).values).to(k_values.dtype)  # (..., n_q, n_k)
        k_values = torch.where(empty, nearest, k_values)  # (..., n_q, n_k)
        total = k_values.sum(-1, keepdim=True)  # (..., n_q, 1), now > 0
    return k_values / total  # (..., n_q, n_k)


def _pool(weights: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    v = _as_points(values, "values").to(weights.dtype)  # (..., n_k, d_v)
    if v.shape[-2] != weights.shape[-1]:
        raise ValueError(
            f"values must have one row per key: there are n_k={weights.shape[-1]} keys, "
            f"values have shape {tuple(values.shape)}"
        )
    out = weights @ v  # (..., n_q, n_k) @ (..., n_k, d_v) -> (..., n_q, d_v)
    return out.squeeze(-1) if values.dim() == 1 else out


def average_pooling(
    queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Average pooling :math:`\hat f(q) = \frac1n \sum_i v_i`: every weight is :math:`1/n`.

    The answer ignores the query and the keys: it is the :math:`h \to \infty` limit of
    :func:`nadaraya_watson`. Returns ``(predictions, weights)`` as :func:`nadaraya_watson` does.
    """
    _, sq_dist = _differences(queries, keys)  # (..., n_q, n_k), validates shapes
    weights = torch.full_like(sq_dist, 1.0 / sq_dist.shape[-1])  # (..., n_q, n_k)
    return _pool(weights, values), weights


def nadaraya_watson(
    queries: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    kernel: str | Kernel = "gaussian",
    bandwidth: float = 1.0,
    *,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Nadaraya--Watson kernel regression (nonparametric attention pooling).

    .. math::

        \hat f(q_i) = \sum_j \alpha_{ij} v_j, \qquad
        \alpha_{ij} = \frac{K(u_{ij})}{\sum_{j'} K(u_{ij'})}, \qquad
        u_{ij} = \frac{q_i - k_j}{h}.

    For vector points (``d > 1``) the argument is the scaled distance
    :math:`u_{ij} = \lVert q_i - k_j \rVert / h` (a radial kernel). Constant factors of :math:`K`
    cancel in :math:`\alpha`. With ``kernel="gaussian"`` the weights are computed in the log
    domain as ``softmax(-||q - k||^2 / (2 h^2))``, so they equal :func:`soft_lookup` with
    ``sigma = h`` and never underflow to 0/0, however far a query is from the keys.

    **Empty windows.** A compact kernel (boxcar, Epanechnikov, triangular) is 0 for
    :math:`|u| \ge 1` (the boxcar for :math:`|u| > 1`). A query with no key within distance
    :math:`h` would get :math:`0/0`. This function then gives all the weight to the **nearest
    key** (shared equally among keys tied at the nearest distance). That is the limit of the
    estimate as the window is widened just enough to contain a key, so the prediction stays
    finite and continuous in :math:`h`, the weights still sum to 1, and no NaN is returned.
    (The same rule applies to a callable kernel whose values underflow to 0 for every key.)

    Args:
        queries: ``(n_q,)`` or ``(..., n_q, d)``.
        keys: ``(n_k,)`` or ``(..., n_k, d)``.
        values: ``(n_k,)`` or ``(..., n_k, d_v)``.
        kernel: a name in :data:`KERNELS` (``"gaussian"``, ``"boxcar"``, ``"epanechnikov"``,
            ``"triangular"``) or a callable ``K(u)`` returning finite non-negative values.
        bandwidth: :math:`h > 0`. Small :math:`h` -> nearest neighbour; large :math:`h` ->
            average pooling.
        mask: optional boolean ``(..., n_q, n_k)`` (broadcastable), ``True`` = key may be used,
            e.g. :func:`leave_one_out_mask`. Every query must keep at least one key.

    Returns:
        ``(predictions, weights)``: predictions ``(..., n_q)`` for 1-D values, else
        ``(..., n_q, d_v)``; weights ``(..., n_q, n_k)``, non-negative, rows sum to 1.

    Raises:
        ValueError: for a bandwidth that is not a positive finite number, an unknown kernel name,
            mismatched shapes, or a mask that is not boolean, does not broadcast, or leaves a
            query without keys.
    """
    h = _check_bandwidth(bandwidth)
    kernel_fn = get_kernel(kernel)
    diff, sq_dist = _differences(queries, keys)  # (..., n_q, n_k, d), (..., n_q, n_k)
    if mask is not None:
        mask = _check_mask(mask, sq_dist.shape)  # (..., n_q, n_k)
    u = _scaled_distance(diff, 1.0 / h)  # (..., n_q, n_k)
    weights = _kernel_weights(u, kernel_fn, sq_dist, mask)  # (..., n_q, n_k)
    return _pool(weights, values), weights


def leave_one_out_mask(n: int) -> torch.Tensor:
    """Boolean ``(n, n)`` mask that is ``False`` on the diagonal: query ``i`` may not use key ``i``.

    Used to fit a bandwidth on the training set itself: without it each training point finds
    itself at distance 0, and the training loss is smallest for :math:`h \\to 0` (memorization).
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 2:
        raise ValueError(f"n must be an int >= 2 (each query needs another key), got {n!r}")
    return ~torch.eye(int(n), dtype=torch.bool)  # (n, n)


class NadarayaWatson(nn.Module):
    r"""Nadaraya--Watson attention pooling as a module, with a fixed or a learnable bandwidth.

    .. math::

        \hat f(q) = \sum_i \frac{K\big(w\,(q - k_i)\big)}{\sum_j K\big(w\,(q - k_j)\big)}\, v_i,
        \qquad w = 1/h .

    With the Gaussian kernel the weights are
    :math:`\operatorname{softmax}_i\big(-\tfrac12 (w\,(q - k_i))^2\big)`: attention with the score
    :math:`a(q, k) = -\tfrac12 (w (q - k))^2`. This is the *parametric* attention pooling of
    *Dive into Deep Learning* when ``learnable=True``: the inverse bandwidth :math:`w` is an
    ``nn.Parameter`` trained by gradient descent. With ``learnable=False`` it is a buffer and the
    module computes exactly :func:`nadaraya_watson` (the nonparametric estimator).
    :math:`w = 0` gives average pooling; :math:`|w| \to \infty` the nearest key. Only
    :math:`|w|` matters (the kernels are symmetric). Empty windows of compact kernels are handled
    as in :func:`nadaraya_watson`; the boxcar kernel has zero gradient almost everywhere, so learn
    the bandwidth with a smooth kernel (Gaussian, Epanechnikov or triangular).

    Args:
        kernel: a name in :data:`KERNELS` or a callable ``K(u)``.
        bandwidth: the initial bandwidth :math:`h > 0` (:math:`w = 1/h`).
        learnable: whether :math:`w` is a trainable parameter.
    """

    def __init__(self, kernel: str | Kernel = "gaussian", bandwidth: float = 1.0, *, learnable: bool = True):
        super().__init__()
        self.kernel_fn = get_kernel(kernel)
        self.kernel_name = kernel if isinstance(kernel, str) else getattr(kernel, "__name__", "custom")
        w = torch.tensor(1.0 / _check_bandwidth(bandwidth))
        if learnable:
            self.w = nn.Parameter(w)
        else:
            self.register_buffer("w", w)

    @property
    def bandwidth(self) -> float:
        """The current bandwidth :math:`h = 1/|w|` (``inf`` for ``w = 0``: average pooling)."""
        w = abs(self.w.item())
        return math.inf if w == 0 else 1.0 / w

    def extra_repr(self) -> str:
        return f"kernel={self.kernel_name!r}, bandwidth={self.bandwidth:.4g}, learnable={self.w.requires_grad}"

    def forward(
        self,
        queries: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        *,
        mask: torch.Tensor | None = None,
        return_weights: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Predictions ``(..., n_q)`` (or ``(..., n_q, d_v)``), and the weights ``(..., n_q, n_k)``
        when ``return_weights=True``. Shapes and ``mask`` as in :func:`nadaraya_watson`."""
        diff, sq_dist = _differences(queries, keys)  # (..., n_q, n_k, d), (..., n_q, n_k)
        if mask is not None:
            mask = _check_mask(mask, sq_dist.shape)  # (..., n_q, n_k)
        u = _scaled_distance(diff, self.w.to(diff.dtype))  # (..., n_q, n_k)
        weights = _kernel_weights(u, self.kernel_fn, sq_dist, mask)  # (..., n_q, n_k)
        predictions = _pool(weights, values)
        return (predictions, weights) if return_weights else predictions
