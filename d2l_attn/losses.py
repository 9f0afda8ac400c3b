r"""Losses of the book's sequence models: teacher forcing and cross-entropy over real tokens.

* :func:`shift_right` builds the decoder input for teacher forcing: ``<bos>`` followed by the
  target without its last token, so position :math:`t` predicts :math:`y_t` from :math:`y_{<t}`;
* :func:`masked_cross_entropy` averages over the real (non-padding) positions only, optionally
  with label smoothing (Szegedy et al., 2016);
* :func:`seq2seq_loss` is the loss of a translation batch, for :class:`d2l_attn.training.Trainer`
  (chapters 4 and 7);
* pretraining (chapter 9): :func:`lm_loss` (causal LM: position :math:`t` predicts token
  :math:`t+1`), :func:`mask_tokens` (BERT's 80/10/10 corruption) with :func:`mlm_loss`, and
  :func:`nsp_loss` (next-sentence prediction, a 2-way cross-entropy whose chance level is
  :math:`\ln 2`).

.. math::

    L = \frac{1}{\sum_b \ell_b} \sum_b \sum_{t < \ell_b} -\log \operatorname{softmax}(\mathbf{z}_{b,t})_{y_{b,t}}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

import torch
from torch.nn import functional as F

from ._checks import token_ids, unit_interval
from .masking import as_valid_lens

__all__ = [
    "shift_right",
    "masked_cross_entropy",
    "EncoderDecoderModel",
    "seq2seq_loss",
    "lm_loss",
    "MaskedTokens",
    "mask_tokens",
    "mlm_loss",
    "nsp_loss",
    "IGNORE_INDEX",
]


def shift_right(targets: torch.Tensor, bos_id: int) -> torch.Tensor:
    """Teacher-forcing input: ``targets (B, T)`` -> ``[<bos>, y_1, ..., y_{T-1}]`` of shape ``(B, T)``."""
    token_ids(targets, "targets")
    if not isinstance(bos_id, int) or isinstance(bos_id, bool) or bos_id < 0:
        raise ValueError(f"bos_id must be a non-negative int token id, got {bos_id!r}")
    bos = torch.full_like(targets[:, :1], bos_id)  # (B, 1)
    return torch.cat([bos, targets[:, :-1]], dim=1)  # (B, T)


def masked_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, valid_lens, label_smoothing: float = 0.0
) -> torch.Tensor:
    r"""Mean cross-entropy over the real (non-padding) target positions only.

    Padded positions are removed *before* the softmax, so their logits cannot influence the
    loss or its gradient (even if they are infinite or NaN). With ``label_smoothing`` :math:`\epsilon`
    the target distribution is :math:`(1-\epsilon)\,\mathbb{1}_{y} + \epsilon / V` (as in
    :func:`torch.nn.functional.cross_entropy`).

    Args:
        logits: ``(B, T, V)``.
        targets: ``(B, T)`` int64 token ids in ``[0, V)``.
        valid_lens: ``(B,)`` number of real target tokens per sequence, in ``[0, T]``.
        label_smoothing: :math:`\epsilon \in [0, 1]`.
    """
    if not isinstance(logits, torch.Tensor) or logits.dim() != 3:
        raise ValueError(f"logits must have shape (B, T, V), got {getattr(logits, 'shape', type(logits).__name__)}")
    if not isinstance(targets, torch.Tensor) or tuple(targets.shape) != tuple(logits.shape[:2]):
        raise ValueError(
            f"targets must have shape (B, T) = {tuple(logits.shape[:2])}, got {getattr(targets, 'shape', targets)}"
        )
    if targets.dtype != torch.long:
        raise ValueError(f"targets must hold int64 token ids, got dtype {targets.dtype}")
    label_smoothing = unit_interval("label_smoothing", label_smoothing)
    lens = as_valid_lens(valid_lens, max_len=logits.shape[1], device=logits.device)
    if tuple(lens.shape) != (logits.shape[0],):
        raise ValueError(f"valid_lens must have shape (B,) = ({logits.shape[0]},), got {tuple(lens.shape)}")
    keep = torch.arange(logits.shape[1], device=logits.device) < lens.unsqueeze(1)  # (B, T)
    real_targets = targets[keep]  # (N_real,)
    if real_targets.numel() == 0:
        raise ValueError("valid_lens are all 0: there is no target token to compute a loss on")
    token_ids(real_targets.unsqueeze(0), "targets (at real positions)", logits.shape[-1])
    return F.cross_entropy(logits[keep].float(), real_targets, label_smoothing=label_smoothing)  # scalar


class EncoderDecoderModel(Protocol):
    """What :func:`seq2seq_loss` needs: ``model(src, src_valid_lens, tgt_in) -> logits (B, T', V)``
    and the target vocabulary's ``bos_id`` (chapter 4's GRU model and chapter 7's Transformer)."""

    bos_id: int

    def __call__(self, src: torch.Tensor, src_valid_lens: Any, tgt_in: torch.Tensor) -> torch.Tensor: ...


def seq2seq_loss(
    model: EncoderDecoderModel, batch: Sequence[torch.Tensor], label_smoothing: float = 0.0
) -> tuple[torch.Tensor, int]:
    """Teacher-forced loss of a batch ``(src, src_valid_lens, tgt, tgt_valid_lens)`` for :class:`~d2l_attn.training.Trainer`.

    The decoder input is :func:`shift_right` of the target; returns ``(mean loss over real target
    tokens, number of real target tokens)``. ``label_smoothing`` as in :func:`masked_cross_entropy`
    (chapter 12; e.g. ``functools.partial(seq2seq_loss, label_smoothing=0.1)``).
    """
    if not callable(model) or not isinstance(getattr(model, "bos_id", None), int):
        raise ValueError(
            f"model must be an encoder-decoder called as model(src, src_valid_lens, tgt_in) with an int "
            f"bos_id (a Seq2Seq or a Transformer), got {type(model).__name__}"
        )
    if not isinstance(batch, (list, tuple)) or len(batch) != 4:
        raise ValueError("batch must be (src, src_valid_lens, tgt, tgt_valid_lens)")
    src, src_valid_lens, tgt, tgt_valid_lens = batch
    logits = model(src, src_valid_lens, shift_right(tgt, model.bos_id))  # (B, T', V)
    lens = as_valid_lens(tgt_valid_lens, max_len=tgt.shape[1], device=tgt.device, name="tgt_valid_lens")  # (B,)
    return masked_cross_entropy(logits, tgt, lens, label_smoothing), int(lens.sum())


# --------------------------------------------------------------------------------------------
# pretraining objectives (chapter 9)
# --------------------------------------------------------------------------------------------
#: Label of a position that is not predicted (as :func:`torch.nn.functional.cross_entropy`'s default).
IGNORE_INDEX = -100


def lm_loss(logits: torch.Tensor, tokens: torch.Tensor, valid_lens=None) -> torch.Tensor:
    r"""Causal language-modelling loss: :math:`-\frac{1}{N}\sum_{b,t} \log p(x_{b,t+1} \mid x_{b,\le t})`.

    ``logits (B, T, V)`` from a causal model on ``tokens (B, T)``; ``logits[:, t]`` is scored
    against ``tokens[:, t + 1]``, so each sequence gives ``valid_len - 1`` predictions (right padding).
    """
    if not isinstance(logits, torch.Tensor) or logits.dim() != 3 or logits.shape[1] < 2:
        raise ValueError(
            f"logits must have shape (B, T >= 2, V), got {getattr(logits, 'shape', type(logits).__name__)}"
        )
    if not isinstance(tokens, torch.Tensor) or tuple(tokens.shape) != tuple(logits.shape[:2]):
        raise ValueError(
            f"tokens must have shape (B, T) = {tuple(logits.shape[:2])}, got {getattr(tokens, 'shape', tokens)}"
        )
    if tokens.dtype != torch.long:
        raise ValueError(f"tokens must hold int64 token ids, got dtype {tokens.dtype}")
    T = logits.shape[1]
    lens = (
        torch.full((logits.shape[0],), T, device=logits.device)
        if valid_lens is None
        else as_valid_lens(valid_lens, max_len=T, device=logits.device)
    )
    return masked_cross_entropy(logits[:, :-1], tokens[:, 1:], (lens - 1).clamp(min=0))  # (B, T-1) scored


class MaskedTokens(NamedTuple):
    """Output of :func:`mask_tokens`: the corrupted ``inputs (B, T)`` and ``labels (B, T)`` (the
    original token at the chosen positions, :data:`IGNORE_INDEX` elsewhere)."""

    inputs: torch.Tensor
    labels: torch.Tensor


def mask_tokens(
    tokens: torch.Tensor,
    *,
    mask_id: int,
    vocab_size: int,
    rate: float = 0.15,
    special_ids: Sequence[int] = (),
    valid_lens=None,
    generator: torch.Generator | None = None,
) -> MaskedTokens:
    r"""BERT's masked-LM corruption (Devlin et al., 2019, §3.1).

    In each sequence, :math:`\max(1, \operatorname{round}(\text{rate}\cdot n))` of its :math:`n`
    candidate positions (real, not special) are chosen uniformly; each chosen token becomes
    ``mask_id`` with probability 0.8, a uniformly random token with probability 0.1, and stays
    unchanged with probability 0.1. The loss is computed at the chosen positions only, so the
    model must predict every token it sees (the unchanged 10%) and cannot rely on ``[MASK]``
    being present at test time.
    """
    token_ids(tokens, "tokens", vocab_size)
    rate = unit_interval("rate", rate)
    if not isinstance(mask_id, int) or not 0 <= mask_id < vocab_size:
        raise ValueError(f"mask_id must be a token id in [0, {vocab_size}), got {mask_id!r}")
    B, T = tokens.shape
    lens = (
        torch.full((B,), T) if valid_lens is None else as_valid_lens(valid_lens, max_len=T, device=torch.device("cpu"))
    )
    cpu = tokens.cpu()
    candidate = torch.arange(T).unsqueeze(0) < lens.cpu().unsqueeze(1)  # (B, T): real positions
    for sid in special_ids:
        candidate &= cpu != sid
    n = candidate.sum(dim=1)  # (B,)
    k = torch.where(n > 0, (rate * n.float()).round().long().clamp(min=1), torch.zeros_like(n))  # (B,)
    keys = torch.rand(B, T, generator=generator).masked_fill(~candidate, 2.0)  # non-candidates sort last
    rank = keys.argsort(dim=1).argsort(dim=1)  # (B, T): rank of each position's random key
    chosen = rank < k.unsqueeze(1)  # (B, T)
    u = torch.rand(B, T, generator=generator)
    random_tokens = torch.randint(0, vocab_size, (B, T), generator=generator)
    inputs = torch.where(chosen & (u < 0.8), torch.full_like(cpu, mask_id), cpu)
    inputs = torch.where(chosen & (u >= 0.8) & (u < 0.9), random_tokens, inputs)
    labels = torch.where(chosen, cpu, torch.full_like(cpu, IGNORE_INDEX))
    return MaskedTokens(inputs.to(tokens.device), labels.to(tokens.device))


def mlm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    r"""Mean cross-entropy at the predicted positions only (``labels != IGNORE_INDEX``).

    ``logits (B, T, V)`` and ``labels (B, T)`` (see :func:`mask_tokens`).
    """
    if not isinstance(logits, torch.Tensor) or logits.dim() != 3:
        raise ValueError(f"logits must have shape (B, T, V), got {getattr(logits, 'shape', type(logits).__name__)}")
    if not isinstance(labels, torch.Tensor) or tuple(labels.shape) != tuple(logits.shape[:2]):
        raise ValueError(
            f"labels must have shape (B, T) = {tuple(logits.shape[:2])}, got {getattr(labels, 'shape', labels)}"
        )
    if labels.dtype != torch.long:
        raise ValueError(f"labels must hold int64 token ids (or IGNORE_INDEX), got dtype {labels.dtype}")
    scored = labels != IGNORE_INDEX
    if not bool(scored.any()):
        raise ValueError("labels mark no position to predict (all are IGNORE_INDEX)")
    low, high = int(labels[scored].min()), int(labels[scored].max())
    if low < 0 or high >= logits.shape[-1]:
        raise ValueError(
            f"labels must hold token ids in [0, V={logits.shape[-1]}) or IGNORE_INDEX={IGNORE_INDEX}, "
            f"got ids from {low} to {high}"
        )
    return F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE_INDEX)


def nsp_loss(logits: torch.Tensor, is_next: torch.Tensor) -> torch.Tensor:
    r"""Next-sentence prediction: cross-entropy of ``logits (B, 2)`` against ``is_next (B,)``
    (BERT's convention: label 0 = "B follows A", 1 = "B is random"). A model that has learned
    nothing and predicts 50/50 scores :math:`\ln 2 \approx 0.693`."""
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[1] != 2:
        raise ValueError(f"logits must have shape (B, 2), got {getattr(logits, 'shape', type(logits).__name__)}")
    if not isinstance(is_next, torch.Tensor) or tuple(is_next.shape) != (logits.shape[0],):
        raise ValueError(
            f"is_next must have shape (B,) = ({logits.shape[0]},), got {getattr(is_next, 'shape', is_next)}"
        )
    token_ids(is_next, "is_next", 2, dim=1)
    return F.cross_entropy(logits.float(), is_next)
