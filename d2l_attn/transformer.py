r"""The Transformer encoder--decoder for translation (chapter 7), reusable from the library.

Vaswani et al. (2017) replace recurrence by attention. The **encoder** embeds the source
tokens, adds sinusoidal positional encodings and applies :math:`L` blocks of self-attention +
FFN (:class:`d2l_attn.blocks.TransformerEncoderBlock`). The **decoder** embeds the target
prefix and applies :math:`L` blocks of causal self-attention, cross-attention to the encoder
outputs and FFN (:class:`d2l_attn.blocks.TransformerDecoderBlock`), then a linear layer to the
target vocabulary:

.. math::

    \mathbf{H}^{(0)} = \sqrt{d}\,E[\mathbf{x}] + P, \qquad
    \mathbf{H}^{(l)} = \operatorname{EncoderBlock}(\mathbf{H}^{(l-1)}), \qquad
    P(y_{t} \mid y_{<t}, \mathbf{x}) = \operatorname{softmax}(\mathbf{W}_o \mathbf{S}^{(L)}_t + \mathbf{b}_o).

In **training** every target position is computed at once (teacher forcing); the causal mask
keeps position :math:`t` from seeing :math:`y_{\ge t}`. In **generation** the decoder runs one
token at a time with a key/value cache (:meth:`TransformerDecoder.step`): each block keeps the
projected keys and values of the positions decoded so far and of the encoder outputs, so a step
costs :math:`O(t)` attention work instead of recomputing the whole prefix. Both give the same
numbers (tested).

:class:`Transformer` has the interface of :class:`d2l_attn.seq2seq.Seq2Seq` --
``forward(src, src_valid_lens, tgt_in)``, ``encode``, ``decoder.step``,
``decoder.reorder_state``, ``bos_id/eos_id/pad_id`` -- so :func:`~d2l_attn.seq2seq.seq2seq_loss`,
:func:`~d2l_attn.seq2seq.greedy_decode`, :func:`~d2l_attn.seq2seq.beam_search`,
:func:`~d2l_attn.seq2seq.translate`, :func:`~d2l_attn.seq2seq.evaluate_bleu` and
:class:`d2l_attn.training.Trainer` work on it unchanged. :func:`save_model` / :func:`load_model`
store a trained model with its configuration and vocabularies (read with ``weights_only=True``).

Also here: :func:`training_flops` and :func:`model_flops_utilization` (MFU) with a small table of
peak bf16 tensor-core FLOP/s per GPU (:func:`peak_bf16_flops`), used by the chapter and by
``benchmarks/transformer_throughput.py``.

Shapes are batch-first: tokens ``(B, T)``, activations ``(B, T, d_model)``, logits ``(B, T, V)``,
attention weights ``(B, L, h, T_q, T_k)`` (layers x heads).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import NamedTuple, Sequence

import torch
from torch import nn

from .blocks import LayerCache, TransformerDecoderBlock, TransformerEncoderBlock
from .data import Vocab
from .masking import as_valid_lens
from .positional import SinusoidalPositionalEncoding
from .scoring import DotProductAttention
from ._checks import positive_int
from .utils import load_weights_only, save_atomic

__all__ = [
    "TransformerEncoder",
    "TransformerDecoder",
    "TransformerState",
    "TransformerWeights",
    "Transformer",
    "save_model",
    "load_model",
    "count_parameters",
    "training_flops",
    "peak_bf16_flops",
    "model_flops_utilization",
]


def _check_tokens(tokens, name: str, vocab_size: int) -> torch.Tensor:
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2 or tokens.dtype != torch.long:
        got = (f"{tokens.dtype} tensor of shape {tuple(tokens.shape)}" if isinstance(tokens, torch.Tensor)
               else type(tokens).__name__)
        raise ValueError(f"{name} must be an int64 tensor of token ids with shape (B, T), got {got}")
    # A range check needs the values on the host: skip it on CUDA (it would synchronize every
    # step) and while torch.compile traces; elsewhere give a clear message instead of an
    # index error deep inside nn.Embedding.
    if tokens.numel() and tokens.device.type != "cuda" and not torch.compiler.is_compiling():
        low, high = int(tokens.min()), int(tokens.max())
        if low < 0 or high >= vocab_size:
            raise ValueError(
                f"{name} holds token ids from {low} to {high}, but the vocabulary has {vocab_size} tokens "
                f"(ids 0..{vocab_size - 1}); were the model and the data built with different vocabularies?"
            )
    return tokens


class _Embed(nn.Module):
    r"""Token embedding scaled by :math:`\sqrt{d}` plus sinusoidal positions (with dropout).

    The table is initialized with :math:`\mathcal{N}(0, 1/d)`, so :math:`\sqrt{d}\,E[x]` has
    entries of variance 1, the scale of the positional encoding (D2L initializes with
    :math:`\mathcal{N}(0, 1)`, which makes the scaled embeddings :math:`\sqrt{d}` times larger
    than the positions).
    """

    def __init__(self, vocab_size: int, d_model: int, max_len: int, dropout: float):
        super().__init__()
        self.vocab_size, self.d_model = vocab_size, d_model
        self.embedding = nn.Embedding(vocab_size, d_model)
        nn.init.normal_(self.embedding.weight, std=d_model ** -0.5)
        self.pos_encoding = SinusoidalPositionalEncoding(d_model, max_len, dropout)

    def forward(self, tokens: torch.Tensor, offset: int = 0) -> torch.Tensor:
        x = self.embedding(tokens) * math.sqrt(self.d_model)  # (B, T, d)
        if offset == 0:
            return self.pos_encoding(x)  # (B, T, d)
        end = offset + tokens.shape[1]
        if end > self.pos_encoding.max_len:
            raise ValueError(f"position {end - 1} exceeds max_len={self.pos_encoding.max_len}")
        table = self.pos_encoding.encoding[offset:end].to(x.dtype)  # (T, d)
        return self.pos_encoding.dropout(x + table)  # (B, T, d)


def _check_config(vocab_size, d_model, num_heads, d_ff, num_layers, max_len) -> None:
    for name, value in (("vocab_size", vocab_size), ("d_model", d_model), ("num_heads", num_heads),
                        ("d_ff", d_ff), ("num_layers", num_layers), ("max_len", max_len)):
        positive_int(name, value)
    if d_model % num_heads != 0:
        raise ValueError(
            f"d_model={d_model} must be divisible by num_heads={num_heads} "
            f"(each head gets d_model // num_heads dimensions)"
        )
    if d_model % 2 != 0:
        raise ValueError(f"d_model must be even (sinusoidal positions come in sin/cos pairs), got {d_model}")


# --------------------------------------------------------------------------------------------
# encoder
# --------------------------------------------------------------------------------------------
class _BlockStack(nn.Module):
    """What the encoder and the decoder share: the configuration, token embedding + positions,
    ``num_layers`` blocks of ``block_type``, and a final LayerNorm for pre-LN (identity for post-LN).
    """

    block_type: type[nn.Module]

    def __init__(self, vocab_size: int, d_model: int = 256, num_heads: int = 4, d_ff: int = 1024,
                 num_layers: int = 2, dropout: float = 0.1, norm_first: bool = False, max_len: int = 1000,
                 activation: str = "relu", fused: bool = True):
        super().__init__()
        _check_config(vocab_size, d_model, num_heads, d_ff, num_layers, max_len)
        self.vocab_size, self.d_model, self.num_heads = vocab_size, d_model, num_heads
        self.d_ff, self.num_layers, self.norm_first, self.max_len = d_ff, num_layers, bool(norm_first), max_len
        self.activation, self.dropout = activation, float(dropout)
        self.embed = _Embed(vocab_size, d_model, max_len, dropout)
        self.blocks = nn.ModuleList(
            self.block_type(d_model, num_heads, d_ff, dropout, norm_first, activation, fused)
            for _ in range(num_layers))
        self.final_norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()


class TransformerEncoder(_BlockStack):
    """Embedding + positions + ``num_layers`` encoder blocks (+ a final LayerNorm for pre-LN).

    ``forward(src (B, T), valid_lens (B,) or None, return_weights=False)`` -> ``(B, T, d_model)``,
    or ``(outputs, weights (B, L, h, T, T))``.
    """

    block_type = TransformerEncoderBlock


    def forward(self, src: torch.Tensor, valid_lens=None, return_weights: bool = False):
        _check_tokens(src, "src", self.vocab_size)
        x = self.embed(src)  # (B, T, d)
        weights = []
        for block in self.blocks:
            if return_weights:
                x, w = block(x, valid_lens, return_weights=True)  # (B, T, d), (B, h, T, T)
                weights.append(w)
            else:
                x = block(x, valid_lens)  # (B, T, d)
        x = self.final_norm(x)
        return (x, torch.stack(weights, dim=1)) if return_weights else x  # (B, L, h, T, T)


# --------------------------------------------------------------------------------------------
# decoder
# --------------------------------------------------------------------------------------------
class TransformerState(NamedTuple):
    """What the decoder carries from step to step during generation.

    ``enc_outputs (B, T, d)`` and ``src_valid_lens (B,)`` (the decoders in
    :mod:`d2l_attn.seq2seq` read both), one :class:`~d2l_attn.blocks.LayerCache` per block, and
    the number of target positions decoded so far.
    """

    enc_outputs: torch.Tensor
    src_valid_lens: torch.Tensor
    caches: tuple
    num_decoded: int


class TransformerWeights(NamedTuple):
    """All attention weights of one forward pass, each ``(B, L, h, T_q, T_k)`` (layers x heads)."""

    encoder: torch.Tensor  # (B, L, h, T, T)
    decoder_self: torch.Tensor  # (B, L, h, T', T')
    decoder_cross: torch.Tensor  # (B, L, h, T', T)


class TransformerDecoder(_BlockStack):
    """Embedding + positions + ``num_layers`` decoder blocks (+ final LayerNorm for pre-LN) + output layer.

    * ``forward(tgt_in (B, T'), memory (B, T, d), memory_valid_lens, return_weights=False)``:
      teacher forcing, all positions at once -> logits ``(B, T', V)`` (or with the weights
      ``(logits, self (B, L, h, T', T'), cross (B, L, h, T', T))``);
    * ``init_state`` / ``step`` / ``reorder_state``: generation with a key/value cache, the
      protocol of :class:`d2l_attn.seq2seq.AttentionDecoder`.
    """

    block_type = TransformerDecoderBlock

    def __init__(self, vocab_size: int, d_model: int = 256, num_heads: int = 4, d_ff: int = 1024,
                 num_layers: int = 2, dropout: float = 0.1, norm_first: bool = False, max_len: int = 1000,
                 activation: str = "relu", fused: bool = True):
        super().__init__(vocab_size, d_model, num_heads, d_ff, num_layers, dropout, norm_first, max_len,
                         activation, fused)
        self.dense = nn.Linear(d_model, vocab_size)  # logits over the target vocabulary


    def forward(self, tgt_in: torch.Tensor, memory: torch.Tensor, memory_valid_lens=None,
                return_weights: bool = False):
        _check_tokens(tgt_in, "tgt_in", self.vocab_size)
        x = self.embed(tgt_in)  # (B, T', d)
        w_self, w_cross = [], []
        for block in self.blocks:
            if return_weights:
                x, ws, wc = block(x, memory, memory_valid_lens, return_weights=True)
                w_self.append(ws)  # (B, h, T', T')
                w_cross.append(wc)  # (B, h, T', T)
            else:
                x = block(x, memory, memory_valid_lens)  # (B, T', d)
        logits = self.dense(self.final_norm(x))  # (B, T', V)
        if return_weights:
            return logits, torch.stack(w_self, dim=1), torch.stack(w_cross, dim=1)
        return logits

    # -- generation -----------------------------------------------------------------------------
    def init_state(self, enc_outputs: torch.Tensor, src_valid_lens) -> TransformerState:
        """Project the encoder outputs once per block (cross-attention keys/values); empty self-attention caches."""
        if not isinstance(enc_outputs, torch.Tensor) or enc_outputs.dim() != 3 or enc_outputs.shape[-1] != self.d_model:
            shape = tuple(enc_outputs.shape) if isinstance(enc_outputs, torch.Tensor) else type(enc_outputs).__name__
            raise ValueError(f"enc_outputs must have shape (B, T, d_model={self.d_model}), got {shape}")
        lens = as_valid_lens(src_valid_lens, max_len=enc_outputs.shape[1], device=enc_outputs.device,
                             name="src_valid_lens")
        if tuple(lens.shape) != (enc_outputs.shape[0],):
            raise ValueError(f"src_valid_lens must have shape (B,) = ({enc_outputs.shape[0]},), got {tuple(lens.shape)}")
        caches = tuple(block.init_cache(enc_outputs) for block in self.blocks)
        return TransformerState(enc_outputs, lens, caches, 0)

    def step_tokens(self, tokens: torch.Tensor, state: TransformerState, return_weights: bool = False):
        """Decode ``tokens (B, T_new)`` that follow the ``state.num_decoded`` positions already cached.

        Returns ``(logits (B, T_new, V), new_state)``, plus with ``return_weights`` the weights
        ``self (B, L, h, T_new, t + T_new)`` and ``cross (B, L, h, T_new, T)``.
        """
        _check_tokens(tokens, "tokens", self.vocab_size)
        if not isinstance(state, TransformerState):
            raise ValueError(f"state must be a TransformerState (see init_state), got {type(state).__name__}")
        x = self.embed(tokens, offset=state.num_decoded)  # (B, T_new, d)
        caches, w_self, w_cross = [], [], []
        for block, cache in zip(self.blocks, state.caches):
            out = block.step(x, cache, state.src_valid_lens, return_weights=return_weights)
            x, cache = out[0], out[1]  # (B, T_new, d), LayerCache
            caches.append(cache)
            if return_weights:
                w_self.append(out[2])
                w_cross.append(out[3])
        logits = self.dense(self.final_norm(x))  # (B, T_new, V)
        new_state = state._replace(caches=tuple(caches), num_decoded=state.num_decoded + tokens.shape[1])
        if return_weights:
            return logits, new_state, torch.stack(w_self, dim=1), torch.stack(w_cross, dim=1)
        return logits, new_state

    def step(self, tokens: torch.Tensor, state: TransformerState):
        """One generation step: ``tokens (B,)`` -> ``logits (B, V)``, new state, ``weights (B, T)``.

        ``weights`` is the last block's cross-attention averaged over heads: where the decoder
        looks in the source when it produces this token (what :func:`~d2l_attn.seq2seq.translate`
        keeps for attention maps).
        """
        if not isinstance(tokens, torch.Tensor) or tokens.dim() != 1:
            raise ValueError(f"tokens must have shape (B,), got {getattr(tokens, 'shape', type(tokens).__name__)}")
        logits, state, _, w_cross = self.step_tokens(tokens.unsqueeze(1), state, return_weights=True)
        weights = w_cross[:, -1].mean(dim=1)[:, 0]  # (B, L, h, 1, T) -> (B, T)
        return logits[:, 0], state, weights  # (B, V), state, (B, T)

    @staticmethod
    def reorder_state(state: TransformerState, index: torch.Tensor) -> TransformerState:
        """Select/repeat batch entries (beam search): ``index (N,)`` into the batch axis."""
        return TransformerState(state.enc_outputs.index_select(0, index),  # (N, T, d)
                                state.src_valid_lens.index_select(0, index),  # (N,)
                                tuple(c.index_select(index) for c in state.caches),
                                state.num_decoded)


# --------------------------------------------------------------------------------------------
# the encoder-decoder
# --------------------------------------------------------------------------------------------
_CONFIG_KEYS = ("d_model", "num_heads", "d_ff", "num_layers", "dropout", "norm_first", "max_len", "activation")


class Transformer(nn.Module):
    """Transformer encoder--decoder with the interface of :class:`d2l_attn.seq2seq.Seq2Seq`.

    ``forward(src, src_valid_lens, tgt_in)`` -> logits ``(B, T', V)`` (teacher forcing;
    ``tgt_in`` starts with ``<bos>``); with ``return_weights=True`` ->
    ``(logits, TransformerWeights)``. ``encode(src, src_valid_lens)`` returns the decoder's
    generation state.

    Build one with :meth:`from_vocabs`, or from an encoder and a decoder of the same width.
    """

    def __init__(self, encoder: TransformerEncoder, decoder: TransformerDecoder, *, bos_id: int, eos_id: int,
                 pad_id: int):
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
        for name, value in (("bos_id", bos_id), ("eos_id", eos_id), ("pad_id", pad_id)):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < decoder.vocab_size:
                raise ValueError(
                    f"{name} must be a token id of the target vocabulary, in [0, {decoder.vocab_size}), got {value!r}"
                )
        self.encoder, self.decoder = encoder, decoder
        self.bos_id, self.eos_id, self.pad_id = bos_id, eos_id, pad_id

    @classmethod
    def from_vocabs(cls, src_vocab: Vocab, tgt_vocab: Vocab, d_model: int = 256, num_heads: int = 4,
                    d_ff: int = 1024, num_layers: int = 2, dropout: float = 0.1, norm_first: bool = False,
                    max_len: int = 1000, activation: str = "relu", fused: bool = True) -> "Transformer":
        """Build encoder and decoder for these vocabularies (the target one must hold ``<bos>``, ``<eos>``, ``<pad>``)."""
        for name, vocab in (("src_vocab", src_vocab), ("tgt_vocab", tgt_vocab)):
            if not isinstance(vocab, Vocab):
                raise ValueError(f"{name} must be a d2l_attn.data.Vocab, got {type(vocab).__name__}")
        for token in ("<bos>", "<eos>", "<pad>"):
            if token not in tgt_vocab:
                raise ValueError(f"tgt_vocab must contain {token!r}")
        sizes = dict(d_model=d_model, num_heads=num_heads, d_ff=d_ff, num_layers=num_layers, dropout=dropout,
                     norm_first=norm_first, max_len=max_len, activation=activation, fused=fused)
        encoder = TransformerEncoder(len(src_vocab), **sizes)
        decoder = TransformerDecoder(len(tgt_vocab), **sizes)
        return cls(encoder, decoder, bos_id=tgt_vocab["<bos>"], eos_id=tgt_vocab["<eos>"], pad_id=tgt_vocab["<pad>"])

    @property
    def config(self) -> dict:
        """Plain-data description of the architecture (enough to rebuild it with :meth:`from_vocabs`)."""
        return {key: getattr(self.encoder, key) for key in _CONFIG_KEYS}

    def set_fused(self, fused: bool) -> "Transformer":
        """Switch every attention layer between the fused (SDPA) and the reference path."""
        for module in self.modules():
            if isinstance(module, DotProductAttention):
                module.fused = bool(fused)
        return self

    def encode(self, src: torch.Tensor, src_valid_lens) -> TransformerState:
        """Run the encoder and return the decoder's initial generation state."""
        lens = self._check_lens(src, src_valid_lens)
        return self.decoder.init_state(self.encoder(src, lens), lens)

    def _check_lens(self, src, src_valid_lens) -> torch.Tensor:
        _check_tokens(src, "src", self.encoder.vocab_size)
        lens = as_valid_lens(src_valid_lens, max_len=src.shape[1], device=src.device, name="src_valid_lens")
        if tuple(lens.shape) != (src.shape[0],):
            raise ValueError(f"src_valid_lens must have shape (B,) = ({src.shape[0]},), got {tuple(lens.shape)}")
        return lens

    def forward(self, src: torch.Tensor, src_valid_lens, tgt_in: torch.Tensor, return_weights: bool = False):
        lens = self._check_lens(src, src_valid_lens)
        _check_tokens(tgt_in, "tgt_in", self.decoder.vocab_size)
        if tgt_in.shape[0] != src.shape[0]:
            raise ValueError(f"tgt_in must have batch size {src.shape[0]} like src, got {tgt_in.shape[0]}")
        if not return_weights:
            memory = self.encoder(src, lens)  # (B, T, d)
            return self.decoder(tgt_in, memory, lens)  # (B, T', V)
        memory, w_enc = self.encoder(src, lens, return_weights=True)
        logits, w_self, w_cross = self.decoder(tgt_in, memory, lens, return_weights=True)
        return logits, TransformerWeights(w_enc, w_self, w_cross)


# --------------------------------------------------------------------------------------------
# saving and loading a trained model
# --------------------------------------------------------------------------------------------
def save_model(path: str | os.PathLike[str], model: Transformer, src_vocab: Vocab, tgt_vocab: Vocab,
               **extra) -> Path:
    """Save weights, configuration and both vocabularies in one file (atomically).

    Everything is plain data, so :func:`load_model` reads it with ``torch.load(..., weights_only=True)``.
    ``extra`` (plain data, e.g. BLEU scores) is stored too.
    """
    if not isinstance(model, Transformer):
        raise ValueError(f"model must be a Transformer, got {type(model).__name__}")
    if len(src_vocab) != model.encoder.vocab_size or len(tgt_vocab) != model.decoder.vocab_size:
        raise ValueError(
            f"vocabulary sizes ({len(src_vocab)}, {len(tgt_vocab)}) do not match the model's "
            f"({model.encoder.vocab_size}, {model.decoder.vocab_size})"
        )
    state = {
        "format": "d2l_attn.transformer/1",
        "config": model.config,
        "src_tokens": list(src_vocab.idx_to_token),
        "tgt_tokens": list(tgt_vocab.idx_to_token),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": extra,
    }
    return save_atomic(state, path)


def _vocab_from_tokens(tokens: Sequence[str]) -> Vocab:
    if not tokens or tokens[0] != Vocab.UNK:
        raise ValueError("a saved vocabulary must start with '<unk>'")
    return Vocab([], reserved_tokens=list(tokens[1:]))  # same indices: <unk>, then the rest in order


def load_model(path: str | os.PathLike[str], map_location: str | torch.device = "cpu"):
    """Load what :func:`save_model` wrote: returns ``(model (eval mode), src_vocab, tgt_vocab, extra)``."""
    state = load_weights_only(path, map_location, what="saved model")
    if not isinstance(state, dict) or state.get("format") != "d2l_attn.transformer/1":
        raise ValueError(f"{str(path)!r} was not written by d2l_attn.transformer.save_model")
    src_vocab, tgt_vocab = _vocab_from_tokens(state["src_tokens"]), _vocab_from_tokens(state["tgt_tokens"])
    model = Transformer.from_vocabs(src_vocab, tgt_vocab, **state["config"])
    model.load_state_dict(state["model"])
    return model.to(map_location).eval(), src_vocab, tgt_vocab, state.get("extra", {})


# --------------------------------------------------------------------------------------------
# FLOPs and model FLOP utilization
# --------------------------------------------------------------------------------------------
def count_parameters(module: nn.Module, *, embeddings: bool = False) -> int:
    """Number of parameters, without the embedding tables unless ``embeddings=True``.

    Embedding lookups cost no multiply-adds, so FLOP estimates leave them out (Kaplan et al., 2020).
    """
    skip = set()
    if not embeddings:
        for m in module.modules():
            if isinstance(m, nn.Embedding):
                skip |= {id(p) for p in m.parameters()}
    return sum(p.numel() for p in module.parameters() if id(p) not in skip)


def training_flops(model: Transformer, src_tokens: int, tgt_tokens: int) -> float:
    r"""Approximate FLOPs of one training step: :math:`6 (N_\text{enc} n_\text{src} + N_\text{dec} n_\text{tgt})`.

    The "6N per token" rule (2 FLOPs per parameter and token forward, 4 backward) applied to each
    stack with the tokens it processes; :math:`N` excludes the embedding tables and includes the
    output layer. The attention scores (:math:`\propto T^2 d` per layer) are left out: for the
    short sentences of this book they are a few percent.
    """
    n_enc = count_parameters(model.encoder)
    n_dec = count_parameters(model.decoder)
    return 6.0 * (n_enc * src_tokens + n_dec * tgt_tokens)


# Dense (no sparsity) bf16 tensor-core peaks from NVIDIA's data sheets, in FLOP/s. Patterns are
# tried in order against torch.cuda.get_device_name(); GPUs without bf16 tensor cores (V100, T4)
# and unknown names give None.
_PEAK_BF16 = (
    (r"H200", 989e12),
    (r"H100.*(PCIe|PCIE)", 756e12),
    (r"H100", 989e12),  # SXM / HBM3
    (r"A100", 312e12),
    (r"L40S", 362e12),
    (r"\bL4\b", 121e12),
    (r"\bA10\b", 125e12),
    (r"RTX 4090", 165e12),
    (r"RTX 3090", 71e12),
)


def peak_bf16_flops(device_name: str | None) -> float | None:
    """Peak dense bf16 FLOP/s of a GPU from its name (``torch.cuda.get_device_name()``), or ``None``."""
    if not device_name:
        return None
    for pattern, flops in _PEAK_BF16:
        if re.search(pattern, device_name):
            return flops
    return None


def model_flops_utilization(flops_per_step: float, seconds_per_step: float, peak_flops: float | None):
    r"""MFU :math:`= \dfrac{\text{model FLOPs per step} / \text{seconds per step}}{\text{peak FLOP/s}}`, or ``None``."""
    if peak_flops is None:
        return None
    if not seconds_per_step > 0 or not peak_flops > 0:
        raise ValueError(f"seconds_per_step and peak_flops must be positive, got {seconds_per_step}, {peak_flops}")
    return flops_per_step / seconds_per_step / peak_flops
