r"""One trainer for every model in the book (written in chapter 4, reused in chapter 7).

:class:`Trainer` knows nothing about translation or Transformers. It needs

* a ``model`` (:class:`torch.nn.Module`);
* a ``loss_fn(model, batch)`` that returns either a scalar loss or a pair
  ``(mean_loss, num_items)``; with a pair, epoch losses are averages over *items* (for
  sequence models: tokens), so a small last batch does not count as much as a full one:

  .. math:: L_\text{epoch} = \frac{\sum_b L_b\, n_b}{\sum_b n_b};

* an optimizer (default: Adam with learning rate ``lr``).

Each step moves the batch to the device, runs ``loss_fn`` (under ``torch.autocast`` when AMP
is on, CUDA only), back-propagates, clips the global gradient norm to ``grad_clip``
(:math:`\mathbf{g} \leftarrow \mathbf{g}\,\min(1, c / \lVert\mathbf{g}\rVert)`) and steps the
optimizer. :meth:`Trainer.fit` records the mean training and validation loss of every epoch in
``history`` and calls the ``callbacks`` after each epoch (e.g. to record attention maps).

Checkpoints (:meth:`Trainer.save_checkpoint`, :func:`save_checkpoint`) are written to a temporary
file in the target directory and moved into place with :func:`os.replace`, so an interrupted save
never leaves a half-written file under the final name; they are read back with
``torch.load(..., weights_only=True)``, which refuses to unpickle arbitrary objects.
Nothing here prints: progress goes to a ``tqdm`` bar that ``progress=False`` switches off.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import nn

from . import utils

__all__ = ["Trainer", "move_to_device", "save_checkpoint", "load_checkpoint"]

LossFn = Callable[[nn.Module, Any], "torch.Tensor | tuple[torch.Tensor, int | torch.Tensor]"]


def move_to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor in a (nested) tuple/list/dict batch to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to_device(x, device) for x in batch)
    if isinstance(batch, dict):
        return {key: move_to_device(x, device) for key, x in batch.items()}
    return batch


def save_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    **extra: Any,
) -> Path:
    """Save ``model`` (and ``optimizer``) state dicts plus ``extra`` plain data, atomically.

    ``extra`` values must be plain data (numbers, strings, lists, dicts, tensors) so that the file
    can be read with ``weights_only=True``.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    state = {"model": model.state_dict(), "extra": extra}
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    return utils.save_atomic(state, path)


