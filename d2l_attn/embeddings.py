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

**Images as sequences** (chapter 10, Dosovitskiy et al., 2021). :func:`patchify` cuts an image
``(B, C, H, W)`` into :math:`N = (H/p)(W/p)` non-overlapping :math:`p \times p` patches and
flattens each into a vector of :math:`C p^2` numbers (channel-major, then rows, then columns:
the order of :func:`torch.nn.functional.unfold` and of a convolution's weight).
:class:`PatchEmbedding` maps each patch linearly, :math:`\mathbf{z}_i = \mathbf{W}\mathbf{x}_i +
\mathbf{b}` -- exactly a convolution with kernel size and stride :math:`p`
(:meth:`PatchEmbedding.as_conv` builds that convolution; chapter 10 checks the equality).
:class:`ImageEmbedding` prepends a learned [CLS] vector and adds learned 1-D positions:

.. math:: \mathbf{H}^{(0)} = [\mathbf{x}_\text{cls};\, \mathbf{z}_1; \dots; \mathbf{z}_N] + E_{0:N+1}.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ._checks import positive_int, unit_interval
from .positional import LearnedPositionalEncoding, SinusoidalPositionalEncoding

__all__ = ["TokenEmbedding", "patchify", "PatchEmbedding", "ImageEmbedding"]


class TokenEmbedding(nn.Module):
    r"""``tokens (B, T)`` -> ``dropout(sqrt(d) E[tokens] + P[offset : offset + T])`` of shape ``(B, T, d_model)``.

    Args:
        vocab_size: number of token ids.
        d_model: embedding size.
        max_len: longest sequence (positions ``0 .. max_len - 1``).
        dropout: dropout on the sum.
        positions: ``"sinusoidal"`` (fixed, chapter 6) or ``"learned"`` (a trainable table).
    """

    def __init__(
        self, vocab_size: int, d_model: int, max_len: int = 1000, dropout: float = 0.0, positions: str = "sinusoidal"
    ):
        super().__init__()
        positive_int("vocab_size", vocab_size)
        positive_int("d_model", d_model)
        dropout = unit_interval("dropout", dropout)
        if positions not in ("sinusoidal", "learned"):
            raise ValueError(f"positions must be 'sinusoidal' or 'learned', got {positions!r}")
        self.vocab_size, self.d_model, self.positions = vocab_size, d_model, positions
        self.embedding = nn.Embedding(vocab_size, d_model)
        nn.init.normal_(self.embedding.weight, std=d_model**-0.5)
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


def _check_images(images, in_channels: int, image_size: tuple[int, int]) -> None:
    expected = (in_channels, *image_size)
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or tuple(images.shape[1:]) != expected:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must have shape (B, C={expected[0]}, H={expected[1]}, W={expected[2]}), got {shape}")


def _pair(name: str, value) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    for v in pair:
        positive_int(name, v)
    return pair


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, N, C * p * p)``: the non-overlapping ``p x p`` patches, row by row.

    ``H`` and ``W`` must be multiples of ``p``. Each patch is flattened channel-major (the layout of
    a ``Conv2d`` weight ``(d, C, p, p)``), so a linear map of the patches is a strided convolution.
    """
    positive_int("patch_size", patch_size)
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise ValueError(f"images must have shape (B, C, H, W), got {tuple(getattr(images, 'shape', ()))}")
    h, w = images.shape[-2:]
    if h % patch_size or w % patch_size:
        raise ValueError(f"image height and width ({h}, {w}) must be multiples of patch_size={patch_size}")
    patches = F.unfold(images, kernel_size=patch_size, stride=patch_size)  # (B, C p p, N)
    return patches.transpose(1, 2)  # (B, N, C p p)


class PatchEmbedding(nn.Module):
    r"""``images (B, C, H, W)`` -> ``(B, N, d_model)``: :math:`\mathbf{z}_i = \mathbf{W}\mathbf{x}_i + \mathbf{b}`
    for each flattened ``p x p`` patch :math:`\mathbf{x}_i`, :math:`N = (H/p)(W/p)`.

    Args:
        image_size: ``H`` (square) or ``(H, W)``, multiples of ``patch_size``.
        patch_size: side ``p`` of the square patches.
        in_channels: ``C``.
        d_model: embedding size.
    """

    def __init__(self, image_size, patch_size: int, in_channels: int, d_model: int):
        super().__init__()
        self.image_size = _pair("image_size", image_size)
        positive_int("patch_size", patch_size)
        positive_int("in_channels", in_channels)
        positive_int("d_model", d_model)
        if any(s % patch_size for s in self.image_size):
            raise ValueError(f"image_size {self.image_size} must be a multiple of patch_size={patch_size}")
        self.patch_size, self.in_channels, self.d_model = patch_size, in_channels, d_model
        self.grid = (self.image_size[0] // patch_size, self.image_size[1] // patch_size)
        self.proj = nn.Linear(in_channels * patch_size**2, d_model)

    @property
    def num_patches(self) -> int:
        """:math:`N = (H/p)(W/p)`."""
        return self.grid[0] * self.grid[1]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        _check_images(images, self.in_channels, self.image_size)
        return self.proj(patchify(images, self.patch_size))  # (B, N, d)

    @torch.no_grad()
    def as_conv(self) -> nn.Conv2d:
        """The same map as a ``Conv2d(C, d, kernel_size=p, stride=p)``; its output ``(B, d, H/p, W/p)``
        flattened to ``(B, N, d)`` equals ``forward``."""
        p = self.patch_size
        conv = nn.Conv2d(self.in_channels, self.d_model, p, stride=p).to(self.proj.weight)
        conv.weight.copy_(self.proj.weight.view(self.d_model, self.in_channels, p, p))
        conv.bias.copy_(self.proj.bias)
        return conv

    @torch.no_grad()
    def load_conv_weights(self, conv: nn.Conv2d) -> PatchEmbedding:
        """Copy a patch convolution's weights (e.g. Hugging Face ViT's ``patch_embeddings.projection``)."""
        expected = (self.d_model, self.in_channels, self.patch_size, self.patch_size)
        if tuple(conv.weight.shape) != expected or tuple(conv.stride) != (self.patch_size,) * 2:
            raise ValueError(
                f"conv must have weight {expected} and stride {self.patch_size}, got "
                f"{tuple(conv.weight.shape)} and {tuple(conv.stride)}"
            )
        self.proj.weight.copy_(conv.weight.reshape(self.d_model, -1))
        self.proj.bias.copy_(conv.bias)
        return self

    def extra_repr(self) -> str:
        return f"image_size={self.image_size}, patch_size={self.patch_size}, grid={self.grid}"


class ImageEmbedding(nn.Module):
    r"""Patches, an optional learned [CLS] vector in front, and learned 1-D positions.

    ``images (B, C, H, W)`` -> ``dropout([x_cls; W x_1 + b; ...; W x_N + b] + E)`` of shape
    ``(B, N + 1, d_model)`` with ``cls_token=True``, else ``(B, N, d_model)``. The position table
    ``E`` (:class:`~d2l_attn.positional.LearnedPositionalEncoding`) knows nothing of 2-D: whatever
    it says about rows and columns is learned (chapter 10 looks).
    """

    def __init__(
        self, image_size, patch_size: int, in_channels: int, d_model: int, dropout: float = 0.0, cls_token: bool = True
    ):
        super().__init__()
        self.patches = PatchEmbedding(image_size, patch_size, in_channels, d_model)
        self.has_cls = bool(cls_token)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d_model)) if self.has_cls else None
        num_positions = self.patches.num_patches + self.has_cls
        self.pos_encoding = LearnedPositionalEncoding(d_model, num_positions, dropout)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        z = self.patches(images)  # (B, N, d)
        if self.has_cls:
            z = torch.cat([self.cls_token.expand(z.shape[0], -1, -1), z], dim=1)  # (B, N + 1, d)
        return self.pos_encoding(z)  # (B, N (+1), d)

    def extra_repr(self) -> str:
        return f"cls_token={self.has_cls}"
