"""Answer checkers with hints: the machinery behind every chapter's exercises.

An :class:`Exercise` knows how to check one kind of answer:

* :class:`NumberExercise` -- a number, given as ``int``/``float``/tensor or as text
  (``"0.25"``, ``"1/4"``, ``"2.5e-1"``), parsed with :class:`fractions.Fraction` -- never ``eval``;
* :class:`ChoiceExercise` -- one or several options, by letter (``"b"``, ``"a, c"``) or by text;
* :class:`TensorExercise` -- a tensor (or nested list / NumPy array) compared with a reference;
* :class:`FunctionExercise` -- a function that is *called* on several test inputs and compared
  with the library's reference implementation.

``exercise.check(answer)`` returns a :class:`Feedback` (truthy when correct) that renders as a
coloured box in Jupyter, with the next hint on a wrong answer. ``exercise.widget()`` builds an
answer box with ipywidgets for number and choice exercises (core API common to ipywidgets 7
and 8, so it works in Jupyter, JupyterLab and Colab).

Every exercise carries its reference ``solution`` and at least one ``wrong_answers`` example;
the test suite checks that the solution passes and every wrong answer fails.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Sequence

import numpy as np
import torch

__all__ = [
    "Feedback",
    "Exercise",
    "NumberExercise",
    "ChoiceExercise",
    "TensorExercise",
    "FunctionExercise",
    "AnswerError",
    "parse_number",
]


class AnswerError(ValueError):
    """The reader's answer has the wrong form (not a number, unknown option, wrong shape ...)."""


@dataclass(frozen=True)
class Feedback:
    """The result of checking one answer. ``bool(feedback)`` is ``passed``."""

    passed: bool
    message: str
    hint: str | None = None
    exercise_id: str = ""

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        head = "Correct!" if self.passed else "Not yet."
        text = f"[{self.exercise_id}] {head} {self.message}".strip()
        if self.hint and not self.passed:
            text += f"\nHint: {self.hint}"
        return text

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour, border, head = (
            ("#e8f5e9", "#2e7d32", "&#10004; Correct!") if self.passed else ("#fff3e0", "#e65100", "&#10008; Not yet.")
        )
        hint = (
            f"<div style='margin-top:4px'><b>Hint:</b> {html.escape(self.hint)}</div>"
            if self.hint and not self.passed
            else ""
        )
        return (
            f"<div style='background:{colour};border-left:4px solid {border};padding:6px 10px;"
            f"margin:4px 0;color:#222'><b>{head}</b> <small>{html.escape(self.exercise_id)}</small> "
            f"{html.escape(self.message)}{hint}</div>"
        )


def parse_number(answer: Any, *, name: str = "answer") -> float:
    """Turn a reader's numeric answer into a float without evaluating code.

    Accepts ints, floats, NumPy/PyTorch scalars and one-element tensors, and strings such as
    ``"0.25"``, ``" 1/4 "``, ``"-3e-2"``, ``"25%"``. Anything else raises :class:`AnswerError`.
    """
    if isinstance(answer, bool):
        raise AnswerError(f"{name} must be a number, got a bool ({answer})")
    if isinstance(answer, torch.Tensor):
        if answer.numel() != 1:
            raise AnswerError(f"{name} must be a single number, got a tensor of shape {tuple(answer.shape)}")
        return float(answer.item())
    if isinstance(answer, (int, float, np.integer, np.floating, Fraction)):
        return float(answer)
    if isinstance(answer, str):
        text = answer.strip().replace(" ", "").replace("_", "")
        percent = text.endswith("%")
        if percent:
            text = text[:-1]
        try:
            value = float(Fraction(text))
        except (ValueError, ZeroDivisionError):
            raise AnswerError(
                f"could not read {answer!r} as a number; write e.g. 0.25, 1/4, 2.5e-1 or 25%"
            ) from None
        return value / 100 if percent else value
    raise AnswerError(f"{name} must be a number (or text such as '1/4'), got {type(answer).__name__}")


