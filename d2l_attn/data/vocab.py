r"""Vocabularies: tokens to indices and back (chapters 4, 7 and 9).

:class:`Vocab` is deterministic (the same tokens always give the same indices) and puts ``<unk>``
at index 0; :func:`truncate_pad` cuts or pads a list of indices to a fixed length.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Sequence

import torch

from .._checks import positive_int

__all__ = ["Vocab", "truncate_pad"]


def _flatten(tokens: Iterable[str] | Iterable[Sequence[str]]) -> list[str]:
    flat: list[str] = []
    for item in tokens:
        if isinstance(item, str):
            flat.append(item)
        elif isinstance(item, (list, tuple)):
            for token in item:
                if not isinstance(token, str):
                    raise ValueError(f"tokens must be strings, got {token!r} of type {type(token).__name__}")
                flat.append(token)
        else:
            raise ValueError(
                "tokens must be a list of tokens or a list of token lists, "
                f"got an element of type {type(item).__name__}"
            )
    return flat


class Vocab:
    """Map tokens to indices and back.

    Index 0 is always ``<unk>`` (unknown tokens map to it), followed by ``reserved_tokens`` in the
    given order, then every token seen at least ``min_freq`` times, by frequency (descending),
    ties broken alphabetically, so the same data always gives the same vocabulary.

    >>> vocab = Vocab([["a", "b", "a"], ["c", "a", "b"]], reserved_tokens=["<pad>"])
    >>> vocab.idx_to_token
    ['<unk>', '<pad>', 'a', 'b', 'c']
    >>> vocab[["a", "zzz"]]
    [2, 0]
    """

    UNK = "<unk>"

    def __init__(
        self,
        tokens: Iterable[str] | Iterable[Sequence[str]] = (),
        min_freq: int = 1,
        reserved_tokens: Sequence[str] | None = None,
    ) -> None:
        if not isinstance(min_freq, int) or isinstance(min_freq, bool) or min_freq < 1:
            raise ValueError(f"min_freq must be an int >= 1, got {min_freq!r}")
        reserved = list(reserved_tokens) if reserved_tokens is not None else []
        for token in reserved:
            if not isinstance(token, str):
                raise ValueError(f"reserved_tokens must be strings, got {token!r}")
        if self.UNK in reserved:
            raise ValueError(f"reserved_tokens must not contain {self.UNK!r}: it is always index 0")
        duplicates = sorted({t for t in reserved if reserved.count(t) > 1})
        if duplicates:
            raise ValueError(f"reserved_tokens contains duplicates: {duplicates}")

        if isinstance(tokens, (str, bytes)):
            raise ValueError(
                "tokens must be a list of tokens or a list of token lists, not a single string "
                f"({tokens[:20]!r}...): split it first, e.g. text.split()"
            )
        counter = collections.Counter(_flatten(tokens))
        #: ``(token, count)`` for every token seen, by count (descending), ties alphabetical.
        self.token_freqs: list[tuple[str, int]] = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
        self.idx_to_token: list[str] = [self.UNK, *reserved]
        taken = set(self.idx_to_token)
        self.idx_to_token += [t for t, n in self.token_freqs if n >= min_freq and t not in taken]
        self.token_to_idx: dict[str, int] = {t: i for i, t in enumerate(self.idx_to_token)}

    def __len__(self) -> int:
        return len(self.idx_to_token)

    def __contains__(self, token: object) -> bool:
        return token in self.token_to_idx

    def __getitem__(self, tokens: str | Sequence[str]) -> int | list[int]:
        """Index of a token (``unk`` if unknown), or a list of indices for a list/tuple of tokens."""
        if isinstance(tokens, (list, tuple)):
            return [self.token_to_idx.get(t, self.unk) for t in tokens]
        return self.token_to_idx.get(tokens, self.unk)

    def to_tokens(self, indices: int | Sequence[int] | torch.Tensor) -> str | list[str]:
        """Token of an index, or the list of tokens of a list/tuple/1-D tensor of indices."""
        if isinstance(indices, torch.Tensor):
            indices = indices.tolist()
        if isinstance(indices, (list, tuple)):
            return [self._token(i) for i in indices]
        return self._token(indices)

    def _token(self, index: object) -> str:
        if isinstance(index, bool) or not hasattr(index, "__index__"):
            raise ValueError(f"indices must be integers, got {index!r}")
        i = index.__index__()
        if not 0 <= i < len(self.idx_to_token):
            raise IndexError(f"index {i} is out of range for a vocabulary of size {len(self)}")
        return self.idx_to_token[i]

    @property
    def unk(self) -> int:
        """Index of ``<unk>`` (always 0)."""
        return 0

    def special_ids(self, name: str = "vocab") -> dict[str, int]:
        """``{"bos_id": ..., "eos_id": ..., "pad_id": ...}`` of a target vocabulary (a decoder's special tokens).

        Raises ``ValueError`` naming ``name`` if ``<bos>``, ``<eos>`` or ``<pad>`` is missing.
        """
        missing = [t for t in ("<bos>", "<eos>", "<pad>") if t not in self]
        if missing:
            raise ValueError(f"{name} must contain {', '.join(map(repr, missing))} (build it with reserved_tokens=...)")
        return {
            "bos_id": self.token_to_idx["<bos>"],
            "eos_id": self.token_to_idx["<eos>"],
            "pad_id": self.token_to_idx["<pad>"],
        }

    def __repr__(self) -> str:
        head = ", ".join(repr(t) for t in self.idx_to_token[:8])
        more = ", ..." if len(self) > 8 else ""
        return f"Vocab(size={len(self)}, tokens=[{head}{more}])"


def truncate_pad(line: Sequence[int], num_steps: int, padding_token: int) -> list[int]:
    """Cut ``line`` to ``num_steps`` items or pad it with ``padding_token`` up to ``num_steps``.

    >>> truncate_pad([5, 6], 4, 1), truncate_pad([5, 6, 7], 2, 1)
    ([5, 6, 1, 1], [5, 6])
    """
    positive_int("num_steps", num_steps)
    line = list(line)
    if len(line) > num_steps:
        return line[:num_steps]
    return line + [padding_token] * (num_steps - len(line))
