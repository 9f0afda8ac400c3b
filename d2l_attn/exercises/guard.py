"""What a checker may and may not do while it runs a reader's answer.

* :func:`isolated_state` -- checking an answer never changes the reader's global state: the
  random number generators of PyTorch (CPU, and CUDA when initialized), NumPy and Python, grad
  mode, the default dtype and the number of threads are restored afterwards, whatever the
  reader's function did. Checkers draw their inputs from private ``torch.Generator`` objects.
* :func:`watch_calls` -- "do not use the library's X": while the reader's function runs, a
  profile hook records every call into forbidden code, however it was reached (an alias, a
  ``functools.partial``, an instance of a forbidden class, the library function itself passed
  as the answer). Nothing is patched, and the reader's source text is never read.

**A teaching aid, not a sandbox.** Answers run in the reader's own kernel, with the reader's
permissions: the checker refuses *shortcuts* (calling the function an exercise asks you to
write), it does not contain code that sets out to cheat or to do harm, and it need not, since
that code could run in the same kernel without any checker. It does close the one-line way of
switching the watch off: an answer that calls ``sys.setprofile`` while it is watched (to remove
or replace the hook, even if it puts it back), or after which the hook is no longer installed,
is recorded as a forbidden call, so it is never marked correct.
"""

from __future__ import annotations

import importlib
import os
import random
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch

__all__ = ["isolated_state", "watch_calls"]

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../d2l_attn
_EXERCISES_DIR = os.path.dirname(os.path.abspath(__file__))  # .../d2l_attn/exercises


@contextmanager
def isolated_state() -> Iterator[None]:
    """Restore every piece of global state a checker or the reader's function might touch."""
    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    saved = (
        torch.get_rng_state(),
        torch.cuda.get_rng_state_all() if cuda else None,
        np.random.get_state(),
        random.getstate(),
        torch.is_grad_enabled(),
        torch.get_default_dtype(),
        torch.get_num_threads(),
    )
    try:
        yield
    finally:
        torch_rng, cuda_rng, np_rng, py_rng, grad, dtype, threads = saved
        torch.set_rng_state(torch_rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
        np.random.set_state(np_rng)
        random.setstate(py_rng)
        torch.set_grad_enabled(grad)
        torch.set_default_dtype(dtype)
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def _resolve(dotted: str):
    """``"torch.nn.MultiheadAttention"`` -> the object (module path first, then attributes)."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(f"cannot resolve {dotted!r}")


def _code_objects(obj) -> list:
    """The code objects that run when ``obj`` (a function, method or class) is used."""
    if isinstance(obj, type):
        codes = []
        for value in vars(obj).values():
            func = getattr(value, "__func__", value)  # staticmethod / classmethod
            if hasattr(func, "__code__"):
                codes.append(func.__code__)
        return codes
    func = getattr(obj, "__func__", obj)
    return [func.__code__] if hasattr(func, "__code__") else []


def _library_name(filename: str, qualname: str) -> str | None:
    """``.../d2l_attn/masking.py`` -> ``d2l_attn.masking.<qualname>``; None outside the library
    proper (the exercises package itself, where reference solutions live, is not "the library")."""
    path = os.path.abspath(filename)
    if not path.startswith(_PACKAGE_DIR + os.sep) or path.startswith(_EXERCISES_DIR + os.sep):
        return None
    module = os.path.relpath(path, os.path.dirname(_PACKAGE_DIR))[: -len(".py")].replace(os.sep, ".")
    return f"{module.removesuffix('.__init__')}.{qualname}"


@contextmanager
def watch_calls(forbidden: Sequence[str]) -> Iterator[list[str]]:
    """Record calls into ``forbidden`` code while the block runs; yields the list of names hit.

    Each entry of ``forbidden`` is ``"d2l_attn"`` (the whole library except this exercises
    package), a module such as ``"d2l_attn.masking"``, or a dotted name of a function, method or
    class (``"torch.nn.MultiheadAttention"``: any of its methods; builtins such as
    ``"torch.nn.functional.scaled_dot_product_attention"`` are matched on their C call).
    """
    prefixes = tuple(f for f in forbidden if f == "d2l_attn" or (f.startswith("d2l_attn.") and _is_module(f)))
    codes: dict = {}
    builtins: dict[int, str] = {}
    for name in forbidden:
        if name in prefixes:
            continue
        obj = _resolve(name)
        found = _code_objects(obj)
        for code in found:
            codes[code] = name
        if not found:
            builtins[id(obj)] = name
    hits: list[str] = []
    library_cache: dict = {}
    watching = watched = bool(prefixes or codes or builtins)
    switched_off = "sys.setprofile (it switches off the checker's watch)"

    def profiler(frame, event, arg):
        if event == "c_call" and arg is sys.setprofile and watching:
            hits.append(switched_off)  # the answer removes or replaces this hook
        elif event == "call":
            code = frame.f_code
            if code in codes:
                hits.append(codes[code])
            elif prefixes and code.co_name != "<module>":
                if code not in library_cache:
                    library_cache[code] = _library_name(code.co_filename, getattr(code, "co_qualname", code.co_name))
                name = library_cache[code]
                if name is not None and any(name == p or name.startswith(p + ".") for p in prefixes):
                    hits.append(name)
        elif event == "c_call" and id(arg) in builtins:
            hits.append(builtins[id(arg)])

    previous = sys.getprofile()
    sys.setprofile(profiler)
    try:
        yield hits
    finally:
        still_watching = sys.getprofile() is profiler  # a second check, whatever the answer did
        watching = False  # the restore below is the checker's own call, not the answer's
        sys.setprofile(previous)
        if watched and not still_watching:
            hits.append(switched_off)


def _is_module(name: str) -> bool:
    try:
        importlib.import_module(name)
        return True
    except ImportError:
        return False
