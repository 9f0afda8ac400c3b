r"""Transformer building blocks: FFN, residual + LayerNorm, one block for every stack (chapter 7).

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

One class, :class:`Block`, is every layer of every stack: it *receives* its parts (an attention
module, an FFN and, for the Transformer decoder, a cross-attention module), following the
Annotated Transformer's ``EncoderLayer(size, self_attn, feed_forward, dropout)``:

* the Transformer's **encoder block** (also BERT's and ViT's): self-attention + FFN;
* **GPT's block**: the same with ``causal=True`` (position ``i`` sees ``0..i``);
* the Transformer's **decoder block**: causal self-attention, cross-attention to the encoder
  outputs (the "memory") and the FFN.

:meth:`Block.build` makes the parts from sizes (GQA with ``num_kv_heads``, RoPE with ``rotary``,
ALiBi or another :class:`~d2l_attn.scoring.AttentionFn` with ``attention_kernel``). ``forward(x,
mask, memory, memory_mask, cache, need_weights)`` returns a :class:`BlockOutput` ``(x, weights,
cache)``; incremental decoding runs through the same ``forward`` with a cache (a
:class:`~d2l_attn.multihead.KVCache`, or a :class:`LayerCache` with the projected memory for a
block with cross-attention): cache in, cache out.

Blocks match :class:`torch.nn.TransformerEncoderLayer` / ``DecoderLayer`` (``batch_first=True``,
``activation="relu"``, either ``norm_first``) with the same weights; :meth:`Block.load_torch_weights`
copies them and the tests compare outputs. Shapes are batch-first ``(B, T, d_model)``.

A stack (the Transformer encoder and decoder, GPT, BERT, ViT) builds one
:class:`~d2l_attn.masking.Mask` per call at its front door (the only host read of the lengths)
and calls each block as a module, so forward hooks fire on every block. A reader calling a block
directly passes ``Mask.of(valid_lens)``.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from ._checks import heads_divide, positive_int, unit_interval
from .masking import Mask
from .multihead import KVCache, MultiHeadAttention

__all__ = ["PositionWiseFFN", "AddNorm", "Block", "BlockOutput", "LayerCache"]


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

    Two steps around the sublayer, both on tensors: ``h = addnorm.prenorm(x)`` is the sublayer's
    input (``LN(x)`` for pre-LN, ``x`` itself for post-LN); ``addnorm(x, F(h))`` adds the
    sublayer's output to the residual stream (and normalizes, for post-LN).

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

    def prenorm(self, x: torch.Tensor) -> torch.Tensor:
        """The sublayer's input: ``LN(x)`` for pre-LN, ``x`` for post-LN."""
        return self.norm(x) if self.norm_first else x

    def forward(self, x: torch.Tensor, sublayer_out: torch.Tensor) -> torch.Tensor:
        """``x + dropout(sublayer_out)``, then LayerNorm for post-LN; both ``(B, T, d)``."""
        if not isinstance(sublayer_out, torch.Tensor) or sublayer_out.shape != x.shape:
            shape = tuple(sublayer_out.shape) if isinstance(sublayer_out, torch.Tensor) else type(sublayer_out).__name__
            raise ValueError(f"sublayer_out must be a tensor of the shape of x {tuple(x.shape)}, got {shape}")
        y = x + self.dropout(sublayer_out)  # (B, T, d): the residual connection
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


_OLD_DECODER_NAMES = (("self_attention.", "attention."), ("addnorm2.", "cross_addnorm."), ("addnorm3.", "addnorm2."))


def _load_old_decoder_names(state_dict, prefix: str, *args) -> None:
    """Load checkpoints of the former ``TransformerDecoderBlock`` (``self_attention``, ``addnorm1..3``)."""
    if prefix + "addnorm3.norm.weight" not in state_dict:
        return
    for old, new in _OLD_DECODER_NAMES:  # in this order: addnorm2 is free before addnorm3 takes its name
        for key in [k for k in state_dict if k.startswith(prefix + old)]:
            state_dict[prefix + new + key[len(prefix + old) :]] = state_dict.pop(key)


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


# --------------------------------------------------------------------------------------------
# the block
# --------------------------------------------------------------------------------------------
class LayerCache(NamedTuple):
    """What a block with cross-attention keeps between generation steps.

    ``self_attn``: the :class:`~d2l_attn.multihead.KVCache` of every target position decoded so far,
    ``(B, h, t, d_h)``; ``memory``: the projected keys/values of the encoder outputs,
    ``(B, h, T_src, d_h)``, computed once per sentence (``block.cross_attention.project(memory)``).
    """

    self_attn: KVCache
    memory: KVCache

    def index_select(self, index: torch.Tensor) -> LayerCache:
        """Select/repeat batch entries (beam search)."""
        return LayerCache(self.self_attn.index_select(index), self.memory.index_select(index))


