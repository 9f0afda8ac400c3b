r"""The English–French ("fra-eng") translation corpus: download, preprocessing, vocabularies, batches.

Chapter 4 (sequence-to-sequence with attention) and chapter 7 (the Transformer) train
English→French translation models on this corpus. It is the Tatoeba-derived bilingual corpus
from manythings.org/anki (CC-BY 2.0) that D2L packages as ``fra-eng.zip``; the archive holds
``fra-eng/fra.txt`` with one ``english<TAB>french`` pair per line, shortest first.

Data facts (measured on the first 18,065 pairs, the sample kept in ``shared/data`` for tests):

* 18,065 pairs but only 10,974 distinct English sentences: many sentences have several French
  translations. Splitting *pairs* at random would put a sentence in training and one of its other
  translations in the "held-out" set, so :func:`split_by_source` splits **by English source
  sentence** and :func:`group_references` collects every translation of a sentence as the
  references for multi-reference BLEU.
* After :func:`preprocess_nmt` and :func:`tokenize_nmt`, English sentences have at most 6 tokens
  and French at most 13; 17,954 pairs fit in ``num_steps = 9`` with ``<eos>`` on both sides.
  Tokens are split on whitespace, so a doubled space yields no empty token (D2L's ``split(' ')``
  produces ``''`` tokens for four French sentences that end in a narrow no-break space + ``" ?"``).

Where the data lives: :func:`data_dir` is ``$D2L_ATTN_DATA`` if set, else a per-user cache
(``$XDG_CACHE_HOME/d2l_attn`` or ``~/.cache/d2l_attn``). If ``<data dir>/fra-eng/fra.txt`` exists
it is used as-is and nothing is downloaded (that is how the tests run offline, with
``D2L_ATTN_DATA=../shared/data``).

Download safety (:func:`download`, :func:`extract_zip`):

* a cached file is trusted only if its SHA-1 matches; otherwise it is fetched again;
* a download is streamed to a temporary file in the cache directory, its SHA-1 is checked, and
  only then is it moved into place atomically (``os.replace``): an interrupted or corrupted
  download never leaves a file under the final name, and a mismatch removes the temporary file;
* an archive is checked completely before anything is written: members that would land outside
  the target directory (absolute paths, ``..``) and symbolic links are refused, and a corrupt or
  truncated archive raises ``ValueError`` rather than extracting half of itself.

Nothing here prints or changes global state; shuffling uses a seeded ``torch.Generator`` owned by
the :class:`NMTData` object.
"""

from __future__ import annotations

import collections
import hashlib
import http.client
import os
import random
import re
import stat
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple, Sequence

import torch
from torch.utils.data import DataLoader, TensorDataset

from ._checks import paired_lists, positive_int, unit_interval

__all__ = [
    "FRA_ENG_URL",
    "FRA_ENG_SHA1",
    "data_dir",
    "sha1_of_file",
    "download",
    "extract_zip",
    "load_fra_eng_text",
    "preprocess_nmt",
    "tokenize_nmt",
    "Vocab",
    "truncate_pad",
    "SplitPairs",
    "split_by_source",
    "group_references",
    "build_array_nmt",
    "NMTData",
    "load_data_nmt",
]

FRA_ENG_URL = "http://d2l-data.s3-accelerate.amazonaws.com/fra-eng.zip"
FRA_ENG_SHA1 = "94646ad1522d915e7b0f9296181140edcf86a4f5"

Tokens = list[str]
Pair = tuple[Sequence[str], Sequence[str]]

_ALLOWED_SCHEMES = ("http", "https", "file")
_CHUNK_BYTES = 1 << 20
_SHA1_RE = re.compile(r"[0-9a-f]{40}")


# --------------------------------------------------------------------------------------------
# Where the data lives, downloading and extracting
# --------------------------------------------------------------------------------------------


def data_dir() -> Path:
    """The data directory: ``$D2L_ATTN_DATA`` if set, else ``$XDG_CACHE_HOME/d2l_attn`` or ``~/.cache/d2l_attn``.

    The directory is not created here; :func:`download` creates it when it first writes.
    """
    explicit = os.environ.get("D2L_ATTN_DATA")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "d2l_attn"


