r"""Which input tokens did an output depend on? Attributions and how to score them (chapter 11).

Attention-based, across layers (Abnar & Zuidema, 2020). With :math:`\bar{\mathbf{A}}_\ell` the
head-averaged attention of layer :math:`\ell` and the residual connection counted as half of the
mixing, each layer's *raw attention graph* is

.. math:: \mathbf{A}'_\ell = \operatorname{rownorm}\big(r\,\mathbf{I} + (1 - r)\,\bar{\mathbf{A}}_\ell\big),\qquad r = 0.5,

* :func:`attention_rollout` multiplies them, :math:`\tilde{\mathbf{A}} = \mathbf{A}'_L \cdots
  \mathbf{A}'_1`: row :math:`i` tells how much of output :math:`i` flows from each input token
  if information mixed linearly along every path;
* :func:`attention_flow` treats :math:`\mathbf{A}'_\ell[i, j]` as the *capacity* of an edge from
  node :math:`(\ell, i)` to node :math:`(\ell - 1, j)` and returns the maximum flow from output
  :math:`i` (layer :math:`L`) to input :math:`j` (layer 0), computed with :func:`max_flow`
  (Edmonds-Karp: shortest augmenting paths found by breadth-first search).

Gradient-based, for any differentiable :math:`f: \mathbb{R}^{T \times d} \to \mathbb{R}` of the
input embeddings (:func:`embedding_function` builds one from a model with a hook):
:func:`gradient_x_input` :math:`\mathbf{x} \odot \nabla f(\mathbf{x})` and
:func:`integrated_gradients` (Sundararajan et al., 2017)

.. math:: \operatorname{IG}(\mathbf{x}) = (\mathbf{x} - \mathbf{x}') \odot \int_0^1 \nabla f(\mathbf{x}' + a(\mathbf{x} - \mathbf{x}'))\,da,

whose entries sum to :math:`f(\mathbf{x}) - f(\mathbf{x}')` (*completeness*). Summing an
attribution over the embedding dimension gives one score per token.

Scoring against a known truth: :func:`spearman` (rank correlation) and :func:`top_k_agreement`.
Probing (Hewitt & Liang, 2019): :func:`fit_linear_probe` and :func:`control_labels`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from ._checks import positive_int

__all__ = [
    "attention_rollout",
    "attention_flow",
    "max_flow",
    "gradient_x_input",
    "integrated_gradients",
    "embedding_function",
    "spearman",
    "top_k_agreement",
    "ProbeResult",
    "fit_linear_probe",
    "control_labels",
]


def _layer_graphs(weights: object, residual: float) -> torch.Tensor:
    """``(..., L, h, T, T)`` weights -> the residual-mixed, row-normalized ``(..., L, T, T)``."""
    if not isinstance(weights, torch.Tensor) or weights.dim() < 4 or weights.shape[-1] != weights.shape[-2]:
        shape = tuple(weights.shape) if isinstance(weights, torch.Tensor) else type(weights).__name__
        raise ValueError(f"weights must have shape (..., L, h, T, T) (self-attention of every layer), got {shape}")
    if not weights.is_floating_point() or not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()):
        raise ValueError("weights must be finite and non-negative (attention weights after the softmax)")
    sums = weights.sum(-1)
    if not torch.allclose(sums, torch.ones_like(sums), atol=1e-3):
        raise ValueError("every row of weights must sum to 1 (attention weights after the softmax, not scores)")
    if not isinstance(residual, (int, float)) or not 0.0 <= residual <= 1.0:
        raise ValueError(f"residual must be a number in [0, 1], got {residual!r}")
    mean = weights.mean(-3)  # (..., L, T, T): heads averaged
    eye = torch.eye(mean.shape[-1], dtype=mean.dtype, device=mean.device)
    mixed = residual * eye + (1 - residual) * mean
    return mixed / mixed.sum(-1, keepdim=True)


def attention_rollout(weights: torch.Tensor, residual: float = 0.5) -> torch.Tensor:
    r"""Attention rollout :math:`\mathbf{A}'_L \cdots \mathbf{A}'_1` (Abnar & Zuidema, 2020).

    ``weights (..., L, h, T, T)`` (layer 0 first, e.g. ``collect_attention(...)["self"]``) ->
    ``(..., T, T)``: row :math:`i` is output :math:`i`'s share of every input token (rows sum to 1).
    """
    graphs = _layer_graphs(weights, residual)  # (..., L, T, T)
    rollout = graphs[..., 0, :, :]
    for layer in range(1, graphs.shape[-3]):
        rollout = graphs[..., layer, :, :] @ rollout  # later layers on the left
    return rollout


def max_flow(capacity: torch.Tensor, source: int, sink: int) -> float:
    """Maximum flow from ``source`` to ``sink`` in a graph of ``capacity (V, V)`` (``[u, v]``: edge u -> v).

    Edmonds-Karp: repeatedly push flow along a shortest path (breadth-first search) of the
    residual graph until the sink is unreachable; ``O(V E^2)`` -- fine for the small graphs here.
    """
    if not isinstance(capacity, torch.Tensor) or capacity.dim() != 2 or capacity.shape[0] != capacity.shape[1]:
        raise ValueError("capacity must be a square (V, V) tensor")
    if bool((capacity < 0).any()) or not bool(torch.isfinite(capacity).all()):
        raise ValueError("capacity must be finite and non-negative")
    n = capacity.shape[0]
    for name, node in (("source", source), ("sink", sink)):
        if not isinstance(node, int) or not 0 <= node < n:
            raise ValueError(f"{name} must be a node index in [0, {n}), got {node!r}")
    if source == sink:
        raise ValueError("source and sink must differ")
    residual = capacity.double().tolist()  # plain lists: fast for small graphs
    total = 0.0
    while True:
        parent = [-1] * n
        parent[source] = source
        queue = deque([source])
        while queue and parent[sink] < 0:
            u = queue.popleft()
            for v, cap in enumerate(residual[u]):
                if cap > 1e-12 and parent[v] < 0:
                    parent[v] = u
                    queue.append(v)
        if parent[sink] < 0:
            return total
        push, v = float("inf"), sink
        while v != source:  # the path's bottleneck
            push, v = min(push, residual[parent[v]][v]), parent[v]
        v = sink
        while v != source:
            u = parent[v]
            residual[u][v] -= push
            residual[v][u] += push
            v = u
        total += push


def attention_flow(weights: torch.Tensor, residual: float = 0.5, queries: list[int] | None = None) -> torch.Tensor:
    r"""Attention flow (Abnar & Zuidema, 2020): max-flow from each output position to each input token.

    Nodes are ``(layer, position)`` for layers ``0..L``; the edge ``(l, i) -> (l-1, j)`` has capacity
    :math:`\mathbf{A}'_l[i, j]` (the residual-mixed graph of :func:`attention_rollout`).
    ``weights (L, h, T, T)`` or ``(B, L, h, T, T)``; ``queries``: output positions (default all)
    -> ``(T_q, T)`` or ``(B, T_q, T)``.
    """
    graphs = _layer_graphs(weights, residual)
    if graphs.dim() == 4:
        return torch.stack([attention_flow(w, residual, queries) for w in weights])
    if graphs.dim() != 3:
        raise ValueError(f"weights must have shape (L, h, T, T) or (B, L, h, T, T), got {tuple(weights.shape)}")
    L, T, _ = graphs.shape
    queries = list(range(T)) if queries is None else queries
    if not all(isinstance(q, int) and 0 <= q < T for q in queries):
        raise ValueError(f"queries must be positions in [0, {T}), got {queries!r}")
    capacity = torch.zeros((L + 1) * T, (L + 1) * T, dtype=torch.float64)  # node (l, i) = l * T + i
    for layer in range(1, L + 1):
        rows, cols = slice(layer * T, (layer + 1) * T), slice((layer - 1) * T, layer * T)
        capacity[rows, cols] = graphs[layer - 1].double()
    flows = [[max_flow(capacity, L * T + q, j) for j in range(T)] for q in queries]
    return torch.tensor(flows, dtype=weights.dtype)


# --------------------------------------------------------------------------------------------
# gradients
# --------------------------------------------------------------------------------------------
def _scores(f: Callable, x: torch.Tensor) -> torch.Tensor:
    out = f(x)
    if not isinstance(out, torch.Tensor) or out.shape != x.shape[:1]:
        raise ValueError(
            f"f must return one score per example, shape ({x.shape[0]},), got {getattr(out, 'shape', out)}"
        )
    return out


def gradient_x_input(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    r""":math:`\mathbf{x} \odot \nabla_{\mathbf{x}} f(\mathbf{x})` for ``x (B, ...)`` and ``f: (B, ...) -> (B,)``."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError("x must be a float tensor (B, ...)")
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(_scores(f, x).sum(), x)
    return (x * grad).detach()


