r"""Positional encodings: sinusoidal, learned, rotary and ALiBi (taught in chapter 6; used by GPT, chapter 9).

Self-attention treats its input as a *set*: permuting the tokens permutes the outputs and
changes nothing else. Positional encodings put the order back.

* **Sinusoidal** (absolute, fixed; Vaswani et al., 2017). For position :math:`p` and pair
  index :math:`i = 0, \dots, d/2 - 1`, with frequencies :math:`\omega_i = b^{-2i/d}`
  (base :math:`b = 10000`):

  .. math::

      P_{p, 2i} = \sin(p\,\omega_i), \qquad P_{p, 2i+1} = \cos(p\,\omega_i),

  and the layer returns :math:`\operatorname{dropout}(X + P_{0:T})`. Because
  :math:`(\sin, \cos)` pairs rotate when the position shifts, :math:`P_{p+k} = M_k P_p` for a
  block-diagonal rotation :math:`M_k` that depends on the offset :math:`k` only
  (:func:`sinusoidal_shift_matrix`).
* **Learned** (absolute, trained): a table :math:`E \in \mathbb{R}^{L \times d}` of one
  trainable vector per position, as in BERT and GPT; it cannot go beyond ``max_len``.
* **Rotary** (RoPE, relative; Su et al., 2021). Queries and keys (not the input) are rotated
  pair by pair by the angle :math:`p\,\theta_i`, :math:`\theta_i = b^{-2i/d}`:

  .. math::

      \begin{pmatrix} x'_{2i} \\ x'_{2i+1} \end{pmatrix} =
      \begin{pmatrix} \cos p\theta_i & -\sin p\theta_i \\ \sin p\theta_i & \cos p\theta_i \end{pmatrix}
      \begin{pmatrix} x_{2i} \\ x_{2i+1} \end{pmatrix},

  so that :math:`\langle R_m \mathbf{q}, R_n \mathbf{k}\rangle = \langle \mathbf{q}, R_{n-m}\mathbf{k}\rangle`
  depends on the positions only through :math:`m - n`.
* **ALiBi** (relative, no parameters; Press et al., 2022, "Train Short, Test Long"). Nothing is
  added to the input; head :math:`h` adds a linear penalty to the causal scores of query
  :math:`i` and key :math:`j \le i`:

  .. math::

      s_{ij} = \frac{\mathbf{q}_i^\top\mathbf{k}_j}{\sqrt{d_h}} - m_h\,(i - j),

  with slopes :math:`m_h` a geometric sequence (:func:`alibi_slopes`). A model trained on short
  sequences runs on longer ones: no table of positions is ever indexed.

:class:`d2l_attn.models.GPT` uses them through :class:`~d2l_attn.multihead.MultiHeadAttention`'s
own hooks: ``positional="rope"`` passes a :class:`RotaryPositionalEncoding` as its ``rotary`` q/k
transform, ``"alibi"`` sets :meth:`ALiBi.score_mod` as the kernel's
:class:`~d2l_attn.scoring.DotProductAttention` ``score_mod``.

**Odd dimensions are rejected.** Both the sinusoidal and the rotary encodings are built from
(sin, cos) pairs; with an odd ``d_model`` the last column would have no partner and the
shift-by-rotation property would fail for it. Every model in this book uses even sizes, so the
constructors raise a ``ValueError`` for odd sizes instead of silently dropping or padding a
column.

Shapes are batch-first: inputs ``(B, T, d_model)``; rotary accepts ``(..., T, d)`` such as
``(B, h, T, d_h)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._checks import nonnegative_int, positive_int, unit_interval

__all__ = [
    "sinusoidal_frequencies",
    "sinusoidal_encoding",
    "sinusoidal_shift_matrix",
    "SinusoidalPositionalEncoding",
    "LearnedPositionalEncoding",
    "rotary_angles",
    "apply_rotary",
    "RotaryPositionalEncoding",
    "alibi_slopes",
    "alibi_bias",
    "ALiBi",
]


def _check_even_dim(value, name: str) -> None:
    positive_int(name, value)
    if value % 2 != 0:
        raise ValueError(f"{name} must be even: the encoding is built from (sin, cos) pairs, got {name}={value}")


def _check_base(base) -> float:
    if not isinstance(base, (int, float)) or isinstance(base, bool) or not base > 1:
        raise ValueError(f"base must be a number > 1, got {base!r}")
    return float(base)


def sinusoidal_frequencies(d_model: int, base: float = 10000.0, *, dtype=torch.float32) -> torch.Tensor:
    r"""The ``d_model / 2`` angular frequencies :math:`\omega_i = b^{-2i/d}`, shape ``(d_model // 2,)``."""
    _check_even_dim(d_model, "d_model")
    base = _check_base(base)
    exponents = torch.arange(0, d_model, 2, dtype=torch.float64) / d_model  # (d/2,)
    return (base**-exponents).to(dtype)  # (d/2,)


def sinusoidal_encoding(max_len: int, d_model: int, base: float = 10000.0, *, dtype=torch.float32) -> torch.Tensor:
    r"""The table :math:`P` of shape ``(max_len, d_model)``.

    :math:`P_{p, 2i} = \sin(p\,\omega_i)` and :math:`P_{p, 2i+1} = \cos(p\,\omega_i)` with
    :math:`\omega_i = b^{-2i/d}` (computed in float64, then cast to ``dtype``).
    """
    positive_int("max_len", max_len)
    freqs = sinusoidal_frequencies(d_model, base, dtype=torch.float64)  # (d/2,)
    positions = torch.arange(max_len, dtype=torch.float64)  # (L,)
    angles = positions[:, None] * freqs[None, :]  # (L, d/2)
    table = torch.empty(max_len, d_model, dtype=torch.float64)  # (L, d)
    table[:, 0::2] = torch.sin(angles)
    table[:, 1::2] = torch.cos(angles)
    return table.to(dtype)


def sinusoidal_shift_matrix(offset: float, d_model: int, base: float = 10000.0, *, dtype=torch.float32) -> torch.Tensor:
    r"""The matrix :math:`M_k` with :math:`P_{p+k} = M_k P_p` for every position :math:`p`.

    It is block diagonal with one :math:`2\times 2` rotation per (sin, cos) pair,

    .. math::

        \begin{pmatrix} \sin((p+k)\omega) \\ \cos((p+k)\omega) \end{pmatrix} =
        \begin{pmatrix} \cos k\omega & \sin k\omega \\ -\sin k\omega & \cos k\omega \end{pmatrix}
        \begin{pmatrix} \sin p\omega \\ \cos p\omega \end{pmatrix},

    orthogonal, and independent of :math:`p`. Shape ``(d_model, d_model)``; row vectors are
    shifted with ``P[p] @ M.T``.
    """
    if not isinstance(offset, (int, float)) or isinstance(offset, bool):
        raise ValueError(f"offset must be a number, got {offset!r}")
    freqs = sinusoidal_frequencies(d_model, base, dtype=torch.float64)  # (d/2,)
    cos, sin = torch.cos(offset * freqs), torch.sin(offset * freqs)  # (d/2,)
    blocks = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)  # (d/2, 2, 2)
    return torch.block_diag(*blocks).to(dtype)  # (d, d)


