#!/usr/bin/env python
r"""Training throughput of chapter 9's GPT: tokens per second, and MFU on a GPU.

Trains :class:`d2l_attn.models.gpt.GPT` for a fixed number of optimizer steps on random token
windows of a fixed shape (the model's cost does not depend on the token values) and prints one
row per setting: the reference attention path (matmul -> masked softmax -> matmul), fused
attention (:func:`torch.nn.functional.scaled_dot_product_attention`), and optionally bfloat16
autocast (``--bf16``) and :func:`torch.compile` (``--compile``).

MFU (model FLOP utilization) :math:`= \dfrac{6 N B T + 12 B d L T^2}{t_\text{step}\,\text{peak}}`
(Kaplan et al., 2020's :math:`6N` per token plus the attention scores, as in nanoGPT's
``estimate_mfu``; :func:`d2l_attn.profiling.training_flops`, tested against PyTorch's FLOP counter),
with the GPU's bf16 peak from :func:`d2l_attn.profiling.peak_bf16_flops`;
``n/a`` on a CPU. GPU numbers have not been measured for the book yet: run it and see.

Examples::

    python benchmarks/gpt_throughput.py                        # nanoGPT's shakespeare_char CPU sizes
    python benchmarks/gpt_throughput.py --device cuda --bf16 --compile --batch-size 64 --block-size 256 \
        --layers 6 --heads 6 --d-model 384                     # nanoGPT's GPU shakespeare_char sizes
    python benchmarks/gpt_throughput.py --steps 2 --warmup 1 --layers 1 --d-model 32 --heads 2  # smoke test
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch
from torch.nn import functional as F

from d2l_attn import utils
from d2l_attn.models.gpt import GPT, GPTConfig
from d2l_attn.profiling import peak_bf16_flops, training_flops


def measure(args, fused: bool, bf16: bool, compile_: bool, device: torch.device) -> tuple[float, float | None]:
    gen = torch.Generator().manual_seed(0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = GPT(
            GPTConfig(
                vocab_size=args.vocab_size,
                max_len=args.block_size,
                num_layers=args.layers,
                num_heads=args.heads,
                d_model=args.d_model,
            )
        ).to(device)
    for block in model.blocks:
        block.attention.attention.fused = fused
    net = torch.compile(model) if compile_ else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(0, args.vocab_size, (args.batch_size, args.block_size + 1), generator=gen).to(device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    def step():
        with autocast:
            logits = net(x[:, :-1])  # (B, T, V)
            loss = F.cross_entropy(logits.flatten(0, 1).float(), x[:, 1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / args.steps
    tokens = args.batch_size * args.block_size
    flops = training_flops(model, args.batch_size, args.block_size)  # 6 N B T + 12 B d L T^2, tested
    peak = peak_bf16_flops(torch.cuda.get_device_name(device)) if device.type == "cuda" else None
    return tokens / seconds, (flops / seconds / peak if peak else None)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="GPT training throughput (tokens/s, MFU on a GPU)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch-size", type=int, default=12)
    p.add_argument("--block-size", type=int, default=64)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--vocab-size", type=int, default=65)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--compile", action="store_true")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    print(
        f"machine: {utils.machine_description(device)}; "
        f"B={args.batch_size} T={args.block_size} L={args.layers} h={args.heads} d={args.d_model}"
    )
    settings = [("reference attention", False, False, False), ("fused attention", True, False, False)]
    if args.bf16:
        settings.append(("fused + bf16", True, True, False))
    if args.compile:
        settings.append(("fused + bf16 + compile" if args.bf16 else "fused + compile", True, args.bf16, True))
    print(f"{'setting':<28}{'tokens/s':>12}{'MFU':>8}")
    for label, fused, bf16, compile_ in settings:
        tps, mfu = measure(args, fused, bf16, compile_, device)
        print(f"{label:<28}{tps:>12,.0f}{(f'{100 * mfu:.1f}%' if mfu is not None else 'n/a'):>8}", flush=True)


if __name__ == "__main__":
    main()
