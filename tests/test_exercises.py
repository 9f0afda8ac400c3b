"""Every exercise: its reference solution passes its checker, every wrong answer fails; hints,
bad input, global state, forbidden calls and the notebook widget."""

import numpy as np
import pytest
import torch

from d2l_attn import exercises
from d2l_attn.exercises import (
    AnswerError,
    ChoiceExercise,
    FunctionExercise,
    NumberExercise,
    TensorExercise,
    check,
    parse_number,
)

ALL = exercises.all_exercises()


def test_every_chapter_module_has_at_least_four_exercises():
    for chapter in exercises.CHAPTERS:
        ids = [i for i in ALL if i.startswith(chapter + "-")]
        assert len(ids) >= 4, (chapter, ids)


@pytest.mark.parametrize("exercise_id", sorted(ALL))
def test_reference_solution_passes(exercise_id):
    ex = ALL[exercise_id]
    feedback = ex.check(ex.reference_answer())
    assert feedback.passed, str(feedback)
    assert "Correct" in str(feedback)


@pytest.mark.parametrize(
    "exercise_id, wrong_index",
    [(i, j) for i in sorted(ALL) for j in range(len(ALL[i].wrong_answers))],
)
def test_wrong_answers_fail_with_a_hint(exercise_id, wrong_index):
    ex = ALL[exercise_id]
    feedback = ex.check(ex.wrong_answers[wrong_index])
    assert not feedback.passed
    assert feedback.message
    if feedback.status == "invalid":  # an answer of the wrong form: explained, not an attempt
        assert not feedback.hint
    else:
        assert feedback.status == "wrong", feedback
        assert feedback.hint, "a failed answer must come with a hint"


@pytest.mark.parametrize("exercise_id", sorted(ALL))
def test_every_exercise_lists_a_wrong_answer_that_gets_a_hint(exercise_id):
    ex = ALL[exercise_id]
    assert any(ex.evaluate(w).status == "wrong" for w in ex.wrong_answers)


def test_hints_progress_with_attempts():
    ex = NumberExercise(id="ch99-x", prompt="?", solution=1.0, wrong_answers=[2], hints=["first", "second"])
    assert ex.check(2).hint == "first"
    assert ex.check(3).hint == "second"
    assert ex.check(4).hint == "second"
    assert ex.check(1).passed


@pytest.mark.parametrize(
    "text, value",
    [("0.25", 0.25), ("1/4", 0.25), (" 2.5e-1 ", 0.25), ("25%", 0.25), (3, 3.0), (torch.tensor(0.5), 0.5)],
)
def test_parse_number_accepts_plain_forms(text, value):
    assert parse_number(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["__import__('os').system('echo hacked')", "1+1", "2**10", "abc", "1/0", True, [1]])
def test_parse_number_never_evaluates(text):
    with pytest.raises(AnswerError):
        parse_number(text)


def test_malicious_text_is_feedback_not_execution(capfd):
    fb = check("ch01-soft-lookup-value", "__import__('os').system('echo hacked')")
    assert not fb.passed and "Could not read" in fb.message
    assert "hacked" not in capfd.readouterr().out


def test_choice_by_letters_text_and_lists():
    ex = ChoiceExercise(
        id="ch99-c", prompt="?", options=["red", "green", "blue"], solution={"a", "c"}, wrong_answers=["a"]
    )
    assert ex.check("a, c").passed and ex.check("(c) (a)").passed and ex.check(["red", "blue"]).passed
    assert not ex.check("a").passed
    fb = ex.check("a, z")
    assert not fb.passed and "Unknown option" in fb.message
    single = ChoiceExercise(id="ch99-d", prompt="?", options=["x", "y"], solution="b", wrong_answers=["a"])
    assert single.check("Y").passed and not single.check("x").passed


def test_tensor_exercise_messages():
    ex = TensorExercise(id="ch99-t", prompt="?", solution=torch.eye(2), wrong_answers=[torch.zeros(2, 2)])
    assert "Expected shape (2, 2)" in ex.check(torch.ones(3)).message
    assert "NaN" in ex.check(torch.full((2, 2), float("nan"))).message
    assert ex.check([[1, 0], [0, 1]]).passed
    assert ex.check("[[1, 0], [0, 1]]").passed and ex.check("tensor([[1., 0.],\n [0., 1.]])").passed
    assert ex.check("[[1 0] [0 1]]").passed  # NumPy's printed form
    assert "Could not read 'eye' as a number" in ex.check("eye").message
    assert "must be a tensor" in ex.check({"a": 1}).message
    assert "different lengths" in ex.check("[[1, 0], [0]]").message
    assert ex.check("[[1, 0], [0, 1.5]]").message.startswith("The shape is right, but 1 of 4 entries")