def _check_input(x: torch.Tensor, d_model: int, max_len: int, offset: int = 0) -> int:
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != d_model:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must have shape (batch_size, num_steps, d_model={d_model}), got {shape}")
    nonnegative_int("offset", offset)
    end = offset + x.shape[1]
    if end > max_len:
        raise ValueError(
            f"sequence length {end} (offset {offset} + {x.shape[1]} steps) exceeds max_len={max_len}; "
            "build the encoding with a larger max_len"
        )
    return end


class SinusoidalPositionalEncoding(nn.Module):
    r"""Add the fixed sinusoidal table and apply dropout: :math:`\operatorname{dropout}(X + P_{0:T})`.

    Args:
        d_model: the embedding size (even).
        max_len: the longest sequence the layer accepts (the table is precomputed).
        dropout: dropout probability applied to the sum (Vaswani et al. use 0.1).
        base: the base :math:`b` of the frequencies :math:`\omega_i = b^{-2i/d}`.

    Input ``x``: ``(B, T, d_model)`` with ``T <= max_len``; output: the same shape. The table is
    a non-trainable buffer ``encoding`` of shape ``(max_len, d_model)``.
    """

    def __init__(self, d_model: int, max_len: int = 1000, dropout: float = 0.0, base: float = 10000.0):
        super().__init__()
        _check_even_dim(d_model, "d_model")
        positive_int("max_len", max_len)
        self.d_model, self.max_len = d_model, max_len
        self.dropout = nn.Dropout(unit_interval("dropout", dropout))
        self.register_buffer("encoding", sinusoidal_encoding(max_len, d_model, base), persistent=False)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """``x (B, T, d)`` at positions ``offset .. offset + T - 1`` (``offset > 0``: generation with a cache)."""
        end = _check_input(x, self.d_model, self.max_len, offset)
        table = self.encoding[offset:end].to(dtype=x.dtype)  # (T, d)
        return self.dropout(x + table)  # (B, T, d)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, max_len={self.max_len}"


