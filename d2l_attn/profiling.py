r"""Counting what a model costs: parameters, FLOPs, time, and how much of the hardware it uses.

* :func:`count_parameters` -- parameters, without the embedding tables unless asked;
* :func:`training_flops` -- FLOPs of one training step of the Transformer (chapter 7);
* :func:`peak_bf16_flops` and :func:`model_flops_utilization` (MFU) -- achieved FLOP/s over the
  GPU's peak, used by chapter 7 and ``benchmarks/transformer_throughput.py``;
* :func:`peak_tensor_memory` -- the peak bytes of the tensors a call allocates, on any device
  (chapter 8 and ``benchmarks/attention_scaling.py``).
"""

from __future__ import annotations

import re
import weakref
from typing import Any, Callable

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

__all__ = ["count_parameters", "training_flops", "peak_bf16_flops", "model_flops_utilization",
           "peak_tensor_memory"]


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


class _LiveTensors(TorchDispatchMode):
    """Counts the bytes of live storages created by aten ops; remembers the peak."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, list[int]] = {}  # storage data_ptr -> [bytes, tensors using it]
        self.current = self.peak = 0

    def _release(self, key: int) -> None:
        entry = self.live.get(key)
        if entry is not None:
            entry[1] -= 1
            if entry[1] == 0:
                self.current -= entry[0]
                del self.live[key]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                storage = t.untyped_storage()
                key = storage.data_ptr()
                if key not in self.live:
                    self.live[key] = [storage.nbytes(), 0]
                    self.current += storage.nbytes()
                    self.peak = max(self.peak, self.current)
                self.live[key][1] += 1
                weakref.finalize(t, self._release, key)
        return out


def peak_tensor_memory(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, int]:
    """Run ``fn(*args, **kwargs)``; return its result and the peak bytes of tensors it allocated.

    Every tensor an operator returns during the call is counted from its creation until the last
    Python reference to it dies (views share their base's storage and are counted once); the
    inputs are not counted. This works on CPU, where ``tracemalloc`` does not see PyTorch's
    allocations, and does not depend on the allocator's caching. Buffers an operator allocates
    and frees *inside* one kernel (e.g. the per-thread tiles of a fused attention kernel) are not
    seen; tensors the result keeps alive are.
    """
    tracker = _LiveTensors()
    with tracker:
        result = fn(*args, **kwargs)
    return result, tracker.peak