def test_function_exercise_reports_exceptions_and_shapes():
    ex = FunctionExercise(
        id="ch99-f",
        prompt="?",
        solution=lambda x: x * 2,
        make_inputs=lambda s: (torch.ones(3),),
        wrong_answers=[lambda x: x],
    )

    def boom(x):
        raise RuntimeError("oops")

    assert "raised RuntimeError: oops" in ex.check(boom).message
    assert "has shape (1,)" in ex.check(lambda x: x.sum(0, keepdim=True)).message
    assert "Pass your function itself" in ex.check(3).message
    assert ex.check(lambda x: x + x).passed


def test_function_exercise_inputs_are_copied():
    seen = []

    def mutating(x):
        x.add_(100)
        return x

    ex = FunctionExercise(
        id="ch99-g",
        prompt="?",
        solution=lambda x: x.clone(),
        make_inputs=lambda s: (seen.append(torch.ones(2)) or seen[-1],),
        wrong_answers=[mutating],
    )
    assert not ex.check(mutating).passed
    assert torch.equal(seen[0], torch.ones(2))


def test_exercise_definition_is_validated():
    with pytest.raises(ValueError, match="id must look like"):
        NumberExercise(id="bad id", prompt="?", solution=1, wrong_answers=[2])
    with pytest.raises(ValueError, match="wrong answer"):
        NumberExercise(id="ch99-a", prompt="?", solution=1)
    with pytest.raises(ValueError, match="not among"):
        ChoiceExercise(id="ch99-b", prompt="?", options=["x", "y"], solution="c", wrong_answers=["a"])


def test_unknown_ids():
    with pytest.raises(ValueError, match="unknown exercise id"):
        check("ch01-nope", 1)
    with pytest.raises(ValueError, match="unknown exercise id"):
        check("nonsense", 1)


def test_feedback_renders_html_safely():
    fb = check("ch01-cues", "<script>alert(1)</script>")
    html = fb._repr_html_()
    assert "<script>" not in html and "Not yet" in html


def test_widgets_build_for_number_and_choice():
    pytest.importorskip("ipywidgets")
    for exercise_id in ["ch01-cues", "ch01-valid-weights", "ch01-soft-lookup-value"]:
        w = exercises.widget(exercise_id)
        assert w.children, exercise_id
    with pytest.raises(TypeError, match="answered in code"):
        exercises.widget("ch01-soft-lookup-fn")


# --------------------------------------------------------------------------------------------
# Hints that teach: nudge first, then more; malformed input and starters are not attempts
# --------------------------------------------------------------------------------------------


def test_invalid_and_starter_answers_are_not_attempts():
    ex = TensorExercise(
        id="ch99-s",
        prompt="?",
        solution=torch.eye(2),
        wrong_answers=[torch.ones(2, 2)],
        starter=torch.zeros(2, 2),
        hints=["nudge", "more"],
    )
    fb = ex.check(torch.zeros(2, 2))
    assert fb.status == "starter" and not fb.hint and "starter" in fb.message
    assert ex.check("[[1, 0], [0").status == "invalid"
    assert ex.check(torch.ones(2, 2)).hint == "nudge"  # still the first wrong answer
    assert ex.check(torch.ones(2, 2)).hint == "more"


def test_a_function_that_raises_not_implemented_is_the_starter():
    ex = ALL["ch03-masked-softmax-fn"]
    before = ex._attempts

    def starter(scores, valid_lens):
        raise NotImplementedError

    fb = ex.check(starter)
    assert fb.status == "starter" and not fb.hint and ex._attempts == before


@pytest.mark.parametrize("exercise_id", sorted(i for i, e in ALL.items() if isinstance(e, TensorExercise)))
def test_tensor_starters_match_the_notebooks_placeholders(exercise_id):
    ex = ALL[exercise_id]
    assert ex.starter is not None, "the notebook's starter cell must not count as an attempt"
    assert ex.evaluate(ex.starter).status == "starter"
    assert ex.evaluate(ex.solution).status == "correct"


@pytest.mark.parametrize("exercise_id", sorted(i for i, e in ALL.items() if isinstance(e, ChoiceExercise)))
def test_choice_feedback_does_not_allow_answering_by_elimination(exercise_id):
    """All wrong selections of the same size get the same message: it says how many options are
    right, never which chosen option is wrong."""
    import itertools

    ex = ALL[exercise_id]
    correct = ex.correct()
    by_size: dict = {}
    for size in range(1, len(ex.options) + 1):
        for chosen in itertools.combinations(ex.letters(), size):
            verdict = ex.evaluate(list(chosen))
            if set(chosen) == correct:
                assert verdict.status == "correct"
                continue
            by_size.setdefault(size, set()).add(verdict.message)
    for size, messages in by_size.items():
        assert len(messages) == 1, (size, messages)
        for letter in ex.letters():
            assert f"({letter})" not in next(iter(messages))


