r"""Token embeddings with positions: what turns token ids into the vectors a Transformer reads.

:class:`TokenEmbedding` (chapters 7 and 9) looks up each token's vector, scales it by
:math:`\sqrt{d}` and adds a positional encoding (chapter 6):

.. math:: \mathbf{H}^{(0)}_t = \sqrt{d}\,E[x_t] + P_t,

with :math:`P` the fixed sinusoidal table (Vaswani et al., 2017) or a learned one (GPT, BERT).
The table :math:`E` is initialized with :math:`\mathcal{N}(0, 1/d)`, so :math:`\sqrt{d}\,E[x]` has
entries of variance 1, the scale of the sinusoidal encoding (D2L initializes with
:math:`\mathcal{N}(0, 1)`, which makes the scaled embeddings :math:`\sqrt{d}` times larger than
the positions).

Generation with a key/value cache embeds only the new tokens, at positions ``offset ..``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._checks import positive_int, unit_interval
from .positional import LearnedPositionalEncoding, SinusoidalPositionalEncoding

__all__ = ["TokenEmbedding"]


class TokenEmbedding(nn.Module):
    r"""``tokens (B, T)`` -> ``dropout(sqrt(d) E[tokens] + P[offset : offset + T])`` of shape ``(B, T, d_model)``.

    Args:
        vocab_size: number of token ids.
        d_model: embedding size.
        max_len: longest sequence (positions ``0 .. max_len - 1``).
        dropout: dropout on the sum.
        positions: ``"sinusoidal"`` (fixed, chapter 6) or ``"learned"`` (a trainable table).
    """

    def __init__(self, vocab_size: int, d_model: int, max_len: int = 1000, dropout: float = 0.0,
                 positions: str = "sinusoidal"):
        super().__init__()
        positive_int("vocab_size", vocab_size)
        positive_int("d_model", d_model)
        dropout = unit_interval("dropout", dropout)
        if positions not in ("sinusoidal", "learned"):
            raise ValueError(f"positions must be 'sinusoidal' or 'learned', got {positions!r}")
        self.vocab_size, self.d_model, self.positions = vocab_size, d_model, positions
        self.embedding = nn.Embedding(vocab_size, d_model)
        nn.init.normal_(self.embedding.weight, std=d_model ** -0.5)
        encoding = SinusoidalPositionalEncoding if positions == "sinusoidal" else LearnedPositionalEncoding
        self.pos_encoding = encoding(d_model, max_len, dropout)

    @property
    def max_len(self) -> int:
        """The longest sequence this embedding has positions for."""
        return self.pos_encoding.max_len

    def forward(self, tokens: torch.Tensor, offset: int = 0) -> torch.Tensor:
        x = self.embedding(tokens) * math.sqrt(self.d_model)  # (B, T, d)
        return self.pos_encoding(x, offset)  # (B, T, d)

    def extra_repr(self) -> str:
        return f"vocab_size={self.vocab_size}, d_model={self.d_model}, positions={self.positions!r}"