@dataclass
class Exercise:
    """Base class: an identified question with hints, a reference solution and wrong examples.

    Subclasses implement :meth:`_check`, returning ``(passed, message)`` or raising
    :class:`AnswerError` for a malformed answer.
    """

    id: str
    prompt: str
    hints: Sequence[str] = ()
    solution: Any = None
    wrong_answers: Sequence[Any] = ()
    explanation: str = ""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"ch\d\d-[a-z0-9-]+", self.id):
            raise ValueError(f"exercise id must look like 'ch01-name', got {self.id!r}")
        if self.solution is None:
            raise ValueError(f"exercise {self.id} needs a reference solution")
        if not self.wrong_answers:
            raise ValueError(f"exercise {self.id} needs at least one wrong answer for its tests")
        self._attempts = 0

    # -- checking -----------------------------------------------------------------------------
    def _check(self, answer: Any) -> tuple[bool, str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def check(self, answer: Any) -> Feedback:
        """Check ``answer`` and return feedback (with the next hint when it is wrong)."""
        try:
            passed, message = self._check(answer)
        except AnswerError as exc:
            passed, message = False, str(exc)
        if passed:
            message = (message + " " + self.explanation).strip()
            return Feedback(True, message, None, self.id)
        hint = None
        if self.hints:
            hint = self.hints[min(self._attempts, len(self.hints) - 1)]
        self._attempts += 1
        return Feedback(False, message, hint, self.id)

    def reference_answer(self) -> Any:
        """The reference solution in the form ``check`` accepts."""
        return self.solution

    # -- widget -------------------------------------------------------------------------------
    def widget(self):
        """An ipywidgets answer box: type an answer, press *Check*, read the feedback."""
        import ipywidgets as widgets
        from IPython.display import HTML, display

        box = widgets.Text(placeholder="your answer", description="Answer:")
        button = widgets.Button(description="Check", button_style="primary")
        output = widgets.Output()

        def on_click(_):
            output.clear_output()
            with output:
                display(HTML(self.check(box.value)._repr_html_()))

        button.on_click(on_click)
        return widgets.VBox([widgets.HTML(f"<b>{html.escape(self.id)}</b>: {html.escape(self.prompt)}"),
                             widgets.HBox([box, button]), output])


@dataclass
class NumberExercise(Exercise):
    """A numeric answer, correct within ``rtol``/``atol`` of ``solution``."""

    rtol: float = 1e-3
    atol: float = 1e-6

    def _check(self, answer: Any) -> tuple[bool, str]:
        value = parse_number(answer)
        if not math.isfinite(value):
            raise AnswerError(f"the answer must be a finite number, got {value}")
        target = float(self.solution)
        if math.isclose(value, target, rel_tol=self.rtol, abs_tol=self.atol):
            return True, f"{value:g} is right."
        return False, f"{value:g} is not the expected value."


@dataclass
class ChoiceExercise(Exercise):
    """Multiple choice. ``options`` are labelled a, b, c, ...; ``solution`` is a set of letters.

    The reader may answer with letters (``"b"``, ``"a,c"``, ``["a", "c"]``) or with the exact
    option text. With several correct options, all of them (and no other) must be chosen.
    """

    options: Sequence[str] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.options) < 2:
            raise ValueError(f"exercise {self.id} needs at least two options")
        letters = self._letters()
        try:
            sol = self._normalize(self.solution)
        except AnswerError:
            sol = set()
        if not sol or not sol <= set(letters):
            raise ValueError(f"exercise {self.id}: solution {self.solution!r} is not among {letters}")

    def _letters(self) -> list[str]:
        return [chr(ord("a") + i) for i in range(len(self.options))]

    def _normalize(self, answer: Any) -> set[str]:
        letters = self._letters()
        by_text = {opt.strip().lower(): letter for opt, letter in zip(self.options, letters)}
        if isinstance(answer, str):
            text = answer.strip().lower()
            if text in by_text:
                return {by_text[text]}
            parts = [p for p in re.split(r"[\s,;]+", text.replace("(", "").replace(")", "")) if p]
        elif isinstance(answer, (list, tuple, set, frozenset)):
            parts = []
            for item in answer:
                if not isinstance(item, str):
                    raise AnswerError(f"choose options by letter, e.g. 'a' or ['a', 'c'], got {item!r}")
                text = item.strip().lower()
                parts.append(by_text.get(text, text))
        else:
            raise AnswerError(f"choose options by letter, e.g. 'b' or 'a, c', got {type(answer).__name__}")
        unknown = [p for p in parts if p not in letters]
        if unknown:
            raise AnswerError(f"unknown option(s) {unknown}; choose among {', '.join(letters)}")
        return set(parts)

    def _check(self, answer: Any) -> tuple[bool, str]:
        chosen = self._normalize(answer)
        if not chosen:
            raise AnswerError("choose at least one option")
        correct = self._normalize(self.solution)
        if chosen == correct:
            return True, f"({', '.join(sorted(chosen))}) is right."
        missing, extra = correct - chosen, chosen - correct
        parts = []
        if extra:
            parts.append(f"{', '.join(sorted(extra))} should not be chosen")
        if missing and len(correct) > 1:
            parts.append(f"{len(missing)} correct option(s) missing")
        return False, "; ".join(parts) + "." if parts else "That is not the right choice."

    def widget(self):
        """Radio buttons (one answer) or checkboxes (several answers) with a *Check* button."""
        import ipywidgets as widgets
        from IPython.display import HTML, display

        letters = self._letters()
        labels = [f"({l}) {o}" for l, o in zip(letters, self.options)]
        multi = len(self._normalize(self.solution)) > 1
        if multi:
            boxes = [widgets.Checkbox(value=False, description=lab, indent=False) for lab in labels]
            chooser = widgets.VBox(boxes)
            read = lambda: [l for l, b in zip(letters, boxes) if b.value]  # noqa: E731
        else:
            chooser = widgets.RadioButtons(options=labels, value=None, layout=widgets.Layout(width="auto"))
            read = lambda: letters[labels.index(chooser.value)] if chooser.value else ""  # noqa: E731
        button = widgets.Button(description="Check", button_style="primary")
        output = widgets.Output()

        def on_click(_):
            output.clear_output()
            with output:
                display(HTML(self.check(read())._repr_html_()))

        button.on_click(on_click)
        return widgets.VBox([widgets.HTML(f"<b>{html.escape(self.id)}</b>: {html.escape(self.prompt)}"),
                             chooser, button, output])


