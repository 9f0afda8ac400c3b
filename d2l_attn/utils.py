"""Runtime helpers shared by every chapter: device choice, seeding, quick mode.

Nothing here changes global state except :func:`seed_everything`, whose whole purpose is to
seed the global random number generators (and it says so).
"""

from __future__ import annotations

import os
import platform
import random
import socket
import sys
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from .display import table  # results as HTML tables in a notebook (re-exported for the chapters)

__all__ = [
    "table",
    "get_device",
    "seed_everything",
    "is_quick",
    "quick_or_full",
    "in_colab",
    "reachable",
    "machine_description",
    "compiled",
    "save_atomic",
    "load_weights_only",
]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def get_device(prefer: str | torch.device | None = None) -> torch.device:
    """Return CUDA if available, else Apple's MPS, else the CPU.

    ``prefer`` (or the environment variable ``D2L_ATTN_DEVICE``) forces a device, e.g. ``"cpu"``
    or ``"cuda:1"``; a device type other than cpu/cuda/mps, or one this machine lacks, raises
    ``ValueError`` here rather than an error deep inside torch at the first ``.to(device)``.
    """
    name = "device"
    if not prefer and os.environ.get("D2L_ATTN_DEVICE"):
        prefer, name = os.environ["D2L_ATTN_DEVICE"], "D2L_ATTN_DEVICE"
    if prefer:
        return _available_device(prefer, name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _available_device(value: str | torch.device, name: str) -> torch.device:
    expected = "expected 'cpu', 'cuda', 'cuda:<index>' or 'mps'"
    try:
        device = value if isinstance(value, torch.device) else torch.device(value)
    except (RuntimeError, TypeError):
        raise ValueError(f"{name} must name a device, {expected}; got {value!r}") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(
                f"{name}={value!r}, but this machine or torch build has no CUDA device "
                "(torch.cuda.is_available() is False): use 'cpu' or None"
            )
        if device.index is not None and device.index >= count:
            raise ValueError(f"{name}={value!r}, but there are only {count} CUDA devices (indices 0..{count - 1})")
    elif device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"{name}={value!r}, but Apple's MPS backend is not available here: use 'cpu' or None")
    elif device.type != "cpu":
        raise ValueError(f"{name} must be a device the book supports, {expected}; got {value!r}")
    return device


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python's, NumPy's and PyTorch's global generators; return a fresh seeded ``torch.Generator``.

    Same seed + same machine + same library versions => the same numbers.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be an int in [0, 2**63), got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def is_quick() -> bool:
    """True when ``D2L_ATTN_QUICK`` is set to 1/true/yes/on (the test suite sets it).

    Quick mode shrinks training so that every notebook runs in well under a minute on 2 CPU cores.
    """
    value = os.environ.get("D2L_ATTN_QUICK", "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"D2L_ATTN_QUICK must be one of 1/0/true/false/yes/no/on/off, got {value!r}")


_T = TypeVar("_T")


def quick_or_full(quick: _T, full: _T) -> _T:
    """Return ``quick`` in quick mode, else ``full`` (e.g. ``num_epochs = quick_or_full(2, 30)``)."""
    return quick if is_quick() else full


def in_colab() -> bool:
    """True when running inside Google Colab (which imports ``google.colab`` at start-up, as the setup cells test)."""
    return "google.colab" in sys.modules


def reachable(host: str, port: int = 443, timeout: float = 2.0) -> bool:
    """True if a TCP connection to ``host:port`` opens within ``timeout`` seconds; never hangs.

    The probe runs in a daemon thread that is waited for ``timeout + 1`` seconds, so a slow DNS
    lookup cannot block a notebook either (chapters 9 and 11 probe the model hubs with it).
    """
    if not isinstance(host, str) or not host:
        raise ValueError(f"host must be a non-empty string, got {host!r}")
    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 1.0)
    return bool(result and result[0])


def machine_description(device: str | torch.device | None = None) -> str:
    """One line naming the machine for a benchmark or a notebook: the GPU, or the CPU, its cores and torch threads."""
    device = get_device(device)
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda}), torch {torch.__version__}"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"{device.type.upper()} {platform.processor() or platform.machine()}, {cores} cores, "
        f"{torch.get_num_threads()} torch thread(s), torch {torch.__version__}"
    )


def compiled(model: torch.nn.Module) -> torch.nn.Module:
    """``torch.compile(model)`` (the same parameters, a compiled forward) where this torch and platform
    can compile; otherwise ``model`` itself, with a :class:`RuntimeWarning` that says why."""
    import warnings

    why = None if hasattr(torch, "compile") else f"torch {torch.__version__} has no torch.compile"
    if why is None and not torch._dynamo.is_dynamo_supported():
        why = f"torch.compile does not support this platform (Python {sys.version.split()[0]}, {sys.platform})"
    if why is None:
        return torch.compile(model)
    warnings.warn(f"compile=True: {why}; the model runs uncompiled (eager)", RuntimeWarning, stacklevel=3)
    return model


def save_atomic(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save(obj)`` to a temporary file next to ``path``, then :func:`os.replace` it into place.

    An interrupted save never leaves a half-written file under the final name. Returns ``path``.
    """
    path = Path(path)
    blocking = next((p for p in (path.parent, *path.parent.parents) if p.exists()), None)
    if blocking is not None and not blocking.is_dir():
        raise ValueError(f"path {str(path)!r} cannot be written: its parent {str(blocking)!r} is a file")
    if path.is_dir():
        raise ValueError(f"path {str(path)!r} is a directory; pass a file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        torch.save(obj, tmp_name)
        os.replace(tmp_name, path)  # atomic on POSIX and Windows
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return path


def load_weights_only(
    path: str | os.PathLike[str], map_location: str | torch.device | None = "cpu", what: str = "file"
) -> Any:
    """``torch.load(path, weights_only=True)``: plain data and tensors only, never arbitrary objects.

    A missing file raises ``ValueError("no <what> at '<path>'")``; a file that is not a complete
    ``torch.save`` archive (truncated by a full disk or an interrupted copy, or not a checkpoint at
    all) raises ``ValueError`` saying so, instead of the ``OSError``/``RuntimeError``/``EOFError``
    that ``torch.load`` raises depending on where the file was cut.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no {what} at {str(path)!r}")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; its directory sits at the end
        raise ValueError(
            f"the {what} at {str(path)!r} ({path.stat().st_size} bytes) is not a complete "
            "torch.save file: it is truncated or corrupt (e.g. an interrupted copy); save it again"
        )
    return torch.load(path, map_location=map_location, weights_only=True)
