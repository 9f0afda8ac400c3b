r"""RNN encoder--decoder with Bahdanau (additive) attention, its loss and its decoders (chapter 4).

The model of Bahdanau et al. (2015), in the simplified form of *Dive into Deep Learning*:

* :class:`GRUEncoder` reads the source tokens :math:`x_1..x_T` with a GRU (Cho et al., 2014) and
  keeps **every** hidden state :math:`\mathbf{h}_1..\mathbf{h}_T` (top layer), not just the last;
* :class:`AttentionDecoder` predicts target token :math:`y_{t'}` from its previous hidden state
  :math:`\mathbf{s}_{t'-1}` (top layer), the previous token and a **context vector**

  .. math::

      \mathbf{c}_{t'} = \sum_{t=1}^{T} \alpha(\mathbf{s}_{t'-1}, \mathbf{h}_t)\, \mathbf{h}_t,

  computed by :class:`d2l_attn.scoring.AdditiveAttention` with the decoder state as the query
  and the encoder states as keys *and* values. The GRU input at step :math:`t'` is
  :math:`[\mathbf{c}_{t'}; \mathbf{e}(y_{t'-1})]`;
* :class:`Seq2Seq` ties them together. It is a :class:`d2l_attn.decoding.StepModel`
  (``init_state``, ``step``, ``reorder_state``), so :mod:`d2l_attn.decoding` (greedy, beam search,
  sampling), :mod:`d2l_attn.losses` and :mod:`d2l_attn.translation` work on it, as on the
  Transformer of chapter 7.

Padding never leaks into the computation: the encoder runs on packed sequences (its final state
is the state after the last *real* token), the attention masks padded source positions
(``valid_lens``), and the loss (:func:`d2l_attn.losses.masked_cross_entropy`) drops padded target positions before the softmax. Hence a
sentence is translated the same way alone or in a padded batch.

Shapes are batch-first: source ``(B, T)``, encoder outputs ``(B, T, H)``, GRU states
``(num_layers, B, H)``, logits ``(B, T', V)``, attention weights ``(B, T', T)``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .._checks import positive_ints, special_ids, token_ids, unit_interval
from ..masking import as_valid_lens, masked_softmax
from ..scoring import AdditiveAttention

__all__ = ["GRUEncoder", "DecoderState", "AttentionDecoder", "Seq2Seq"]


def _check_src_lens(src: torch.Tensor, src_valid_lens) -> torch.Tensor:
    lens = as_valid_lens(src_valid_lens, max_len=src.shape[1], device=src.device, name="src_valid_lens")
    if tuple(lens.shape) != (src.shape[0],):
        raise ValueError(f"src_valid_lens must have shape (B,) = ({src.shape[0]},), got {tuple(lens.shape)}")
    if lens.numel() and int(lens.min()) < 1:
        raise ValueError("src_valid_lens must be >= 1: every source sentence needs at least one token")
    return lens


# --------------------------------------------------------------------------------------------
# encoder
# --------------------------------------------------------------------------------------------
class GRUEncoder(nn.Module):
    r"""Embedding + multi-layer GRU over the source; returns all top-layer states and the final state.

    :math:`\mathbf{h}_t = \mathrm{GRU}(\mathbf{e}(x_t), \mathbf{h}_{t-1})` for every layer.

    Args:
        vocab_size: source vocabulary size.
        embed_size: token embedding size.
        num_hiddens: GRU hidden size ``H``.
        num_layers: stacked GRU layers.
        dropout: dropout on the embeddings and between GRU layers.
    """

    def __init__(self, vocab_size: int, embed_size: int, num_hiddens: int, num_layers: int = 1, dropout: float = 0.0):
        super().__init__()
        positive_ints(vocab_size=vocab_size, embed_size=embed_size, num_hiddens=num_hiddens, num_layers=num_layers)
        dropout = unit_interval("dropout", dropout)
        self.num_hiddens, self.num_layers = num_hiddens, num_layers
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.dropout = nn.Dropout(dropout)
        self.rnn = nn.GRU(
            embed_size, num_hiddens, num_layers, batch_first=True, dropout=dropout if num_layers > 1 else 0.0
        )

    def forward(self, src: torch.Tensor, src_valid_lens) -> tuple[torch.Tensor, torch.Tensor]:
        """``src (B, T)`` ids, ``src_valid_lens (B,)`` -> ``outputs (B, T, H)``, ``state (L, B, H)``.

        Outputs at padded positions are zero; ``state`` is taken after each sentence's last real token.
        """
        token_ids(src, "src", self.embedding.num_embeddings)
        lens = _check_src_lens(src, src_valid_lens)
        embedded = self.dropout(self.embedding(src))  # (B, T, E)
        packed = pack_padded_sequence(embedded, lens.cpu(), batch_first=True, enforce_sorted=False)
        packed_out, state = self.rnn(packed)  # state: (L, B, H)
        outputs, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=src.shape[1])  # (B, T, H)
        return outputs, state


# --------------------------------------------------------------------------------------------
# decoder
# --------------------------------------------------------------------------------------------
class DecoderState(NamedTuple):
    """What the attention decoder carries from step to step."""

    enc_outputs: torch.Tensor  # (B, T, H): keys and values of the attention
    proj_keys: torch.Tensor  # (B, T, H): W_k h_t, computed once per sentence
    key_mask: torch.Tensor  # (B, 1, T) bool: True = real source token (may attend)
    hidden: torch.Tensor  # (L, B, H): GRU state; its top layer is the next query
    src_valid_lens: torch.Tensor  # (B,): real source lengths


class AttentionDecoder(nn.Module):
    r"""GRU decoder that attends over the encoder states at every step (Bahdanau attention).

    At step :math:`t'`, with :math:`\mathbf{s}_{t'-1}` the top layer of the previous GRU state:

    .. math::

        \mathbf{c}_{t'} = \mathrm{AdditiveAttention}(\mathbf{s}_{t'-1}, \mathbf{H}, \mathbf{H}),\quad
        \mathbf{s}_{t'} = \mathrm{GRU}\big([\mathbf{c}_{t'}; \mathbf{e}(y_{t'-1})], \mathbf{s}_{t'-1}\big),\quad
        \text{logits}_{t'} = \mathbf{W}_o \mathbf{s}_{t'} + \mathbf{b}_o.

    Args:
        vocab_size: target vocabulary size ``V``.
        embed_size: token embedding size.
        num_hiddens: GRU hidden size ``H`` (also the encoder's, and the attention's hidden size).
        num_layers: stacked GRU layers (must equal the encoder's: its final state initializes ours).
        dropout: dropout on embeddings, between GRU layers and on the GRU output.
    """

    def __init__(self, vocab_size: int, embed_size: int, num_hiddens: int, num_layers: int = 1, dropout: float = 0.0):
        super().__init__()
        positive_ints(vocab_size=vocab_size, embed_size=embed_size, num_hiddens=num_hiddens, num_layers=num_layers)
        dropout = unit_interval("dropout", dropout)
        self.vocab_size, self.num_hiddens, self.num_layers = vocab_size, num_hiddens, num_layers
        self.attention = AdditiveAttention(num_hiddens, num_hiddens, num_hiddens)
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.dropout = nn.Dropout(dropout)
        self.rnn = nn.GRU(
            embed_size + num_hiddens,
            num_hiddens,
            num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.dense = nn.Linear(num_hiddens, vocab_size)

    def init_state(self, enc_outputs: torch.Tensor, enc_state: torch.Tensor, src_valid_lens) -> DecoderState:
        r"""Start from the encoder's final state; keep all encoder outputs as keys and values.

        The keys' projection :math:`\mathbf{W}_k\mathbf{h}_t` does not depend on the query, so it
        is computed here once instead of at every decoding step (Bahdanau et al. note the same).
        """
        if enc_outputs.dim() != 3 or enc_outputs.shape[-1] != self.num_hiddens:
            raise ValueError(
                f"enc_outputs must have shape (B, T, H={self.num_hiddens}), got {tuple(enc_outputs.shape)}"
            )
        expected = (self.num_layers, enc_outputs.shape[0], self.num_hiddens)
        if tuple(enc_state.shape) != expected:
            raise ValueError(f"enc_state must have shape (num_layers, B, H) = {expected}, got {tuple(enc_state.shape)}")
        lens = as_valid_lens(
            src_valid_lens, max_len=enc_outputs.shape[1], device=enc_outputs.device, name="src_valid_lens"
        )
        if tuple(lens.shape) != (enc_outputs.shape[0],):
            raise ValueError(
                f"src_valid_lens must have shape (B,) = ({enc_outputs.shape[0]},), got {tuple(lens.shape)}"
            )
        positions = torch.arange(enc_outputs.shape[1], device=enc_outputs.device)  # (T,)
        key_mask = (positions < lens.unsqueeze(1)).unsqueeze(1)  # (B, 1, T)
        proj_keys = self.attention.W_k(enc_outputs)  # (B, T, H)
        return DecoderState(enc_outputs, proj_keys, key_mask, enc_state, lens)

    @staticmethod
    def reorder_state(state: DecoderState, index: torch.Tensor) -> DecoderState:
        """Select/repeat batch entries (used by beam search): ``index (N,)`` into the batch axis."""
        return DecoderState(
            state.enc_outputs.index_select(0, index),  # (N, T, H)
            state.proj_keys.index_select(0, index),  # (N, T, H)
            state.key_mask.index_select(0, index),  # (N, 1, T)
            state.hidden.index_select(1, index),  # (L, N, H)
            state.src_valid_lens.index_select(0, index),
        )  # (N,)

    def attend(self, state: DecoderState) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Context ``(B, 1, H)`` and weights ``(B, 1, T)`` for the query :math:`\mathbf{s}_{t'-1}`.

        The same numbers as ``self.attention(query, H, H, Mask.of(src_valid_lens), need_weights=True)``
        (the tests check it), with the keys' projection taken from ``state``.
        """
        query = state.hidden[-1].unsqueeze(1)  # (B, 1, H): top layer of s_{t'-1}
        proj_q = self.attention.W_q(query)  # (B, 1, H)
        features = torch.tanh(proj_q.unsqueeze(2) + state.proj_keys.unsqueeze(1))  # (B, 1, T, H)
        scores = self.attention.w_v(features).squeeze(-1)  # (B, 1, T)
        weights = masked_softmax(scores, mask=state.key_mask)  # (B, 1, T)
        context = weights @ state.enc_outputs  # (B, 1, T) @ (B, T, H) -> (B, 1, H)
        return context, weights

    def _step_hidden(self, tokens: torch.Tensor, state: DecoderState):
        context, weights = self.attend(state)  # (B, 1, H), (B, 1, T)
        embedded = self.dropout(self.embedding(tokens)).unsqueeze(1)  # (B, 1, E)
        rnn_in = torch.cat([context, embedded], dim=-1)  # (B, 1, H + E)
        out, hidden = self.rnn(rnn_in, state.hidden)  # (B, 1, H), (L, B, H)
        return out.squeeze(1), state._replace(hidden=hidden), weights.squeeze(1)

    def step(self, tokens: torch.Tensor, state: DecoderState) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """One decoding step: ``tokens (B,)`` -> ``logits (B, V)``, new state, ``weights (B, T)``."""
        out, state, weights = self._step_hidden(tokens, state)  # (B, H), state, (B, T)
        return self.dense(self.dropout(out)), state, weights  # (B, V)

    def forward(
        self, tgt_in: torch.Tensor, state: DecoderState, return_weights: bool = False
    ) -> tuple[torch.Tensor, DecoderState] | tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """Teacher forcing: ``tgt_in (B, T')`` -> ``logits (B, T', V)``, state[, ``weights (B, T', T)``].

        The steps run one after another: the query of step ``t'`` is the state after step ``t'-1``.
        """
        token_ids(tgt_in, "tgt_in", self.vocab_size)
        if tgt_in.shape[0] != state.enc_outputs.shape[0]:
            raise ValueError(f"tgt_in must have batch size {state.enc_outputs.shape[0]}, got {tgt_in.shape[0]}")
        outs, all_weights = [], []
        for t in range(tgt_in.shape[1]):
            out, state, weights = self._step_hidden(tgt_in[:, t], state)  # (B, H), state, (B, T)
            outs.append(out)
            all_weights.append(weights)
        logits = self.dense(self.dropout(torch.stack(outs, dim=1)))  # (B, T', H) -> (B, T', V)
        if return_weights:
            return logits, state, torch.stack(all_weights, dim=1)  # (B, T', T)
        return logits, state


# --------------------------------------------------------------------------------------------
# the encoder-decoder and its loss
# --------------------------------------------------------------------------------------------
class Seq2Seq(nn.Module):
    """Encoder + attention decoder for translation.

    ``forward(src, src_valid_lens, tgt_in)`` returns logits ``(B, T', V)`` (teacher forcing;
    ``tgt_in`` starts with ``<bos>``). ``bos_id``, ``eos_id`` and ``pad_id`` are the target
    vocabulary's special tokens, used by :func:`seq2seq_loss` and the decoders.
    """

    def __init__(self, encoder: GRUEncoder, decoder: AttentionDecoder, *, bos_id: int, eos_id: int, pad_id: int):
        super().__init__()
        if encoder.num_hiddens != decoder.num_hiddens or encoder.num_layers != decoder.num_layers:
            raise ValueError(
                "encoder and decoder must have the same num_hiddens and num_layers, got "
                f"({encoder.num_hiddens}, {encoder.num_layers}) and ({decoder.num_hiddens}, {decoder.num_layers})"
            )
        self.encoder, self.decoder = encoder, decoder
        self.bos_id, self.eos_id, self.pad_id = special_ids(
            decoder.vocab_size, bos_id=bos_id, eos_id=eos_id, pad_id=pad_id
        )

    # -- the StepModel protocol (d2l_attn.decoding) -------------------------------------------------
    def init_state(self, src: torch.Tensor, src_valid_lens) -> DecoderState:
        """Run the encoder and return the decoder's initial state."""
        enc_outputs, enc_state = self.encoder(src, src_valid_lens)
        return self.decoder.init_state(enc_outputs, enc_state, src_valid_lens)

    def step(self, tokens: torch.Tensor, state: DecoderState) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """One decoding step: ``tokens (B,)`` -> ``logits (B, V)``, new state, ``weights (B, T)``."""
        token_ids(tokens, "tokens", self.decoder.vocab_size, dim=1)
        return self.decoder.step(tokens, state)

    def reorder_state(self, state: DecoderState, index: torch.Tensor) -> DecoderState:
        """Select/repeat batch entries (beam search): ``index (N,)`` into the batch axis."""
        return self.decoder.reorder_state(state, index)

    def forward(
        self, src: torch.Tensor, src_valid_lens, tgt_in: torch.Tensor, return_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``logits (B, T', V)``, or ``(logits, weights (B, T', T))`` with ``return_weights``."""
        state = self.init_state(src, src_valid_lens)
        out = self.decoder(tgt_in, state, return_weights=return_weights)
        return (out[0], out[2]) if return_weights else out[0]
