r"""Counting what a model costs: parameters, FLOPs, time, threads, and how much of the hardware it uses.

* :func:`count_parameters` -- parameters, without the embedding tables unless asked (chapters 5, 7);
* :func:`training_flops` -- the matrix-multiplication FLOPs of one training step of the
  Transformer or of a GPT-like stack, attention's :math:`T^2` term included (chapter 7,
  ``benchmarks/gpt_throughput.py``); the tests check it against
  :class:`torch.utils.flop_counter.FlopCounterMode` on a real forward and backward pass;
* :func:`timeit` -- seconds per call of a function: warm-up, then the best (or median) of several
  repeats, with CUDA synchronized around each timing (chapters 6 and 7, ``benchmarks/``);
* :func:`num_threads` -- run a block with another number of CPU threads, restored afterwards;
* :func:`peak_bf16_flops` and :func:`model_flops_utilization` (MFU) -- achieved FLOP/s over the
  GPU's peak, used by chapter 7 and ``benchmarks/transformer_throughput.py``;
* :func:`peak_tensor_memory` -- the peak bytes of the tensors a call allocates, on any device
  (chapter 8 and ``benchmarks/attention_scaling.py``).

**FLOPs of a training step.** A linear layer with weight :math:`W \in \mathbb{R}^{m \times n}`
applied to :math:`t` tokens costs :math:`2mnt` FLOPs forward (a multiply and an add per weight
and token) and twice that backward (the gradients of its input and of :math:`W`): :math:`6|W|t`
in all, the "6N per token" rule (Kaplan et al., 2020). Attention adds two matrix products per
layer whose size grows with the *square* of the length: the scores :math:`QK^\top` and the
weighted sum of the values, :math:`2 \cdot 2\,T_q T_k d` FLOPs forward per sequence (summed over
heads, :math:`d = h\,d_h`), three times that in training. For the Transformer,

.. math::

    \text{FLOPs} = 6\,(N_\text{enc}\, n_\text{src} + N_\text{dec}\, n_\text{tgt} + N_\text{kv}\, n_\text{src})
                 + 12\, B\, d\, \big(L_\text{enc}\, S^2 + L_\text{dec}\,(T^2 + T S)\big),

with :math:`n_\text{src} = BS`, :math:`n_\text{tgt} = BT` tokens, :math:`N` the entries of the
weight matrices (the output layer included; the cross-attention key/value projections,
:math:`N_\text{kv}`, read the :math:`BS` encoder outputs), and encoder self-, decoder self- and
cross-attention in the last term. Biases, LayerNorm, softmax and dropout are elementwise work,
not matrix products; embedding lookups are no arithmetic at all.
"""

from __future__ import annotations

import contextlib
import re
import statistics
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from ._checks import nonnegative_int, positive_int

__all__ = [
    "count_parameters",
    "training_flops",
    "timeit",
    "num_threads",
    "peak_bf16_flops",
    "model_flops_utilization",
    "peak_tensor_memory",
]


def count_parameters(module: nn.Module, *, embeddings: bool = False) -> int:
    """Number of parameters, without the embedding tables unless ``embeddings=True``.

    Embedding lookups cost no multiply-adds, so FLOP estimates leave them out (Kaplan et al., 2020).
    Parameters shared between modules are counted once.
    """
    if not isinstance(module, nn.Module):
        raise ValueError(f"module must be an nn.Module, got {type(module).__name__}")
    skip = set()
    if not embeddings:
        for m in module.modules():
            if isinstance(m, nn.Embedding):
                skip |= {id(p) for p in m.parameters()}
    return sum(p.numel() for p in module.parameters() if id(p) not in skip)


def _matrix_entries(module: nn.Module) -> int:
    """Entries of the weight matrices of every :class:`torch.nn.Linear` inside ``module``."""
    return sum(m.weight.numel() for m in module.modules() if isinstance(m, nn.Linear))


