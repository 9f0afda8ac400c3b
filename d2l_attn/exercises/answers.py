"""How a typed answer is read: the grammar of numbers, option lists and small tensors.

The same rules run in two places: here, behind ``check`` and the notebook widgets, and in the
book's browser checker (``book/_ext/exercises.js``), which reads the limits, the whitespace set
and every message of this module from the data the book build exports
(:func:`d2l_attn.exercises.web.export`). A parity test runs both on the same answers and
requires identical verdicts, so a change here must be mirrored there (the test says where).

Nothing here evaluates text. Numbers follow one small grammar, parsed with regular expressions
and converted by ``float()`` of a canonical decimal string (correctly rounded, as JavaScript's
``Number()`` is) or by one division of two integers below 10^15 (exact operands, one IEEE
rounding, as in JavaScript):

* decimals ``0.25``, ``.5``, ``5.``, ``-2.5e-1``, ``1E3`` (exponent at most 3 digits);
* fractions ``1/4``, ``-3/8`` (integers of at most 15 digits);
* an optional ``%`` at the end (divides by 100);
* spaces, thin and non-breaking spaces and ``_`` anywhere are ignored; ``−`` (U+2212) is a minus.

Anything else is refused with a clear message, fast: ``1e200000000`` (exponent out of range),
``1e400`` (too large), ``1+2j`` (complex), ``2**10`` or ``__import__(...)`` (not a number).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "message",
    "fail",
    "strip",
    "echo",
    "ascii_lower",
    "format_shape",
    "parse_number_text",
    "option_key",
    "split_choice_text",
    "parse_tensor_text",
    "count_not_close",
    "isclose",
    "AnswerError",
    "TensorText",
    "WHITESPACE",
    "MAX_NUMBER_CHARS",
    "MAX_CHOICE_CHARS",
    "MAX_TENSOR_CHARS",
    "MAX_EXPONENT_DIGITS",
    "MAX_FRACTION_DIGITS",
    "MAX_TENSOR_ENTRIES",
    "MAX_TENSOR_DEPTH",
    "ECHO_CHARS",
    "LIMITS",
    "MESSAGES",
    "HEADS",
]

# -- limits and character classes (exported to the browser) --------------------------------------

#: characters ignored around answers (and, in numbers, everywhere)
WHITESPACE = " \t\n\r\f\v\u00a0\u2007\u2009\u202f\u3000"
MAX_NUMBER_CHARS = 100
MAX_CHOICE_CHARS = 500
MAX_TENSOR_CHARS = 4000
MAX_EXPONENT_DIGITS = 3
MAX_FRACTION_DIGITS = 15
MAX_TENSOR_ENTRIES = 1000
MAX_TENSOR_DEPTH = 8
ECHO_CHARS = 40  # a reader's text is quoted back in messages, cut to this many characters

LIMITS = {
    "number_chars": MAX_NUMBER_CHARS,
    "choice_chars": MAX_CHOICE_CHARS,
    "tensor_chars": MAX_TENSOR_CHARS,
    "exponent_digits": MAX_EXPONENT_DIGITS,
    "fraction_digits": MAX_FRACTION_DIGITS,
    "tensor_entries": MAX_TENSOR_ENTRIES,
    "tensor_depth": MAX_TENSOR_DEPTH,
    "echo_chars": ECHO_CHARS,
}

#: every message a reader can see, by key; ``{name}`` fields are filled in (here and in JS)
MESSAGES = {
    "empty": "Type an answer first.",
    "too_long": "That answer is too long ({length} characters; at most {limit}).",
    "not_a_number": "Could not read '{answer}' as a number; write e.g. 0.25, 1/4, 2.5e-1 or 25%.",
    "complex": "'{answer}' is a complex number; the answer is a real number.",
    "exponent": "The exponent in '{answer}' is out of range (at most {limit} digits).",
    "overflow": "'{answer}' is too large: the answer is a finite number.",
    "zero_division": "'{answer}' divides by zero.",
    "fraction_digits": "Write fractions with at most {limit} digits above and below the bar.",
    "number_right": "{answer} is right.",
    "number_wrong": "{answer} is not the expected value.",
    "choice_empty": "Choose at least one option.",
    "choice_unknown": "Unknown option(s) {unknown}; choose among {letters}.",
    "choice_one": "Choose exactly one option.",
    "choice_right": "({chosen}) is right.",
    "choice_wrong_one": "That is not the right option.",
    "choice_wrong_count": "You chose {chosen} option(s), but {correct} are correct.",
    "choice_wrong_set": "You chose {correct} options, but not the right ones.",
    "tensor_empty": "Type your tensor as nested lists of numbers, e.g. [[0.1, 0.2], [0.3, 0.4]].",
    "tensor_syntax": "Could not read that as a tensor; type nested lists of numbers, e.g. [[0.1, 0.2], [0.3, 0.4]].",
    "tensor_ragged": "The rows have different lengths; every row needs the same number of entries.",
    "tensor_too_big": "At most {limit} numbers, nested at most {depth} deep.",
    "tensor_entry": "Entry {index}: {message}",
    "tensor_shape": "Expected shape {expected}, got {got}.",
    "tensor_nonfinite": "Your tensor contains NaN or infinite values.",
    "tensor_right": "All {total} values match.",
    "tensor_wrong": "The shape is right, but {bad} of {total} entries are not close enough to the expected values.",
    "starter": "This is still the starter value: replace it with your own computation (not counted as an attempt).",
    # answers that only Python receives (objects, functions): never produced by the browser
    "not_finite": "'{answer}' is not a finite number.",
    "number_type": "The answer must be a number (or text such as '1/4'), got {type}.",
    "bool": "The answer must be a number, got a bool ({answer}).",
    "one_number": "The answer must be a single number, got a tensor of shape {shape}.",
    "choice_type": "Choose options by letter, e.g. 'b' or 'a, c', got {type}.",
    "tensor_type": "The answer must be a tensor, a NumPy array or nested lists of numbers (or their text), got {type}.",
    "tensor_complex": "Your tensor is complex; the answer is a real tensor.",
    "function_type": "Pass your function itself (no parentheses), got {type}.",
    "function_starter": "Your function still raises NotImplementedError: write its body first (not counted as an attempt).",
    "function_raised": "Your function raised {type}: {error} (on test input {trial}).",
    "function_forbidden": "Your function calls {name}: {reason}",
    "function_result": "Your function's result: {error}",
    "function_shape": "On inputs of shapes {shapes} your result has shape {got}, expected {expected}.",
    "function_values": "Wrong values on test input {trial} (largest difference {error:.3g}).",
    "function_right": "Matches the reference on {trials} test inputs.",
}

HEADS = {"correct": "Correct!", "wrong": "Not yet.", "invalid": "Not yet.", "starter": "Not yet."}


class AnswerError(ValueError):
    """The reader's answer has the wrong form (not a number, unknown option, wrong shape ...)."""


