"""Tests for d2l_attn.data.images: the digits split, the IDX parser, the Fashion-MNIST download path
(small synthetic IDX files served over file:// and a throw-away HTTP server on 127.0.0.1), stratified
subsets and the random-shift augmentation. No real network is used."""

from __future__ import annotations

import gzip
import hashlib
import struct

import numpy as np
import pytest
import torch

from d2l_attn.data import download, images
from d2l_attn.data.images import FASHION_MNIST_MD5, load_digits_data, load_fashion_mnist, random_shift, read_idx, subset

# tests/conftest.py: the local HTTP server (http_server) and no proxy / no user cache (offline_env)
pytestmark = pytest.mark.usefixtures("offline_env")


def idx_bytes(array: np.ndarray, *, compress: bool = True) -> bytes:
    header = b"\x00\x00\x08" + bytes([array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    return gzip.compress(raw, mtime=0) if compress else raw


def md5(payload: bytes) -> str:
    return hashlib.md5(payload).hexdigest()


def fake_fashion(directory, n_train=12, n_test=5, seed=0):
    """Write four small IDX files with Fashion-MNIST's names; return their MD5 checksums."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte.gz": np.arange(n_train) % 10,
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte.gz": np.arange(n_test) % 10,
    }
    sums = {}
    for name, array in arrays.items():
        payload = idx_bytes(array)
        (directory / name).write_bytes(payload)
        sums[name] = md5(payload)
    return sums, arrays


def test_digits_split_is_stratified_disjoint_standardized_and_reproducible():
    a, b = load_digits_data(seed=0), load_digits_data(seed=0)
    assert a.image_shape == (1, 8, 8) and len(a.train_labels) + len(a.test_labels) == 1797
    torch.testing.assert_close(a.test_images, b.test_images)
    assert abs(a.train_images.mean().item()) < 1e-5 and abs(a.train_images.std().item() - 1) < 1e-4
    for c in range(10):
        n_test, n_all = (a.test_labels == c).sum(), (a.train_labels == c).sum() + (a.test_labels == c).sum()
        assert abs(n_test / n_all - 0.25) < 0.02
    # no test image is also a training image (the raw digits have no exact duplicates across splits)
    train = {tuple(x.flatten().tolist()) for x in a.train_images}
    assert not any(tuple(x.flatten().tolist()) in train for x in a.test_images)
    other = load_digits_data(seed=1)
    assert not torch.equal(other.test_labels, a.test_labels) or not torch.equal(other.test_images, a.test_images)
    with pytest.raises(ValueError, match="test_fraction"):
        load_digits_data(test_fraction=1.0)
    with pytest.raises(ValueError, match="seed"):
        load_digits_data(seed=-1)


def test_read_idx_round_trip_compressed_and_raw(tmp_path):
    array = np.arange(2 * 3 * 4).reshape(2, 3, 4) % 256
    for compress in (True, False):
        path = tmp_path / f"x{compress}.idx"
        path.write_bytes(idx_bytes(array, compress=compress))
        np.testing.assert_array_equal(read_idx(path), array)
    np.testing.assert_array_equal(read_idx(idx_bytes(np.array([3, 1, 4]))), [3, 1, 4])


@pytest.mark.parametrize(
    "payload, message",
    [
        (idx_bytes(np.zeros((3, 4, 4)), compress=False)[:-1], "truncated"),
        (idx_bytes(np.zeros((3, 4, 4)), compress=False) + b"\x00", "holds 49"),
        (idx_bytes(np.zeros((3, 4, 4)))[:-12], "gzip"),
        (b"\x01\x00\x08\x01\x00\x00\x00\x01\x07", "not an IDX file"),
        (b"\x00\x00\x0d\x01\x00\x00\x00\x01\x07\x07\x07\x07", "0x0d"),
        (b"\x00\x00\x08\x03\x00\x00", "header"),
        (b"", "not an IDX file"),
    ],
    ids=["truncated", "too-long", "truncated-gzip", "magic", "float-type", "short-header", "empty"],
)
def test_read_idx_rejects_corrupt_files_with_their_name(tmp_path, payload, message):
    path = tmp_path / "bad-images-idx3-ubyte.gz"
    path.write_bytes(payload)
    with pytest.raises(ValueError, match=message) as info:
        read_idx(path)
    assert "bad-images-idx3-ubyte.gz" in str(info.value)


def test_read_idx_refuses_oversized_files_compressed_or_not(tmp_path, monkeypatch):
    """The size limit holds for plain IDX files too (reliability review IM20), before reading."""
    import d2l_attn.data.images as images

    monkeypatch.setattr(images, "_MAX_IDX_BYTES", 50)
    small, large = idx_bytes(np.zeros((2, 4, 4)), compress=False), idx_bytes(np.zeros((3, 4, 4)), compress=False)
    assert len(small) <= 50 < len(large)
    np.testing.assert_array_equal(read_idx(small), np.zeros((2, 4, 4)))
    path = tmp_path / "big-idx3-ubyte"
    path.write_bytes(large)
    for source in (path, large, gzip.compress(large, mtime=0)):
        with pytest.raises(ValueError, match="refusing it"):
            read_idx(source)


def test_fashion_mnist_over_file_urls_then_from_the_cache(tmp_path):
    www, cache = tmp_path / "www", tmp_path / "cache"
    www.mkdir()
    sums, arrays = fake_fashion(www)
    data = load_fashion_mnist(base_url=www.as_uri(), checksums=sums, cache_dir=cache)
    assert data.train_images.shape == (12, 1, 28, 28) and data.test_images.shape == (5, 1, 28, 28)
    torch.testing.assert_close(data.train_labels, torch.tensor(arrays["train-labels-idx1-ubyte.gz"]))
    raw = torch.tensor(arrays["train-images-idx3-ubyte.gz"], dtype=torch.float32)[:, None] / 255
    torch.testing.assert_close(data.train_images, (raw - raw.mean()) / raw.std())  # training-set statistics
    for name in sums:
        (www / name).unlink()  # offline now: the verified cache is enough
    again = load_fashion_mnist(base_url=www.as_uri(), checksums=sums, cache_dir=cache)
    torch.testing.assert_close(again.test_images, data.test_images)


def test_fashion_mnist_over_http_with_a_wrong_checksum_leaves_nothing(http_server, tmp_path):
    base, www, server = http_server
    sums, _ = fake_fashion(www)
    wrong = dict(sums, **{"t10k-images-idx3-ubyte.gz": "0" * 32})
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="checksum mismatch.*md5"):
        load_fashion_mnist(base_url=base, checksums=wrong, cache_dir=cache)
    assert not (cache / "t10k-images-idx3-ubyte.gz").exists()
    assert not [p for p in cache.iterdir() if p.name.endswith(".part")]
    data = load_fashion_mnist(base_url=base + "/", checksums=sums, cache_dir=cache)
    assert len(data.train_labels) == 12 and len(server.requests) >= 4


def test_fashion_mnist_bad_labels_and_mismatched_files(tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    sums, _ = fake_fashion(www)
    payload = idx_bytes(np.full(12, 10))  # label 10 is not a class
    (www / "train-labels-idx1-ubyte.gz").write_bytes(payload)
    with pytest.raises(ValueError, match="label 10"):
        load_fashion_mnist(
            base_url=www.as_uri(),
            checksums=dict(sums, **{"train-labels-idx1-ubyte.gz": md5(payload)}),
            cache_dir=tmp_path / "c1",
        )
    payload = idx_bytes(np.zeros(11))  # 11 labels for 12 images
    (www / "train-labels-idx1-ubyte.gz").write_bytes(payload)
    with pytest.raises(ValueError, match="do not match"):
        load_fashion_mnist(
            base_url=www.as_uri(),
            checksums=dict(sums, **{"train-labels-idx1-ubyte.gz": md5(payload)}),
            cache_dir=tmp_path / "c2",
        )
    with pytest.raises(ValueError, match="checksums"):
        load_fashion_mnist(checksums={"x": "0" * 32})


def test_published_checksums_are_md5s_of_the_four_files():
    assert sorted(FASHION_MNIST_MD5) == sorted(
        [
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
        ]
    )
    assert all(len(v) == 32 and int(v, 16) >= 0 for v in FASHION_MNIST_MD5.values())


def test_download_md5_max_bytes_and_exactly_one_checksum(tmp_path):
    source = tmp_path / "blob.bin"
    source.write_bytes(b"x" * 5000)
    path = download(source.as_uri(), md5=md5(b"x" * 5000), cache_dir=tmp_path / "c")
    assert path.read_bytes() == b"x" * 5000
    with pytest.raises(ValueError, match="max_bytes"):
        download(source.as_uri(), md5=md5(b"x" * 5000), cache_dir=tmp_path / "d", max_bytes=4096)
    assert not (tmp_path / "d" / "blob.bin").exists()
    with pytest.raises(ValueError, match="exactly one checksum"):
        download(source.as_uri(), cache_dir=tmp_path / "e")
    with pytest.raises(ValueError, match="exactly one checksum"):
        download(source.as_uri(), "0" * 40, md5="0" * 32, cache_dir=tmp_path / "e")
    with pytest.raises(ValueError, match="md5 must be 32"):
        download(source.as_uri(), md5="abc", cache_dir=tmp_path / "e")


def test_subset_is_stratified_and_deterministic():
    data = load_digits_data()
    x, y = subset(data.train_images, data.train_labels, 0.1, seed=3)
    x2, _ = subset(data.train_images, data.train_labels, 0.1, seed=3)
    torch.testing.assert_close(x, x2)
    counts = torch.bincount(y, minlength=10)
    assert counts.min() >= 12 and counts.max() <= 15 and abs(len(y) - 0.1 * len(data.train_labels)) <= 6
    tiny_x, tiny_y = subset(data.train_images, data.train_labels, 0.001)
    assert sorted(tiny_y.tolist()) == list(range(10))  # at least one per class
    assert subset(x, y, 1)[0] is x
    with pytest.raises(ValueError, match="fraction"):
        subset(x, y, 0)
    with pytest.raises(ValueError, match="labels"):
        subset(x, y[:-1], 0.5)


def test_random_shift_translates_with_a_private_generator():
    img = torch.zeros(50, 1, 8, 8)
    img[:, 0, 4, 3] = 1.0  # one bright pixel
    state = torch.random.get_rng_state()
    out = random_shift(img, 2, torch.Generator().manual_seed(0))
    assert torch.equal(torch.random.get_rng_state(), state)  # the global generator is untouched
    assert out.shape == img.shape
    positions = torch.nonzero(out[:, 0] == 1.0)  # (B, 3): image, row, column
    assert len(positions) == 50  # every image still holds its pixel (|shift| <= 2 keeps it inside)
    dy, dx = positions[:, 1] - 4, positions[:, 2] - 3
    assert dy.abs().max() <= 2 and dx.abs().max() <= 2 and len(set(zip(dy.tolist(), dx.tolist()))) > 10
    assert out.sum() == 50
    assert random_shift(img, 0) is img
    with pytest.raises(ValueError, match="max_shift"):
        random_shift(img, -1)
    with pytest.raises(ValueError, match="images"):
        random_shift(img[0], 1)


def test_module_is_listed_in_the_data_package():
    from d2l_attn import data

    for name in images.__all__:
        assert hasattr(data, name), name