def training_flops(
    model: nn.Module, batch_size: int, src_len: int, tgt_len: int | None = None, *, attention: bool = True
) -> int:
    r"""Matrix-multiplication FLOPs of one training step (forward + backward) of a Transformer or a stack.

    ``model`` is a :class:`d2l_attn.models.transformer.Transformer` trained on batches of
    ``batch_size`` sentence pairs padded to ``src_len`` source and ``tgt_len`` target positions
    (the model computes on padding too), or, with ``tgt_len=None``, any stack of self-attention
    blocks whose every position passes through every weight matrix (GPT, an encoder): there every
    :class:`~d2l_attn.multihead.MultiHeadAttention` attends over the ``src_len`` positions, so
    :math:`\text{FLOPs} = 6 N B S + 12 B d L S^2` (nanoGPT's ``estimate_mfu``, with :math:`N` the
    matrix entries, a tied output matrix included: it multiplies). The count is the module
    docstring's formula: ``6 N`` per token for the weight matrices, plus, with ``attention=True``,
    the :math:`T^2` term of the attention scores and weighted sums. It assumes every parameter is
    trained (the backward pass computes every input gradient) and counts a causal mask's skipped
    half as work, as the kernels do. It equals what :class:`torch.utils.flop_counter.FlopCounterMode`
    counts (tested).
    """
    from .models.transformer import Transformer  # the tools import the models, never the reverse
    from .multihead import MultiHeadAttention

    for name, value in (("batch_size", batch_size), ("src_len", src_len)):
        positive_int(name, value)
    if not isinstance(model, Transformer):
        layers = (
            [m for m in model.modules() if isinstance(m, MultiHeadAttention)] if isinstance(model, nn.Module) else []
        )
        if tgt_len is not None or not layers:
            raise ValueError(
                "model must be a d2l_attn.models.transformer.Transformer (with tgt_len), or a stack of "
                f"MultiHeadAttention blocks (tgt_len=None), got {type(model).__name__} and tgt_len={tgt_len!r}"
            )
        forward = 2 * _matrix_entries(model) * batch_size * src_len
        if attention:  # QK^T and weights @ V over all query heads of every layer
            forward += 4 * batch_size * src_len**2 * sum(m.num_heads * m.head_dim for m in layers)
        return 3 * forward  # backward: the gradients of both factors of every product
    positive_int("tgt_len", tgt_len)
    encoder, decoder = model.encoder, model.decoder
    cross_kv = sum(
        block.cross_attention.W_k.weight.numel() + block.cross_attention.W_v.weight.numel() for block in decoder.blocks
    )  # they project the encoder outputs: src_len positions
    src_tokens, tgt_tokens = batch_size * src_len, batch_size * tgt_len
    forward = 2 * (
        _matrix_entries(encoder) * src_tokens
        + (_matrix_entries(decoder) - cross_kv) * tgt_tokens
        + cross_kv * src_tokens
    )
    if attention:
        pairs = len(encoder.blocks) * src_len**2 + len(decoder.blocks) * (tgt_len**2 + tgt_len * src_len)
        forward += 4 * batch_size * encoder.d_model * pairs  # QK^T and weights @ V, all heads together
    return 3 * forward  # backward: the gradients of both factors of every product


def timeit(
    fn: Callable[[], object],
    *,
    repeats: int = 5,
    warmup: int = 1,
    number: int = 1,
    reduce: str = "min",
    device: torch.device | str | None = None,
) -> float:
    """Seconds per call of ``fn()``: ``warmup`` untimed calls, then ``repeats`` timings of ``number`` calls.

    Returns the best (``reduce="min"``, the default: noise from other processes only ever adds
    time) or the median (``reduce="median"``) of the repeats, divided by ``number``. The clock is
    :func:`time.perf_counter`. On a CUDA ``device`` the GPU is synchronized before and after each
    timing, so the time covers the kernels and not just their launch; nothing else is synchronized.
    Compare implementations within one run, interleaved: machines are noisy.
    """
    if not callable(fn):
        raise ValueError(f"fn must be a callable without arguments, got {type(fn).__name__}")
    positive_int("repeats", repeats)
    nonnegative_int("warmup", warmup)
    positive_int("number", number)
    if reduce not in ("min", "median"):
        raise ValueError(f"reduce must be 'min' or 'median', got {reduce!r}")
    cuda = device is not None and torch.device(device).type == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        for _ in range(number):
            fn()
        sync()
        times.append((time.perf_counter() - start) / number)
    return min(times) if reduce == "min" else statistics.median(times)


@contextlib.contextmanager
def num_threads(n: int) -> Iterator[None]:
    """Run the ``with`` block with ``torch.set_num_threads(n)``; the previous number is restored, even on error.

    One thread gives steadier timings of small tensors on a shared machine (chapters 5-7).
    """
    positive_int("n", n)
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


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


def model_flops_utilization(flops_per_step: float, seconds_per_step: float, peak_flops: float | None) -> float | None:
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
