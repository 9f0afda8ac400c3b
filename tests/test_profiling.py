"""Tests for d2l_attn.profiling: parameter and FLOP counts (against FlopCounterMode), timers, threads, MFU."""

from __future__ import annotations

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from d2l_attn import profiling
from d2l_attn.data import Vocab
from d2l_attn.models.transformer import Transformer
from d2l_attn.translation import transformer_from_vocabs

RESERVED = ["<pad>", "<bos>", "<eos>"]
SRC_VOCAB = Vocab([[f"s{i}" for i in range(9)]], reserved_tokens=RESERVED)  # 13 tokens
TGT_VOCAB = Vocab([[f"t{i}" for i in range(11)]], reserved_tokens=RESERVED)  # 15 tokens
D, D_FF, LAYERS = 16, 32, 2


def make_model(norm_first=False, fused=False, dropout=0.0, num_layers=LAYERS) -> Transformer:
    torch.manual_seed(0)
    return transformer_from_vocabs(
        SRC_VOCAB,
        TGT_VOCAB,
        d_model=D,
        num_heads=4,
        d_ff=D_FF,
        num_layers=num_layers,
        dropout=dropout,
        norm_first=norm_first,
        fused=fused,
    )


def make_batch(batch_size, src_len, tgt_len):
    g = torch.Generator().manual_seed(0)
    src = torch.randint(4, len(SRC_VOCAB), (batch_size, src_len), generator=g)
    lens = torch.randint(1, src_len + 1, (batch_size,), generator=g)
    tgt_in = torch.randint(4, len(TGT_VOCAB), (batch_size, tgt_len), generator=g)
    return src, lens, tgt_in


def counted_training_flops(model, batch) -> int:
    """What FlopCounterMode counts in one real forward + backward pass."""
    model.train()
    with FlopCounterMode(display=False) as counter:
        model(*batch).square().mean().backward()
    return counter.get_total_flops()


# -- parameters -----------------------------------------------------------------------------------
@pytest.mark.parametrize("norm_first", [False, True])
def test_count_parameters_matches_a_hand_count(norm_first):
    model = make_model(norm_first)
    attention = 4 * (D * D + D)  # W_q, W_k, W_v, W_o with biases
    ffn = D * D_FF + D_FF + D_FF * D + D
    norm = 2 * D  # scale and shift
    final_norm = norm if norm_first else 0  # pre-LN stacks end with a LayerNorm
    encoder = LAYERS * (attention + ffn + 2 * norm) + final_norm
    decoder = LAYERS * (2 * attention + ffn + 3 * norm) + final_norm + (D * len(TGT_VOCAB) + len(TGT_VOCAB))
    assert profiling.count_parameters(model.encoder) == encoder
    assert profiling.count_parameters(model.decoder) == decoder
    assert profiling.count_parameters(model) == encoder + decoder
    tables = D * (len(SRC_VOCAB) + len(TGT_VOCAB))  # embeddings; the sinusoidal table is a buffer
    assert profiling.count_parameters(model, embeddings=True) == encoder + decoder + tables


def test_count_parameters_counts_shared_parameters_once():
    layer = torch.nn.Linear(3, 4)
    assert profiling.count_parameters(torch.nn.Sequential(layer, torch.nn.ReLU(), layer)) == 16
    with pytest.raises(ValueError, match="module"):
        profiling.count_parameters([layer])


# -- FLOPs, checked against PyTorch's counter -----------------------------------------------------
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("sizes", [(3, 7, 5), (2, 4, 11)])
def test_training_flops_equal_flop_counter_on_the_reference_path(norm_first, sizes):
    """Every matrix product of a real training step is counted, and nothing else: exact equality."""
    model = make_model(norm_first, fused=False)
    counted = counted_training_flops(model, make_batch(*sizes))
    assert profiling.training_flops(model, *sizes) == counted
    # the T^2 term matters: without it the count is short by exactly the attention products
    batch_size, src_len, tgt_len = sizes
    attention = 3 * 4 * batch_size * D * LAYERS * (src_len**2 + tgt_len**2 + tgt_len * src_len)
    assert profiling.training_flops(model, *sizes, attention=False) == counted - attention


def test_training_flops_with_fused_attention():
    """SDPA's math backend is counted as matrix products: the same total as the reference path.

    PyTorch's CPU flash kernel has no FLOP formula in FlopCounterMode: where it runs, the counter
    sees the parameter products only.
    """
    model = make_model(fused=True)
    sizes = (3, 7, 5)
    with sdpa_kernel(SDPBackend.MATH):
        assert counted_training_flops(model, make_batch(*sizes)) == profiling.training_flops(model, *sizes)
    counted = counted_training_flops(model, make_batch(*sizes))  # whatever backend PyTorch picks
    assert counted in (
        profiling.training_flops(model, *sizes),
        profiling.training_flops(model, *sizes, attention=False),
    )


def test_training_flops_scale_with_the_sizes():
    model = make_model(num_layers=1)
    one = profiling.training_flops(model, 1, 4, 4, attention=False)
    assert profiling.training_flops(model, 8, 4, 4, attention=False) == 8 * one  # linear in the batch
    # doubling both lengths doubles the parameter products and quadruples the attention products
    att = profiling.training_flops(model, 1, 4, 4) - one
    assert profiling.training_flops(model, 1, 8, 8) == 2 * one + 4 * att


