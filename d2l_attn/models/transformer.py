r"""The Transformer encoder--decoder for translation (chapter 7), reusable from the library.

Vaswani et al. (2017) replace recurrence by attention. The **encoder** embeds the source
tokens, adds sinusoidal positional encodings (:class:`d2l_attn.embeddings.TokenEmbedding`) and
applies :math:`L` blocks of self-attention + FFN (:class:`d2l_attn.blocks.Block`).
The **decoder** embeds the target prefix and applies :math:`L` blocks of causal self-attention,
cross-attention to the encoder outputs and FFN (:class:`d2l_attn.blocks.Block` with ``cross_attention``),
then a linear layer to the target vocabulary:

.. math::

    \mathbf{H}^{(0)} = \sqrt{d}\,E[\mathbf{x}] + P, \qquad
    \mathbf{H}^{(l)} = \operatorname{EncoderBlock}(\mathbf{H}^{(l-1)}), \qquad
    P(y_{t} \mid y_{<t}, \mathbf{x}) = \operatorname{softmax}(\mathbf{W}_o \mathbf{S}^{(L)}_t + \mathbf{b}_o).

In **training** every target position is computed at once (teacher forcing); the causal mask
keeps position :math:`t` from seeing :math:`y_{\ge t}`. In **generation** the decoder runs one
token at a time with a key/value cache (:meth:`Transformer.step`): each block keeps the projected
keys and values of the positions decoded so far and of the encoder outputs, so a step costs
:math:`O(t)` attention work instead of recomputing the whole prefix. Both give the same numbers
(tested).

The sizes live in one :class:`TransformerConfig`. :class:`Transformer` is a
:class:`d2l_attn.decoding.StepModel` (``init_state``, ``step``, ``reorder_state``,
``bos_id/eos_id/pad_id``), so the decoders of :mod:`d2l_attn.decoding`, the losses of
:mod:`d2l_attn.losses`, :mod:`d2l_attn.translation` and :class:`d2l_attn.training.Trainer` work on
it unchanged, as on the GRU model of chapter 4.

Shapes are batch-first: tokens ``(B, T)``, activations ``(B, T, d_model)``, logits ``(B, T, V)``,
attention weights ``(B, L, h, T_q, T_k)`` (layers x heads).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import nn

from .._checks import config_from, heads_divide, positive_int, special_ids, token_ids, unit_interval
from ..blocks import Block, LayerCache
from ..embeddings import TokenEmbedding
from ..masking import Mask, key_padding_mask
from ..scoring import DotProductAttention

__all__ = [
    "TransformerConfig",
    "TransformerEncoder",
    "TransformerDecoder",
    "TransformerState",
    "TransformerWeights",
    "Transformer",
]


@dataclass(frozen=True)
class TransformerConfig:
    """The sizes of a Transformer encoder or decoder stack (the defaults are D2L's chapter-7 model).

    ``d_ff`` is the FFN's hidden size (the paper: ``4 * d_model``); ``norm_first`` chooses pre-LN
    (Xiong et al., 2020) over the paper's post-LN; ``max_len`` bounds the positions; ``fused`` uses
    :func:`torch.nn.functional.scaled_dot_product_attention` when weights are not requested.
    """

    d_model: int = 256
    num_heads: int = 4
    d_ff: int = 1024
    num_layers: int = 2
    dropout: float = 0.1
    norm_first: bool = False
    max_len: int = 1000
    activation: str = "relu"
    fused: bool = True

    def __post_init__(self) -> None:
        for name in ("d_model", "num_heads", "d_ff", "num_layers", "max_len"):
            positive_int(name, getattr(self, name))
        heads_divide(self.d_model, self.num_heads)
        if self.d_model % 2 != 0:
            raise ValueError(f"d_model must be even (sinusoidal positions come in sin/cos pairs), got {self.d_model}")
        unit_interval("dropout", self.dropout)
        if self.activation not in ("relu", "gelu"):
            raise ValueError(f"activation must be 'relu' or 'gelu', got {self.activation!r}")

    def block(self, cross: bool = False) -> Block:
        """One block of these sizes (``cross=True``: a decoder block, with causal self-attention)."""
        return Block.build(
            self.d_model,
            self.num_heads,
            self.d_ff,
            self.dropout,
            norm_first=self.norm_first,
            activation=self.activation,
            fused=self.fused,
            cross=cross,
        )


def _check_memory(memory, d_model: int, batch_size: int | None = None) -> None:
    if not isinstance(memory, torch.Tensor) or memory.dim() != 3 or memory.shape[-1] != d_model:
        shape = tuple(memory.shape) if isinstance(memory, torch.Tensor) else type(memory).__name__
        raise ValueError(f"memory must have shape (B, T, d_model={d_model}), got {shape}")
    if batch_size is not None and memory.shape[0] != batch_size:
        raise ValueError(f"memory must have batch size {batch_size} like the target tokens, got {memory.shape[0]}")


class _Stack(nn.Module):
    """What the encoder and the decoder share: the config, token embedding + positions,
    ``num_layers`` blocks, and a final LayerNorm for pre-LN (identity for post-LN)."""

    def __init__(self, vocab_size: int, cross: bool, config: TransformerConfig | None, sizes: dict[str, Any]):
        super().__init__()
        self.config = cfg = config_from(TransformerConfig, config, sizes)
        self.vocab_size = positive_int("vocab_size", vocab_size)
        self.d_model = cfg.d_model
        self.embed = TokenEmbedding(vocab_size, cfg.d_model, cfg.max_len, cfg.dropout)
        self.blocks = nn.ModuleList(cfg.block(cross) for _ in range(cfg.num_layers))
        self.final_norm = nn.LayerNorm(cfg.d_model) if cfg.norm_first else nn.Identity()


class TransformerEncoder(_Stack):
    """Embedding + positions + ``num_layers`` encoder blocks (+ a final LayerNorm for pre-LN).

    ``TransformerEncoder(vocab_size, config=None, **sizes)``; ``forward(src (B, T), valid_lens (B,)
    or None, return_weights=False)`` -> ``(B, T, d_model)``, or ``(outputs, weights (B, L, h, T, T))``.
    """

    def __init__(self, vocab_size: int, config: TransformerConfig | None = None, **sizes: Any):
        super().__init__(vocab_size, False, config, sizes)

    def forward(
        self, src: torch.Tensor, valid_lens=None, return_weights: bool = False, *, mask: Mask | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        token_ids(src, "src", self.vocab_size)
        mask = _front_door(valid_lens, mask, src, "valid_lens")  # keep (B, 1, 1, T) or None, checked once
        x, weights = self.embed(src), []  # (B, T, d)
        for block in self.blocks:  # called as modules: forward hooks fire
            x, w, _ = block(x, mask, need_weights=return_weights)  # (B, T, d), (B, h, T, T) or None
            weights.append(w)
        if return_weights:
            return self.final_norm(x), torch.stack(weights, dim=1)  # (B, T, d), (B, L, h, T, T)
        return self.final_norm(x)


def _front_door(valid_lens, mask: Mask | None, x: torch.Tensor, name: str) -> Mask:
    """The call's mask: ``mask`` as built by a caller's front door, or one built from ``valid_lens``."""
    if mask is None:
        return Mask.from_lengths(valid_lens, x, name)
    if valid_lens is not None:
        raise ValueError(f"give {name} or a Mask, not both")
    if not isinstance(mask, Mask):
        raise ValueError(f"mask must be a d2l_attn.masking.Mask, got {type(mask).__name__}")
    return mask


class TransformerState(NamedTuple):
    """What the decoder carries from step to step during generation: the real source lengths
    ``(B,)``, one :class:`~d2l_attn.blocks.LayerCache` per block, and the number of target
    positions decoded so far."""

    src_valid_lens: torch.Tensor
    caches: tuple
    num_decoded: int

    def index_select(self, index: torch.Tensor) -> TransformerState:
        """Select/repeat batch entries (beam search): ``index (N,)`` into the batch axis."""
        return TransformerState(
            self.src_valid_lens.index_select(0, index),  # (N,)
            tuple(c.index_select(index) for c in self.caches),
            self.num_decoded,
        )


class TransformerWeights(NamedTuple):
    """All attention weights of one forward pass, each ``(B, L, h, T_q, T_k)`` (layers x heads)."""

    encoder: torch.Tensor  # (B, L, h, T, T)
    decoder_self: torch.Tensor  # (B, L, h, T', T')
    decoder_cross: torch.Tensor  # (B, L, h, T', T)


class TransformerDecoder(_Stack):
    """Embedding + positions + ``num_layers`` decoder blocks (+ final LayerNorm for pre-LN) + output layer.

    * ``forward(tgt_in (B, T'), memory (B, T, d), memory_valid_lens, return_weights=False)``:
      teacher forcing, all positions at once -> logits ``(B, T', V)`` (or with the weights
      ``(logits, self (B, L, h, T', T'), cross (B, L, h, T', T))``);
    * ``init_state`` / ``step_tokens``: generation with a key/value cache.
    """

    def __init__(self, vocab_size: int, config: TransformerConfig | None = None, **sizes: Any):
        super().__init__(vocab_size, True, config, sizes)
        self.dense = nn.Linear(self.d_model, vocab_size)  # logits over the target vocabulary

    def forward(
        self,
        tgt_in: torch.Tensor,
        memory: torch.Tensor,
        memory_valid_lens=None,
        return_weights: bool = False,
        *,
        memory_mask: Mask | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        token_ids(tgt_in, "tgt_in", self.vocab_size)
        _check_memory(memory, self.d_model, tgt_in.shape[0])
        memory_mask = _front_door(memory_valid_lens, memory_mask, memory, "memory_valid_lens")  # checked once
        x = self.embed(tgt_in)  # (B, T', d)
        weights = []
        for block in self.blocks:  # called as modules: forward hooks fire; the blocks are causal
            x, w, _ = block(x, memory=memory, memory_mask=memory_mask, need_weights=return_weights)  # (B, T', d)
            weights.append(w)  # (self (B, h, T', T'), cross (B, h, T', T)) or None
        logits = self.dense(self.final_norm(x))  # (B, T', V)
        if return_weights:
            return logits, *(torch.stack(ws, dim=1) for ws in zip(*weights))  # (B, L, h, T', T' / T) x 2
        return logits

    # -- generation -----------------------------------------------------------------------------
    def init_state(self, memory: torch.Tensor, src_valid_lens) -> TransformerState:
        """Project the encoder outputs once per block (cross-attention keys/values); empty self-attention caches."""
        _check_memory(memory, self.d_model)
        if isinstance(src_valid_lens, Mask):  # built (and checked) by Transformer's front door
            lens = src_valid_lens.lengths
        else:
            if src_valid_lens is None:
                raise ValueError(f"src_valid_lens must be a (B,) = ({memory.shape[0]},) tensor of lengths, got None")
            lens = Mask.from_lengths(src_valid_lens, memory, "src_valid_lens").lengths  # (B,), checked once
        caches = tuple(
            LayerCache(block.attention.empty_cache(memory), block.cross_attention.project(memory))
            for block in self.blocks
        )  # empty self-attention caches; the memory projected once per sentence
        return TransformerState(lens, caches, 0)

    def step_tokens(
        self, tokens: torch.Tensor, state: TransformerState, return_weights: bool = False
    ) -> tuple[torch.Tensor, TransformerState] | tuple[torch.Tensor, TransformerState, torch.Tensor, torch.Tensor]:
        """Decode ``tokens (B, T_new)`` that follow the ``state.num_decoded`` positions already cached.

        Returns ``(logits (B, T_new, V), new_state)``, plus with ``return_weights`` the weights
        ``self (B, L, h, T_new, t + T_new)`` and ``cross (B, L, h, T_new, T)``.
        """
        token_ids(tokens, "tokens", self.vocab_size)
        if not isinstance(state, TransformerState):
            raise ValueError(f"state must be a TransformerState (see init_state), got {type(state).__name__}")
        x = self.embed(tokens, offset=state.num_decoded)  # (B, T_new, d)
        lens = state.src_valid_lens  # checked by init_state
        mask = Mask(key_padding_mask(lens, state.caches[0].memory.length), lengths=lens)  # (B, 1, 1, T)
        caches, weights = [], []
        for block, cache in zip(self.blocks, state.caches):  # the same forward, with a cache
            x, w, cache = block(x, memory_mask=mask, cache=cache, need_weights=return_weights)  # (B, T_new, d)
            caches.append(cache)  # LayerCache: t + T_new positions
            weights.append(w)
        logits = self.dense(self.final_norm(x))  # (B, T_new, V)
        new_state = TransformerState(state.src_valid_lens, tuple(caches), state.num_decoded + tokens.shape[1])
        if return_weights:
            return logits, new_state, *(torch.stack(ws, dim=1) for ws in zip(*weights))
        return logits, new_state


class Transformer(nn.Module):
    """Transformer encoder--decoder; a :class:`d2l_attn.decoding.StepModel`.

    ``forward(src, src_valid_lens, tgt_in)`` -> logits ``(B, T', V)`` (teacher forcing;
    ``tgt_in`` starts with ``<bos>``); with ``return_weights=True`` ->
    ``(logits, TransformerWeights)``. ``init_state(src, src_valid_lens)`` runs the encoder and
    returns the generation state that :meth:`step` advances.

    Build one with :func:`d2l_attn.translation.transformer_from_vocabs`, or from an encoder and a
    decoder of the same width.
    """

    def __init__(
        self, encoder: TransformerEncoder, decoder: TransformerDecoder, *, bos_id: int, eos_id: int, pad_id: int
    ):
        super().__init__()
        if not isinstance(encoder, TransformerEncoder) or not isinstance(decoder, TransformerDecoder):
            raise ValueError(
                f"encoder and decoder must be a TransformerEncoder and a TransformerDecoder, got "
                f"{type(encoder).__name__} and {type(decoder).__name__}"
            )
        if encoder.d_model != decoder.d_model:
            raise ValueError(
                f"encoder and decoder must have the same d_model (cross-attention reads the encoder "
                f"outputs), got {encoder.d_model} and {decoder.d_model}"
            )
        self.encoder, self.decoder = encoder, decoder
        self.bos_id, self.eos_id, self.pad_id = special_ids(
            decoder.vocab_size, bos_id=bos_id, eos_id=eos_id, pad_id=pad_id
        )

    @property
    def config(self) -> TransformerConfig:
        """The sizes of this model (enough to rebuild it with :func:`d2l_attn.translation.transformer_from_vocabs`)."""
        return self.encoder.config

    def set_fused(self, fused: bool) -> Transformer:
        """Switch every attention layer between the fused (SDPA) and the reference path."""
        for module in self.modules():
            if isinstance(module, DotProductAttention):
                module.fused = bool(fused)
        return self

    def _check_src(self, src, src_valid_lens) -> Mask:
        """The front door: ``src`` checked and the one :class:`~d2l_attn.masking.Mask` of this call."""
        token_ids(src, "src", self.encoder.vocab_size)
        if src_valid_lens is None:
            raise ValueError(f"src_valid_lens must be a (B,) = ({src.shape[0]},) tensor of lengths, got None")
        return Mask.from_lengths(src_valid_lens, src, "src_valid_lens")  # keep (B, 1, 1, T), lengths (B,)

    def forward(
        self, src: torch.Tensor, src_valid_lens, tgt_in: torch.Tensor, return_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, TransformerWeights]:
        mask = self._check_src(src, src_valid_lens)
        token_ids(tgt_in, "tgt_in", self.decoder.vocab_size)
        if tgt_in.shape[0] != src.shape[0]:
            raise ValueError(f"tgt_in must have batch size {src.shape[0]} like src, got {tgt_in.shape[0]}")
        if not return_weights:
            memory = self.encoder(src, mask=mask)  # (B, T, d)
            return self.decoder(tgt_in, memory, memory_mask=mask)  # (B, T', V)
        memory, w_enc = self.encoder(src, return_weights=True, mask=mask)
        logits, w_self, w_cross = self.decoder(tgt_in, memory, return_weights=True, memory_mask=mask)
        return logits, TransformerWeights(w_enc, w_self, w_cross)

    # -- the StepModel protocol (d2l_attn.decoding) -------------------------------------------------
    def init_state(self, src: torch.Tensor, src_valid_lens) -> TransformerState:
        """Run the encoder and return the decoder's initial generation state."""
        mask = self._check_src(src, src_valid_lens)
        return self.decoder.init_state(self.encoder(src, mask=mask), mask)

    def step(
        self, tokens: torch.Tensor, state: TransformerState
    ) -> tuple[torch.Tensor, TransformerState, torch.Tensor]:
        """One generation step: ``tokens (B,)`` -> ``logits (B, V)``, new state, ``weights (B, T)``.

        ``weights`` is the last block's cross-attention averaged over heads: where the decoder
        looks in the source when it produces this token (what translation keeps for attention maps).
        """
        token_ids(tokens, "tokens", self.decoder.vocab_size, dim=1)
        logits, state, _, w_cross = self.decoder.step_tokens(tokens.unsqueeze(1), state, return_weights=True)
        weights = w_cross[:, -1].mean(dim=1)[:, 0]  # (B, L, h, 1, T) -> (B, T)
        return logits[:, 0], state, weights  # (B, V), state, (B, T)

    @staticmethod
    def reorder_state(state: TransformerState, index: torch.Tensor) -> TransformerState:
        """Select/repeat batch entries (beam search): ``index (N,)`` into the batch axis."""
        return state.index_select(index)
