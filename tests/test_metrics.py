"""Tests for d2l_attn.metrics: D2L's sentence BLEU, corpus BLEU, cross-checked against sacrebleu.

When do the definitions agree? sacreBLEU combines the n-gram precisions by a geometric mean
(weights 1/N), D2L by weights 1/2^n; both use the same brevity penalty and, for a sentence, the
same orders (1..min(N, len(pred)) with sacreBLEU's ``effective_order``). So the sentence scores
are equal whenever every precision p_n is 0 or 1 (both give 0, or both give BP). With uniform
weights our corpus BLEU is sacreBLEU's corpus BLEU (tokenize="none", no smoothing) on any input.
"""

from __future__ import annotations

import math
import random
import re

import pytest

from d2l_attn.metrics import bleu, brevity_penalty, corpus_bleu, ngram_counts

sacrebleu = pytest.importorskip("sacrebleu")
from sacrebleu.metrics import BLEU  # noqa: E402


def sacre_sentence(pred: str, ref: str, k: int) -> float:
    metric = BLEU(tokenize="none", smooth_method="none", effective_order=True, max_ngram_order=k)
    return metric.sentence_score(pred, [ref]).score / 100


def sacre_corpus(preds, refs, k=4) -> float:
    metric = BLEU(tokenize="none", smooth_method="none", max_ngram_order=k)
    num_refs = max(len(r) for r in refs)
    # sacreBLEU wants one stream per reference index; missing references are None
    streams = [[r[i] if i < len(r) else None for r in refs] for i in range(num_refs)]
    return metric.corpus_score(preds, streams).score / 100


def test_hand_computed_values():
    # identical sentences: every p_n = 1, no brevity penalty
    assert bleu("je suis chez moi .", "je suis chez moi .") == 1.0
    # D2L's published example: "il est riche ." vs "il est calme .", k = 2
    # p1 = 3/4, p2 = 1/3 ("il est"), BP = 1  ->  (3/4)^(1/2) * (1/3)^(1/4)
    expected = (3 / 4) ** 0.5 * (1 / 3) ** 0.25
    assert bleu("il est riche .", "il est calme .", k=2) == pytest.approx(expected)
    assert round(expected, 3) == 0.658
    # too short: "va" vs "va !" -> BP = exp(1 - 2/1), p1 = 1 (only order 1 exists)
    assert bleu("va", "va !", k=2) == pytest.approx(math.exp(-1))
    # no bigram in common -> 0
    assert bleu("il court .", "il est calme .", k=2) == 0.0
    # clipping: "the the the" vs "the cat": p1 = 1/3, p2 = 0
    assert bleu("the the the", "the cat", k=1) == pytest.approx((1 / 3) ** 0.5)


def test_brevity_penalty_and_ngrams():
    assert brevity_penalty(5, 4) == 1.0
    assert brevity_penalty(2, 4) == pytest.approx(math.exp(1 - 4 / 2))
    assert brevity_penalty(0, 3) == 0.0
    assert ngram_counts(["a", "b", "a", "b"], 2) == {("a", "b"): 2, ("b", "a"): 1}
    assert not ngram_counts(["a"], 2)


AGREEING_CASES = [
    ("je suis chez moi .", "je suis chez moi ."),  # all p_n = 1, BP = 1
    ("je suis chez", "je suis chez moi ."),  # a prefix: all p_n = 1, BP < 1
    ("suis chez moi", "je suis chez moi ."),  # a substring: all p_n = 1, BP < 1
    ("a b c d e", "e d c b a"),  # p_1 = 1, p_2 = 0
    ("x y", "a b c"),  # p_1 = 0
]


@pytest.mark.parametrize("pred, ref", AGREEING_CASES)
@pytest.mark.parametrize("k", [1, 2, 4])
def test_sentence_bleu_agrees_with_sacrebleu_when_precisions_are_0_or_1(pred, ref, k):
    assert bleu(pred, ref, k=k) == pytest.approx(sacre_sentence(pred, ref, k), abs=1e-9)


