r"""Transformer building blocks: FFN, residual + LayerNorm, encoder and decoder blocks (chapter 7).

A Transformer layer (Vaswani et al., 2017) alternates two kinds of *sublayers*:

* **attention** mixes information *across positions* (multi-head attention, chapter 5);
* the **position-wise feed-forward network** transforms each position *on its own*, with the
  same weights at every position:

  .. math:: \operatorname{FFN}(\mathbf{x}) = \mathbf{W}_2 \max(0, \mathbf{W}_1\mathbf{x} + \mathbf{b}_1) + \mathbf{b}_2,

  with :math:`\mathbf{W}_1 \in \mathbb{R}^{d_{ff}\times d}` and :math:`\mathbf{W}_2 \in \mathbb{R}^{d\times d_{ff}}`.

Every sublayer :math:`F` is wrapped in a residual connection (He et al., 2016) and a layer
normalization (Ba et al., 2016), in one of two orders (:class:`AddNorm`):

.. math::

    \text{post-LN (the paper):}\quad \mathbf{x} \leftarrow \operatorname{LN}(\mathbf{x} + \operatorname{dropout}(F(\mathbf{x}))),
    \qquad
    \text{pre-LN (Xiong et al., 2020):}\quad \mathbf{x} \leftarrow \mathbf{x} + \operatorname{dropout}(F(\operatorname{LN}(\mathbf{x}))).

Pre-LN keeps an identity path from the input to the output of the whole stack and trains
stably without learning-rate warm-up; it needs one final LayerNorm after the last block (the
stacks in :mod:`d2l_attn.models.transformer` add it when ``norm_first=True``).

* :class:`SelfAttentionBlock` (alias :class:`TransformerEncoderBlock`): self-attention (padding
  mask on the keys) + FFN; with ``causal=True`` it is GPT's block and generates with a key/value
  cache (:meth:`SelfAttentionBlock.step`);
* :class:`TransformerDecoderBlock`: *causal* self-attention (position ``i`` sees ``0..i``) +
  cross-attention to the encoder outputs (the "memory", padding-masked) + FFN. For generation
  it also runs one step at a time with a key/value cache (:meth:`TransformerDecoderBlock.step`):
  the keys and values of earlier positions are kept, projected, instead of being recomputed.

Both blocks match :class:`torch.nn.TransformerEncoderLayer` / ``DecoderLayer`` (``batch_first=True``,
``activation="relu"``, either ``norm_first``) with the same weights; ``load_torch_weights``
copies them and the tests compare outputs. Attention weights are returned explicitly with
``return_weights=True``, never stored on the module. Shapes are batch-first ``(B, T, d_model)``.

``forward`` and ``step`` check their arguments; ``compute`` is the same layer without the checks,
taking a key mask already built: the stacks (the Transformer encoder, GPT, BERT, ViT) check their
inputs and build the mask once per call (:func:`key_mask`), then run every block with
:func:`run_blocks` (which calls each block as a module with the mask as ``keep``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from ._checks import heads_divide, positive_int, unit_interval
from .masking import Mask
from .multihead import KVCache, MultiHeadAttention

__all__ = [
    "PositionWiseFFN",
    "AddNorm",
    "SelfAttentionBlock",
    "TransformerEncoderBlock",
    "TransformerDecoderBlock",
    "LayerCache",
    "key_mask",
    "batch_lengths",
    "run_blocks",
]


def _check_input(x, name: str, d_model: int, steps: str = "T") -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != d_model:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must have shape (B, {steps}, d_model={d_model}), got {shape}")
    return x


# --------------------------------------------------------------------------------------------
# the two small pieces
# --------------------------------------------------------------------------------------------
class PositionWiseFFN(nn.Module):
    r"""Position-wise feed-forward network: the same two-layer MLP at every position.

    .. math:: \operatorname{FFN}(\mathbf{x}) = \mathbf{W}_2\, \operatorname{dropout}(\max(0, \mathbf{W}_1\mathbf{x} + \mathbf{b}_1)) + \mathbf{b}_2

    Input ``(B, T, d_model)`` (or any ``(..., d_model)``), output the same shape. It never mixes
    positions: changing token ``j`` changes output ``j`` only.

    Args:
        d_model: input and output size.
        d_ff: hidden size (the paper uses ``4 * d_model``).
        dropout: dropout after the activation (as :class:`torch.nn.TransformerEncoderLayer`).
        activation: ``"relu"`` (the paper), ``"gelu"`` (BERT: :math:`x\,\Phi(x)`) or ``"gelu_tanh"``
            (GPT-2's tanh approximation of GELU).
    """

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0, activation: str = "relu"):
        super().__init__()
        positive_int("d_model", d_model)
        positive_int("d_ff", d_ff)
        if activation not in ("relu", "gelu", "gelu_tanh"):
            raise ValueError(f"activation must be 'relu', 'gelu' or 'gelu_tanh', got {activation!r}")
        self.d_model, self.d_ff, self.activation = d_model, d_ff, activation
        self.dense1 = nn.Linear(d_model, d_ff)
        self.dense2 = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(unit_interval("dropout", dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() < 1 or x.shape[-1] != self.d_model:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must have shape (..., d_model={self.d_model}), got {shape}")
        hidden = self.dense1(x)  # (..., d_ff)
        if self.activation == "relu":
            hidden = F.relu(hidden)
        else:
            hidden = F.gelu(hidden, approximate="tanh" if self.activation == "gelu_tanh" else "none")
        hidden = self.dropout(hidden)
        return self.dense2(hidden)  # (..., d_model)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, d_ff={self.d_ff}, activation={self.activation!r}"


class AddNorm(nn.Module):
    r"""Residual connection + layer normalization around a sublayer :math:`F`, in either order.

    .. math::

        \text{post-LN:}\ \operatorname{LN}(\mathbf{x} + \operatorname{dropout}(F(\mathbf{x}))),
        \qquad
        \text{pre-LN:}\ \mathbf{x} + \operatorname{dropout}(F(\operatorname{LN}(\mathbf{x}))),

    where :math:`\operatorname{LN}` normalizes each position's vector over its ``d_model``
    features (mean 0, variance 1, then a learned scale and shift): one token's statistics never
    depend on other tokens, other sentences or padding -- unlike batch normalization.

    ``forward(x, sublayer)`` calls ``sublayer`` (a callable ``(B, T, d) -> (B, T, d)``) on ``x``
    or on ``LN(x)``. If the sublayer returns a tuple ``(y, *extra)`` (e.g. attention output and
    weights), the result is ``(new_x, *extra)``.

    Args:
        d_model: the normalized size.
        dropout: dropout on the sublayer's output before the addition.
        norm_first: ``False`` = post-LN (Vaswani et al., 2017), ``True`` = pre-LN.
        eps: LayerNorm's epsilon.
    """

    def __init__(self, d_model: int, dropout: float = 0.0, norm_first: bool = False, eps: float = 1e-5):
        super().__init__()
        positive_int("d_model", d_model)
        self.d_model, self.norm_first = d_model, bool(norm_first)
        self.norm = nn.LayerNorm(d_model, eps=eps)
        self.dropout = nn.Dropout(unit_interval("dropout", dropout))

    def forward(self, x: torch.Tensor, sublayer: Callable) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if not callable(sublayer):
            raise ValueError(f"sublayer must be a callable (B, T, d) -> (B, T, d), got {type(sublayer).__name__}")
        out = sublayer(self.norm(x) if self.norm_first else x)
        extra: tuple = ()
        if isinstance(out, tuple):
            out, *extra = out
        if out.shape != x.shape:
            raise ValueError(f"the sublayer must keep the shape {tuple(x.shape)}, got {tuple(out.shape)}")
        y = x + self.dropout(out)  # (B, T, d): the residual connection
        if not self.norm_first:
            y = self.norm(y)
        return (y, *extra) if extra else y

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, norm_first={self.norm_first}"


# --------------------------------------------------------------------------------------------
# copying torch.nn layers' weights (the tests compare our blocks with torch's)
# --------------------------------------------------------------------------------------------
def _copy_parameters(pairs) -> None:
    for ours, theirs in pairs:
        ours.weight.copy_(theirs.weight)
        ours.bias.copy_(theirs.bias)


def _check_torch_layer(layer, cls, block) -> None:
    if not isinstance(layer, cls):
        raise ValueError(f"layer must be a {cls.__module__}.{cls.__name__}, got {type(layer).__name__}")
    if layer.norm_first != block.norm_first:
        raise ValueError(f"norm_first differs: torch layer {layer.norm_first}, this block {block.norm_first}")
    if layer.linear1.out_features != block.ffn.d_ff:
        raise ValueError(f"d_ff differs: torch layer {layer.linear1.out_features}, this block {block.ffn.d_ff}")
    act = getattr(layer, "activation", None)
    name = {F.relu: "relu", F.gelu: "gelu"}.get(act, type(act).__name__.lower())
    if name != block.ffn.activation:
        raise ValueError(f"activation differs: torch layer {name}, this block {block.ffn.activation}")


def _with_weights(out, return_weights: bool):
    """Attention sublayers return ``(output, weights or None)`` so that :class:`AddNorm` passes the weights on."""
    return out if return_weights else (out, None)


# --------------------------------------------------------------------------------------------
# self-attention block: the encoder block of the Transformer, and the block of GPT, BERT, ViT
# --------------------------------------------------------------------------------------------
class SelfAttentionBlock(nn.Module):
    r"""Multi-head self-attention and an FFN, each with residual + LayerNorm.

    .. math::

        \mathbf{Y} = \operatorname{AddNorm}(\mathbf{X}, \operatorname{MultiHead}(\cdot, \cdot, \cdot)),
        \qquad
        \mathbf{Z} = \operatorname{AddNorm}(\mathbf{Y}, \operatorname{FFN}).

    With ``causal=False`` this is the Transformer's **encoder block** (also BERT's and ViT's):
    every position sees every real position. With ``causal=True`` it is **GPT's block**: position
    ``i`` sees ``0..i`` only, and :meth:`step` generates with a key/value cache.

    ``forward(x (B, T, d), valid_lens=None, return_weights=False)``: ``valid_lens (B,)`` marks the
    real tokens; padded positions are never attended to (their own outputs are computed but
    meaningless). Returns ``(B, T, d)`` or ``(output, weights (B, h, T, T))``.

    Args:
        d_model, num_heads, d_ff: sizes (``d_model`` divisible by ``num_heads``).
        dropout: on attention weights, after the FFN activation, and on each sublayer output.
        norm_first: pre-LN instead of the paper's post-LN.
        activation: ``"relu"`` or ``"gelu"`` in the FFN.
        fused: fused attention (:func:`torch.nn.functional.scaled_dot_product_attention`) when
            the weights are not requested.
        causal: each position attends to itself and earlier positions only.
        eps: the LayerNorms' epsilon (``1e-5`` as torch; BERT uses ``1e-12``, chapter 9).
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        d_ff: int,
        dropout: float = 0.0,
        norm_first: bool = False,
        activation: str = "relu",
        fused: bool = True,
        causal: bool = False,
        eps: float = 1e-5,
    ):
        super().__init__()
        heads_divide(d_model, num_heads)
        dropout = unit_interval("dropout", dropout)
        self.d_model, self.num_heads, self.norm_first, self.causal = d_model, num_heads, bool(norm_first), bool(causal)
        self.attention = MultiHeadAttention(d_model, num_heads, dropout, fused=fused)
        self.addnorm1 = AddNorm(d_model, dropout, norm_first, eps)
        self.ffn = PositionWiseFFN(d_model, d_ff, dropout, activation)
        self.addnorm2 = AddNorm(d_model, dropout, norm_first, eps)

    def forward(
        self, x: torch.Tensor, valid_lens=None, return_weights: bool = False, *, keep: torch.Tensor | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``x (B, T, d_model)`` -> ``(B, T, d_model)`` (and the weights ``(B, h, T, T)``).

        Padding is given either as ``valid_lens (B,)`` (checked here) or, by a stack that checked
        its lengths once for all its blocks, as ``keep``, a key mask from :func:`key_mask` (not
        checked again). Either way the call goes through the module, so forward hooks fire.
        """
        _check_input(x, "x", self.d_model)
        if keep is not None:
            if valid_lens is not None:
                raise ValueError("give valid_lens or keep (a mask from blocks.key_mask), not both")
            return self.compute(x, keep, return_weights)

        def self_attend(h):  # the checked multi-head attention: x may come from anywhere
            return self.attention(h, h, h, valid_lens=valid_lens, return_weights=return_weights, is_causal=self.causal)

        return self._sublayers(x, self_attend, return_weights)

    def compute(
        self, x: torch.Tensor, keep: torch.Tensor | None = None, return_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward` with a key mask from :meth:`MultiHeadAttention.mask <d2l_attn.multihead.MultiHeadAttention.mask>`
        (or ``None``) and no argument checks (and, called directly, no module hooks)."""

        def self_attend(h):
            return self.attention.self_attend(h, keep, causal=self.causal, return_weights=return_weights)

        return self._sublayers(x, self_attend, return_weights)

    def step(
        self, x: torch.Tensor, cache: KVCache | None = None, return_weights: bool = False
    ) -> tuple[torch.Tensor, KVCache] | tuple[torch.Tensor, KVCache, torch.Tensor]:
        r"""Causal blocks only: process ``T_new`` more positions given the :class:`~d2l_attn.multihead.KVCache`
        of the earlier ``t`` (``None`` at the start).

        Feeding a sequence in pieces gives the same outputs as :meth:`forward` on all of it (tested).
        Returns ``(out (B, T_new, d), new_cache)`` or ``(out, new_cache, weights (B, h, T_new, t + T_new))``.
        """
        if not self.causal:
            raise ValueError("step() needs a causal block (causal=True): a bidirectional block sees future positions")
        _check_input(x, "x", self.d_model, "T_new")
        holder = {}

        def self_attend(h):
            holder["cache"] = kv = self.attention.extend(cache, h)  # (B, h, t + T_new, d_h) x 2
            return self.attention.attend_masked(h, kv, causal=True, return_weights=return_weights)

        out = self._sublayers(x, self_attend, return_weights)  # (B, T_new, d) [, weights]
        return (out[0], holder["cache"], out[1]) if return_weights else (out, holder["cache"])

    def _sublayers(self, x: torch.Tensor, self_attend: Callable, return_weights: bool):
        """Self-attention (``self_attend(h)``) and the FFN, each with residual + LayerNorm."""
        y, weights = self.addnorm1(x, lambda h: _with_weights(self_attend(h), return_weights))  # (B, T, d)
        z = self.addnorm2(y, self.ffn)  # (B, T, d)
        return (z, weights) if return_weights else z

    @torch.no_grad()
    def load_torch_weights(self, layer: nn.TransformerEncoderLayer) -> SelfAttentionBlock:
        """Copy the weights of a :class:`torch.nn.TransformerEncoderLayer` with the same sizes."""
        _check_torch_layer(layer, nn.TransformerEncoderLayer, self)
        self.attention.load_torch_weights(layer.self_attn)
        _copy_parameters(
            [
                (self.ffn.dense1, layer.linear1),
                (self.ffn.dense2, layer.linear2),
                (self.addnorm1.norm, layer.norm1),
                (self.addnorm2.norm, layer.norm2),
            ]
        )
        return self

    def extra_repr(self) -> str:
        return f"norm_first={self.norm_first}, causal={self.causal}"


#: The Transformer's encoder block is the bidirectional self-attention block.
TransformerEncoderBlock = SelfAttentionBlock


# --------------------------------------------------------------------------------------------
# decoder block
# --------------------------------------------------------------------------------------------
class LayerCache(NamedTuple):
    """What one decoder block keeps between generation steps.

    ``self_attn``: the :class:`~d2l_attn.multihead.KVCache` of every target position decoded so far,
    ``(B, h, t, d_h)``; ``memory``: the projected keys/values of the encoder outputs,
    ``(B, h, T_src, d_h)``, computed once per sentence.
    """

    self_attn: KVCache
    memory: KVCache

    def index_select(self, index: torch.Tensor) -> LayerCache:
        """Select/repeat batch entries (beam search)."""
        return LayerCache(self.self_attn.index_select(index), self.memory.index_select(index))


class TransformerDecoderBlock(nn.Module):
    r"""One decoder layer: causal self-attention, cross-attention to the encoder, FFN.

    .. math::

        \mathbf{Y} = \operatorname{AddNorm}(\mathbf{X}, \operatorname{MultiHead}_{\text{causal}}(\mathbf{X}, \mathbf{X}, \mathbf{X})),\quad
        \mathbf{Z} = \operatorname{AddNorm}(\mathbf{Y}, \operatorname{MultiHead}(\mathbf{Y}, \mathbf{M}, \mathbf{M})),\quad
        \operatorname{AddNorm}(\mathbf{Z}, \operatorname{FFN}),

    where :math:`\mathbf{M}` are the encoder outputs (the memory). In the causal self-attention
    position :math:`i` attends to positions :math:`j \le i` only, so in training (teacher forcing,
    all positions at once) no position sees the tokens it has to predict.

    ``forward(x (B, T', d), memory (B, T, d), memory_valid_lens=None, return_weights=False)``
    -> ``(B, T', d)`` or ``(output, self_weights (B, h, T', T'), cross_weights (B, h, T', T))``.

    :meth:`step` runs the same computation for new positions only, with a :class:`LayerCache`.
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        d_ff: int,
        dropout: float = 0.0,
        norm_first: bool = False,
        activation: str = "relu",
        fused: bool = True,
    ):
        super().__init__()
        heads_divide(d_model, num_heads)
        dropout = unit_interval("dropout", dropout)
        self.d_model, self.num_heads, self.norm_first = d_model, num_heads, bool(norm_first)
        self.self_attention = MultiHeadAttention(d_model, num_heads, dropout, fused=fused)
        self.addnorm1 = AddNorm(d_model, dropout, norm_first)
        self.cross_attention = MultiHeadAttention(d_model, num_heads, dropout, fused=fused)
        self.addnorm2 = AddNorm(d_model, dropout, norm_first)
        self.ffn = PositionWiseFFN(d_model, d_ff, dropout, activation)
        self.addnorm3 = AddNorm(d_model, dropout, norm_first)

    def forward(
        self, x: torch.Tensor, memory: torch.Tensor, memory_valid_lens=None, return_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        _check_input(x, "x", self.d_model, "T'")
        _check_input(memory, "memory", self.d_model, "T")
        if memory.shape[0] != x.shape[0]:
            raise ValueError(f"memory must have batch size {x.shape[0]} like x, got {memory.shape[0]}")

        def self_attend(h):  # causal: position i sees 0..i (SDPA's is_causal flag on the fused path)
            return self.self_attention(h, h, h, return_weights=return_weights, is_causal=True)

        def cross_attend(h):  # the checked multi-head attention: memory may come from anywhere
            return self.cross_attention(h, memory, memory, valid_lens=memory_valid_lens, return_weights=return_weights)

        return self._sublayers(x, self_attend, cross_attend, return_weights)

    def compute(
        self,
        x: torch.Tensor,
        memory: KVCache,
        memory_keep: torch.Tensor | None = None,
        self_cache: KVCache | None = None,
        return_weights: bool = False,
    ) -> (
        torch.Tensor
        | tuple[torch.Tensor, torch.Tensor, torch.Tensor]
        | tuple[torch.Tensor, LayerCache]
        | tuple[torch.Tensor, LayerCache, torch.Tensor, torch.Tensor]
    ):
        """The three sublayers without argument checks (a stack checks its inputs once, then calls this per block).

        ``memory``: the projected encoder outputs (``cross_attention.project(memory, memory)``);
        ``memory_keep``: their key mask (:meth:`MultiHeadAttention.mask
        <d2l_attn.multihead.MultiHeadAttention.mask>` or :func:`d2l_attn.masking.key_padding_mask`),
        or ``None``; ``self_cache``: the earlier positions' keys and values, ``None`` in training
        (teacher forcing). Returns what :meth:`forward` returns, or with a ``self_cache`` what
        :meth:`step` returns.
        """
        holder = {}

        def self_attend(h):
            if self_cache is None:  # teacher forcing: the three projections as one product
                return self.self_attention.self_attend(h, causal=True, return_weights=return_weights)
            holder["cache"] = kv = self.self_attention.extend(self_cache, h)  # (B, h, t + T_new, d_h) x 2
            return self.self_attention.attend_masked(h, kv, causal=True, return_weights=return_weights)

        def cross_attend(h):
            return self.cross_attention.attend_masked(h, memory, memory_keep, return_weights=return_weights)

        out = self._sublayers(x, self_attend, cross_attend, return_weights)
        if self_cache is None:
            return out
        new_cache = LayerCache(holder["cache"], memory)
        return (out[0], new_cache, *out[1:]) if return_weights else (out, new_cache)

    def _sublayers(self, x: torch.Tensor, self_attend: Callable, cross_attend: Callable, return_weights: bool):
        """Causal self-attention, cross-attention and the FFN, each with residual + LayerNorm."""
        y, w_self = self.addnorm1(x, lambda h: _with_weights(self_attend(h), return_weights))  # (B, T', d)
        z, w_cross = self.addnorm2(y, lambda h: _with_weights(cross_attend(h), return_weights))  # (B, T', d)
        out = self.addnorm3(z, self.ffn)  # (B, T', d)
        return (out, w_self, w_cross) if return_weights else out

    # -- incremental decoding -----------------------------------------------------------------
    def init_cache(self, memory: torch.Tensor) -> LayerCache:
        """Empty self-attention cache and the projected memory keys/values for one sentence batch."""
        _check_input(memory, "memory", self.d_model, "T")
        head_dim = self.d_model // self.num_heads
        empty = memory.new_zeros(memory.shape[0], self.num_heads, 0, head_dim)  # (B, h, 0, d_h)
        return LayerCache(KVCache(empty, empty), self.cross_attention.project(memory, memory))

    def step(
        self, x: torch.Tensor, cache: LayerCache, memory_valid_lens=None, return_weights: bool = False
    ) -> tuple[torch.Tensor, LayerCache] | tuple[torch.Tensor, LayerCache, torch.Tensor, torch.Tensor]:
        r"""Process the next ``T_new`` target positions given the cache of the earlier ``t``.

        The new positions' keys and values are projected once and appended to the cache; each new
        query attends to all cached positions and to new positions up to itself
        (:func:`d2l_attn.masking.causal_mask` with ``T_k = t + T_new``). Feeding a sequence one
        token at a time gives the same outputs as :meth:`forward` on the whole sequence.

        Returns ``(out (B, T_new, d), new_cache)`` or, with ``return_weights``,
        ``(out, new_cache, self_weights (B, h, T_new, t + T_new), cross_weights (B, h, T_new, T))``.
        """
        _check_input(x, "x", self.d_model, "T_new")
        if not isinstance(cache, LayerCache):
            raise ValueError(f"cache must be a LayerCache (see init_cache), got {type(cache).__name__}")
        holder = {}

        def self_attend(h):
            holder["cache"] = kv = self.self_attention.extend(cache.self_attn, h)  # (B, h, t + T_new, d_h) x 2
            return self.self_attention.attend(h, kv, return_weights=return_weights, is_causal=True)

        def cross_attend(h):
            return self.cross_attention.attend(
                h, cache.memory, valid_lens=memory_valid_lens, return_weights=return_weights
            )

        out = self._sublayers(x, self_attend, cross_attend, return_weights)
        new_cache = LayerCache(holder["cache"], cache.memory)
        return (out[0], new_cache, *out[1:]) if return_weights else (out, new_cache)

    @torch.no_grad()
    def load_torch_weights(self, layer: nn.TransformerDecoderLayer) -> TransformerDecoderBlock:
        """Copy the weights of a :class:`torch.nn.TransformerDecoderLayer` with the same sizes."""
        _check_torch_layer(layer, nn.TransformerDecoderLayer, self)
        self.self_attention.load_torch_weights(layer.self_attn)
        self.cross_attention.load_torch_weights(layer.multihead_attn)
        _copy_parameters(
            [
                (self.ffn.dense1, layer.linear1),
                (self.ffn.dense2, layer.linear2),
                (self.addnorm1.norm, layer.norm1),
                (self.addnorm2.norm, layer.norm2),
                (self.addnorm3.norm, layer.norm3),
            ]
        )
        return self

    def extra_repr(self) -> str:
        return f"norm_first={self.norm_first}"


def key_mask(valid_lens, x: torch.Tensor, name: str = "valid_lens") -> torch.Tensor | None:
    """The keep mask ``(B, 1, 1, T)`` that every block of a stack shares, or ``None``
    (``Mask.from_lengths(valid_lens, x, name).keep``, kept for callers of the old name)."""
    return Mask.from_lengths(valid_lens, x, name).keep


def batch_lengths(valid_lens, x: torch.Tensor, name: str = "valid_lens") -> torch.Tensor:
    """Lengths ``(B,)`` checked against ``x (B, T, ...)`` (``Mask.from_lengths(...).lengths``)."""
    if valid_lens is None:
        raise ValueError(f"{name} must be a (B,) = ({x.shape[0]},) tensor of lengths, got None")
    return Mask.from_lengths(valid_lens, x, name).lengths


def run_blocks(
    blocks: nn.ModuleList, x: torch.Tensor, keep: torch.Tensor | None = None, return_weights: bool = False
) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
    """Run self-attention blocks in order, all with one key mask from :func:`key_mask` (or ``None``).

    Each block is called as a module (forward hooks fire) with the mask as ``keep``, so lengths
    are checked once per stack, not once per block. Returns ``x (B, T, d)`` after the last block,
    or ``(x, [weights (B, h, T, T) per block])``.
    """
    weights = []
    for block in blocks:
        if return_weights:
            x, w = block(x, return_weights=True, keep=keep)  # (B, T, d), (B, h, T, T)
            weights.append(w)
        else:
            x = block(x, keep=keep)  # (B, T, d)
    return (x, weights) if return_weights else x
