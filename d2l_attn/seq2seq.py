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
* :class:`Seq2Seq` ties them together; :func:`masked_cross_entropy` averages the loss over real
  target tokens only; :func:`greedy_decode` and :func:`beam_search` translate (both batch-aware).

Padding never leaks into the computation: the encoder runs on packed sequences (its final state
is the state after the last *real* token), the attention masks padded source positions
(``valid_lens``), and the loss drops padded target positions before the softmax. Hence a
sentence is translated the same way alone or in a padded batch.

Shapes are batch-first: source ``(B, T)``, encoder outputs ``(B, T, H)``, GRU states
``(num_layers, B, H)``, logits ``(B, T', V)``, attention weights ``(B, T', T)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, Sequence

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .data import Vocab, build_array_nmt, group_references, preprocess_nmt
from .masking import as_valid_lens, masked_softmax
from .metrics import bleu, corpus_bleu
from .scoring import AdditiveAttention
from ._checks import positive_int, positive_ints, unit_interval

__all__ = [
    "GRUEncoder",
    "DecoderState",
    "AttentionDecoder",
    "Seq2Seq",
    "EncoderDecoderModel",
    "masked_cross_entropy",
    "seq2seq_loss",
    "greedy_decode",
    "beam_search",
    "Translation",
    "encode_sentences",
    "translate",
    "evaluate_bleu",
]


