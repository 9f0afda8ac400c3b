"""Argument checks shared by the library's modules (private).

Each returns the checked value, so a call can sit inside an expression, and raises a
``ValueError`` that names the argument and the expected range.
"""

from __future__ import annotations


def positive_int(name: str, value: object) -> int:
    """``value`` as an int >= 1 (bools are rejected: ``True`` is not a size)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def unit_interval(name: str, value: object) -> float:
    """``value`` as a float in ``[0, 1)``: a dropout probability or a held-out fraction."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)