class BlockOutput(NamedTuple):
    """What :meth:`Block.forward` returns, always these three fields.

    * ``x``: the block's output ``(B, T, d_model)``;
    * ``weights``: ``None`` unless ``need_weights``; then the self-attention weights
      ``(B, h, T, T_k)`` for a block without cross-attention, and the pair ``(self (B, h, T, T_k),
      cross (B, h, T, T_src))`` for a block with one (it depends on the block, never on a flag);
    * ``cache``: ``None`` without a cache in; else the cache with the new positions appended
      (a :class:`~d2l_attn.multihead.KVCache`, or a :class:`LayerCache`).
    """

    x: torch.Tensor
    weights: torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None
    cache: KVCache | LayerCache | None


class Block(nn.Module):
    r"""One Transformer layer: self-attention, optional cross-attention, FFN, each with residual + LayerNorm.

    .. math::

        \mathbf{Y} = \operatorname{AddNorm}(\mathbf{X}, \operatorname{MultiHead}(\mathbf{X}, \mathbf{X}, \mathbf{X})),\quad
        [\mathbf{Y} \leftarrow \operatorname{AddNorm}(\mathbf{Y}, \operatorname{MultiHead}(\mathbf{Y}, \mathbf{M}, \mathbf{M}))],\quad
        \mathbf{Z} = \operatorname{AddNorm}(\mathbf{Y}, \operatorname{FFN}),

    where :math:`\mathbf{M}` are the encoder outputs (the memory) of a decoder block.

    Args:
        attention: the self-attention, a :class:`~d2l_attn.multihead.MultiHeadAttention`.
        ffn: a :class:`PositionWiseFFN` (``ffn.d_model`` = ``attention.d_model``).
        cross_attention: attention to the memory (the Transformer decoder), or ``None``.
        norm_first: pre-LN instead of the paper's post-LN.
        dropout: on each sublayer's output before the residual addition.
        eps: the LayerNorms' epsilon (``1e-5`` as torch; BERT uses ``1e-12``, chapter 9).
        causal: the self-attention is causal whatever ``mask`` says (GPT, the decoder): a direct
            call or an ``nn.Sequential`` cannot drop it.

    Submodules (their names are the state-dict keys): ``attention``, ``addnorm1``,
    [``cross_attention``, ``cross_addnorm``], ``ffn``, ``addnorm2``.
    """

    def __init__(
        self,
        attention: MultiHeadAttention,
        ffn: PositionWiseFFN,
        *,
        cross_attention: MultiHeadAttention | None = None,
        norm_first: bool = False,
        dropout: float = 0.0,
        eps: float = 1e-5,
        causal: bool = False,
    ):
        super().__init__()
        if not isinstance(attention, MultiHeadAttention):
            raise ValueError(f"attention must be a MultiHeadAttention, got {type(attention).__name__}")
        if not isinstance(ffn, PositionWiseFFN) or ffn.d_model != attention.d_model:
            got = f"d_model={ffn.d_model}" if isinstance(ffn, PositionWiseFFN) else type(ffn).__name__
            raise ValueError(f"ffn must be a PositionWiseFFN with d_model={attention.d_model}, got {got}")
        if cross_attention is not None and (
            not isinstance(cross_attention, MultiHeadAttention) or cross_attention.d_model != attention.d_model
        ):
            raise ValueError(
                f"cross_attention must be None or a MultiHeadAttention with d_model={attention.d_model}, "
                f"got {cross_attention!r}"
            )
        dropout = unit_interval("dropout", dropout)
        self.d_model, self.num_heads = attention.d_model, attention.num_heads
        self.norm_first, self.causal = bool(norm_first), bool(causal)
        self.attention = attention
        self.addnorm1 = AddNorm(self.d_model, dropout, norm_first, eps)
        if cross_attention is not None:
            self.cross_attention = cross_attention
            self.cross_addnorm = AddNorm(self.d_model, dropout, norm_first, eps)
            self._register_load_state_dict_pre_hook(_load_old_decoder_names)
        else:
            self.cross_attention = None
        self.ffn = ffn
        self.addnorm2 = AddNorm(self.d_model, dropout, norm_first, eps)

    @classmethod
    def build(
        cls,
        d_model: int,
        num_heads: int,
        d_ff: int,
        dropout: float = 0.0,
        *,
        norm_first: bool = False,
        activation: str = "relu",
        cross: bool = False,
        causal: bool | None = None,
        fused: bool = True,
        eps: float = 1e-5,
        num_kv_heads: int | None = None,
        rotary: nn.Module | None = None,
        attention_kernel: nn.Module | None = None,
    ) -> Block:
        """A block with its parts made from sizes (the models' convenience).

        ``cross=True`` adds cross-attention (the Transformer decoder; ``causal`` defaults to
        ``cross``). ``num_kv_heads`` (GQA/MQA), ``rotary`` (RoPE) and ``attention_kernel`` (an
        :class:`~d2l_attn.scoring.AttentionFn`, e.g. one with ALiBi's ``score_mod``) go to the
        self-attention; ``dropout`` everywhere (attention weights, FFN hidden, residual branches).
        """
        heads_divide(d_model, num_heads)
        dropout = unit_interval("dropout", dropout)
        attention = MultiHeadAttention(
            d_model,
            num_heads,
            dropout,
            fused=fused,
            attention=attention_kernel,
            num_kv_heads=num_kv_heads,
            rotary=rotary,
        )
        cross_attention = MultiHeadAttention(d_model, num_heads, dropout, fused=fused) if cross else None
        ffn = PositionWiseFFN(d_model, d_ff, dropout, activation)
        causal = bool(cross) if causal is None else causal
        return cls(
            attention,
            ffn,
            cross_attention=cross_attention,
            norm_first=norm_first,
            dropout=dropout,
            eps=eps,
            causal=causal,
        )

    def forward(
        self,
        x: torch.Tensor,
        mask: Mask | None = None,
        memory: torch.Tensor | None = None,
        memory_mask: Mask | None = None,
        cache: KVCache | LayerCache | None = None,
        need_weights: bool = False,
    ) -> BlockOutput:
        """``x (B, T, d_model)`` -> :class:`BlockOutput` ``(x, weights, cache)``.

        ``mask``: a :class:`~d2l_attn.masking.Mask` for the self-attention (a stack's, built once
        per call, or ``Mask.of(valid_lens)`` in a direct call). ``memory (B, T_src, d_model)`` and
        ``memory_mask``: the encoder outputs and their mask, for a block with cross-attention.
        ``cache``: the earlier positions (a ``KVCache``, or for a block with cross-attention a
        :class:`LayerCache` that also holds the projected memory: then give no ``memory``);
        ``x`` holds the next ``T`` positions and the result equals a full forward (tested).
        """
        _check_input(x, "x", self.d_model)
        if mask is not None and not isinstance(mask, Mask):
            raise ValueError(f"mask must be a d2l_attn.masking.Mask (e.g. Mask.of(valid_lens)) or None, got {mask!r}")
        if self.causal and (mask is None or not mask.is_causal):
            mask = Mask.causal() if mask is None else dataclasses.replace(mask, is_causal=True)
        self_cache, kv = cache, memory
        if self.cross_attention is None:
            if memory is not None or memory_mask is not None:
                raise ValueError("memory / memory_mask are for a block with cross_attention; this block has none")
        elif cache is not None:
            if not isinstance(cache, LayerCache):
                raise ValueError(f"cache must be a LayerCache (self-attention cache, projected memory), got {cache!r}")
            if memory is not None:
                raise ValueError("give memory or a LayerCache that holds it projected, not both")
            self_cache, kv = cache.self_attn, cache.memory
        else:
            _check_input(memory, "memory", self.d_model, "T_src")
        a = self.attention(self.addnorm1.prenorm(x), mask=mask, cache=self_cache, need_weights=need_weights)
        x = self.addnorm1(x, a.output)  # (B, T, d)
        weights, new_cache = a.weights, a.cache
        if self.cross_attention is not None:
            c = self.cross_attention(self.cross_addnorm.prenorm(x), kv, mask=memory_mask, need_weights=need_weights)
            x = self.cross_addnorm(x, c.output)  # (B, T, d)
            weights = (a.weights, c.weights) if need_weights else None
            new_cache = None if cache is None else LayerCache(a.cache, kv)
        x = self.addnorm2(x, self.ffn(self.addnorm2.prenorm(x)))  # (B, T, d)
        return BlockOutput(x, weights, new_cache)

    @torch.no_grad()
    def load_torch_weights(self, layer: nn.TransformerEncoderLayer | nn.TransformerDecoderLayer) -> Block:
        """Copy a :class:`torch.nn.TransformerEncoderLayer` (a block without cross-attention) or a
        ``TransformerDecoderLayer`` (a block with one) of the same sizes."""
        decoder = self.cross_attention is not None
        _check_torch_layer(layer, nn.TransformerDecoderLayer if decoder else nn.TransformerEncoderLayer, self)
        self.attention.load_torch_weights(layer.self_attn)
        pairs = [(self.ffn.dense1, layer.linear1), (self.ffn.dense2, layer.linear2), (self.addnorm1.norm, layer.norm1)]
        if decoder:
            self.cross_attention.load_torch_weights(layer.multihead_attn)
            pairs += [(self.cross_addnorm.norm, layer.norm2), (self.addnorm2.norm, layer.norm3)]
        else:
            pairs.append((self.addnorm2.norm, layer.norm2))
        _copy_parameters(pairs)
        return self

    def extra_repr(self) -> str:
        return f"norm_first={self.norm_first}, causal={self.causal}"
