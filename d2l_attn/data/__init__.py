"""Datasets of the book, each loaded from a local copy or downloaded safely.

* :mod:`.download` -- the data directory, checksum-verified atomic downloads, safe zip extraction;
* :mod:`.vocab` -- :class:`Vocab` (tokens <-> indices) and :func:`truncate_pad`;
* :mod:`.nmt` -- the English-French corpus of chapters 4 and 7 (:func:`load_data_nmt`);
* :mod:`.images` -- scikit-learn's 8x8 digits (offline) and Fashion-MNIST (downloaded, MD5-checked,
  parsed with NumPy), stratified subsets and random-shift augmentation (chapter 10);
* :mod:`.synthetic` -- small generated tasks with known answers (regression curves, copy and
  key-value lookup), for experiments whose truth must be known.

The names most chapters use are importable from here: ``from d2l_attn.data import load_data_nmt``.
"""

from .download import data_dir, download, extract_zip, sha1_of_file
from .images import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_MD5,
    FASHION_MNIST_URL,
    ImageData,
    load_digits_data,
    load_fashion_mnist,
    random_shift,
    read_idx,
    subset,
)
from .nmt import (
    FRA_ENG_SHA1,
    FRA_ENG_URL,
    FULL_NUM_EXAMPLES,
    NMTData,
    SplitPairs,
    build_array_nmt,
    group_references,
    load_data_nmt,
    load_fra_eng_text,
    preprocess_nmt,
    split_by_source,
    tokenize_nmt,
)
from .synthetic import RecallBatch, associative_recall, copy_task, neighbor_lookup, sine_regression
from .vocab import Vocab, truncate_pad

__all__ = [
    "data_dir",
    "sha1_of_file",
    "download",
    "extract_zip",
    "Vocab",
    "truncate_pad",
    "FRA_ENG_URL",
    "FRA_ENG_SHA1",
    "FULL_NUM_EXAMPLES",
    "load_fra_eng_text",
    "preprocess_nmt",
    "tokenize_nmt",
    "SplitPairs",
    "split_by_source",
    "group_references",
    "build_array_nmt",
    "NMTData",
    "load_data_nmt",
    "sine_regression",
    "neighbor_lookup",
    "copy_task",
    "RecallBatch",
    "associative_recall",
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
