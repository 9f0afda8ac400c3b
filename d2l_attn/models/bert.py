r"""BERT: a bidirectional Transformer encoder pretrained by masked language modelling (chapter 9).

BERT (Devlin et al., 2019) reads a pair of segments ``[CLS] A [SEP] B [SEP]``. Its input vector
at position :math:`t` is the sum of three *learned* embeddings, then a LayerNorm:

.. math:: \mathbf{H}^{(0)}_t = \operatorname{LN}\big(E[x_t] + P_t + S[s_t]\big),

with :math:`P_t` a trainable vector per **absolute** position (not a relative encoding) and
:math:`s_t \in \{0, 1\}` the segment. Then :math:`L` *post-LN* encoder blocks, each exactly one
self-attention sublayer and one FFN (GELU) -- each wrapped in residual + LayerNorm:

.. math::

    \mathbf{Y} = \operatorname{LN}(\mathbf{H} + \operatorname{MultiHead}(\mathbf{H}, \mathbf{H}, \mathbf{H})),\qquad
    \mathbf{H}' = \operatorname{LN}(\mathbf{Y} + \operatorname{FFN}(\mathbf{Y})).

Attention is bidirectional: every position sees every real (non-padding) position. Two heads:

* **masked LM** (:class:`MLMHead`): at the masked positions,
  :math:`\operatorname{softmax}(\operatorname{LN}(\operatorname{GELU}(W\mathbf{h}_t + b))E^\top + c)`,
  with the output matrix tied to the token embedding :math:`E`;
* **next-sentence prediction** (:class:`NSPHead`): the "pooler"
  :math:`\tanh(W_p \mathbf{h}_{\text{[CLS]}} + b_p)`, then a 2-way linear classifier.

:func:`d2l_attn.interop.from_hf_bert` builds a :class:`BERT` from a Hugging Face ``BertModel``
(or ``BertForPreTraining``); the tests compare hidden states to 1e-5.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from .._checks import config_from, stack_sizes, token_ids
from ..blocks import Block
from ..masking import Mask

__all__ = ["BERTConfig", "BERT", "BERTOutput", "MLMHead", "NSPHead"]


@dataclass(frozen=True)
class BERTConfig:
    """Sizes of a :class:`BERT` (defaults: a small model for CPU pretraining)."""

    vocab_size: int = 1000
    max_len: int = 128
    num_layers: int = 2
    num_heads: int = 4
    d_model: int = 128
    d_ff: int | None = None  # default 4 * d_model
    dropout: float = 0.1
    num_segments: int = 2
    eps: float = 1e-12  # BERT's LayerNorm epsilon

    def __post_init__(self) -> None:
        d_ff = stack_sizes(self, "vocab_size", "max_len", "num_layers", "num_heads", "d_model", "num_segments")
        object.__setattr__(self, "d_ff", d_ff)  # frozen: the default 4 * d_model written once


class BERTOutput(NamedTuple):
    hidden: torch.Tensor  # (B, T, d): the encoder's last layer
    mlm_logits: torch.Tensor | None  # (B, M, V) at the predicted positions, or (B, T, V)
    nsp_logits: torch.Tensor  # (B, 2)
    weights: list | None  # L x (B, h, T, T) with return_weights=True


class MLMHead(nn.Module):
    r"""``h (..., d)`` -> logits ``(..., V)``: :math:`\operatorname{LN}(\operatorname{GELU}(W h + b))\,E^\top + c`."""

    def __init__(self, d_model: int, vocab_size: int, eps: float = 1e-12):
        super().__init__()
        self.dense = nn.Linear(d_model, d_model)
        self.norm = nn.LayerNorm(d_model, eps=eps)
        self.decoder = nn.Linear(d_model, vocab_size)  # weight tied to the token embedding by BERT

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.norm(F.gelu(self.dense(h))))  # (..., V)


class NSPHead(nn.Module):
    r"""``h_cls (B, d)`` -> ``(B, 2)``: pooler :math:`\tanh(W_p h + b_p)`, then a linear classifier (0 = "is next")."""

    def __init__(self, d_model: int):
        super().__init__()
        self.pooler = nn.Linear(d_model, d_model)
        self.classifier = nn.Linear(d_model, 2)

    def pool(self, h_cls: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.pooler(h_cls))  # (B, d)

    def forward(self, h_cls: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(h_cls))  # (B, 2)


class BERT(nn.Module):
    r"""BERT encoder with MLM and NSP heads.

    ``forward(tokens (B, T), segments (B, T) or None, valid_lens (B,) or None, pred_positions (B, M) or None,
    return_weights=False)`` -> :class:`BERTOutput`. ``pred_positions`` selects where the MLM head
    runs (the masked positions); ``None`` runs it everywhere.
    """

    def __init__(self, config: BERTConfig | None = None, **sizes: Any):
        super().__init__()
        self.config = c = config_from(BERTConfig, config, sizes)
        self.token_embedding = nn.Embedding(c.vocab_size, c.d_model)  # E
        self.position_embedding = nn.Embedding(c.max_len, c.d_model)  # P: learned, absolute
        self.segment_embedding = nn.Embedding(c.num_segments, c.d_model)  # S
        self.embedding_norm = nn.LayerNorm(c.d_model, eps=c.eps)
        self.dropout = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(
            Block.build(c.d_model, c.num_heads, c.d_ff, c.dropout, norm_first=False, activation="gelu", eps=c.eps)
            for _ in range(c.num_layers)
        )
        self.mlm = MLMHead(c.d_model, c.vocab_size, c.eps)
        self.nsp = NSPHead(c.d_model)
        self.apply(self._init)
        self.mlm.decoder.weight = self.token_embedding.weight  # tied, as in BERT

    @staticmethod
    def _init(module: nn.Module) -> None:
        """BERT's initialization: N(0, 0.02) weights, zero biases."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)

    def encode(
        self, tokens: torch.Tensor, segments=None, valid_lens=None, return_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """The encoder alone: ``(B, T, d)`` hidden states (and the ``L`` attention maps)."""
        c = self.config
        token_ids(tokens, "tokens", c.vocab_size)
        B, T = tokens.shape
        if T > c.max_len:
            raise ValueError(f"tokens has length {T}, but the model has positions for max_len={c.max_len} only")
        if segments is None:
            segments = torch.zeros_like(tokens)
        elif not isinstance(segments, torch.Tensor) or segments.shape != tokens.shape:
            raise ValueError(
                f"segments must have the shape of tokens {tuple(tokens.shape)}, "
                f"got {getattr(segments, 'shape', type(segments).__name__)}"
            )
        token_ids(segments, "segments", c.num_segments)
        mask = Mask.from_lengths(valid_lens, tokens)  # keep (B, 1, 1, T) or None, checked once
        pos = torch.arange(T, device=tokens.device)  # (T,)
        x = self.token_embedding(tokens) + self.position_embedding(pos) + self.segment_embedding(segments)
        x = self.dropout(self.embedding_norm(x))  # (B, T, d)
        weights = []
        for block in self.blocks:  # called as modules: forward hooks fire
            x, w, _ = block(x, mask, need_weights=return_weights)  # (B, T, d), (B, h, T, T) or None
            weights.append(w)
        return (x, weights) if return_weights else x

    def forward(
        self, tokens: torch.Tensor, segments=None, valid_lens=None, pred_positions=None, return_weights: bool = False
    ) -> BERTOutput:
        out = self.encode(tokens, segments, valid_lens, return_weights)
        hidden, weights = out if return_weights else (out, None)
        if pred_positions is None:
            mlm_logits = self.mlm(hidden)  # (B, T, V)
        else:
            if (
                not isinstance(pred_positions, torch.Tensor)
                or pred_positions.dim() != 2
                or pred_positions.shape[0] != tokens.shape[0]
            ):
                raise ValueError(
                    f"pred_positions must have shape (B={tokens.shape[0]}, M), "
                    f"got {getattr(pred_positions, 'shape', type(pred_positions).__name__)}"
                )
            token_ids(pred_positions, "pred_positions", tokens.shape[1])
            index = pred_positions.unsqueeze(-1).expand(-1, -1, hidden.shape[-1])  # (B, M, d)
            mlm_logits = self.mlm(hidden.gather(1, index))  # (B, M, V)
        nsp_logits = self.nsp(hidden[:, 0])  # (B, 2): from the [CLS] position
        return BERTOutput(hidden, mlm_logits, nsp_logits, weights)
