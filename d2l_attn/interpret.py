r"""Looking inside a trained model: every attention map of one forward pass (chapters 7 and 11).

:func:`collect_attention` runs a model once with ``return_weights=True`` and returns its maps by
name, each ``(B, L, h, T_q, T_k)`` (layers x heads), ready for
:func:`d2l_attn.plotting.show_attention_grid`. Nothing is stored on the model: the weights come
back from ``forward`` explicitly.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["collect_attention"]


@torch.no_grad()
def collect_attention(model: nn.Module, *inputs: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
    """All attention weights of ``model(*inputs, return_weights=True)``, by name, in eval mode.

    * a :class:`~d2l_attn.models.transformer.Transformer` gives ``encoder``, ``decoder_self``,
      ``decoder_cross`` (each ``(B, L, h, T_q, T_k)``);
    * a stack that returns ``(output, weights (B, L, h, T, T))`` gives ``self``;
    * the GRU model of chapter 4 gives ``cross`` ``(B, 1, 1, T', T)`` (one layer, one "head").

    The model's train/eval mode is restored afterwards.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    was_training = model.training
    model.eval()
    try:
        out = model(*inputs, return_weights=True, **kwargs)
    except TypeError as exc:
        raise ValueError(f"{type(model).__name__}.forward does not accept return_weights=True: {exc}") from exc
    finally:
        model.train(was_training)
    if not isinstance(out, tuple) or len(out) != 2:
        raise ValueError(f"{type(model).__name__}(..., return_weights=True) must return (output, weights)")
    weights = out[1]
    if hasattr(weights, "_asdict"):  # e.g. TransformerWeights
        return {name: w for name, w in weights._asdict().items()}
    if isinstance(weights, torch.Tensor) and weights.dim() == 5:
        return {"self": weights}
    if isinstance(weights, torch.Tensor) and weights.dim() == 3:
        return {"cross": weights[:, None, None]}  # (B, T', T) -> (B, 1, 1, T', T)
    raise ValueError(f"unexpected attention weights from {type(model).__name__}: {type(weights).__name__}")
