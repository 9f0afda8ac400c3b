r"""Losses of the book's sequence models: teacher forcing and cross-entropy over real tokens.

* :func:`shift_right` builds the decoder input for teacher forcing: ``<bos>`` followed by the
  target without its last token, so position :math:`t` predicts :math:`y_t` from :math:`y_{<t}`;
* :func:`masked_cross_entropy` averages over the real (non-padding) positions only, optionally
  with label smoothing (Szegedy et al., 2016);
* :func:`seq2seq_loss` is the loss of a translation batch, for :class:`d2l_attn.training.Trainer`
  (chapters 4 and 7).

.. math::

    L = \frac{1}{\sum_b \ell_b} \sum_b \sum_{t < \ell_b} -\log \operatorname{softmax}(\mathbf{z}_{b,t})_{y_{b,t}}
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

import torch
from torch.nn import functional as F

from ._checks import token_ids, unit_interval
from .masking import as_valid_lens

__all__ = ["shift_right", "masked_cross_entropy", "EncoderDecoderModel", "seq2seq_loss"]


def shift_right(targets: torch.Tensor, bos_id: int) -> torch.Tensor:
    """Teacher-forcing input: ``targets (B, T)`` -> ``[<bos>, y_1, ..., y_{T-1}]`` of shape ``(B, T)``."""
    token_ids(targets, "targets")
    if not isinstance(bos_id, int) or isinstance(bos_id, bool) or bos_id < 0:
        raise ValueError(f"bos_id must be a non-negative int token id, got {bos_id!r}")
    bos = torch.full_like(targets[:, :1], bos_id)  # (B, 1)
    return torch.cat([bos, targets[:, :-1]], dim=1)  # (B, T)


def masked_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, valid_lens,
                         label_smoothing: float = 0.0) -> torch.Tensor:
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


def seq2seq_loss(model: EncoderDecoderModel, batch: Sequence[torch.Tensor],
                 label_smoothing: float = 0.0) -> tuple[torch.Tensor, int]:
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
