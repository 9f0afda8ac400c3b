r"""GPT: a decoder-only Transformer trained to predict the next token (chapter 9).

A GPT (Radford et al., 2018; 2019) is a stack of *causal* self-attention blocks
(:class:`d2l_attn.blocks.Block` with ``causal=True``): position :math:`t` sees the
tokens :math:`x_1, \dots, x_t` only, so one forward pass scores every next-token prediction
of a text at once,

.. math::

    \mathbf{H}^{(0)} = E[x] + P,\qquad
    \mathbf{H}^{(\ell)} = \operatorname{Block}_\ell(\mathbf{H}^{(\ell-1)}),\qquad
    p(x_{t+1} \mid x_{\le t}) = \operatorname{softmax}\big(\operatorname{LN}(\mathbf{H}^{(L)}_t)\,W_{\text{out}}^\top\big),

by default (GPT-2) with learned absolute positions :math:`P` (one trainable vector per position),
pre-LN blocks with a final LayerNorm, and, with ``tie_weights=True``, the output matrix equal to
the token embedding :math:`E` (Press & Wolf, 2017). Unlike chapter 7's :class:`TokenEmbedding`,
the token vectors are not scaled by :math:`\sqrt{d}` (GPT-2 does not).

:class:`GPTConfig` chooses the parts (each validated, each tested):

* ``norm_first``: ``True`` = pre-LN, :math:`\mathbf{x} \leftarrow \mathbf{x} + F(\operatorname{LN}(\mathbf{x}))`
  in every sublayer and one final LayerNorm (GPT-2); ``False`` = post-LN,
  :math:`\mathbf{x} \leftarrow \operatorname{LN}(\mathbf{x} + F(\mathbf{x}))` (GPT-1, the
  Transformer paper) and no final LayerNorm, since the last block's output is already normalized.
* ``positional``: ``"learned"`` (:math:`P` a trained table, at most ``max_len`` positions),
  ``"sinusoidal"`` (:math:`P` the fixed table of Vaswani et al., 2017), ``"rope"`` (nothing added
  to the input; every head's queries and keys are rotated, :math:`(R_i\mathbf{q})^\top(R_j\mathbf{k})
  = \mathbf{q}^\top R_{j-i}\mathbf{k}`, Su et al., 2021) or ``"alibi"`` (nothing added; the
  causal scores get :math:`-m_h(i-j)`, Press et al., 2022). See :mod:`d2l_attn.positional`.
  Only ``"learned"`` is bound to ``max_len``; the others run on longer sequences.
* ``num_kv_heads`` :math:`g` (default ``num_heads``): grouped-query attention (Ainslie et al.,
  2023; :math:`g = 1` is multi-query attention, Shazeer, 2019). :math:`\mathbf{W}^k, \mathbf{W}^v`
  project to :math:`g d_h` columns, key/value head :math:`j` serves query heads
  :math:`j h/g, \dots, (j+1)h/g - 1`, and the key/value cache shrinks by :math:`h/g`.

Generation (:mod:`d2l_attn.decoding`): a :class:`GPT` is a :class:`~d2l_attn.decoding.StepModel`
whose "source" is the **prompt**. ``init_state(prompt, lens)`` runs all prompt tokens but the
last through the blocks and keeps their keys and values (:class:`~d2l_attn.multihead.KVCache`);
the decoders then call ``step`` once per new token, and the first step feeds the prompt's last
token (in place of ``<bos>``, which a decoder-only model does not need). Each step costs
:math:`O(t)` attention instead of recomputing all :math:`t` positions; the tests check that the
logits equal a full forward pass.

:func:`d2l_attn.interop.from_hf_gpt2` builds a :class:`GPT` from a Hugging Face ``GPT2LMHeadModel``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import nn

from .._checks import config_from, positive_number, special_ids, stack_sizes, token_ids
from ..blocks import Block
from ..masking import Mask, as_valid_lens
from ..multihead import KVCache
from ..positional import ALiBi, RotaryPositionalEncoding, sinusoidal_encoding
from ..scoring import DotProductAttention

__all__ = ["GPTConfig", "GPT", "GPTState"]

POSITIONAL = ("learned", "sinusoidal", "rope", "alibi")


@dataclass(frozen=True)
class GPTConfig:
    """Sizes of a :class:`GPT` (defaults: nanoGPT's CPU recipe for character-level Shakespeare)."""

    vocab_size: int = 65
    max_len: int = 64  # the context ("block size"): learned positions exist for 0 .. max_len - 1
    num_layers: int = 4
    num_heads: int = 4
    d_model: int = 128
    d_ff: int | None = None  # default 4 * d_model
    dropout: float = 0.0
    activation: str = "gelu_tanh"  # GPT-2's GELU approximation
    eps: float = 1e-5  # LayerNorm epsilon (GPT-2's layer_norm_epsilon)
    tie_weights: bool = True  # output matrix = token embedding
    bos_id: int = 0  # only used to satisfy the StepModel protocol (never fed to the model)
    eos_id: int = -1  # -1: no end-of-text token, generate max_len tokens
    pad_id: int = 0
    norm_first: bool = True  # pre-LN + final LayerNorm (GPT-2); False: post-LN, no final LayerNorm
    num_kv_heads: int | None = None  # key/value heads (GQA); None: num_heads (multi-head attention)
    positional: str = "learned"  # "learned", "sinusoidal", "rope" or "alibi"

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "d_ff", stack_sizes(self, "vocab_size", "max_len", "num_layers", "num_heads", "d_model")
        )
        positive_number("eps", self.eps)
        if not isinstance(self.norm_first, bool):
            raise ValueError(f"norm_first must be True (pre-LN) or False (post-LN), got {self.norm_first!r}")
        if self.positional not in POSITIONAL:
            raise ValueError(f"positional must be one of {', '.join(map(repr, POSITIONAL))}, got {self.positional!r}")
        head_dim = self.d_model // self.num_heads
        if self.positional == "rope" and head_dim % 2:
            raise ValueError(f"positional='rope' needs an even head size d_model / num_heads, got {head_dim}")
        if self.positional == "sinusoidal" and self.d_model % 2:
            raise ValueError(f"positional='sinusoidal' needs an even d_model, got {self.d_model}")
        if self.num_kv_heads is None:
            object.__setattr__(self, "num_kv_heads", self.num_heads)
        if isinstance(self.num_kv_heads, bool) or not isinstance(self.num_kv_heads, int) or self.num_kv_heads < 1:
            raise ValueError(f"num_kv_heads must be a positive int or None, got {self.num_kv_heads!r}")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_kv_heads={self.num_kv_heads} must divide num_heads={self.num_heads}")
        special_ids(self.vocab_size, bos_id=self.bos_id, pad_id=self.pad_id)
        if self.eos_id != -1:  # -1: no end-of-text token
            special_ids(self.vocab_size, eos_id=self.eos_id)


