r"""Image datasets of chapter 10: scikit-learn's digits (offline) and Fashion-MNIST (downloaded).

* :func:`load_digits_data` -- the 1,797 real 8x8 handwritten digits that ship inside the
  scikit-learn wheel (no network), split into training and test sets *per class* with a private
  generator, scaled to :math:`[0, 1]` and standardized with the training set's mean and standard
  deviation.
* :func:`load_fashion_mnist` -- Zalando's Fashion-MNIST (60,000 + 10,000 28x28 images, 10
  classes), downloaded with :func:`d2l_attn.data.download` (MD5 checksums published in the
  maintainers' README, atomic, cached, size-limited) and parsed by :func:`read_idx` with NumPy:
  no torchvision.
* :func:`subset` (a stratified fraction of a training set) and :func:`random_shift` (the
  augmentation measured in chapter 10: translate each image by up to ``s`` pixels, zeros fill in).

IDX format (LeCun's MNIST files): two zero bytes, a type byte (``0x08`` = unsigned byte), the
number of dimensions :math:`n`, then :math:`n` big-endian 32-bit sizes and
:math:`\prod_i \text{size}_i` bytes of data. :func:`read_idx` checks every part and raises
``ValueError`` naming the file for a corrupt, truncated or oversized file.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .._checks import nonnegative_int
from .download import download

__all__ = [
    "ImageData",
    "load_digits_data",
    "read_idx",
    "FASHION_MNIST_URL",
    "FASHION_MNIST_MD5",
    "FASHION_MNIST_CLASSES",
    "load_fashion_mnist",
    "subset",
    "random_shift",
]

#: Where the maintainers publish the files (zalandoresearch/fashion-mnist, README "Get the Data").
FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
#: MD5 checksums from the same README (commit 02cf0676df9403f820db28474248ba7d7d1060bb).
FASHION_MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
#: the largest file is 26 MB compressed and 47 MB (60,000 x 28 x 28 bytes + header) unpacked
_MAX_DOWNLOAD_BYTES = 32 * 2**20
_MAX_IDX_BYTES = 64 * 2**20


@dataclass
class ImageData:
    """Images ``(N, C, H, W)`` float32 (standardized) with integer labels ``(N,)``, train and test."""

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: tuple[str, ...]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)``."""
        return tuple(self.train_images.shape[1:])

    def __repr__(self) -> str:
        return (
            f"ImageData({self.name!r}, train={len(self.train_labels)}, test={len(self.test_labels)}, "
            f"image_shape={self.image_shape}, classes={len(self.classes)})"
        )


def _check_fraction(name: str, value, *, allow_one: bool) -> float:
    ok = (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and 0 < value
        and (value <= 1 if allow_one else value < 1)
    )
    if not ok:
        interval = "(0, 1]" if allow_one else "(0, 1)"
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")
    return float(value)


def _stratified_split(labels: torch.Tensor, fraction: float, generator: torch.Generator):
    """Indices ``(first, rest)``: ``round(fraction * n_c)`` (at least 1) of each class ``c`` go to ``first``."""
    first, rest = [], []
    for c in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=generator)]
        k = max(1, round(fraction * len(idx)))
        first.append(idx[:k])
        rest.append(idx[k:])
    return torch.cat(first).sort().values, torch.cat(rest).sort().values


def _standardize(train: torch.Tensor, test: torch.Tensor):
    mean, std = train.mean(), train.std()
    return (train - mean) / std, (test - mean) / std


def load_digits_data(test_fraction: float = 0.25, seed: int = 0) -> ImageData:
    """scikit-learn's 1,797 8x8 digits as ``(N, 1, 8, 8)`` tensors, split per class (no network).

    Pixel values (0..16) are scaled to [0, 1], then standardized with the training set's
    statistics. ``seed`` seeds a private generator: the split is the same on every machine.
    """
    test_fraction = _check_fraction("test_fraction", test_fraction, allow_one=False)
    nonnegative_int("seed", seed)
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - scikit-learn is a dependency
        raise RuntimeError("load_digits_data needs scikit-learn: pip install scikit-learn") from exc
    bunch = load_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32)[:, None] / 16.0  # (N, 1, 8, 8)
    labels = torch.tensor(bunch.target, dtype=torch.long)  # (N,)
    test_idx, train_idx = _stratified_split(labels, test_fraction, torch.Generator().manual_seed(seed))
    train, test = _standardize(images[train_idx], images[test_idx])
    return ImageData("digits", train, labels[train_idx], test, labels[test_idx], tuple(str(i) for i in range(10)))


_IDX_DTYPES = {0x08: np.uint8}


