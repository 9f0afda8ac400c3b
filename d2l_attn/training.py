r"""One trainer for every model in the book (written in chapter 4, reused in chapter 7; chapter 12's
monitors are its step hooks).

:class:`Trainer` knows nothing about translation or Transformers. It needs

* a ``model`` (:class:`torch.nn.Module`);
* a ``loss_fn(model, batch)`` that returns either a scalar loss or a pair
  ``(mean_loss, num_items)``; with a pair, epoch losses are averages over *items* (for
  sequence models: tokens), so a small last batch does not count as much as a full one:

  .. math:: L_\text{epoch} = \frac{\sum_b L_b\, n_b}{\sum_b n_b};

* an optimizer (default: Adam with learning rate ``lr``) and, optionally, a learning-rate
  ``scheduler`` from :mod:`torch.optim.lr_scheduler`, stepped once per optimizer step.

**One step** (:meth:`Trainer.train_step`) moves the batch to the device, runs ``loss_fn`` (under
``torch.autocast`` when AMP is on), back-propagates, measures the global gradient norm
:math:`\lVert\mathbf{g}\rVert = \sqrt{\sum_p \lVert\mathbf{g}_p\rVert^2}` over all parameters
and clips it to ``grad_clip`` = :math:`c`:

.. math:: \mathbf{g} \leftarrow \mathbf{g}\,\min\!\Big(1, \frac{c}{\lVert\mathbf{g}\rVert + 10^{-6}}\Big),

then steps the optimizer and the scheduler. float16 AMP (CUDA only) multiplies the loss by a
scale :math:`s` before ``backward`` so that small gradients do not underflow, and divides the
gradients by :math:`s` before the norm is taken (:class:`torch.amp.GradScaler`); bfloat16 has
float32's exponent range and needs no scaling.

**Non-finite values stop training.** If the loss or the gradient norm is ``nan`` or ``inf``, the
step raises :class:`FloatingPointError` ("loss became nan at step 17 (epoch 2)") *before* the
optimizer, the scheduler or any counter moves: the weights are those of the last good step.
(Under float16 AMP an infinite gradient is the scaler's business instead: it skips that update
and lowers :math:`s`, as designed; the scheduler then does not step either.)

**Histories.** :attr:`Trainer.history` holds per-epoch losses and times; :attr:`Trainer.step_history`
holds, per optimizer step, the loss, the gradient norm *before* clipping and the learning rate the
step used (of the first parameter group). The loss and the norm reach the host in one transfer per
step, which the non-finite check needs anyway (on CUDA this is one synchronization per step).

**Hooks.** After every optimizer step each of ``step_hooks`` is called with a frozen
:class:`StepRecord` (step, epoch, loss, gradient norm, learning rate, trainer); the parameters'
``.grad`` then still hold that step's (clipped) gradients. :meth:`Trainer.fit` also calls its
``callbacks`` after every epoch.

**Epochs or steps.** :meth:`Trainer.fit` runs epochs over a loader; :meth:`Trainer.fit_steps` runs a
number of steps on batches drawn by a function (``batch_fn(step)``, e.g. a fresh synthetic batch
each step), with an optional evaluation every ``k`` steps: the loop of nanoGPT's ``train.py``.

**Compilation.** ``Trainer(compile=True)`` hands ``loss_fn`` the model wrapped by
:func:`torch.compile` (:attr:`Trainer.forward_model`, via :func:`d2l_attn.utils.compiled`): the
same parameters and the same state-dict names, so optimizers and checkpoints do not notice. Where
this torch or platform cannot compile, a ``RuntimeWarning`` says why and training runs eagerly.

**Checkpoints** (:meth:`Trainer.save_checkpoint`) hold the model, the optimizer, the scheduler,
the grad scaler, the epoch and step counters, both histories and the torch random-number states
(CPU; CUDA on a CUDA device). :meth:`Trainer.load_checkpoint` restores them all, including the
*global* torch RNG (that is its purpose: dropout masks and a ``DataLoader`` shuffled without its own
``generator`` then continue exactly as without interruption). A run resumed from a checkpoint
written between epochs, or between :meth:`~Trainer.train_step` calls on the same batches, is the
same run. A ``DataLoader`` shuffled by a ``generator`` that the data object owns draws from that
generator instead: the caller saves and restores its state, e.g.
``trainer.save_checkpoint(path, data_rng=gen.get_state())`` and later
``gen.set_state(trainer.load_checkpoint(path)["data_rng"])``. Files are written to a temporary file
and moved into place with :func:`os.replace` (an interrupted save never leaves a half-written file
under the final name) and read with ``torch.load(..., weights_only=True)``, which refuses to
unpickle arbitrary objects. Nothing here prints: progress goes to a ``tqdm`` bar (``progress=False``
switches it off).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

from . import utils
from ._checks import nonnegative_int, positive_int, positive_number

__all__ = ["Trainer", "StepRecord", "move_to_device", "save_checkpoint", "load_checkpoint"]

LossFn = Callable[[nn.Module, Any], "torch.Tensor | tuple[torch.Tensor, int | torch.Tensor]"]


@dataclass(frozen=True)
class StepRecord:
    """What a step hook receives after each optimizer step (read-only).

    ``step`` counts optimizer steps from 1 over the whole run (a resumed run continues the count);
    ``epoch`` is the epoch the step belongs to, from 1; ``grad_norm`` is the global L2 norm of the
    gradients *before* clipping; ``lr`` is the learning rate the step used (first parameter group).
    A float16 step that the grad scaler skipped (an inf/nan gradient) is counted and recorded too.
    """

    step: int
    epoch: int
    loss: float
    grad_norm: float
    lr: float
    trainer: Trainer


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


def _read_checkpoint(path: str | os.PathLike[str], map_location: Any, optimizer: bool) -> dict[str, Any]:
    state = utils.load_weights_only(path, map_location, what="checkpoint")
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(f"{str(path)!r} is not a checkpoint written by save_checkpoint")
    if optimizer and "optimizer" not in state:
        raise ValueError(f"{str(path)!r} holds no optimizer state")
    return state


def load_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    map_location: str | torch.device | None = "cpu",
) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` into ``model`` (and ``optimizer``).

    Uses ``torch.load(..., weights_only=True)``. Returns the ``extra`` dict.
    """
    state = _read_checkpoint(path, map_location, optimizer is not None)
    model.load_state_dict(state["model"])
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    return state.get("extra", {})


