"""Tests for chapter 10's library code: patch embedding, [CLS] + positions, the ViT, the CNN baseline,
mean attention distance, and the comparison with Hugging Face's ViTModel (needs ``transformers``,
a test-only extra: skipped when it is not installed)."""

import math

import pytest
import torch
from torch import nn

from d2l_attn.embeddings import ImageEmbedding, PatchEmbedding, patchify
from d2l_attn.interop import from_hf_vit, load_hf_vit
from d2l_attn.models import SmallCNN, ViT, ViTConfig, mean_attention_distance


def test_patchify_order_is_row_by_row_and_channel_major():
    images = torch.arange(2 * 2 * 4 * 6, dtype=torch.float32).reshape(2, 2, 4, 6)  # (B, C, H, W)
    patches = patchify(images, 2)  # (2, 6, 8)
    assert patches.shape == (2, 6, 8)
    # patch 1 is the second patch of the first row: rows 0-1, columns 2-3, channel 0 then channel 1
    expected = torch.cat([images[0, c, 0:2, 2:4].flatten() for c in range(2)])
    torch.testing.assert_close(patches[0, 1], expected)
    # patch 3 starts the second row of patches
    torch.testing.assert_close(patches[1, 3, :4], images[1, 0, 2:4, 0:2].flatten())


def test_patch_embedding_is_a_strided_convolution_both_ways():
    torch.manual_seed(0)
    embed = PatchEmbedding((8, 12), 4, 3, 16)
    x = torch.randn(2, 3, 8, 12)
    conv = embed.as_conv()
    from_conv = conv(x).flatten(2).transpose(1, 2)  # (B, N, d)
    torch.testing.assert_close(embed(x), from_conv, rtol=1e-5, atol=1e-5)
    other = nn.Conv2d(3, 16, 4, stride=4)
    embed.load_conv_weights(other)
    torch.testing.assert_close(embed(x), other(x).flatten(2).transpose(1, 2), rtol=1e-5, atol=1e-5)
    assert embed.num_patches == 6 and embed.grid == (2, 3)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: PatchEmbedding(10, 4, 1, 8), "image_size"),
        (lambda: PatchEmbedding(8, 0, 1, 8), "patch_size"),
        (lambda: PatchEmbedding(8, 2, 1, 8)(torch.zeros(1, 3, 8, 8)), "images"),
        (lambda: PatchEmbedding(8, 2, 1, 8)(torch.zeros(1, 1, 8)), "images"),
        (lambda: patchify(torch.zeros(1, 1, 7, 8), 2), "patch_size"),
        (lambda: PatchEmbedding(8, 2, 1, 8).load_conv_weights(nn.Conv2d(1, 8, 2, stride=1)), "conv"),
        (lambda: ViTConfig(d_model=30, num_heads=4), "d_model"),
        (lambda: ViTConfig(pool="max"), "pool"),
        (lambda: ViTConfig(image_size=9, patch_size=2), "image_size"),
        (lambda: ViT()(torch.zeros(2, 1, 28, 28)), "images"),
        (lambda: SmallCNN()(torch.zeros(2, 3, 8, 8)), "images"),
        (lambda: SmallCNN(width=0), "width"),
        (lambda: mean_attention_distance(torch.ones(1, 4, 17, 17), (4, 4), 2, has_cls=False), "weights"),
        (lambda: mean_attention_distance(torch.ones(4, 17, 17), (4, 4), 2), "weights"),
    ],
)
def test_bad_arguments_name_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_image_embedding_puts_cls_first_and_adds_positions():
    torch.manual_seed(0)
    emb = ImageEmbedding(8, 2, 1, 16)
    x = torch.randn(3, 1, 8, 8)
    h = emb(x)
    assert h.shape == (3, 17, 16)
    table = emb.pos_encoding.embedding.weight  # (17, 16)
    torch.testing.assert_close(h[:, 0], (emb.cls_token[0, 0] + table[0]).expand(3, 16))
    torch.testing.assert_close(h[:, 1:], emb.patches(x) + table[1:])
    assert ImageEmbedding(8, 2, 1, 16, cls_token=False)(x).shape == (3, 16, 16)


def test_vit_is_a_pre_ln_stack_with_a_final_norm_and_returns_distributions():
    torch.manual_seed(0)
    model = ViT(ViTConfig(d_model=32, num_heads=4, d_ff=64, num_layers=3)).eval()
    x = torch.randn(5, 1, 8, 8)
    logits, weights = model(x, return_weights=True)
    assert logits.shape == (5, 10) and weights.shape == (5, 3, 4, 17, 17)
    torch.testing.assert_close(weights.sum(-1), torch.ones(5, 3, 4, 17))
    h = model.embed(x)
    for block in model.blocks:
        assert block.norm_first and block.ffn.activation == "gelu"
        n = block.addnorm1.norm(h)
        h = h + block.attention(n).output
        h = h + block.ffn(block.addnorm2.norm(h))
    torch.testing.assert_close(model(x), model.head(model.norm(h)[:, 0]), rtol=1e-5, atol=1e-5)
    mean_model = ViT(d_model=32, num_heads=4, d_ff=64, num_layers=1, pool="mean").eval()
    feats = mean_model.features(x)
    assert feats.shape == (5, 16, 32)
    torch.testing.assert_close(mean_model(x), mean_model.head(feats.mean(1)))