def _check_tokens(tokens: object, name: str) -> torch.Tensor:
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2 or tokens.dtype != torch.long:
        got = f"{tokens.dtype} tensor of shape {tuple(tokens.shape)}" if isinstance(tokens, torch.Tensor) else type(
            tokens).__name__
        raise ValueError(f"{name} must be an int64 tensor of token ids with shape (B, T), got {got}")
    return tokens


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

    def __init__(self, vocab_size: int, embed_size: int, num_hiddens: int, num_layers: int = 1,
                 dropout: float = 0.0):
        super().__init__()
        positive_ints(vocab_size=vocab_size, embed_size=embed_size, num_hiddens=num_hiddens,
                      num_layers=num_layers)
        dropout = unit_interval("dropout", dropout)
        self.num_hiddens, self.num_layers = num_hiddens, num_layers
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.dropout = nn.Dropout(dropout)
        self.rnn = nn.GRU(embed_size, num_hiddens, num_layers, batch_first=True,
                          dropout=dropout if num_layers > 1 else 0.0)

    def forward(self, src: torch.Tensor, src_valid_lens) -> tuple[torch.Tensor, torch.Tensor]:
        """``src (B, T)`` ids, ``src_valid_lens (B,)`` -> ``outputs (B, T, H)``, ``state (L, B, H)``.

        Outputs at padded positions are zero; ``state`` is taken after each sentence's last real token.
        """
        _check_tokens(src, "src")
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

    def __init__(self, vocab_size: int, embed_size: int, num_hiddens: int, num_layers: int = 1,
                 dropout: float = 0.0):
        super().__init__()
        positive_ints(vocab_size=vocab_size, embed_size=embed_size, num_hiddens=num_hiddens,
                      num_layers=num_layers)
        dropout = unit_interval("dropout", dropout)
        self.vocab_size, self.num_hiddens, self.num_layers = vocab_size, num_hiddens, num_layers
        self.attention = AdditiveAttention(num_hiddens, num_hiddens, num_hiddens)
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.dropout = nn.Dropout(dropout)
        self.rnn = nn.GRU(embed_size + num_hiddens, num_hiddens, num_layers, batch_first=True,
                          dropout=dropout if num_layers > 1 else 0.0)
        self.dense = nn.Linear(num_hiddens, vocab_size)

    def init_state(self, enc_outputs: torch.Tensor, enc_state: torch.Tensor, src_valid_lens) -> DecoderState:
        r"""Start from the encoder's final state; keep all encoder outputs as keys and values.

        The keys' projection :math:`\mathbf{W}_k\mathbf{h}_t` does not depend on the query, so it
        is computed here once instead of at every decoding step (Bahdanau et al. note the same).
        """
        if enc_outputs.dim() != 3 or enc_outputs.shape[-1] != self.num_hiddens:
            raise ValueError(f"enc_outputs must have shape (B, T, H={self.num_hiddens}), got {tuple(enc_outputs.shape)}")
        expected = (self.num_layers, enc_outputs.shape[0], self.num_hiddens)
        if tuple(enc_state.shape) != expected:
            raise ValueError(f"enc_state must have shape (num_layers, B, H) = {expected}, got {tuple(enc_state.shape)}")
        lens = as_valid_lens(src_valid_lens, max_len=enc_outputs.shape[1], device=enc_outputs.device,
                             name="src_valid_lens")
        if tuple(lens.shape) != (enc_outputs.shape[0],):
            raise ValueError(f"src_valid_lens must have shape (B,) = ({enc_outputs.shape[0]},), got {tuple(lens.shape)}")
        positions = torch.arange(enc_outputs.shape[1], device=enc_outputs.device)  # (T,)
        key_mask = (positions < lens.unsqueeze(1)).unsqueeze(1)  # (B, 1, T)
        proj_keys = self.attention.W_k(enc_outputs)  # (B, T, H)
        return DecoderState(enc_outputs, proj_keys, key_mask, enc_state, lens)

    @staticmethod
    def reorder_state(state: DecoderState, index: torch.Tensor) -> DecoderState:
        """Select/repeat batch entries (used by beam search): ``index (N,)`` into the batch axis."""
        return DecoderState(state.enc_outputs.index_select(0, index),  # (N, T, H)
                            state.proj_keys.index_select(0, index),  # (N, T, H)
                            state.key_mask.index_select(0, index),  # (N, 1, T)
                            state.hidden.index_select(1, index),  # (L, N, H)
                            state.src_valid_lens.index_select(0, index))  # (N,)

    def attend(self, state: DecoderState) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Context ``(B, 1, H)`` and weights ``(B, 1, T)`` for the query :math:`\mathbf{s}_{t'-1}`.

        The same numbers as ``self.attention(query, H, H, src_valid_lens, return_weights=True)``
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

    def forward(self, tgt_in: torch.Tensor, state: DecoderState, return_weights: bool = False):
        """Teacher forcing: ``tgt_in (B, T')`` -> ``logits (B, T', V)``, state[, ``weights (B, T', T)``].

        The steps run one after another: the query of step ``t'`` is the state after step ``t'-1``.
        """
        _check_tokens(tgt_in, "tgt_in")
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
        for name, value in (("bos_id", bos_id), ("eos_id", eos_id), ("pad_id", pad_id)):
            if not isinstance(value, int) or not 0 <= value < decoder.vocab_size:
                raise ValueError(f"{name} must be a token id in [0, {decoder.vocab_size}), got {value!r}")
        self.encoder, self.decoder = encoder, decoder
        self.bos_id, self.eos_id, self.pad_id = bos_id, eos_id, pad_id

    @classmethod
    def from_vocabs(cls, src_vocab: Vocab, tgt_vocab: Vocab, embed_size: int = 256, num_hiddens: int = 256,
                    num_layers: int = 1, dropout: float = 0.0) -> "Seq2Seq":
        """Build encoder and decoder for these vocabularies (which must hold ``<bos>``, ``<eos>``, ``<pad>``)."""
        for token in ("<bos>", "<eos>", "<pad>"):
            if token not in tgt_vocab:
                raise ValueError(f"tgt_vocab must contain {token!r}")
        encoder = GRUEncoder(len(src_vocab), embed_size, num_hiddens, num_layers, dropout)
        decoder = AttentionDecoder(len(tgt_vocab), embed_size, num_hiddens, num_layers, dropout)
        return cls(encoder, decoder, bos_id=tgt_vocab["<bos>"], eos_id=tgt_vocab["<eos>"], pad_id=tgt_vocab["<pad>"])

    def encode(self, src: torch.Tensor, src_valid_lens) -> DecoderState:
        """Run the encoder and return the decoder's initial state."""
        enc_outputs, enc_state = self.encoder(src, src_valid_lens)
        return self.decoder.init_state(enc_outputs, enc_state, src_valid_lens)

    def forward(self, src: torch.Tensor, src_valid_lens, tgt_in: torch.Tensor, return_weights: bool = False):
        """``logits (B, T', V)``, or ``(logits, weights (B, T', T))`` with ``return_weights``."""
        state = self.encode(src, src_valid_lens)
        out = self.decoder(tgt_in, state, return_weights=return_weights)
        return (out[0], out[2]) if return_weights else out[0]


