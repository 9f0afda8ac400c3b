"""The book's models, built from the attention core (:mod:`d2l_attn.blocks` and below).

* :mod:`.rnn_seq2seq` -- GRU encoder--decoder with Bahdanau attention (chapter 4);
* :mod:`.transformer` -- the Transformer encoder--decoder and its :class:`TransformerConfig` (chapter 7);
* :mod:`.gpt` -- decoder-only GPT (chapter 9); :mod:`.bert` -- BERT with MLM and NSP heads (chapter 9);
* :mod:`.vit` -- the Vision Transformer and its :class:`ViTConfig`; :mod:`.cnn` -- the small CNN
  baseline beside it (chapter 10).

Each model returns its attention weights explicitly (``return_weights=True``); the generating
ones (GRU seq2seq, Transformer, GPT) are :class:`d2l_attn.decoding.StepModel` s, so the decoders
work on all of them.
"""

from .bert import BERT, BERTConfig
from .cnn import SmallCNN
from .gpt import GPT, GPTConfig
from .rnn_seq2seq import AttentionDecoder, DecoderState, GRUEncoder, Seq2Seq
from .transformer import (
    Transformer,
    TransformerConfig,
    TransformerDecoder,
    TransformerEncoder,
    TransformerState,
    TransformerWeights,
)
from .vit import ViT, ViTConfig, mean_attention_distance

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
    "GPTConfig",
    "GPT",
    "BERTConfig",
    "BERT",
    "ViTConfig",
    "ViT",
    "mean_attention_distance",
    "SmallCNN",
]