class GPTState(NamedTuple):
    """Generation state: one :class:`KVCache` per layer ``(B, h, t, d_h)``, the number of positions
    ``t`` already processed, and the prompt's last token ``(B,)`` until the first step feeds it."""

    caches: tuple[KVCache | None, ...]
    length: int
    pending: torch.Tensor | None


class GPT(nn.Module):
    r"""Decoder-only Transformer language model.

    ``forward(tokens (B, T), valid_lens=None, return_weights=False)`` -> logits ``(B, T, V)``
    (and a list of ``L`` attention maps ``(B, h, T, T)``); ``logits[:, t]`` predicts ``tokens[:, t+1]``.
    Padding must be on the right: causal attention never lets a real token see a later pad.
    """

    def __init__(self, config: GPTConfig | None = None, **sizes: Any):
        super().__init__()
        self.config = c = config_from(GPTConfig, config, sizes)
        self.bos_id, self.eos_id, self.pad_id = c.bos_id, c.eos_id, c.pad_id
        self.token_embedding = nn.Embedding(c.vocab_size, c.d_model)  # E (V, d)
        if c.positional == "learned":
            self.position_embedding = nn.Embedding(c.max_len, c.d_model)  # P (max_len, d): learned, absolute
        elif c.positional == "sinusoidal":  # P fixed; positions past max_len are computed when asked for
            self.register_buffer("sinusoidal", sinusoidal_encoding(c.max_len, c.d_model), persistent=False)
        self.dropout = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(self._block(c) for _ in range(c.num_layers))
        # post-LN: the last block's output is already normalized (GPT-1, torch.nn.TransformerEncoder)
        self.final_norm = nn.LayerNorm(c.d_model, eps=c.eps) if c.norm_first else nn.Identity()
        self.lm_head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        self.apply(self._init)
        if c.tie_weights:
            self.lm_head.weight = self.token_embedding.weight  # one (V, d) matrix, two uses

    @staticmethod
    def _block(c: GPTConfig) -> Block:
        """A causal block with ``num_kv_heads`` key/value heads, RoPE as the q/k transform and ALiBi
        as the kernel's ``score_mod`` (the kernel's reference path: SDPA takes no score hook)."""
        kernel = None
        if c.positional == "alibi":
            kernel = DotProductAttention(c.dropout)
            kernel.alibi = ALiBi(c.num_heads)  # a submodule: its slopes follow .to(device)
            kernel.score_mod = kernel.alibi.score_mod
        rotary = RotaryPositionalEncoding(c.d_model // c.num_heads) if c.positional == "rope" else None
        return Block.build(
            c.d_model,
            c.num_heads,
            c.d_ff,
            c.dropout,
            norm_first=c.norm_first,
            activation=c.activation,
            causal=True,
            eps=c.eps,
            num_kv_heads=c.num_kv_heads,
            rotary=rotary,
            attention_kernel=kernel,
        )

    @staticmethod
    def _init(module: nn.Module) -> None:
        """GPT-2's initialization: N(0, 0.02) for linear and embedding weights, zero biases."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)

    def num_parameters(self) -> int:
        """Number of distinct parameters (a tied matrix counts once)."""
        return sum(p.numel() for p in self.parameters())

    # -- teacher forcing: every position at once ----------------------------------------------
    def embed(self, tokens: torch.Tensor, offset: int = 0) -> torch.Tensor:
        r"""The first block's input ``(B, T, d)``: :math:`\operatorname{dropout}(E[x] + P)` for the tokens at
        positions ``offset .. offset + T - 1`` (no :math:`P` with ``positional`` ``"rope"`` or ``"alibi"``)."""
        c = self.config
        token_ids(tokens, "tokens", c.vocab_size)
        end = offset + tokens.shape[1]
        if c.positional == "learned" and end > c.max_len:
            raise ValueError(
                f"tokens reach position {end} (offset {offset} + length {tokens.shape[1]}), "
                f"but the model has learned positions for max_len={c.max_len} only"
            )
        x = self.token_embedding(tokens)  # (B, T, d)
        if c.positional == "learned":
            x = x + self.position_embedding(torch.arange(offset, end, device=tokens.device))  # + (T, d)
        elif c.positional == "sinusoidal":
            table = self.sinusoidal if end <= c.max_len else sinusoidal_encoding(end, c.d_model).to(x.device)
            x = x + table[offset:end].to(x.dtype)  # + (T, d)
        return self.dropout(x)  # (B, T, d)

    def forward(
        self, tokens: torch.Tensor, valid_lens=None, return_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        x = self.embed(tokens)  # (B, T, d)
        mask = Mask.from_lengths(valid_lens, tokens)  # checked once per call
        mask, weights = Mask(mask.keep, is_causal=True, lengths=mask.lengths), []
        for block in self.blocks:  # called as modules: forward hooks fire
            x, w, _ = block(x, mask, need_weights=return_weights)  # (B, T, d), (B, h, T, T) or None
            weights.append(w)
        weights = weights if return_weights else None
        logits = self.lm_head(self.final_norm(x))  # (B, T, V)
        return (logits, weights) if return_weights else logits

    # -- generation: the StepModel protocol ---------------------------------------------------
    def _extend(self, tokens: torch.Tensor, state: GPTState) -> tuple[torch.Tensor, GPTState]:
        """Run ``tokens (B, T_new)`` after ``state.length`` cached positions; logits of the last one."""
        x = self.embed(tokens, state.length)  # (B, T_new, d)
        caches = []
        for block, cache in zip(self.blocks, state.caches):
            cache = block.attention.empty_cache(x) if cache is None else cache
            x, _, cache = block(x, cache=cache)  # (B, T_new, d), (B, g, t + T_new, d_h) x 2
            caches.append(cache)
        logits = self.lm_head(self.final_norm(x[:, -1]))  # (B, V)
        return logits, GPTState(tuple(caches), state.length + tokens.shape[1], None)

    def init_state(self, src: torch.Tensor, src_valid_lens=None) -> GPTState:
        """Start generating after the prompt ``src (B, T_p)`` (all rows of the same length, ``T_p >= 1``)."""
        token_ids(src, "prompt", self.config.vocab_size)
        if src.shape[1] < 1:
            raise ValueError("the prompt must hold at least one token, got shape (B, 0)")
        if src_valid_lens is not None:
            lens = as_valid_lens(src_valid_lens, max_len=src.shape[1], device=src.device, name="src_valid_lens")
            if bool((lens != src.shape[1]).any()):
                raise ValueError(
                    f"every prompt must use all {src.shape[1]} positions (no padding), "
                    f"got src_valid_lens={lens.tolist()}"
                )
        state = GPTState((None,) * len(self.blocks), 0, None)
        if src.shape[1] > 1:
            _, state = self._extend(src[:, :-1], state)
        return GPTState(state.caches, state.length, src[:, -1])

    def step(self, tokens: torch.Tensor, state: GPTState) -> tuple[torch.Tensor, GPTState, None]:
        """``tokens (B,)`` -> ``(logits (B, V), new state, None)``; the first call feeds the prompt's last token."""
        if not isinstance(state, GPTState):
            raise ValueError(f"state must be a GPTState (see init_state), got {type(state).__name__}")
        if state.pending is not None:
            tokens = state.pending
        logits, state = self._extend(tokens.reshape(-1, 1), state)
        return logits, state, None

    @staticmethod
    def reorder_state(state: GPTState, index: torch.Tensor) -> GPTState:
        caches = tuple(None if c is None else c.index_select(index) for c in state.caches)
        pending = None if state.pending is None else state.pending.index_select(0, index)
        return GPTState(caches, state.length, pending)
