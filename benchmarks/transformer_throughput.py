#!/usr/bin/env python
r"""Training throughput of the chapter-7 Transformer: our attention paths vs torch.nn.Transformer.

Trains each model for a fixed number of optimizer steps on random token batches of a fixed
shape and prints one table (tokens per second and the ratio to our reference path):

* **ours, reference attention** -- :class:`d2l_attn.models.transformer.Transformer` with every attention
  computed as matmul -> masked softmax -> matmul (the readable path that can return weights);
* **ours, fused attention** -- the same model and weights with
  :func:`torch.nn.functional.scaled_dot_product_attention` (FlashAttention/memory-efficient
  kernels on a GPU);
* **torch.nn.Transformer** -- PyTorch's module with the same sizes, embeddings, positions and
  output layer (it adds a final LayerNorm to encoder and decoder even in post-LN mode);
* with ``--compile``: our fused model under :func:`torch.compile`.

With ``--amp`` (the default on CUDA) every row is measured again under ``torch.autocast`` with
bfloat16 (on a CPU too, where it exercises the same code path but is rarely faster). On CUDA the
table adds model FLOP utilization, :math:`\text{MFU} = \text{FLOPs} / t_\text{step} / \text{peak}`, with
the matrix-multiplication FLOPs of a training step from :func:`d2l_attn.profiling.training_flops`
(:math:`6N` per token plus attention's :math:`T^2` term) and the peak bf16 FLOP/s of the GPU from
:func:`d2l_attn.profiling.peak_bf16_flops` (``n/a`` when the GPU is not in the table).

Tokens per second count source + target positions (padding included: the model computes on it).
This is a benchmark, not a test; ``tests/test_transformer.py`` only runs it with ``--tiny``.

Examples::

    python benchmarks/transformer_throughput.py                 # the chapter's configuration
    python benchmarks/transformer_throughput.py --device cuda --compile --batch-size 512
    python benchmarks/transformer_throughput.py --tiny --steps 2  # smoke test
"""

from __future__ import annotations

import argparse
import contextlib
import math

import torch
from torch import nn

from d2l_attn import profiling, utils
from d2l_attn.losses import masked_cross_entropy, shift_right
from d2l_attn.models import Transformer, TransformerDecoder, TransformerEncoder
from d2l_attn.positional import SinusoidalPositionalEncoding

BOS = 2  # <unk>, <pad>, <bos>, <eos> come first in the made-up vocabularies

# The configuration trained in the chapter's full mode (TransformerConfig's defaults differ);
# vocabulary sizes rounded up from the full-mode vocabularies (2,070 English / 3,094 French).
CHAPTER = dict(
    d_model=128,
    num_heads=4,
    d_ff=512,
    num_layers=2,
    dropout=0.1,
    batch_size=128,
    seq_len=9,
    src_vocab=2300,
    tgt_vocab=3600,
)
TINY = dict(
    d_model=16, num_heads=2, d_ff=32, num_layers=1, dropout=0.1, batch_size=4, seq_len=5, src_vocab=20, tgt_vocab=30
)


class TorchTransformerSeq2Seq(nn.Module):
    """torch.nn.Transformer with our embeddings, positions and output layer (same sizes)."""

    def __init__(self, src_vocab, tgt_vocab, d_model, num_heads, d_ff, num_layers, dropout, norm_first=False):
        super().__init__()
        self.d_model = d_model
        self.src_embed = nn.Embedding(src_vocab, d_model)
        self.tgt_embed = nn.Embedding(tgt_vocab, d_model)
        self.pos = SinusoidalPositionalEncoding(d_model, 1000, dropout)
        self.core = nn.Transformer(
            d_model, num_heads, num_layers, num_layers, d_ff, dropout, batch_first=True, norm_first=norm_first
        )
        self.dense = nn.Linear(d_model, tgt_vocab)

    def forward(self, src, src_valid_lens, tgt_in):
        scale = math.sqrt(self.d_model)
        src_pad = torch.arange(src.shape[1], device=src.device) >= src_valid_lens[:, None]  # (B, T) True = pad
        causal = nn.Transformer.generate_square_subsequent_mask(tgt_in.shape[1], device=src.device)
        out = self.core(
            self.pos(self.src_embed(src) * scale),
            self.pos(self.tgt_embed(tgt_in) * scale),
            tgt_mask=causal,
            tgt_is_causal=True,
            src_key_padding_mask=src_pad,
            memory_key_padding_mask=src_pad,
        )  # (B, T', d)
        return self.dense(out)  # (B, T', V)


