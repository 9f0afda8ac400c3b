#!/usr/bin/env python
r"""One training step of our Transformer encoder against torch.nn.TransformerEncoder, same sizes and weights.

Both sides embed the tokens with the same :class:`d2l_attn.embeddings.TokenEmbedding` (scaled
by :math:`\sqrt{d}`, sinusoidal positions, dropout); then

* **ours** -- :class:`d2l_attn.models.transformer.TransformerEncoder`: post-LN
  :class:`d2l_attn.blocks.SelfAttentionBlock` s with fused attention (SDPA), the key mask built
  once per call from the valid lengths;
* **torch** -- :class:`torch.nn.TransformerEncoder` of :class:`torch.nn.TransformerEncoderLayer`
  (``batch_first=True``, ReLU, post-LN) with a ``src_key_padding_mask``, its weights copied into
  ours (the script checks that both give the same outputs in eval mode before timing).

A step is forward, a mean-square loss, backward and an Adam update, in training mode (dropout on).
The two are timed *interleaved* (``ours, torch, torch, ours, ...``), each repeat a block of
``--number`` steps, and the best repeat of each is kept: noise from other processes only adds
time, and ratios measured within one run are what a noisy machine can compare. ``speed`` is
``torch ms / ours ms``: at least 1 means ours is at least as fast. This is a benchmark, not a test;
``tests/test_transformer.py`` runs it with ``--tiny`` only.

Examples::

    python benchmarks/encoder_step.py                 # both configurations, the default threads
    python benchmarks/encoder_step.py --threads 1 --repeats 30
    python benchmarks/encoder_step.py --tiny          # smoke test
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from d2l_attn import profiling, utils
from d2l_attn.embeddings import TokenEmbedding
from d2l_attn.models.transformer import TransformerEncoder

# D2L's chapter-11 Transformer (d 256, FFN 64, 4 heads, 2 blocks, dropout 0.2, batches of 128 x 9
# tokens) and the base Transformer's widths (Vaswani et al.) on longer, smaller batches.
CONFIGS = {
    "d2l": dict(d_model=256, d_ff=64, num_heads=4, num_layers=2, dropout=0.2, batch_size=128, seq_len=9),
    "base": dict(d_model=512, d_ff=2048, num_heads=8, num_layers=2, dropout=0.1, batch_size=32, seq_len=64),
}
TINY = {"tiny": dict(d_model=16, d_ff=32, num_heads=2, num_layers=2, dropout=0.1, batch_size=4, seq_len=5)}
VOCAB_SIZE = 1000


class TorchEncoder(nn.Module):
    """The same token embedding, then :class:`torch.nn.TransformerEncoder`."""

    def __init__(self, embed: TokenEmbedding, cfg: dict):
        super().__init__()
        self.embed = embed
        layer = nn.TransformerEncoderLayer(
            cfg["d_model"], cfg["num_heads"], cfg["d_ff"], cfg["dropout"], batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, cfg["num_layers"], enable_nested_tensor=False)

    def forward(self, src: torch.Tensor, valid_lens: torch.Tensor) -> torch.Tensor:
        padding = torch.arange(src.shape[1], device=src.device) >= valid_lens[:, None]  # (B, T), True = pad
        return self.encoder(self.embed(src), src_key_padding_mask=padding)  # (B, T, d)


def build(cfg: dict, device: torch.device):
    """Our encoder and torch's, with the same weights, and one batch with padding."""
    sizes = {k: cfg[k] for k in ("d_model", "num_heads", "d_ff", "num_layers", "dropout")}
    torch.manual_seed(0)
    ours = TransformerEncoder(VOCAB_SIZE, **sizes)
    embed = TokenEmbedding(VOCAB_SIZE, cfg["d_model"], ours.config.max_len, cfg["dropout"])
    embed.load_state_dict(ours.embed.state_dict())
    theirs = TorchEncoder(embed, cfg)
    for block, layer in zip(ours.blocks, theirs.encoder.layers):
        block.load_torch_weights(layer)
    g = torch.Generator().manual_seed(0)
    src = torch.randint(0, VOCAB_SIZE, (cfg["batch_size"], cfg["seq_len"]), generator=g)
    lens = torch.randint(max(1, cfg["seq_len"] // 2), cfg["seq_len"] + 1, (cfg["batch_size"],), generator=g)
    ours, theirs, src, lens = (x.to(device) for x in (ours, theirs, src, lens))
    with torch.no_grad():  # same function: compare the real positions in eval mode
        real = (torch.arange(src.shape[1], device=device) < lens[:, None])[..., None]  # (B, T, 1)
        torch.testing.assert_close(ours.eval()(src, lens) * real, theirs.eval()(src, lens) * real, atol=1e-4, rtol=1e-4)
    return ours, theirs, src, lens


def training_step(model: nn.Module, src: torch.Tensor, lens: torch.Tensor):
    """A closure that runs one forward, loss, backward and Adam update."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    model.train()

    def step() -> None:
        loss = model(src, lens).square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def compare(cfg: dict, device: torch.device, repeats: int, number: int) -> tuple[dict, dict]:
    """Best wall-clock and best CPU seconds per step of each implementation, measured interleaved.

    CPU time (:func:`time.process_time`, all of this process's threads) does not count the time
    other processes hold the cores; on a shared machine its ratio is the steadier one.
    """
    ours, theirs, src, lens = build(cfg, device)
    steps = {"ours": training_step(ours, src, lens), "torch": training_step(theirs, src, lens)}
    for step in steps.values():  # warm up: allocator, kernels, Adam's state
        profiling.timeit(step, repeats=1, warmup=1, device=device)
    wall = {name: float("inf") for name in steps}
    cpu = dict(wall)
    for r in range(repeats):
        order = list(steps) if r % 2 == 0 else list(reversed(steps))  # ours first, then torch first
        for name in order:
            start = time.process_time()
            seconds = profiling.timeit(steps[name], repeats=1, warmup=0, number=number, device=device)
            cpu[name] = min(cpu[name], (time.process_time() - start) / number)
            wall[name] = min(wall[name], seconds)
    return wall, cpu


def machine_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda}), torch {torch.__version__}"
    return (
        f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}"
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed blocks per implementation (default 20, tiny 2)"
    )
    parser.add_argument("--number", type=int, default=1, help="training steps per timed block")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, mps")
    args = parser.parse_args(argv)
    repeats = args.repeats if args.repeats is not None else (2 if args.tiny else 20)
    if repeats < 1 or args.number < 1:
        parser.error("--repeats and --number must be >= 1")
    device = utils.get_device(args.device)
    configs = TINY if args.tiny else CONFIGS
    threads = profiling.num_threads(args.threads) if args.threads else contextlib.nullcontext()
    with threads:
        print(f"machine: {machine_description(device)}")
        print(
            f"best of {repeats} interleaved blocks of {args.number} training step(s) "
            "(forward, loss, backward, Adam), training mode"
        )
        header = (
            f"{'config':7} {'d_model':>7} {'d_ff':>5} {'heads':>5} {'blocks':>6} {'batch':>8} "
            f"{'ours ms':>9} {'torch ms':>9} {'speed':>6} {'cpu speed':>9}"
        )
        print(header)
        print("-" * len(header))
        for name, cfg in configs.items():
            wall, cpu = compare(cfg, device, repeats, args.number)
            batch = f"{cfg['batch_size']}x{cfg['seq_len']}"
            print(
                f"{name:7} {cfg['d_model']:7d} {cfg['d_ff']:5d} {cfg['num_heads']:5d} {cfg['num_layers']:6d} "
                f"{batch:>8} {1e3 * wall['ours']:9.2f} {1e3 * wall['torch']:9.2f} "
                f"{wall['torch'] / wall['ours']:6.3f} {cpu['torch'] / cpu['ours']:9.3f}"
            )
    print(
        "speed = torch ms / ours ms, best wall-clock times (ours / torch in steps per second): >= 1 means "
        "ours is at least as fast; cpu speed: the same ratio of best CPU times."
    )


if __name__ == "__main__":
    main()
