r"""Multi-head attention (taught in chapter 5, used by chapters 6 and 7).

One attention head computes *one* weighted average of the values per query. Multi-head
attention runs :math:`h` heads in parallel, each in its own learned subspace, and mixes their
results (Vaswani et al., 2017):

.. math::

    \mathbf{H}_i = \operatorname{attention}(\mathbf{Q}\mathbf{W}_i^{q}, \mathbf{K}\mathbf{W}_i^{k},
                                            \mathbf{V}\mathbf{W}_i^{v}),
    \qquad
    \operatorname{MultiHead}(\mathbf{Q}, \mathbf{K}, \mathbf{V})
        = [\mathbf{H}_1, \dots, \mathbf{H}_h]\,\mathbf{W}^{o},

with :math:`\mathbf{W}_i^{q}, \mathbf{W}_i^{k}, \mathbf{W}_i^{v} \in \mathbb{R}^{d \times d/h}`
and :math:`\mathbf{W}^{o} \in \mathbb{R}^{d \times d}` (``d = d_model``). The :math:`h`
projections of size :math:`d/h` are computed as *one* :math:`d \times d` projection whose
output columns are then split into heads (:func:`split_heads`); after attention the heads are
concatenated back (:func:`merge_heads`). So the parameter count,
:math:`d(d_q + d_k + d_v + d) + 4d` with biases, does not depend on :math:`h`.

One door: ``forward(x, memory=None, mask=None, cache=None, need_weights=False)`` returns a
:class:`MultiHeadOutput` ``(output, weights, cache)`` of fixed fields.

* ``memory=None`` is **self-attention**: the three projections are *one* matrix product with the
  stacked weights :math:`[\mathbf{W}^q; \mathbf{W}^k; \mathbf{W}^v]`, stored as one parameter
  ``W_qkv`` as :class:`torch.nn.MultiheadAttention` stores ``in_proj_weight`` (``W_q``, ``W_k``,
  ``W_v`` are views of its rows);
* ``memory`` a tensor ``(B, T_k, d)`` (keys = values, an encoder's outputs), a pair
  ``(keys, values)``, or a :class:`KVCache` already projected by :meth:`MultiHeadAttention.project`
  (once per sentence while decoding) is **cross-attention**;
* generation reuses work with a **key/value cache** (chapter 7): the projected keys and values of
  the positions seen so far. A ``cache`` passed in (:meth:`MultiHeadAttention.empty_cache` at the
  start) comes back out, extended by the new positions;
* ``num_kv_heads < num_heads`` is grouped-query attention (``1``: multi-query; Shazeer 2019;
  Ainslie et al. 2023): groups of query heads share key/value heads, and the key/value
  projections and cache shrink by ``num_heads / num_kv_heads``.
* ``rotary`` (e.g. :class:`~d2l_attn.positional.RotaryPositionalEncoding`, RoPE) rotates the
  self-attention queries and keys after the projection, at their absolute positions (after a cache
  of ``t`` positions: ``t, t + 1, ...``); the cache holds the rotated keys.

The per-head kernel is an :class:`~d2l_attn.scoring.AttentionFn` (default
:class:`~d2l_attn.scoring.DotProductAttention`), called with the call's
:class:`~d2l_attn.masking.Mask`. Arguments are checked by shape (no device synchronization);
lengths are read once, where the :class:`~d2l_attn.masking.Mask` is built.

Shapes are batch-first: queries ``(B, T_q, d_model)``, keys ``(B, T_k, key_dim)``, values
``(B, T_k, value_dim)``; inside, heads are an extra axis ``(B, h, T, d_h)``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from ._checks import heads_divide, positive_int
from .masking import Mask
from .scoring import DotProductAttention

__all__ = ["split_heads", "merge_heads", "KVCache", "MultiHeadOutput", "MultiHeadAttention"]


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """``(B, T, d)`` -> ``(B, h, T, d / h)``: head ``i`` gets columns ``i d_h, ..., (i+1) d_h - 1``."""
    positive_int("num_heads", num_heads)
    if not isinstance(x, torch.Tensor) or x.dim() != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must have shape (batch_size, num_steps, d), got {shape}")
    if x.shape[-1] % num_heads != 0:
        raise ValueError(f"the last axis (d={x.shape[-1]}) must be divisible by num_heads={num_heads}")
    return _split(x, num_heads)


def _split(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """:func:`split_heads` without the checks (the layers below check their inputs once)."""
    batch_size, num_steps, d = x.shape
    x = x.view(batch_size, num_steps, num_heads, d // num_heads)  # (B, T, h, d_h)
    return x.transpose(1, 2)  # (B, h, T, d_h)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """``(B, h, T, d_h)`` -> ``(B, T, h d_h)``: the inverse of :func:`split_heads`."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must have shape (batch_size, num_heads, num_steps, d_h), got {shape}")
    return _merge(x)