def random_batch(cfg, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    b, t = cfg["batch_size"], cfg["seq_len"]
    src = torch.randint(4, cfg["src_vocab"], (b, t), generator=g)
    tgt = torch.randint(4, cfg["tgt_vocab"], (b, t), generator=g)
    src_lens = torch.randint(max(1, t // 2), t + 1, (b,), generator=g)
    tgt_lens = torch.randint(max(1, t // 2), t + 1, (b,), generator=g)
    tgt_in = shift_right(tgt, bos_id=BOS)
    return [x.to(device) for x in (src, src_lens, tgt_in, tgt, tgt_lens)]


def time_training(model, batch, steps, warmup, device, amp):
    """Seconds per optimizer step (forward, masked loss, backward, Adam) after ``warmup`` steps."""
    src, src_lens, tgt_in, tgt, tgt_lens = batch
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    model.train()
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16) if amp else contextlib.nullcontext()

    last = {}

    def step():
        with autocast:
            loss = masked_cross_entropy(model(src, src_lens, tgt_in), tgt, tgt_lens)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        last["loss"] = loss

    seconds = profiling.timeit(step, repeats=1, number=steps, warmup=warmup, device=device)
    if not torch.isfinite(last["loss"]):
        raise FloatingPointError(f"the loss became {last['loss'].item()}")
    return seconds


def build_models(cfg, device, compile_model):
    sizes = {k: cfg[k] for k in ("d_model", "num_heads", "d_ff", "num_layers", "dropout")}
    torch.manual_seed(0)
    ours = _transformer(cfg, sizes).to(device)
    reference = _transformer(cfg, sizes, fused=False).to(device)
    reference.load_state_dict(ours.state_dict())
    variants = [("ours, reference attention", reference), ("ours, fused attention", ours)]
    if compile_model:
        compiled = _transformer(cfg, sizes).to(device)
        compiled.load_state_dict(ours.state_dict())
        variants.append(("ours, fused + torch.compile", torch.compile(compiled)))
    torch.manual_seed(0)
    variants.append(
        ("torch.nn.Transformer", TorchTransformerSeq2Seq(cfg["src_vocab"], cfg["tgt_vocab"], **sizes).to(device))
    )
    return variants, ours


def _transformer(cfg, sizes, **extra):
    """Our Transformer for made-up vocabularies of these sizes: ids 1, 2, 3 = <pad>, <bos>, <eos> (0 is <unk>)."""
    encoder = TransformerEncoder(cfg["src_vocab"], **sizes, **extra)
    decoder = TransformerDecoder(cfg["tgt_vocab"], **sizes, **extra)
    return Transformer(encoder, decoder, bos_id=BOS, eos_id=BOS + 1, pad_id=BOS - 1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--steps", type=int, default=20, help="timed optimizer steps per row")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
    parser.add_argument("--amp", action="store_true", help="also measure bf16 autocast (default on CUDA)")
    parser.add_argument("--no-amp", action="store_true", help="never measure bf16")
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile (fused model)")
    for key in ("d_model", "num_heads", "d_ff", "num_layers", "batch_size", "seq_len"):
        parser.add_argument("--" + key.replace("_", "-"), type=int, default=None)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be >= 1 and --warmup >= 0")

    cfg = dict(TINY if args.tiny else CHAPTER)
    for key in ("d_model", "num_heads", "d_ff", "num_layers", "batch_size", "seq_len"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    device = utils.get_device(args.device)
    amp = (args.amp or device.type == "cuda") and not args.no_amp
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    batch = random_batch(cfg, device)
    variants, ours = build_models(cfg, device, args.compile)
    tokens = cfg["batch_size"] * 2 * cfg["seq_len"]  # source + target positions per step
    flops = profiling.training_flops(ours, cfg["batch_size"], cfg["seq_len"], cfg["seq_len"])
    peak = profiling.peak_bf16_flops(torch.cuda.get_device_name(device)) if device.type == "cuda" else None

    print(f"machine: {utils.machine_description(device)}")
    print(
        "config: "
        + ", ".join(f"{k}={v}" for k, v in cfg.items())
        + f"; {args.steps} timed steps after {args.warmup} warm-up steps"
    )
    print(
        f"model FLOPs per training step (6N + attention): {flops:.3e}; peak bf16: "
        + (f"{peak:.3e} FLOP/s" if peak else "n/a (not a GPU in the table)")
    )
    precisions = ["fp32"] + (["bf16"] if amp else [])
    rows = []
    for precision in precisions:
        for name, model in variants:
            seconds = time_training(model, batch, args.steps, args.warmup, device, precision == "bf16")
            rows.append((name, precision, seconds))
    base = {p: next(s for n, pr, s in rows if pr == p and n.startswith("ours, reference")) for p in precisions}
    header = f"{'model':30} {'precision':9} {'ms/step':>9} {'tokens/s':>11} {'ratio':>6} {'MFU':>7}"
    print(header)
    print("-" * len(header))
    for name, precision, seconds in rows:
        mfu = profiling.model_flops_utilization(flops, seconds, peak) if precision == "bf16" else None
        mfu_text = f"{100 * mfu:6.2f}%" if mfu is not None else "    n/a"
        print(
            f"{name:30} {precision:9} {1000 * seconds:9.2f} {tokens / seconds:11,.0f} "
            f"{base[precision] / seconds:6.2f} {mfu_text}"
        )
    print(
        "ratio = tokens/s relative to 'ours, reference attention' at the same precision; "
        "MFU only for bf16 on a GPU with a known peak."
    )


if __name__ == "__main__":
    main()