# --------------------------------------------------------------------------------------------
# Absurd input is refused fast, with a clear message (issue 12's bad-input items)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, words",
    [
        ("1e200000000", "exponent"),
        ("1e400", "too large"),
        ("-1e400", "too large"),
        ("9" * 10**6, "too long"),
        ("1+2j", "complex"),
        ("3j", "complex"),
        ("1/0", "divides by zero"),
        ("12345678901234567/3", "at most 15 digits"),
        ("nan", "Could not read"),
        ("inf", "Could not read"),
        ("", "Type an answer"),
    ],
)
def test_absurd_numbers_are_refused_fast(text, words):
    import time

    start = time.perf_counter()
    with pytest.raises(AnswerError, match=words):
        parse_number(text)
    fb = check("ch03-softmax-value", text)
    assert fb.status == "invalid" and not fb.hint
    assert time.perf_counter() - start < 0.5


def test_numbers_read_exactly():
    assert parse_number("1/3") == 1 / 3
    assert parse_number("\u22120.5") == -0.5 and parse_number("1_000") == 1000.0
    assert parse_number("1e-400") == 0.0 and parse_number(".5") == 0.5 and parse_number("5.") == 5.0
    assert parse_number("2.5E-1") == 0.25 and parse_number("+.5%") == 0.005
    with pytest.raises(AnswerError, match="complex"):
        parse_number(1 + 2j)
    with pytest.raises(AnswerError, match="complex"):
        parse_number(torch.tensor(1 + 2j))
    with pytest.raises(AnswerError, match="too large"):
        parse_number(10**400)
    with pytest.raises(AnswerError, match="too large"):
        parse_number(10**10000)  # more digits than str() prints
    with pytest.raises(AnswerError, match="not a finite number"):
        parse_number(float("nan"))


@pytest.mark.parametrize(
    "answer",
    [
        torch.tensor([[1 + 1j, 0], [0, 1]]),
        torch.eye(2, dtype=torch.complex64),
        np.eye(2) + 1j,
        [[1 + 1j, 0], [0, 1]],
    ],
)
def test_complex_tensors_are_refused_not_truncated(answer):
    ex = TensorExercise(id="ch99-c", prompt="?", solution=torch.eye(2), wrong_answers=[torch.zeros(2, 2)])
    fb = ex.check(answer)
    assert fb.status == "invalid" and "complex" in fb.message


def test_a_function_returning_complex_values_fails():
    ex = FunctionExercise(
        id="ch99-z",
        prompt="?",
        solution=lambda x: x * 2,
        make_inputs=lambda s: (torch.ones(3),),
        wrong_answers=[lambda x: x],
    )
    fb = ex.check(lambda x: (x * 2).to(torch.complex64))
    assert not fb.passed and "complex" in fb.message


# --------------------------------------------------------------------------------------------
# Checking never changes the reader's global state
# --------------------------------------------------------------------------------------------


def _global_state():
    import random

    return (
        torch.get_rng_state().clone(),
        np.random.get_state()[1].copy(),
        random.getstate(),
        torch.is_grad_enabled(),
        torch.get_default_dtype(),
    )


def _same(a, b):
    return torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2] and a[3:] == b[3:]


@pytest.mark.parametrize("exercise_id", sorted(ALL))
def test_checking_leaves_global_state_alone(exercise_id):
    ex = ALL[exercise_id]
    before = _global_state()
    for answer in [ex.reference_answer(), *ex.wrong_answers]:
        ex.evaluate(answer)
    assert _same(before, _global_state())


def test_the_readers_function_cannot_change_global_state_through_the_checker():
    import random

    def meddling(x):
        torch.manual_seed(123)
        np.random.seed(5)
        random.seed(7)
        torch.set_grad_enabled(False)
        torch.set_default_dtype(torch.float64)
        return x * 2

    ex = FunctionExercise(
        id="ch99-m",
        prompt="?",
        solution=lambda x: x * 2,
        make_inputs=lambda s: (torch.ones(3),),
        wrong_answers=[lambda x: x],
    )
    before = _global_state()
    assert ex.check(meddling).passed
    assert _same(before, _global_state())


def test_importing_the_exercises_does_not_move_the_global_rng():
    import subprocess
    import sys

    code = (
        "import torch; torch.manual_seed(0); s = torch.get_rng_state().clone(); "
        "from d2l_attn import exercises; exercises.all_exercises(); "
        "assert torch.equal(s, torch.get_rng_state()), 'importing the exercises moved the RNG'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_no_checker_seeds_a_global_generator():
    import re
    from pathlib import Path

    for path in Path(exercises.__file__).parent.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"torch\.(random\.)?manual_seed|np\.random\.seed|random\.seed|seed_everything", text), path


