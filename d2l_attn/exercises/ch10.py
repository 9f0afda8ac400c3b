"""Exercises of chapter 10: the Vision Transformer (patches, tokens, inductive bias, attention distance, windows)."""

from __future__ import annotations

import math

import torch

from ..embeddings import patchify
from .core import ChoiceExercise, FunctionExercise, NumberExercise


def _num_tokens(image: int, patch: int, cls: bool = True) -> int:
    return (image // patch) ** 2 + int(cls)


num_tokens = NumberExercise(
    id="ch10-num-tokens",
    prompt=(
        "ViT-B/16 reads 224 x 224 images in 16 x 16 patches and prepends a [CLS] token. "
        "How many tokens does each image become?"
    ),
    solution=_num_tokens(224, 16),
    rtol=0.0,
    atol=0.5,
    wrong_answers=[_num_tokens(224, 16, cls=False), 224 * 224 // 16, 224 // 16 + 1],
    hints=[
        "Count the patches along one side first; the image is a grid of them.",
        "(224 / 16)^2 patches, plus one for [CLS].",
    ],
)


def _patch_params(channels: int, patch: int, d: int, bias: bool = True) -> int:
    return channels * patch * patch * d + (d if bias else 0)


patch_params = NumberExercise(
    id="ch10-patch-params",
    prompt=(
        "How many parameters does ViT-B/16's patch embedding have (RGB images, 16 x 16 patches, "
        "d = 768, with bias)? It is a Conv2d(3, 768, kernel_size=16, stride=16)."
    ),
    solution=_patch_params(3, 16, 768),
    rtol=0.0,
    atol=0.5,
    wrong_answers=[_patch_params(3, 16, 768, bias=False), _patch_params(1, 16, 768), 196 * _patch_params(3, 16, 768)],
    hints=[
        "A linear map from one flattened patch (C * p * p numbers) to d numbers, shared by all patches.",
        "3 * 16 * 16 * 768 weights plus 768 biases; the number of patches does not matter.",
    ],
)

inductive_bias = ChoiceExercise(
    id="ch10-inductive-bias",
    prompt=("Which statements about a ViT and a CNN of similar size are true? Choose all that apply."),
    options=[
        "A convolution is local and uses the same weights at every position; self-attention over patches "
        "is global from the first layer, and any notion of 2-D neighbourhood must be learned.",
        "With little training data the CNN usually wins; with the same short training budget, adding "
        "augmentation (random shifts) closes the gap for the ViT.",
        "The learned 1-D position embeddings of a ViT cannot represent rows and columns, so ViTs ignore "
        "the 2-D layout of an image.",
        "Without position embeddings, a mean-pooled ViT gives the same output when its patches are shuffled.",
    ],
    solution={"a", "d"},
    wrong_answers=["a, b, d", "a, b", "a, b, c, d", "c", "b, d"],
    hints=[
        "Two statements are false. One contradicts section 10.5: a 1-D table can encode any 2-D layout, and "
        "the model uses it. The other contradicts section 10.4's measurement: at a fixed short budget the "
        "shifts lowered the ViT's accuracy; augmentation pays off only with long training.",
        "Self-attention is permutation equivariant and the mean is permutation invariant; the position "
        "table can learn 2-D structure even though it is indexed in 1-D.",
    ],
)


def _patchify_inputs(seed: int):
    g = torch.Generator().manual_seed(seed)
    shapes = [(2, 1, 8, 8, 2), (1, 3, 12, 8, 4), (3, 2, 6, 6, 3), (2, 1, 28, 28, 7), (1, 3, 4, 4, 4)]
    b, c, h, w, p = shapes[seed % len(shapes)]
    return torch.randn(b, c, h, w, generator=g), p


def _reference_patchify(images: torch.Tensor, p: int) -> torch.Tensor:
    return patchify(images, p)


patchify_exercise = FunctionExercise(
    id="ch10-patchify",
    prompt=(
        "Write patchify(images, p): images (B, C, H, W) -> (B, N, C * p * p), the non-overlapping p x p "
        "patches row by row, each flattened channel-major (as a Conv2d weight (d, C, p, p) is)."
    ),
    solution=_reference_patchify,
    make_inputs=_patchify_inputs,
    wrong_answers=[
        lambda x, p: x.reshape(x.shape[0], -1, x.shape[1] * p * p),  # reshape is not cutting into patches
        lambda x, p: torch.nn.functional.unfold(x, p, stride=p),  # (B, C p p, N): not transposed
        lambda x, p: (
            x.unfold(2, p, p).unfold(3, p, p).permute(0, 2, 3, 4, 5, 1).reshape(x.shape[0], -1, x.shape[1] * p * p)
        ),  # channel last, not channel-major
        patchify,  # right, but the exercise is to write it
    ],
    forbidden=["d2l_attn"],
    hints=[
        "torch.nn.functional.unfold(images, kernel_size=p, stride=p) returns (B, C * p * p, N).",
        "Transpose the last two dimensions of unfold's output.",
    ],
)


def _distance_2x2(patch: int) -> float:
    # every query attends uniformly to the 4 patches of a 2 x 2 grid: mean of 0, p, p, p sqrt(2)
    return patch * (0 + 1 + 1 + math.sqrt(2)) / 4


attention_distance = NumberExercise(
    id="ch10-attention-distance",
    prompt=(
        "A 2 x 2 grid of 4 x 4-pixel patches; every query patch attends with weight 1/4 to each of the "
        "4 patches (itself included). What is the mean attention distance in pixels? (3 decimals)"
    ),
    solution=_distance_2x2(4),
    rtol=0.0,
    atol=5e-4,
    wrong_answers=[_distance_2x2(1), 4 * (1 + 1 + 2) / 4, 4 * (1 + 1 + math.sqrt(2)) / 3],
    hints=[
        "From any patch: itself at distance 0, two neighbours at one patch, one diagonal at sqrt(2) patches.",
        "Average the four distances and multiply by the patch size, 4 pixels.",
    ],
)


window_scores = NumberExercise(
    id="ch10-window-scores",
    prompt=(
        "Swin's first stage has a 56 x 56 grid of tokens and attends within 7 x 7 windows. How many "
        "times fewer attention scores per head does that compute than global attention over all tokens?"
    ),
    solution=(56 * 56) ** 2 / (56 * 56 * 49),
    rtol=0.0,
    atol=0.5,
    wrong_answers=[56 / 7, (56 * 56) / 7, 49],
    hints=[
        "Global: every token scores every token. Windowed: every token scores the 49 tokens of its window.",
        "(56^2)^2 / (56^2 * 7^2) = 56^2 / 7^2.",
    ],
)

EXERCISES = [num_tokens, patch_params, inductive_bias, patchify_exercise, attention_distance, window_scores]