def test_agreement_needs_precisions_of_0_or_1():
    # "il court ." vs "il est calme .": p_1 = 2/3, p_2 = 0. With k >= 2 both scores are 0;
    # with k = 1 only p_1 = 2/3 counts and the weights differ (1/2 vs 1).
    for k in (2, 4):
        assert bleu("il court .", "il est calme .", k=k) == sacre_sentence("il court .", "il est calme .", k) == 0
    bp = math.exp(1 - 4 / 3)  # 3 predicted tokens, 4 in the reference
    assert bleu("il court .", "il est calme .", k=1) == pytest.approx(bp * (2 / 3) ** 0.5)
    assert sacre_sentence("il court .", "il est calme .", 1) == pytest.approx(bp * 2 / 3)


def test_sentence_bleu_differs_from_sacrebleu_otherwise():
    # p1 = 3/4, p2 = 1/3: D2L weights 1/2, 1/4 vs sacreBLEU's 1/2, 1/2
    ours, theirs = bleu("il est riche .", "il est calme .", k=2), sacre_sentence("il est riche .", "il est calme .", 2)
    assert theirs == pytest.approx((3 / 4 * 1 / 3) ** 0.5)
    assert ours > theirs


def test_corpus_bleu_equals_sacrebleu_on_random_corpora():
    rng = random.Random(0)
    words = "a b c d e f".split()
    for _ in range(100):
        n = rng.randint(1, 6)
        preds = [" ".join(rng.choices(words, k=rng.randint(1, 9))) for _ in range(n)]
        refs = [[" ".join(rng.choices(words, k=rng.randint(1, 9))) for _ in range(rng.randint(1, 3))] for _ in range(n)]
        assert corpus_bleu(preds, refs) == pytest.approx(sacre_corpus(preds, refs), abs=1e-9)