def masked_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, valid_lens) -> torch.Tensor:
    r"""Mean cross-entropy over the real (non-padding) target positions only.

    .. math::

        L = \frac{1}{\sum_b \ell_b} \sum_b \sum_{t < \ell_b} -\log \operatorname{softmax}(\mathbf{z}_{b,t})_{y_{b,t}}

    Padded positions are removed *before* the softmax, so their logits cannot influence the
    loss or its gradient (even if they are infinite or NaN).

    Args:
        logits: ``(B, T, V)``.
        targets: ``(B, T)`` int64 token ids.
        valid_lens: ``(B,)`` number of real target tokens per sequence, in ``[0, T]``.
    """
    if not isinstance(logits, torch.Tensor) or logits.dim() != 3:
        raise ValueError(f"logits must have shape (B, T, V), got {getattr(logits, 'shape', type(logits).__name__)}")
    if not isinstance(targets, torch.Tensor) or tuple(targets.shape) != tuple(logits.shape[:2]):
        raise ValueError(
            f"targets must have shape (B, T) = {tuple(logits.shape[:2])}, got {getattr(targets, 'shape', targets)}"
        )
    if targets.dtype != torch.long:
        raise ValueError(f"targets must hold int64 token ids, got dtype {targets.dtype}")
    lens = as_valid_lens(valid_lens, max_len=logits.shape[1], device=logits.device)
    if tuple(lens.shape) != (logits.shape[0],):
        raise ValueError(f"valid_lens must have shape (B,) = ({logits.shape[0]},), got {tuple(lens.shape)}")
    if int(lens.sum()) == 0:
        raise ValueError("valid_lens are all 0: there is no target token to compute a loss on")
    keep = torch.arange(logits.shape[1], device=logits.device) < lens.unsqueeze(1)  # (B, T)
    return F.cross_entropy(logits[keep].float(), targets[keep])  # (N_real, V) -> scalar


