r"""The Vision Transformer (chapter 10): an image is a sequence of patches.

Dosovitskiy et al. (2021) cut an image into :math:`N` patches of :math:`p \times p` pixels, map
each linearly to :math:`d` numbers (:class:`d2l_attn.embeddings.PatchEmbedding`), prepend a
learned [CLS] vector, add learned 1-D positions (:class:`d2l_attn.embeddings.ImageEmbedding`) and
run a stack of **pre-LN** Transformer encoder blocks with GELU (:class:`d2l_attn.blocks.Block`
with ``norm_first=True``), followed by a final LayerNorm and a linear head on the [CLS] output:

.. math::

    \mathbf{H}^{(0)} = [\mathbf{x}_\text{cls}; \mathbf{W}\mathbf{x}_1; \dots; \mathbf{W}\mathbf{x}_N] + E,\qquad
    \mathbf{H}^{(l)} = \operatorname{Block}(\mathbf{H}^{(l-1)}),\qquad
    \hat{\mathbf{y}} = \mathbf{W}_\text{head}\,\operatorname{LN}(\mathbf{H}^{(L)})_0 .

With ``pool="mean"`` there is no [CLS] token and the head reads the mean over the patches
(global average pooling, as in later ViT variants). :func:`d2l_attn.interop.from_hf_vit` builds
a :class:`ViT` from a Hugging Face ``transformers.ViTModel`` (tested to 1e-5).

:func:`mean_attention_distance` is the statistic of the ViT paper's Figure 7 (right): for each
head, the distance in pixels between a query patch and the patches it attends to, weighted by
the attention weights -- the attention analogue of a receptive field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .._checks import config_from, heads_divide, positive_int, positive_number, unit_interval
from ..blocks import Block
from ..embeddings import ImageEmbedding

__all__ = ["ViTConfig", "ViT", "mean_attention_distance"]


@dataclass(frozen=True)
class ViTConfig:
    """Sizes of a :class:`ViT`. The defaults fit scikit-learn's 8x8 digits (4 x 4 patches of 2 x 2)."""

    image_size: int = 8
    patch_size: int = 2
    in_channels: int = 1
    num_classes: int = 10
    d_model: int = 64
    num_heads: int = 4
    d_ff: int = 128
    num_layers: int = 2
    dropout: float = 0.0
    pool: str = "cls"  # "cls": the [CLS] token's output; "mean": mean over the patch outputs
    eps: float = 1e-5  # LayerNorm epsilon (Hugging Face's ViT uses 1e-12)

    def __post_init__(self):
        for name in (
            "image_size",
            "patch_size",
            "in_channels",
            "num_classes",
            "d_model",
            "num_heads",
            "d_ff",
            "num_layers",
        ):
            positive_int(name, getattr(self, name))
        heads_divide(self.d_model, self.num_heads)
        unit_interval("dropout", self.dropout)
        positive_number("eps", self.eps)
        if self.pool not in ("cls", "mean"):
            raise ValueError(f"pool must be 'cls' or 'mean', got {self.pool!r}")
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size={self.image_size} must be a multiple of patch_size={self.patch_size}")


