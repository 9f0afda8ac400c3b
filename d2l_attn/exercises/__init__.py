"""Auto-checked exercises for every chapter.

In a notebook::

    from d2l_attn.exercises import check, widget
    check("ch01-soft-lookup-value", 22.7)     # feedback, with a hint when wrong
    widget("ch01-cues")                      # an answer box with a Check button

Each chapter's exercises live in ``d2l_attn/exercises/chNN.py``; see :mod:`.core` for the
checkers and :mod:`.answers` for the grammar of typed answers. Answers are parsed (numbers by a
small grammar, options by letter, small tensors as nested lists) or called (functions), never
evaluated as code. The book exports every exercise's rules to a browser checker
(:mod:`.web`), so that the web page gives the same verdicts without a kernel.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from .core import (
    AnswerError,
    ChoiceExercise,
    Exercise,
    Feedback,
    FunctionExercise,
    NumberExercise,
    TensorExercise,
    Verdict,
    parse_number,
)

__all__ = [
    "check",
    "widget",
    "get",
    "all_exercises",
    "CHAPTERS",
    "Exercise",
    "Feedback",
    "Verdict",
    "NumberExercise",
    "ChoiceExercise",
    "TensorExercise",
    "FunctionExercise",
    "AnswerError",
    "parse_number",
]


def _discover_chapters() -> tuple[str, ...]:
    import pkgutil

    names = (m.name for m in pkgutil.iter_modules(__path__))
    return tuple(sorted(n for n in names if re.fullmatch(r"ch\d\d", n)))


#: chapter modules that define exercises (``chNN.py`` beside this file, found automatically)
CHAPTERS = _discover_chapters()


def _chapter_exercises(chapter: str) -> dict[str, Exercise]:
    module = importlib.import_module(f"{__name__}.{chapter}")
    return {ex.id: ex for ex in module.EXERCISES}


def all_exercises() -> dict[str, Exercise]:
    """Every exercise of every chapter, by id."""
    out: dict[str, Exercise] = {}
    for chapter in CHAPTERS:
        out.update(_chapter_exercises(chapter))
    return out


def get(exercise_id: str) -> Exercise:
    """The exercise with this id (e.g. ``"ch01-cues"``)."""
    match = re.fullmatch(r"(ch\d\d)-[a-z0-9-]+", str(exercise_id))
    if not match or match.group(1) not in CHAPTERS:
        raise ValueError(f"unknown exercise id {exercise_id!r}; ids look like 'ch01-cues'")
    exercises = _chapter_exercises(match.group(1))
    if exercise_id not in exercises:
        raise ValueError(
            f"unknown exercise id {exercise_id!r}; chapter {match.group(1)} has {', '.join(sorted(exercises))}"
        )
    return exercises[exercise_id]


def check(exercise_id: str, answer: Any) -> Feedback:
    """Check a reader's answer to one exercise and return the feedback."""
    return get(exercise_id).check(answer)


def widget(exercise_id: str) -> Any:
    """An ipywidgets answer box for a number, choice or small tensor exercise."""
    return get(exercise_id).widget()
