"""Every exercise: its reference solution passes its checker, every wrong answer fails."""

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
    assert feedback.hint, "a failed answer must come with a hint"
    assert feedback.message


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
    assert not fb.passed and "could not read" in fb.message
    assert "hacked" not in capfd.readouterr().out


def test_choice_by_letters_text_and_lists():
    ex = ChoiceExercise(id="ch99-c", prompt="?", options=["red", "green", "blue"], solution={"a", "c"},
                        wrong_answers=["a"])
    assert ex.check("a, c").passed and ex.check("(c) (a)").passed and ex.check(["red", "blue"]).passed
    assert not ex.check("a").passed
    fb = ex.check("a, z")
    assert not fb.passed and "unknown option" in fb.message
    single = ChoiceExercise(id="ch99-d", prompt="?", options=["x", "y"], solution="b", wrong_answers=["a"])
    assert single.check("Y").passed and not single.check("x").passed


def test_tensor_exercise_messages():
    ex = TensorExercise(id="ch99-t", prompt="?", solution=torch.eye(2), wrong_answers=[torch.zeros(2, 2)])
    assert "expected shape (2, 2)" in ex.check(torch.ones(3)).message
    assert "NaN" in ex.check(torch.full((2, 2), float("nan"))).message
    assert ex.check([[1, 0], [0, 1]]).passed
    assert "must be a tensor" in ex.check("eye").message


def test_function_exercise_reports_exceptions_and_shapes():
    ex = FunctionExercise(id="ch99-f", prompt="?", solution=lambda x: x * 2, make_inputs=lambda s: (torch.ones(3),),
                          wrong_answers=[lambda x: x])

    def boom(x):
        raise RuntimeError("oops")

    assert "raised RuntimeError: oops" in ex.check(boom).message
    assert "has shape (1,)" in ex.check(lambda x: x.sum(0, keepdim=True)).message
    assert "pass your function itself" in ex.check(3).message
    assert ex.check(lambda x: x + x).passed


def test_function_exercise_inputs_are_copied():
    seen = []

    def mutating(x):
        x.add_(100)
        return x

    ex = FunctionExercise(id="ch99-g", prompt="?", solution=lambda x: x.clone(),
                          make_inputs=lambda s: (seen.append(torch.ones(2)) or seen[-1],), wrong_answers=[mutating])
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