def _merge(x: torch.Tensor) -> torch.Tensor:
    """:func:`merge_heads` without the checks."""
    batch_size, num_heads, num_steps, head_dim = x.shape
    x = x.transpose(1, 2)  # (B, T, h, d_h)
    return x.reshape(batch_size, num_steps, num_heads * head_dim)  # (B, T, d)


def _check_dtypes(weight: torch.Tensor, **inputs: torch.Tensor) -> None:
    """Inputs in the parameters' dtype (autocast converts them itself), else a clear error."""
    if torch.is_autocast_enabled(weight.device.type):
        return
    for name, x in inputs.items():
        if x.dtype != weight.dtype:
            raise ValueError(
                f"{name} has dtype {x.dtype} but the layer's parameters are {weight.dtype}: convert one "
                f"to the other (e.g. {name}.to({weight.dtype}) or layer.to({x.dtype})), or run under torch.autocast"
            )


class KVCache(NamedTuple):
    """Projected keys and values of the positions seen so far, per head: ``k``, ``v`` ``(B, h, t, d_h)``.

    Made by :meth:`MultiHeadAttention.project` (a cross-attention memory) or
    :meth:`MultiHeadAttention.empty_cache`, grown by ``MultiHeadAttention.forward(x, cache=...)``.
    With grouped-query attention ``h`` is ``num_kv_heads``.
    """

    k: torch.Tensor  # (B, h, t, d_h)
    v: torch.Tensor  # (B, h, t, d_h)

    @property
    def length(self) -> int:
        """Number of cached positions ``t``."""
        return self.k.shape[2]

    def index_select(self, index: torch.Tensor) -> KVCache:
        """Select/repeat batch rows (beam search): ``index (N,)`` into the batch axis."""
        return KVCache(self.k.index_select(0, index), self.v.index_select(0, index))  # (N, h, t, d_h) x 2


class MultiHeadOutput(NamedTuple):
    """What :meth:`MultiHeadAttention.forward` returns: ``output (B, T_q, d_model)``, ``weights
    (B, h, T_q, T_k)`` if asked for (else ``None``), and the extended ``cache`` if one was passed
    in (else ``None``)."""

    output: torch.Tensor
    weights: torch.Tensor | None
    cache: KVCache | None


class _Rows:
    """Rows ``start:stop`` of the fused projection ``W_qkv``, used like a :class:`torch.nn.Linear`
    (``.weight``, ``.bias`` are views: copying into them writes ``W_qkv``)."""

    def __init__(self, linear: nn.Linear, start: int, stop: int):
        self._linear, self._rows = linear, slice(start, stop)

    @property
    def weight(self) -> torch.Tensor:
        return self._linear.weight[self._rows]

    @property
    def bias(self) -> torch.Tensor | None:
        return None if self._linear.bias is None else self._linear.bias[self._rows]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