def integrated_gradients(
    f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, baseline: torch.Tensor | None = None, steps: int = 32
) -> torch.Tensor:
    r"""Integrated gradients along the straight line from ``baseline`` (default zeros) to ``x``.

    The integral is the midpoint rule with ``steps`` points :math:`a_k = (k + \tfrac12)/\text{steps}`,
    so completeness, :math:`\sum \operatorname{IG} = f(\mathbf{x}) - f(\mathbf{x}')`, holds up to
    an error that shrinks like :math:`1/\text{steps}^2` for smooth :math:`f`. ``x (B, ...)`` -> same shape.
    """
    positive_int("steps", steps)
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError("x must be a float tensor (B, ...)")
    baseline = torch.zeros_like(x) if baseline is None else baseline
    if not isinstance(baseline, torch.Tensor) or baseline.shape != x.shape:
        raise ValueError(f"baseline must have the shape of x {tuple(x.shape)}")
    x, baseline = x.detach(), baseline.detach()
    total = torch.zeros_like(x)
    for k in range(steps):
        point = (baseline + (k + 0.5) / steps * (x - baseline)).requires_grad_(True)
        (grad,) = torch.autograd.grad(_scores(f, point).sum(), point)
        total += grad
    return (x - baseline) * total / steps


def embedding_function(
    model: nn.Module, embedding: nn.Module, inputs: tuple, output_fn: Callable[[Any], torch.Tensor]
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``f(e) = output_fn(model(*inputs))`` with ``embedding``'s output replaced by ``e``.

    A forward hook on ``embedding`` (e.g. ``model.token_embedding``) returns ``e`` instead of the
    looked-up vectors, so attributions are taken with respect to the token embeddings (positions
    and everything else unchanged). The hook lives only during each call of ``f``.
    """
    if not isinstance(embedding, nn.Module) or not isinstance(model, nn.Module):
        raise ValueError("model and embedding must be nn.Modules (embedding a submodule of model)")

    def f(e: torch.Tensor) -> torch.Tensor:
        handle = embedding.register_forward_hook(lambda module, args, output: e)
        try:
            return output_fn(model(*inputs))
        finally:
            handle.remove()

    return f


# --------------------------------------------------------------------------------------------
# scoring an explanation
# --------------------------------------------------------------------------------------------
def _ranks(x: torch.Tensor) -> torch.Tensor:
    """Ranks 1..n along the last dim, ties sharing their average rank."""
    order = x.argsort(-1)
    ranks = torch.empty_like(x, dtype=torch.float64).scatter_(
        -1, order, torch.arange(1, x.shape[-1] + 1, dtype=torch.float64).expand(x.shape).contiguous()
    )
    equal = x[..., :, None] == x[..., None, :]  # (..., n, n)
    return (equal * ranks[..., None, :]).sum(-1) / equal.sum(-1)


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman rank correlation along the last dim (ties get average ranks): ``(..., n)`` x 2 -> ``(...)``.

    A row that is constant in ``a`` or ``b`` has no ranking: its correlation is ``nan``.
    """
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor) or a.shape != b.shape or a.dim() < 1:
        raise ValueError("a and b must be tensors of the same shape (..., n)")
    if a.shape[-1] < 2:
        raise ValueError(f"a rank correlation needs n >= 2 items, got n = {a.shape[-1]}")
    ra, rb = _ranks(a), _ranks(b)
    ra, rb = ra - ra.mean(-1, keepdim=True), rb - rb.mean(-1, keepdim=True)
    return (ra * rb).sum(-1) / (ra.norm(dim=-1) * rb.norm(dim=-1))


