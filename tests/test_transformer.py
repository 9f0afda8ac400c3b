"""Tests for d2l_attn.models.transformer: the encoder-decoder, masks, the KV cache, training (FLOPs: tests/test_profiling.py).

Decoding with it is tested in test_decoding.py, translating and saving in test_translation.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_models import EOS, SRC_VOCAB, TGT_VOCAB, padded_sources
from tiny_models import tiny_transformer as make_model

from d2l_attn import losses
from d2l_attn.data import Vocab
from d2l_attn.models.transformer import Transformer, TransformerDecoder, TransformerEncoder
from d2l_attn.training import Trainer, load_checkpoint, move_to_device
from d2l_attn.translation import transformer_from_vocabs

ROOT = Path(__file__).resolve().parents[1]


def batch(seed=0, batch_size=4, src_steps=6, tgt_steps=5):
    """``src (B, T)`` padded after ``lens (B,)`` (row 0 full) and a target ``tgt (B, T')`` of real tokens."""
    src, lens = padded_sources(seed, batch_size, src_steps, vocab_size=len(SRC_VOCAB))
    g = torch.Generator().manual_seed(seed + 1000)
    return src, lens, torch.randint(4, len(TGT_VOCAB), (batch_size, tgt_steps), generator=g)


# -- shapes and masks -----------------------------------------------------------------------------
@pytest.mark.parametrize("norm_first", [False, True])
def test_shapes_and_weights(norm_first):
    model = make_model(norm_first)
    src, lens, tgt = batch()
    logits = model(src, lens, tgt)
    assert logits.shape == (4, 5, len(TGT_VOCAB))
    logits2, w = model(src, lens, tgt, return_weights=True)
    torch.testing.assert_close(logits2, logits, atol=1e-5, rtol=1e-5)  # reference path == fused path
    assert w.encoder.shape == (4, 2, 4, 6, 6)
    assert w.decoder_self.shape == (4, 2, 4, 5, 5)
    assert w.decoder_cross.shape == (4, 2, 4, 5, 6)
    for weights in w:
        torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]))
    pad = torch.arange(6) >= lens[:, None]  # (B, T)
    assert torch.all(w.encoder.masked_select(pad[:, None, None, None, :]) == 0)
    assert torch.all(w.decoder_cross.masked_select(pad[:, None, None, None, :]) == 0)
    assert torch.all(w.decoder_self.triu(diagonal=1) == 0)
    assert isinstance(model.encoder.final_norm, torch.nn.LayerNorm) == norm_first


@pytest.mark.parametrize("fused", [True, False])
def test_decoder_is_causal_end_to_end(fused):
    model = make_model(fused=fused)
    src, lens, tgt = batch()
    changed = tgt.clone()
    changed[:, 3:] = (tgt[:, 3:] + 1 - 4) % (len(TGT_VOCAB) - 4) + 4  # other future tokens
    a, b = model(src, lens, tgt), model(src, lens, changed)
    torch.testing.assert_close(a[:, :3], b[:, :3])
    assert (a[:, 3:] - b[:, 3:]).abs().max() > 1e-4


@pytest.mark.parametrize("fused", [True, False])
def test_padded_source_tokens_change_nothing(fused):
    model = make_model(fused=fused)
    src, lens, tgt = batch(seed=1)
    other = src.clone()
    pad = torch.arange(src.shape[1]) >= lens[:, None]
    other[pad] = 5  # real-looking tokens where the padding was
    torch.testing.assert_close(model(src, lens, tgt), model(other, lens, tgt))
    # a sentence alone gives the same logits as inside the padded batch
    i = int(torch.argmin(lens))
    alone = model(src[i : i + 1, : lens[i]], lens[i : i + 1], tgt[i : i + 1])
    torch.testing.assert_close(alone, model(src, lens, tgt)[i : i + 1], atol=1e-5, rtol=1e-5)