def _check_hooks(step_hooks: object) -> None:
    if not isinstance(step_hooks, (list, tuple)) or not all(callable(hook) for hook in step_hooks):
        raise ValueError(f"step_hooks must be a list of callables hook(record: StepRecord), got {step_hooks!r:.80}")


class Trainer:
    r"""Train any model with a loss function: device, AMP, clipping, scheduler, hooks, checkpoints.

    Args:
        model: the network; moved to ``device``.
        loss_fn: ``loss_fn(model, batch)`` -> scalar loss, or ``(mean_loss, num_items)``.
        optimizer: an optimizer over ``model``'s parameters (default ``Adam(lr=lr)``).
        lr: learning rate of the default optimizer (finite, > 0).
        device: ``None`` = :func:`d2l_attn.utils.get_device` (CUDA, else MPS, else CPU); a device
            that this machine lacks raises ``ValueError``.
        grad_clip: clip the global gradient norm to this value (> 0); ``None`` disables clipping
            (the norm is still measured and recorded).
        amp: mixed precision with ``torch.autocast``: on CUDA in ``amp_dtype``, on the CPU in
            bfloat16 (slower than float32 on CPUs without bf16 units, but it exercises the GPU
            path on any machine); other devices raise ``ValueError``.
        amp_dtype: ``torch.bfloat16`` (default; no loss scaling needed) or ``torch.float16``
            (CUDA only; creates :attr:`grad_scaler`).
        progress: show a ``tqdm`` progress bar over epochs.
        scheduler: a :class:`torch.optim.lr_scheduler.LRScheduler` built on this trainer's
            optimizer, or a function ``optimizer -> scheduler`` (handy with the default
            optimizer); stepped once per optimizer step.
        step_hooks: callables ``hook(record: StepRecord)`` run after every optimizer step; kept in
            the list :attr:`step_hooks`.
        compile: run ``loss_fn`` on ``torch.compile(model)`` (:attr:`forward_model`; the same
            parameters, so checkpoints and :attr:`model` are unchanged), in training and in
            :meth:`evaluate`. Where this torch or platform cannot compile, a ``RuntimeWarning``
            says why and training runs uncompiled. The first steps are slow (compilation).
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
        scheduler: LRScheduler | Callable[[torch.optim.Optimizer], LRScheduler] | None = None,
        step_hooks: Sequence[Callable[[StepRecord], None]] = (),
        compile: bool = False,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not callable(loss_fn):
            raise ValueError(f"loss_fn must be callable as loss_fn(model, batch), got {type(loss_fn).__name__}")
        if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
            raise ValueError(f"optimizer must be a torch.optim.Optimizer or None, got {type(optimizer).__name__}")
        positive_number("lr", lr)
        if grad_clip is not None:
            positive_number("grad_clip", grad_clip, allow_inf=True)
        if amp_dtype not in (torch.bfloat16, torch.float16):
            raise ValueError(f"amp_dtype must be torch.bfloat16 or torch.float16, got {amp_dtype!r}")
        _check_hooks(step_hooks)
        self.device = utils.get_device(device)
        self.amp = bool(amp)
        if self.amp and self.device.type not in ("cuda", "cpu"):
            raise ValueError(f"amp=True needs a cuda or cpu device, got {self.device.type!r}: pass amp=False")
        if self.amp and self.device.type == "cpu" and amp_dtype != torch.bfloat16:
            raise ValueError(
                "amp on the CPU runs in torch.bfloat16 only: pass amp_dtype=torch.bfloat16 "
                f"(got {amp_dtype!r}; float16 with loss scaling is for CUDA)"
            )
        self.model = model.to(self.device)
        #: what ``loss_fn`` receives: :attr:`model`, or ``torch.compile(model)`` (same parameters)
        self.forward_model = utils.compiled(self.model) if compile else self.model
        self.loss_fn = loss_fn
        self.optimizer = optimizer if optimizer is not None else torch.optim.Adam(model.parameters(), lr=lr)
        if scheduler is not None and not isinstance(scheduler, LRScheduler) and callable(scheduler):
            scheduler = scheduler(self.optimizer)
        if scheduler is not None and (
            not isinstance(scheduler, LRScheduler) or isinstance(scheduler, ReduceLROnPlateau)
        ):
            raise ValueError(
                "scheduler must be a torch.optim.lr_scheduler.LRScheduler stepped once per optimizer "
                f"step (ReduceLROnPlateau needs a metric: step it in an epoch callback), got {scheduler!r}"
            )
        if scheduler is not None and scheduler.optimizer is not self.optimizer:
            raise ValueError(
                "scheduler was built for another optimizer: build it on the trainer's optimizer "
                "(pass optimizer=..., or scheduler=lambda opt: ...)"
            )
        self.scheduler = scheduler
        self.grad_clip = grad_clip
        self.amp_dtype = amp_dtype
        #: float16 loss scaling (CUDA only); ``None`` otherwise
        self.grad_scaler = torch.amp.GradScaler("cuda") if self.amp and amp_dtype == torch.float16 else None
        self.progress = progress
        self.step_hooks: list[Callable[[StepRecord], None]] = list(step_hooks)
        #: epochs completed and optimizer steps taken (both restored by :meth:`load_checkpoint`)
        self.epoch = 0
        self.step = 0
        #: per-epoch mean losses and wall-clock seconds
        self.history: dict[str, list[float]] = {"train_loss": [], "val_loss": [], "epoch_time": []}
        #: per optimizer step: loss, gradient norm before clipping, learning rate used
        self.step_history: dict[str, list[float]] = {"loss": [], "grad_norm": [], "lr": []}

    # -- one batch ----------------------------------------------------------------------------
    def _autocast(self):
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype, enabled=self.amp)

    def _loss(self, batch: Any) -> tuple[torch.Tensor, float]:
        out = self.loss_fn(self.forward_model, batch)
        if isinstance(out, tuple) and len(out) != 2:
            raise ValueError("loss_fn must return a scalar loss or a pair (mean_loss, num_items)")
        loss, count = (out[0], float(out[1])) if isinstance(out, tuple) else (out, 1.0)
        if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
            raise ValueError(f"loss_fn must return a scalar tensor loss, got {loss!r:.80}")
        return loss, count

    def train_step(self, batch: Any) -> tuple[float, float]:
        """One optimizer step on ``batch``; returns ``(loss, num_items)``.

        Raises ``FloatingPointError`` (weights, optimizer, scheduler and counters untouched) if the
        loss or the gradient norm is not finite.
        """
        self.model.train()
        batch = move_to_device(batch, self.device)
        with self._autocast():
            loss, count = self._loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        if self.grad_scaler is not None:
            self.grad_scaler.scale(loss).backward()
            self.grad_scaler.unscale_(self.optimizer)  # true gradients: the norm and clipping see them
        else:
            loss.backward()
        # the norm before clipping; max_norm=inf multiplies every gradient by exactly 1
        norm = nn.utils.clip_grad_norm_(self.model.parameters(), math.inf if self.grad_clip is None else self.grad_clip)
        # one device-to-host transfer per step, for the history and the non-finite check
        loss_value, norm_value = torch.stack([loss.detach().float(), norm.float()]).tolist()
        step, epoch = self.step + 1, self.epoch + 1
        if not math.isfinite(loss_value):
            raise FloatingPointError(
                f"loss became {loss_value} at step {step} (epoch {epoch}); the weights were "
                "not updated; lower the learning rate?"
            )
        if not math.isfinite(norm_value) and self.grad_scaler is None:
            raise FloatingPointError(
                f"gradient norm became {norm_value} at step {step} (epoch {epoch}); the "
                "weights were not updated; lower the learning rate?"
            )
        lr = float(self.optimizer.param_groups[0]["lr"])
        if self.grad_scaler is not None:
            self.grad_scaler.step(self.optimizer)  # skipped when a gradient is inf/nan
            self.grad_scaler.update()
        else:
            self.optimizer.step()
        if self.scheduler is not None and math.isfinite(norm_value):
            self.scheduler.step()
        self.step = step
        for key, value in (("loss", loss_value), ("grad_norm", norm_value), ("lr", lr)):
            self.step_history[key].append(value)
        record = StepRecord(step=step, epoch=epoch, loss=loss_value, grad_norm=norm_value, lr=lr, trainer=self)
        for hook in self.step_hooks:
            hook(record)
        return loss_value, count

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
        callbacks: Sequence[Callable[[Trainer], None]] = (),
    ) -> dict[str, list[float]]:
        """Train for ``num_epochs`` more epochs; returns :attr:`history`.

        After every epoch the mean training loss (and, with ``val_loader``, the validation loss)
        is appended to ``history`` and each callback is called as ``callback(trainer)``.
        """
        positive_int("num_epochs", num_epochs)
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
            bar.set_postfix({k[:-5]: f"{v[-1]:.3f}" for k, v in self.history.items() if k != "epoch_time" and v})
            for callback in callbacks:
                callback(self)
        bar.close()
        return self.history

    def fit_steps(
        self,
        batch_fn: Callable[[int], Any],
        steps: int,
        *,
        eval_fn: Callable[[Trainer], float] | None = None,
        eval_every: int = 0,
        eval_first: bool = False,
        step_hooks: Sequence[Callable[[StepRecord], None]] = (),
    ) -> dict[str, list[float]]:
        """Train for ``steps`` more optimizer steps on ``batch_fn(step)`` (``step``: the optimizer step
        about to be taken, counting from 1 over the run); returns this call's record.

        Clipping, the scheduler and AMP are the trainer's. ``step_hooks`` run after every step of
        this call only (after the trainer's own). With ``eval_fn(trainer) -> float`` (e.g. a
        validation loss; it runs with the model as it is: switch to eval mode inside if needed),
        it is called every ``eval_every`` steps (0: only after the last) and after the last step, and
        with ``eval_first`` also before the first step. The record holds ``loss`` per step and
        ``eval_step`` (the steps taken so far) / ``eval`` per evaluation. A loop written as
        ``for step: x = batch(); loss = f(model, x); zero_grad; backward; [clip]; step; [schedule]``
        becomes ``Trainer(model, f, optimizer, grad_clip=..., scheduler=...).fit_steps(batch, n)``
        with the same arithmetic (no clipping multiplies every gradient by exactly 1).
        """
        positive_int("steps", steps)
        nonnegative_int("eval_every", eval_every)
        if not callable(batch_fn) or (eval_fn is not None and not callable(eval_fn)):
            raise ValueError("batch_fn(step) must be callable, and eval_fn(trainer) callable or None")
        _check_hooks(step_hooks)
        from tqdm.auto import tqdm

        record: dict[str, list[float]] = {"loss": [], "eval_step": [], "eval": []}
        own, self.step_hooks = self.step_hooks, [*self.step_hooks, *step_hooks]

        def evaluate() -> None:
            record["eval_step"].append(self.step)
            record["eval"].append(float(eval_fn(self)))

        try:
            if eval_fn is not None and eval_first:
                evaluate()
            for i in tqdm(range(steps), desc="steps", disable=not self.progress, leave=True):
                record["loss"].append(self.train_step(batch_fn(self.step + 1))[0])
                if eval_fn is not None and (i == steps - 1 or (eval_every and (i + 1) % eval_every == 0)):
                    evaluate()
        finally:
            self.step_hooks = own
        return record

    # -- checkpoints --------------------------------------------------------------------------
    def save_checkpoint(self, path: str | os.PathLike[str], **extra: Any) -> Path:
        """Everything a resumed run needs (see the module docstring), plus your plain-data ``extra``."""
        if "trainer" in extra:
            raise ValueError("extra must not use the key 'trainer' (it holds the trainer's own state)")
        rng = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state_all()
        state = {
            "epoch": self.epoch,
            "step": self.step,
            "rng": rng,
            "history": {k: list(v) for k, v in self.history.items()},
            "step_history": {k: list(v) for k, v in self.step_history.items()},
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "grad_scaler": None if self.grad_scaler is None else self.grad_scaler.state_dict(),
        }
        return save_checkpoint(path, self.model, self.optimizer, trainer=state, **extra)

    def load_checkpoint(self, path: str | os.PathLike[str], restore_rng: bool = True) -> dict[str, Any]:
        """Restore what :meth:`save_checkpoint` wrote; returns the caller's ``extra`` dict.

        With ``restore_rng`` the global torch RNG states are set to those saved (so that a
        resumed run is the same run). Everything is checked before anything is changed.
        """
        checkpoint = _read_checkpoint(path, self.device, optimizer=True)
        extra = dict(checkpoint.get("extra", {}))
        state = extra.pop("trainer", None)
        if not isinstance(state, dict) or "step" not in state:
            raise ValueError(f"{str(path)!r} holds no trainer state: it was not written by Trainer.save_checkpoint")
        if (state["scheduler"] is None) != (self.scheduler is None):
            has = "no scheduler state" if state["scheduler"] is None else "a scheduler state"
            raise ValueError(
                f"{str(path)!r} holds {has}, but this trainer has scheduler={self.scheduler!r}: "
                "build the trainer with the same kind of scheduler as the saved run"
            )
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.grad_scaler is not None and state["grad_scaler"] is not None:
            self.grad_scaler.load_state_dict(state["grad_scaler"])  # absent: a fresh scale recalibrates
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.history = {k: [float(x) for x in state["history"][k]] for k in self.history}
        self.step_history = {k: [float(x) for x in state["step_history"][k]] for k in self.step_history}
        if restore_rng:
            torch.set_rng_state(state["rng"]["torch"].cpu())
            if "cuda" in state["rng"] and self.device.type == "cuda":
                torch.cuda.set_rng_state_all([s.cpu() for s in state["rng"]["cuda"]])
        return extra

    def __repr__(self) -> str:
        return (
            f"Trainer(model={type(self.model).__name__}, device={self.device}, epoch={self.epoch}, "
            f"step={self.step}, grad_clip={self.grad_clip}, amp={self.amp})"
        )
