#!/usr/bin/env python
r"""One training step of our Transformer encoder against torch.nn.TransformerEncoder and D2L 1.0.3's, same sizes.

Both sides embed the tokens with the same :class:`d2l_attn.embeddings.TokenEmbedding` (scaled
by :math:`\sqrt{d}`, sinusoidal positions, dropout); then

* **ours** -- :class:`d2l_attn.models.transformer.TransformerEncoder`: post-LN
  :class:`d2l_attn.blocks.Block` s with fused attention (SDPA), the key mask built
  once per call from the valid lengths;
* **torch** -- :class:`torch.nn.TransformerEncoder` of :class:`torch.nn.TransformerEncoderLayer`
  (``batch_first=True``, ReLU, post-LN) with a ``src_key_padding_mask``, its weights copied into
  ours (the script checks that both give the same outputs in eval mode before timing);
* **d2l** -- ``d2l.torch.TransformerEncoder`` of *Dive into Deep Learning* 1.0.3 (its own
  embedding, bias-free attention projections, ``masked_softmax`` on ``(B h, T, T)`` scores), same
  sizes, its own initialization. D2L is not a dependency of this project: install it next to it with
  ``pip install --no-deps --target DIR d2l==1.0.3`` and pass ``--d2l DIR`` (default
  ``/tmp/d2l103``); its module-level imports of torchvision and pandas, unused by the encoder, are
  stubbed when absent. Without it the column says ``n/a``.

A step is forward, a mean-square loss, backward and an Adam update, in training mode (dropout on).
They are timed *interleaved* (each repeat runs every implementation once, the order rotating),
each repeat a block of ``--number`` steps. A repeat is a row; ``vs torch`` and ``vs d2l`` are the
**median over rows** of ``their ms / our ms`` in that row (steps measured seconds apart share the
machine's load), at least 1 meaning ours is at least as fast; the best times are printed too. This is a benchmark, not a test;
``tests/test_transformer.py`` runs it with ``--tiny`` only.

**Measured** 2026-12-07 on the shared 2-core x86_64 CPU, torch 2.13.0, ``--threads 2 --repeats 15``,
under ``nice`` while other jobs held the cores (load average about 5: the milliseconds mean nothing,
the interleaved ratios little)::

    config  d_model  d_ff heads blocks    batch  ours ms torch ms   d2l ms vs torch  vs d2l
    d2l         256    64     4      2    128x9    59.09    65.35    59.55    0.897   1.022
    base        512  2048     8      2    32x64   701.57   687.37   586.92    0.977   0.843

**Why D2L is faster at 512 wide** (torch.profiler, 6 rotated rounds, and ``getrusage``): the matrix
products cost the same (self CPU of ``mm`` + ``addmm``: ours 1,681 ms, D2L 2,089 ms per profiled
step); the gap sits in elementwise work that touches *fresh memory*. A D2L step takes 0 minor page
faults, ours 13,288 (52 MB of pages the kernel must map and zero every step), torch.nn's 5,624:
glibc hands our large per-step buffers back to the OS (they are above its ``mmap`` threshold) and
maps them anew on the next step. Ours allocates more of them: the fused QKV path concatenates
``W_q, W_k, W_v`` every forward (``aten::cat``, 6 calls, and the matching ``copy_`` in backward),
dropout draws two more masks per step than D2L's (the FFN hidden layer, ``(B, T, d_ff)``, the
largest activation; D2L has no dropout there, torch.nn does), and the attention projections carry
biases (D2L's have none). With ``MALLOC_MMAP_THRESHOLD_=268435456 MALLOC_TRIM_THRESHOLD_=1073741824``
ours drops to 5,632 faults and 2.86 CPU-s per step against D2L's 2.97 (one loaded run). Fixes belong
to the attention core: keep one ``W_qkv`` parameter instead of concatenating three per step.
Done on 2026-12-08 (``MultiHeadAttention.W_qkv``): a 2-block encoder's training step profiles 2
``aten::cat`` instead of 6 (the two left are the backward of splitting q, k, v; 1,170 operator
calls instead of 1,242). The rows above predate it.
At D2L's own configuration (128 x 9 tokens) ours is level with D2L.

**What else D2L 1.0.3's encoder skips** (its ``d2l/torch.py``): no dropout in the FFN
(``dense2(relu(dense1(X)))``; ours and torch.nn draw a ``(B, T, d_ff)`` mask there), no biases in
the attention projections (``use_bias=False``: no bias-gradient ``sum`` over ``(B T, d)`` per
projection), and attention as ``bmm`` + ``masked_softmax`` + ``bmm``. Ours and torch.nn call
SDPA, which on a CPU *in training with dropout* cannot use its flash kernel and runs its math path:
it converts the boolean mask to a float one, scales queries *and* keys by :math:`d^{-1/4}` (two
elementwise passes more than one scale of the scores, and two more in backward) and adds the
mask (torch.profiler: ``aten::mul`` 150 calls per 5 steps for ours, 90 for D2L). Since
2026-12-08 ``DotProductAttention`` takes that case itself (``scoring._cpu_dropout_attention``:
one product, scale and ``-inf`` fill in place, the same ``F.dropout`` draws, second product);
an interleaved microbenchmark of attention forward + backward at ``(128, 4, 9, 64)``, dropout 0.2,
gave SDPA / ours = 1.40 (5 interleaved rows, load average 20). FFN dropout and biases are the model's arithmetic and
stay.

**Measured** 2026-12-08 03:24-03:45 UTC after that change, same machine and torch,
``--threads 2 --repeats 7`` under ``nice -n 5``, load average 17-18 (the machine held about 9
sessions: the milliseconds mean nothing, the ratios are noisy)::

    config  d_model  d_ff heads blocks    batch  ours ms torch ms   d2l ms vs torch  vs d2l
    d2l         256    64     4      2    128x9  6954.63  8026.25  6948.30    1.090   1.005
    base        512  2048     8      2    32x64 10972.54  9000.03  7837.61    0.796   0.854

Steps took 10-20x their quiet-machine time, so neither row settles the issue's 1.05x targets:
at D2L's configuration ours moved from 0.90 to 1.09 of torch.nn and stays level with D2L; at
512 wide the row is *worse* than the 2026-12-07 one although the attention microbenchmark at that
shape ``(32, 8, 64, 64)``, dropout 0.1, gave SDPA / ours = 1.33 (3 interleaved rows, load
average 9). The rest of the 512-wide gap is the page-fault cost above (FFN dropout, biases,
large per-step buffers). GPU: not measured (no GPU lent).

Rerun 03:49-03:51 UTC, quieter (load average 2.0 rising to 3.4), ``--repeats 9``::

    config  d_model  d_ff heads blocks    batch  ours ms torch ms   d2l ms vs torch  vs d2l
    d2l         256    64     4      2    128x9   320.88   438.95   287.38    0.952   0.896
    base        512  2048     8      2    32x64   692.83   677.41   624.17    1.011   0.955

**Measured** 2026-12-08 04:41-04:42 UTC on the same machine with nothing else running (load average
1.6-1.8, right after a clean-clone ``.ci/run`` of commit 1c0fa17), ``--threads 2``, 20 rows::

    config  d_model  d_ff heads blocks    batch  ours ms torch ms   d2l ms vs torch  vs d2l
    d2l         256    64     4      2    128x9    53.30    55.44    52.43    1.076   0.977
    base        512  2048     8      2    32x64   609.95   625.02   540.75    1.021   0.878

Against torch.nn the target (1.05x) is met at D2L's configuration, not at 512 wide; against D2L it
is not met at either: D2L stays faster (its FFN without dropout and its bias-free projections are
less arithmetic than ours and torch.nn's).

Examples::

    python benchmarks/encoder_step.py                 # both configurations, the default threads
    python benchmarks/encoder_step.py --threads 1 --repeats 30
    python benchmarks/encoder_step.py --tiny          # smoke test
    python benchmarks/encoder_step.py --threads 2 --configs d2l,base --d2l /tmp/d2l103
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.machinery
import math
import statistics
import sys
import types
from pathlib import Path

import torch
from torch import nn

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


def load_d2l(folder: str):
    """``d2l.torch`` from a ``pip install --target`` folder, or ``None``; unused heavy imports stubbed."""
    if not (Path(folder) / "d2l" / "torch.py").is_file():
        return None
    for name in ("torchvision", "torchvision.transforms", "pandas"):
        try:
            importlib.import_module(name)
        except ImportError:
            stub = types.ModuleType(name)
            stub.__spec__ = importlib.machinery.ModuleSpec(name, None)  # torch._dynamo looks modules up
            stub.transforms = stub  # d2l: from torchvision import transforms
            sys.modules[name] = stub
    sys.path.insert(0, folder)  # D2L's own folder, outside this project
    try:
        return importlib.import_module("d2l.torch")
    finally:
        sys.path.remove(folder)


def build_d2l(d2l, cfg: dict, src: torch.Tensor, lens: torch.Tensor) -> nn.Module:
    torch.manual_seed(0)
    model = d2l.TransformerEncoder(
        VOCAB_SIZE, cfg["d_model"], cfg["d_ff"], cfg["num_heads"], cfg["num_layers"], cfg["dropout"]
    ).to(src.device)
    model(src, lens)  # materialize its LazyLinear layers
    return model


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


def compare(cfg: dict, device: torch.device, repeats: int, number: int, d2l=None) -> dict[str, list[float]]:
    """Seconds per step of each implementation in every repeat (a row), measured interleaved."""
    ours, theirs, src, lens = build(cfg, device)
    steps = {"ours": training_step(ours, src, lens), "torch": training_step(theirs, src, lens)}
    if d2l is not None:
        steps["d2l"] = training_step(build_d2l(d2l, cfg, src, lens), src, lens)
    for step in steps.values():  # warm up: allocator, kernels, Adam's state
        profiling.timeit(step, repeats=1, warmup=2, device=device)
    rows: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:  # rotate who goes first
            rows[name].append(profiling.timeit(steps[name], repeats=1, warmup=0, number=number, device=device))
    return rows


def median_ratio(rows: dict[str, list[float]], peer: str) -> float:
    """Median over rows of ``peer seconds / our seconds`` (nan when the peer was not run)."""
    if peer not in rows:
        return math.nan
    return statistics.median(t / o for t, o in zip(rows[peer], rows["ours"], strict=True))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed blocks (rows) per implementation (default 20, tiny 2)"
    )
    parser.add_argument("--number", type=int, default=1, help="training steps per timed block")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, mps")
    parser.add_argument("--d2l", default="/tmp/d2l103", help="folder of `pip install --target DIR d2l==1.0.3`")
    parser.add_argument("--configs", default="", help="comma-separated subset of the configurations")
    args = parser.parse_args(argv)
    repeats = args.repeats if args.repeats is not None else (2 if args.tiny else 20)
    if repeats < 1 or args.number < 1:
        parser.error("--repeats and --number must be >= 1")
    device = utils.get_device(args.device)
    configs = TINY if args.tiny else CONFIGS
    if args.configs:
        configs = {name: configs[name] for name in args.configs.split(",")}
    d2l = load_d2l(args.d2l)
    threads = profiling.num_threads(args.threads) if args.threads else contextlib.nullcontext()
    with threads:
        print(f"machine: {utils.machine_description(device)}")
        print(
            f"d2l 1.0.3: {'from ' + args.d2l if d2l else 'not found (pip install --no-deps --target DIR d2l==1.0.3)'}"
        )
        print(
            f"{repeats} interleaved rows of {args.number} training step(s) (forward, loss, backward, Adam), "
            "training mode; vs = median over rows of (their ms / our ms)"
        )
        header = (
            f"{'config':7} {'d_model':>7} {'d_ff':>5} {'heads':>5} {'blocks':>6} {'batch':>8} "
            f"{'ours ms':>8} {'torch ms':>8} {'d2l ms':>8} {'vs torch':>8} {'vs d2l':>7}"
        )
        print(header)
        print("-" * len(header))
        for name, cfg in configs.items():
            rows = compare(cfg, device, repeats, args.number, d2l)
            best = {k: 1e3 * min(v) for k, v in rows.items()}
            batch = f"{cfg['batch_size']}x{cfg['seq_len']}"
            d2l_ms = f"{best['d2l']:8.2f}" if "d2l" in best else f"{'n/a':>8}"
            print(
                f"{name:7} {cfg['d_model']:7d} {cfg['d_ff']:5d} {cfg['num_heads']:5d} {cfg['num_layers']:6d} "
                f"{batch:>8} {best['ours']:8.2f} {best['torch']:8.2f} {d2l_ms} "
                f"{median_ratio(rows, 'torch'):8.3f} {median_ratio(rows, 'd2l'):7.3f}",
                flush=True,
            )
    print("ms: best row; vs >= 1 means ours is at least as fast.")


if __name__ == "__main__":
    main()