def message(key: str, **fields) -> str:
    return MESSAGES[key].format(**{k: str(v) for k, v in fields.items()})


def fail(key: str, **fields) -> AnswerError:
    return AnswerError(message(key, **fields))


# -- text helpers (mirrored in JS: strip, squeeze, echo, ascii_lower) ------------------------------

_IGNORED_IN_NUMBERS = set(WHITESPACE) | {"_"}


def strip(text: str) -> str:
    return text.strip(WHITESPACE)


def echo(text: str) -> str:
    """The reader's text as quoted back in a message: stripped, at most ECHO_CHARS characters."""
    text = strip(text)
    return text if len(text) <= ECHO_CHARS else text[: ECHO_CHARS - 3] + "..."


def ascii_lower(text: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)


def format_shape(shape: Sequence[int]) -> str:
    """Python's tuple repr: ``()``, ``(3,)``, ``(2, 4)``."""
    shape = tuple(int(s) for s in shape)
    return "(" + str(shape[0]) + ",)" if len(shape) == 1 else "(" + ", ".join(map(str, shape)) + ")"


# -- numbers --------------------------------------------------------------------------------------

_FRACTION = re.compile(r"([+-]?)([0-9]+)/([0-9]+)")
_DECIMAL = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?)([0-9]+))?")
_COMPLEX = re.compile(r"[+-]?[0-9.eE+-]*[0-9.][ijIJ]")


def parse_number_text(text: str) -> float:
    """Read a typed number (see the module docstring for the grammar); raise AnswerError."""
    if len(text) > MAX_NUMBER_CHARS:
        raise fail("too_long", length=len(text), limit=MAX_NUMBER_CHARS)
    said = echo(text)
    s = "".join("-" if c == "\u2212" else c for c in text if c not in _IGNORED_IN_NUMBERS)
    if not s:
        raise fail("empty")
    percent = s.endswith("%")
    if percent:
        s = s[:-1]
    value: float
    if m := _FRACTION.fullmatch(s):
        sign, num, den = m.groups()
        if len(num.lstrip("0")) > MAX_FRACTION_DIGITS or len(den.lstrip("0")) > MAX_FRACTION_DIGITS:
            raise fail("fraction_digits", limit=MAX_FRACTION_DIGITS)
        if int(den) == 0:
            raise fail("zero_division", answer=said)
        value = int(num) / int(den)  # both exact doubles (< 2^53): one correctly rounded division
        if sign == "-":
            value = -value
    elif (m := _DECIMAL.fullmatch(s)) and (m.group(2) or m.group(3)):
        sign, whole, frac, exp_sign, exp = m.groups()
        exp = (exp or "0").lstrip("0") or "0"
        if len(exp) > MAX_EXPONENT_DIGITS:
            raise fail("exponent", answer=said, limit=MAX_EXPONENT_DIGITS)
        value = float(f"{sign}{whole or '0'}.{frac or '0'}e{exp_sign or ''}{exp}")
    elif _COMPLEX.fullmatch(s):
        raise fail("complex", answer=said)
    else:
        raise fail("not_a_number", answer=said)
    if percent:
        value = value / 100
    if not math.isfinite(value):
        raise fail("overflow", answer=said)
    return value