def top_k_agreement(scores: torch.Tensor, truth: torch.Tensor, k: int = 1) -> float:
    """Fraction of rows of ``scores (N, T)`` whose ``k`` largest entries include ``truth (N,)`` (an index)."""
    positive_int("k", k)
    if not isinstance(scores, torch.Tensor) or scores.dim() != 2:
        raise ValueError("scores must be a (N, T) tensor (one attribution per row)")
    if not isinstance(truth, torch.Tensor) or truth.shape != scores.shape[:1] or truth.is_floating_point():
        raise ValueError(f"truth must hold one index per row (integer positions), shape ({scores.shape[0]},)")
    if k > scores.shape[1] or bool((truth < 0).any()) or bool((truth >= scores.shape[1]).any()):
        raise ValueError(f"k and truth must be in [0, T={scores.shape[1]}]")
    top = scores.topk(k, dim=-1).indices  # (N, k)
    return float((top == truth[:, None]).any(-1).double().mean())


class ProbeResult(NamedTuple):
    """Accuracy of a linear probe on the examples it was fitted on and on held-out ones."""

    train_accuracy: float
    test_accuracy: float


def fit_linear_probe(
    features: torch.Tensor,
    labels: torch.Tensor,
    generator: torch.Generator,
    *,
    train_fraction: float = 0.5,
    steps: int = 300,
    lr: float = 0.05,
    weight_decay: float = 1e-3,
) -> ProbeResult:
    """A linear classifier (softmax regression, full-batch Adam) from ``features (N, d)`` to ``labels (N,)``.

    The examples are split at random (``generator``) into a fitted part and a held-out part; the
    features are standardized with the fitted part's statistics.
    """
    if not isinstance(features, torch.Tensor) or features.dim() != 2:
        raise ValueError("features must be a (N, d) tensor")
    if not isinstance(labels, torch.Tensor) or labels.shape != features.shape[:1] or labels.is_floating_point():
        raise ValueError(f"labels must be integer class ids of shape ({features.shape[0]},)")
    if not bool(torch.isfinite(features).all()):
        raise ValueError("features must be finite (no nan or inf)")
    if labels.numel() and int(labels.min()) < 0:
        raise ValueError(f"labels must be non-negative class ids, got {int(labels.min())}")
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction!r}")
    positive_int("steps", steps)
    n = features.shape[0]
    order = torch.randperm(n, generator=generator)
    cut = int(n * train_fraction)
    if cut < 2 or n - cut < 1:
        raise ValueError(
            f"features: {n} examples are too few to fit and test a probe (train_fraction={train_fraction} "
            f"fits {cut}, tests {n - cut}; need at least 2 fitted and 1 held out)"
        )
    train, test = order[:cut], order[cut:]
    x = features.detach().float()
    mean, std = x[train].mean(0), x[train].std(0) + 1e-6
    x = (x - mean) / std
    num_classes = int(labels.max()) + 1
    weight = (torch.randn(x.shape[1], num_classes, generator=generator) * 0.01).requires_grad_(True)
    bias = torch.zeros(num_classes, requires_grad=True)
    optimizer = torch.optim.Adam([weight, bias], lr=lr, weight_decay=weight_decay)
    for _ in range(steps):
        loss = F.cross_entropy(x[train] @ weight + bias, labels[train])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        correct = ((x @ weight + bias).argmax(-1) == labels).double()
    return ProbeResult(float(correct[train].mean()), float(correct[test].mean()))


def control_labels(types: torch.Tensor, num_labels: int, generator: torch.Generator) -> torch.Tensor:
    """Hewitt & Liang's (2019) control task: every *type* (e.g. token id) gets a fixed random label.

    ``types (N,)`` integer ids -> ``(N,)`` labels in ``[0, num_labels)``; equal types, equal labels.
    A probe can reach these labels only by memorizing types, so the gap between the real task
    and the control (*selectivity*) shows what the representation adds.
    """
    positive_int("num_labels", num_labels)
    if not isinstance(types, torch.Tensor) or types.dim() != 1 or types.is_floating_point() or bool((types < 0).any()):
        raise ValueError("types must be a 1-D tensor of non-negative integer ids")
    if types.numel() and int(types.max()) >= 2**24:
        raise ValueError(f"types holds id {int(types.max())}: ids must be below 2**24 (a table of one label per id)")
    table = torch.randint(0, num_labels, (int(types.max()) + 1,), generator=generator)
    return table[types]