def _as_tensor(answer: Any, name: str = "answer") -> torch.Tensor:
    if isinstance(answer, torch.Tensor):
        return answer.detach()
    if isinstance(answer, (list, tuple, np.ndarray, int, float)) and not isinstance(answer, bool):
        try:
            return torch.as_tensor(np.asarray(answer, dtype=np.float64))
        except (TypeError, ValueError):
            pass
    raise AnswerError(f"{name} must be a tensor, a NumPy array or a nested list of numbers, got {type(answer).__name__}")


@dataclass
class TensorExercise(Exercise):
    """A tensor answer compared with ``solution`` (a tensor) by shape, then ``assert_close``."""

    rtol: float = 1e-4
    atol: float = 1e-5

    def _check(self, answer: Any) -> tuple[bool, str]:
        got = _as_tensor(answer)
        expected = _as_tensor(self.solution, "solution")
        if tuple(got.shape) != tuple(expected.shape):
            return False, f"expected shape {tuple(expected.shape)}, got {tuple(got.shape)}."
        got = got.to(torch.float64)
        expected = expected.to(torch.float64)
        if not torch.isfinite(got).all():
            return False, "your tensor contains NaN or infinite values."
        if torch.allclose(got, expected, rtol=self.rtol, atol=self.atol):
            return True, "the values match."
        err = (got - expected).abs().max().item()
        return False, f"the shape is right but the values differ (largest difference {err:.3g})."

    def widget(self):  # a tensor is answered in code, not typed into a box
        raise TypeError(f"{self.id} is answered in code: call check(your_tensor)")


@dataclass
class FunctionExercise(Exercise):
    """A function answer, called on ``make_inputs(seed)`` for several seeds and compared with ``solution``.

    ``make_inputs(seed)`` returns a tuple of positional arguments. The reader's function runs on
    copies of the inputs (it may not modify them); exceptions it raises become feedback.
    """

    make_inputs: Callable[[int], tuple] | None = None
    num_trials: int = 5
    rtol: float = 1e-5
    atol: float = 1e-6

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.make_inputs is None:
            raise ValueError(f"exercise {self.id} needs make_inputs")

    def _check(self, answer: Any) -> tuple[bool, str]:
        if not callable(answer):
            raise AnswerError(f"pass your function itself (no parentheses), got {type(answer).__name__}")
        for trial in range(self.num_trials):
            args = self.make_inputs(trial)
            expected = self.solution(*args)
            copies = tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)
            try:
                got = answer(*copies)
            except Exception as exc:  # the reader's code failed: report it, do not crash
                return False, f"your function raised {type(exc).__name__}: {exc} (on test input {trial + 1})."
            try:
                got_t = _as_tensor(got, "your function's result")
            except AnswerError as exc:
                return False, str(exc) + "."
            exp_t = _as_tensor(expected, "solution")
            if tuple(got_t.shape) != tuple(exp_t.shape):
                shapes = ", ".join(str(tuple(a.shape)) for a in args if isinstance(a, torch.Tensor))
                return False, (
                    f"on inputs of shapes {shapes} your result has shape {tuple(got_t.shape)}, "
                    f"expected {tuple(exp_t.shape)}."
                )
            if not torch.allclose(got_t.to(torch.float64), exp_t.to(torch.float64), rtol=self.rtol, atol=self.atol,
                                  equal_nan=False):
                err = (got_t.to(torch.float64) - exp_t.to(torch.float64)).abs().max().item()
                return False, f"wrong values on test input {trial + 1} (largest difference {err:.3g})."
        return True, f"matches the reference on {self.num_trials} random inputs."

    def widget(self):
        raise TypeError(f"{self.id} is answered in code: call check(your_function)")


@dataclass
class _Registry:
    exercises: dict[str, Exercise] = field(default_factory=dict)

    def add(self, exercise: Exercise) -> Exercise:
        if exercise.id in self.exercises:
            raise ValueError(f"duplicate exercise id {exercise.id}")
        self.exercises[exercise.id] = exercise
        return exercise
