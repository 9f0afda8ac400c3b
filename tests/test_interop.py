"""d2l_attn.interop: the one place where weights from torch.nn and Hugging Face enter our models."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from d2l_attn import interop, models
from d2l_attn.multihead import MultiHeadAttention


def test_load_torch_mha_gives_torchs_output():
    torch.manual_seed(0)
    ref = nn.MultiheadAttention(16, 4, batch_first=True).eval()
    ours = interop.load_torch_mha(MultiHeadAttention(16, 4), ref).eval()
    x = torch.randn(2, 5, 16)
    expected, _ = ref(x, x, x, need_weights=False)
    torch.testing.assert_close(ours(x).output, expected, rtol=1e-5, atol=1e-5)


def test_load_torch_mha_refuses_other_modules():
    with pytest.raises(ValueError, match="ours must be a d2l_attn MultiHeadAttention"):
        interop.load_torch_mha(nn.Linear(4, 4), nn.MultiheadAttention(4, 2))
    with pytest.raises(ValueError, match="module must be a torch.nn.MultiheadAttention"):
        interop.load_torch_mha(MultiHeadAttention(4, 2), nn.Linear(4, 4))


def test_the_weight_loaders_left_the_models():
    # one definition each, in interop (the models know sizes, not checkpoints)
    assert not hasattr(models.GPT, "from_hf_gpt2")
    assert not hasattr(models.BERT, "from_hf_bert")
    assert not hasattr(models.ViT, "load_hf_weights")


def test_from_hf_vit_takes_the_head_size_from_overrides():
    transformers = pytest.importorskip("transformers")
    config = transformers.ViTConfig(
        image_size=8, patch_size=4, num_channels=1, hidden_size=16, num_attention_heads=2,
        intermediate_size=32, num_hidden_layers=1, layer_norm_eps=1e-6,
    )  # fmt: skip
    hf = transformers.ViTModel(config, add_pooling_layer=False).eval()
    ours = interop.from_hf_vit(hf, num_classes=3).eval()
    assert (ours.config.num_classes, ours.config.eps, ours.config.patch_size) == (3, 1e-6, 4)
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(ours.features(x), hf(pixel_values=x).last_hidden_state, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="hf_model must be a Hugging Face ViTModel"):
        interop.from_hf_vit(nn.Linear(2, 2))
