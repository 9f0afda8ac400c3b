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

Generation reuses work with a **key/value cache** (:class:`KVCache`, chapter 7): the projected
keys and values of positions already seen are kept, so a new token only projects itself.
:meth:`MultiHeadAttention.project` makes a cache from keys and values (e.g. an encoder's
outputs, computed once per sentence), :meth:`MultiHeadAttention.extend` appends new positions to
one (causal self-attention in a decoder or a GPT), and :meth:`MultiHeadAttention.attend` attends
over one; ``forward`` is ``attend(queries, project(keys, values))``.

In self-attention (:meth:`MultiHeadAttention.self_attend`) the three projections are one matrix
product with the stacked weights :math:`[\mathbf{W}^q; \mathbf{W}^k; \mathbf{W}^v]`, as
:class:`torch.nn.MultiheadAttention` computes them: the same numbers, one bigger and faster
product. Public methods check their arguments; :meth:`MultiHeadAttention.mask` turns lengths and
masks into one keep mask, which the unchecked :meth:`~MultiHeadAttention.attend_masked` and
:meth:`~MultiHeadAttention.self_attend` take -- a Transformer stack checks once per call, not
once per layer. They run the stock :class:`~d2l_attn.scoring.DotProductAttention` through its
``compute`` (its forward without checks), a replaced attention module through its ``forward``.

Shapes are batch-first: queries ``(B, T_q, d_model)``, keys ``(B, T_k, key_dim)``, values
``(B, T_k, value_dim)``; inside, heads are an extra axis ``(B, h, T, d_h)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from ._checks import heads_divide, positive_int
from .scoring import DotProductAttention, combine_masks

__all__ = ["split_heads", "merge_heads", "KVCache", "MultiHeadAttention"]


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

    Made by :meth:`MultiHeadAttention.project` (or :meth:`MultiHeadAttention.extend` from ``None``),
    grown by :meth:`MultiHeadAttention.extend`, read by :meth:`MultiHeadAttention.attend`.
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


