"""Tests for d2l_attn.training: the generic Trainer, clipping, history, atomic checkpoints."""

from __future__ import annotations

import math
import os

import pytest
import torch
from torch import nn

from d2l_attn import training
from d2l_attn.training import Trainer, load_checkpoint, save_checkpoint


def regression_task(seed: int = 0, n: int = 256):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]) + 0.1 * torch.randn(n, 1, generator=g)
    batches = [(x[i : i + 32], y[i : i + 32]) for i in range(0, n, 32)]
    return batches[:-2], batches[-2:]


def mse(model, batch):
    x, y = batch
    return nn.functional.mse_loss(model(x), y)


def make_trainer(**kwargs):
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    kwargs.setdefault("lr", 0.05)
    return Trainer(model, mse, device="cpu", progress=False, **kwargs)


def test_training_reduces_loss_and_records_history():
    train, val = regression_task()
    trainer = make_trainer()
    history = trainer.fit(train, val, num_epochs=8)
    assert len(history["train_loss"]) == len(history["val_loss"]) == len(history["epoch_time"]) == 8
    assert history["val_loss"][-1] < 0.1 * history["val_loss"][0]
    assert trainer.epoch == 8
    trainer.fit(train, val, num_epochs=2)  # fit continues, history grows
    assert trainer.epoch == 10 and len(history["train_loss"]) == 10


def test_weighted_epoch_loss_counts_items_not_batches():
    model = nn.Linear(1, 1)
    trainer = Trainer(model, lambda m, b: (b[0].mean(), b[0].numel()), device="cpu", progress=False)
    loader = [(torch.tensor([1.0, 1.0, 1.0]),), (torch.tensor([4.0]),)]
    # mean over items: (1 + 1 + 1 + 4) / 4, not the mean of batch means (1 + 4) / 2
    assert trainer.evaluate(loader) == pytest.approx(7 / 4)
    plain = Trainer(model, lambda m, b: b[0].mean(), device="cpu", progress=False)
    assert plain.evaluate(loader) == pytest.approx(5 / 2)


def test_gradient_clipping_bounds_the_update():
    model = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(model.weight)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    trainer = Trainer(model, lambda m, b: (m(b[0]) * 1000).sum(), opt, device="cpu", grad_clip=0.5,
                      progress=False)
    trainer.train_step((torch.ones(1, 1),))
    # the gradient is 1000; clipped to norm 0.5, one SGD step moves the weight by exactly 0.5
    assert model.weight.item() == pytest.approx(-0.5)


def test_callbacks_run_after_every_epoch():
    train, val = regression_task()
    seen = []
    make_trainer().fit(train, val, num_epochs=3, callbacks=[lambda t: seen.append((t.epoch, t.history["val_loss"][-1]))])
    assert [e for e, _ in seen] == [1, 2, 3]


def test_checkpoint_round_trip(tmp_path):
    train, val = regression_task()
    trainer = make_trainer()
    trainer.fit(train, val, num_epochs=2)
    path = trainer.save_checkpoint(tmp_path / "ckpt" / "model.pt")
    assert path.is_file() and not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    fresh = make_trainer(lr=0.001)
    nn.init.zeros_(fresh.model.weight)
    fresh.load_checkpoint(path)
    for a, b in zip(trainer.model.parameters(), fresh.model.parameters()):
        torch.testing.assert_close(a, b)
    assert fresh.epoch == 2 and fresh.history["val_loss"] == trainer.history["val_loss"]
    # the optimizer state came back too: the next step is identical
    trainer.fit(train, val, num_epochs=1)
    fresh.fit(train, val, num_epochs=1)
    for a, b in zip(trainer.model.parameters(), fresh.model.parameters()):
        torch.testing.assert_close(a, b)


def test_checkpoint_is_loaded_with_weights_only(tmp_path, monkeypatch):
    model = nn.Linear(2, 2)
    path = save_checkpoint(tmp_path / "m.pt", model, note="hello", step=3)
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    extra = load_checkpoint(path, nn.Linear(2, 2))
    assert calls == [True] and extra == {"note": "hello", "step": 3}


def test_save_is_atomic_when_writing_fails(tmp_path, monkeypatch):
    model = nn.Linear(2, 2)
    path = save_checkpoint(tmp_path / "m.pt", model)
    before = path.read_bytes()

    def broken_save(obj, f, *args, **kwargs):
        with open(f, "wb") as handle:
            handle.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, nn.Linear(2, 2))
    assert path.read_bytes() == before  # the old checkpoint is intact
    assert os.listdir(tmp_path) == ["m.pt"]  # and no temporary file is left behind


def test_move_to_device_handles_nested_batches():
    batch = {"x": torch.ones(2), "pair": (torch.zeros(1), 3)}
    moved = training.move_to_device(batch, torch.device("cpu"))
    assert moved["pair"][1] == 3 and torch.equal(moved["x"], torch.ones(2))


def test_amp_on_cpu_runs_the_loss_under_bfloat16_autocast():
    seen = []

    def loss_fn(model, batch):
        x, y = batch
        out = model(x)  # a Linear under autocast computes in bfloat16
        seen.append((torch.is_autocast_enabled("cpu"), out.dtype))
        return ((out.float() - y) ** 2).mean()

    for amp in (True, False):
        torch.manual_seed(0)
        trainer = Trainer(nn.Linear(3, 1), loss_fn, device="cpu", progress=False, amp=amp)
        loss, count = trainer.train_step((torch.randn(8, 3), torch.randn(8, 1)))
        assert math.isfinite(loss) and count == 1
        assert trainer.model.weight.dtype == torch.float32  # master weights stay float32
    assert seen == [(True, torch.bfloat16), (False, torch.float32)]


def test_amp_float16_on_cpu_is_rejected():
    with pytest.raises(ValueError, match=r"amp on the CPU runs in torch.bfloat16 only"):
        Trainer(nn.Linear(1, 1), mse, device="cpu", amp=True, amp_dtype=torch.float16)


def test_non_finite_loss_raises():
    trainer = Trainer(nn.Linear(1, 1), lambda m, b: torch.tensor(float("nan"), requires_grad=True), device="cpu",
                      progress=False)
    with pytest.raises(FloatingPointError, match="loss is nan"):
        trainer.train_step((torch.ones(1, 1),))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"model": "net"}, "model must be a torch.nn.Module"),
        ({"loss_fn": 3}, "loss_fn must be callable"),
        ({"lr": 0}, "lr must be a positive number"),
        ({"grad_clip": -1.0}, "grad_clip must be a positive number or None"),
        ({"amp_dtype": torch.float32}, "amp_dtype must be"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, match):
    args = {"model": nn.Linear(1, 1), "loss_fn": mse, "device": "cpu", **kwargs}
    with pytest.raises(ValueError, match=match):
        Trainer(**args)


def test_bad_fit_and_loss_outputs_raise():
    trainer = make_trainer()
    with pytest.raises(ValueError, match="num_epochs must be a positive int"):
        trainer.fit([], num_epochs=0)
    with pytest.raises(ValueError, match="yielded no batches"):
        trainer.fit([], num_epochs=1)
    bad = Trainer(nn.Linear(1, 1), lambda m, b: torch.ones(3), device="cpu", progress=False)
    with pytest.raises(ValueError, match="scalar tensor loss"):
        bad.train_step((torch.ones(1, 1),))
    with pytest.raises(ValueError, match="no checkpoint"):
        load_checkpoint("/nonexistent/ckpt.pt", nn.Linear(1, 1))
