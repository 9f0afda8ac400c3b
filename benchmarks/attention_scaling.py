#!/usr/bin/env python
r"""Time and peak memory of the chapter-8 attention variants as the sequence length n grows.

One forward pass per (variant, n), batch 1, ``--heads`` heads of size ``--head-dim``:

* **naive** -- :math:`\mathbf{S} = \mathbf{Q}\mathbf{K}^\top/\sqrt{d}`, softmax, :math:`\mathbf{P}\mathbf{V}`
  (builds two :math:`n \times n` tensors per head; skipped above ``--naive-max``);
* **sdpa** -- :func:`torch.nn.functional.scaled_dot_product_attention` with its default backend;
  on a GPU also **sdpa-flash**, restricted to the FlashAttention backend;
* **tiled** -- :func:`d2l_attn.efficient.tiled_attention` (online softmax, plain PyTorch);
* **linear** -- :class:`d2l_attn.efficient.LinearAttention`;
* **linformer** -- :class:`d2l_attn.efficient.LowRankAttention` with ``--rank``.

Memory: on a CPU, the inputs plus the peak bytes of the tensors the call allocates
(:func:`d2l_attn.profiling.peak_tensor_memory`; buffers a fused kernel allocates and frees inside
one operator are not seen); on a GPU, ``torch.cuda.max_memory_allocated`` minus the memory
allocated before the call, plus the inputs. Time: best of ``--repeats`` calls. The script prints
one table, the fitted log-log slopes of time and memory (from ``--fit-from`` on), and writes a
log-log plot (``--plot``). On a GPU it runs in bf16 by default (``--dtype``). Numbers are for the
machine it ran on; compare ratios within one run.

Examples::

    python benchmarks/attention_scaling.py                          # CPU, n = 256 ... 16384
    python benchmarks/attention_scaling.py --device cuda            # bf16, flash backend too
    python benchmarks/attention_scaling.py --max-n 1024 --repeats 1 # smoke test
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np
import torch
from torch.nn import functional as F

from d2l_attn import efficient, utils
from d2l_attn.profiling import peak_tensor_memory


def naive(q, k, v):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, h, n, n)
    return torch.softmax(scores, dim=-1) @ v  # (B, h, n, d)


def sdpa_flash(q, k, v):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        return F.scaled_dot_product_attention(q, k, v)


def variants(args, device):
    out = {
        "naive": naive,
        "sdpa": F.scaled_dot_product_attention,
        "tiled": lambda q, k, v: efficient.tiled_attention(q, k, v, block_q=args.block_q, block_k=args.block_k),
        "linear": efficient.LinearAttention(),
        "linformer": efficient.LowRankAttention(args.max_n, args.rank).to(device, args.torch_dtype),
    }
    if device.type == "cuda":
        out["sdpa-flash"] = sdpa_flash
    return out


def measure(fn, q, k, v, device, repeats):
    inputs = 3 * q.nelement() * q.element_size()
    with torch.no_grad():
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
            fn(q, k, v)
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated() - before
        else:
            peak = peak_tensor_memory(fn, q, k, v)[1]
        best = float("inf")
        for _ in range(repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            fn(q, k, v)
            if device.type == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
    return best, inputs + peak


def slope(points: dict[int, float], from_n: int) -> float:
    ns = [n for n in sorted(points) if n >= from_n]
    if len(ns) < 2:
        return float("nan")
    return float(np.polyfit(np.log(ns), np.log([points[n] for n in ns]), 1)[0])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--dtype", choices=["float32", "bfloat16"], default=None, help="default: bfloat16 on CUDA, float32 elsewhere"
    )
    parser.add_argument("--min-n", type=int, default=256)
    parser.add_argument("--max-n", type=int, default=16384)
    parser.add_argument("--naive-max", type=int, default=16384)
    parser.add_argument("--heads", type=int, default=1)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--rank", type=int, default=64)
    parser.add_argument("--block-q", type=int, default=128)
    parser.add_argument("--block-k", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--fit-from", type=int, default=1024)
    parser.add_argument("--plot", default="attention_scaling.png", help="'' for no plot")
    args = parser.parse_args(argv)
    if args.min_n < 1 or args.max_n < args.min_n:
        parser.error(f"need 1 <= --min-n <= --max-n, got {args.min_n}, {args.max_n}")
    if args.min_n % args.block_q or args.min_n % args.block_k:
        parser.error("--min-n must be a multiple of --block-q and --block-k (tiled attention)")
    device = torch.device(args.device)
    args.torch_dtype = getattr(torch, args.dtype or ("bfloat16" if device.type == "cuda" else "float32"))

    lengths, n = [], args.min_n
    while n <= args.max_n:
        lengths.append(n)
        n *= 2
    where = utils.machine_description(device)
    print(f"# attention scaling: {where}, {args.torch_dtype}, B=1, h={args.heads}, d={args.head_dim}")
    if device.type != "cuda":
        print("# no GPU here: GPU (bf16, flash backend) numbers are not measured in this run")

    table = {name: {} for name in variants(args, device)}
    g = torch.Generator(device=device).manual_seed(0)
    print(f"{'variant':>10} {'n':>6} {'ms':>10} {'MiB':>10}")
    for n in lengths:
        q, k, v = torch.randn(
            3, 1, args.heads, n, args.head_dim, generator=g, device=device, dtype=args.torch_dtype
        ).unbind(0)
        for name, fn in variants(args, device).items():
            if name == "naive" and n > args.naive_max:
                continue
            seconds, nbytes = measure(fn, q, k, v, device, args.repeats)
            table[name][n] = (seconds, nbytes)
            print(f"{name:>10} {n:6d} {1e3 * seconds:10.2f} {nbytes / 2**20:10.2f}", flush=True)

    print(f"# log-log slopes from n = {args.fit_from} (time, memory):")
    for name, points in table.items():
        t = slope({n: s for n, (s, _) in points.items()}, args.fit_from)
        m = slope({n: b for n, (_, b) in points.items()}, args.fit_from)
        print(f"{name:>10}  time {t:5.2f}  memory {m:5.2f}")

    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure

        fig = Figure(figsize=(10, 3.8), layout="constrained")
        ax_t, ax_m = fig.subplots(1, 2)
        for name, points in table.items():
            ns = sorted(points)
            ax_t.plot(ns, [1e3 * points[n][0] for n in ns], "o-", label=name)
            ax_m.plot(ns, [points[n][1] / 2**20 for n in ns], "o-", label=name)
        for ax, label in ((ax_t, "ms per forward"), (ax_m, "memory (MiB)")):
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("sequence length n")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
        ax_t.set_title(where)
        ax_m.legend(fontsize=8)
        fig.savefig(args.plot, dpi=100)
        print(f"# plot written to {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