def sha1_of_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-1 digest of the file at ``path``, read in 1 MiB chunks."""
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _offline_hint(directory: Path) -> str:
    return (
        f"To work offline, place fra-eng/fra.txt in the data directory {str(directory)!r} "
        "or set the environment variable D2L_ATTN_DATA to a directory that contains fra-eng/fra.txt."
    )


def download(
    url: str,
    sha1: str,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    filename: str | None = None,
    timeout: float = 30,
) -> Path:
    """Return the path of ``url``'s file in ``cache_dir``, downloading it if needed.

    A file already in the cache is returned without touching the network if its SHA-1 equals
    ``sha1``; a cached file with another checksum is downloaded again. Downloads (``http://``,
    ``https://`` or ``file://``) stream into a temporary file in ``cache_dir``; the SHA-1 is checked
    and the file is then moved into place atomically.

    Args:
        url: where to fetch the file.
        sha1: expected hex SHA-1 of the file (40 hex digits).
        cache_dir: directory to store the file in (default :func:`data_dir`); created if missing.
        filename: name of the file in ``cache_dir`` (default: the last component of the URL path).
        timeout: network timeout in seconds.

    Raises:
        ValueError: bad arguments, or a downloaded file whose SHA-1 is not ``sha1`` (the message
            names the URL, the expected and the actual SHA-1; no partial file is left behind).
        RuntimeError: the URL could not be fetched (the message says how to work offline).
    """
    if not isinstance(url, str) or not url:
        raise ValueError(f"url must be a non-empty string, got {url!r}")
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in _ALLOWED_SCHEMES:
        raise ValueError(f"url must be an http://, https:// or file:// URL, got {url!r}")
    if not isinstance(sha1, str) or not _SHA1_RE.fullmatch(sha1.lower()):
        raise ValueError(f"sha1 must be 40 hexadecimal digits, got {sha1!r}")
    sha1 = sha1.lower()
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if filename is None:
        filename = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
        if not filename:
            raise ValueError(f"cannot infer a file name from url {url!r}; pass filename=")
    if not filename or filename in (".", "..") or "/" in filename or os.sep in filename:
        raise ValueError(f"filename must be a plain file name (no directories), got {filename!r}")

    directory = Path(cache_dir) if cache_dir is not None else data_dir()
    target = directory / filename
    if target.is_file() and sha1_of_file(target) == sha1:
        return target

    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RuntimeError(f"cannot create the data directory {str(directory)!r}: {exc}") from exc

    handle, tmp_name = tempfile.mkstemp(prefix=f".{filename}.", suffix=".part", dir=directory)
    tmp_path = Path(tmp_name)
    digest = hashlib.sha1()
    try:
        try:
            with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
                for chunk in iter(lambda: response.read(_CHUNK_BYTES), b""):
                    digest.update(chunk)
                    out.write(chunk)
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:  # HTTP errors, timeouts
            raise RuntimeError(
                f"could not download {url} ({exc}). {_offline_hint(directory)}"
            ) from exc
        actual = digest.hexdigest()
        if actual != sha1:
            raise ValueError(
                f"checksum mismatch for {url}: expected sha1 {sha1}, got {actual}; "
                "the download was discarded"
            )
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)
    return target


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    mode = info.external_attr >> 16
    return stat.S_ISLNK(mode)


def extract_zip(zip_path: str | os.PathLike[str], target_dir: str | os.PathLike[str]) -> Path:
    """Extract the zip archive ``zip_path`` into ``target_dir`` safely and return ``target_dir``.

    Before anything is written, every member is checked: a member whose path resolves outside
    ``target_dir`` (an absolute path, ``..`` components, a drive letter) or that is a symbolic
    link raises ``ValueError`` naming the member, and the CRC of every member is verified, so a
    corrupt or truncated archive raises ``ValueError`` ("not a valid zip archive") and leaves
    nothing behind.
    """
    zip_path = Path(zip_path)
    target = Path(target_dir)
    root = target.resolve()
    try:
        with zipfile.ZipFile(zip_path) as archive:
            members = archive.infolist()
            for info in members:
                name = info.filename
                if _is_symlink(info):
                    raise ValueError(f"refusing to extract {str(zip_path)!r}: member {name!r} is a symbolic link")
                if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
                    raise ValueError(
                        f"refusing to extract {str(zip_path)!r}: member {name!r} has an absolute path"
                    )
                destination = (root / name).resolve()
                if destination != root and root not in destination.parents:
                    raise ValueError(
                        f"refusing to extract {str(zip_path)!r}: member {name!r} would be written "
                        f"outside {str(root)!r}"
                    )
            bad_member = archive.testzip()  # reads every member and checks its CRC
            if bad_member is not None:
                raise zipfile.BadZipFile(f"bad CRC for member {bad_member!r}")
            target.mkdir(parents=True, exist_ok=True)
            archive.extractall(root)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise ValueError(f"{str(zip_path)!r} is not a valid zip archive (corrupt or truncated): {exc}") from exc
    return target


def load_fra_eng_text(
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    url: str = FRA_ENG_URL,
    sha1: str = FRA_ENG_SHA1,
) -> str:
    """Return the text of ``fra-eng/fra.txt``, downloading and extracting ``fra-eng.zip`` if needed.

    If ``<dir>/fra-eng/fra.txt`` exists (``dir`` = ``cache_dir`` or :func:`data_dir`), it is read
    as-is and the network is not used. Otherwise the archive is downloaded to ``<dir>/fra-eng.zip``
    (checksum-verified, see :func:`download`) and extracted into ``<dir>`` (see :func:`extract_zip`).
    """
    directory = Path(cache_dir) if cache_dir is not None else data_dir()
    text_path = directory / "fra-eng" / "fra.txt"
    if not text_path.is_file():
        archive = download(url, sha1, cache_dir=directory, filename="fra-eng.zip")
        extract_zip(archive, directory)
        if not text_path.is_file():
            raise ValueError(
                f"the archive {str(archive)!r} from {url} does not contain fra-eng/fra.txt"
            )
    return text_path.read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------------
# Preprocessing and tokenization
# --------------------------------------------------------------------------------------------

_NO_SPACE_BEFORE_PUNCT = re.compile(r"(?<=[^ ])([,.!?])")


def preprocess_nmt(text: str) -> str:
    """D2L's preprocessing: no-break spaces to spaces, lowercase, a space before ``, . ! ?``.

    A space is inserted before a punctuation mark unless it is the first character or already
    preceded by a space: ``"Go.\\tVa !"`` -> ``"go .\\tva !"``.
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    text = text.replace("\u202f", " ").replace("\xa0", " ").lower()
    return _NO_SPACE_BEFORE_PUNCT.sub(r" \1", text)


def tokenize_nmt(text: str, max_examples: int | None = None) -> tuple[list[Tokens], list[Tokens]]:
    """Split ``english<TAB>french[<TAB>attribution...]`` lines into source and target token lists.

    Tokens are separated by whitespace. Lines without a tab, or with an empty English or French
    side, are skipped. ``max_examples`` keeps only the first that many pairs.
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    if max_examples is not None:
        positive_int("max_examples", max_examples)
    source: list[Tokens] = []
    target: list[Tokens] = []
    for line in text.split("\n"):
        if max_examples is not None and len(source) >= max_examples:
            break
        parts = line.split("\t")
        if len(parts) < 2:
            continue
        src, tgt = parts[0].split(), parts[1].split()
        if not src or not tgt:
            continue
        source.append(src)
        target.append(tgt)
    return source, target


# --------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------


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

    def __repr__(self) -> str:
        head = ", ".join(repr(t) for t in self.idx_to_token[:8])
        more = ", ..." if len(self) > 8 else ""
        return f"Vocab(size={len(self)}, tokens=[{head}{more}])"


# --------------------------------------------------------------------------------------------
# Splits, references, arrays
# --------------------------------------------------------------------------------------------


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


class SplitPairs(NamedTuple):
    """Train/validation/test lists of ``(source_tokens, target_tokens)`` pairs."""

    train: list[Pair]
    val: list[Pair]
    test: list[Pair]


def split_by_source(
    pairs: Sequence[Pair],
    *,
    val_frac: float = 0.1,
    test_frac: float = 0.1,
    seed: int = 0,
) -> SplitPairs:
    """Split pairs into train/val/test **by distinct source sentence**.

    All translations of one English sentence land in the same split, so no held-out source
    sentence is seen in training. The distinct sources are sorted, shuffled with
    ``random.Random(seed)``; the first ``floor(val_frac * n)`` go to validation, the next
    ``floor(test_frac * n)`` to test, the rest to training. Pairs keep their input order within
    a split. Same pairs + same seed => same split.
    """
    val_frac = unit_interval("val_frac", val_frac)
    test_frac = unit_interval("test_frac", test_frac)
    if val_frac + test_frac >= 1.0:
        raise ValueError(
            f"val_frac + test_frac must be < 1 to leave training data, got {val_frac} + {test_frac}"
        )
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"seed must be an int, got {seed!r}")
    keys = [tuple(src) for src, _ in pairs]
    sources = sorted(set(keys))
    random.Random(seed).shuffle(sources)
    n_val = int(val_frac * len(sources))
    n_test = int(test_frac * len(sources))
    val_sources = set(sources[:n_val])
    test_sources = set(sources[n_val : n_val + n_test])
    split = SplitPairs([], [], [])
    for key, pair in zip(keys, pairs):
        if key in val_sources:
            split.val.append(pair)
        elif key in test_sources:
            split.test.append(pair)
        else:
            split.train.append(pair)
    return split


def group_references(pairs: Iterable[Pair]) -> dict[tuple[str, ...], list[list[str]]]:
    """Map each distinct source sentence (a tuple of tokens) to all its target token lists.

    Used for multi-reference BLEU: a translation is scored against every French translation of
    its English sentence. Keys appear in first-seen order.
    """
    references: dict[tuple[str, ...], list[list[str]]] = {}
    for src, tgt in pairs:
        references.setdefault(tuple(src), []).append(list(tgt))
    return references


def build_array_nmt(
    lines: Sequence[Sequence[str]], vocab: Vocab, num_steps: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token lists -> ``(array (N, num_steps) int64, valid_len (N,) int64)``.

    Each line gets ``<eos>`` appended, is mapped to indices, and is truncated or padded with
    ``<pad>`` to ``num_steps``; ``valid_len`` counts the non-padding positions. A line longer than
    ``num_steps - 1`` tokens loses its tail, ``<eos>`` included.
    """
    positive_int("num_steps", num_steps)
    for token in ("<pad>", "<eos>"):
        if token not in vocab.token_to_idx:
            raise ValueError(f"vocab must contain the reserved token {token!r}")
    pad, eos = vocab["<pad>"], vocab["<eos>"]
    rows = [truncate_pad(vocab[list(line)] + [eos], num_steps, pad) for line in lines]
    array = torch.tensor(rows, dtype=torch.long).reshape(len(rows), num_steps)
    valid_len = (array != pad).sum(dim=1).to(torch.long)
    return array, valid_len


# --------------------------------------------------------------------------------------------
# The dataset object used by chapters 4 and 7
# --------------------------------------------------------------------------------------------

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


@dataclass
class NMTData:
    """The split corpus, its vocabularies and batch iterators.

    Batches are ``(src (B, T), src_valid_len (B,), tgt (B, T), tgt_valid_len (B,))``, all int64,
    with ``T = num_steps``. Shuffling uses a ``torch.Generator`` seeded with ``seed`` and owned by
    this object: successive epochs see different orders, and the whole sequence of epochs is
    reproducible.
    """

    src_vocab: Vocab
    tgt_vocab: Vocab
    train_pairs: list[Pair]
    val_pairs: list[Pair]
    test_pairs: list[Pair]
    batch_size: int
    num_steps: int
    seed: int = 0
    _generator: torch.Generator = field(init=False, repr=False)
    _arrays: dict[str, Batch] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        positive_int("batch_size", self.batch_size)
        positive_int("num_steps", self.num_steps)
        self._generator = torch.Generator().manual_seed(self.seed)

    def arrays(self, pairs: Sequence[Pair]) -> Batch:
        """``(src, src_valid_len, tgt, tgt_valid_len)`` tensors for tokenized pairs."""
        src, src_valid_len = build_array_nmt([p[0] for p in pairs], self.src_vocab, self.num_steps)
        tgt, tgt_valid_len = build_array_nmt([p[1] for p in pairs], self.tgt_vocab, self.num_steps)
        return src, src_valid_len, tgt, tgt_valid_len

    def build(self, src_sentences: Sequence[str], tgt_sentences: Sequence[str]) -> Batch:
        """Raw sentences (e.g. ``["Go.", "I won!"]``) -> preprocessed, tokenized, padded arrays."""
        paired_lists("src_sentences", src_sentences, "tgt_sentences", tgt_sentences)
        pairs = [
            (preprocess_nmt(src).split(), preprocess_nmt(tgt).split())
            for src, tgt in zip(src_sentences, tgt_sentences)
        ]
        return self.arrays(pairs)

    def _cached(self, name: str) -> Batch:
        if name not in self._arrays:
            self._arrays[name] = self.arrays(getattr(self, f"{name}_pairs"))
        return self._arrays[name]

    def _loader(self, name: str, shuffle: bool) -> DataLoader:
        dataset = TensorDataset(*self._cached(name))
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=shuffle, generator=self._generator)

    def train_loader(self, shuffle: bool = True) -> DataLoader:
        """Batches of the training split (shuffled by default)."""
        return self._loader("train", shuffle)

    def val_loader(self) -> DataLoader:
        """Batches of the validation split, in order."""
        return self._loader("val", False)

    def test_loader(self) -> DataLoader:
        """Batches of the test split, in order."""
        return self._loader("test", False)

    def __iter__(self) -> Iterator[Batch]:
        return iter(self.train_loader())