@pytest.mark.parametrize("tie", [True, False])
def test_training_flops_of_a_gpt_equal_flop_counter(tie):
    """The stack formula 6 N B T + 12 B d L T^2 on a real GPT training step (SDPA's math backend)."""
    from d2l_attn.models.gpt import GPT, GPTConfig

    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=11, max_len=8, num_layers=2, num_heads=2, d_model=8, tie_weights=tie))
    tokens = torch.randint(0, 11, (3, 6), generator=torch.Generator().manual_seed(0))
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        torch.nn.functional.cross_entropy(gpt(tokens).flatten(0, 1), tokens.flatten()).backward()
    flops = profiling.training_flops(gpt, 3, 6)
    assert flops == counter.get_total_flops()
    # by hand: per block W_qkv 3 d^2, W_o d^2, FFN 8 d^2; the head V d (tied or not, it multiplies)
    n = 2 * 12 * 8 * 8 + 11 * 8
    assert flops == 6 * n * 3 * 6 + 12 * 3 * 8 * 2 * 6**2


def test_training_flops_rejects_bad_arguments():
    model = make_model()
    with pytest.raises(ValueError, match="Transformer"):
        profiling.training_flops(torch.nn.Linear(2, 2), 1, 2)
    with pytest.raises(ValueError, match="tgt_len=None"):
        profiling.training_flops(model.encoder, 1, 2, 3)
    with pytest.raises(ValueError, match="tgt_len"):
        profiling.training_flops(model, 1, 2)
    with pytest.raises(ValueError, match="src_len"):
        profiling.training_flops(model, 1, 0, 3)
    with pytest.raises(ValueError, match="batch_size"):
        profiling.training_flops(model, 2.5, 2, 3)


# -- timer and threads ----------------------------------------------------------------------------
class FakeClock:
    """Stands in for time.perf_counter; each call of ``work()`` advances it by the next duration."""

    def __init__(self, durations):
        self.now, self.durations, self.calls = 0.0, list(durations), 0

    def __call__(self):
        return self.now

    def work(self):
        self.now += self.durations[self.calls]
        self.calls += 1


def test_timeit_warms_up_then_reduces_the_repeats(monkeypatch):
    clock = FakeClock([100.0, 5.0, 3.0, 4.0, 9.0])  # the first call is a slow warm-up
    monkeypatch.setattr(profiling.time, "perf_counter", clock)
    assert profiling.timeit(clock.work, repeats=4, warmup=1) == 3.0
    assert clock.calls == 5
    clock = FakeClock([100.0, 5.0, 3.0, 4.0, 9.0])
    monkeypatch.setattr(profiling.time, "perf_counter", clock)
    assert profiling.timeit(clock.work, repeats=4, reduce="median") == 4.5
    clock = FakeClock([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    monkeypatch.setattr(profiling.time, "perf_counter", clock)
    assert profiling.timeit(clock.work, repeats=2, warmup=0, number=3) == 2.0  # (1+2+3)/3 and (4+5+6)/3


def test_timeit_synchronizes_cuda_only_on_cuda(monkeypatch):
    synced = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: synced.append(device))
    assert profiling.timeit(lambda: None, repeats=3, warmup=2, device="cpu") >= 0
    assert synced == []
    profiling.timeit(lambda: None, repeats=3, warmup=2, device="cuda")
    assert len(synced) == 6  # before and after each timed repeat, not during warm-up


def test_timeit_rejects_bad_arguments():
    with pytest.raises(ValueError, match="fn"):
        profiling.timeit(3.0)
    with pytest.raises(ValueError, match="repeats"):
        profiling.timeit(lambda: None, repeats=0)
    with pytest.raises(ValueError, match="warmup"):
        profiling.timeit(lambda: None, warmup=-1)
    with pytest.raises(ValueError, match="reduce"):
        profiling.timeit(lambda: None, reduce="mean")


def test_num_threads_sets_and_restores_even_on_error():
    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    with profiling.num_threads(other):
        assert torch.get_num_threads() == other
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError, match="boom"):
        with profiling.num_threads(other):
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="n must be a positive int"):
        with profiling.num_threads(0):
            pass
    assert torch.get_num_threads() == before


# -- peak FLOP/s and MFU --------------------------------------------------------------------------
def test_peak_table_and_mfu():
    assert profiling.peak_bf16_flops("NVIDIA H100 80GB HBM3") == 989e12
    assert profiling.peak_bf16_flops("NVIDIA H100 PCIe") == 756e12
    assert profiling.peak_bf16_flops("NVIDIA A100-SXM4-40GB") == 312e12
    assert profiling.peak_bf16_flops("NVIDIA A10") == 125e12
    assert profiling.peak_bf16_flops("Tesla T4") is None and profiling.peak_bf16_flops(None) is None
    assert profiling.model_flops_utilization(1e12, 0.01, 1e15) == pytest.approx(0.1)
    assert profiling.model_flops_utilization(1e12, 0.01, None) is None
    with pytest.raises(ValueError, match="positive"):
        profiling.model_flops_utilization(1e12, 0.0, 1e15)