class ViT(nn.Module):
    """Vision Transformer classifier: ``images (B, C, H, W)`` -> ``logits (B, num_classes)``.

    ``forward(images, return_weights=True)`` also returns the attention weights of every block,
    ``(B, L, h, T, T)`` with ``T = N + 1`` ([CLS] first) or ``N`` (mean pooling). Pass either a
    :class:`ViTConfig` or its fields as keywords.
    """

    def __init__(self, config: ViTConfig | None = None, **sizes: Any):
        super().__init__()
        self.config = c = config_from(ViTConfig, config, sizes)
        self.embed = ImageEmbedding(
            c.image_size, c.patch_size, c.in_channels, c.d_model, c.dropout, cls_token=c.pool == "cls"
        )
        self.blocks = nn.ModuleList(
            Block.build(c.d_model, c.num_heads, c.d_ff, c.dropout, norm_first=True, activation="gelu", eps=c.eps)
            for _ in range(c.num_layers)
        )
        self.norm = nn.LayerNorm(c.d_model, eps=c.eps)
        self.head = nn.Linear(c.d_model, c.num_classes)

    @property
    def grid(self) -> tuple[int, int]:
        """Patches per column and per row."""
        return self.embed.patches.grid

    def features(
        self, images: torch.Tensor, return_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``LN(H^{(L)})`` of shape ``(B, T, d)`` (and the weights ``(B, L, h, T, T)``)."""
        dtype = self.head.weight.dtype
        if (
            isinstance(images, torch.Tensor)
            and images.dtype != dtype
            and not torch.is_autocast_enabled(images.device.type)
        ):
            kind = "a floating-point tensor" if not images.is_floating_point() else f"in the model's dtype {dtype}"
            raise ValueError(
                f"images must be {kind}, got dtype {images.dtype} (use images.to({dtype}) or model.to(...))"
            )
        h = self.embed(images)  # (B, T, d)
        weights = []
        for block in self.blocks:  # called as modules: forward hooks fire
            h, w, _ = block(h, need_weights=return_weights)  # (B, T, d), (B, h, T, T) or None
            weights.append(w)
        if return_weights:
            return self.norm(h), torch.stack(weights, dim=1)  # (B, T, d), (B, L, h, T, T)
        return self.norm(h)

    def forward(
        self, images: torch.Tensor, return_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        out = self.features(images, return_weights)
        h, weights = out if return_weights else (out, None)
        pooled = h[:, 0] if self.config.pool == "cls" else h.mean(dim=1)  # (B, d)
        logits = self.head(pooled)  # (B, num_classes)
        return (logits, weights) if return_weights else logits


def mean_attention_distance(
    weights: torch.Tensor, grid: tuple[int, int], patch_size: int, has_cls: bool = True
) -> torch.Tensor:
    r"""Mean attention distance in pixels per layer and head, averaged over images and query patches.

    For query patch :math:`i` with attention weights :math:`a_{ij}` over the patches :math:`j`
    (the [CLS] key is dropped and the weights renormalized over the patches),

    .. math:: D_i = p \sum_j \frac{a_{ij}}{\sum_{j'} a_{ij'}} \lVert \mathbf{r}_i - \mathbf{r}_j \rVert_2,

    where :math:`\mathbf{r}` is a patch's (row, column) on the grid and :math:`p` the patch size.

    Args:
        weights: ``(B, L, h, T, T)`` from :meth:`ViT.forward` (or ``(B, h, T, T)`` for one layer).
        grid: patches per column and row, ``(H/p, W/p)``.
        patch_size: ``p``, to report pixels.
        has_cls: token 0 is [CLS] (it is excluded as query and as key).

    Returns ``(L, h)`` (or ``(h,)``).
    """
    if not isinstance(weights, torch.Tensor) or weights.dim() not in (4, 5):
        raise ValueError(
            f"weights must have shape (B, L, h, T, T) or (B, h, T, T), got {tuple(getattr(weights, 'shape', ()))}"
        )
    rows, cols = grid
    n = rows * cols
    if weights.shape[-1] != weights.shape[-2] or weights.shape[-1] != n + bool(has_cls):
        raise ValueError(
            f"weights must attend over {n + bool(has_cls)} tokens ({rows}x{cols} patches"
            f"{' + [CLS]' if has_cls else ''}), got the last two dimensions {tuple(weights.shape[-2:])}"
        )
    positive_int("patch_size", patch_size)
    start = int(bool(has_cls))
    a = weights[..., start:, start:].float()  # (..., N, N) patches only
    a = a / a.sum(-1, keepdim=True).clamp_min(1e-12)
    r = torch.stack(torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij"), -1)  # (rows, cols, 2)
    r = r.reshape(n, 2).float().to(a.device)
    dist = torch.cdist(r, r) * patch_size  # (N, N) pixels
    per_query = (a * dist).sum(-1)  # (..., N)
    return per_query.mean(dim=(0, -1))  # (L, h) or (h,)
