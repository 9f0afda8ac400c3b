r"""Counting what a model costs: parameters, FLOPs, time, and how much of the hardware it uses.

* :func:`count_parameters` -- parameters, without the embedding tables unless asked;
* :func:`training_flops` -- FLOPs of one training step of the Transformer (chapter 7);
* :func:`peak_bf16_flops` and :func:`model_flops_utilization` (MFU) -- achieved FLOP/s over the
  GPU's peak, used by chapter 7 and ``benchmarks/transformer_throughput.py``.
"""

from __future__ import annotations

import re

from torch import nn

__all__ = ["count_parameters", "training_flops", "peak_bf16_flops", "model_flops_utilization"]


def count_parameters(module: nn.Module, *, embeddings: bool = False) -> int:
    """Number of parameters, without the embedding tables unless ``embeddings=True``.

    Embedding lookups cost no multiply-adds, so FLOP estimates leave them out (Kaplan et al., 2020).
    """
    skip = set()
    if not embeddings:
        for m in module.modules():
            if isinstance(m, nn.Embedding):
                skip |= {id(p) for p in m.parameters()}
    return sum(p.numel() for p in module.parameters() if id(p) not in skip)


def training_flops(model: nn.Module, src_tokens: int, tgt_tokens: int) -> float:
    r"""Approximate FLOPs of one training step: :math:`6 (N_\text{enc} n_\text{src} + N_\text{dec} n_\text{tgt})`.

    The "6N per token" rule (2 FLOPs per parameter and token forward, 4 backward) applied to each
    stack with the tokens it processes; :math:`N` excludes the embedding tables and includes the
    output layer. The attention scores (:math:`\propto T^2 d` per layer) are left out: for the
    short sentences of this book they are a few percent.
    """
    n_enc = count_parameters(model.encoder)
    n_dec = count_parameters(model.decoder)
    return 6.0 * (n_enc * src_tokens + n_dec * tgt_tokens)


# Dense (no sparsity) bf16 tensor-core peaks from NVIDIA's data sheets, in FLOP/s. Patterns are
# tried in order against torch.cuda.get_device_name(); GPUs without bf16 tensor cores (V100, T4)
# and unknown names give None.
_PEAK_BF16 = (
    (r"H200", 989e12),
    (r"H100.*(PCIe|PCIE)", 756e12),
    (r"H100", 989e12),  # SXM / HBM3
    (r"A100", 312e12),
    (r"L40S", 362e12),
    (r"\bL4\b", 121e12),
    (r"\bA10\b", 125e12),
    (r"RTX 4090", 165e12),
    (r"RTX 3090", 71e12),
)


def peak_bf16_flops(device_name: str | None) -> float | None:
    """Peak dense bf16 FLOP/s of a GPU from its name (``torch.cuda.get_device_name()``), or ``None``."""
    if not device_name:
        return None
    for pattern, flops in _PEAK_BF16:
        if re.search(pattern, device_name):
            return flops
    return None


def model_flops_utilization(flops_per_step: float, seconds_per_step: float, peak_flops: float | None):
    r"""MFU :math:`= \dfrac{\text{model FLOPs per step} / \text{seconds per step}}{\text{peak FLOP/s}}`, or ``None``."""
    if peak_flops is None:
        return None
    if not seconds_per_step > 0 or not peak_flops > 0:
        raise ValueError(f"seconds_per_step and peak_flops must be positive, got {seconds_per_step}, {peak_flops}")
    return flops_per_step / seconds_per_step / peak_flops