def test_without_positions_a_mean_pooled_vit_ignores_where_patches_are():
    torch.manual_seed(0)
    model = ViT(d_model=32, num_heads=4, d_ff=64, num_layers=2, pool="mean").eval()
    x = torch.randn(2, 1, 8, 8)
    swapped = x.clone()  # exchange the top-left and bottom-right 2x2 patches
    swapped[..., :2, :2], swapped[..., 6:, 6:] = x[..., 6:, 6:], x[..., :2, :2]
    assert not torch.allclose(model(x), model(swapped), atol=1e-4)  # positions tell them apart
    with torch.no_grad():
        model.embed.pos_encoding.embedding.weight.zero_()
    torch.testing.assert_close(model(x), model(swapped), rtol=1e-5, atol=1e-5)


def test_mean_attention_distance_by_hand():
    grid, p = (2, 3), 4
    n = 6
    eye = torch.eye(n + 1).expand(2, 1, 1, n + 1, n + 1)  # every patch attends to itself
    assert mean_attention_distance(eye, grid, p).abs().max() == 0
    uniform = torch.full((2, 1, 2, n + 1, n + 1), 1.0 / (n + 1))
    r = torch.tensor([[i, j] for i in range(2) for j in range(3)], dtype=torch.float32)
    expected = torch.cdist(r, r).mean() * p
    torch.testing.assert_close(mean_attention_distance(uniform, grid, p), torch.full((1, 2), expected.item()))
    # patch 0 (row 0, col 0) attends only to patch 5 (row 1, col 2): distance sqrt(1 + 4) patches
    w = torch.zeros(1, 1, n + 1, n + 1)
    w[0, 0, :, 0] = 0.5  # the [CLS] key is ignored
    w[0, 0, 1:, 6] = 0.5
    assert math.isclose(
        mean_attention_distance(w, grid, p, has_cls=True)[0].item(),
        float(torch.cdist(r, r)[:, 5].mean() * p),
        rel_tol=1e-6,
    )


def test_small_cnn_shapes_and_size():
    model = SmallCNN(1, 10, width=48)
    assert model(torch.randn(4, 1, 8, 8)).shape == (4, 10)
    assert model(torch.randn(4, 1, 28, 28)).shape == (4, 10)
    vit_params = sum(p.numel() for p in ViT().parameters())
    cnn_params = sum(p.numel() for p in model.parameters())
    assert 0.8 < cnn_params / vit_params < 1.25  # the chapter compares models of similar size


def test_matches_hugging_face_vit_with_copied_weights():
    transformers = pytest.importorskip("transformers")
    config = transformers.ViTConfig(
        image_size=8,
        patch_size=2,
        num_channels=1,
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        layer_norm_eps=1e-12,
    )
    config._attn_implementation = "eager"  # returns attention weights (sdpa does not)
    torch.manual_seed(0)
    hf = transformers.ViTModel(config, add_pooling_layer=False).eval()
    with torch.no_grad():  # non-trivial LayerNorms, biases and [CLS] (HF initializes some to 0/1)
        for name, param in hf.named_parameters():
            if "layernorm" in name or name.endswith("bias") or "cls_token" in name:
                param.add_(0.1 * torch.randn_like(param))
    ours = from_hf_vit(hf).eval()
    assert ours.config.eps == 1e-12 and ours.config.d_model == 32  # the sizes come from the checkpoint
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        expected = hf(pixel_values=x, output_attentions=True)
        got, weights = ours.features(x, return_weights=True)
    torch.testing.assert_close(got, expected.last_hidden_state, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(weights, torch.stack(expected.attentions, 1), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="hidden_size"):
        load_hf_vit(ViT(d_model=64, num_heads=4, d_ff=64, num_layers=3), hf)
    with pytest.raises(ValueError, match="layer_norm_eps"):  # the epsilon is part of the sizes
        load_hf_vit(ViT(d_model=32, num_heads=4, d_ff=64, num_layers=3), hf)
    with pytest.raises(ValueError, match="cannot be overridden.*d_model"):
        from_hf_vit(hf, d_model=64)
    same = load_hf_vit(ViT(d_model=32, num_heads=4, d_ff=64, num_layers=3, eps=1e-12), hf).eval()
    torch.testing.assert_close(same.features(x), got)
