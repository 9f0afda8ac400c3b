"""Argument checks shared by the library's modules (private).

Each returns the checked value, so a call can sit inside an expression, and raises a
``ValueError`` that names the argument and the expected range.
"""

from __future__ import annotations

import dataclasses
import math

import torch


def positive_int(name: str, value: object) -> int:
    """``value`` as an int >= 1 (bools are rejected: ``True`` is not a size)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def positive_ints(**values: object) -> None:
    """:func:`positive_int` for each keyword argument, in order: ``positive_ints(d_model=d, ...)``."""
    for name, value in values.items():
        positive_int(name, value)


def nonnegative_int(name: str, value: object) -> int:
    """``value`` as an int >= 0 (a length or a count that may be zero; bools are rejected)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return value


def unit_interval(name: str, value: object) -> float:
    """``value`` as a float in ``[0, 1)``: a dropout probability or a held-out fraction."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


def positive_number(name: str, value: object, allow_inf: bool = False) -> float:
    """``value`` as a float > 0 (a learning rate, a threshold); nan is refused, inf only with ``allow_inf``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not value > 0
        or (math.isinf(value) and not allow_inf)
    ):
        raise ValueError(f"{name} must be a {'' if allow_inf else 'finite '}positive number, got {value!r}")
    return float(value)


def paired_lists(a_name: str, a: object, b_name: str, b: object, pairing: str = "") -> None:
    """Two parallel lists, one entry per sentence: neither a bare string, both of the same length.

    ``pairing`` explains the pairing in the length error, e.g. ``" (one list of references per
    prediction)"``.
    """
    if isinstance(a, str) or isinstance(b, str):
        raise ValueError(f"{a_name} and {b_name} must be lists (one entry per sentence), not a single string")
    for name, value in ((a_name, a), (b_name, b)):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{name} must be a list (one entry per sentence), got {type(value).__name__}")
    if len(a) != len(b):  # type: ignore[arg-type]
        raise ValueError(
            f"{a_name} and {b_name} must have the same length{pairing}, got {len(a)} and {len(b)}"  # type: ignore[arg-type]
        )


def heads_divide(d_model: object, num_heads: object) -> int:
    """Check ``d_model`` and ``num_heads`` and return the head size ``d_model // num_heads``."""
    positive_ints(d_model=d_model, num_heads=num_heads)
    if d_model % num_heads != 0:  # type: ignore[operator]
        raise ValueError(
            f"d_model={d_model} must be divisible by num_heads={num_heads} "
            f"(each head gets d_model // num_heads dimensions)"
        )
    return d_model // num_heads  # type: ignore[operator]


def bool_mask(
    mask: object, shape: torch.Size | tuple[int, ...], name: str = "mask", expected: str = ""
) -> torch.Tensor:
    """``mask`` checked to be a boolean tensor (``True`` = may attend) that broadcasts to ``shape``.

    Broadcasting must not enlarge ``shape`` (a mask with extra batch axes would silently change
    the result's shape). Returns the mask unchanged; ``expected`` is added to the error message.
    """
    shape = tuple(shape)
    hint = f": expected {expected}" if expected else ""
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(
            f"{name} must be a boolean tensor (True = may attend) broadcastable to {shape}, got {got}{hint}"
        )
    try:
        broadcast = tuple(torch.broadcast_shapes(mask.shape, shape))
    except RuntimeError:
        broadcast = None
    if broadcast != shape:
        raise ValueError(f"{name} of shape {tuple(mask.shape)} does not broadcast to {shape}{hint}")
    return mask


def token_ids(tokens: object, name: str, vocab_size: int | None = None, dim: int = 2) -> torch.Tensor:
    """An int64 tensor of token ids with ``dim`` axes, each id in ``[0, vocab_size)``.

    The range check needs the values on the host, so it is skipped on CUDA (it would synchronize
    every step) and while ``torch.compile`` traces; elsewhere it replaces an index error deep
    inside ``nn.Embedding`` with a message that names the argument.
    """
    shape = "(B, T)" if dim == 2 else "(B,)"
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != dim or tokens.dtype != torch.long:
        got = (
            f"{tokens.dtype} tensor of shape {tuple(tokens.shape)}"
            if isinstance(tokens, torch.Tensor)
            else type(tokens).__name__
        )
        raise ValueError(f"{name} must be an int64 tensor of token ids with shape {shape}, got {got}")
    if vocab_size is not None and tokens.numel() and tokens.device.type != "cuda" and not torch.compiler.is_compiling():
        low, high = int(tokens.min()), int(tokens.max())
        if low < 0 or high >= vocab_size:
            raise ValueError(
                f"{name} holds token ids from {low} to {high}, but the vocabulary has {vocab_size} tokens "
                f"(ids 0..{vocab_size - 1}); were the model and the data built with different vocabularies?"
            )
    return tokens


def special_ids(vocab_size: int, **ids: object) -> tuple[int, ...]:
    """Special token ids (``bos_id=..., eos_id=..., pad_id=...``), each an int in ``[0, vocab_size)``."""
    for name, value in ids.items():
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < vocab_size:
            raise ValueError(f"{name} must be a token id of the vocabulary, in [0, {vocab_size}), got {value!r}")
    return tuple(ids.values())  # type: ignore[return-value]


def stack_sizes(config: object, *names: str) -> int:
    """Check the sizes of a model config (each of ``names`` a positive int, ``dropout`` in [0, 1],
    ``d_model`` divisible by ``num_heads``) and return ``d_ff``, defaulting to ``4 * d_model``."""
    for name in names:
        positive_int(name, getattr(config, name))
    unit_interval("dropout", config.dropout)
    heads_divide(config.d_model, config.num_heads)
    d_ff = config.d_ff
    return positive_int("d_ff", 4 * config.d_model if d_ff is None else d_ff)


def config_from(cls: type, config: object, sizes: dict) -> object:
    """A model's config: ``config`` if given (an instance of ``cls``), else ``cls(**sizes)``, not both.

    The one merge rule of every model config (GPT, BERT, ViT, Transformer): a frozen dataclass, or
    its fields as keywords; an unknown keyword raises, naming it and the fields there are."""
    if config is not None and sizes:
        raise ValueError(f"pass either config or keyword sizes, not both (got config and {sorted(sizes)})")
    if config is None:
        fields = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(sizes) - set(fields))
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields: {unknown}; the fields are {fields}")
        config = cls(**sizes)
    if not isinstance(config, cls):
        raise ValueError(f"config must be a {cls.__name__}, got {type(config).__name__}")
    return config