def read_idx(source: str | os.PathLike[str] | bytes, *, name: str | None = None) -> np.ndarray:
    """Parse an IDX file (gzip-compressed or not) into a NumPy array; ``source`` is a path or bytes.

    Raises ``ValueError`` naming the file when the gzip stream is corrupt or truncated, the magic
    number is wrong, the type is not unsigned bytes, or the data is shorter or longer than the
    header says.
    """
    if isinstance(source, (bytes, bytearray)):
        raw, label = bytes(source), name or "<bytes>"
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        label = name or str(path)
        if not path.is_file():
            raise ValueError(f"no IDX file at {label!r}")
        if path.stat().st_size > _MAX_IDX_BYTES:  # compressed or not, nothing that large is read
            raise ValueError(f"{label!r} is larger than {_MAX_IDX_BYTES:,} bytes; refusing it")
        raw = path.read_bytes()
    else:
        raise ValueError(f"source must be a path or bytes, got {type(source).__name__}")
    if raw[:2] == b"\x1f\x8b":  # gzip
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as handle:
                raw = handle.read(_MAX_IDX_BYTES + 1)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{label!r} is not a valid gzip file (corrupt or truncated): {exc}") from exc
        if len(raw) > _MAX_IDX_BYTES:
            raise ValueError(f"{label!r} unpacks to more than {_MAX_IDX_BYTES:,} bytes; refusing it")
    elif len(raw) > _MAX_IDX_BYTES:
        raise ValueError(f"{label!r} is larger than {_MAX_IDX_BYTES:,} bytes; refusing it")
    if len(raw) < 4 or raw[:2] != b"\x00\x00":
        raise ValueError(f"{label!r} is not an IDX file (its first bytes must be 0x00 0x00)")
    dtype_code, ndim = raw[2], raw[3]
    if dtype_code not in _IDX_DTYPES:
        raise ValueError(f"{label!r}: IDX type 0x{dtype_code:02x} is not supported (expected 0x08, unsigned bytes)")
    if not 1 <= ndim <= 4 or len(raw) < 4 + 4 * ndim:
        raise ValueError(f"{label!r}: truncated or invalid IDX header ({ndim} dimensions)")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = math.prod(int(n) for n in shape)  # Python ints: no int64 wrap-around
    actual = len(raw) - 4 - 4 * ndim
    if actual != expected:
        raise ValueError(
            f"{label!r}: the header promises {expected:,} bytes of shape {shape}, "
            f"the file holds {actual:,} (truncated or corrupt)"
        )
    return np.frombuffer(raw, dtype=_IDX_DTYPES[dtype_code], offset=4 + 4 * ndim).reshape(shape)


def load_fashion_mnist(
    *,
    base_url: str = FASHION_MNIST_URL,
    checksums: dict[str, str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    timeout: float = 30,
) -> ImageData:
    """Fashion-MNIST as ``(N, 1, 28, 28)`` tensors: 60,000 training and 10,000 test images.

    The four files are fetched with :func:`d2l_attn.data.download` into ``cache_dir`` (default
    the data directory), checked against ``checksums`` (default :data:`FASHION_MNIST_MD5`), and
    parsed with :func:`read_idx`. Without network and cache this raises ``RuntimeError`` with a
    hint on where to place the files. Images are scaled to [0, 1] and standardized with the
    training set's statistics.
    """
    checksums = FASHION_MNIST_MD5 if checksums is None else checksums
    if set(checksums) != set(FASHION_MNIST_MD5):
        raise ValueError(f"checksums must have the keys {sorted(FASHION_MNIST_MD5)}, got {sorted(checksums)}")
    base = base_url if base_url.endswith("/") else base_url + "/"
    arrays = {}
    for filename, md5 in checksums.items():
        path = download(
            base + filename,
            md5=md5,
            cache_dir=cache_dir,
            timeout=timeout,
            max_bytes=_MAX_DOWNLOAD_BYTES,
            offline_name=filename,
        )
        arrays[filename.split("-idx")[0]] = read_idx(path)
    images, labels = {}, {}
    for split in ("train", "t10k"):
        x, y = arrays[f"{split}-images"], arrays[f"{split}-labels"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"Fashion-MNIST {split}: images {x.shape} and labels {y.shape} do not match")
        if y.size and y.max() >= len(FASHION_MNIST_CLASSES):
            raise ValueError(f"Fashion-MNIST {split}: label {int(y.max())} is not a class (0..9)")
        images[split] = torch.tensor(x, dtype=torch.float32)[:, None] / 255.0  # (N, 1, 28, 28)
        labels[split] = torch.tensor(y, dtype=torch.long)
    train, test = _standardize(images["train"], images["t10k"])
    return ImageData("fashion-mnist", train, labels["train"], test, labels["t10k"], FASHION_MNIST_CLASSES)


def subset(
    images: torch.Tensor, labels: torch.Tensor, fraction: float, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """A stratified ``fraction`` of ``(images, labels)`` (at least one example per class), chosen
    with a private generator seeded by ``seed``; ``fraction=1`` returns everything."""
    fraction = _check_fraction("fraction", fraction, allow_one=True)
    nonnegative_int("seed", seed)
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or len(labels) != len(images):
        raise ValueError(
            f"labels must be a 1-D tensor with one label per image, got "
            f"{tuple(getattr(labels, 'shape', ()))} for {len(images)} images"
        )
    if fraction == 1:
        return images, labels
    idx, _ = _stratified_split(labels, fraction, torch.Generator().manual_seed(seed))
    return images[idx], labels[idx]


def random_shift(images: torch.Tensor, max_shift: int, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Translate each image ``(B, C, H, W)`` by its own random :math:`(\delta_y, \delta_x) \in
    \{-s..s\}^2` pixels; pixels shifted in from outside are the image's minimum (the background).

    ``generator``: a private ``torch.Generator`` (the global one is never touched if given).
    """
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise ValueError(f"images must have shape (B, C, H, W), got {tuple(getattr(images, 'shape', ()))}")
    if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 0:
        raise ValueError(f"max_shift must be a non-negative int, got {max_shift!r}")
    if max_shift == 0:
        return images
    b, c, h, w = images.shape
    s = max_shift
    background = images.amin(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
    padded = torch.nn.functional.pad(images - background, (s, s, s, s)) + background  # (B, C, H+2s, W+2s)
    shifts = torch.randint(-s, s + 1, (2, b), generator=generator, device="cpu").to(images.device)
    rows = torch.arange(h, device=images.device)[None] + s - shifts[0][:, None]  # (B, H)
    cols = torch.arange(w, device=images.device)[None] + s - shifts[1][:, None]  # (B, W)
    batch = torch.arange(b, device=images.device)[:, None, None, None]
    chan = torch.arange(c, device=images.device)[None, :, None, None]
    return padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]  # (B, C, H, W)
