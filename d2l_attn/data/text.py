r"""Real text for pretraining (chapter 9): WikiText-2 and Tiny Shakespeare.

* :func:`load_wikitext2` -- WikiText-2 (Merity et al., 2016), word-level, from Wikipedia's Good and
  Featured articles. It reads whichever of ``wiki.{train,valid,test}.tokens`` are in
  ``<data dir>/wikitext-2/``; if the training split is missing it downloads ``wikitext-2-v1.zip``
  (SHA-1 verified) unless ``download=False``, and the result **says which splits it used**
  (:attr:`WikiText2.note`), because an offline copy may hold only the validation and test splits.
* :func:`load_tiny_shakespeare` -- the 1,115,394-character file of nanoGPT's ``shakespeare_char``
  recipe (from karpathy/char-rnn), SHA-1 verified.
* :func:`lm_batch` -- nanoGPT's random windows ``(x, y)`` of a long token stream, with a private generator.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .._checks import positive_int
from .download import data_dir, download, extract_zip

__all__ = ["WIKITEXT2_URL", "WIKITEXT2_SHA1", "TINY_SHAKESPEARE_URL", "TINY_SHAKESPEARE_SHA1",
           "WikiText2", "load_wikitext2", "wikitext_paragraphs", "load_tiny_shakespeare", "lm_batch"]

WIKITEXT2_URL = "https://d2l-data.s3-accelerate.amazonaws.com/wikitext-2-v1.zip"
WIKITEXT2_SHA1 = "3c914d17d80b1459be871a5039ac23e752a53cbe"
TINY_SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
TINY_SHAKESPEARE_SHA1 = "04486597058d11dcc2c556b1d0433891eb639d2e"
_SPLITS = ("train", "valid", "test")


@dataclass
class WikiText2:
    """The splits that were found: ``texts[split]`` is the file's text; ``note`` says what was used."""

    texts: dict[str, str] = field(default_factory=dict)
    directory: Path | None = None
    downloaded: bool = False

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(s for s in _SPLITS if s in self.texts)

    @property
    def note(self) -> str:
        missing = [s for s in _SPLITS if s not in self.texts]
        text = f"WikiText-2 splits used: {', '.join(self.splits)} (from {self.directory})"
        if missing:
            text += f"; not available here: {', '.join(missing)}"
        return text

    def train_valid(self) -> tuple[str, str, str]:
        """``(train text, held-out text, description)``: the real splits if the training split is
        present, otherwise the validation split for training and the test split held out."""
        if "train" in self.texts:
            return self.texts["train"], self.texts["valid"], "trained on train, evaluated on valid"
        if {"valid", "test"} <= set(self.texts):
            return self.texts["valid"], self.texts["test"], "no train split here: trained on valid, evaluated on test"
        raise ValueError(f"need train+valid or valid+test splits, found {list(self.splits)}")


def load_wikitext2(*, cache_dir: str | os.PathLike[str] | None = None, download_missing: bool = True,
                   url: str = WIKITEXT2_URL, sha1: str = WIKITEXT2_SHA1) -> WikiText2:
    """Read the WikiText-2 splits present in ``<dir>/wikitext-2/`` (``dir`` = ``cache_dir`` or :func:`data_dir`).

    If the training split is missing and ``download_missing`` is true, ``wikitext-2-v1.zip`` is
    downloaded (checksum-verified, atomic, cached) and extracted. Without network, the splits
    already present are used if there are any (see :attr:`WikiText2.note`); with none, the error says
    where to put the files.
    """
    directory = Path(cache_dir) if cache_dir is not None else data_dir()
    folder = directory / "wikitext-2"
    downloaded = False
    if download_missing and not (folder / "wiki.train.tokens").is_file():
        try:
            archive = download(url, sha1, cache_dir=directory, filename="wikitext-2-v1.zip",
                               offline_name="wikitext-2/wiki.train.tokens")
            extract_zip(archive, directory)
            downloaded = True
        except RuntimeError:
            if not any((folder / f"wiki.{s}.tokens").is_file() for s in _SPLITS):
                raise
    texts = {s: (folder / f"wiki.{s}.tokens").read_text(encoding="utf-8")
             for s in _SPLITS if (folder / f"wiki.{s}.tokens").is_file()}
    if not texts:
        raise RuntimeError(f"no WikiText-2 split found in {str(folder)!r}; place wiki.*.tokens there, "
                           "set D2L_ATTN_DATA, or allow the download")
    return WikiText2(texts, folder, downloaded)


def wikitext_paragraphs(text: str, min_sentences: int = 1) -> list[list[str]]:
    """Paragraphs (non-heading lines) split into sentences on ``" . "``, lowercased, as D2L's BERT data."""
    paragraphs = []
    for line in text.split("\n"):
        line = line.strip()
        if not line or line.startswith("="):  # blank lines and "= Heading =" lines
            continue
        sentences = [s.strip() for s in line.lower().split(" . ") if s.strip()]
        if len(sentences) >= min_sentences:
            paragraphs.append(sentences)
    return paragraphs


def load_tiny_shakespeare(*, cache_dir: str | os.PathLike[str] | None = None, url: str = TINY_SHAKESPEARE_URL,
                          sha1: str = TINY_SHAKESPEARE_SHA1) -> str:
    """The text of ``<dir>/tinyshakespeare/input.txt``, downloaded (SHA-1 verified) if not already there."""
    directory = Path(cache_dir) if cache_dir is not None else data_dir()
    path = download(url, sha1, cache_dir=directory / "tinyshakespeare", filename="input.txt",
                    offline_name="tinyshakespeare/input.txt")
    return path.read_text(encoding="utf-8")


def lm_batch(data: torch.Tensor, block_size: int, batch_size: int,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` random windows of a 1-D token stream: ``x = data[i : i+T]``, ``y = data[i+1 : i+T+1]``, each ``(B, T)``."""
    if not isinstance(data, torch.Tensor) or data.dim() != 1:
        raise ValueError(f"data must be a 1-D tensor of token ids, got {getattr(data, 'shape', type(data).__name__)}")
    positive_int("block_size", block_size)
    positive_int("batch_size", batch_size)
    if data.numel() <= block_size:
        raise ValueError(f"data has {data.numel()} tokens, need more than block_size={block_size}")
    starts = torch.randint(0, data.numel() - block_size, (batch_size,), generator=generator)  # (B,)
    offsets = torch.arange(block_size)  # (T,)
    x = data[starts.unsqueeze(1) + offsets]  # (B, T)
    y = data[starts.unsqueeze(1) + offsets + 1]  # (B, T)
    return x, y