# -- generation with the key/value cache ---------------------------------------------------------
@pytest.mark.parametrize("norm_first", [False, True])
def test_incremental_decoding_equals_full_recomputation(norm_first):
    model = make_model(norm_first)
    src, lens, tgt = batch(seed=2)
    full = model(src, lens, tgt)  # (B, T', V)
    state = model.init_state(src, lens)
    steps = []
    for t in range(tgt.shape[1]):
        logits, state, weights = model.step(tgt[:, t], state)
        steps.append(logits)
        assert weights.shape == (4, 6)
        torch.testing.assert_close(weights.sum(-1), torch.ones(4))
    assert state.num_decoded == tgt.shape[1]
    assert state.caches[0].self_attn.k.shape == (4, 4, tgt.shape[1], 4)
    torch.testing.assert_close(torch.stack(steps, 1), full, atol=1e-5, rtol=1e-5)
    # the step's weights are the last layer's cross-attention averaged over heads
    _, w = model(src, lens, tgt, return_weights=True)
    torch.testing.assert_close(weights, w.decoder_cross[:, -1, :, -1].mean(1), atol=1e-6, rtol=1e-5)


def test_reorder_state_repeats_caches():
    model = make_model()
    src, lens, tgt = batch()
    state = model.init_state(src, lens)
    _, state, _ = model.step(tgt[:, 0], state)
    picked = model.reorder_state(state, torch.tensor([3, 3, 0]))
    assert picked.src_valid_lens.tolist() == [lens[3], lens[3], lens[0]]
    torch.testing.assert_close(picked.caches[1].self_attn.k[0], state.caches[1].self_attn.k[3])
    assert picked.num_decoded == 1


# -- training -------------------------------------------------------------------------------------
def copy_task(num=64, steps=5, seed=0):
    """Target = source tokens mapped to the target vocabulary (s_i -> t_i), then <eos>."""
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(4, 12, (num, steps), generator=g)
    tgt = torch.cat([src, torch.full((num, 1), EOS)], 1)
    return src, torch.full((num,), steps), tgt, torch.full((num,), steps + 1)


def test_training_reduces_loss_on_a_tiny_task(tmp_path):
    model = make_model(d_model=32, d_ff=64)
    data = copy_task()
    loader = [tuple(t[i : i + 16] for t in data) for i in range(0, 64, 16)]
    trainer = Trainer(model, losses.seq2seq_loss, lr=3e-3, device="cpu", progress=False)
    history = trainer.fit(loader, loader, num_epochs=8)
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][0], history["train_loss"]
    # Trainer checkpoint round trip (weights_only=True inside)
    path = trainer.save_checkpoint(tmp_path / "ckpt.pt")
    clone = make_model(d_model=32, d_ff=64, seed=1)
    load_checkpoint(path, clone)
    src, lens, tgt, _ = data
    torch.testing.assert_close(clone.eval()(src, lens, tgt), model.eval()(src, lens, tgt))


def test_bf16_autocast_and_device_moves_on_cpu():
    """The GPU code path (autocast to bf16, batches moved to the model's device) runs on a CPU too."""
    model = make_model(d_model=32, d_ff=64)
    src, lens, tgt, tlens = move_to_device(copy_task(16), torch.device("cpu"))
    loss32, _ = losses.seq2seq_loss(model, (src, lens, tgt, tlens))
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        logits = model(src, lens, tgt)
        loss16, _ = losses.seq2seq_loss(model.train(), (src, lens, tgt, tlens))
    assert logits.dtype == torch.bfloat16
    torch.testing.assert_close(loss16.float(), loss32, atol=0.05, rtol=0.02)
    loss16.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() and g.dtype == torch.float32 for g in grads)
    # the reference attention path under autocast too
    model.set_fused(False)
    paths = [m.fused for m in model.modules() if type(m).__name__ == "DotProductAttention"]
    assert len(paths) == 6 and not any(paths)  # 2 encoder + 2 x 2 decoder attentions
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        assert torch.isfinite(model.eval()(src, lens, tgt).float()).all()


