#!/usr/bin/env python
r"""Chapter 9's character GPT (``python -m d2l_attn.pretrain``) against nanoGPT's own CPU recipe.

Both train a 4-layer, 4-head, 128-wide GPT on character-level Tiny Shakespeare with nanoGPT's
README command for the CPU (batch 12, context 64, AdamW at 1e-3 with 100 warm-up steps and a
cosine decay to 1e-4 over ``--steps``, gradient clipping at 1, no dropout)::

    python train.py config/train_shakespeare_char.py --device=cpu --compile=False --eval_iters=20 \
        --log_interval=1 --block_size=64 --batch_size=12 --n_layer=4 --n_head=4 --n_embd=128 \
        --max_iters=2000 --lr_decay_iters=2000 --dropout=0.0

nanoGPT is not part of this project: the script runs its unchanged ``train.py`` from the anchor
folder ``--nanogpt`` (default ``../shared/anchors/nanoGPT`` next to the checkout), copied into a
temporary folder with the book's offline ``input.txt`` and nanoGPT's own ``prepare.py`` run there;
without the folder it says so and times ours only.

**Speed** (``--rounds`` rounds, each a fresh process of ``--round-steps`` steps of ours, then of
nanoGPT, the order alternating): tokens per second of a step is ``B T / dt`` with ``dt`` the
median per-step wall time of the round (both logs give the time of every step; the median leaves
out the first steps and the evaluation steps). The printed ratio is the median over rounds of
``ours / nanoGPT``: on a shared machine only ratios measured side by side mean anything.

**Quality** (``--full``): one run of each for ``--steps`` steps (the README's 2,000), and the
validation loss each prints at the end (20 batches; nanoGPT's README: 1.88).

**Measured** 2026-12-07 on the shared 2-core x86_64 CPU (torch 2.13.0, 2 threads) while the machine
was overloaded (load average 5-6 on 2 cores; nanoGPT ran at 242-1,305 tokens/s, against the
issue's 16,438 on a quiet machine), ``--rounds 2 --round-steps 40``, after pretrain's fused AdamW::

    round  ours tok/s  nanoGPT tok/s  ratio
        1         615          1,277  0.481
        2         270            242  1.116

The two rounds disagree by more than 2x: under that load the ratio says nothing yet. The 2,000-step
validation losses (``--full``) were not run. Rerun on a quiet machine.

**Profile** (2026-12-08, torch.profiler, 10 steps of ours at these sizes, 2 threads, load average
about 20: shares only): ``mm`` 28 %, ``_fused_adamw_`` 14 %, ``copy_`` 7 %, ``addmm`` 7 %,
LayerNorm backward 7 %, ``sum`` 7 % (17 calls a step: the bias gradients), ``fill_`` 5 %, ``cat``
4 % (the backward of splitting q, k, v; nanoGPT's ``split`` has the same), SDPA's CPU flash kernel
(causal, no dropout) 6 % with its backward. Two differences from nanoGPT's recipe:

* nanoGPT's ``train.py`` sets ``bias = False`` (no biases in its Linear and LayerNorm layers);
  ours has them, so it does the ``sum`` and ``addmm`` work nanoGPT skips. Matching it needs a
  ``bias`` option in ``GPTConfig`` and the blocks (not in this script);
* nanoGPT uses the per-tensor (``foreach``) AdamW on a CPU; ours the fused one: an interleaved
  microbenchmark of the optimizer step alone on this model's parameters gave fused / foreach =
  0.60 of the time (load average 17), so pretrain keeps ``fused=True``.

Rerun 2026-12-08 03:41-03:47 UTC (``--rounds 2 --round-steps 15``, load average 9 falling to 6;
round 1 shared the cores with an attention microbenchmark of this session)::

    round  ours tok/s  nanoGPT tok/s  ratio
        1         108            357  0.301
        2       1,483            978  1.517
    tokens/s ratio ours / nanoGPT, median over 2 rounds: 0.909

The script runs both and prints the ratio; the two rounds disagree 5x, so the 1.15x target is
neither met nor refuted here, and the 2,000-step losses (``--full``) were not rerun.

**Measured** 2026-12-08 04:42-04:46 UTC with nothing else running (load average 1.6-2.0, right after
a clean-clone ``.ci/run`` of commit 1c0fa17), ``--threads 2 --rounds 3 --round-steps 60 --full``::

    round  ours tok/s  nanoGPT tok/s  ratio
        1      16,587         16,500  1.005
        2      16,340         17,199  0.950
        3      16,271         15,901  1.023
    tokens/s ratio ours / nanoGPT, median over 3 rounds: 1.005
    validation loss after 2000 steps: ours 1.8727, nanoGPT 1.8857, difference -0.0130

The loss is within 0.02 of nanoGPT's; the speed target (1.15x) is not met: the two run at the same
speed (ours has the biases nanoGPT's recipe leaves out, see above). GPU: not measured.

Examples::

    python benchmarks/gpt_vs_nanogpt.py --threads 2 --rounds 3 --round-steps 60
    python benchmarks/gpt_vs_nanogpt.py --threads 2 --rounds 0 --full      # the 2,000-step losses
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from d2l_attn import utils
from d2l_attn.data import data_dir

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"batch_size": 12, "block_size": 64, "n_layer": 4, "n_head": 4, "n_embd": 128}


def ours_cmd(steps: int, threads: int, eval_every: int = 0) -> list[str]:
    s = SIZES
    return [
        sys.executable, "-m", "d2l_attn.pretrain", "--steps", str(steps), "--log-every", "1",
        "--batch-size", str(s["batch_size"]), "--block-size", str(s["block_size"]), "--layers", str(s["n_layer"]),
        "--heads", str(s["n_head"]), "--d-model", str(s["n_embd"]), "--warmup", str(min(100, steps - 1)),
        "--eval-batches", "20", "--threads", str(threads), "--eval-every", str(eval_every),
    ]  # fmt: skip


def nano_cmd(steps: int) -> list[str]:
    s = SIZES
    return [
        sys.executable, "train.py", "config/train_shakespeare_char.py", "--device=cpu", "--compile=False",
        "--eval_iters=20", "--log_interval=1", f"--block_size={s['block_size']}", f"--batch_size={s['batch_size']}",
        f"--n_layer={s['n_layer']}", f"--n_head={s['n_head']}", f"--n_embd={s['n_embd']}",
        f"--max_iters={steps}", f"--lr_decay_iters={steps}", "--dropout=0.0",
    ]  # fmt: skip


def run_ours(steps: int, threads: int) -> tuple[list[float], float | None]:
    out = subprocess.run(ours_cmd(steps, threads), capture_output=True, text=True, cwd=ROOT, env=_env(threads))
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    times = [line["seconds"] for line in lines if "seconds" in line and "step" in line and "loss" in line]
    val = [line["val_loss"] for line in lines if "val_loss" in line]
    return [b - a for a, b in zip(times, times[1:])], (val[-1] if val else None)


def run_nano(folder: Path, steps: int, threads: int) -> tuple[list[float], float | None]:
    out = subprocess.run(nano_cmd(steps), capture_output=True, text=True, cwd=folder, env=_env(threads))
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    dts = [float(m) / 1e3 for m in re.findall(r"^iter \d+: loss [\d.]+, time ([\d.]+)ms", out.stdout, re.M)]
    vals = re.findall(r"^step (\d+): train loss [\d.]+, val loss ([\d.]+)", out.stdout, re.M)
    return dts[1:], (float(vals[-1][1]) if vals and int(vals[-1][0]) == steps else None)


def _env(threads: int) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def prepare_nanogpt(anchor: Path, work: Path) -> Path | None:
    """A temporary copy of the anchor with Tiny Shakespeare prepared offline by nanoGPT's prepare.py."""
    if not (anchor / "train.py").is_file():
        return None
    folder = work / "nanoGPT"
    shutil.copytree(anchor, folder, ignore=shutil.ignore_patterns("out*", "*.bin", "*.pkl"))
    prep = folder / "data" / "shakespeare_char"
    shutil.copy(data_dir() / "tinyshakespeare" / "input.txt", prep / "input.txt")
    subprocess.run([sys.executable, "prepare.py"], cwd=prep, check=True, capture_output=True)
    return folder


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nanogpt", default=str(ROOT.parent / "shared" / "anchors" / "nanoGPT"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3, help="interleaved speed rounds (0: none)")
    p.add_argument("--round-steps", type=int, default=60, help="steps per speed round")
    p.add_argument("--full", action="store_true", help="also one --steps run of each: validation losses")
    p.add_argument("--steps", type=int, default=2000)
    args = p.parse_args(argv)
    print(f"machine: {utils.machine_description('cpu')} (benchmark processes use {args.threads} threads)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = prepare_nanogpt(Path(args.nanogpt), Path(tmp))
        print(
            f"nanoGPT: {'from ' + args.nanogpt if folder else 'anchor folder absent (' + args.nanogpt + '): ours only'}"
        )
        tokens = SIZES["batch_size"] * SIZES["block_size"]
        ratios = []
        print(f"{'round':>5} {'ours tok/s':>11} {'nanoGPT tok/s':>14} {'ratio':>6}")
        for r in range(args.rounds):
            order = ["ours", "nano"] if r % 2 == 0 else ["nano", "ours"]
            speed = {}
            for who in order:
                if who == "nano" and folder is None:
                    continue
                dts = (
                    run_ours(args.round_steps, args.threads)[0]
                    if who == "ours"
                    else run_nano(folder, args.round_steps, args.threads)[0]
                )
                speed[who] = tokens / statistics.median(dts)
            ratio = speed["ours"] / speed["nano"] if "nano" in speed else float("nan")
            ratios.append(ratio)
            print(
                f"{r + 1:5d} {speed['ours']:11,.0f} {speed.get('nano', float('nan')):14,.0f} {ratio:6.3f}", flush=True
            )
        if ratios and folder is not None:
            print(f"tokens/s ratio ours / nanoGPT, median over {len(ratios)} rounds: {statistics.median(ratios):.3f}")
        if args.full:
            ours_val = run_ours(args.steps, args.threads)[1]
            nano_val = run_nano(folder, args.steps, args.threads)[1] if folder else None
            print(
                f"validation loss after {args.steps} steps: ours {ours_val:.4f}, nanoGPT "
                + (f"{nano_val:.4f}, difference {ours_val - nano_val:+.4f}" if nano_val is not None else "n/a")
            )


if __name__ == "__main__":
    main()