# --------------------------------------------------------------------------------------------
# "Do not use the library's X": enforced by watching calls, not by reading source text
# --------------------------------------------------------------------------------------------


def test_forbidden_library_calls_are_caught_however_they_are_reached():
    import functools

    from d2l_attn import masking

    ex = ALL["ch03-masked-softmax-fn"]
    alias = masking.masked_softmax
    for answer in [
        masking.masked_softmax,
        functools.partial(masking.masked_softmax),
        lambda s, v: alias(s, v),
        lambda s, v: masking.masked_softmax(s, valid_lens=v),
    ]:
        fb = ex.check(answer)
        assert not fb.passed and "d2l_attn.masking.masked_softmax" in fb.message, fb

    def from_scratch(scores, valid_lens):
        keep = torch.arange(scores.shape[-1])[None, None, :] < valid_lens[:, None, None]
        weights = torch.softmax(scores.masked_fill(~keep, float("-inf")), dim=-1)
        return torch.nan_to_num(weights, nan=0.0).masked_fill(~keep, 0.0)

    assert ex.check(from_scratch).passed


def test_self_attention_from_scratch_may_not_use_torchs_module():
    ex = ALL["ch05-self-attention-fn"]
    fb = ex.check(ex.wrong_answers[4])  # torch.nn.MultiheadAttention with the right weights
    assert not fb.passed and "torch.nn.MultiheadAttention" in fb.message


def test_pre_ln_may_not_call_the_block_itself():
    ex = ALL["ch07-pre-ln"]
    fb = ex.check(lambda block, x: block(x))
    assert not fb.passed and "instead of calling block(x)" in fb.message

    def from_parts(block, x):
        with torch.no_grad():
            n1 = block.addnorm1.norm(x)
            h = x + block.attention(n1).output
            return h + block.ffn(block.addnorm2.norm(h))

    assert ex.check(from_parts).passed  # calling the block's parts is what is asked


def test_the_watcher_restores_the_previous_profiler():
    import sys

    from d2l_attn.exercises.guard import watch_calls

    def mine(frame, event, arg):
        return None

    sys.setprofile(mine)
    try:
        with watch_calls(["d2l_attn"]) as hits:
            from d2l_attn.masking import causal_mask

            causal_mask(3)
        assert hits and hits[0] == "d2l_attn.masking.causal_mask"
        assert sys.getprofile() is mine
    finally:
        sys.setprofile(None)


# --------------------------------------------------------------------------------------------
# The widget: its own attempt counter, a marker for the web page, ipywidgets core API
# --------------------------------------------------------------------------------------------


def test_each_widget_counts_its_own_attempts():
    pytest.importorskip("ipywidgets")
    ex = NumberExercise(id="ch99-w", prompt="?", solution=1.0, wrong_answers=[2], hints=["first", "second"])
    one, two = ex.widget(), ex.widget()
    text_one, button_one = one.children[0], one.children[1]
    text_one.value = "2"
    button_one.click()
    assert one._d2l_last.hint == "first"
    button_one.click()
    assert one._d2l_last.hint == "second"
    two.children[0].value = "3"
    two.children[1].click()
    assert two._d2l_last.hint == "first"  # a fresh box starts over
    text_one.value = "abc"
    button_one.click()
    assert one._d2l_last.status == "invalid" and one._d2l_last.hint is None
    text_one.value = "1/1"
    button_one.click()
    assert one._d2l_last.passed
    assert ex._attempts == 0  # the widgets did not touch check()'s counter


def test_widget_displays_a_marker_for_the_web_page_then_itself():
    pytest.importorskip("ipywidgets")
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.display import display
    from IPython.utils.capture import capture_output

    InteractiveShell.instance()
    w = exercises.widget("ch03-softmax-value")
    with capture_output() as captured:
        display(w)
    outputs = [o.data for o in captured.outputs]
    assert len(outputs) == 2, outputs
    assert "data-exercise-id='ch03-softmax-value'" in outputs[0]["text/html"]
    assert outputs[1]["application/vnd.jupyter.widget-view+json"]["model_id"] == w.model_id


def test_tensor_widget_only_for_small_tensors():
    pytest.importorskip("ipywidgets")
    w = exercises.widget("ch03-dot-weights")
    w.children[0].value = "[[0.2, 0.3, 0.5], [0.1, 0.9, 0]]"
    w.children[1].click()
    assert w._d2l_last.status == "wrong" and w._d2l_last.hint
    big = TensorExercise(id="ch99-b", prompt="?", solution=torch.zeros(5, 5), wrong_answers=[torch.ones(5, 5)])
    with pytest.raises(TypeError, match="answered in code"):
        big.widget()
