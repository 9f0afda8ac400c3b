r"""BLEU: how many of a translation's n-grams appear in a reference (taught in chapter 4).

BLEU (Papineni et al., 2002) compares a predicted token sequence with one or more reference
translations through **clipped n-gram precisions**

.. math::

    p_n = \frac{\sum_{g \in \text{n-grams(pred)}} \min\big(\text{count}_\text{pred}(g),
                \max_r \text{count}_r(g)\big)}{\text{number of n-grams in pred}},

("clipped": an n-gram repeated in the prediction counts at most as often as it occurs in a
reference) and a **brevity penalty** that punishes predictions shorter than the reference
(precision alone would reward predicting a single safe word):

.. math::

    \mathrm{BP} = \exp\!\big(\min(0,\ 1 - \ell_\text{label} / \ell_\text{pred})\big).

Two ways to combine them live here:

* :func:`bleu` -- the sentence-level score of *Dive into Deep Learning* (D2L), one reference,
  n-gram orders up to ``k`` (D2L uses ``k = 2``), weights that halve with each order:

  .. math::  \mathrm{BLEU}_\text{D2L} = \mathrm{BP} \prod_{n=1}^{\min(k, \ell_\text{pred})}
             p_n^{1/2^n};

* :func:`corpus_bleu` -- the standard corpus-level score: clipped matches and n-gram counts are
  **summed over the whole corpus first**, each prediction is compared with all its references,
  the brevity penalty uses the total length of the closest references, and the precisions are
  combined by a geometric mean, :math:`\mathrm{BP}\,\exp(\frac1N \sum_{n=1}^N \log p_n)`
  (``weights="uniform"``, what papers and sacreBLEU report; with ``tokenize="none"`` and no
  smoothing sacreBLEU gives the same number) or with D2L's weights (``weights="d2l"``).

The two definitions agree on a sentence whenever every precision :math:`p_n` is 0 or 1 (then
both are ``BP`` or both are 0): the tests cross-check such sentences against ``sacrebleu``.
Scores are in ``[0, 1]`` (sacreBLEU prints them times 100). Tokens are compared as strings;
a string argument is split on whitespace.

:func:`compare_accuracies` turns two measured accuracies into the sentence a chapter may print
about them ("A beats B", "neither beats chance", "within noise"), so that a verdict in the prose
is computed from the run and never typed (chapters 9 to 12).

**Calibration** (chapter 12): the expected calibration error over :math:`M` equal-width confidence
bins (Guo et al., 2017), :math:`\operatorname{ECE} = \sum_m \frac{|B_m|}{n}\,|\operatorname{acc}(B_m)
- \operatorname{conf}(B_m)|` (:func:`expected_calibration_error`); :func:`calibration_bins` gives
the data of a reliability diagram.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Sequence
from typing import NamedTuple

import torch

from ._checks import nonnegative_int, paired_lists, positive_int

__all__ = [
    "ngram_counts",
    "brevity_penalty",
    "bleu",
    "corpus_bleu",
    "AccuracyComparison",
    "compare_accuracies",
    "CalibrationBins",
    "calibration_bins",
    "expected_calibration_error",
]

Tokens = Sequence[str]


def _as_tokens(seq, name: str) -> list[str]:
    if isinstance(seq, str):
        return seq.split()
    if isinstance(seq, (list, tuple)) and all(isinstance(t, str) for t in seq):
        return list(seq)
    raise ValueError(f"{name} must be a string or a list of string tokens, got {seq!r:.80}")


def _check_order(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int (the largest n-gram order), got {value!r}")
    return value


def ngram_counts(tokens: Tokens, n: int) -> collections.Counter:
    """Counter of the ``n``-grams (as tuples) of ``tokens``; empty if ``len(tokens) < n``."""
    n = _check_order("n", n)
    return collections.Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def brevity_penalty(len_pred: int, len_label: int) -> float:
    r""":math:`\exp(\min(0, 1 - \ell_\text{label}/\ell_\text{pred}))`; 0 for an empty prediction."""
    nonnegative_int("len_pred", len_pred)
    nonnegative_int("len_label", len_label)
    if len_pred == 0:
        return 0.0
    return math.exp(min(0.0, 1.0 - len_label / len_pred))


def _clipped_matches(pred: Tokens, references: Sequence[Tokens], n: int) -> tuple[int, int]:
    """(clipped n-gram matches, number of n-grams in ``pred``) against several references."""
    pred_counts = ngram_counts(pred, n)
    max_ref: collections.Counter = collections.Counter()
    for ref in references:
        max_ref |= ngram_counts(ref, n)  # element-wise maximum over references
    matches = sum(min(count, max_ref[gram]) for gram, count in pred_counts.items())
    return matches, max(len(pred) - n + 1, 0)


def bleu(pred, label, k: int = 2) -> float:
    r"""D2L's sentence BLEU of one prediction against one reference (tokens or a string).

    .. math::

        \exp\!\big(\min(0, 1 - \ell_\text{label}/\ell_\text{pred})\big)
        \prod_{n=1}^{\min(k,\ \ell_\text{pred})} p_n^{1/2^n}

    Orders above the prediction's length are skipped (as in D2L). An empty prediction scores 0.

    >>> bleu("je suis chez moi .", "je suis chez moi .")
    1.0
    >>> round(bleu("il est riche .", "il est calme ."), 3)
    0.658
    """
    pred_tokens = _as_tokens(pred, "pred")
    label_tokens = _as_tokens(label, "label")
    k = _check_order("k", k)
    len_pred, len_label = len(pred_tokens), len(label_tokens)
    if len_pred == 0:
        return 0.0
    score = brevity_penalty(len_pred, len_label)
    for n in range(1, min(k, len_pred) + 1):
        matches, total = _clipped_matches(pred_tokens, [label_tokens], n)
        score *= (matches / total) ** (0.5**n)
    return score


def _closest_ref_len(len_pred: int, references: Sequence[Tokens]) -> int:
    # the reference length closest to the prediction's; ties go to the shorter (as sacreBLEU)
    return min((abs(len(r) - len_pred), len(r)) for r in references)[1]


def corpus_bleu(
    preds: Sequence,
    references: Sequence[Sequence],
    max_n: int = 4,
    weights: str = "uniform",
) -> float:
    r"""Corpus-level BLEU of ``preds`` against ``references`` (one list of references each).

    Clipped matches :math:`m_n` and n-gram counts :math:`c_n` are summed over the corpus,
    :math:`p_n = m_n / c_n`; :math:`\ell_\text{pred}` is the total prediction length and
    :math:`\ell_\text{label}` the total length of the references closest in length to each
    prediction (ties: the shorter). Then

    * ``weights="uniform"``: :math:`\mathrm{BP} \exp\big(\frac1N\sum_{n=1}^{N}\log p_n\big)`
      with ``N = max_n`` (standard BLEU-N; equals sacreBLEU's corpus score / 100 with
      ``tokenize="none"``, ``smooth_method="none"``);
    * ``weights="d2l"``: :math:`\mathrm{BP}\prod_{n=1}^{N} p_n^{1/2^n}`.

    Any :math:`p_n = 0` gives 0. With ``"uniform"`` an order that no prediction is long enough to
    have also gives 0 (as sacreBLEU); with ``"d2l"`` such orders are skipped (as :func:`bleu`).

    Args:
        preds: predictions, each a token list or a whitespace-separated string.
        references: for each prediction, a non-empty list of references (token lists or strings).
        max_n: largest n-gram order ``N``.
        weights: ``"uniform"`` or ``"d2l"``.
    """
    max_n = _check_order("max_n", max_n)
    if weights not in ("uniform", "d2l"):
        raise ValueError(f"weights must be 'uniform' or 'd2l', got {weights!r}")
    paired_lists("preds", preds, "references", references, " (one list of references per prediction)")
    if len(preds) == 0:
        raise ValueError("preds must hold at least one prediction")
    matches = [0] * max_n
    totals = [0] * max_n
    len_pred = len_label = 0
    for i, (pred, refs) in enumerate(zip(preds, references)):
        pred_tokens = _as_tokens(pred, f"preds[{i}]")
        if isinstance(refs, str) or not isinstance(refs, (list, tuple)) or len(refs) == 0:
            raise ValueError(f"references[{i}] must be a non-empty list of references, got {refs!r:.80}")
        ref_tokens = [_as_tokens(r, f"references[{i}]") for r in refs]
        len_pred += len(pred_tokens)
        len_label += _closest_ref_len(len(pred_tokens), ref_tokens)
        for n in range(1, max_n + 1):
            m, t = _clipped_matches(pred_tokens, ref_tokens, n)
            matches[n - 1] += m
            totals[n - 1] += t
    if len_pred == 0:
        return 0.0
    if weights == "uniform" and 0 in totals:
        return 0.0
    orders = [n for n in range(1, max_n + 1) if totals[n - 1] > 0]
    precisions = [matches[n - 1] / totals[n - 1] for n in orders]
    if any(p == 0 for p in precisions):
        return 0.0
    bp = brevity_penalty(len_pred, len_label)
    if weights == "uniform":
        return bp * math.exp(sum(math.log(p) for p in precisions) / max_n)
    return bp * math.prod(p ** (0.5**n) for n, p in zip(orders, precisions))


def _fraction(name: str, value: object, expected: str, ok) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not ok(value):
        raise ValueError(f"{name} must be a number {expected}, got {value!r}")
    return float(value)


class AccuracyComparison(NamedTuple):
    """What two accuracies measured on ``n`` held-out examples each say (see :func:`compare_accuracies`)."""

    a_beats_chance: bool
    b_beats_chance: bool
    a_beats_b: bool
    b_beats_a: bool
    difference: float  # acc_a - acc_b, in [-1, 1]
    noise: float  # z standard errors of that difference
    verdict: str


def compare_accuracies(
    acc_a: float,
    acc_b: float,
    n: int,
    chance: float,
    names: tuple[str, str] = ("A", "B"),
    z: float = 2.0,
) -> AccuracyComparison:
    r"""Compare two accuracies, each measured on ``n`` examples, with each other and with chance.

    An accuracy :math:`p` *beats chance* :math:`c` when :math:`p > c + z\sqrt{c(1-c)/n}` (the
    binomial standard error of a guesser). ``A`` *beats* ``B`` when
    :math:`p_A - p_B > z\sqrt{2\bar p(1-\bar p)/n}` with :math:`\bar p = (p_A+p_B)/2` (two
    independent proportions), and it can do so only if it beats chance itself. The verdict says
    "neither ... beats chance" when that is what happened, because then the comparison shows
    nothing about the two methods.

    Args:
        acc_a, acc_b: accuracies in ``[0, 1]``.
        n: examples each accuracy was measured on (positive).
        chance: the accuracy of guessing, in ``(0, 1)``.
        names: how the verdict names the two.
        z: how many standard errors count as a clear difference (2 by default).
    """
    acc_a = _fraction("acc_a", acc_a, "in [0, 1]", lambda v: 0.0 <= v <= 1.0)
    acc_b = _fraction("acc_b", acc_b, "in [0, 1]", lambda v: 0.0 <= v <= 1.0)
    n = positive_int("n", n)
    chance = _fraction("chance", chance, "strictly between 0 and 1", lambda v: 0.0 < v < 1.0)
    z = float(z)
    if not (math.isfinite(z) and z > 0):
        raise ValueError(f"z must be a positive number of standard errors, got {z}")
    if not (isinstance(names, (tuple, list)) and len(names) == 2 and all(isinstance(x, str) for x in names)):
        raise ValueError(f"names must be two strings, got {names!r:.80}")
    name_a, name_b = names
    bar = z * math.sqrt(chance * (1.0 - chance) / n)
    a_chance, b_chance = acc_a > chance + bar, acc_b > chance + bar
    mean = (acc_a + acc_b) / 2
    noise = z * math.sqrt(max(2.0 * mean * (1.0 - mean) / n, 1.0 / n**2))
    diff = acc_a - acc_b
    a_beats_b = a_chance and diff > noise
    b_beats_a = b_chance and -diff > noise
    pts = 100 * abs(diff)
    if not (a_chance or b_chance):
        verdict = (
            f"neither {name_a} ({100 * acc_a:.1f}%) nor {name_b} ({100 * acc_b:.1f}%) beats chance "
            f"({100 * chance:.1f}%), so the comparison shows nothing"
        )
    elif a_beats_b or b_beats_a:
        win, lose, lose_chance = (name_a, name_b, b_chance) if a_beats_b else (name_b, name_a, a_chance)
        verdict = f"{win} beats {lose} by {pts:.1f} points"
        if not lose_chance:
            verdict += f", and {lose} is no better than chance"
    elif a_chance and b_chance:
        verdict = (
            f"{name_a} and {name_b} both beat chance, and their difference ({100 * diff:+.1f} points) "
            f"is within noise ({100 * noise:.1f} points)"
        )
    else:
        best, other = (name_a, name_b) if a_chance else (name_b, name_a)
        verdict = (
            f"{best} beats chance and {other} does not, but their difference ({100 * diff:+.1f} points) "
            f"is within noise ({100 * noise:.1f} points)"
        )
    return AccuracyComparison(a_chance, b_chance, a_beats_b, b_beats_a, diff, noise, verdict)


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