class LearnedPositionalEncoding(nn.Module):
    r"""Add a trainable vector per position: :math:`\operatorname{dropout}(X + E_{0:T})`.

    ``E`` is an ``nn.Embedding(max_len, d_model)`` initialised with :math:`\mathcal{N}(0, 0.02^2)`
    (as in GPT-2). Input ``x``: ``(B, T, d_model)`` with ``T <= max_len``; a learned table has no
    entry for later positions, so longer inputs raise a ``ValueError``.
    """

    def __init__(self, d_model: int, max_len: int = 512, dropout: float = 0.0, init_std: float = 0.02):
        super().__init__()
        positive_int("d_model", d_model)
        positive_int("max_len", max_len)
        self.d_model, self.max_len = d_model, max_len
        self.embedding = nn.Embedding(max_len, d_model)
        nn.init.normal_(self.embedding.weight, std=init_std)
        self.dropout = nn.Dropout(unit_interval("dropout", dropout))

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """``x (B, T, d)`` at positions ``offset .. offset + T - 1`` (``offset > 0``: generation with a cache)."""
        end = _check_input(x, self.d_model, self.max_len, offset)
        positions = torch.arange(offset, end, device=x.device)  # (T,)
        return self.dropout(x + self.embedding(positions))  # (B, T, d)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, max_len={self.max_len}"


def rotary_angles(positions: torch.Tensor, dim: int, base: float = 10000.0) -> torch.Tensor:
    r"""Angles :math:`p\,\theta_i` with :math:`\theta_i = b^{-2i/d}`, shape ``positions.shape + (dim // 2,)``."""
    freqs = sinusoidal_frequencies(dim, base, dtype=torch.float64)  # (d/2,)
    positions = torch.as_tensor(positions, dtype=torch.float64)
    return positions[..., None] * freqs.to(positions.device)  # (..., T, d/2)


