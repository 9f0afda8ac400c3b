"""Answer checkers with hints: the machinery behind every chapter's exercises.

An :class:`Exercise` knows how to check one kind of answer:

* :class:`NumberExercise` -- a number, given as ``int``/``float``/tensor or as text
  (``"0.25"``, ``"1/4"``, ``"2.5e-1"``, ``"25%"``), read by a small grammar -- never ``eval``;
* :class:`ChoiceExercise` -- one or several options, by letter (``"b"``, ``"a, c"``) or by text;
* :class:`TensorExercise` -- a tensor (or NumPy array, nested list, or its text
  ``"[[0.1, 0.2], ...]"``) compared with a reference;
* :class:`FunctionExercise` -- a function that is *called* on several test inputs and compared
  with a reference implementation (optionally without calling forbidden code).

The base class and the number parser live in :mod:`.base` (re-exported here).
``exercise.evaluate(answer)`` returns a :class:`Verdict` -- ``correct``, ``wrong``, ``invalid``
(malformed or refused input) or ``starter`` (the untouched starter code) -- and never changes
the caller's global state. ``exercise.check(answer)`` turns it into :class:`Feedback` with the
next hint: the first wrong answer gets the first hint (a nudge), the second the next one, and so
on; invalid and starter answers are not attempts. ``exercise.widget()`` builds an answer box with
ipywidgets (core API common to ipywidgets 7 and 8: Jupyter, JupyterLab, Colab), with its own
attempt counter.

The grammar of typed answers and every message live in :mod:`.answers`; the book exports them
with each exercise's rules (:mod:`.web`) to the browser checker, which gives the same verdicts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from . import answers
from .answers import AnswerError, echo, fail, message
from .base import Exercise, Feedback, Verdict, _shown, parse_number
from .guard import watch_calls

__all__ = [
    "Verdict",
    "Feedback",
    "Exercise",
    "NumberExercise",
    "ChoiceExercise",
    "TensorExercise",
    "FunctionExercise",
    "AnswerError",
    "parse_number",
]

#: tensors with at most this many entries can be typed into a text box (notebook and web page)
TYPEABLE_TENSOR_ENTRIES = 16


@dataclass
class NumberExercise(Exercise):
    """A numeric answer, correct when ``math.isclose(answer, solution, rel_tol=rtol, abs_tol=atol)``."""

    rtol: float = 1e-3
    atol: float = 1e-6

    kind = "number"

    def _check(self, answer: Any) -> tuple[str, str]:
        value = parse_number(answer)
        shown = echo(answer) if isinstance(answer, str) else _shown(answer)
        if answers.isclose(value, float(self.solution), self.rtol, self.atol):
            return "correct", message("number_right", answer=shown)
        return "wrong", message("number_wrong", answer=shown)

    def _controls(self):
        from .answer_box import text_box

        return text_box("a number, e.g. 0.25 or 1/4")


@dataclass
class ChoiceExercise(Exercise):
    """Multiple choice. ``options`` are labelled a, b, c, ...; ``solution`` is a set of letters.

    The reader may answer with letters (``"b"``, ``"a,c"``, ``["a", "c"]``) or with the exact
    option text. With several correct options, all of them (and no other) must be chosen. A wrong
    answer is never told which options were wrong (no answering by elimination), only how many
    options are correct.
    """

    options: Sequence[str] = ()

    kind = "choice"

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.options) < 2:
            raise ValueError(f"exercise {self.id} needs at least two options")
        letters = self.letters()
        try:
            sol = self._normalize(self.solution)
        except AnswerError:
            sol = set()
        if not sol or not sol <= set(letters):
            raise ValueError(f"exercise {self.id}: solution {self.solution!r} is not among {letters}")

    def letters(self) -> list[str]:
        return [chr(ord("a") + i) for i in range(len(self.options))]

    def option_keys(self) -> list[str]:
        return [answers.option_key(o) for o in self.options]

    def correct(self) -> set[str]:
        return self._normalize(self.solution)

    def _normalize(self, answer: Any) -> set[str]:
        letters = self.letters()
        by_key = dict(zip(self.option_keys(), letters))
        if isinstance(answer, str):
            if len(answer) > answers.MAX_CHOICE_CHARS:
                raise fail("too_long", length=len(answer), limit=answers.MAX_CHOICE_CHARS)
            key = answers.option_key(answer)
            if key in by_key:
                return {by_key[key]}
            parts = answers.split_choice_text(answer)
        elif isinstance(answer, (list, tuple, set, frozenset)):
            parts = []
            for item in answer:
                if not isinstance(item, str):
                    raise fail("choice_type", type=type(item).__name__)
                key = answers.option_key(item)
                parts.append(by_key.get(key, key))
        else:
            raise fail("choice_type", type=type(answer).__name__)
        unknown = list(dict.fromkeys(p for p in parts if p not in letters))
        if unknown:
            raise fail("choice_unknown", unknown=echo(", ".join(unknown)), letters=", ".join(letters))
        if not parts:
            raise fail("choice_empty")
        return set(parts)

    def _check(self, answer: Any) -> tuple[str, str]:
        chosen = self._normalize(answer)
        correct = self.correct()
        if len(correct) == 1 and len(chosen) > 1:
            raise fail("choice_one")
        if chosen == correct:
            return "correct", message("choice_right", chosen=", ".join(sorted(chosen)))
        if len(correct) == 1:
            return "wrong", message("choice_wrong_one")
        if len(chosen) != len(correct):
            return "wrong", message("choice_wrong_count", chosen=len(chosen), correct=len(correct))
        return "wrong", message("choice_wrong_set", correct=len(correct))

    def _controls(self):
        """Radio buttons (one answer) or checkboxes (several answers)."""
        import ipywidgets as widgets

        letters = self.letters()
        labels = [f"({l}) {o}" for l, o in zip(letters, self.options)]
        if len(self.correct()) > 1:
            boxes = [widgets.Checkbox(value=False, description=lab, indent=False) for lab in labels]
            return widgets.VBox(boxes), lambda: [l for l, b in zip(letters, boxes) if b.value]
        chooser = widgets.RadioButtons(options=labels, value=None, layout=widgets.Layout(width="auto"))
        return chooser, lambda: letters[labels.index(chooser.value)] if chooser.value else ""


def _as_array(answer: Any, what: str = "answer") -> np.ndarray:
    """A real float64 array from a tensor, array or nested list; complex input is refused."""
    if isinstance(answer, torch.Tensor):
        if answer.is_complex():
            raise fail("tensor_complex")
        return answer.detach().cpu().to(torch.float64).numpy()
    if isinstance(answer, (np.ndarray, list, tuple, int, float, np.integer, np.floating)) and not isinstance(
        answer, bool
    ):
        try:
            array = np.asarray(answer)
        except (TypeError, ValueError):
            raise fail("tensor_type", type=type(answer).__name__) from None
        if np.iscomplexobj(array):
            raise fail("tensor_complex")
        if array.dtype.kind not in "biuf":
            raise fail("tensor_type", type=type(answer).__name__)
        return array.astype(np.float64)
    raise fail("tensor_type", type=type(answer).__name__)


@dataclass
class TensorExercise(Exercise):
    """A tensor answer compared with ``solution``: same shape, then every entry within
    ``atol + rtol * |expected|`` (torch.allclose's rule). Small tensors can be typed as text.

    ``starter`` is the placeholder the notebook's answer cell starts with: checking it unchanged
    is not an attempt.
    """

    rtol: float = 1e-4
    atol: float = 1e-5
    starter: Any = None

    kind = "tensor"

    def expected(self) -> np.ndarray:
        return _as_array(self.solution, "solution")

    def typeable(self) -> bool:
        return self.expected().size <= TYPEABLE_TENSOR_ENTRIES

    def _check(self, answer: Any) -> tuple[str, str]:
        expected = self.expected()
        if isinstance(answer, str):
            parsed = answers.parse_tensor_text(answer)
            shape, values = parsed.shape, list(parsed.values)
        else:
            got = _as_array(answer)
            if (
                self.starter is not None
                and got.shape == tuple(np.shape(self.starter))
                and np.array_equal(got, _as_array(self.starter))
            ):
                return "starter", message("starter")
            shape = got.shape
            values = got.ravel().tolist() if shape == expected.shape else []
        if tuple(shape) != expected.shape:
            return "wrong", message(
                "tensor_shape", expected=answers.format_shape(expected.shape), got=answers.format_shape(shape)
            )
        if not all(math.isfinite(v) for v in values):
            return "wrong", message("tensor_nonfinite")
        bad = answers.count_not_close(values, expected.ravel().tolist(), self.rtol, self.atol)
        if bad == 0:
            return "correct", message("tensor_right", total=len(values))
        return "wrong", message("tensor_wrong", bad=bad, total=len(values))

    def _controls(self):
        if not self.typeable():
            return None
        from .answer_box import text_box

        return text_box(f"nested lists, shape {answers.format_shape(self.expected().shape)}")


@dataclass
class FunctionExercise(Exercise):
    """A function answer, called on ``make_inputs(seed)`` for several seeds and compared with ``solution``.

    ``make_inputs(seed)`` returns a tuple of positional arguments (drawn from a private
    ``torch.Generator``, never the global one). The reader's function runs on copies of the
    inputs (it may not modify them); exceptions it raises become feedback; raising
    ``NotImplementedError`` (the starter cell) is not an attempt. ``forbidden`` lists code the
    function may not call (see :func:`.guard.watch_calls`), e.g. ``["d2l_attn"]`` when the
    chapter asks for an implementation without the library; ``forbidden_reason`` says why, in the
    reader's terms. The reference ``solution`` itself is exempt (it may use the library).
    """

    make_inputs: Callable[[int], tuple] | None = None
    num_trials: int = 5
    rtol: float = 1e-5
    atol: float = 1e-6
    forbidden: Sequence[str] = ()
    forbidden_reason: str = ""

    kind = "function"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.make_inputs is None:
            raise ValueError(f"exercise {self.id} needs make_inputs")

    def _check(self, answer: Any) -> tuple[str, str]:
        if not callable(answer):
            raise fail("function_type", type=type(answer).__name__)
        watched = tuple(self.forbidden) if answer is not self.solution else ()
        for trial in range(self.num_trials):
            args = self.make_inputs(trial)
            expected = self.solution(*args)
            copies = tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)
            with watch_calls(watched) as hits:
                try:
                    got = answer(*copies)
                except NotImplementedError:
                    return "starter", message("function_starter")
                except (Exception, SystemExit) as exc:  # the reader's code failed (or exited): report it
                    if hits:
                        break
                    return "wrong", message("function_raised", type=type(exc).__name__, error=exc, trial=trial + 1)
            if hits:
                break
            try:
                got_t = _as_array(got)
            except AnswerError as exc:
                return "wrong", message("function_result", error=exc)
            exp_t = _as_array(expected, "solution")
            if got_t.shape != exp_t.shape:
                shapes = ", ".join(str(tuple(a.shape)) for a in args if isinstance(a, torch.Tensor)) or "given"
                return "wrong", message(
                    "function_shape", shapes=shapes, got=tuple(got_t.shape), expected=tuple(exp_t.shape)
                )
            if not np.allclose(got_t, exp_t, rtol=self.rtol, atol=self.atol, equal_nan=False):
                with np.errstate(invalid="ignore"):
                    err = float(np.nan_to_num(np.abs(got_t - exp_t), nan=np.inf).max())
                return "wrong", answers.MESSAGES["function_values"].format(trial=trial + 1, error=err)
        else:
            return "correct", message("function_right", trials=self.num_trials)
        reason = self.forbidden_reason or f"this exercise asks you to write it without {' or '.join(self.forbidden)}."
        return "wrong", message("function_forbidden", name=hits[0], reason=reason)
