r"""Training Transformers stably (chapter 12): init, QK-norm, Gumbel-softmax, weight tying, dropout places, monitors.

Chapter 12 also uses the learning-rate schedules, :func:`~d2l_attn.optim.gumbel_temperature` and
:func:`~d2l_attn.optim.weight_decay_groups` of :mod:`d2l_attn.optim`, the calibration error of
:mod:`d2l_attn.metrics` and :func:`~d2l_attn.interpret.attention_entropy`: each has one home, and
this module does not re-export them.

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

**Dropout places**: :func:`dropout_places` finds a model's dropout layers by place (embeddings,
attention weights, FFN hidden layer, residual branches) and :func:`set_dropout` sets one rate per
place.

**Monitors**: :class:`TrainingMonitor` is a :class:`d2l_attn.training.Trainer` step hook that records
per-layer gradient norms and, on a fixed probe batch, per-layer activation RMS and attention entropy.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from ._checks import positive_int, positive_number, unit_interval
from .blocks import AddNorm, PositionWiseFFN
from .interpret import attention_entropy
from .multihead import MultiHeadAttention
from .positional import LearnedPositionalEncoding, SinusoidalPositionalEncoding
from .scoring import AdditiveAttention, AttentionOutput, DotProductAttention

__all__ = [
    "scale_residual_init",
    "QKNormAttention",
    "use_qk_norm",
    "gumbel_softmax",
    "tie_output_embedding",
    "DROPOUT_PLACES",
    "dropout_places",
    "set_dropout",
    "TrainingMonitor",
]


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

    def forward(self, queries, keys, values, mask=None, need_weights: bool = False) -> AttentionOutput:
        if queries.shape[-1] != self.head_dim or keys.shape[-1] != self.head_dim:
            raise ValueError(
                f"queries and keys must end in head_dim={self.head_dim}, got {tuple(queries.shape)} "
                f"and {tuple(keys.shape)}"
            )
        return super().forward(self.q_norm(queries), self.k_norm(keys), values, mask, need_weights)

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


# -- weight tying -----------------------------------------------------------------------------
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