def load_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    map_location: str | torch.device | None = "cpu",
) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` into ``model`` (and ``optimizer``).

    Uses ``torch.load(..., weights_only=True)``. Returns the ``extra`` dict.
    """
    state = utils.load_weights_only(path, map_location, what="checkpoint")
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(f"{str(path)!r} is not a checkpoint written by save_checkpoint")
    model.load_state_dict(state["model"])
    if optimizer is not None:
        if "optimizer" not in state:
            raise ValueError(f"{str(path)!r} holds no optimizer state")
        optimizer.load_state_dict(state["optimizer"])
    return state.get("extra", {})


class Trainer:
    r"""Train any model with a loss function: device, clipping, AMP, history, checkpoints.

    Args:
        model: the network; moved to ``device``.
        loss_fn: ``loss_fn(model, batch)`` -> scalar loss, or ``(mean_loss, num_items)``.
        optimizer: an optimizer over ``model``'s parameters (default ``Adam(lr=lr)``).
        lr: learning rate of the default optimizer.
        device: ``None`` = :func:`d2l_attn.utils.get_device` (CUDA, else MPS, else CPU).
        grad_clip: clip the global gradient norm to this value; ``None`` disables clipping.
        amp: mixed precision with ``torch.autocast``: on CUDA in ``amp_dtype``, on the CPU in
            bfloat16 (slower than float32 on CPUs without bf16 units, but it exercises the GPU
            path on any machine); other devices raise ``ValueError``.
        amp_dtype: ``torch.bfloat16`` (default; no loss scaling needed) or ``torch.float16``
            (CUDA only; uses a gradient scaler).
        progress: show a ``tqdm`` progress bar over epochs.
        scheduler: optional learning-rate scheduler, stepped once per optimizer step.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        optimizer: torch.optim.Optimizer | None = None,
        *,
        lr: float = 1e-3,
        device: str | torch.device | None = None,
        grad_clip: float | None = 1.0,
        amp: bool = False,
        amp_dtype: torch.dtype = torch.bfloat16,
        progress: bool = True,
        scheduler: Any = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not callable(loss_fn):
            raise ValueError(f"loss_fn must be callable as loss_fn(model, batch), got {type(loss_fn).__name__}")
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
            raise ValueError(f"lr must be a positive number, got {lr!r}")
        if grad_clip is not None and (
            isinstance(grad_clip, bool) or not isinstance(grad_clip, (int, float)) or not grad_clip > 0
        ):
            raise ValueError(f"grad_clip must be a positive number or None, got {grad_clip!r}")
        if amp_dtype not in (torch.bfloat16, torch.float16):
            raise ValueError(f"amp_dtype must be torch.bfloat16 or torch.float16, got {amp_dtype!r}")
        self.device = device if isinstance(device, torch.device) else utils.get_device(device)
        self.model = model.to(self.device)
        self.loss_fn = loss_fn
        self.optimizer = optimizer if optimizer is not None else torch.optim.Adam(model.parameters(), lr=lr)
        self.scheduler = scheduler
        self.grad_clip = grad_clip
        self.amp = bool(amp)
        if self.amp and self.device.type not in ("cuda", "cpu"):
            raise ValueError(f"amp=True needs a cuda or cpu device, got {self.device.type!r}: pass amp=False")
        if self.amp and self.device.type == "cpu" and amp_dtype != torch.bfloat16:
            raise ValueError("amp on the CPU runs in torch.bfloat16 only: pass amp_dtype=torch.bfloat16 "
                             f"(got {amp_dtype!r}; float16 with loss scaling is for CUDA)")
        self.amp_dtype = amp_dtype
        self._scaler = torch.amp.GradScaler("cuda") if self.amp and amp_dtype == torch.float16 else None
        self.progress = progress
        self.epoch = 0
        #: per-epoch mean losses and wall-clock seconds
        self.history: dict[str, list[float]] = {"train_loss": [], "val_loss": [], "epoch_time": []}

    # -- one batch ----------------------------------------------------------------------------
    def _autocast(self):
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype, enabled=self.amp)

    def _loss(self, batch: Any) -> tuple[torch.Tensor, float]:
        out = self.loss_fn(self.model, batch)
        if isinstance(out, tuple):
            if len(out) != 2:
                raise ValueError("loss_fn must return a scalar loss or a pair (mean_loss, num_items)")
            loss, count = out
            count = float(count)
        else:
            loss, count = out, 1.0
        if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
            raise ValueError(f"loss_fn must return a scalar tensor loss, got {loss!r:.80}")
        return loss, count

    def train_step(self, batch: Any) -> tuple[float, float]:
        """One optimizer step on ``batch``; returns ``(loss, num_items)``."""
        self.model.train()
        batch = move_to_device(batch, self.device)
        with self._autocast():
            loss, count = self._loss(batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the loss is {loss.item()} at epoch {self.epoch}; lower the learning rate?")
        self.optimizer.zero_grad(set_to_none=True)
        if self._scaler is not None:
            self._scaler.scale(loss).backward()
            self._scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        if self._scaler is not None:
            self._scaler.step(self.optimizer)
            self._scaler.update()
        else:
            self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        return loss.item(), count

    @torch.no_grad()
    def evaluate(self, loader: Iterable) -> float:
        """Mean loss over ``loader`` in eval mode (weighted by ``num_items`` when given)."""
        self.model.eval()
        total = items = 0.0
        for batch in loader:
            batch = move_to_device(batch, self.device)
            with self._autocast():
                loss, count = self._loss(batch)
            total += loss.item() * count
            items += count
        if items == 0:
            raise ValueError("the evaluation loader yielded no batches")
        return total / items

    # -- epochs -------------------------------------------------------------------------------
    def fit(
        self,
        train_loader: Iterable,
        val_loader: Iterable | None = None,
        num_epochs: int = 1,
        callbacks: Sequence[Callable[["Trainer"], None]] = (),
    ) -> dict[str, list[float]]:
        """Train for ``num_epochs`` more epochs; returns :attr:`history`.

        After every epoch the mean training loss (and, with ``val_loader``, the validation loss)
        is appended to ``history`` and each callback is called as ``callback(trainer)``.
        """
        if not isinstance(num_epochs, int) or isinstance(num_epochs, bool) or num_epochs < 1:
            raise ValueError(f"num_epochs must be a positive int, got {num_epochs!r}")
        from tqdm.auto import tqdm

        bar = tqdm(range(num_epochs), desc="epochs", disable=not self.progress, leave=True)
        for _ in bar:
            start = time.perf_counter()
            total = items = 0.0
            for batch in train_loader:
                loss, count = self.train_step(batch)
                total += loss * count
                items += count
            if items == 0:
                raise ValueError("the training loader yielded no batches")
            self.epoch += 1
            self.history["train_loss"].append(total / items)
            if val_loader is not None:
                self.history["val_loss"].append(self.evaluate(val_loader))
            self.history["epoch_time"].append(time.perf_counter() - start)
            postfix = {"train": f"{self.history['train_loss'][-1]:.3f}"}
            if val_loader is not None:
                postfix["val"] = f"{self.history['val_loss'][-1]:.3f}"
            bar.set_postfix(postfix)
            for callback in callbacks:
                callback(self)
        bar.close()
        return self.history

    # -- checkpoints --------------------------------------------------------------------------
    def save_checkpoint(self, path: str | os.PathLike[str]) -> Path:
        """Model, optimizer, epoch and history, written atomically (tmp file + ``os.replace``)."""
        return save_checkpoint(path, self.model, self.optimizer, epoch=self.epoch,
                               history={k: list(v) for k, v in self.history.items()})

    def load_checkpoint(self, path: str | os.PathLike[str]) -> None:
        """Restore what :meth:`save_checkpoint` wrote (``weights_only=True``)."""
        extra = load_checkpoint(path, self.model, self.optimizer, map_location=self.device)
        self.epoch = int(extra.get("epoch", 0))
        history = extra.get("history", {})
        self.history = {k: [float(x) for x in history.get(k, [])] for k in ("train_loss", "val_loss", "epoch_time")}

    def __repr__(self) -> str:
        return (f"Trainer(model={type(self.model).__name__}, device={self.device}, epoch={self.epoch}, "
                f"grad_clip={self.grad_clip}, amp={self.amp})")
