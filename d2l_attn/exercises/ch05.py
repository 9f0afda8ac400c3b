"""Exercises of chapter 5: multi-head attention (heads, split/merge, parameters, from scratch)."""

from __future__ import annotations

import math

import torch

from ..multihead import MultiHeadAttention, split_heads
from .core import ChoiceExercise, FunctionExercise, NumberExercise, TensorExercise


def _num_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _mha(d_model: int, num_heads: int, **kwargs) -> MultiHeadAttention:
    """A layer built without moving the global RNG (its initial weights are never used)."""
    with torch.random.fork_rng(devices=[]):
        return MultiHeadAttention(d_model, num_heads, **kwargs)


param_count = NumberExercise(
    id="ch05-param-count",
    prompt=(
        "How many parameters does a multi-head attention layer with d_model = 512, h = 8 heads "
        "and biases (as in the Transformer base model) have?"
    ),
    solution=_num_params(_mha(512, 8)),
    rtol=0.0,
    atol=0.5,
    wrong_answers=[
        8 * _num_params(_mha(512, 8)),  # a full d x d projection per head
        _num_params(_mha(512, 8, bias=False)),  # forgot the biases
        3 * 512 * 512 + 3 * 512,  # forgot the output projection W_o
    ],
    hints=[
        "Count the four projections W_q, W_k, W_v, W_o: each is a d_model x d_model matrix plus a bias.",
        "The heads split one d x d projection into h blocks of d/h columns: h does not appear. "
        "4 d^2 + 4 d with d = 512.",
    ],
)

split_shape = ChoiceExercise(
    id="ch05-split-shape",
    prompt="X has shape (B, T, d) = (2, 5, 12). What is the shape of split_heads(X, num_heads=3)?",
    options=["(2, 3, 5, 4)", "(2, 5, 3, 4)", "(2, 3, 5, 12)", "(2, 5, 36)"],
    solution=str(tuple(split_heads(torch.zeros(2, 5, 12), 3).shape)),
    wrong_answers=["b", "c", "d"],
    hints=[
        "Each head gets d / h = 4 of the 12 features; no feature is copied.",
        "The heads become their own axis right after the batch axis, so that one batched matmul "
        "serves all heads: (B, h, T, d / h).",
    ],
)

more_heads = ChoiceExercise(
    id="ch05-more-heads",
    prompt=(
        "d_model stays 512 and the number of heads goes from 8 to 16. Which statements are true? Choose all that apply."
    ),
    options=[
        "The number of parameters doubles.",
        "The number of parameters stays the same.",
        "Each head works in half as many dimensions (32 instead of 64).",
        "The layer computes the same number of attention-weight matrices per example.",
    ],
    solution={"b", "c"},
    wrong_answers=["a", "a, c", "b, c, d", "b"],
    hints=[
        "Look at the shapes of W_q, W_k, W_v and W_o: do they mention h?",
        "Every head computes its own (T_q, T_k) weight matrix, in d_model / h dimensions.",
    ],
)

_PER_HEAD = torch.tensor(
    [[[[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]], [[0.1, 0.9, 0.0], [0.6, 0.2, 0.2]]]]
)  # (B=1, h=2, T_q=2, T_k=3)

averaged_weights = TensorExercise(
    id="ch05-averaged-weights",
    prompt=(
        "A two-head layer returns the per-head weights W (shape (1, 2, 2, 3), printed in the notebook). "
        "What does torch.nn.MultiheadAttention return as its (default) attention weights?"
    ),
    solution=_PER_HEAD.mean(dim=1),
    wrong_answers=[_PER_HEAD.sum(dim=1), _PER_HEAD[:, 0], _PER_HEAD.mean(dim=-1)],
    starter=torch.zeros(1, 2, 3),
    hints=[
        "PyTorch returns one (T_q, T_k) matrix per example by default (average_attn_weights=True).",
        "Average over the head axis (dim=1); each row still sums to 1.",
    ],
)


def _reference_self_attention(x, w_q, w_k, w_v, w_o, num_heads):
    d_model = x.shape[-1]
    mha = _mha(d_model, num_heads, bias=False).to(x.dtype)
    with torch.no_grad():
        for layer, weight in zip((mha.W_q, mha.W_k, mha.W_v, mha.W_o), (w_q, w_k, w_v, w_o)):
            layer.weight.copy_(weight)
    with torch.no_grad():
        return mha(x).output


