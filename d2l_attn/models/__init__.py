"""The book's models, built from the attention core (:mod:`d2l_attn.blocks` and below).

* :mod:`.rnn_seq2seq` -- GRU encoder--decoder with Bahdanau attention (chapter 4);
* :mod:`.transformer` -- the Transformer encoder--decoder and its :class:`TransformerConfig` (chapter 7).

Each model returns its attention weights explicitly (``return_weights=True``) and is a
:class:`d2l_attn.decoding.StepModel`, so the decoders, losses and translation tools work on all.
"""

from .rnn_seq2seq import AttentionDecoder, DecoderState, GRUEncoder, Seq2Seq
from .transformer import (
    Transformer,
    TransformerConfig,
    TransformerDecoder,
    TransformerEncoder,
    TransformerState,
    TransformerWeights,
)

__all__ = [
    "GRUEncoder",
    "DecoderState",
    "AttentionDecoder",
    "Seq2Seq",
    "TransformerConfig",
    "TransformerEncoder",
    "TransformerDecoder",
    "TransformerState",
    "TransformerWeights",
    "Transformer",
]
