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

Every block reaches its attention through ``MultiHeadAttention.forward`` only. A stack (the
Transformer encoder and decoder, GPT, BERT, ViT) builds one :class:`~d2l_attn.masking.Mask` per
call at its front door (the only host read of the lengths) and calls each block as a module with
``mask=`` (:func:`run_blocks`), so forward hooks fire on every block.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from ._checks import heads_divide, positive_int, unit_interval
from .masking import Mask
from .multihead import KVCache, MultiHeadAttention, MultiHeadOutput

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


_CAUSAL = Mask.causal()


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
        y = self.residual(x, out)
        return (y, *extra) if extra else y

    def residual(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """``x + dropout(out)``, then LayerNorm for post-LN: the sublayer's output ``out`` already computed."""
        y = x + self.dropout(out)  # (B, T, d): the residual connection
        return y if self.norm_first else self.norm(y)

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


def _block_mask(valid_lens, mask: Mask | None, x: torch.Tensor, name: str, causal: bool = False) -> Mask | None:
    """A direct call's ``valid_lens`` (checked here, masked keys zeroed) or a stack's ``mask``; plus causality."""
    if valid_lens is not None:
        if mask is not None:
            raise ValueError(f"give {name} or mask (a d2l_attn.masking.Mask), not both")
        mask = Mask.from_lengths(valid_lens, x, name, sanitize=True)
    elif mask is not None and not isinstance(mask, Mask):
        raise ValueError(f"mask must be a d2l_attn.masking.Mask, got {type(mask).__name__}")
    if causal and (mask is None or not mask.is_causal):
        mask = Mask.causal() if mask is None else dataclasses.replace(mask, is_causal=True)
    return mask


def _attention_sublayer(addnorm: AddNorm, x: torch.Tensor, attend: Callable[[torch.Tensor], MultiHeadOutput]):
    """``(new x, weights, cache)``: residual + LayerNorm around one attention call."""
    out = attend(addnorm.norm(x) if addnorm.norm_first else x)  # MultiHeadOutput
    return addnorm.residual(x, out.output), out.weights, out.cache


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
        self, x: torch.Tensor, valid_lens=None, return_weights: bool = False, *, mask: Mask | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``x (B, T, d_model)`` -> ``(B, T, d_model)`` (and the weights ``(B, h, T, T)``).

        Padding is given either as ``valid_lens (B,)`` (checked here) or, by a stack that built
        one :class:`~d2l_attn.masking.Mask` for all its blocks, as ``mask`` (not checked again).
        """
        _check_input(x, "x", self.d_model)
        mask = _block_mask(valid_lens, mask, x, "valid_lens", self.causal)
        y, weights, _ = _attention_sublayer(
            self.addnorm1, x, lambda h: self.attention(h, mask=mask, need_weights=return_weights)
        )
        z = self.addnorm2(y, self.ffn)  # (B, T, d)
        return (z, weights) if return_weights else z

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
        cache = self.attention.empty_cache(x) if cache is None else cache
        y, weights, cache = _attention_sublayer(
            self.addnorm1, x, lambda h: self.attention(h, mask=_CAUSAL, cache=cache, need_weights=return_weights)
        )
        z = self.addnorm2(y, self.ffn)  # (B, T_new, d)
        return (z, cache, weights) if return_weights else (z, cache)

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
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        memory_valid_lens=None,
        return_weights: bool = False,
        *,
        memory_mask: Mask | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Teacher forcing: ``memory_valid_lens (B,)`` (checked here) or a stack's ``memory_mask``."""
        _check_input(x, "x", self.d_model, "T'")
        _check_input(memory, "memory", self.d_model, "T")
        if memory.shape[0] != x.shape[0]:
            raise ValueError(f"memory must have batch size {x.shape[0]} like x, got {memory.shape[0]}")
        memory_mask = _block_mask(memory_valid_lens, memory_mask, memory, "memory_valid_lens")
        out, _, w_self, w_cross = self._sublayers(x, memory, memory_mask, None, return_weights)
        return (out, w_self, w_cross) if return_weights else out

    def _sublayers(self, x, memory, memory_mask: Mask | None, self_cache: KVCache | None, need_weights: bool):
        """Causal self-attention, cross-attention and the FFN, each with residual + LayerNorm:
        ``(out, self_cache, self_weights, cross_weights)``."""
        y, w_self, self_cache = _attention_sublayer(
            self.addnorm1,
            x,
            lambda h: self.self_attention(h, mask=_CAUSAL, cache=self_cache, need_weights=need_weights),
        )  # (B, T', d)
        z, w_cross, _ = _attention_sublayer(
            self.addnorm2, y, lambda h: self.cross_attention(h, memory, mask=memory_mask, need_weights=need_weights)
        )  # (B, T', d)
        return self.addnorm3(z, self.ffn), self_cache, w_self, w_cross  # (B, T', d)

    # -- incremental decoding -----------------------------------------------------------------
    def init_cache(self, memory: torch.Tensor) -> LayerCache:
        """Empty self-attention cache and the projected memory keys/values for one sentence batch."""
        _check_input(memory, "memory", self.d_model, "T")
        return LayerCache(self.self_attention.empty_cache(memory), self.cross_attention.project(memory))

    def step(
        self,
        x: torch.Tensor,
        cache: LayerCache,
        memory_valid_lens=None,
        return_weights: bool = False,
        *,
        memory_mask: Mask | None = None,
    ) -> tuple[torch.Tensor, LayerCache] | tuple[torch.Tensor, LayerCache, torch.Tensor, torch.Tensor]:
        r"""Process the next ``T_new`` target positions given the cache of the earlier ``t``.

        The new positions' keys and values are projected once and appended to the cache; each new
        query attends to all cached positions and to new positions up to itself
        (:func:`d2l_attn.masking.causal_mask` with ``T_k = t + T_new``). Feeding a sequence one
        token at a time gives the same outputs as :meth:`forward` on the whole sequence.
        ``memory_valid_lens`` (checked here) or a stack's ``memory_mask`` masks the source.

        Returns ``(out (B, T_new, d), new_cache)`` or, with ``return_weights``,
        ``(out, new_cache, self_weights (B, h, T_new, t + T_new), cross_weights (B, h, T_new, T))``.
        """
        _check_input(x, "x", self.d_model, "T_new")
        if not isinstance(cache, LayerCache):
            raise ValueError(f"cache must be a LayerCache (see init_cache), got {type(cache).__name__}")
        if memory_valid_lens is not None:
            k = cache.memory.k
            fake = k.new_empty(k.shape[0], k.shape[2], 0)  # (B, T, 0): the sizes and device only
            memory_mask = _block_mask(memory_valid_lens, memory_mask, fake, "memory_valid_lens")
        out, self_cache, w_self, w_cross = self._sublayers(
            x, cache.memory, memory_mask, cache.self_attn, return_weights
        )
        new_cache = LayerCache(self_cache, cache.memory)
        return (out, new_cache, w_self, w_cross) if return_weights else (out, new_cache)

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
    blocks: nn.ModuleList, x: torch.Tensor, mask: Mask | None = None, return_weights: bool = False
) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
    """Run self-attention blocks in order, all with one :class:`~d2l_attn.masking.Mask` (or ``None``).

    Each block is called as a module (forward hooks fire) with ``mask=``, so lengths are checked
    once per stack call, not once per block. Returns ``x (B, T, d)`` after the last block,
    or ``(x, [weights (B, h, T, T) per block])``.
    """
    weights = []
    for block in blocks:
        if return_weights:
            x, w = block(x, return_weights=True, mask=mask)  # (B, T, d), (B, h, T, T)
            weights.append(w)
        else:
            x = block(x, mask=mask)  # (B, T, d)
    return (x, weights) if return_weights else x
