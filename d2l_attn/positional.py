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

:class:`PositionalAttention` applies RoPE and/or ALiBi inside scaled dot-product attention (it has
:class:`~d2l_attn.scoring.DotProductAttention`'s call signature, so it plugs into
:class:`~d2l_attn.multihead.MultiHeadAttention` via ``attention=``); :class:`d2l_attn.models.GPT`
uses it for ``positional="rope"`` / ``"alibi"``.

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
from torch.nn import functional as F

from ._checks import nonnegative_int, positive_int, unit_interval
from .masking import causal_mask, masked_softmax
from .scoring import combine_masks

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
    "PositionalAttention",
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


class PositionalAttention(nn.Module):
    r"""Scaled dot-product attention with positions inside: RoPE on queries and keys, ALiBi on the scores.

    ``forward(queries (B, h, T_q, d_h), keys (B, g, T_k, d_h), values (B, g, T_k, d_v), valid_lens=None,
    attn_mask=None, return_weights=False, is_causal=False)``, the call of
    :class:`~d2l_attn.scoring.DotProductAttention`:

    .. math::

        \operatorname{softmax}\Big(\frac{(R_i\mathbf{q}_i)^\top (R_j\mathbf{k}_j)}{\sqrt{d_h}}
        - m_h (i - j)\Big)\mathbf{V},

    with :math:`R_p` the rotation of :class:`RotaryPositionalEncoding` (if ``rotary``) and
    :math:`m_h` the slopes of :class:`ALiBi` (if ``alibi``; causal attention only). The queries are
    the *last* ``T_q`` of the ``T_k`` positions, so a key/value cache of unrotated keys works
    unchanged: the cached keys are rotated at their positions ``0 .. T_k - 1`` in every call.
    Keys and values may have ``g`` heads for ``h`` query heads (``g`` divides ``h``; grouped-query
    attention): key/value head ``j`` serves query heads ``j h/g, ..., (j+1) h/g - 1``.

    Args:
        rotary: a :class:`RotaryPositionalEncoding` of size ``d_h``, or ``None``.
        alibi: an :class:`ALiBi` with ``h`` heads, or ``None``.
        dropout: on the attention weights (training mode only).
        fused: :func:`torch.nn.functional.scaled_dot_product_attention` when the weights are not
            requested (ALiBi goes in as a float mask).
    """

    def __init__(
        self,
        rotary: RotaryPositionalEncoding | None = None,
        alibi: ALiBi | None = None,
        dropout: float = 0.0,
        fused: bool = True,
    ):
        super().__init__()
        if rotary is not None and not isinstance(rotary, RotaryPositionalEncoding):
            raise ValueError(f"rotary must be a RotaryPositionalEncoding or None, got {type(rotary).__name__}")
        if alibi is not None and not isinstance(alibi, ALiBi):
            raise ValueError(f"alibi must be an ALiBi or None, got {type(alibi).__name__}")
        self.rotary, self.alibi, self.fused = rotary, alibi, bool(fused)
        self.dropout = nn.Dropout(unit_interval("dropout", dropout))

    def forward(
        self,
        queries: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        valid_lens=None,
        attn_mask: torch.Tensor | None = None,
        return_weights: bool = False,
        is_causal: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        for name, x in (("queries", queries), ("keys", keys), ("values", values)):
            if not isinstance(x, torch.Tensor) or x.dim() != 4:
                shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
                raise ValueError(f"{name} must have shape (B, heads, T, d_h), got {shape}")
        (_, h, num_q, _), (_, g, num_k, _) = queries.shape, keys.shape
        if h % g or values.shape[1] != g or num_q > num_k:
            raise ValueError(
                f"keys and values need g heads dividing the h={h} query heads and T_k >= T_q, got queries "
                f"{tuple(queries.shape)}, keys {tuple(keys.shape)}, values {tuple(values.shape)}"
            )
        if self.alibi is not None and not is_causal:
            raise ValueError("ALiBi's bias -m (i - j) is defined for causal attention: pass is_causal=True")
        if self.rotary is not None:  # R_i q_i and R_j k_j: queries are the last T_q positions
            positions = torch.arange(num_k, device=keys.device)  # (T_k,)
            queries, keys = self.rotary(queries, positions[num_k - num_q :]), self.rotary(keys, positions)
        if g != h:  # grouped-query attention: each key/value head serves h / g query heads
            keys = keys.repeat_interleave(h // g, dim=1)  # (B, h, T_k, d_h)
            values = values.repeat_interleave(h // g, dim=1)  # (B, h, T_k, d_v)
        keep = combine_masks(valid_lens, attn_mask, (*queries.shape[:-1], num_k), device=queries.device)
        if is_causal:
            mask = causal_mask(num_q, num_k, device=queries.device)  # (T_q, T_k)
            keep = mask if keep is None else keep & mask  # (B or 1, h or 1, T_q, T_k)
        bias = None if self.alibi is None else self.alibi.bias(num_q, num_k).to(queries.dtype)  # (h, T_q, T_k)
        if return_weights or not self.fused:
            scores = queries @ keys.transpose(-2, -1) / math.sqrt(queries.shape[-1])  # (B, h, T_q, T_k)
            weights = masked_softmax(scores if bias is None else scores + bias, mask=keep)  # (B, h, T_q, T_k)
            output = self.dropout(weights) @ values  # (B, h, T_q, d_v)
            return (output, weights) if return_weights else output
        has_key = None if keep is None else keep.any(dim=-1, keepdim=True)  # (..., T_q, 1)
        mask = None if keep is None else keep | ~has_key  # a row with no key attends anywhere, then is zeroed
        if bias is not None:
            mask = bias if mask is None else torch.where(mask, bias, -math.inf)  # (B or 1, h, T_q, T_k)
        output = F.scaled_dot_product_attention(
            queries, keys, values, attn_mask=mask, dropout_p=self.dropout.p if self.training else 0.0
        )  # (B, h, T_q, d_v)
        return output if has_key is None else output.masked_fill(~has_key, 0.0)

    def extra_repr(self) -> str:
        return f"rotary={self.rotary is not None}, alibi={self.alibi is not None}, fused={self.fused}"
