"""d2l_attn.stability: init, QK-norm, Gumbel-softmax, weight tying, dropout places, monitors."""

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from d2l_attn import blocks, interpret, stability, training, translation
from d2l_attn.multihead import MultiHeadAttention


# -- init ---------------------------------------------------------------------------------------
def test_scale_residual_init_scales_only_residual_outputs():
    torch.manual_seed(0)
    stack = nn.Sequential(*[blocks.Block.build(16, 4, 32, norm_first=True) for _ in range(3)])
    before = {n: p.clone() for n, p in stack.named_parameters()}
    n = stability.scale_residual_init(stack)
    assert n == 6  # 2 L
    for name, p in stack.named_parameters():
        if name.endswith("W_o.weight") or name.endswith("dense2.weight"):
            torch.testing.assert_close(p, before[name] / math.sqrt(6))
        else:
            assert torch.equal(p, before[name]), name
    with pytest.raises(ValueError, match="nothing to scale"):
        stability.scale_residual_init(nn.Linear(2, 2))


# -- QK-norm ------------------------------------------------------------------------------------
def test_qk_norm_attention_matches_a_by_hand_computation_and_bounds_logits():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 2)
    assert stability.use_qk_norm(mha) == 1
    assert stability.use_qk_norm(mha) == 0  # idempotent
    x = torch.randn(2, 5, 16) * 50  # huge activations
    q = mha.W_q(x).view(2, 5, 2, 8).transpose(1, 2)  # (B, h, T, d_h)
    k = mha.W_k(x).view(2, 5, 2, 8).transpose(1, 2)
    v = mha.W_v(x).view(2, 5, 2, 8).transpose(1, 2)
    qn, kn = F.layer_norm(q, (8,)), F.layer_norm(k, (8,))
    weights = torch.softmax(qn @ kn.transpose(-2, -1) / math.sqrt(8), -1)  # (B, h, T, T)
    by_hand = mha.W_o((weights @ v).transpose(1, 2).reshape(2, 5, 16))
    out, w = mha(x, need_weights=True)[:2]
    torch.testing.assert_close(out, by_hand, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(w, weights, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(mha(x).output, out, rtol=1e-4, atol=1e-4)  # the fused path agrees
    logits = interpret.attention_logits(mha, x, x)
    assert logits.abs().max() <= math.sqrt(8) + 1e-4
    plain = MultiHeadAttention(16, 2)
    assert interpret.attention_logits(plain, x, x).abs().max() > 100  # without QK-norm they explode


# -- Gumbel-softmax -----------------------------------------------------------------------------
def test_gumbel_argmax_frequencies_match_the_softmax():
    logits = torch.tensor([1.0, 0.0, -1.0, 2.0])
    g = torch.Generator().manual_seed(0)
    n = 40_000
    samples = stability.gumbel_softmax(logits.expand(n, 4), tau=0.5, hard=True, generator=g)
    freq = samples.mean(0)
    p = torch.softmax(logits, 0)
    stderr = (p * (1 - p) / n).sqrt()
    assert torch.all((freq - p).abs() < 4 * stderr), (freq, p)
    assert torch.all(samples.sum(-1) == 1) and set(samples.unique().tolist()) == {0.0, 1.0}


def test_gumbel_softmax_uses_only_its_generator_and_is_the_formula():
    logits = torch.randn(3, 5)
    state = torch.get_rng_state()
    a = stability.gumbel_softmax(logits, 0.7, generator=torch.Generator().manual_seed(1))
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG did not move
    u = torch.rand(3, 5, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, torch.softmax((logits - torch.log(-torch.log(u))) / 0.7, -1))


def test_straight_through_gradient_is_the_soft_samples_gradient():
    logits = torch.randn(4, 6, requires_grad=True)
    f = torch.arange(6.0)
    hard = stability.gumbel_softmax(logits, 0.5, hard=True, generator=torch.Generator().manual_seed(3))
    (hard @ f).sum().backward()
    grad_hard = logits.grad.clone()
    logits.grad = None
    soft = stability.gumbel_softmax(logits, 0.5, generator=torch.Generator().manual_seed(3))
    (soft @ f).sum().backward()
    torch.testing.assert_close(grad_hard, logits.grad)
    with pytest.raises(ValueError, match="tau"):
        stability.gumbel_softmax(logits, 0.0)


# -- weight tying ---------------------------------------------------------------------------
def test_tie_output_embedding_shares_one_tensor():
    from d2l_attn import data

    vocab = data.Vocab([["a", "b", "c"]], reserved_tokens=["<pad>", "<bos>", "<eos>"])
    model = translation.transformer_from_vocabs(vocab, vocab, d_model=8, num_heads=2, d_ff=16, num_layers=1)
    n_before = sum(p.numel() for p in model.parameters())
    stability.tie_output_embedding(model)
    assert model.decoder.dense.weight is model.decoder.embed.embedding.weight
    assert sum(p.numel() for p in model.parameters()) == n_before - len(vocab) * 8
    with pytest.raises(ValueError, match="Transformer"):
        stability.tie_output_embedding(nn.Linear(2, 2))


# -- monitor ------------------------------------------------------------------------------------
def test_monitor_records_per_layer_grad_norms_before_clipping_and_probe_statistics():
    torch.manual_seed(0)
    stack = nn.ModuleList([blocks.Block.build(8, 2, 16, causal=True) for _ in range(2)])

    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = stack

        def forward(self, x, return_weights=False):
            ws = []
            for b in self.blocks:
                x, w, _ = b(x, need_weights=True)
                ws.append(w)
            return (x, torch.stack(ws, 1)) if return_weights else x

    model = Stack()
    probe_x = torch.randn(2, 5, 8)
    layers = {f"block {i}": b for i, b in enumerate(stack)}
    monitor = stability.TrainingMonitor(layers, every=2, probe=lambda m: m(probe_x, return_weights=True))
    trainer = training.Trainer(
        model, lambda m, x: m(x).pow(2).mean() * 100, device="cpu", grad_clip=1e-3, progress=False, step_hooks=[monitor]
    )
    x = torch.randn(4, 5, 8)
    trainer.train_step(x)
    assert monitor.history["step"] == []  # every=2
    loss = model(x).pow(2).mean() * 100
    model.zero_grad()
    loss.backward()
    unclipped = {n: torch.cat([p.grad.flatten() for p in b.parameters()]).norm().item() for n, b in layers.items()}
    trainer.train_step(x)
    assert monitor.history["step"] == [2]
    for name in layers:
        assert math.isclose(monitor.history["grad_norm"][name][0], unclipped[name], rel_tol=1e-3)
        assert monitor.history["act_rms"][name][0] > 0
        assert 0 < monitor.history["entropy"][name][0] < math.log(5)
    assert model.training  # the probe restored train mode
    assert all(not b._forward_hooks for b in stack)  # and removed its hooks


# -- dropout places ---------------------------------------------------
def _tiny_transformer(dropout=0.1):
    from d2l_attn import data

    vocab = data.Vocab([["a", "b", "c"]], reserved_tokens=["<pad>", "<bos>", "<eos>"])
    return translation.transformer_from_vocabs(
        vocab, vocab, d_model=8, num_heads=2, d_ff=16, num_layers=2, dropout=dropout
    )


def test_dropout_places_find_every_dropout_layer_of_a_transformer_by_its_owner():
    model = _tiny_transformer()
    places = stability.dropout_places(model)
    counts = {place: len(layers) for place, layers in places.items()}
    # 2 + 2 blocks: embeddings 2; attentions 2 (encoder) + 4 (decoder); FFNs 4; residual 4 + 6
    assert counts == {"embeddings": 2, "attention weights": 6, "FFN hidden": 4, "residual branches": 10}
    found = {id(layer) for layers in places.values() for layer in layers}
    assert found == {id(m) for m in model.modules() if isinstance(m, nn.Dropout)}  # each once, none missed
    names = {id(m): n for n, m in model.named_modules()}
    assert all(names[id(layer)].endswith("attention.attention.dropout") for layer in places["attention weights"])
    assert all("addnorm" in names[id(layer)] for layer in places["residual branches"])


def test_set_dropout_changes_only_the_named_places_and_the_fused_path_sees_it():
    torch.manual_seed(0)
    model = _tiny_transformer(dropout=0.0)
    assert stability.set_dropout(model, {"attention weights": 0.5}) == {"attention weights": 6}
    places = stability.dropout_places(model)
    assert {layer.p for layer in places["attention weights"]} == {0.5}
    assert {layer.p for p in ("embeddings", "FFN hidden", "residual branches") for layer in places[p]} == {0.0}
    # the fused path reads dropout.p: in training mode two calls now differ, in eval mode they agree
    src = torch.tensor([[3, 4, 5, 2]])
    tgt = torch.tensor([[1, 3, 4, 5]])
    lens = torch.tensor([4])
    model.train()
    assert not torch.equal(model(src, lens, tgt), model(src, lens, tgt))
    model.eval()
    torch.testing.assert_close(model(src, lens, tgt), model(src, lens, tgt))
    with pytest.raises(ValueError, match="rates"):
        stability.set_dropout(model, {"everywhere": 0.1})
    with pytest.raises(ValueError, match="attention weights"):
        stability.set_dropout(model, {"attention weights": 1.5})