class MultiHeadAttention(nn.Module):
    r"""Multi-head scaled dot-product attention, batch-first.

    .. math::

        \operatorname{MultiHead}(\mathbf{Q}, \mathbf{K}, \mathbf{V}) =
        \operatorname{concat}_{i=1}^{h}\Big(\operatorname{softmax}\Big(
        \frac{\mathbf{Q}\mathbf{W}_i^{q} (\mathbf{K}\mathbf{W}_i^{k})^\top}{\sqrt{d/h}}\Big)
        \mathbf{V}\mathbf{W}_i^{v}\Big)\,\mathbf{W}^{o}

    Args:
        d_model: size of the queries and of the output; must be divisible by ``num_heads``.
        num_heads: number of heads ``h``; each head works in ``d_model // num_heads`` dimensions.
        dropout: dropout on the attention weights (training mode only).
        bias: add biases to the four projections.
        key_dim / value_dim: sizes of the keys / values if they differ from ``d_model``
            (cross-attention to an encoder of another width); default ``d_model``.
        fused: use :func:`torch.nn.functional.scaled_dot_product_attention` when the weights
            are not requested (see :class:`d2l_attn.scoring.DotProductAttention`).
        attention: the attention module applied per head, with DotProductAttention's interface
            (e.g. a variant from :mod:`d2l_attn.efficient`); default ``DotProductAttention(dropout, fused)``.

    Parameters are initialised like :class:`torch.nn.MultiheadAttention`: Xavier-uniform
    projections (the query/key/value ones as if they were one ``(3d, d)`` matrix when
    ``key_dim = value_dim = d_model``) and zero biases.
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
    ):
        super().__init__()
        head_dim = heads_divide(d_model, num_heads)
        key_dim = d_model if key_dim is None else positive_int("key_dim", key_dim)
        value_dim = d_model if value_dim is None else positive_int("value_dim", value_dim)
        self.d_model, self.num_heads, self.head_dim = d_model, num_heads, head_dim
        self.key_dim, self.value_dim = key_dim, value_dim
        self.W_q = nn.Linear(d_model, d_model, bias=bias)
        self.W_k = nn.Linear(key_dim, d_model, bias=bias)
        self.W_v = nn.Linear(value_dim, d_model, bias=bias)
        self.W_o = nn.Linear(d_model, d_model, bias=bias)
        if attention is not None and not isinstance(attention, nn.Module):
            raise ValueError(
                f"attention must be an nn.Module (e.g. DotProductAttention()), got {type(attention).__name__}"
            )
        self.attention = DotProductAttention(dropout=dropout, fused=fused) if attention is None else attention
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Xavier-uniform weights and zero biases, as :class:`torch.nn.MultiheadAttention` does."""
        if self.key_dim == self.value_dim == self.d_model:
            # one (3d, d) matrix, like torch's in_proj_weight
            packed = torch.empty(3 * self.d_model, self.d_model)
            nn.init.xavier_uniform_(packed)
            for layer, chunk in zip((self.W_q, self.W_k, self.W_v), packed.chunk(3)):
                layer.weight.copy_(chunk)
        else:
            for layer in (self.W_q, self.W_k, self.W_v):
                nn.init.xavier_uniform_(layer.weight)
        nn.init.xavier_uniform_(self.W_o.weight)
        for layer in (self.W_q, self.W_k, self.W_v, self.W_o):
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)

    def _check_inputs(self, queries, keys, values) -> None:
        for x, name, dim, steps in (
            (queries, "queries", self.d_model, "T_q"),
            (keys, "keys", self.key_dim, "T_k"),
            (values, "values", self.value_dim, "T_k"),
        ):
            if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != dim:
                shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
                label = "d_model" if name == "queries" else f"{name[:-1]}_dim"
                raise ValueError(f"{name} must have shape (B, {steps}, {label}={dim}), got {shape}")
        _check_dtypes(self.W_q.weight, queries=queries, keys=keys, values=values)
        if not queries.shape[0] == keys.shape[0] == values.shape[0]:
            raise ValueError(
                f"queries, keys and values must have the same batch size, got {queries.shape[0]}, "
                f"{keys.shape[0]}, {values.shape[0]}"
            )
        if keys.shape[1] != values.shape[1]:
            raise ValueError(
                f"keys and values must have the same number of steps T_k, got {keys.shape[1]} and {values.shape[1]}"
            )

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
        """Output ``(B, T_q, d_model)``, or ``(output, weights (B, h, T_q, T_k))`` if ``return_weights``.

        ``is_causal``: self-attention in which query ``i`` sees keys ``0..i`` only (see
        :meth:`d2l_attn.scoring.DotProductAttention.forward`; the fast fused path on GPUs).

        ``valid_lens``: ``(B,)`` or ``(B, T_q)`` key lengths. ``attn_mask``: boolean, ``True`` =
        may attend, of shape ``(T_q, T_k)``, ``(B, T_q, T_k)`` (the same for every head) or
        ``(B, h, T_q, T_k)``. The returned weights are per head; average over axis 1 to get
        :class:`torch.nn.MultiheadAttention`'s default (head-averaged) weights.

        Self-attention (``queries``, ``keys`` and ``values`` the same tensor) computes the three
        projections as one matrix product (:meth:`self_attend`).
        """
        self._check_inputs(queries, keys, values)
        if keys is queries and values is queries:
            q, kv = self._project_self(queries)
        else:  # queries first, then keys and values (torch.nn.MultiheadAttention's order)
            q, kv = self._query(queries), self.project(keys, values)
        return self._attend(q, kv, valid_lens, attn_mask, return_weights, is_causal)

    def mask(
        self,
        valid_lens: torch.Tensor | Sequence[int] | None,
        attn_mask: torch.Tensor | None,
        batch_size: int,
        num_queries: int,
        num_keys: int,
        *,
        device: torch.device | None = None,
    ) -> torch.Tensor | None:
        """Check ``valid_lens`` and ``attn_mask`` and combine them into one keep mask for the scores
        ``(B, h, T_q, T_k)`` (:func:`d2l_attn.scoring.combine_masks`), or ``None``.

        Compute it once and pass it to :meth:`attend_masked` / :meth:`self_attend` for every layer.
        """
        if isinstance(attn_mask, torch.Tensor) and attn_mask.dim() == 3:
            attn_mask = attn_mask.unsqueeze(1)  # (B, 1, T_q, T_k): the same mask for every head
        scores_shape = (batch_size, self.num_heads, num_queries, num_keys)  # (B, h, T_q, T_k)
        return combine_masks(valid_lens, attn_mask, scores_shape, device=device)

    # -- the pieces of forward, for key/value caches ------------------------------------------------
    def project(self, keys: torch.Tensor, values: torch.Tensor) -> KVCache:
        """Project keys and values and split them into heads: a :class:`KVCache` ``(B, h, T_k, d_h)``."""
        k = _split(self.W_k(keys), self.num_heads)  # (B, h, T_k, d_h)
        v = _split(self.W_v(values), self.num_heads)  # (B, h, T_k, d_h)
        return KVCache(k, v)

    def extend(self, cache: KVCache | None, keys: torch.Tensor, values: torch.Tensor | None = None) -> KVCache:
        """``cache`` with the projections of ``T_new`` more positions appended (``values`` default ``keys``).

        ``cache=None`` starts a new cache. For self-attention, ``keys = values = `` the new inputs.
        """
        new = self.project(keys, keys if values is None else values)  # (B, h, T_new, d_h) x 2
        if cache is None:
            return new
        if not isinstance(cache, KVCache):
            raise ValueError(f"cache must be a multihead.KVCache or None, got {type(cache).__name__}")
        if cache.k.shape[:2] != new.k.shape[:2]:
            raise ValueError(
                f"cache holds (batch, heads) = {tuple(cache.k.shape[:2])}, the new positions {tuple(new.k.shape[:2])}"
            )
        return KVCache(torch.cat([cache.k, new.k], dim=2), torch.cat([cache.v, new.v], dim=2))  # (B, h, t+T_new, d_h)

    def attend(
        self,
        queries: torch.Tensor,
        cache: KVCache,
        valid_lens: torch.Tensor | Sequence[int] | None = None,
        attn_mask: torch.Tensor | None = None,
        return_weights: bool = False,
        is_causal: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        r"""Attend from ``queries (B, T_q, d_model)`` over projected keys/values ``cache``.

        :math:`\operatorname{concat}_i(\operatorname{attention}(\mathbf{Q}\mathbf{W}^q_i, \mathbf{K}_i,
        \mathbf{V}_i))\mathbf{W}^o`. With ``is_causal`` and a cache longer than the queries, the
        queries are the *last* ``T_q`` positions (each sees the cache and the new positions up to
        itself). Returns what :meth:`forward` returns.
        """
        if not isinstance(cache, KVCache):
            raise ValueError(f"cache must be a multihead.KVCache (see project/extend), got {type(cache).__name__}")
        if not isinstance(queries, torch.Tensor) or queries.dim() != 3 or queries.shape[-1] != self.d_model:
            shape = tuple(queries.shape) if isinstance(queries, torch.Tensor) else type(queries).__name__
            raise ValueError(f"queries must have shape (B, T_q, d_model={self.d_model}), got {shape}")
        _check_dtypes(self.W_q.weight, queries=queries)
        return self._attend(self._query(queries), cache, valid_lens, attn_mask, return_weights, is_causal)

    def _attend(self, q: torch.Tensor, kv: KVCache, valid_lens, attn_mask, return_weights: bool, is_causal: bool):
        """The attention module's ``forward`` in every head (it checks the lengths and masks), then ``W_o``."""
        if isinstance(attn_mask, torch.Tensor) and attn_mask.dim() == 3:
            attn_mask = attn_mask.unsqueeze(1)  # (B, 1, T_q, T_k): the same mask for every head
        result = self.attention(
            q,
            kv.k,
            kv.v,
            valid_lens=valid_lens,
            attn_mask=attn_mask,
            return_weights=return_weights,
            is_causal=is_causal,
        )
        return self._output(result, return_weights)

    # -- the same without argument checks, for layers that checked their inputs once ------------------
    def attend_masked(
        self,
        queries: torch.Tensor,
        cache: KVCache,
        keep: torch.Tensor | None = None,
        *,
        causal: bool = False,
        return_weights: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """:meth:`attend` with a keep mask from :meth:`mask` (or ``None``), without argument checks.

        Like :meth:`self_attend` it trusts its caller: masked keys and values must be finite (they
        are in a Transformer stack, whose activations start from an embedding table).
        """
        return self._attend_masked(self._query(queries), cache, keep, causal, return_weights)

    def self_attend(
        self, x: torch.Tensor, keep: torch.Tensor | None = None, *, causal: bool = False, return_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        r"""Self-attention of ``x (B, T, d_model)`` with a keep mask from :meth:`mask`, without argument checks.

        What ``forward(x, x, x, ...)`` computes, for callers that checked their inputs once (the
        Transformer stacks call it in every block). Masked positions of ``x`` must hold finite
        numbers: ``forward`` zeroes masked keys and values (:class:`~d2l_attn.scoring.DotProductAttention`
        does, at the cost of two passes over them), this does not.
        """
        q, kv = self._project_self(x)
        return self._attend_masked(q, kv, keep, causal, return_weights)

    def _attend_masked(self, q: torch.Tensor, kv: KVCache, keep, causal: bool, return_weights: bool):
        """Attention in every head with a checked keep mask, then ``W_o``.

        The stock :class:`~d2l_attn.scoring.DotProductAttention` runs its ``compute`` (its forward
        without the checks); a replacement (QK-norm, chapter 8's variants) runs its own ``forward``
        with the mask as ``attn_mask``.
        """
        if type(self.attention).forward is DotProductAttention.forward:
            result = self.attention.compute(q, kv.k, kv.v, keep, causal=causal, return_weights=return_weights)
        else:
            result = self.attention(q, kv.k, kv.v, attn_mask=keep, return_weights=return_weights, is_causal=causal)
        return self._output(result, return_weights)

    def _query(self, queries: torch.Tensor) -> torch.Tensor:
        return _split(self.W_q(queries), self.num_heads)  # (B, h, T_q, d_h)

    def _project_self(self, x: torch.Tensor) -> tuple[torch.Tensor, KVCache]:
        r"""Queries, keys and values of ``x`` from *one* matrix product with the stacked weights
        :math:`[\mathbf{W}^q; \mathbf{W}^k; \mathbf{W}^v] \in \mathbb{R}^{3d \times d}` (as
        :class:`torch.nn.MultiheadAttention` stores them): the numbers of three products, faster."""
        layers = (self.W_q, self.W_k, self.W_v)
        weight = torch.cat([layer.weight for layer in layers])  # (3d, d)
        bias = None if self.W_q.bias is None else torch.cat([layer.bias for layer in layers])  # (3d,)
        batch_size, num_steps, _ = x.shape
        qkv = F.linear(x, weight, bias).view(
            batch_size, num_steps, 3, self.num_heads, self.head_dim
        )  # (B, T, 3, h, d_h)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 x (B, h, T, d_h)
        return q, KVCache(k, v)

    def _output(self, result, return_weights: bool):
        """Heads ``(B, h, T_q, d_h)`` merged and projected by ``W_o``; the weights passed on."""
        heads, weights = result if return_weights else (result, None)  # (B, h, T_q, d_h)
        output = self.W_o(_merge(heads))  # (B, T_q, d_model)
        return (output, weights) if return_weights else output

    @torch.no_grad()
    def load_torch_weights(self, module: nn.MultiheadAttention) -> MultiHeadAttention:
        """Copy the weights of a :class:`torch.nn.MultiheadAttention` (same sizes) into this module."""
        if not isinstance(module, nn.MultiheadAttention):
            raise ValueError(f"module must be a torch.nn.MultiheadAttention, got {type(module).__name__}")
        sizes = (module.embed_dim, module.num_heads, module.kdim, module.vdim)
        ours = (self.d_model, self.num_heads, self.key_dim, self.value_dim)
        if sizes != ours:
            raise ValueError(
                f"sizes differ: torch module has (embed_dim, num_heads, kdim, vdim) = {sizes}, this one {ours}"
            )
        if module.bias_k is not None or (module.in_proj_bias is None) != (self.W_q.bias is None):
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
        return f"d_model={self.d_model}, num_heads={self.num_heads}{extra}"