# -- choices --------------------------------------------------------------------------------------

_SEPARATORS = set(WHITESPACE) | {",", ";"}


def option_key(text: str) -> str:
    """How an option's text is compared with a typed answer: stripped, ASCII lower case."""
    return ascii_lower(strip(text))


def split_choice_text(text: str) -> list[str]:
    """``"(a), C; d"`` -> ``["a", "c", "d"]``: parentheses dropped, split at spaces, commas, semicolons."""
    parts, current = [], ""
    for c in ascii_lower(text):
        if c in "()":
            continue
        if c in _SEPARATORS:
            if current:
                parts.append(current)
            current = ""
        else:
            current += c
    if current:
        parts.append(current)
    return parts


# -- small tensors --------------------------------------------------------------------------------

_WRAPPERS = ("torch.tensor(", "tensor(", "numpy.array(", "np.array(", "array(")


@dataclass(frozen=True)
class TensorText:
    shape: tuple[int, ...]
    values: tuple[float, ...]  # row-major


def _tokens(text: str) -> list[str]:
    tokens, current = [], ""
    for c in text:
        if c in "[],":
            if current:
                tokens.append(current)
            current = ""
            tokens.append(c)
        elif c in WHITESPACE:
            if current:
                tokens.append(current)
            current = ""
        else:
            current += c
    if current:
        tokens.append(current)
    return tokens


def parse_tensor_text(text: str) -> TensorText:
    """Read ``[[0.1, 0.2], [0.3, 0.4]]`` (commas or spaces between entries, as PyTorch and NumPy
    print them; an outer ``tensor(...)``/``array(...)`` is allowed) into a shape and values."""
    if len(text) > MAX_TENSOR_CHARS:
        raise fail("too_long", length=len(text), limit=MAX_TENSOR_CHARS)
    s = strip(text)
    if not s:
        raise fail("tensor_empty")
    for prefix in _WRAPPERS:
        if s.startswith(prefix) and s.endswith(")"):
            s = strip(s[len(prefix) : -1])
            break
    tokens = _tokens(s)
    values: list[float] = []
    pos = 0

    def value(depth: int) -> tuple[int, ...]:
        nonlocal pos
        if depth > MAX_TENSOR_DEPTH:
            raise fail("tensor_too_big", limit=MAX_TENSOR_ENTRIES, depth=MAX_TENSOR_DEPTH)
        if pos >= len(tokens):
            raise fail("tensor_syntax")
        token = tokens[pos]
        pos += 1
        if token == "]" or token == ",":
            raise fail("tensor_syntax")
        if token != "[":
            if len(values) >= MAX_TENSOR_ENTRIES:
                raise fail("tensor_too_big", limit=MAX_TENSOR_ENTRIES, depth=MAX_TENSOR_DEPTH)
            try:
                values.append(parse_number_text(token))
            except AnswerError as exc:
                raise fail("tensor_entry", index=len(values) + 1, message=str(exc)) from None
            return ()
        shapes: list[tuple[int, ...]] = []
        after_comma = True  # a comma may not open a list or follow another comma
        while True:
            if pos >= len(tokens):
                raise fail("tensor_syntax")
            token = tokens[pos]
            if token == "]":
                pos += 1
                break
            if token == ",":
                if after_comma:
                    raise fail("tensor_syntax")
                after_comma = True
                pos += 1
                continue
            shapes.append(value(depth + 1))
            after_comma = False
        if any(shape != shapes[0] for shape in shapes):
            raise fail("tensor_ragged")
        return (len(shapes), *(shapes[0] if shapes else ()))

    shape = value(1)
    if pos != len(tokens):
        raise fail("tensor_syntax")
    return TensorText(shape, tuple(values))


def count_not_close(got: Sequence[float], expected: Sequence[float], rtol: float, atol: float) -> int:
    """How many entries fail ``|g - e| <= atol + rtol * |e|`` (torch.allclose's rule), computed
    one IEEE operation at a time, as the browser does."""
    return sum(1 for g, e in zip(got, expected) if not abs(g - e) <= atol + rtol * abs(e))


def isclose(a: float, b: float, rtol: float, atol: float) -> bool:
    """math.isclose, spelled out as the browser computes it."""
    if a == b:
        return True
    if math.isinf(a) or math.isinf(b):
        return False
    diff = abs(b - a)
    return diff <= abs(rtol * b) or diff <= abs(rtol * a) or diff <= atol
