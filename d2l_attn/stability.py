r"""Training Transformers stably (chapter 12): schedules, init, QK-norm, Gumbel-softmax, calibration, monitors.

**Learning-rate schedules** (multipliers of a base rate, for :class:`torch.optim.lr_scheduler.LambdaLR`;
optimizer step :math:`s = 1, 2, \dots` uses the factor of :math:`s`, warm-up :math:`w` steps):

.. math::

    f_\text{inv-sqrt}(s) = \min\Big(\frac{s}{w}, \sqrt{\frac{w}{s}}\Big), \qquad
    f_\text{cos}(s) = \begin{cases} s/w & s \le w \\
        r + (1 - r)\,\tfrac12\big(1 + \cos\big(\pi \tfrac{s - w}{S - w}\big)\big) & w < s \le S \end{cases}

With base rate :math:`d^{-1/2} w^{-1/2}` the first is the schedule of Vaswani et al. (2017),
:math:`d^{-1/2}\min(s^{-1/2}, s\,w^{-3/2})` (:func:`noam_lr`).

**Residual-scaled init** (GPT-2, Radford et al., 2019): the matrices that write into the residual
stream (attention's :math:`\mathbf{W}^o`, the FFN's :math:`\mathbf{W}_2`) are multiplied by
:math:`1/\sqrt{N}`, :math:`N` the number of residual branches (:math:`2L` for :math:`L` blocks).

**QK-norm** (Dehghani et al., 2023; Wortsman et al., 2023): LayerNorm on every head's queries and
keys before the dot product, :math:`\operatorname{softmax}(\operatorname{LN}(\mathbf{q})^\top
\operatorname{LN}(\mathbf{k}) / \sqrt{d_h})`, which bounds the attention logits.

**Gumbel-softmax** (Jang et al., 2017; Maddison et al., 2017): with :math:`g_i = -\log(-\log u_i)`,
:math:`u_i \sim U(0, 1)`, :math:`\arg\max_i (z_i + g_i)` is a sample of
:math:`\operatorname{softmax}(\mathbf{z})` and :math:`\operatorname{softmax}((\mathbf{z} + \mathbf{g})/\tau)`
is a differentiable relaxation of its one-hot vector. It *adds* noise; it does not smooth attention.

**Calibration**: the expected calibration error over :math:`M` equal-width confidence bins
(Guo et al., 2017), :math:`\operatorname{ECE} = \sum_m \frac{|B_m|}{n}\,|\operatorname{acc}(B_m) - \operatorname{conf}(B_m)|`.

**Dropout places and temperature annealing**: :func:`dropout_places` finds a model's dropout layers
by place (embeddings, attention weights, FFN hidden layer, residual branches) and :func:`set_dropout`
sets one rate per place; :func:`gumbel_temperature` is the exponential annealing
:math:`\tau_s = \max(\tau_\text{min}, \tau_0 e^{-rs})` of Jang et al. (2017).

**Monitors**: :class:`TrainingMonitor` is a :class:`d2l_attn.training.Trainer` step hook that records
per-layer gradient norms and, on a fixed probe batch, per-layer activation RMS and attention entropy.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from ._checks import nonnegative_int, positive_int, positive_number, unit_interval
from .blocks import AddNorm, PositionWiseFFN
from .multihead import MultiHeadAttention, split_heads
from .positional import LearnedPositionalEncoding, SinusoidalPositionalEncoding
from .scoring import AdditiveAttention, DotProductAttention

__all__ = [
    "inverse_sqrt_factor",
    "cosine_factor",
    "noam_lr",
    "warmup_inverse_sqrt",
    "warmup_cosine",
    "scale_residual_init",
    "QKNormAttention",
    "use_qk_norm",
    "attention_logits",
    "attention_entropy",
    "gumbel_softmax",
    "gumbel_temperature",
    "CalibrationBins",
    "calibration_bins",
    "expected_calibration_error",
    "weight_decay_groups",
    "tie_output_embedding",
    "DROPOUT_PLACES",
    "dropout_places",
    "set_dropout",
    "TrainingMonitor",
]


# -- learning-rate schedules ------------------------------------------------------------------
def inverse_sqrt_factor(step: int, warmup_steps: int) -> float:
    r""":math:`\min(s/w, \sqrt{w/s})`: linear warm-up to 1 at step :math:`w`, then :math:`\propto 1/\sqrt{s}`."""
    positive_int("step", step)
    positive_int("warmup_steps", warmup_steps)
    return min(step / warmup_steps, math.sqrt(warmup_steps / step))


def cosine_factor(step: int, warmup_steps: int, total_steps: int, min_ratio: float = 0.0) -> float:
    r"""Linear warm-up to 1 at step :math:`w`, then a half cosine down to ``min_ratio`` at ``total_steps``."""
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


# -- initialization ---------------------------------------------------------------------------
@torch.no_grad()
def scale_residual_init(model: nn.Module, num_residual: int | None = None) -> int:
    r"""Multiply every residual-branch output matrix (``W_o`` of each :class:`~d2l_attn.multihead.MultiHeadAttention`,
    ``dense2`` of each :class:`~d2l_attn.blocks.PositionWiseFFN`) by :math:`1/\sqrt{N}`.

    ``num_residual`` = :math:`N` defaults to the number of such matrices (``2L`` in a stack of ``L``
    self-attention blocks). Returns :math:`N`. Call it once, right after building the model.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    outputs = [m.W_o.weight for m in model.modules() if isinstance(m, MultiHeadAttention)]
    outputs += [m.dense2.weight for m in model.modules() if isinstance(m, PositionWiseFFN)]
    if not outputs:
        raise ValueError("model has no MultiHeadAttention or PositionWiseFFN: nothing to scale")
    n = len(outputs) if num_residual is None else positive_int("num_residual", num_residual)
    for weight in outputs:
        weight.mul_(n**-0.5)
    return n