class MultiHeadAttention(nn.Module):
    r"""Multi-head scaled dot-product attention, batch-first.

    .. math::

        \operatorname{MultiHead}(\mathbf{Q}, \mathbf{K}, \mathbf{V}) =
        \operatorname{concat}_{i=1}^{h}\Big(\operatorname{softmax}\Big(
        \frac{\mathbf{Q}\mathbf{W}_i^{q} (\mathbf{K}\mathbf{W}_{g(i)}^{k})^\top}{\sqrt{d/h}}\Big)
        \mathbf{V}\mathbf{W}_{g(i)}^{v}\Big)\,\mathbf{W}^{o},

    with :math:`g(i) = i` (multi-head) or :math:`\lfloor i\, g / h \rfloor` (``g = num_kv_heads``).

    Args:
        d_model: size of the queries and of the output; must be divisible by ``num_heads``.
        num_heads: number of query heads ``h``; each works in ``d_model // num_heads`` dimensions.
        dropout: dropout on the attention weights (training mode only).
        bias: add biases to the projections.
        key_dim / value_dim: sizes of the keys / values if they differ from ``d_model``
            (cross-attention to an encoder of another width); default ``d_model``. Then the
            projections are three separate matrices (no self-attention).
        fused: use :func:`torch.nn.functional.scaled_dot_product_attention` when the weights
            are not requested (see :class:`d2l_attn.scoring.DotProductAttention`).
        attention: the per-head :class:`~d2l_attn.scoring.AttentionFn` (e.g. a variant from
            :mod:`d2l_attn.efficient`); default ``DotProductAttention(dropout, fused)``.
        num_kv_heads: key/value heads (divides ``num_heads``); default ``num_heads``.
        rotary: a q/k transform ``rotary(x (B, heads, T, d_h), positions (T,))``, e.g.
            :class:`~d2l_attn.positional.RotaryPositionalEncoding` (RoPE), applied to the queries and
            keys of self-attention at their absolute positions (after a cache of ``t``: ``t .. t+T-1``);
            the cache holds rotated keys. Default ``None``.

    Parameters are initialised like :class:`torch.nn.MultiheadAttention`: Xavier-uniform
    projections (the query/key/value ones as one ``(3d, d)`` matrix) and zero biases.
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        key_dim: int | None = None,
        value_dim: int | None = None,
        fused: bool = True,
        attention: nn.Module | None = None,
        num_kv_heads: int | None = None,
        rotary: nn.Module | None = None,
    ):
        super().__init__()
        head_dim = heads_divide(d_model, num_heads)
        num_kv_heads = num_heads if num_kv_heads is None else positive_int("num_kv_heads", num_kv_heads)
        if num_heads % num_kv_heads:
            raise ValueError(f"num_heads={num_heads} must be divisible by num_kv_heads={num_kv_heads}")
        key_dim = d_model if key_dim is None else positive_int("key_dim", key_dim)
        value_dim = d_model if value_dim is None else positive_int("value_dim", value_dim)
        self.d_model, self.num_heads, self.head_dim, self.num_kv_heads = d_model, num_heads, head_dim, num_kv_heads
        self.key_dim, self.value_dim = key_dim, value_dim
        kv_dim = num_kv_heads * head_dim
        # three nn.Linear draw the same random numbers as before the fusion (same init, same runs)
        parts = [
            nn.Linear(d_model, d_model, bias),
            nn.Linear(key_dim, kv_dim, bias),
            nn.Linear(value_dim, kv_dim, bias),
        ]
        self.fused_qkv = key_dim == value_dim == d_model
        if self.fused_qkv:
            self.W_qkv = nn.Linear(d_model, d_model + 2 * kv_dim, bias, device="meta")  # [W_q; W_k; W_v]
            self.W_qkv.weight = nn.Parameter(torch.cat([p.weight for p in parts]))
            if bias:
                self.W_qkv.bias = nn.Parameter(torch.cat([p.bias for p in parts]))
        else:
            self.q_proj, self.k_proj, self.v_proj = parts
        self.W_o = nn.Linear(d_model, d_model, bias=bias)
        if attention is not None and not isinstance(attention, nn.Module):
            raise ValueError(
                f"attention must be an nn.Module (e.g. DotProductAttention()), got {type(attention).__name__}"
            )
        self.attention = DotProductAttention(dropout=dropout, fused=fused) if attention is None else attention
        if rotary is not None and not callable(rotary):
            raise ValueError(
                f"rotary must be a callable (x, positions) -> x (e.g. RotaryPositionalEncoding), got {rotary!r}"
            )
        self.rotary = rotary
        self._register_load_state_dict_pre_hook(_load_separate_projections, with_module=True)
        self.reset_parameters()

    # -- the projections: W_q, W_k, W_v are rows of W_qkv (or three matrices for other key sizes) ---
    @property
    def W_q(self) -> nn.Linear | _Rows:
        return _Rows(self.W_qkv, 0, self.d_model) if self.fused_qkv else self.q_proj

    @property
    def W_k(self) -> nn.Linear | _Rows:
        kv = self.num_kv_heads * self.head_dim
        return _Rows(self.W_qkv, self.d_model, self.d_model + kv) if self.fused_qkv else self.k_proj

    @property
    def W_v(self) -> nn.Linear | _Rows:
        kv = self.num_kv_heads * self.head_dim
        return _Rows(self.W_qkv, self.d_model + kv, self.d_model + 2 * kv) if self.fused_qkv else self.v_proj

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Xavier-uniform weights and zero biases, as :class:`torch.nn.MultiheadAttention` does."""
        if self.fused_qkv:
            nn.init.xavier_uniform_(self.W_qkv.weight)  # one (d + 2 d_kv, d) matrix, like torch's in_proj_weight
        else:
            for layer in (self.q_proj, self.k_proj, self.v_proj):
                nn.init.xavier_uniform_(layer.weight)
        nn.init.xavier_uniform_(self.W_o.weight)
        for layer in (self.W_q, self.W_k, self.W_v, self.W_o):
            if layer.bias is not None:
                layer.bias.zero_()

    def empty_cache(self, x: torch.Tensor) -> KVCache:
        """A cache with no positions ``(B, g, 0, d_h)`` for the batch of ``x (B, T, d_model)``."""
        empty = x.new_zeros(x.shape[0], self.num_kv_heads, 0, self.head_dim)  # (B, g, 0, d_h)
        return KVCache(empty, empty)

    def project(self, keys: torch.Tensor, values: torch.Tensor | None = None) -> KVCache:
        """Keys and values (default: ``values = keys``) projected and split into heads: a
        :class:`KVCache` ``(B, g, T_k, d_h)``, e.g. an encoder's outputs, once per sentence."""
        _check(keys, "keys", self.key_dim, "T_k", "key_dim")
        _check_dtypes(self.W_o.weight, keys=keys)
        if values is None and self.fused_qkv:
            kv = F.linear(keys, *_rows(self.W_qkv, self.d_model, None))  # (B, T_k, 2 d_kv): one product
            k, v = kv.chunk(2, dim=-1)
        else:
            values = keys if values is None else values
            _check(values, "values", self.value_dim, "T_k", "value_dim")
            _check_dtypes(self.W_o.weight, values=values)
            if keys.shape[:2] != values.shape[:2]:
                raise ValueError(
                    f"keys and values must have the same batch size and steps, got {tuple(keys.shape)} and "
                    f"{tuple(values.shape)}"
                )
            k, v = self.W_k(keys), self.W_v(values)  # (B, T_k, d_kv) x 2
        return KVCache(_split(k, self.num_kv_heads), _split(v, self.num_kv_heads))  # (B, g, T_k, d_h) x 2

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor | tuple[torch.Tensor, torch.Tensor] | KVCache | None = None,
        mask: Mask | None = None,
        cache: KVCache | None = None,
        need_weights: bool = False,
    ) -> MultiHeadOutput:
        """``MultiHeadOutput(output (B, T_q, d_model), weights (B, h, T_q, T_k) or None, cache)``.

        ``x``: the queries ``(B, T_q, d_model)``. ``memory``: ``None`` (self-attention), keys =
        values ``(B, T_k, key_dim)``, a pair ``(keys, values)``, or a projected :class:`KVCache`.
        ``mask``: a :class:`~d2l_attn.masking.Mask` for the scores ``(B, h, T_q, T_k)``
        (``Mask.of(valid_lens, attn_mask, is_causal)`` for a direct call: ``valid_lens`` ``(B,)`` or
        ``(B, T_q)``, ``attn_mask`` ``(T_q, T_k)``, ``(B, T_q, T_k)`` (every head) or ``(B, h, T_q,
        T_k)``). With ``is_causal`` and a cache, the queries are the *last* ``T_q`` positions.
        ``cache`` (self-attention only): the earlier positions' keys and values; the returned cache
        holds them and the new ones. The weights are per head; average over axis 1 for
        :class:`torch.nn.MultiheadAttention`'s default.
        """
        _check(x, "x (the queries)", self.d_model, "T_q", "d_model")
        _check_dtypes(self.W_o.weight, x=x)
        if memory is None:
            if not self.fused_qkv:
                raise ValueError(
                    "self-attention needs key_dim == value_dim == d_model (this layer projects other sizes)"
                )
            q, k, v = self._project_self(x)  # (B, h, T, d_h), (B, g, T, d_h) x 2
            if cache is not None and not isinstance(cache, KVCache):
                raise ValueError(f"cache must be a multihead.KVCache (see empty_cache), got {type(cache).__name__}")
            if self.rotary is not None:  # R_p q and R_p k at the absolute positions t .. t + T - 1
                positions = torch.arange(x.shape[1], device=x.device) + (0 if cache is None else cache.length)
                q, k = self.rotary(q, positions), self.rotary(k, positions)
            if cache is not None:
                if cache.k.shape[:2] != k.shape[:2] or cache.k.shape[-1] != k.shape[-1]:
                    raise ValueError(
                        f"cache holds (B, g, t, d_h) = {tuple(cache.k.shape)}, the new positions {tuple(k.shape)}"
                    )
                k, v = torch.cat([cache.k, k], dim=2), torch.cat([cache.v, v], dim=2)  # (B, g, t + T, d_h)
                cache = KVCache(k, v)
        else:
            if cache is not None:
                raise ValueError("cache is for self-attention; pass a projected memory as memory=layer.project(...)")
            if isinstance(memory, KVCache):
                if memory.k.shape[0] != x.shape[0] or memory.k.shape[1] != self.num_kv_heads:
                    raise ValueError(
                        f"memory KVCache must be (B={x.shape[0]}, g={self.num_kv_heads}, T_k, d_h), got {tuple(memory.k.shape)}"
                    )
                kv = memory
            else:
                kv = self.project(*memory) if isinstance(memory, tuple) else self.project(memory)
            if kv.k.shape[0] != x.shape[0]:
                raise ValueError(f"x and memory must have the same batch size, got {x.shape[0]} and {kv.k.shape[0]}")
            q, (k, v) = _split(self.W_q(x), self.num_heads), kv  # (B, h, T_q, d_h)
        if mask is not None:
            mask = _per_head(mask).resolve((x.shape[0], self.num_heads, x.shape[1], k.shape[2]), x.device)
        if self.num_kv_heads != self.num_heads:  # each key/value head serves num_heads / g query heads
            group = self.num_heads // self.num_kv_heads
            k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)  # (B, h, T_k, d_h)
        heads, weights = self.attention(q, k, v, mask, need_weights)  # (B, h, T_q, d_h)
        return MultiHeadOutput(self.W_o(_merge(heads)), weights, cache)  # (B, T_q, d_model)

    def _project_self(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        r"""Queries, keys and values of ``x`` from *one* matrix product with the stored
        :math:`[\mathbf{W}^q; \mathbf{W}^k; \mathbf{W}^v]`: the numbers of three products, faster."""
        batch_size, num_steps, _ = x.shape
        qkv = self.W_qkv(x)  # (B, T, d + 2 d_kv)
        if self.num_kv_heads == self.num_heads:
            qkv = qkv.view(batch_size, num_steps, 3, self.num_heads, self.head_dim)  # (B, T, 3, h, d_h)
            return qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 x (B, h, T, d_h)
        kv = self.num_kv_heads * self.head_dim
        q, k, v = qkv.split([self.d_model, kv, kv], dim=-1)
        return _split(q, self.num_heads), _split(k, self.num_kv_heads), _split(v, self.num_kv_heads)

    @torch.no_grad()
    def load_torch_weights(self, module: nn.MultiheadAttention) -> MultiHeadAttention:
        """Copy the weights of a :class:`torch.nn.MultiheadAttention` (same sizes) into this module."""
        if not isinstance(module, nn.MultiheadAttention):
            raise ValueError(f"module must be a torch.nn.MultiheadAttention, got {type(module).__name__}")
        sizes = (module.embed_dim, module.num_heads, module.kdim, module.vdim)
        ours = (self.d_model, self.num_heads, self.key_dim, self.value_dim)
        if sizes != ours or self.num_kv_heads != self.num_heads:
            raise ValueError(
                f"sizes differ: torch module has (embed_dim, num_heads, kdim, vdim) = {sizes}, this one {ours}"
                + ("" if self.num_kv_heads == self.num_heads else f" with num_kv_heads={self.num_kv_heads}")
            )
        if module.bias_k is not None or (module.in_proj_bias is None) != (self.W_o.bias is None):
            raise ValueError("bias settings differ (add_bias_kv is not supported)")
        if module.in_proj_weight is not None:
            weights = module.in_proj_weight.chunk(3)  # 3 x (d, d)
        else:
            weights = (module.q_proj_weight, module.k_proj_weight, module.v_proj_weight)
        biases = module.in_proj_bias.chunk(3) if module.in_proj_bias is not None else (None,) * 3
        for layer, weight, bias in zip((self.W_q, self.W_k, self.W_v), weights, biases):
            layer.weight.copy_(weight)
            if bias is not None:
                layer.bias.copy_(bias)
        self.W_o.weight.copy_(module.out_proj.weight)
        if self.W_o.bias is not None:
            self.W_o.bias.copy_(module.out_proj.bias)
        return self

    def extra_repr(self) -> str:
        extra = ""
        if self.key_dim != self.d_model or self.value_dim != self.d_model:
            extra = f", key_dim={self.key_dim}, value_dim={self.value_dim}"
        if self.num_kv_heads != self.num_heads:
            extra += f", num_kv_heads={self.num_kv_heads}"
        if self.rotary is not None:
            extra += ", rotary=True"
        return f"d_model={self.d_model}, num_heads={self.num_heads}{extra}"


def _rows(linear: nn.Linear, start: int, stop: int | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    return linear.weight[start:stop], None if linear.bias is None else linear.bias[start:stop]


def _check(x, name: str, dim: int, steps: str, label: str) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != dim:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must have shape (B, {steps}, {label}={dim}), got {shape}")


def _per_head(mask: object) -> Mask:
    """A direct call's 3-D ``attn_mask (B, T_q, T_k)`` applies to every head: ``(B, 1, T_q, T_k)``."""
    if not isinstance(mask, Mask):
        raise ValueError(
            f"mask must be a d2l_attn.masking.Mask (e.g. Mask.of(valid_lens)) or None, got {type(mask).__name__}"
        )
    if not mask.checked and isinstance(mask.keep, torch.Tensor) and mask.keep.dim() == 3:
        return Mask.of(mask.lengths, mask.keep.unsqueeze(1), mask.is_causal)
    return mask


def _load_separate_projections(module: MultiHeadAttention, state_dict, prefix: str, *args) -> None:
    """Load state dicts that name the projections ``W_q``, ``W_k``, ``W_v`` (checkpoints written
    before the fusion, and the renamed Hugging Face weights): stacked into ``W_qkv``."""
    names = [f"{prefix}{n}.{p}" for n in ("W_q", "W_k", "W_v") for p in ("weight", "bias")]
    if not any(n in state_dict for n in names):
        return
    for p in ("weight", "bias"):
        parts = [state_dict.pop(f"{prefix}{n}.{p}", None) for n in ("W_q", "W_k", "W_v")]
        if any(t is None for t in parts):
            continue
        if module.fused_qkv:
            state_dict[f"{prefix}W_qkv.{p}"] = torch.cat(parts)
        else:
            for n, t in zip(("q_proj", "k_proj", "v_proj"), parts):
                state_dict[f"{prefix}{n}.{p}"] = t
