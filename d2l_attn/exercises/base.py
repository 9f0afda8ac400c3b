"""The base of every exercise: a verdict, feedback with hints, a number parser, :class:`Exercise`.

:class:`Exercise` holds an exercise's identity, hints, reference solution and listed wrong answers,
turns a subclass's ``_check`` into a :class:`Verdict` (``correct``, ``wrong``, ``invalid`` or
``starter``) without changing the caller's global state, and gives the next hint after each wrong
attempt. The kinds of answer (number, choice, tensor, function) are in :mod:`.core`.
"""

from __future__ import annotations

import html
import math
import numbers
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from . import answers
from .answers import AnswerError, echo, fail
from .guard import isolated_state

__all__ = ["Verdict", "Feedback", "Exercise", "AnswerError", "parse_number"]


@dataclass(frozen=True)
class Verdict:
    """What an answer is worth, before hints: ``status`` and a message for the reader."""

    status: str  # "correct" | "wrong" | "invalid" | "starter"
    message: str


@dataclass(frozen=True)
class Feedback:
    """The result of checking one answer. ``bool(feedback)`` is ``passed``."""

    passed: bool
    message: str
    hint: str | None = None
    exercise_id: str = ""
    status: str = ""

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        head = answers.HEADS.get(self.status, "Correct!" if self.passed else "Not yet.")
        text = f"[{self.exercise_id}] {head} {self.message}".strip()
        if self.hint and not self.passed:
            text += f"\nHint: {self.hint}"
        return text

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour, border, mark = ("#e8f5e9", "#2e7d32", "&#10004;") if self.passed else ("#fff3e0", "#e65100", "&#10008;")
        head = answers.HEADS.get(self.status, "Correct!" if self.passed else "Not yet.")
        hint = (
            f"<div style='margin-top:4px'><b>Hint:</b> {html.escape(self.hint)}</div>"
            if self.hint and not self.passed
            else ""
        )
        return (
            f"<div class='d2l-feedback' data-exercise-id='{html.escape(self.exercise_id)}' "
            f"data-status='{html.escape(self.status)}' style='background:{colour};border-left:4px solid {border};"
            f"padding:6px 10px;margin:4px 0;color:#222'><b>{mark} {head}</b> "
            f"<small>{html.escape(self.exercise_id)}</small> {html.escape(self.message)}{hint}</div>"
        )


def _shown(answer: Any) -> str:
    """How a non-text numeric answer is quoted back."""
    if isinstance(answer, (int, np.integer)):
        return str(int(answer))
    try:
        return repr(float(answer))
    except (TypeError, ValueError, OverflowError):
        return type(answer).__name__


def parse_number(answer: Any, *, name: str = "answer") -> float:
    """Turn a reader's numeric answer into a finite float without evaluating code.

    Accepts ints, floats, NumPy/PyTorch scalars and one-element tensors, and text in the grammar
    of :mod:`.answers` (``"0.25"``, ``" 1/4 "``, ``"-3e-2"``, ``"25%"``). Anything else --
    including complex numbers, huge exponents and values beyond the float range -- raises
    :class:`AnswerError` with a message for the reader.
    """
    if isinstance(answer, str):
        return answers.parse_number_text(answer)
    if isinstance(answer, (bool, np.bool_)):
        raise fail("bool", answer=answer)
    if isinstance(answer, torch.Tensor):
        if answer.numel() != 1:
            raise fail("one_number", shape=tuple(answer.shape))
        if answer.is_complex():
            raise fail("complex", answer=echo(str(answer.item())))
        if answer.dtype == torch.bool:
            raise fail("bool", answer=bool(answer.item()))
        answer = answer.item()
    if isinstance(answer, (complex, np.complexfloating)):
        raise fail("complex", answer=echo(str(answer)))
    if not isinstance(answer, numbers.Real):
        raise fail("number_type", type=type(answer).__name__)
    try:
        value = float(answer)
    except OverflowError:
        try:
            shown = echo(str(answer))
        except ValueError:  # more digits than Python will print
            shown = "that number"
        raise fail("overflow", answer=shown) from None
    if not math.isfinite(value):
        raise fail("not_finite", answer=_shown(answer))
    return value


@dataclass
class Exercise:
    """Base class: an identified question with hints, a reference solution and wrong examples.

    Subclasses implement :meth:`_check`, returning ``(status, message)`` or raising
    :class:`AnswerError` for a malformed answer.
    """

    id: str
    prompt: str
    hints: Sequence[str] = ()
    solution: Any = None
    wrong_answers: Sequence[Any] = ()
    explanation: str = ""

    kind = "exercise"

    def __post_init__(self) -> None:
        if not re.fullmatch(r"ch\d\d-[a-z0-9-]+", self.id):
            raise ValueError(f"exercise id must look like 'ch01-name', got {self.id!r}")
        if self.solution is None:
            raise ValueError(f"exercise {self.id} needs a reference solution")
        if not self.wrong_answers:
            raise ValueError(f"exercise {self.id} needs at least one wrong answer for its tests")
        self._attempts = 0

    # -- checking -----------------------------------------------------------------------------
    def _check(self, answer: Any) -> tuple[str, str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def evaluate(self, answer: Any) -> Verdict:
        """The verdict on ``answer`` (no hint, no attempt counted, no global state changed)."""
        with isolated_state():
            try:
                status, text = self._check(answer)
            except AnswerError as exc:
                status, text = "invalid", str(exc)
        return Verdict(status, text)

    def hint_for(self, wrong_before: int) -> str | None:
        """The hint after ``wrong_before`` earlier wrong answers: the first, then the next ...
        (the last one repeats)."""
        if not self.hints:
            return None
        return self.hints[min(wrong_before, len(self.hints) - 1)]

    def feedback(self, verdict: Verdict, wrong_before: int = 0) -> Feedback:
        """Feedback for a verdict: the explanation when correct, the next hint when wrong."""
        if verdict.status == "correct":
            text = verdict.message + (" " + self.explanation if self.explanation else "")
            return Feedback(True, text, None, self.id, "correct")
        hint = self.hint_for(wrong_before) if verdict.status == "wrong" else None
        return Feedback(False, verdict.message, hint, self.id, verdict.status)

    def check(self, answer: Any) -> Feedback:
        """Check ``answer`` and return feedback (with the next hint when it is wrong)."""
        verdict = self.evaluate(answer)
        feedback = self.feedback(verdict, self._attempts)
        if verdict.status == "wrong":
            self._attempts += 1
        return feedback

    def reference_answer(self) -> Any:
        """The reference solution in the form ``check`` accepts."""
        return self.solution

    # -- widget -------------------------------------------------------------------------------
    def _controls(self):
        """(widget to answer with, function reading the answer from it); None if not typeable."""
        return None

    def marker_html(self) -> str:
        """The exercise's title line; on the book's web page it marks where the browser checker goes."""
        return (
            f"<div class='d2l-exercise' data-exercise-id='{html.escape(self.id)}' "
            f"data-exercise-kind='{self.kind}'><b>{html.escape(self.id)}</b>: {html.escape(self.prompt)}</div>"
        )

    def widget(self) -> Any:
        """An ipywidgets answer box: type an answer, press *Check*, read the feedback.

        Displaying it shows the title line (an HTML output that marks the exercise for the book's
        browser checker) and the box; each box counts its own attempts for the hints.
        """
        from .answer_box import build_widget

        return build_widget(self)