def seq2seq_loss(model: EncoderDecoderModel, batch: Sequence[torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Teacher-forced loss of a batch ``(src, src_valid_lens, tgt, tgt_valid_lens)`` for :class:`~d2l_attn.training.Trainer`.

    The decoder input is ``<bos>`` followed by the target shifted right by one; returns
    ``(mean loss over real target tokens, number of real target tokens)``.
    """
    _check_model(model)
    if len(batch) != 4:
        raise ValueError("batch must be (src, src_valid_lens, tgt, tgt_valid_lens)")
    src, src_valid_lens, tgt, tgt_valid_lens = batch
    bos = torch.full_like(tgt[:, :1], model.bos_id)  # (B, 1)
    tgt_in = torch.cat([bos, tgt[:, :-1]], dim=1)  # (B, T'): teacher forcing
    logits = model(src, src_valid_lens, tgt_in)  # (B, T', V)
    return masked_cross_entropy(logits, tgt, tgt_valid_lens), int(tgt_valid_lens.sum())


# --------------------------------------------------------------------------------------------
# the interface that training and decoding use
# --------------------------------------------------------------------------------------------
class StepDecoder(Protocol):
    """A decoder that generates one token at a time from a state it can reorder (beam search)."""

    def step(self, tokens: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any, torch.Tensor]:
        """``tokens (B,)`` -> ``(logits (B, V), new state, cross-attention weights (B, T_src))``."""
        ...

    def reorder_state(self, state: Any, index: torch.Tensor) -> Any:
        """The state with its batch rows taken in the order ``index``."""
        ...


class EncoderDecoderModel(Protocol):
    """What :func:`seq2seq_loss`, :func:`greedy_decode`, :func:`beam_search`, :func:`translate`
    and :func:`evaluate_bleu` need: :class:`Seq2Seq` and :class:`d2l_attn.transformer.Transformer`
    both have it. ``encode`` returns a state with an ``enc_outputs`` tensor ``(B, T_src, d)``."""

    bos_id: int
    eos_id: int
    pad_id: int
    decoder: StepDecoder
    training: bool

    def __call__(self, src: torch.Tensor, src_valid_lens: Any, tgt_in: torch.Tensor) -> torch.Tensor: ...

    def encode(self, src: torch.Tensor, src_valid_lens: Any) -> Any: ...

    def parameters(self, recurse: bool = True) -> Any: ...

    def train(self, mode: bool = True) -> Any: ...

    def eval(self) -> Any: ...


def _check_model(model: object) -> None:
    decoder = getattr(model, "decoder", None)
    if not (
        isinstance(model, nn.Module)
        and callable(getattr(model, "encode", None))
        and all(isinstance(getattr(model, name, None), int) for name in ("bos_id", "eos_id", "pad_id"))
        and callable(getattr(decoder, "step", None))
        and callable(getattr(decoder, "reorder_state", None))
    ):
        raise ValueError(
            "model must be an encoder-decoder nn.Module with encode(), decoder.step(), "
            "decoder.reorder_state() and int bos_id/eos_id/pad_id (a seq2seq.Seq2Seq or a "
            f"transformer.Transformer), got {type(model).__name__}"
        )


# --------------------------------------------------------------------------------------------
# decoding
# --------------------------------------------------------------------------------------------
def _cut(tokens: list[int], eos_id: int) -> list[int]:
    return tokens[: tokens.index(eos_id)] if eos_id in tokens else tokens


@torch.no_grad()
def greedy_decode(model: EncoderDecoderModel, src: torch.Tensor, src_valid_lens, max_len: int, return_weights: bool = False):
    """Translate a batch by picking the most likely token at every step.

    Returns a list of ``B`` token-id lists (``<eos>`` and what follows removed) and, with
    ``return_weights``, a list of ``B`` weight matrices ``(steps, src_valid_len)``, one row per
    generated token including ``<eos>``.
    """
    _check_model(model)
    positive_int("max_len", max_len)
    _check_tokens(src, "src")
    was_training = model.training
    model.eval()
    try:
        state = model.encode(src, src_valid_lens)
        batch_size = src.shape[0]
        tokens = torch.full((batch_size,), model.bos_id, dtype=torch.long, device=src.device)
        outputs, weights = [], []
        finished = torch.zeros(batch_size, dtype=torch.bool, device=src.device)
        for _ in range(max_len):
            logits, state, w = model.decoder.step(tokens, state)  # (B, V), state, (B, T)
            tokens = logits.argmax(dim=-1)  # (B,)
            outputs.append(tokens)
            weights.append(w)
            finished |= tokens == model.eos_id
            if bool(finished.all()):
                break
    finally:
        model.train(was_training)
    out = torch.stack(outputs, dim=1).tolist()  # (B, steps)
    results = [_cut(row, model.eos_id) for row in out]
    if not return_weights:
        return results
    w_all = torch.stack(weights, dim=1)  # (B, steps, T)
    lens = state.src_valid_lens.tolist()
    mats = [w_all[b, : min(len(results[b]) + 1, w_all.shape[1]), : lens[b]].cpu() for b in range(batch_size)]
    return results, mats


@torch.no_grad()
def beam_search(model: EncoderDecoderModel, src: torch.Tensor, src_valid_lens, max_len: int, beam_size: int = 4,
                length_penalty: float = 0.75, return_weights: bool = False):
    r"""Batch-aware beam search: keep the ``beam_size`` most likely prefixes per sentence.

    Every step extends each of the ``K`` prefixes by every token and keeps the ``K`` best by total
    log-probability :math:`\sum_{t} \log P(y_t \mid y_{<t}, x)`. A prefix that has produced
    ``<eos>`` is finished: it keeps its score and its slot. At the end (all finished, or
    ``max_len`` steps) the hypothesis with the best length-normalized score
    :math:`\frac{1}{L^\alpha}\sum_t \log P(y_t\mid\cdot)` wins (``alpha = length_penalty``,
    ``L`` counts ``<eos>``). With ``beam_size=1`` this is exactly :func:`greedy_decode`.

    Returns the same as :func:`greedy_decode`.
    """
    _check_model(model)
    positive_int("max_len", max_len)
    positive_int("beam_size", beam_size)
    if isinstance(length_penalty, bool) or not isinstance(length_penalty, (int, float)) or length_penalty < 0:
        raise ValueError(f"length_penalty must be a non-negative number, got {length_penalty!r}")
    _check_tokens(src, "src")
    was_training = model.training
    model.eval()
    try:
        device = src.device
        batch_size, beams = src.shape[0], beam_size
        state = model.encode(src, src_valid_lens)
        num_src = state.enc_outputs.shape[1]
        state = model.decoder.reorder_state(state, torch.arange(batch_size, device=device).repeat_interleave(beams))
        scores = torch.zeros(batch_size, beams, device=device)  # (B, K)
        scores[:, 1:] = float("-inf")  # at the start all K beams are the same: expand only one
        tokens = torch.full((batch_size * beams,), model.bos_id, dtype=torch.long, device=device)
        finished = torch.zeros(batch_size, beams, dtype=torch.bool, device=device)  # (B, K)
        lengths = torch.zeros(batch_size, beams, device=device)  # (B, K)
        history = torch.zeros(batch_size, beams, 0, dtype=torch.long, device=device)  # (B, K, t)
        w_history = torch.zeros(batch_size, beams, 0, num_src, device=device)  # (B, K, t, T)
        for _ in range(max_len):
            logits, state, w = model.decoder.step(tokens, state)  # (B*K, V), state, (B*K, T)
            vocab_size = logits.shape[-1]
            log_probs = F.log_softmax(logits.float(), dim=-1).view(batch_size, beams, vocab_size)  # (B, K, V)
            # a finished beam has one continuation, <pad>, at no cost: it keeps its score
            frozen = torch.full_like(log_probs, float("-inf"))
            frozen[..., model.pad_id] = 0.0
            log_probs = torch.where(finished.unsqueeze(-1), frozen, log_probs)  # (B, K, V)
            candidates = (scores.unsqueeze(-1) + log_probs).view(batch_size, beams * vocab_size)  # (B, K*V)
            scores, flat_index = candidates.topk(beams, dim=-1)  # (B, K)
            parent = torch.div(flat_index, vocab_size, rounding_mode="floor")  # (B, K)
            next_tokens = flat_index % vocab_size  # (B, K)
            rows = (torch.arange(batch_size, device=device).unsqueeze(1) * beams + parent).view(-1)  # (B*K,)
            state = model.decoder.reorder_state(state, rows)
            history = torch.cat([history.gather(1, parent.unsqueeze(-1).expand_as(history)),
                                 next_tokens.unsqueeze(-1)], dim=-1)  # (B, K, t+1)
            w = w.view(batch_size, beams, 1, num_src)  # (B, K, 1, T)
            idx = parent.view(batch_size, beams, 1, 1)
            w_history = torch.cat([w_history.gather(1, idx.expand_as(w_history)),
                                   w.gather(1, idx.expand_as(w))], dim=2)  # (B, K, t+1, T)
            was_finished = finished.gather(1, parent)  # (B, K)
            lengths = lengths.gather(1, parent) + (~was_finished).float()
            finished = was_finished | (next_tokens == model.eos_id)
            tokens = next_tokens.view(-1)
            if bool(finished.all()):
                break
        normalized = scores / lengths.clamp_min(1.0) ** length_penalty  # (B, K)
        best = normalized.argmax(dim=-1)  # (B,)
    finally:
        model.train(was_training)
    rows = torch.arange(batch_size, device=device)
    best_tokens = history[rows, best].tolist()  # (B, t)
    results = [_cut(row, model.eos_id) for row in best_tokens]
    if not return_weights:
        return results
    best_w = w_history[rows, best]  # (B, t, T)
    lens = state.src_valid_lens.view(batch_size, beams)[:, 0].tolist()
    mats = [best_w[b, : min(len(results[b]) + 1, best_w.shape[1]), : lens[b]].cpu() for b in range(batch_size)]
    return results, mats


@dataclass
class Translation:
    """One translated sentence: source tokens (with ``<eos>``), output tokens, attention weights."""

    source: list[str]
    tokens: list[str]
    weights: torch.Tensor  # (len(tokens) + 1 when <eos> was produced, len(source))

    @property
    def text(self) -> str:
        return " ".join(self.tokens)


def encode_sentences(sentences: Sequence[str] | Sequence[Sequence[str]], src_vocab: Vocab, num_steps: int):
    """Sentences (raw strings, preprocessed like the corpus, or token lists) -> tokens, ``src (N, T)``, ``lens (N,)``."""
    if isinstance(sentences, str):
        raise ValueError("sentences must be a list of sentences, not a single string")
    token_lists = [preprocess_nmt(s).split() if isinstance(s, str) else list(s) for s in sentences]
    if any(len(t) == 0 for t in token_lists):
        raise ValueError("every sentence must have at least one token")
    src, lens = build_array_nmt(token_lists, src_vocab, num_steps)  # (N, T), (N,)
    return token_lists, src, lens


def translate(model: EncoderDecoderModel, sentences: Sequence[str] | Sequence[Sequence[str]], src_vocab: Vocab,
              tgt_vocab: Vocab, num_steps: int, *, beam_size: int = 1, max_len: int | None = None,
              batch_size: int = 256, length_penalty: float = 0.75) -> list[Translation]:
    """Translate raw sentences (strings are preprocessed like the corpus) or token lists.

    ``beam_size=1`` decodes greedily; ``max_len`` (default ``num_steps``) bounds the output length.
    """
    _check_model(model)
    positive_int("num_steps", num_steps)
    positive_int("batch_size", batch_size)
    max_len = num_steps if max_len is None else positive_int("max_len", max_len)
    token_lists, src, lens = encode_sentences(sentences, src_vocab, num_steps)
    device = next(model.parameters()).device
    out: list[Translation] = []
    for start in range(0, len(token_lists), batch_size):
        s = src[start : start + batch_size].to(device)
        n = lens[start : start + batch_size].to(device)
        if beam_size == 1:
            ids, mats = greedy_decode(model, s, n, max_len, return_weights=True)
        else:
            ids, mats = beam_search(model, s, n, max_len, beam_size, length_penalty, return_weights=True)
        for i, (row, mat) in enumerate(zip(ids, mats)):
            source = src_vocab.to_tokens(s[i, : int(n[i])].tolist())
            out.append(Translation(source, tgt_vocab.to_tokens(row), mat))
    return out


def evaluate_bleu(model: EncoderDecoderModel, pairs: Sequence[tuple[Sequence[str], Sequence[str]]], src_vocab: Vocab,
                  tgt_vocab: Vocab, num_steps: int, *, beam_size: int = 1, max_len: int | None = None,
                  max_n: int = 4) -> dict:
    """Translate every distinct source of ``pairs`` once and score it against all its references.

    Returns ``{"corpus_bleu": standard BLEU-max_n (uniform weights), "mean_d2l_bleu": mean over
    sentences of the best D2L sentence BLEU (k=2) against any reference, "num_sentences": ...,
    "hypotheses": [...], "references": [...], "sources": [...]}``.
    """
    references = group_references(pairs)
    sources = [list(s) for s in references]
    refs = [references[tuple(s)] for s in sources]
    translations = translate(model, sources, src_vocab, tgt_vocab, num_steps, beam_size=beam_size, max_len=max_len)
    hyps = [t.tokens for t in translations]
    sentence_scores = [max(bleu(h, r, k=2) for r in rs) for h, rs in zip(hyps, refs)]
    return {
        "corpus_bleu": corpus_bleu(hyps, refs, max_n=max_n),
        "mean_d2l_bleu": sum(sentence_scores) / len(sentence_scores),
        "num_sentences": len(sources),
        "sources": sources,
        "hypotheses": hyps,
        "references": refs,
    }