# -- QK-norm and attention diagnostics --------------------------------------------------------
class QKNormAttention(DotProductAttention):
    r"""Scaled dot-product attention with LayerNorm on queries and keys (per head, over :math:`d_h`).

    .. math:: \operatorname{softmax}\Big(\frac{\operatorname{LN}_q(\mathbf{Q})\operatorname{LN}_k(\mathbf{K})^\top}{\sqrt{d_h}}\Big)\mathbf{V}

    At initialization (:math:`\gamma = 1, \beta = 0`) each normalized vector has norm
    :math:`\sqrt{d_h}`, so every logit lies in :math:`[-\sqrt{d_h}, \sqrt{d_h}]` however large the
    projections grow. Same call signature as :class:`~d2l_attn.scoring.DotProductAttention`, so it
    replaces ``MultiHeadAttention.attention`` (:func:`use_qk_norm`).
    """

    def __init__(self, head_dim: int, dropout: float = 0.0, fused: bool = True, eps: float = 1e-5):
        super().__init__(dropout=dropout, fused=fused)
        self.head_dim = positive_int("head_dim", head_dim)
        self.q_norm = nn.LayerNorm(head_dim, eps=eps)
        self.k_norm = nn.LayerNorm(head_dim, eps=eps)

    def forward(
        self, queries, keys, values, valid_lens=None, attn_mask=None, return_weights=False, is_causal=False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if queries.shape[-1] != self.head_dim or keys.shape[-1] != self.head_dim:
            raise ValueError(
                f"queries and keys must end in head_dim={self.head_dim}, got {tuple(queries.shape)} "
                f"and {tuple(keys.shape)}"
            )
        return super().forward(
            self.q_norm(queries),
            self.k_norm(keys),
            values,
            valid_lens=valid_lens,
            attn_mask=attn_mask,
            return_weights=return_weights,
            is_causal=is_causal,
        )

    def extra_repr(self) -> str:
        return f"head_dim={self.head_dim}"


def use_qk_norm(model: nn.Module) -> int:
    """Give every :class:`~d2l_attn.multihead.MultiHeadAttention` in ``model`` a :class:`QKNormAttention`
    (same dropout and path); returns how many were replaced. Build the optimizer afterwards."""
    count = 0
    for m in model.modules():
        if isinstance(m, MultiHeadAttention) and not isinstance(m.attention, QKNormAttention):
            old = m.attention
            m.attention = QKNormAttention(m.head_dim, old.dropout.p, old.fused).to(m.W_q.weight.device)
            count += 1
    return count


@torch.no_grad()
def attention_logits(attention: MultiHeadAttention, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    r"""The logits ``(B, h, T_q, T_k)`` that ``attention`` feeds its softmax (before masking), QK-norm included."""
    if not isinstance(attention, MultiHeadAttention):
        raise ValueError(f"attention must be a MultiHeadAttention, got {type(attention).__name__}")
    q = split_heads(attention.W_q(queries), attention.num_heads)  # (B, h, T_q, d_h)
    k = split_heads(attention.W_k(keys), attention.num_heads)  # (B, h, T_k, d_h)
    if isinstance(attention.attention, QKNormAttention):
        q, k = attention.attention.q_norm(q), attention.attention.k_norm(k)
    return q @ k.transpose(-2, -1) / math.sqrt(attention.head_dim)  # (B, h, T_q, T_k)


def attention_entropy(weights: torch.Tensor) -> torch.Tensor:
    r"""Entropy :math:`-\sum_j a_{ij}\log a_{ij}` (nats, :math:`0\log 0 = 0`) of each row: ``(..., T_q, T_k)`` -> ``(..., T_q)``."""
    if not isinstance(weights, torch.Tensor) or weights.dim() < 1:
        raise ValueError(f"weights must be a tensor (..., T_q, T_k), got {type(weights).__name__}")
    return -torch.where(weights > 0, weights * weights.clamp_min(1e-30).log(), 0.0).sum(-1)


# -- Gumbel-softmax ---------------------------------------------------------------------------
def gumbel_softmax(
    logits: torch.Tensor, tau: float = 1.0, hard: bool = False, generator: torch.Generator | None = None
) -> torch.Tensor:
    r"""A relaxed sample :math:`\operatorname{softmax}((\mathbf{z} + \mathbf{g})/\tau)` along the last axis.

    ``hard=True``: the one-hot vector of :math:`\arg\max_i (z_i + g_i)` in the forward pass and the
    relaxed sample's gradient in the backward pass (straight-through: ``hard - soft.detach() + soft``).
    Noise comes from ``generator`` (a private :class:`torch.Generator`; the global RNG is untouched
    when one is given), unlike :func:`torch.nn.functional.gumbel_softmax`.
    """
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise ValueError(f"logits must be a floating-point tensor, got {type(logits).__name__}")
    tau = positive_number("tau", tau)
    work = torch.promote_types(logits.dtype, torch.float32)  # float16 cannot hold the clamp's 1e-20
    u = torch.rand(logits.shape, generator=generator, device=logits.device, dtype=work)
    gumbels = -torch.log(-torch.log(u.clamp(1e-20, 1.0 - 1e-7)))  # (..., K) standard Gumbel noise
    soft = torch.softmax((logits.to(work) + gumbels) / tau, dim=-1).to(logits.dtype)  # (..., K)
    if not hard:
        return soft
    one_hot = torch.zeros_like(soft).scatter_(-1, soft.argmax(-1, keepdim=True), 1.0)  # (..., K)
    return one_hot - soft.detach() + soft


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


# -- calibration ------------------------------------------------------------------------------
class CalibrationBins(NamedTuple):
    """Per bin: mean confidence, accuracy (``nan`` for an empty bin) and count; bins are equal-width on [0, 1]."""

    confidence: torch.Tensor
    accuracy: torch.Tensor
    count: torch.Tensor


def calibration_bins(confidences: torch.Tensor, correct: torch.Tensor, num_bins: int = 10) -> CalibrationBins:
    """Bin ``m`` holds confidences in ``(m/M, (m+1)/M]`` (bin 0 also holds 0): the data of a reliability diagram."""
    positive_int("num_bins", num_bins)
    conf = torch.as_tensor(confidences, dtype=torch.float64).flatten()
    hit = torch.as_tensor(correct).flatten().to(torch.float64)
    if conf.numel() == 0 or conf.shape != hit.shape:
        raise ValueError(
            f"confidences and correct must be non-empty and of one shape, got {tuple(conf.shape)} "
            f"and {tuple(hit.shape)}"
        )
    if conf.min() < 0 or conf.max() > 1:
        raise ValueError("confidences must lie in [0, 1]")
    if not bool(((hit == 0) | (hit == 1)).all()):
        raise ValueError("correct must hold 0/1 (or False/True): whether each prediction was right")
    index = (torch.ceil(conf * num_bins).long() - 1).clamp(0, num_bins - 1)  # (N,)
    count = torch.zeros(num_bins, dtype=torch.float64).index_add_(0, index, torch.ones_like(conf))
    conf_sum = torch.zeros(num_bins, dtype=torch.float64).index_add_(0, index, conf)
    hit_sum = torch.zeros(num_bins, dtype=torch.float64).index_add_(0, index, hit)
    return CalibrationBins(conf_sum / count, hit_sum / count, count.long())  # empty bins: 0/0 = nan


def expected_calibration_error(confidences: torch.Tensor, correct: torch.Tensor, num_bins: int = 10) -> float:
    r""":math:`\sum_m \frac{|B_m|}{n}|\operatorname{acc}(B_m) - \operatorname{conf}(B_m)|` (Guo et al., 2017)."""
    bins = calibration_bins(confidences, correct, num_bins)
    full = bins.count > 0
    gaps = (bins.accuracy[full] - bins.confidence[full]).abs()
    return float((bins.count[full] / bins.count.sum() * gaps).sum())


# -- optimizer groups and weight tying --------------------------------------------------------
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


def tie_output_embedding(model: nn.Module) -> nn.Module:
    r"""Share the target embedding with the output layer, :math:`\mathbf{W}_\text{out} = \mathbf{E}` (Press & Wolf, 2017).

    For a :class:`~d2l_attn.models.transformer.Transformer` (its ``decoder.dense`` and
    ``decoder.embed.embedding``); the paper also shares the source embedding, which needs one joint
    vocabulary. Returns ``model``.
    """
    decoder = getattr(model, "decoder", None)
    dense, embed = getattr(decoder, "dense", None), getattr(getattr(decoder, "embed", None), "embedding", None)
    if (
        not isinstance(dense, nn.Linear)
        or not isinstance(embed, nn.Embedding)
        or dense.weight.shape != embed.weight.shape
    ):
        raise ValueError("model must be a Transformer whose decoder has dense (V, d) and embed.embedding (V, d)")
    dense.weight = embed.weight
    return model


# -- dropout places ---------------------------------------------------------------------------
#: Where a Transformer applies dropout, in the order of :func:`dropout_places`.
DROPOUT_PLACES = ("embeddings", "attention weights", "FFN hidden", "residual branches")
_PLACE_OWNERS = (
    ((SinusoidalPositionalEncoding, LearnedPositionalEncoding), "embeddings"),  # after positions are added
    ((DotProductAttention, AdditiveAttention), "attention weights"),  # on the softmax's output
    ((PositionWiseFFN,), "FFN hidden"),  # after the activation
    ((AddNorm,), "residual branches"),  # on the sublayer output before the addition
)


def dropout_places(model: nn.Module) -> dict[str, list[nn.Dropout]]:
    """The ``nn.Dropout`` layers of ``model`` by place (keys :data:`DROPOUT_PLACES`), found by the module that owns them."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    places: dict[str, list[nn.Dropout]] = {place: [] for place in DROPOUT_PLACES}
    for module in model.modules():
        layer = getattr(module, "dropout", None)
        owner = next((place for types, place in _PLACE_OWNERS if isinstance(module, types)), None)
        if owner is not None and isinstance(layer, nn.Dropout):
            places[owner].append(layer)
    return places


def set_dropout(model: nn.Module, rates: dict[str, float]) -> dict[str, int]:
    """Set the dropout probability of every layer at each place named in ``rates``; others keep theirs.

    Works for the fused attention path too (it reads ``dropout.p``). Returns the number of layers
    changed per place.
    """
    if not isinstance(rates, dict) or not set(rates) <= set(DROPOUT_PLACES):
        raise ValueError(f"rates must be a dict with keys among {DROPOUT_PLACES}, got {rates!r:.80}")
    places = dropout_places(model)
    for place, rate in rates.items():
        rate = unit_interval(f"rates[{place!r}]", rate)
        for layer in places[place]:
            layer.p = rate
    return {place: len(places[place]) for place in rates}


# -- monitors ---------------------------------------------------------------------------------
class TrainingMonitor:
    r"""A :class:`~d2l_attn.training.Trainer` step hook: per-layer statistics every ``every`` steps.

    * ``grad_norm`` per layer (the norm of that layer's gradients **before** clipping: the trainer
      clips all gradients by one factor :math:`\min(1, c/(\lVert\mathbf{g}\rVert + 10^{-6}))`, which
      is undone here);
    * with ``probe(model) -> (output, weights (B, L, h, T_q, T_k))`` (run in eval mode without
      gradients on a fixed batch): ``act_rms`` per layer (root-mean-square of each layer's output,
      by a forward hook that exists only during the probe) and ``entropy`` per layer (mean attention
      entropy in nats; the ``i``-th entry of ``layers`` is matched with layer ``i`` of the weights).

    Records live in :attr:`history` (``history["step"]`` and ``history[kind][layer]``); the model
    itself is not changed.
    """

    def __init__(self, layers: dict[str, nn.Module], every: int = 1, probe: Callable[[nn.Module], tuple] | None = None):
        if not isinstance(layers, dict) or not layers or not all(isinstance(m, nn.Module) for m in layers.values()):
            raise ValueError("layers must be a non-empty dict name -> nn.Module")
        self.layers, self.every, self.probe = layers, positive_int("every", every), probe
        self.history: dict = {"step": [], "grad_norm": {n: [] for n in layers}}
        if probe is not None:
            self.history.update(act_rms={n: [] for n in layers}, entropy={n: [] for n in layers})

    def __call__(self, record) -> None:
        if record.step % self.every:
            return
        trainer = record.trainer
        clip = trainer.grad_clip
        factor = 1.0 if clip is None else min(1.0, clip / (record.grad_norm + 1e-6))
        self.history["step"].append(record.step)
        for name, layer in self.layers.items():
            grads = [p.grad.detach().float().pow(2).sum() for p in layer.parameters() if p.grad is not None]
            norm = torch.stack(grads).sum().sqrt().item() if grads else 0.0
            self.history["grad_norm"][name].append(norm / factor)
        if self.probe is not None:
            self._probe(trainer.model)

    @torch.no_grad()
    def _probe(self, model: nn.Module) -> None:
        rms: dict[str, float] = {}
        handles = [layer.register_forward_hook(self._rms_hook(name, rms)) for name, layer in self.layers.items()]
        was_training = model.training
        model.eval()
        try:
            _, weights = self.probe(model)  # (B, L, h, T_q, T_k)
        finally:
            model.train(was_training)
            for handle in handles:
                handle.remove()
        entropy = attention_entropy(weights.float()).mean(dim=(0, 2, 3))  # (L,)
        for i, name in enumerate(self.layers):
            self.history["act_rms"][name].append(rms.get(name, math.nan))
            self.history["entropy"][name].append(entropy[i].item() if i < entropy.numel() else math.nan)

    @staticmethod
    def _rms_hook(name: str, out: dict):
        def hook(module, inputs, output):
            y = output[0] if isinstance(output, tuple) else output
            out[name] = y.detach().float().pow(2).mean().sqrt().item()

        return hook
