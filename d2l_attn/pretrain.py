r"""Pretrain a character-level GPT on Tiny Shakespeare, on one device or many (chapter 9).

Run on one process::

    python -m d2l_attn.pretrain --steps 2000

or unchanged on ``N`` processes with DistributedDataParallel (DDP; Li et al., 2020)::

    torchrun --nproc_per_node=N -m d2l_attn.pretrain --steps 2000

``torchrun`` sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``; the script then joins a process group
(NCCL on GPUs, gloo on CPUs) and wraps the model in DDP. Every step draws the **same global
batch** of ``--batch-size`` windows on every rank (a generator seeded identically) and rank
:math:`r` of :math:`W` trains on rows :math:`[rB/W, (r+1)B/W)`. DDP averages the gradients over
ranks during ``backward``, so with equal shares

.. math:: \frac{1}{W}\sum_r \nabla \frac{1}{B/W}\sum_{i \in r} \ell_i = \nabla \frac{1}{B}\sum_i \ell_i ,

exactly the gradient of one process on the whole batch: the loss curve is the same (up to float
summation order), only faster. ``tests/test_pretrain_ddp.py`` checks this with 2 gloo processes.

On a GPU, ``--bf16`` uses bfloat16 autocast and ``--compile`` :func:`torch.compile`; attention is
fused (``F.scaled_dot_product_attention``) by default. The script prints one JSON line per
``--log-every`` steps and writes the losses to ``--out`` (rank 0).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import time

import torch
import torch.distributed as dist
from torch.nn import functional as F

from .data.text import lm_batch, load_tiny_shakespeare
from .models.gpt import GPT, GPTConfig
from .optim import cosine_factor, weight_decay_groups

__all__ = ["parse_args", "learning_rate", "main"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=12, help="global batch (split over the processes)")
    p.add_argument("--block-size", type=int, default=64)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (nanoGPT's shakespeare_char)")
    p.add_argument("--min-lr", type=float, default=1e-4, help="cosine decay ends here at the last step")
    p.add_argument("--warmup", type=int, default=100, help="linear warm-up steps")
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--eval-every", type=int, default=0, help="validation loss every N steps (0: only at the end)")
    p.add_argument("--eval-batches", type=int, default=20, help="batches per validation estimate (nanoGPT: eval_iters)")
    p.add_argument("--seed", type=int, default=1337, help="model initialization and batch order")
    p.add_argument("--log-every", type=int, default=100)
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast (GPU)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--no-fused-adam", action="store_true", help="per-tensor AdamW (nanoGPT's CPU choice)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads per process (0: torch's default)")
    p.add_argument("--out", default="", help="write {'losses': [...], ...} as JSON here (rank 0)")
    return _checked(p, p.parse_args(argv))


def _checked(p: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    """Refuse out-of-range options before anything runs (``p.error``: usage, the option, exit status 2)."""
    for name in ("steps", "batch_size", "block_size", "layers", "heads", "d_model", "eval_batches", "log_every"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
    for name in ("warmup", "eval_every", "threads"):
        if getattr(args, name) < 0:
            p.error(f"--{name.replace('_', '-')} must be a non-negative integer, got {getattr(args, name)}")
    for name in ("lr", "min_lr", "grad_clip"):
        value = getattr(args, name)
        if not (math.isfinite(value) and (value > 0 if name == "lr" else value >= 0)):
            p.error(
                f"--{name.replace('_', '-')} must be a finite {'positive' if name == 'lr' else 'non-negative'} number, got {value}"
            )
    if not 0.0 <= args.dropout < 1.0:
        p.error(f"--dropout must be in [0, 1), got {args.dropout}")
    return args


def learning_rate(step: int, args: argparse.Namespace) -> float:
    r"""The rate of optimizer step ``step + 1`` (``step`` counts from 0): linear warm-up to ``lr`` over
    ``warmup`` steps, then cosine decay to ``min_lr`` at the last step,
    :math:`\eta_s = \eta\, f_\text{cos}(s)` with :math:`r = \eta_{\min}/\eta`
    (:func:`d2l_attn.optim.cosine_factor`)."""
    return args.lr * cosine_factor(step + 1, args.warmup, args.steps, args.min_lr / args.lr)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if args.batch_size % world:
        raise ValueError(f"--batch-size={args.batch_size} must be divisible by the number of processes {world}")
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    text = load_tiny_shakespeare()
    chars = sorted(set(text))
    stoi = {ch: i for i, ch in enumerate(chars)}
    data = torch.tensor([stoi[ch] for ch in text], dtype=torch.long)
    n = int(0.9 * len(data))  # nanoGPT's split: first 90% train, last 10% validation
    train, val = data[:n], data[n:]

    init = torch.Generator().manual_seed(args.seed)
    with torch.random.fork_rng(devices=[]):  # private RNG for the initialization
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=init)))
        model = GPT(
            GPTConfig(
                vocab_size=len(chars),
                max_len=args.block_size,
                num_layers=args.layers,
                num_heads=args.heads,
                d_model=args.d_model,
                dropout=args.dropout,
            )
        ).to(device)
    net = (
        torch.nn.parallel.DistributedDataParallel(model, device_ids=[local_rank] if device.type == "cuda" else None)
        if world > 1
        else model
    )
    if args.compile:
        net = torch.compile(net)
    # weight decay on matrices only (not on biases, LayerNorms), as nanoGPT
    # fused: one kernel per step for all parameters (CPU and CUDA), not ~5 small ops per tensor
    fused = device.type in ("cpu", "cuda") and not args.no_fused_adam
    opt = torch.optim.AdamW(weight_decay_groups(model, 0.1), lr=args.lr, betas=(0.9, 0.99), fused=fused)
    batches = torch.Generator().manual_seed(args.seed + 1)  # the same on every rank
    # dropout draws from the global RNG: seed it from --seed too (each rank its own stream), in a
    # fork, so that main() called in a process leaves that process's RNG as it found it
    rng = contextlib.ExitStack()
    rng.enter_context(torch.random.fork_rng(devices=[device] if device.type == "cuda" else []))
    torch.manual_seed(args.seed + 3 + rank)
    share = args.batch_size // world
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if args.bf16 else contextlib.nullcontext()
    losses, evals, start = [], [], time.perf_counter()

    @torch.no_grad()
    def val_loss() -> float:
        """Mean loss over the same ``--eval-batches`` validation windows every time (rank 0's estimate)."""
        model.eval()
        g = torch.Generator().manual_seed(args.seed + 2)
        total = 0.0
        for _ in range(args.eval_batches):
            x, y = lm_batch(val, args.block_size, args.batch_size, g)
            with autocast:
                total += float(F.cross_entropy(model(x.to(device)).flatten(0, 1).float(), y.to(device).flatten()))
        model.train()
        return total / args.eval_batches

    for step in range(args.steps):
        for group in opt.param_groups:
            group["lr"] = learning_rate(step, args)
        x, y = lm_batch(train, args.block_size, args.batch_size, batches)  # (B, T) x 2: the global batch
        x, y = x[rank * share : (rank + 1) * share].to(device), y[rank * share : (rank + 1) * share].to(device)
        with autocast:
            logits = net(x)  # (B/W, T, V)
            loss = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()  # DDP: gradients averaged over the processes here
        if args.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        global_loss = loss.detach().clone()
        if world > 1:
            dist.all_reduce(global_loss)
            global_loss /= world
        losses.append(float(global_loss))
        if rank == 0 and (step % args.log_every == 0 or step == args.steps - 1):
            seconds = time.perf_counter() - start
            tokens_per_s = (step + 1) * args.batch_size * args.block_size / seconds
            line = {"step": step, "loss": round(losses[-1], 4), "tokens_per_s": round(tokens_per_s)}
            print(json.dumps({**line, "seconds": round(seconds, 4)}), flush=True)
        last = step == args.steps - 1
        if rank == 0 and (last or (args.eval_every and (step + 1) % args.eval_every == 0)):
            evals.append({"step": step + 1, "val_loss": val_loss(), "seconds": time.perf_counter() - start})
            shown = {
                "step": step + 1,
                "val_loss": round(evals[-1]["val_loss"], 4),
                "seconds": round(evals[-1]["seconds"], 2),
            }
            print(json.dumps(shown), flush=True)  # a log line with sensible precision; evals keep all digits
    result = {
        "losses": losses,
        "evals": evals,
        "world_size": world,
        "seconds": time.perf_counter() - start,
        "device": str(device),
        "args": vars(args),
    }
    if rank == 0 and args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump(result, handle)
    rng.close()
    if world > 1:
        dist.destroy_process_group()
    return result


if __name__ == "__main__":
    main()