def _self_attention_inputs(seed: int):
    g = torch.Generator().manual_seed(500 + seed)
    num_heads = [1, 2, 4, 3, 2][seed % 5]
    d_model = num_heads * (2 + seed)
    batch_size, num_steps = 1 + seed % 3, 3 + seed
    x = torch.randn(batch_size, num_steps, d_model, generator=g, dtype=torch.float64)
    w_q, w_k, w_v, w_o = (
        torch.randn(d_model, d_model, generator=g, dtype=torch.float64) / math.sqrt(d_model) for _ in range(4)
    )
    return x, w_q, w_k, w_v, w_o, num_heads


def _split(x, h):
    b, t, d = x.shape
    return x.view(b, t, h, d // h).transpose(1, 2)  # (B, h, T, d_h)


def _wrong_scale_by_d_model(x, w_q, w_k, w_v, w_o, num_heads):
    q, k, v = (_split(x @ w.T, num_heads) for w in (w_q, w_k, w_v))
    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(x.shape[-1]), -1)
    return (weights @ v).transpose(1, 2).reshape(x.shape) @ w_o.T


def _wrong_no_output_projection(x, w_q, w_k, w_v, w_o, num_heads):  # Interview Q6's SelfAttention (no W_o)
    q, k, v = (_split(x @ w.T, num_heads) for w in (w_q, w_k, w_v))
    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(x.shape[-1] // num_heads), -1)
    return (weights @ v).transpose(1, 2).reshape(x.shape)


def _wrong_merge_without_transpose(x, w_q, w_k, w_v, w_o, num_heads):
    q, k, v = (_split(x @ w.T, num_heads) for w in (w_q, w_k, w_v))
    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(x.shape[-1] // num_heads), -1)
    return (weights @ v).reshape(x.shape) @ w_o.T


def _wrong_torch_module(x, w_q, w_k, w_v, w_o, num_heads):  # right values, but not from scratch
    d_model = x.shape[-1]
    mha = torch.nn.MultiheadAttention(d_model, num_heads, bias=False, batch_first=True).to(x.dtype)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([w_q, w_k, w_v]))
        mha.out_proj.weight.copy_(w_o)
        return mha(x, x, x, need_weights=False)[0]


self_attention_function = FunctionExercise(
    id="ch05-self-attention-fn",
    prompt=(
        "Write self_attention(x, w_q, w_k, w_v, w_o, num_heads): multi-head self-attention without "
        "biases for x of shape (B, T, d_model); each w is a (d_model, d_model) weight in nn.Linear's "
        "convention (y = x @ w.T). Return the (B, T, d_model) output."
    ),
    solution=_reference_self_attention,
    make_inputs=_self_attention_inputs,
    wrong_answers=[
        _wrong_scale_by_d_model,
        _wrong_no_output_projection,
        _wrong_merge_without_transpose,
        lambda *args: _reference_self_attention(*args),
        _wrong_torch_module,
        "not a function",
    ],
    forbidden=["d2l_attn", "torch.nn.MultiheadAttention", "torch.nn.functional.multi_head_attention_forward"],
    forbidden_reason="write it from scratch, without d2l_attn or torch.nn.MultiheadAttention.",
    hints=[
        "Project (x @ w_q.T, ...), split into heads (B, h, T, d_h), softmax(Q K^T / sqrt(d_h)) V per head, "
        "merge the heads back to (B, T, d_model), and apply the output projection w_o.",
        "Scale by sqrt(d_model // num_heads), the size of one head; merging needs a transpose(1, 2) "
        "before the reshape.",
    ],
)

heads_needed = ChoiceExercise(
    id="ch05-heads-needed",
    prompt=(
        "In the two-neighbour task of section 5.1 (d = 16 fixed), which layers can drive the loss close to 0? "
        "A three-neighbour task adds a third 4-number part, the a of token i + 2. Choose all that apply."
    ),
    options=[
        "4 heads of 4 dimensions, two-neighbour task",
        "2 heads of 8 dimensions, three-neighbour task",
        "4 heads of 4 dimensions, three-neighbour task",
        "1 head of 16 dimensions, two-neighbour task",
    ],
    solution={"a", "c"},
    wrong_answers=["a", "a, b, c", "b, d", "c"],
    hints=[
        "One head gives each query one weighted average: count the places a query must read from.",
        "A head of 4 dimensions still carries 4 numbers, one part of the target; what limits the layer is "
        "the number of heads, not their width.",
    ],
    explanation="With two heads on the three-neighbour task the loss stalls near 1/3: one of the three "
    "parts cannot be fetched and is best predicted by its mean, 0.",
)

EXERCISES = [param_count, split_shape, more_heads, averaged_weights, self_attention_function, heads_needed]