# -- bad arguments --------------------------------------------------------------------------------
def test_bad_arguments_are_rejected_clearly():
    with pytest.raises(ValueError, match="divisible by num_heads"):
        transformer_from_vocabs(SRC_VOCAB, TGT_VOCAB, d_model=30, num_heads=4)
    with pytest.raises(ValueError, match="even"):
        TransformerEncoder(10, d_model=9, num_heads=3)
    with pytest.raises(ValueError, match="num_layers"):
        TransformerDecoder(10, d_model=8, num_heads=2, num_layers=0)
    with pytest.raises(ValueError, match="same d_model"):
        Transformer(
            TransformerEncoder(13, d_model=16), TransformerDecoder(15, d_model=32), bos_id=2, eos_id=3, pad_id=1
        )
    with pytest.raises(ValueError, match="bos_id"):
        Transformer(
            TransformerEncoder(13, d_model=16), TransformerDecoder(15, d_model=16), bos_id=15, eos_id=3, pad_id=1
        )
    with pytest.raises(ValueError, match="<bos>"):
        transformer_from_vocabs(SRC_VOCAB, Vocab([["a"]], reserved_tokens=["<pad>", "<eos>"]))
    with pytest.raises(ValueError, match="Vocab"):
        transformer_from_vocabs(["a"], TGT_VOCAB)
    model = make_model()
    src, lens, tgt = batch()
    with pytest.raises(ValueError, match="different vocabularies"):
        model(src + 20, lens, tgt)  # ids beyond the source vocabulary
    with pytest.raises(ValueError, match="tgt_in holds token ids"):
        model(src, lens, tgt + len(TGT_VOCAB))
    with pytest.raises(ValueError, match="int64"):
        model(src.float(), lens, tgt)
    with pytest.raises(ValueError, match="src_valid_lens"):
        model(src, lens[:2], tgt)
    with pytest.raises(ValueError, match="batch size"):
        model(src, lens, tgt[:2])
    with pytest.raises(ValueError, match="TransformerState"):
        model.step(tgt[:, 0], (None,))


# -- argument checks once per call ----------------------------------------------------------------
def test_lengths_are_checked_once_per_call_not_once_per_block(monkeypatch):
    """Checking lengths reads them on the host (a GPU would synchronize): the count must not grow with depth."""
    from d2l_attn import masking

    calls = []
    real = masking.as_valid_lens

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(masking, "as_valid_lens", counting)  # Mask.from_lengths/Mask.of: every lengths check
    src, lens = padded_sources()
    tgt = torch.randint(4, len(TGT_VOCAB), (src.shape[0], 5))
    counts = {}
    for num_layers in (1, 4):
        model = make_model(num_layers=num_layers).train()
        calls.clear()
        model(src, lens, tgt)
        counts[num_layers] = len(calls)
        calls.clear()
        model.encoder(src, lens)
        assert len(calls) == 1
    assert counts[1] == counts[4] == 1, counts


@pytest.mark.parametrize("kind", ["gpt", "bert"])
def test_pretrained_stacks_check_lengths_once_and_mask_padding(kind, monkeypatch):
    """GPT and BERT build one key mask per call (not one per block) and padding still hides the pad keys."""
    from d2l_attn import masking
    from d2l_attn.models import BERT, GPT

    calls = []
    real = masking.as_valid_lens

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(masking, "as_valid_lens", counting)  # Mask.from_lengths/Mask.of: every lengths check
    torch.manual_seed(0)
    tokens = torch.randint(0, 20, (2, 6))
    lens = torch.tensor([6, 4])
    counts = {}
    for num_layers in (1, 3):
        sizes = dict(vocab_size=20, d_model=16, num_heads=2, d_ff=32, num_layers=num_layers, max_len=8)
        model = (GPT(**sizes) if kind == "gpt" else BERT(**sizes)).eval()
        run = model if kind == "gpt" else (lambda t, lengths, m=model: m.encode(t, None, lengths))
        calls.clear()
        out = run(tokens, lens)
        counts[num_layers] = len(calls)
    assert counts[1] == counts[3] == 1, counts
    # the padded keys are invisible: changing them leaves the real positions' outputs unchanged
    changed = tokens.clone()
    changed[1, 4:] = (changed[1, 4:] + 1) % 20
    torch.testing.assert_close(run(changed, lens)[1, :4], out[1, :4])


# -- the benchmark script -------------------------------------------------------------------------
def test_benchmark_smoke():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "transformer_throughput.py"),
        "--tiny",
        "--steps",
        "2",
        "--warmup",
        "1",
        "--device",
        "cpu",
        "--amp",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for label in ("ours, reference attention", "ours, fused attention", "torch.nn.Transformer", "tokens/s", "ratio"):
        assert label in out, out
    assert "bf16" in out  # --amp on the CPU exercises the autocast path


def test_encoder_step_benchmark_smoke(tmp_path):
    """benchmarks/encoder_step.py runs (it checks ours == torch.nn.TransformerEncoder before timing); not timed."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(ROOT / "benchmarks" / "encoder_step.py"), "--tiny", "--repeats", "1"]
    result = subprocess.run(
        cmd + ["--d2l", str(tmp_path)], capture_output=True, text=True, env=env, timeout=120, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    for label in ("tiny", "ours ms", "torch ms", "vs torch", "vs d2l", "d2l 1.0.3: not found"):
        assert label in result.stdout, result.stdout