def test_corpus_bleu_properties():
    refs = [["je suis chez moi .", "je suis à la maison ."], ["va !"]]
    assert corpus_bleu(["je suis à la maison .", "va !"], refs, max_n=2) == pytest.approx(1.0)
    # corpus BLEU is not the mean of sentence BLEUs: counts are pooled before the ratio
    one = corpus_bleu(["je suis chez moi ."], [refs[0]], max_n=2, weights="d2l")
    assert one == pytest.approx(bleu("je suis chez moi .", "je suis chez moi .", k=2))
    # a single sentence with one reference and d2l weights is D2L's sentence BLEU
    assert corpus_bleu(["il est riche ."], [["il est calme ."]], max_n=2, weights="d2l") == pytest.approx(
        bleu("il est riche .", "il est calme .", k=2)
    )
    # token lists and strings are the same
    assert corpus_bleu([["va", "!"]], [[["va", "!"]]]) == corpus_bleu(["va !"], [["va !"]])


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: bleu("a", "a", k=0), "k must be a positive int"),
        (lambda: bleu(3, "a"), "pred must be a string"),
        (lambda: corpus_bleu(["a"], [["a"], ["b"]]), "same length"),
        (lambda: corpus_bleu(["a"], [[]]), "non-empty list"),
        (lambda: corpus_bleu("a b", ["a b"]), "not a single string"),
        (lambda: corpus_bleu(["a"], [["a"]], weights="geo"), "weights must be"),
        (lambda: corpus_bleu([], []), "at least one"),
        (lambda: brevity_penalty(-1, 2), "len_pred"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_empty_prediction_scores_zero():
    assert bleu("", "va !") == 0.0
    assert corpus_bleu([""], [["va !"]]) == 0.0


def test_bleu_reproduces_d2l_published_value_for_a_partial_match():
    # D2L's Bahdanau run (d2l-ai/d2l-pytorch-colab @ 0463544) prints 0.537 for this pair:
    # p_1 = 2/4, p_2 = 1/3, no brevity penalty (4 >= 3 tokens)
    expected = (2 / 4) ** 0.5 * (1 / 3) ** 0.25
    assert bleu("je suis calme .", "il est calme .", k=2) == pytest.approx(expected)
    assert round(expected, 3) == 0.537


# --- compare_accuracies: the verdict a chapter prints about two accuracies ---------------------

from d2l_attn.metrics import compare_accuracies  # noqa: E402


def test_neither_beats_chance_is_said_plainly():
    # chapter 9's old fine-tuning run: 50.0% vs 52.0% on 100 examples, chance 50%
    result = compare_accuracies(0.50, 0.52, n=100, chance=0.5, names=("pretrained", "scratch"))
    assert not result.a_beats_chance and not result.b_beats_chance
    assert not result.a_beats_b and not result.b_beats_a
    assert result.verdict.startswith("neither pretrained")
    assert "shows nothing" in result.verdict


def test_a_clear_winner_and_a_loser_at_chance():
    result = compare_accuracies(0.80, 0.51, n=400, chance=0.5, names=("pretrained", "scratch"))
    assert result.a_beats_chance and not result.b_beats_chance
    assert result.a_beats_b and not result.b_beats_a
    assert result.verdict == "pretrained beats scratch by 29.0 points, and scratch is no better than chance"
    flipped = compare_accuracies(0.51, 0.80, n=400, chance=0.5, names=("x", "y"))
    assert flipped.b_beats_a and flipped.verdict.startswith("y beats x by 29.0 points")


def test_within_noise_when_both_beat_chance():
    # both far above 10% chance; 2 points apart on 200 examples is within 2 standard errors
    result = compare_accuracies(0.90, 0.88, n=200, chance=0.1)
    assert result.a_beats_chance and result.b_beats_chance
    assert not (result.a_beats_b or result.b_beats_a)
    assert "within noise" in result.verdict
    expected_noise = 2 * math.sqrt(2 * 0.89 * 0.11 / 200)
    assert math.isclose(result.noise, expected_noise)
    assert math.isclose(result.difference, 0.02)


def test_the_chance_bar_is_two_standard_errors_of_a_guesser():
    n, chance = 100, 0.5
    bar = chance + 2 * math.sqrt(chance * (1 - chance) / n)  # 0.6
    assert not compare_accuracies(bar - 0.001, 0.0, n=n, chance=chance).a_beats_chance
    assert compare_accuracies(bar + 0.001, 0.0, n=n, chance=chance).a_beats_chance
    # a larger z asks for more
    assert not compare_accuracies(bar + 0.001, 0.0, n=n, chance=chance, z=3).a_beats_chance


def test_one_beats_chance_but_the_gap_is_noise():
    result = compare_accuracies(0.62, 0.57, n=100, chance=0.5, names=("a", "b"))
    assert result.a_beats_chance and not result.b_beats_chance and not result.a_beats_b
    assert result.verdict.startswith("a beats chance and b does not, but")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(acc_a=1.2, acc_b=0.5, n=10, chance=0.5), "acc_a must be a number in [0, 1]"),
        (dict(acc_a=0.5, acc_b=float("nan"), n=10, chance=0.5), "acc_b must be a number in [0, 1]"),
        (dict(acc_a=0.5, acc_b=0.5, n=0, chance=0.5), "n must be"),
        (dict(acc_a=0.5, acc_b=0.5, n=10, chance=1.0), "chance must be a number strictly between 0 and 1"),
        (dict(acc_a=0.5, acc_b=0.5, n=10, chance=0.5, z=-1), "z must be a positive"),
        (dict(acc_a=0.5, acc_b=0.5, n=10, chance=0.5, names=("a",)), "names must be two strings"),
    ],
)
def test_compare_accuracies_refuses_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        compare_accuracies(**kwargs)
