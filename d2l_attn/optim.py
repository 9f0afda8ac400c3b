r"""Optimizer helpers: learning-rate schedules, temperature annealing and weight-decay groups.

**Learning-rate schedules** (multipliers of a base rate, for :class:`torch.optim.lr_scheduler.LambdaLR`;
optimizer step :math:`s = 1, 2, \dots` uses the factor of :math:`s`, warm-up :math:`w` steps):

.. math::

    f_\text{inv-sqrt}(s) = \min\Big(\frac{s}{w}, \sqrt{\frac{w}{s}}\Big), \qquad
    f_\text{cos}(s) = \begin{cases} s/w & s \le w \\
        r + (1 - r)\,\tfrac12\big(1 + \cos\big(\pi \tfrac{s - w}{S - w}\big)\big) & w < s \le S \end{cases}

With base rate :math:`d^{-1/2} w^{-1/2}` the first is the schedule of Vaswani et al. (2017),
:math:`d^{-1/2}\min(s^{-1/2}, s\,w^{-3/2})` (:func:`noam_lr`). The second, with :math:`r =
\eta_\text{min}/\eta`, is GPT pretraining's warm-up + cosine decay (chapter 9's
:mod:`d2l_attn.pretrain` uses it).

**Temperature annealing** (:func:`gumbel_temperature`): :math:`\tau_s = \max(\tau_\text{min}, \tau_0
e^{-rs})` (Jang et al., 2017), for :func:`d2l_attn.stability.gumbel_softmax`.

**Weight-decay groups** (:func:`weight_decay_groups`): AdamW decays matrices and embeddings
(parameters with two or more dimensions) and leaves biases and norm gains alone, as GPT-2 and
nanoGPT do.

Chapters 9 and 12 use these.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from ._checks import nonnegative_int, positive_int, positive_number, unit_interval

__all__ = [
    "inverse_sqrt_factor",
    "cosine_factor",
    "noam_lr",
    "warmup_inverse_sqrt",
    "warmup_cosine",
    "gumbel_temperature",
    "weight_decay_groups",
]


def inverse_sqrt_factor(step: int, warmup_steps: int) -> float:
    r""":math:`\min(s/w, \sqrt{w/s})`: linear warm-up to 1 at step :math:`w`, then :math:`\propto 1/\sqrt{s}`."""
    positive_int("step", step)
    positive_int("warmup_steps", warmup_steps)
    return min(step / warmup_steps, math.sqrt(warmup_steps / step))


def cosine_factor(step: int, warmup_steps: int, total_steps: int, min_ratio: float = 0.0) -> float:
    r"""Linear warm-up to 1 at step :math:`w`, then a half cosine down to ``min_ratio`` at ``total_steps`` (flat after)."""
    positive_int("step", step)
    nonnegative_int("warmup_steps", warmup_steps)
    positive_int("total_steps", total_steps)
    if warmup_steps >= total_steps:
        raise ValueError(f"warmup_steps must be < total_steps, got {warmup_steps} and {total_steps}")
    min_ratio = unit_interval("min_ratio", min_ratio)
    if step <= warmup_steps:
        return step / warmup_steps
    progress = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def noam_lr(step: int, d_model: int, warmup_steps: int) -> float:
    r"""The paper's rate :math:`d^{-1/2}\min(s^{-1/2}, s\,w^{-3/2})` (Vaswani et al., 2017, eq. 3)."""
    positive_int("d_model", d_model)
    return d_model**-0.5 * warmup_steps**-0.5 * inverse_sqrt_factor(step, warmup_steps)


def warmup_inverse_sqrt(optimizer: torch.optim.Optimizer, warmup_steps: int) -> LambdaLR:
    """A scheduler (stepped once per optimizer step) that multiplies the base rate by :func:`inverse_sqrt_factor`."""
    positive_int("warmup_steps", warmup_steps)
    return LambdaLR(optimizer, lambda t: inverse_sqrt_factor(t + 1, warmup_steps))  # step t + 1 uses factor(t + 1)


def warmup_cosine(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int, min_ratio: float = 0.0
) -> LambdaLR:
    """A scheduler (stepped once per optimizer step) that multiplies the base rate by :func:`cosine_factor`."""
    cosine_factor(1, warmup_steps, total_steps, min_ratio)  # check the arguments now
    return LambdaLR(optimizer, lambda t: cosine_factor(t + 1, warmup_steps, total_steps, min_ratio))


def gumbel_temperature(step: int, tau0: float = 1.0, tau_min: float = 0.1, rate: float = 0.0) -> float:
    r"""Exponential annealing :math:`\tau_s = \max(\tau_\text{min}, \tau_0 e^{-r s})` (Jang et al., 2017), step :math:`s \ge 0`.

    ``rate = 0`` keeps :math:`\tau_0` fixed; :math:`r = \ln(\tau_0/\tau_\text{min}) / S` reaches
    :math:`\tau_\text{min}` at step :math:`S`.
    """
    nonnegative_int("step", step)
    tau0, tau_min = positive_number("tau0", tau0), positive_number("tau_min", tau_min)
    if not isinstance(rate, (int, float)) or not 0 <= rate < math.inf:
        raise ValueError(f"rate must be a finite number >= 0, got {rate!r}")
    return max(tau_min, tau0 * math.exp(-rate * step))


def weight_decay_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two parameter groups for AdamW: matrices and embeddings decay; biases and norm gains (1-D) do not."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(weight_decay, (int, float)) or not 0 <= weight_decay < math.inf:
        raise ValueError(f"weight_decay must be a finite number >= 0, got {weight_decay!r}")
    params = [p for p in model.parameters() if p.requires_grad]  # shared (tied) parameters appear once
    return [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": float(weight_decay)},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
