"""Exercises of chapter 7: the Transformer (FFN, residual + LayerNorm, masks, KV cache)."""

from __future__ import annotations

import torch

from ..blocks import Block, PositionWiseFFN
from ..masking import causal_mask
from .core import ChoiceExercise, FunctionExercise, NumberExercise


def _ffn_params(d_model: int, d_ff: int, bias: bool = True) -> int:
    with torch.random.fork_rng(devices=[]):  # counting parameters must not move the global RNG
        ffn = PositionWiseFFN(d_model, d_ff)
    return sum(p.numel() for name, p in ffn.named_parameters() if bias or not name.endswith("bias"))


ffn_params = NumberExercise(
    id="ch07-ffn-params",
    prompt=(
        "How many parameters does the position-wise FFN of the base Transformer have "
        "(d_model = 512, d_ff = 2048, with biases)? It is applied at every position with the same weights."
    ),
    solution=_ffn_params(512, 2048),
    rtol=0.0,
    atol=0.5,
    wrong_answers=[
        _ffn_params(512, 2048, bias=False),  # biases forgotten
        512 * 2048 + 2048,  # only the first layer
        _ffn_params(512, 2048) * 10,  # multiplied by the number of positions
    ],
    hints=[
        "Two linear layers: d_model -> d_ff and d_ff -> d_model, each with a weight matrix and a bias.",
        "2 * 512 * 2048 weights, plus 2048 + 512 biases; the count does not depend on the sentence length.",
    ],
)

masks = ChoiceExercise(
    id="ch07-masks",
    prompt=(
        "Training a Transformer translation model with padded batches: which masks are needed so that "
        "the loss of a sentence does not depend on padding or on future target tokens? Choose all that apply."
    ),
    options=[
        "A causal mask in the decoder's self-attention.",
        "A padding mask on the source keys, in the encoder's self-attention and in the cross-attention.",
        "A causal mask in the encoder's self-attention.",
        "Positional encodings, which act as an attention mask.",
    ],
    solution={"a", "b"},
    wrong_answers=["a", "b", "a, b, c", "a, b, d", "d"],
    hints=[
        "Which attention could see a token it is trained to predict? Which keys are not real tokens?",
        "The encoder reads the whole source at once (it may look ahead); positional encodings add "
        "order information but remove no key from any softmax.",
    ],
)


def _kv_cache_floats(num_layers: int, d_model: int, steps: int) -> int:
    return 2 * num_layers * steps * d_model  # keys and values, every layer, every decoded position


kv_cache = NumberExercise(
    id="ch07-kv-cache",
    prompt=(
        "A decoder with 2 blocks, d_model = 256 and 4 heads has generated 9 tokens for one sentence. "
        "How many numbers does its self-attention key/value cache hold (all blocks, all heads)?"
    ),
    solution=_kv_cache_floats(2, 256, 9),
    rtol=0.0,
    atol=0.5,
    wrong_answers=[
        _kv_cache_floats(2, 256, 9) // 2,  # keys only (or one layer only)
        _kv_cache_floats(2, 256, 9) * 4,  # heads counted on top of d_model
        _kv_cache_floats(1, 256, 1),  # one step
    ],
    hints=[
        "Per block and position the cache keeps one key and one value vector; the heads split d_model, "
        "they do not multiply it.",
        "2 (keys and values) x 2 blocks x 9 positions x 256 numbers.",
    ],
)


def _causal_inputs(seed: int):
    return ([1, 2, 5, 9, 16][seed % 5],)


def _reference_causal(num_steps: int) -> torch.Tensor:
    return causal_mask(num_steps)


causal = FunctionExercise(
    id="ch07-causal-mask",
    prompt=(
        "Write causal(num_steps) returning the boolean (num_steps, num_steps) mask of decoder "
        "self-attention: True where query i may attend to key j (the PyTorch SDPA convention)."
    ),
    solution=_reference_causal,
    make_inputs=_causal_inputs,
    wrong_answers=[
        lambda n: torch.triu(torch.ones(n, n, dtype=torch.bool)),  # the future instead of the past
        lambda n: torch.tril(torch.ones(n, n, dtype=torch.bool), diagonal=-1),  # not even itself
        lambda n: ~torch.tril(torch.ones(n, n, dtype=torch.bool)),  # True = masked (the other convention)
        causal_mask,  # right, but the exercise is to write it
    ],
    forbidden=["d2l_attn"],
    hints=[
        "Query i may see keys 0, 1, ..., i: the lower triangle of the matrix, diagonal included.",
        "torch.tril(torch.ones(n, n, dtype=torch.bool)).",
    ],
)


def _pre_ln_inputs(seed: int):
    """A pre-LN block with every parameter drawn from a private generator (the global RNG is
    neither seeded nor moved: construction runs in a forked RNG state)."""
    g = torch.Generator().manual_seed(1000 + seed)
    with torch.random.fork_rng(devices=[]):
        block = Block.build(16, 4, 32, norm_first=True).eval()
    with torch.no_grad():
        for name, p in block.named_parameters():
            if name.endswith("norm.weight"):  # non-trivial LayerNorm parameters
                p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=g))
            elif p.dim() == 1:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / p.shape[-1] ** 0.5)
    x = torch.randn(2, 5, 16, generator=g)
    return block, x


def _reference_pre_ln(block, x):
    with torch.no_grad():
        return block(x).x


def _wrong_post_ln(block, x):  # the paper's order instead
    with torch.no_grad():
        h = block.addnorm1.norm(x + block.attention(x).output)
        return block.addnorm2.norm(h + block.ffn(h))


def _wrong_no_residual(block, x):
    with torch.no_grad():
        n1 = block.addnorm1.norm(x)
        h = block.attention(n1).output
        return block.ffn(block.addnorm2.norm(h))


pre_ln_block = FunctionExercise(
    id="ch07-pre-ln",
    prompt=(
        "Write pre_ln(block, x): the forward pass of a pre-LN encoder block (no padding, eval mode) "
        "using its parts block.attention, block.ffn, block.addnorm1.norm and block.addnorm2.norm."
    ),
    solution=_reference_pre_ln,
    make_inputs=_pre_ln_inputs,
    num_trials=3,
    rtol=1e-4,
    atol=1e-5,
    wrong_answers=[_wrong_post_ln, _wrong_no_residual, lambda block, x: block(x).x],
    forbidden=["d2l_attn.blocks.Block.forward"],
    forbidden_reason="build the forward pass from the block's parts instead of calling block(x).",
    hints=[
        "Pre-LN: normalize first, apply the sublayer, then add the *unnormalized* input: x + F(LN(x)).",
        "h = x + attention(n).output with n = norm1(x); return h + ffn(norm2(h)).",
    ],
)

EXERCISES = [ffn_params, masks, kv_cache, causal, pre_ln_block]