def load_data_nmt(
    batch_size: int,
    num_steps: int,
    *,
    num_examples: int | None = None,
    min_freq: int = 2,
    seed: int = 0,
    val_frac: float = 0.1,
    test_frac: float = 0.1,
    cache_dir: str | os.PathLike[str] | None = None,
) -> NMTData:
    """Load, preprocess, tokenize and split fra-eng; build vocabularies on the training split.

    Args:
        batch_size: examples per batch.
        num_steps: every sequence is truncated/padded to this many tokens (``<eos>`` included).
        num_examples: keep only the first this many pairs (the file is sorted shortest first).
        min_freq: a token enters a vocabulary if seen this often **in the training split**;
            rarer tokens map to ``<unk>``.
        seed: seeds the split and the shuffling.
        val_frac, test_frac: fractions of distinct English sentences held out (see
            :func:`split_by_source`).
        cache_dir: data directory (default :func:`data_dir`).
    """
    positive_int("batch_size", batch_size)
    positive_int("num_steps", num_steps)
    if num_examples is not None:
        positive_int("num_examples", num_examples)
    text = load_fra_eng_text(cache_dir=cache_dir)
    source, target = tokenize_nmt(preprocess_nmt(text), max_examples=num_examples)
    pairs: list[Pair] = list(zip(source, target))
    split = split_by_source(pairs, val_frac=val_frac, test_frac=test_frac, seed=seed)
    reserved = ["<pad>", "<bos>", "<eos>"]
    src_vocab = Vocab([src for src, _ in split.train], min_freq=min_freq, reserved_tokens=reserved)
    tgt_vocab = Vocab([tgt for _, tgt in split.train], min_freq=min_freq, reserved_tokens=reserved)
    return NMTData(
        src_vocab=src_vocab,
        tgt_vocab=tgt_vocab,
        train_pairs=split.train,
        val_pairs=split.val,
        test_pairs=split.test,
        batch_size=batch_size,
        num_steps=num_steps,
        seed=seed,
    )
