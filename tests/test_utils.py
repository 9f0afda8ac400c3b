"""Tests for d2l_attn.utils: device choice, seeding, quick mode, atomic save, weights-only load."""

import sys
import types

import numpy as np
import pytest
import torch

from d2l_attn import utils


def test_get_device_and_env(monkeypatch):
    monkeypatch.setenv("D2L_ATTN_DEVICE", "cpu")
    assert utils.get_device() == torch.device("cpu")
    monkeypatch.delenv("D2L_ATTN_DEVICE")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert utils.get_device() == torch.device("cuda")  # CUDA first when there is one
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert utils.get_device() == torch.device("cpu")


def test_quick_mode(monkeypatch):
    monkeypatch.setenv("D2L_ATTN_QUICK", "1")
    assert utils.is_quick() and utils.quick_or_full(2, 30) == 2
    monkeypatch.setenv("D2L_ATTN_QUICK", "0")
    assert not utils.is_quick() and utils.quick_or_full(2, 30) == 30
    monkeypatch.setenv("D2L_ATTN_QUICK", "maybe")
    with pytest.raises(ValueError, match="D2L_ATTN_QUICK"):
        utils.is_quick()


def test_seed_everything_is_reproducible():
    utils.seed_everything(3)
    a = torch.randn(4), np.random.rand(2)
    gen = utils.seed_everything(3)
    b = torch.randn(4), np.random.rand(2)
    torch.testing.assert_close(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert isinstance(gen, torch.Generator)
    with pytest.raises(ValueError, match="seed"):
        utils.seed_everything(-1)


def test_in_colab_follows_the_colab_module(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert utils.in_colab() is False
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    assert utils.in_colab() is True


def test_reachable_sees_a_listening_socket_and_not_a_closed_port():
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        assert utils.reachable("127.0.0.1", port, timeout=1.0) is True
    finally:
        server.close()
    assert utils.reachable("127.0.0.1", port, timeout=1.0) is False  # closed now: refused
    with pytest.raises(ValueError, match="host"):
        utils.reachable("")


def test_machine_description_names_the_cpu_threads():
    threads = torch.get_num_threads()
    text = utils.machine_description("cpu")
    assert text.startswith("CPU ") and f"{threads} torch thread(s)" in text and torch.__version__ in text


def test_save_atomic_and_load_weights_only_round_trip(tmp_path):
    from d2l_attn.utils import load_weights_only, save_atomic

    target = tmp_path / "sub" / "state.pt"
    assert save_atomic({"w": torch.arange(3), "note": "ok"}, target) == target
    assert [p.name for p in target.parent.iterdir()] == ["state.pt"]  # no temporary file left over
    state = load_weights_only(target)
    assert state["note"] == "ok" and torch.equal(state["w"], torch.arange(3))
    with pytest.raises(ValueError, match=r"no checkpoint at '.*missing\.pt'"):
        load_weights_only(tmp_path / "missing.pt", what="checkpoint")


def test_load_weights_only_refuses_arbitrary_objects(tmp_path):
    from d2l_attn.utils import load_weights_only

    path = tmp_path / "evil.pt"
    torch.save({"obj": _Opaque()}, path)  # a pickled class instance, not plain data
    with pytest.raises(Exception, match="[Ww]eights only load failed|Unsupported global"):
        load_weights_only(path)


class _Opaque:
    pass


@pytest.mark.parametrize(
    "value, match",
    [
        ("tpu", r"device must name a device, expected 'cpu', 'cuda', 'cuda:<index>' or 'mps'; got 'tpu'"),
        ("meta", r"device must be a device the book supports"),
        (torch.device("meta"), r"device must be a device the book supports"),
        (3.5, r"device must name a device"),
    ],
)
def test_get_device_rejects_unknown_devices(value, match):
    with pytest.raises(ValueError, match=match):
        utils.get_device(value)


def test_get_device_rejects_devices_this_machine_lacks(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    for value in ("cuda", "cuda:0", torch.device("cuda")):
        with pytest.raises(ValueError, match=r"no CUDA device \(torch.cuda.is_available\(\) is False\)"):
            utils.get_device(value)
    with pytest.raises(ValueError, match="MPS backend is not available"):
        utils.get_device("mps")
    monkeypatch.setenv("D2L_ATTN_DEVICE", "cuda")  # the variable is named when it is the source
    with pytest.raises(ValueError, match=r"^D2L_ATTN_DEVICE='cuda', but"):
        utils.get_device()
    assert utils.get_device("cpu") == torch.device("cpu")  # an explicit choice wins over the variable


def test_get_device_checks_the_cuda_index(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert utils.get_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(ValueError, match=r"only 2 CUDA devices \(indices 0..1\)"):
        utils.get_device("cuda:2")


def test_load_weights_only_explains_a_truncated_file(tmp_path):
    path = utils.save_atomic({"w": torch.randn(64, 64), "step": 3}, tmp_path / "ckpt.pt")
    data = path.read_bytes()
    # cut at the start, in the header, in the middle, and just before the end: torch.load raises
    # EOFError, UnpicklingError, RuntimeError or OSError [Errno 22] depending on where
    for size in (0, 1, 100, len(data) // 2, len(data) - 1):
        cut = tmp_path / f"cut{size}.pt"
        cut.write_bytes(data[:size])
        with pytest.raises(
            ValueError,
            match=rf"checkpoint at '.*cut{size}\.pt' \({size} bytes\) is not a "
            "complete torch.save file: it is truncated or corrupt",
        ):
            utils.load_weights_only(cut, what="checkpoint")
    assert utils.load_weights_only(path)["step"] == 3  # the whole file still loads
