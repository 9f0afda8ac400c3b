r"""Generating sequences from a model that predicts one token at a time (chapters 4, 7 and 9).

Every decoder here reads a model only through :class:`StepModel`:

* ``init_state(src, src_valid_lens)`` -- whatever the model needs to start (for an
  encoder--decoder: the encoder outputs and empty caches);
* ``step(tokens (B,), state)`` -> ``(logits (B, V), new state, weights (B, T_src) or None)``;
* ``reorder_state(state, index (N,))`` -- the state with its batch rows taken in the order
  ``index`` (beam search keeps, drops and copies hypotheses);
* ``bos_id``, ``eos_id``, ``pad_id`` -- the target vocabulary's special tokens; plus
  ``train``/``eval``/``training`` of :class:`torch.nn.Module`.

The GRU model of chapter 4 and the Transformer of chapter 7 both implement it.

* :func:`greedy_decode` picks :math:`\arg\max_y P(y \mid y_{<t}, x)` at every step;
* :func:`beam_search` keeps the ``beam_size`` most likely prefixes at every step and returns the
  finished hypothesis with the best length-normalized score. With ``beam_size = 1`` it is
  greedy; it is *exact* only when the beam holds every prefix, and a larger beam is not
  guaranteed to find a more likely sequence than a smaller one (tests show both);
* :func:`sample` draws :math:`y_t \sim \operatorname{softmax}(\mathbf{z}_t / \tau)`, restricted to
  the ``top_k`` most likely tokens and/or the smallest set whose probability reaches ``top_p``
  (nucleus sampling, Holtzman et al., 2020), with a seeded generator;
* :func:`sequence_log_prob` scores a given output: :math:`\sum_t \log P(y_t \mid y_{<t}, x)`.

A returned token list stops before ``<eos>``; weights have one row per generated token,
``<eos>`` included. Decoding runs in eval mode and restores the model's mode afterwards.
``src_valid_lens=None`` means that every position of ``src`` is real (no padding, e.g. a GPT
prompt).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import nn
from torch.nn import functional as F

from ._checks import positive_int, token_ids
from .masking import as_valid_lens

__all__ = ["StepModel", "greedy_decode", "beam_search", "sample", "sequence_log_prob"]


class StepModel(Protocol):
    """Everything the decoders of this module read from a model (see the module docstring)."""

    bos_id: int
    eos_id: int
    pad_id: int
    training: bool

    def init_state(self, src: torch.Tensor, src_valid_lens: Any) -> Any: ...

    def step(self, tokens: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any, torch.Tensor | None]: ...

    def reorder_state(self, state: Any, index: torch.Tensor) -> Any: ...

    def train(self, mode: bool = True) -> Any: ...


def check_step_model(model: object) -> None:
    """Raise a clear ``ValueError`` unless ``model`` has what :class:`StepModel` declares."""
    missing = [name for name in ("init_state", "step", "reorder_state") if not callable(getattr(model, name, None))]
    missing += [
        name
        for name in ("bos_id", "eos_id", "pad_id")
        if not isinstance(getattr(model, name, None), int) or isinstance(getattr(model, name), bool)
    ]
    if not isinstance(model, nn.Module) or missing:
        raise ValueError(
            "model must be an nn.Module with init_state(), step(), reorder_state() and int "
            f"bos_id/eos_id/pad_id (a decoding.StepModel, e.g. a Seq2Seq or a Transformer), got "
            f"{type(model).__name__}" + (f" (missing or invalid: {', '.join(missing)})" if missing else "")
        )


def _number(name: str, value: object, *, low: float, open_low: bool = False, high: float) -> float:
    """``value`` as a float in ``[low, high]`` (``(low, high]`` with ``open_low``); NaN, bools and non-numbers fail."""
    is_real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if (
        not is_real
        or math.isnan(value)
        or not low <= value <= high  # type: ignore[arg-type, operator]
        or (open_low and value == low)
    ):
        bracket = "(" if open_low else "["
        raise ValueError(f"{name} must be a number in {bracket}{low}, {high}], got {value!r}")
    return float(value)  # type: ignore[arg-type]


class _Decoding:
    """The shared start of every decoder: checks, eval mode (restored afterwards), the first state."""

    def __init__(self, model: StepModel, src: torch.Tensor, src_valid_lens: Any, max_len: int):
        check_step_model(model)
        positive_int("max_len", max_len)
        token_ids(src, "src")
        self.model, self.src, self.max_len = model, src, max_len
        if src_valid_lens is None:  # no padding: every position of src is real (a GPT prompt)
            src_valid_lens = torch.full((src.shape[0],), src.shape[1], dtype=torch.long, device=src.device)
        self.lens = as_valid_lens(src_valid_lens, max_len=src.shape[1], device=src.device, name="src_valid_lens")
        if tuple(self.lens.shape) != (src.shape[0],):
            raise ValueError(f"src_valid_lens must have shape (B,) = ({src.shape[0]},), got {tuple(self.lens.shape)}")

    def __enter__(self) -> _Decoding:
        self.was_training = self.model.training
        self.model.train(False)
        return self

    def __exit__(self, *exc: object) -> None:
        self.model.train(self.was_training)

    def bos(self, n: int) -> torch.Tensor:
        return torch.full((n,), self.model.bos_id, dtype=torch.long, device=self.src.device)  # (n,)

    def generate(self, pick: Callable[[torch.Tensor], torch.Tensor]) -> tuple[torch.Tensor, list[Any]]:
        """The loop of :func:`greedy_decode` and :func:`sample`: one token per row and step, ``pick(logits
        (B, V)) -> (B,)``, ``<pad>`` after ``<eos>``, until every row has ended or ``max_len`` steps.
        Returns the tokens ``(B, steps)`` and the per-step weights."""
        model = self.model
        state = model.init_state(self.src, self.lens)
        tokens = self.bos(self.src.shape[0])  # (B,)
        outputs, weights = [], []
        finished = torch.zeros_like(tokens, dtype=torch.bool)  # (B,)
        for _ in range(self.max_len):
            logits, state, w = model.step(tokens, state)  # (B, V), state, (B, T) or None
            tokens = pick(logits).masked_fill(finished, model.pad_id)  # (B,); <pad> after <eos>
            outputs.append(tokens)
            weights.append(w)
            finished |= tokens == model.eos_id
            if bool(finished.all()):
                break
        return torch.stack(outputs, dim=1), weights

    def results(
        self, tokens: torch.Tensor, weights: list[torch.Tensor | None] | torch.Tensor | None, return_weights: bool
    ):
        """Token lists cut before ``<eos>`` (and weight matrices ``(steps, src_valid_len)``)."""
        eos = self.model.eos_id
        rows = tokens.tolist()  # (B, steps)
        out = [row[: row.index(eos)] if eos in row else row for row in rows]
        if not return_weights:
            return out
        if weights is None or (isinstance(weights, list) and any(w is None for w in weights)):
            raise ValueError("return_weights=True, but the model's step() returns no attention weights")
        w_all = torch.stack(weights, dim=1) if isinstance(weights, list) else weights  # (B, steps, T)
        lens = self.lens.tolist()
        mats = [w_all[b, : min(len(out[b]) + 1, w_all.shape[1]), : lens[b]].cpu() for b in range(len(out))]
        return out, mats


@torch.no_grad()
def greedy_decode(
    model: StepModel, src: torch.Tensor, src_valid_lens, max_len: int, return_weights: bool = False
) -> list[list[int]] | tuple[list[list[int]], list[torch.Tensor]]:
    """Decode a batch by picking the most likely token at every step.

    Returns a list of ``B`` token-id lists (``<eos>`` and what follows removed) and, with
    ``return_weights``, a list of ``B`` weight matrices ``(steps, src_valid_len)``, one row per
    generated token including ``<eos>``.
    """
    with _Decoding(model, src, src_valid_lens, max_len) as run:
        tokens, weights = run.generate(lambda logits: logits.argmax(dim=-1))
    return run.results(tokens, weights, return_weights)


def _frozen_log_probs(log_probs: torch.Tensor, finished: torch.Tensor, pad_id: int) -> torch.Tensor:
    """A finished hypothesis has one continuation, ``<pad>``, at no cost: it keeps its score."""
    frozen = torch.full_like(log_probs, float("-inf"))  # (..., V)
    frozen[..., pad_id] = 0.0
    return torch.where(finished.unsqueeze(-1), frozen, log_probs)


@torch.no_grad()
def beam_search(
    model: StepModel,
    src: torch.Tensor,
    src_valid_lens,
    max_len: int,
    beam_size: int = 4,
    length_penalty: float = 0.75,
    return_weights: bool = False,
) -> list[list[int]] | tuple[list[list[int]], list[torch.Tensor]]:
    r"""Batched beam search: keep the ``beam_size`` most likely prefixes per sentence.

    Every step extends each of the ``K`` prefixes by every token and keeps the ``K`` best by total
    log-probability :math:`\sum_{t} \log P(y_t \mid y_{<t}, x)`. A prefix that has produced
    ``<eos>`` is finished: it keeps its score and its slot. At the end (all finished, or
    ``max_len`` steps) the hypothesis with the best length-normalized score
    :math:`\frac{1}{L^\alpha}\sum_t \log P(y_t\mid\cdot)` wins (``alpha = length_penalty``,
    ``L`` counts ``<eos>``; ``alpha = 0`` ranks by total log-probability). With ``beam_size=1``
    this is exactly :func:`greedy_decode`.

    Returns the same as :func:`greedy_decode`.
    """
    positive_int("beam_size", beam_size)
    alpha = _number("length_penalty", length_penalty, low=0.0, high=10.0)
    with _Decoding(model, src, src_valid_lens, max_len) as run:
        device = src.device
        batch_size, beams = src.shape[0], beam_size
        state = model.init_state(src, run.lens)
        state = model.reorder_state(state, torch.arange(batch_size, device=device).repeat_interleave(beams))
        scores = torch.zeros(batch_size, beams, device=device)  # (B, K)
        scores[:, 1:] = float("-inf")  # at the start all K beams are the same: expand only one
        tokens = run.bos(batch_size * beams)  # (B*K,)
        finished = torch.zeros(batch_size, beams, dtype=torch.bool, device=device)  # (B, K)
        lengths = torch.zeros(batch_size, beams, device=device)  # (B, K)
        history = torch.zeros(batch_size, beams, 0, dtype=torch.long, device=device)  # (B, K, t)
        w_history: torch.Tensor | None = None  # (B, K, t, T)
        for _ in range(max_len):
            logits, state, w = model.step(tokens, state)  # (B*K, V), state, (B*K, T)
            vocab_size = logits.shape[-1]
            log_probs = F.log_softmax(logits.float(), dim=-1).view(batch_size, beams, vocab_size)  # (B, K, V)
            log_probs = _frozen_log_probs(log_probs, finished, model.pad_id)  # (B, K, V)
            candidates = (scores.unsqueeze(-1) + log_probs).view(batch_size, beams * vocab_size)  # (B, K*V)
            scores, flat_index = candidates.topk(beams, dim=-1)  # (B, K)
            parent = torch.div(flat_index, vocab_size, rounding_mode="floor")  # (B, K)
            next_tokens = flat_index % vocab_size  # (B, K)
            rows = (torch.arange(batch_size, device=device).unsqueeze(1) * beams + parent).view(-1)  # (B*K,)
            state = model.reorder_state(state, rows)
            history = torch.cat(
                [history.gather(1, parent.unsqueeze(-1).expand_as(history)), next_tokens.unsqueeze(-1)], dim=-1
            )  # (B, K, t+1)
            if return_weights and w is not None:
                w = w.view(batch_size, beams, 1, -1)  # (B, K, 1, T)
                idx = parent.view(batch_size, beams, 1, 1)
                picked = w.gather(1, idx.expand_as(w))  # (B, K, 1, T)
                w_history = (
                    picked
                    if w_history is None
                    else torch.cat([w_history.gather(1, idx.expand_as(w_history)), picked], dim=2)
                )  # (B, K, t+1, T)
            was_finished = finished.gather(1, parent)  # (B, K)
            lengths = lengths.gather(1, parent) + (~was_finished).float()
            finished = was_finished | (next_tokens == model.eos_id)
            tokens = next_tokens.view(-1)
            if bool(finished.all()):
                break
        normalized = scores / lengths.clamp_min(1.0) ** alpha  # (B, K)
        best = normalized.argmax(dim=-1)  # (B,)
    rows = torch.arange(batch_size, device=device)
    best_w = w_history[rows, best] if w_history is not None else None  # (B, t, T)
    return run.results(history[rows, best], best_w, return_weights)


def _filter_logits(logits: torch.Tensor, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """Logits ``(B, V)`` with every token outside the top-k / top-p set at ``-inf``."""
    if top_k is not None and top_k < logits.shape[-1]:
        keep = logits.topk(top_k, dim=-1).indices  # (B, k): exactly k tokens, even when logits tie
        logits = torch.full_like(logits, float("-inf")).scatter(-1, keep, logits.gather(-1, keep))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)  # (B, V)
        probs = sorted_logits.softmax(dim=-1)
        # keep a token if the probability of the tokens before it is still below top_p
        drop_sorted = probs.cumsum(dim=-1) - probs >= top_p  # (B, V); the top token is always kept
        drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


@torch.no_grad()
def sample(
    model: StepModel,
    src: torch.Tensor,
    src_valid_lens,
    max_len: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> list[list[int]]:
    r"""Draw one sequence per batch row: :math:`y_t \sim \operatorname{softmax}(\mathbf{z}_t/\tau)` over the allowed tokens.

    ``temperature`` :math:`\tau > 0` sharpens (< 1) or flattens (> 1) the distribution;
    ``top_k`` keeps the ``k`` most likely tokens; ``top_p`` keeps the smallest set of most likely
    tokens whose probability reaches ``p`` (nucleus sampling). ``generator`` (on the model's
    device) makes the draw reproducible without touching the global random state.
    Returns ``B`` token-id lists (cut before ``<eos>``).
    """
    tau = _number("temperature", temperature, low=0.0, open_low=True, high=1e6)
    if top_k is not None:
        positive_int("top_k", top_k)
    if top_p is not None:
        _number("top_p", top_p, low=0.0, open_low=True, high=1.0)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")

    def draw(logits: torch.Tensor) -> torch.Tensor:  # (B, V) -> (B,)
        # the best logit shifted to 0 and kept there: a tau below float32's range (1e-300 rounds
        # to 0) gives the argmax, never 0 / 0
        shifted = logits.float() - logits.float().amax(-1, keepdim=True)  # (B, V), <= 0
        logits = _filter_logits(torch.where(shifted == 0, 0.0, shifted / tau), top_k, top_p)  # (B, V)
        return torch.multinomial(logits.softmax(dim=-1), 1, generator=generator).squeeze(1)

    with _Decoding(model, src, src_valid_lens, max_len) as run:
        tokens, _ = run.generate(draw)
    return run.results(tokens, None, False)


@torch.no_grad()
def sequence_log_prob(
    model: StepModel,
    src: torch.Tensor,
    src_valid_lens,
    tgt: torch.Tensor,
    tgt_valid_lens=None,
    return_weights: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    r"""Teacher-forced :math:`\log P(y \mid x) = \sum_{t < \ell} \log P(y_t \mid y_{<t}, x)` for each row, ``(B,)``.

    ``tgt (B, T')`` holds the output tokens (with ``<eos>`` where the sequence ends, if it does);
    ``tgt_valid_lens (B,)`` counts the tokens that are scored (default: all ``T'``). The model runs
    through ``step`` exactly as the decoders run it. With ``return_weights`` also returns the
    per-step weights ``(B, T', T_src)`` (rows past a sequence's length are meaningless).
    """
    token_ids(tgt, "tgt")
    if tgt.shape[1] == 0:
        raise ValueError("tgt must hold at least one token per row (shape (B, T') with T' >= 1)")
    lens = as_valid_lens(
        tgt_valid_lens if tgt_valid_lens is not None else [tgt.shape[1]] * tgt.shape[0],
        max_len=tgt.shape[1],
        device=tgt.device,
        name="tgt_valid_lens",
    )
    if tgt.shape[0] != src.shape[0] or tuple(lens.shape) != (tgt.shape[0],):
        raise ValueError(
            f"tgt (B, T') and tgt_valid_lens (B,) need the batch size of src ({src.shape[0]}), "
            f"got {tuple(tgt.shape)} and {tuple(lens.shape)}"
        )
    with _Decoding(model, src, src_valid_lens, tgt.shape[1]) as run:
        state = model.init_state(src, run.lens)
        tokens = run.bos(src.shape[0])  # (B,)
        total = torch.zeros(src.shape[0], device=src.device)  # (B,)
        weights = []
        for t in range(tgt.shape[1]):
            logits, state, w = model.step(tokens, state)  # (B, V)
            if t == 0:
                token_ids(tgt, "tgt", logits.shape[-1])
            log_probs = F.log_softmax(logits.float(), dim=-1).gather(1, tgt[:, t : t + 1]).squeeze(1)  # (B,)
            total += torch.where(t < lens, log_probs, torch.zeros_like(log_probs))
            weights.append(w)
            tokens = tgt[:, t]
    if return_weights:
        return total, torch.stack(weights, dim=1)  # (B,), (B, T', T_src)
    return total