def apply_rotary(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    r"""Rotate each pair :math:`(x_{2i}, x_{2i+1})` of ``x`` (shape ``(..., T, d)``) by ``angles[..., i]``.

    ``angles`` has shape ``(T, d/2)`` or anything broadcastable to ``x.shape[:-1] + (d/2,)``.
    :math:`x'_{2i} = x_{2i}\cos\phi_i - x_{2i+1}\sin\phi_i`,
    :math:`x'_{2i+1} = x_{2i}\sin\phi_i + x_{2i+1}\cos\phi_i`.
    """
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or x.shape[-1] % 2 != 0:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must have shape (..., num_steps, dim) with an even dim, got {shape}")
    if not isinstance(angles, torch.Tensor):
        raise ValueError(f"angles must be a tensor of shape (T, dim / 2), got {type(angles).__name__}")
    if angles.shape[-1] != x.shape[-1] // 2:
        raise ValueError(f"angles must have {x.shape[-1] // 2} columns (dim / 2), got shape {tuple(angles.shape)}")
    cos = torch.cos(angles).to(x.dtype)  # (..., T, d/2)
    sin = torch.sin(angles).to(x.dtype)  # (..., T, d/2)
    x_even, x_odd = x[..., 0::2], x[..., 1::2]  # (..., T, d/2) each
    rot_even = x_even * cos - x_odd * sin  # (..., T, d/2)
    rot_odd = x_even * sin + x_odd * cos  # (..., T, d/2)
    return torch.stack([rot_even, rot_odd], dim=-1).flatten(-2)  # (..., T, d)


class RotaryPositionalEncoding(nn.Module):
    r"""Rotary position embedding (RoPE) for queries and keys of size ``dim`` (even).

    ``forward(x, positions=None)`` rotates ``x`` of shape ``(..., T, dim)`` (e.g. ``(B, h, T, d_h)``)
    by :math:`R_p`, the block-diagonal rotation by angles :math:`p\,\theta_i`; positions default
    to ``0, ..., T-1`` and may be given explicitly (``(T,)`` or broadcastable to ``x.shape[:-1]``),
    e.g. ``offset + arange(T)`` during generation. Apply it to queries and keys, not to values.
    It has no parameters and no length limit; it preserves norms, and
    :math:`\langle R_m\mathbf{q}, R_n\mathbf{k}\rangle` depends on :math:`m, n` only through :math:`m-n`.
    """

    def __init__(self, dim: int, base: float = 10000.0):
        super().__init__()
        _check_even_dim(dim, "dim")
        self.dim, self.base = dim, _check_base(base)

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() < 2 or x.shape[-1] != self.dim:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must have shape (..., num_steps, dim={self.dim}), got {shape}")
        if positions is None:
            positions = torch.arange(x.shape[-2], device=x.device)  # (T,)
        elif torch.as_tensor(positions).shape[-1:] != x.shape[-2:-1]:
            got = tuple(torch.as_tensor(positions).shape)
            raise ValueError(
                f"positions must have one entry per step ({x.shape[-2]}) in its last axis, got shape {got}"
            )
        angles = rotary_angles(positions, self.dim, self.base)  # (..., T, d/2)
        return apply_rotary(x, angles)  # (..., T, d)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, base={self.base:g}"


# --------------------------------------------------------------------------------------------
# ALiBi: attention with linear biases (Press et al., 2022)
# --------------------------------------------------------------------------------------------
def alibi_slopes(num_heads: int) -> torch.Tensor:
    r"""The slopes :math:`m_1, \dots, m_h` of ALiBi, shape ``(num_heads,)`` (float64).

    For :math:`h` a power of 2 they are the geometric sequence that starts at and has ratio
    :math:`2^{-8/h}` (8 heads: :math:`1/2, 1/4, \dots, 1/256`; Press et al., 2022, §3). For other
    :math:`h` the paper's reference code (``get_slopes`` in ofirpress/attention_with_linear_biases,
    also Hugging Face BLOOM's ``build_alibi_tensor``) takes the :math:`2^{\lfloor\log_2 h\rfloor}`
    slopes of the nearest smaller power of 2, then every other slope of :math:`2^{\lfloor\log_2
    h\rfloor + 1}` heads (the 1st, 3rd, ...) until it has :math:`h`.
    """
    positive_int("num_heads", num_heads)

    def power_of_2(n: int) -> list[float]:
        start = 2.0 ** (-8.0 / n)  # = 2 ** -(2 ** -(log2(n) - 3)) in the reference code
        return [start ** (i + 1) for i in range(n)]

    closest = 2 ** int(math.floor(math.log2(num_heads)))
    slopes = power_of_2(closest) + power_of_2(2 * closest)[0::2][: num_heads - closest]
    return torch.tensor(slopes, dtype=torch.float64)  # (h,)


def alibi_bias(slopes: torch.Tensor, num_queries: int, num_keys: int) -> torch.Tensor:
    r"""The additive score bias :math:`-m_h (i - j)`, shape ``(h, T_q, T_k)``.

    The queries are the *last* ``T_q`` of the ``T_k`` positions (as in causal attention with a
    key/value cache): query row ``r`` sits at position :math:`i = T_k - T_q + r`. Entries with
    :math:`j > i` are positive; causal attention masks them anyway.
    """
    positive_int("num_queries", num_queries)
    positive_int("num_keys", num_keys)
    if num_queries > num_keys:
        raise ValueError(f"num_queries ({num_queries}) cannot exceed num_keys ({num_keys})")
    q_pos = torch.arange(num_keys - num_queries, num_keys, device=slopes.device)  # (T_q,)
    k_pos = torch.arange(num_keys, device=slopes.device)  # (T_k,)
    distance = (q_pos[:, None] - k_pos[None, :]).to(slopes.dtype)  # (T_q, T_k): i - j
    return -slopes[:, None, None] * distance  # (h, T_q, T_k)


class ALiBi(nn.Module):
    """ALiBi for ``num_heads`` heads: the slopes are a non-trainable buffer ``slopes (h,)``.

    ``bias(T_q, T_k)`` -> ``(h, T_q, T_k)`` (:func:`alibi_bias`); ``score_mod(scores, q_idx, k_idx,
    head)`` returns ``scores - slopes[head] * (q_idx - k_idx)`` elementwise (the score-hook form of
    flex attention: index tensors broadcastable to ``scores``).
    """

    def __init__(self, num_heads: int):
        super().__init__()
        self.num_heads = positive_int("num_heads", num_heads)
        self.register_buffer("slopes", alibi_slopes(num_heads).float(), persistent=False)

    def bias(self, num_queries: int, num_keys: int) -> torch.Tensor:
        return alibi_bias(self.slopes, num_queries, num_keys)  # (h, T_q, T_k)

    def score_mod(self, scores: torch.Tensor, q_idx, k_idx, head) -> torch.Tensor:
        return scores - self.slopes.to(scores.dtype)[head] * (q_idx - k_idx)

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}"
