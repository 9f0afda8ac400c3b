r"""A small convolutional network: the baseline that chapter 10 puts beside the Vision Transformer.

Three :math:`3 \times 3` convolutions (BatchNorm, ReLU) with one :math:`2 \times 2` max-pooling,
global average pooling and a linear classifier. Its inductive biases are the ones a ViT lacks:
**locality** (each output sees a :math:`3 \times 3` neighbourhood) and **translation
equivariance** (the same weights at every position) -- built in, not learned from data.
"""

from __future__ import annotations

import torch
from torch import nn

from .._checks import positive_int

__all__ = ["SmallCNN"]


def _conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU())


class SmallCNN(nn.Module):
    """``images (B, C, H, W)`` -> ``logits (B, num_classes)``; ``H`` and ``W`` at least 2.

    In training mode BatchNorm needs more than one value per channel after the pooling:
    ``B * (H // 2) * (W // 2) >= 2`` (a single 2 x 2 or 3 x 3 image trains only in a batch of 2).

    Args:
        in_channels: ``C``.
        num_classes: number of classes.
        width: channels of the first two convolutions (the third has ``2 * width``).
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 48):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("num_classes", num_classes), ("width", width)):
            positive_int(name, value)
        self.in_channels = in_channels
        self.features = nn.Sequential(
            _conv(in_channels, width),
            _conv(width, width),
            nn.MaxPool2d(2),  # (B, w, H/2, W/2)
            _conv(width, 2 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )  # (B, 2w)
        self.head = nn.Linear(2 * width, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if (
            not isinstance(images, torch.Tensor)
            or images.dim() != 4
            or images.shape[1] != self.in_channels
            or min(images.shape[-2:]) < 2
        ):
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"images must have shape (B, C={self.in_channels}, H>=2, W>=2), got {shape}")
        dtype = self.head.weight.dtype
        if images.dtype != dtype and not torch.is_autocast_enabled(images.device.type):
            raise ValueError(f"images have dtype {images.dtype} but the model's parameters are {dtype}: convert one")
        if self.training and images.shape[0] * (images.shape[2] // 2) * (images.shape[3] // 2) < 2:
            raise ValueError(
                f"images of shape {tuple(images.shape)} are too few values for BatchNorm in training mode: "
                "need B * (H // 2) * (W // 2) >= 2 (use a larger batch or image, or model.eval())"
            )
        return self.head(self.features(images))  # (B, num_classes)
