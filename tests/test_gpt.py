"""GPT (chapter 9): shapes, causality, padding, KV-cache generation, Hugging Face GPT-2 weights, bad inputs."""

from __future__ import annotations

import pytest
import torch

from d2l_attn.decoding import greedy_decode, sample
from d2l_attn.interop import from_hf_gpt2, gpt2_state_dict_to_ours
from d2l_attn.losses import lm_loss
from d2l_attn.models.gpt import GPT, GPTConfig


def lens(prompt: torch.Tensor) -> torch.Tensor:
    """Prompts use all their positions (the decoders' src_valid_lens)."""
    return torch.full((prompt.shape[0],), prompt.shape[1])


def tiny(**kw) -> GPT:
    torch.manual_seed(0)
    cfg = dict(vocab_size=23, max_len=16, num_layers=2, num_heads=2, d_model=16)
    cfg.update(kw)
    return GPT(GPTConfig(**cfg)).eval()


def test_shapes_weights_and_tied_embedding():
    model = tiny()
    tokens = torch.randint(0, 23, (3, 7))
    logits, weights = model(tokens, return_weights=True)
    assert logits.shape == (3, 7, 23)
    assert len(weights) == 2 and weights[0].shape == (3, 2, 7, 7)
    assert model.lm_head.weight is model.token_embedding.weight
    untied = tiny(tie_weights=False)
    assert untied.num_parameters() == model.num_parameters() + 23 * 16


def test_causal_changing_a_later_token_leaves_earlier_logits_unchanged():
    model = tiny()
    a = torch.randint(0, 23, (2, 9))
    b = a.clone()
    b[:, 5] = (b[:, 5] + 1) % 23
    la, lb = model(a), model(b)
    torch.testing.assert_close(la[:, :5], lb[:, :5])
    assert not torch.allclose(la[:, 5:], lb[:, 5:])  # the change is seen from position 5 on


def test_right_padding_does_not_change_real_positions():
    model = tiny()
    x = torch.randint(0, 23, (1, 6))
    padded = torch.cat([x, torch.zeros(1, 4, dtype=torch.long)], dim=1)
    torch.testing.assert_close(model(padded, valid_lens=torch.tensor([6]))[:, :6], model(x))


@pytest.mark.parametrize("prompt_len", [1, 4])
def test_kv_cache_generation_equals_full_recomputation(prompt_len):
    model = tiny()
    prompt = torch.randint(0, 23, (2, prompt_len))
    state = model.init_state(prompt, None)
    seq = prompt
    token = torch.zeros(2, dtype=torch.long)  # ignored on the first step: the prompt's last token is fed
    for _ in range(6):
        logits, state, _ = model.step(token, state)
        full = model(seq)[:, -1]  # recompute everything
        torch.testing.assert_close(logits, full, atol=1e-5, rtol=1e-5)
        token = logits.argmax(-1)
        seq = torch.cat([seq, token[:, None]], dim=1)
    greedy = greedy_decode(model, prompt, lens(prompt), max_len=6)
    assert greedy == seq[:, prompt_len:].tolist()


@pytest.mark.parametrize("after", [0, 2])
def test_reorder_state_moves_every_layers_cache_rows(after):
    """Reordered and stepped = recomputed on the reordered sequences (rows differ, index unsorted)."""
    model = tiny()
    g = torch.Generator().manual_seed(1)
    seq = torch.randint(0, 23, (3, 4), generator=g)
    state = model.init_state(seq, None)
    token = torch.zeros(3, dtype=torch.long)  # the first step feeds the prompt's last token
    for _ in range(after):
        logits, state, _ = model.step(token, state)
        token = logits.argmax(-1)
        seq = torch.cat([seq, token[:, None]], dim=1)
    index = torch.tensor([2, 0, 0])  # sorting it, or reordering only some layers, gives other logits
    logits, _, _ = model.step(token[index], model.reorder_state(state, index))
    want = model(seq[index])[:, -1]  # seq ends with the token this step feeds (or the prompt's last)
    torch.testing.assert_close(logits, want, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(logits[0], logits[1], atol=1e-3)  # the rows really differ


def test_sampling_is_seeded_and_top_k_1_is_greedy():
    model = tiny()
    prompt = torch.randint(0, 23, (2, 3))
    g = lambda: torch.Generator().manual_seed(5)
    a = sample(model, prompt, lens(prompt), 8, temperature=1.0, top_p=0.9, generator=g())
    b = sample(model, prompt, lens(prompt), 8, temperature=1.0, top_p=0.9, generator=g())
    assert a == b
    assert sample(model, prompt, lens(prompt), 8, top_k=1, generator=g()) == greedy_decode(
        model, prompt, lens(prompt), 8
    )


def test_lm_loss_of_untrained_model_is_near_ln_v_and_training_lowers_it():
    model = tiny(vocab_size=11, max_len=12)
    model.train()
    data = torch.arange(12).remainder(11).repeat(4, 1)  # (4, 12): a cycle to memorize
    first = float(lm_loss(model(data), data).detach())
    assert abs(first - torch.log(torch.tensor(11.0)).item()) < 0.3
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(60):
        loss = lm_loss(model(data), data)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.1 * first


def test_bad_inputs():
    model = tiny()
    with pytest.raises(ValueError, match="max_len=16"):
        model(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="vocabulary has 23"):
        model(torch.full((1, 3), 23))
    with pytest.raises(ValueError, match="int64"):
        model(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(d_model=10, num_heads=4)
    with pytest.raises(ValueError, match="no padding"):
        model.init_state(torch.zeros(2, 3, dtype=torch.long), torch.tensor([3, 2]))
    with pytest.raises(ValueError, match="GPTState"):
        model.step(torch.zeros(2, dtype=torch.long), None)
    with pytest.raises(ValueError, match="wte"):
        gpt2_state_dict_to_ours({}, 1)


def test_loads_hugging_face_gpt2_logits_equal():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(
        vocab_size=50, n_positions=20, n_embd=32, n_layer=2, n_head=4, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0
    )
    hf = transformers.GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():  # non-trivial LayerNorm parameters and biases, so that a wrong mapping shows
        for name, p in hf.named_parameters():
            if "ln" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    ours = from_hf_gpt2(hf).eval()
    tokens = torch.randint(0, 50, (2, 11))
    with torch.no_grad():
        expected = hf(tokens).logits
    torch.testing.assert_close(ours(tokens), expected, atol=1e-5, rtol=1e-5)
    # generation through the cache agrees with Hugging Face's greedy search
    with torch.no_grad():
        hf_out = hf.generate(tokens[:, :3], max_new_tokens=5, do_sample=False, pad_token_id=0)
    assert greedy_decode(ours, tokens[:, :3], lens(tokens[:, :3]), max_len=5) == hf_out[:, 3:].tolist()
    short = from_hf_gpt2(hf, max_len=12).eval()
    torch.testing.assert_close(short(tokens), expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="cannot be overridden"):
        from_hf_gpt2(hf, d_model=64)
