"""Exercises of chapter 11: interpreting attention (entropy, rollout, flow, attribution, what maps do not show)."""

from __future__ import annotations

import math

import torch

from ..attribution import attention_flow, attention_rollout
from .core import ChoiceExercise, FunctionExercise, NumberExercise

_A1 = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
_A2 = torch.tensor([[0.5, 0.5], [0.0, 1.0]])
_TWO_LAYERS = torch.stack([_A1, _A2])[:, None]  # (L=2, h=1, T=2, T=2)

entropy_uniform = NumberExercise(
    id="ch11-entropy",
    prompt=(
        "A head attends uniformly over 8 keys. What is the entropy of its attention row, in nats (natural logarithm)?"
    ),
    solution=math.log(8),
    rtol=1e-3,
    wrong_answers=[3.0, 1 / 8, math.log(7), 0.0],
    hints=[
        "H = -sum_j a_j log a_j with a_j = 1/8 for each of the 8 keys.",
        "Eight equal terms -(1/8) log(1/8): the sum is log 8, about 2.08 (3 is the value in bits).",
    ],
)

rollout_entry = NumberExercise(
    id="ch11-rollout",
    prompt=(
        "Two layers, one head, two tokens. Layer 1 attends with A1 = [[1, 0], [0.5, 0.5]], layer 2 with "
        "A2 = [[0.5, 0.5], [0, 1]]. With attention rollout (each layer 0.5 I + 0.5 A, rows normalized, "
        "later layers multiplied on the left), how much of output 0 comes from input token 1?"
    ),
    solution=float(attention_rollout(_TWO_LAYERS)[0, 1]),
    rtol=1e-3,
    wrong_answers=[
        float((_A2 @ _A1)[0, 1]),  # no residual
        float(attention_rollout(_TWO_LAYERS.flip(0))[0, 1]),  # layers multiplied the other way round
        0.5,
    ],
    hints=[
        "A'_1 = 0.5 I + 0.5 A1 = [[1, 0], [0.25, 0.75]] and A'_2 = [[0.75, 0.25], [0, 1]].",
        "The rollout is A'_2 A'_1; its entry (0, 1) is 0.75 * 0 + 0.25 * 0.75.",
    ],
    explanation="0.1875: output 0 reaches token 1 only through position 1 of layer 1.",
)

flow_entry = NumberExercise(
    id="ch11-flow",
    prompt=(
        "Same two layers as the rollout exercise. Treat each residual-mixed weight A'_l[i, j] as the capacity "
        "of an edge from position i of layer l to position j of layer l - 1. What is the attention flow "
        "(the maximum flow) from output 0 to input token 0?"
    ),
    solution=float(attention_flow(_TWO_LAYERS)[0, 0]),
    rtol=1e-3,
    wrong_answers=[float(attention_rollout(_TWO_LAYERS)[0, 0]), 0.75, 0.25],
    hints=[
        "Two paths lead from output 0 to input 0: through position 0 and through position 1 of layer 1.",
        "Through position 0: min(0.75, 1); through position 1: min(0.25, 0.25). Flows add; rollout multiplies.",
    ],
)

explanation_claims = ChoiceExercise(
    id="ch11-claims",
    prompt=("Which statements are true? Choose all that apply."),
    options=[
        "LIME and SHAP are model-agnostic attribution methods: they perturb the input and never read "
        "the attention weights.",
        "A large attention weight from the output to token j proves that the prediction depends on token j.",
        "Integrated gradients sum to f(x) - f(baseline) (completeness), up to the error of the integral.",
        "Rollout adds the identity to every layer's attention because of the residual connections.",
    ],
    solution={"a", "c", "d"},
    wrong_answers=["b", "a, b, c, d", "a, b", "c"],
    hints=[
        "Section 11.6 keeps a model's output while moving its attention far away: what does that say about (b)?",
        "LIME fits a local linear model to perturbed inputs; SHAP averages marginal contributions of features.",
    ],
)


def _js_inputs(seed: int):
    g = torch.Generator().manual_seed(seed)
    n = 3 + seed
    p = torch.softmax(torch.randn(4, n, generator=g, dtype=torch.float64) * 2, -1)
    q = torch.softmax(torch.randn(4, n, generator=g, dtype=torch.float64) * 2, -1)
    return p, q


def _reference_js(p, q):
    m = (p + q) / 2
    return 0.5 * (p * (p / m).log()).sum(-1) + 0.5 * (q * (q / m).log()).sum(-1)


js_divergence = FunctionExercise(
    id="ch11-js",
    prompt=(
        "Write js(p, q): the Jensen-Shannon divergence, in nats, between the rows of p (N, n) and q (N, n) "
        "(strictly positive distributions): 0.5 KL(p || m) + 0.5 KL(q || m) with m = (p + q) / 2."
    ),
    solution=_reference_js,
    make_inputs=_js_inputs,
    rtol=1e-6,
    atol=1e-9,
    wrong_answers=[
        lambda p, q: (p * (p / q).log()).sum(-1),  # KL(p || q): not symmetric, unbounded
        lambda p, q: 0.5 * (p * (p / q).log()).sum(-1) + 0.5 * (q * (q / p).log()).sum(-1),  # symmetrized KL
    ],
    hints=[
        "KL(p || m) = sum_j p_j log(p_j / m_j); the mixture m sits halfway between p and q.",
        "Compute m first, then the two KL terms against m, one per row (sum over the last dim).",
    ],
)


def _rollout_inputs(seed: int):
    g = torch.Generator().manual_seed(seed)
    L, h, T = 1 + seed % 3, 1 + seed % 2, 3 + seed
    return (torch.softmax(torch.randn(L, h, T, T, generator=g, dtype=torch.float64), -1),)


def _wrong_rollout_order(w):
    eye = torch.eye(w.shape[-1], dtype=w.dtype)
    out = eye
    for a in w.mean(1):
        out = out @ (0.5 * a + 0.5 * eye)  # earlier layers on the left
    return out


rollout_function = FunctionExercise(
    id="ch11-rollout-function",
    prompt=(
        "Write rollout(w) for attention weights w (L, h, T, T), layer 0 first: average the heads, mix each "
        "layer as 0.5 A + 0.5 I (rows then sum to 1 already), and return the product A'_L ... A'_1 (T, T)."
    ),
    solution=lambda w: attention_rollout(w),
    make_inputs=_rollout_inputs,
    rtol=1e-6,
    atol=1e-9,
    wrong_answers=[
        _wrong_rollout_order,
        lambda w: torch.linalg.multi_dot([*w.mean(1).flip(0), torch.eye(w.shape[-1], dtype=w.dtype)]),  # no I
    ],
    hints=[
        "Start from A'_1 and multiply each later layer's matrix on the *left*: R <- A'_l R.",
        "Do not forget the identity: A' = 0.5 * w.mean(1)[l] + 0.5 * torch.eye(T).",
    ],
)

EXERCISES = [entropy_uniform, rollout_entry, flow_entry, explanation_claims, js_divergence, rollout_function]
