r"""Looking inside a trained model: attention maps, their statistics, and heads switched off (chapters 7 and 11).

:func:`collect_attention` runs a model once with ``return_weights=True`` and returns its maps by
name, each ``(B, L, h, T_q, T_k)`` (layers x heads), ready for
:func:`d2l_attn.plotting.show_attention_grid`. Nothing is stored on the model: the weights come
back from ``forward`` explicitly.

Chapter 11 reads the maps (:func:`attention_entropy`, :func:`value_weighted_norms` -- the norm
of what each token adds, Kobayashi et al. 2020 -- and :func:`induction_score`) and intervenes on
them with hooks that are removed afterwards, so the models' code stays clean:
:func:`ablate_heads` / :func:`head_ablation` zero a head's output (Michel et al., 2019) and
:func:`replace_attention` makes a layer attend with weights of our choosing (uniform, or
adversarial as in Jain & Wallace, 2019). Attributions that combine layers or use gradients are in
:mod:`d2l_attn.attribution`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import torch
from torch import nn

from .multihead import MultiHeadAttention, split_heads

__all__ = [
    "collect_attention",
    "attention_entropy",
    "attention_modules",
    "value_weighted_norms",
    "ablate_heads",
    "head_ablation",
    "replace_attention",
    "induction_score",
    "attention_logits",
]


@torch.no_grad()
def collect_attention(model: nn.Module, *inputs: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
    """All attention weights of ``model(*inputs, return_weights=True)``, by name, in eval mode.

    * a :class:`~d2l_attn.models.transformer.Transformer` gives ``encoder``, ``decoder_self``,
      ``decoder_cross`` (each ``(B, L, h, T_q, T_k)``);
    * a stack that returns ``(output, weights (B, L, h, T, T))`` gives ``self``, and so does a
      :class:`~d2l_attn.models.gpt.GPT` (a list of ``L`` maps ``(B, h, T, T)``);
    * the GRU model of chapter 4 gives ``cross`` ``(B, 1, 1, T', T)`` (one layer, one "head").

    The model's train/eval mode is restored afterwards.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    was_training = model.training
    model.eval()
    try:
        out = model(*inputs, return_weights=True, **kwargs)
    except TypeError as exc:
        raise ValueError(f"{type(model).__name__}.forward does not accept return_weights=True: {exc}") from exc
    finally:
        model.train(was_training)
    if not isinstance(out, tuple) or len(out) != 2:
        raise ValueError(f"{type(model).__name__}(..., return_weights=True) must return (output, weights)")
    weights = out[1]
    if hasattr(weights, "_asdict"):  # e.g. TransformerWeights
        return {name: w for name, w in weights._asdict().items()}
    if isinstance(weights, (list, tuple)) and weights and all(isinstance(w, torch.Tensor) for w in weights):
        weights = torch.stack(list(weights), dim=1)  # GPT: L maps (B, h, T, T) -> (B, L, h, T, T)
    if isinstance(weights, torch.Tensor) and weights.dim() == 5:
        return {"self": weights}
    if isinstance(weights, torch.Tensor) and weights.dim() == 3:
        return {"cross": weights[:, None, None]}  # (B, T', T) -> (B, 1, 1, T', T)
    raise ValueError(f"unexpected attention weights from {type(model).__name__}: {type(weights).__name__}")


# --------------------------------------------------------------------------------------------
# chapter 11: reading the maps
# --------------------------------------------------------------------------------------------
def _weights(weights: object, name: str = "weights", min_dim: int = 2) -> torch.Tensor:
    """Check attention weights ``(..., T_q, T_k)``: finite, non-negative, rows summing to 1."""
    if not isinstance(weights, torch.Tensor) or weights.dim() < min_dim or not weights.is_floating_point():
        shape = tuple(weights.shape) if isinstance(weights, torch.Tensor) else type(weights).__name__
        raise ValueError(f"{name} must be a float tensor of at least {min_dim} dims (..., T_q, T_k), got {shape}")
    if bool((weights < 0).any()) or not bool(torch.isfinite(weights).all()):
        raise ValueError(f"{name} must be finite and non-negative (attention weights)")
    sums = weights.sum(-1)
    if not torch.allclose(sums, torch.ones_like(sums), atol=1e-4):
        raise ValueError(f"every row of {name} must sum to 1 (softmax weights over the keys)")
    return weights


def attention_entropy(weights: torch.Tensor) -> torch.Tensor:
    r"""Entropy of every attention row, in nats: :math:`H_i = -\sum_j \alpha_{ij} \log \alpha_{ij}`.

    ``weights (..., T_q, T_k)`` -> ``(..., T_q)``, with :math:`0 \log 0 = 0`. A head that looks at
    one key has :math:`H = 0`; uniform attention over :math:`n` keys has :math:`H = \log n`
    (a causal row :math:`i` can reach at most :math:`\log(i + 1)`).
    """
    w = _weights(weights)
    return -torch.where(w > 0, w * w.clamp_min(1e-30).log(), torch.zeros_like(w)).sum(-1)


def attention_modules(model: nn.Module) -> list[MultiHeadAttention]:
    """The model's :class:`~d2l_attn.multihead.MultiHeadAttention` modules, in registration order
    (for a GPT or an encoder stack: layer 0, 1, ...)."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    found = [m for m in model.modules() if isinstance(m, MultiHeadAttention)]
    if not found:
        raise ValueError(f"{type(model).__name__} has no MultiHeadAttention module")
    return found


@contextmanager
def _intercept(mha: MultiHeadAttention, fn: Callable) -> Iterator[None]:
    """Inside the ``with`` block, every per-head attention of ``mha`` calls ``fn(weights (B, h, T_q, T_k),
    values (B, h, T_k, d_h))``; a tensor returned by ``fn`` replaces the weights (the heads then
    output ``new @ values``), ``None`` keeps them.

    It sets the kernel's declared ``weights_mod`` hook (:class:`~d2l_attn.scoring.DotProductAttention`)
    and restores the previous one on exit, so interventions nest: an inner ``fn`` sees the weights
    the outer one produced, and each exit restores what was there when it entered (a stack).
    Nothing is computed twice, and nothing stays changed afterwards.
    """
    inner = mha.attention
    if not hasattr(inner, "weights_mod"):
        raise ValueError(
            f"{type(inner).__name__} declares no weights_mod hook: interventions need a DotProductAttention kernel"
        )
    outer = inner.weights_mod

    def mod(weights, values):
        if outer is not None:
            new = outer(weights, values)
            weights = weights if new is None else new
        new = fn(weights, values)
        if new is not None and (not isinstance(new, torch.Tensor) or new.shape != weights.shape):
            raise ValueError(f"new_weights must return a tensor of shape {tuple(weights.shape)}")
        return weights if new is None else new

    inner.weights_mod = mod
    try:
        yield
    finally:
        inner.weights_mod = outer


@torch.no_grad()
def value_weighted_norms(model: nn.Module, *inputs: Any, **kwargs: Any) -> torch.Tensor:
    r"""Norm-based attention (Kobayashi et al., 2020) of every self-attention layer and head.

    A head's output at query :math:`i` is :math:`\sum_j \alpha_{ij} f(\mathbf{x}_j)` plus the
    output bias, with the *transformed value* :math:`f(\mathbf{x}_j) = (\mathbf{x}_j
    \mathbf{W}^v_h + \mathbf{b}^v_h)\,\mathbf{W}^o_h` (:math:`\mathbf{W}^o_h`: the rows of the
    output projection that read head :math:`h`). This returns

    .. math:: \lVert \alpha_{ij}\, f(\mathbf{x}_j) \rVert_2 = \alpha_{ij}\,\lVert f(\mathbf{x}_j) \rVert_2,

    the size of what token :math:`j` actually adds to the output of the attention sublayer
    (before the residual connection and the FFN, which are not included), where
    :math:`\mathbf{x}_j` is the input of the attention module (after the LayerNorm in a pre-LN
    block). Runs ``model(*inputs, return_weights=True, **kwargs)`` once in eval mode and reads
    each :func:`attention_modules` entry's weights and projected values as they are computed
    (nothing stays changed). Returns ``(B, L, h, T_q, T_k)``.
    """
    modules = attention_modules(model)
    seen: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def reader(index):
        def read(weights, values):
            seen[index] = (weights, values)  # (B, h, T_q, T_k), (B, h, T_k, d_h)

        return read

    with ExitStack() as stack:
        for i, mha in enumerate(modules):
            stack.enter_context(_intercept(mha, reader(i)))
        collect_attention(model, *inputs, **kwargs)
    if len(seen) != len(modules):
        raise ValueError(f"{type(model).__name__} ran {len(seen)} of its {len(modules)} attention modules")
    norms = []
    for index, mha in enumerate(modules):
        alpha, v = seen[index]
        w_o = mha.W_o.weight.t().unflatten(0, (mha.num_heads, mha.head_dim))  # (h, d_h, d)
        f = torch.einsum("bhtk,hkd->bhtd", v, w_o)  # (B, h, T_k, d): f(x_j) per head
        norms.append(alpha * f.norm(dim=-1)[:, :, None, :])  # (B, h, T_q, T_k)
    return torch.stack(norms, dim=1)  # (B, L, h, T_q, T_k)


def _heads_by_layer(heads: object, modules: list[MultiHeadAttention]) -> dict[int, list[int]]:
    if isinstance(heads, tuple) and len(heads) == 2 and all(isinstance(i, int) for i in heads):
        heads = [heads]
    if not isinstance(heads, (list, tuple)):
        raise ValueError(f"heads must be a list of (layer, head) pairs, got {type(heads).__name__}")
    out: dict[int, list[int]] = {}
    for pair in heads:
        ok = isinstance(pair, (tuple, list)) and len(pair) == 2 and all(isinstance(i, int) for i in pair)
        if not ok or not 0 <= pair[0] < len(modules) or not 0 <= pair[1] < modules[pair[0]].num_heads:
            raise ValueError(
                f"heads must hold (layer, head) pairs with 0 <= layer < {len(modules)} and "
                f"0 <= head < num_heads, got {pair!r}"
            )
        out.setdefault(pair[0], []).append(pair[1])
    return out


@contextmanager
def ablate_heads(model: nn.Module, heads: object) -> Iterator[None]:
    r"""Inside the ``with`` block, the listed heads of ``model`` output zero.

    ``heads``: ``(layer, head)`` pairs indexing :func:`attention_modules`. A head's output
    :math:`\operatorname{softmax}(\cdot)\mathbf{V}_h` is zeroed right before the output projection
    :math:`\mathbf{W}^o` (a pre-hook on ``W_o`` masks its ``d_h`` columns), as in Michel et al.
    (2019); the model's code is untouched and the hooks are removed on exit.
    """
    modules = attention_modules(model)
    chosen = _heads_by_layer(heads, modules)
    handles = []
    for layer, hs in chosen.items():
        mha = modules[layer]
        keep = torch.ones(mha.num_heads, mha.head_dim)
        keep[hs] = 0.0
        keep = keep.flatten()  # (d,): 0 on the chosen heads' columns

        def mask(module, args, keep=keep):
            return (args[0] * keep.to(args[0]),)

        handles.append(mha.W_o.register_forward_pre_hook(mask))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def head_ablation(model: nn.Module, evaluate: Callable[[], float]) -> torch.Tensor:
    """``evaluate()`` (e.g. accuracy on a fixed batch) with each head removed in turn: ``(L, h)``."""
    if not callable(evaluate):
        raise ValueError(f"evaluate must be a callable () -> float, got {type(evaluate).__name__}")
    modules = attention_modules(model)
    scores = torch.zeros(len(modules), max(m.num_heads for m in modules))
    for layer, mha in enumerate(modules):
        for head in range(mha.num_heads):
            with ablate_heads(model, [(layer, head)]):
                scores[layer, head] = float(evaluate())
    return scores


@contextmanager
def replace_attention(
    module: MultiHeadAttention, new_weights: Callable[[torch.Tensor], torch.Tensor]
) -> Iterator[None]:
    r"""Inside the ``with`` block, ``module`` attends with ``new_weights(weights)`` instead of its own.

    ``new_weights`` maps the module's weights ``(B, h, T_q, T_k)`` to other weights of the same
    shape (rows summing to 1); the heads' output becomes ``new_weights(weights) @ V``, the rest of
    the model (``W^o``, residuals, later layers) is unchanged. Used for uniform attention and for
    adversarial attention (Jain & Wallace, 2019). It sets the kernel's declared ``weights_mod``
    hook, so it reaches every call (direct or from a stack), nests with other interventions, and
    leaves nothing changed on exit.
    """
    if not isinstance(module, MultiHeadAttention):
        raise ValueError(f"module must be a MultiHeadAttention, got {type(module).__name__}")
    if not callable(new_weights):
        raise ValueError("new_weights must be a callable weights (B, h, T_q, T_k) -> weights")
    with _intercept(module, lambda weights, values: new_weights(weights)):
        yield


def induction_score(weights: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    r"""How much each head attends "to the token after an earlier copy of the current token".

    For query :math:`i` the targets are :math:`S_i = \{j \le i : x_{j-1} = x_i,\ j \ge 1\}`
    (Olsson et al., 2022); the score is the mean of :math:`\sum_{j \in S_i} \alpha_{ij}` over the
    queries (all batches) with :math:`S_i \neq \emptyset`. ``weights (B, L, h, T, T)``,
    ``tokens (B, T)`` -> ``(L, h)`` in ``[0, 1]``; 1 = a perfect induction head.
    """
    _weights(weights, min_dim=5)
    if not isinstance(tokens, torch.Tensor) or tokens.shape != (weights.shape[0], weights.shape[-1]):
        raise ValueError(f"tokens must have shape (B, T) = {(weights.shape[0], weights.shape[-1])}")
    T = tokens.shape[1]
    prev = torch.zeros_like(tokens[:, None, :], dtype=torch.bool).expand(-1, T, -1).clone()  # (B, T_q, T_k)
    prev[:, :, 1:] = tokens[:, None, :-1] == tokens[:, :, None]  # x_{j-1} == x_i
    prev &= torch.ones(T, T, dtype=torch.bool).tril()  # j <= i
    has = prev.any(-1)  # (B, T_q)
    if not bool(has.any()):
        raise ValueError("no token repeats an earlier one: the induction score is undefined")
    mass = (weights * prev[:, None, None].to(weights)).sum(-1)  # (B, L, h, T_q)
    return (mass * has[:, None, None]).sum((0, 3)) / has.sum()


@torch.no_grad()
def attention_logits(attention: MultiHeadAttention, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    r"""The logits ``(B, h, T_q, T_k)`` that ``attention`` feeds its softmax (before masking and any
    ``score_mod``): :math:`\mathbf{q}^\top\mathbf{k}/\sqrt{d_h}` per head, with the kernel's own
    ``q_norm``/``k_norm`` applied first when it has them (QK-norm, :func:`d2l_attn.stability.use_qk_norm`)."""
    if not isinstance(attention, MultiHeadAttention):
        raise ValueError(f"attention must be a MultiHeadAttention, got {type(attention).__name__}")
    q = split_heads(attention.W_q(queries), attention.num_heads)  # (B, h, T_q, d_h)
    k = split_heads(attention.W_k(keys), attention.num_kv_heads)  # (B, g, T_k, d_h)
    k = k.repeat_interleave(attention.num_heads // attention.num_kv_heads, dim=1)  # (B, h, T_k, d_h)
    kernel = attention.attention
    if hasattr(kernel, "q_norm") and hasattr(kernel, "k_norm"):  # QK-norm: the normalized q and k are scored
        q, k = kernel.q_norm(q), kernel.k_norm(k)
    return q @ k.transpose(-2, -1) / math.sqrt(attention.head_dim)  # (B, h, T_q, T_k)
