"""Exercises of chapter 12: training Transformers stably (schedules, init, label smoothing, ECE, Gumbel-softmax)."""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from ..metrics import expected_calibration_error
from ..optim import noam_lr
from .core import ChoiceExercise, FunctionExercise, NumberExercise

noam_peak = NumberExercise(
    id="ch12-noam-peak",
    prompt=(
        "The base Transformer uses lr = d^-0.5 * min(s^-0.5, s * w^-1.5) with d = 512 and w = 4000 warm-up "
        "steps. What is the largest learning rate of the whole run?"
    ),
    solution=noam_lr(4000, 512, 4000),
    rtol=1e-2,
    wrong_answers=[512**-0.5, 4000**-0.5, 512**-0.5 * 4000**-1.5, 1e-3],
    hints=[
        "The rate rises linearly while s < w and falls like 1/sqrt(s) after: the peak is at s = w.",
        "At s = w both terms equal w^-0.5: the peak is 512^-0.5 * 4000^-0.5.",
    ],
    explanation="About 7.0e-4, reached at step 4000.",
)

residual_scale = NumberExercise(
    id="ch12-residual-scale",
    prompt=(
        "A GPT-2-style stack has 12 blocks, each with an attention and an FFN residual branch. By which "
        "factor does the residual-scaled initialization multiply the output weights of every branch?"
    ),
    solution=1 / math.sqrt(24),
    rtol=1e-2,
    wrong_answers=[1 / math.sqrt(12), 1 / 24, 1 / 12, math.sqrt(24)],
    hints=[
        "Each residual branch adds a roughly independent term to the stream: variances add.",
        "N = 2 x 12 = 24 branches; to keep the sum's variance fixed each is scaled by 1/sqrt(N).",
    ],
)

gumbel = ChoiceExercise(
    id="ch12-gumbel",
    prompt=(
        "Which statements about the Gumbel-softmax softmax((z + g) / tau) with Gumbel noise g are true? "
        "Choose all that apply."
    ),
    options=[
        "argmax(z + g) is an exact sample from softmax(z).",
        "It reduces the fluctuation of attention weights compared with softmax(z).",
        "As tau falls, the samples approach one-hot vectors and the gradients' variance grows.",
        "The straight-through estimator (one-hot forward, relaxed backward) is unbiased.",
    ],
    solution={"a", "c"},
    wrong_answers=["a", "b", "a, b, c", "a, c, d", "d"],
    hints=[
        "softmax(z) is a deterministic function of z; what does adding random noise do to its output?",
        "The straight-through gradient is the gradient of a *different* (relaxed) function: it is biased.",
    ],
)

instability = ChoiceExercise(
    id="ch12-instability",
    prompt=("Which observations point to training *instability* rather than over-fitting? Choose all that apply."),
    options=[
        "The training loss jumps up or becomes nan.",
        "The training loss keeps falling while the validation loss rises.",
        "The gradient norm spikes by orders of magnitude within a few steps.",
        "The attention entropy of a layer collapses towards 0 early in training, with the loss stuck high.",
    ],
    solution={"a", "c", "d"},
    wrong_answers=["b", "a, b, c, d", "a", "a, b"],
    hints=[
        "Over-fitting is a gap between training and held-out loss with the *training* loss fine.",
        "Instability is a failure of optimization: it shows in the training loss and its gradients.",
    ],
)


def _smoothing_inputs(seed: int):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(6, 5 + seed, generator=g) * 3
    targets = torch.randint(0, 5 + seed, (6,), generator=g)
    return logits, targets, [0.0, 0.1, 0.2, 0.5, 1.0][seed % 5]


def _reference_smoothing(logits, targets, eps):
    return F.cross_entropy(logits, targets, label_smoothing=eps)


smoothed_ce = FunctionExercise(
    id="ch12-label-smoothing",
    prompt=(
        "Write smoothed_ce(logits (N, V), targets (N,), eps): the mean cross-entropy against the target "
        "distribution (1 - eps) one_hot(y) + eps / V, without F.cross_entropy's label_smoothing argument."
    ),
    solution=_reference_smoothing,
    make_inputs=_smoothing_inputs,
    rtol=1e-5,
    atol=1e-6,
    wrong_answers=[
        lambda z, y, e: F.cross_entropy(z, y),  # no smoothing
        lambda z, y, e: (1 - e) * F.cross_entropy(z, y) - e * z.log_softmax(-1).sum(-1).mean() / (z.shape[1] - 1),
    ],
    hints=[
        "Cross-entropy with a target distribution q is -sum_v q_v log p_v, averaged over the rows.",
        "(1 - eps) * NLL(y) + eps * mean_v(-log p_v): the uniform part spreads eps over all V classes.",
    ],
)


def _ece_inputs(seed: int):
    g = torch.Generator().manual_seed(seed)
    conf = torch.rand(200, generator=g, dtype=torch.float64)
    correct = (torch.rand(200, generator=g, dtype=torch.float64) < conf**2).long()
    return conf, correct, [5, 10, 15][seed % 3]


def _reference_ece(conf, correct, num_bins):
    return torch.tensor(expected_calibration_error(conf, correct, num_bins), dtype=torch.float64)


def _wrong_ece_unweighted(conf, correct, num_bins):
    edges = torch.linspace(0, 1, num_bins + 1, dtype=torch.float64)
    gaps = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            gaps.append((correct[inside].double().mean() - conf[inside].mean()).abs())
    return torch.stack(gaps).mean()  # bins not weighted by their size


ece = FunctionExercise(
    id="ch12-ece",
    prompt=(
        "Write ece(conf (N,), correct (N,), num_bins): the expected calibration error with equal-width bins "
        "(m/M, (m+1)/M], each weighted by its share of the N predictions."
    ),
    solution=_reference_ece,
    make_inputs=_ece_inputs,
    num_trials=3,
    rtol=1e-6,
    atol=1e-9,
    wrong_answers=[_wrong_ece_unweighted, lambda c, k, m: (k.double() - c).abs().mean()],
    hints=[
        "For each bin: the fraction of predictions in it times |accuracy in it - mean confidence in it|.",
        "Sum those over the non-empty bins; a bin is (lo, hi]: (conf > lo) & (conf <= hi).",
    ],
)

EXERCISES = [noam_peak, residual_scale, gumbel, instability, smoothed_ce, ece]
