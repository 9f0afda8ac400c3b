"""Tests for d2l_attn.training: the Trainer (clipping, AMP, scheduler, step hooks, histories, non-finite
checks, argument checks) and its atomic, resumable checkpoints."""

from __future__ import annotations

import copy
import dataclasses
import math
import os

import pytest
import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR, ReduceLROnPlateau, StepLR
from torch.utils.data import DataLoader, TensorDataset

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
    trainer = Trainer(model, lambda m, b: (m(b[0]) * 1000).sum(), opt, device="cpu", grad_clip=0.5, progress=False)
    trainer.train_step((torch.ones(1, 1),))
    # the gradient is 1000; clipped to norm 0.5, one SGD step moves the weight by exactly 0.5
    assert model.weight.item() == pytest.approx(-0.5)


def test_callbacks_run_after_every_epoch():
    train, val = regression_task()
    seen = []
    make_trainer().fit(
        train, val, num_epochs=3, callbacks=[lambda t: seen.append((t.epoch, t.history["val_loss"][-1]))]
    )
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
    # to the meta device: an identity move_to_device would leave the tensors on the CPU
    batch = {"x": torch.ones(2), "pair": (torch.zeros(1), 3), "list": [torch.ones(3)]}
    moved = training.move_to_device(batch, torch.device("meta"))
    assert moved["x"].device.type == moved["pair"][0].device.type == moved["list"][0].device.type == "meta"
    assert moved["pair"][1] == 3 and isinstance(moved["pair"], tuple) and isinstance(moved["list"], list)
    assert moved["x"].shape == (2,) and batch["x"].device.type == "cpu"  # the input is untouched


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
    trainer = Trainer(
        nn.Linear(1, 1), lambda m, b: torch.tensor(float("nan"), requires_grad=True), device="cpu", progress=False
    )
    with pytest.raises(FloatingPointError, match=r"loss became nan at step 1 \(epoch 1\)"):
        trainer.train_step((torch.ones(1, 1),))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"model": "net"}, "model must be a torch.nn.Module"),
        ({"loss_fn": 3}, "loss_fn must be callable"),
        ({"optimizer": "adam"}, "optimizer must be a torch.optim.Optimizer"),
        ({"lr": 0}, "lr must be a finite positive number"),
        ({"lr": -0.1}, "lr must be a finite positive number"),
        ({"lr": float("inf")}, "lr must be a finite positive number, got inf"),
        ({"lr": float("nan")}, "lr must be a finite positive number, got nan"),
        ({"grad_clip": -1.0}, "grad_clip must be a positive number"),
        ({"grad_clip": 0}, "grad_clip must be a positive number"),
        ({"grad_clip": float("nan")}, "grad_clip must be a positive number, got nan"),
        ({"amp_dtype": torch.float32}, "amp_dtype must be"),
        ({"device": "tpu"}, "device must name a device, expected 'cpu', 'cuda'"),
        ({"scheduler": "cosine"}, "scheduler must be a torch.optim.lr_scheduler.LRScheduler"),
        ({"scheduler": lambda opt: ReduceLROnPlateau(opt)}, "ReduceLROnPlateau needs a metric"),
        ({"step_hooks": [print, "log"]}, "step_hooks must be a list of callables"),
        ({"step_hooks": print}, "step_hooks must be a list of callables"),  # one hook, not in a list
        ({"step_hooks": 3}, "step_hooks must be a list of callables"),
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


def test_device_this_machine_lacks_and_a_scheduler_for_another_optimizer_are_rejected(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a CPU-only build, even on a GPU box
    with pytest.raises(ValueError, match=r"device='cuda', but this machine or torch build has no CUDA device"):
        Trainer(nn.Linear(1, 1), mse, device="cuda")
    model = nn.Linear(1, 1)
    other = torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1)
    with pytest.raises(ValueError, match="scheduler was built for another optimizer"):
        Trainer(model, mse, torch.optim.SGD(model.parameters(), lr=0.1), device="cpu", scheduler=StepLR(other, 1))
    with pytest.raises(ValueError, match="scheduler was built for another optimizer"):  # default optimizer
        Trainer(model, mse, device="cpu", scheduler=StepLR(other, 1))


# -- the default step is the textbook step -----------------------------------------------------
def test_default_step_equals_the_hand_written_loop():
    """zero_grad, backward, clip_grad_norm_, Adam: bit for bit (chapters 4 and 7 keep their numbers)."""
    train, _ = regression_task()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    reference = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    reference.load_state_dict(model.state_dict())
    opt = torch.optim.Adam(reference.parameters(), lr=0.05)
    for batch in train:
        opt.zero_grad(set_to_none=True)
        mse(reference, batch).backward()
        nn.utils.clip_grad_norm_(reference.parameters(), 0.5)
        opt.step()
    Trainer(model, mse, lr=0.05, device="cpu", grad_clip=0.5, progress=False).fit(train)
    for a, b in zip(model.parameters(), reference.parameters()):
        assert torch.equal(a, b)


# -- step hooks and per-step histories ------------------------------------------------------------
def test_step_hooks_run_after_every_optimizer_step_with_a_frozen_record():
    train, _ = regression_task()  # 6 batches per epoch
    seen_in_loss, records, weights_in_hook = [], [], []

    def loss_fn(model, batch):
        seen_in_loss.append(model.weight.detach().clone())
        return mse(model, batch)

    def hook(record):
        records.append(record)
        weights_in_hook.append(record.trainer.model.weight.detach().clone())

    torch.manual_seed(0)
    trainer = Trainer(nn.Linear(4, 1), loss_fn, lr=0.05, device="cpu", progress=False, step_hooks=[hook])
    epochs_seen = []
    trainer.fit(train, num_epochs=2, callbacks=[lambda t: epochs_seen.append((t.epoch, t.step))])
    assert [r.step for r in records] == list(range(1, 13))  # per step, not per epoch
    assert [r.epoch for r in records] == [1] * 6 + [2] * 6
    assert epochs_seen == [(1, 6), (2, 12)]  # epoch callbacks still run, after their steps
    assert all(r.trainer is trainer for r in records)
    assert [r.loss for r in records] == trainer.step_history["loss"]
    assert [r.grad_norm for r in records] == trainer.step_history["grad_norm"]
    assert [r.lr for r in records] == trainer.step_history["lr"] == [0.05] * 12
    # the hook runs after the optimizer step: it sees the weights the next forward pass uses
    for i in range(11):
        assert torch.equal(weights_in_hook[i], seen_in_loss[i + 1])
        assert not torch.equal(weights_in_hook[i], seen_in_loss[i])
    with pytest.raises(dataclasses.FrozenInstanceError):
        records[0].loss = 0.0
    # the epoch loss is the mean of the epoch's step losses (scalar losses: one item each)
    assert trainer.history["train_loss"][0] == pytest.approx(sum(records[i].loss for i in range(6)) / 6)


@pytest.mark.parametrize("grad_clip", [0.01, None])
def test_grad_norm_history_is_the_global_norm_before_clipping(grad_clip):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 1))
    copy = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 1))
    copy.load_state_dict(model.state_dict())
    batch = regression_task()[0][0]
    mse(copy, batch).backward()
    grads = [p.grad for p in copy.parameters()]
    expected = torch.sqrt(sum((g**2).sum() for g in grads))  # sqrt(sum over all parameters of |g_p|^2)
    assert expected > 1.0  # far above the clip threshold
    before = [p.detach().clone() for p in model.parameters()]
    trainer = Trainer(
        model, mse, torch.optim.SGD(model.parameters(), lr=1.0), device="cpu", grad_clip=grad_clip, progress=False
    )
    trainer.train_step(batch)
    assert trainer.step_history["grad_norm"][0] == pytest.approx(expected.item(), rel=1e-6)
    update = torch.sqrt(sum(((b - p.detach()) ** 2).sum() for b, p in zip(before, model.parameters())))
    if grad_clip is None:  # not clipped: SGD moves by exactly the gradient
        for b, p, g in zip(before, model.parameters(), grads):
            torch.testing.assert_close(b - p.detach(), g)
    else:  # clipped: the update has norm grad_clip, while the recorded norm is the one before
        assert update.item() == pytest.approx(grad_clip, rel=1e-4)


def test_scheduler_steps_once_per_optimizer_step_and_lr_history_is_the_lr_used():
    train, _ = regression_task()
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = Trainer(model, mse, opt, device="cpu", progress=False, scheduler=LambdaLR(opt, lambda s: 1 / (s + 1)))
    trainer.fit(train, num_epochs=2)
    # step k (from 0) runs with 0.1 / (k + 1); the scheduler then moves on (not once per epoch)
    assert trainer.step_history["lr"] == pytest.approx([0.1 / (k + 1) for k in range(12)])
    assert trainer.scheduler.last_epoch == 12 and opt.param_groups[0]["lr"] == pytest.approx(0.1 / 13)
    # a function builds the scheduler on the default optimizer
    halving = make_trainer(scheduler=lambda o: StepLR(o, step_size=1, gamma=0.5))
    halving.fit(train[:3])
    assert halving.scheduler.optimizer is halving.optimizer
    assert halving.step_history["lr"] == pytest.approx([0.05, 0.025, 0.0125])


def copy_state(obj):
    """A snapshot of ``obj.state_dict()`` (tensors copied)."""
    return copy.deepcopy(obj.state_dict())


def states_equal(a, b) -> bool:
    """Exact equality of nested state dicts (tensors by value, bit for bit)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(states_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(states_equal(x, y) for x, y in zip(a, b))
    return a == b


# -- non-finite values ---------------------------------------------------------------------------
def test_non_finite_loss_stops_training_at_its_step_and_leaves_everything_untouched():
    train, _ = regression_task()
    snapshots = []
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    trainer = Trainer(
        model,
        mse,
        opt,
        device="cpu",
        progress=False,
        scheduler=StepLR(opt, 1, gamma=0.9),
        step_hooks=[lambda r: snapshots.append((copy_state(r.trainer.model), copy_state(opt)))],
    )
    trainer.fit(train, num_epochs=1)
    x, y = train[2]
    bad = train[:2] + [(x, torch.full_like(y, float("nan")))] + train[3:]
    with pytest.raises(FloatingPointError, match=r"^loss became nan at step 9 \(epoch 2\)"):
        trainer.fit(bad, num_epochs=1)
    model_after_step_8, opt_after_step_8 = snapshots[-1]
    assert len(snapshots) == 8 and trainer.step == 8 and trainer.epoch == 1
    assert states_equal(copy_state(model), model_after_step_8)  # the bad step changed no weight
    assert states_equal(copy_state(opt), opt_after_step_8)  # nor Adam's moments and step count
    assert trainer.scheduler.last_epoch == 8 and len(trainer.step_history["loss"]) == 8
    assert len(trainer.history["train_loss"]) == 1


def test_non_finite_gradient_with_a_finite_loss_stops_training():
    model = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(model.weight)
    trainer = Trainer(model, lambda m, b: torch.sqrt(m.weight.abs()).sum() + 1.0, device="cpu", progress=False)
    with pytest.raises(FloatingPointError, match=r"^gradient norm became nan at step 1 \(epoch 1\)"):
        trainer.train_step((torch.ones(1),))  # d sqrt(|w|) / dw at w = 0 is 0 * inf = nan
    assert model.weight.item() == 0.0 and trainer.step == 0


def test_infinite_learning_rate_raises_at_the_first_bad_step():
    train, _ = regression_task()
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    trainer = Trainer(model, mse, torch.optim.Adam(model.parameters(), lr=math.inf), device="cpu", progress=False)
    # step 1 is computed from finite weights and sends them to +-inf; step 2's loss is not finite
    with pytest.raises(FloatingPointError, match=r"loss became (nan|inf) at step 2 \(epoch 1\)"):
        trainer.fit(train, num_epochs=3)
    assert trainer.history["train_loss"] == []  # no normal-looking history of a diverged run
    assert trainer.step == 1 and len(trainer.step_history["loss"]) == 1


# -- resumable checkpoints -----------------------------------------------------------------------
def dropout_run(seed_model: int):
    """A model with dropout (uses the global RNG), Adam, a warmup schedule: a fresh, unfitted trainer."""
    torch.manual_seed(seed_model)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 1))
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    warmup = LambdaLR(opt, lambda s: min(1.0, (s + 1) / 8))
    return Trainer(model, mse, opt, device="cpu", progress=False, scheduler=warmup)


def assert_same_run(a: Trainer, b: Trainer):
    # exact equality: on the CPU, the same operations on the same numbers in the same order
    for (name, p), q in zip(a.model.named_parameters(), b.model.parameters()):
        assert torch.equal(p, q), name
    assert a.history["train_loss"] == b.history["train_loss"] and a.history["val_loss"] == b.history["val_loss"]
    assert a.step_history == b.step_history
    assert (a.epoch, a.step) == (b.epoch, b.step)
    assert states_equal(copy_state(a.optimizer), copy_state(b.optimizer))
    assert a.scheduler.state_dict() == b.scheduler.state_dict()


@pytest.mark.parametrize("shuffle", ["global RNG", "own generator"])
def test_resume_between_epochs_is_the_same_run(tmp_path, shuffle):
    x, y = torch.cat([b[0] for b in regression_task()[0]]), torch.cat([b[1] for b in regression_task()[0]])
    val = regression_task()[1]

    def loader():
        gen = torch.Generator().manual_seed(7) if shuffle == "own generator" else None
        return DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True, generator=gen)

    torch.manual_seed(0)
    whole, whole_loader = dropout_run(seed_model=1), loader()
    whole.fit(whole_loader, val, num_epochs=4)

    torch.manual_seed(0)
    first, first_loader = dropout_run(seed_model=1), loader()
    first.fit(first_loader, val, num_epochs=2)
    data_rng = first_loader.generator.get_state() if first_loader.generator is not None else torch.empty(0)
    path = first.save_checkpoint(tmp_path / "ckpt.pt", data_rng=data_rng)
    del first, first_loader

    torch.manual_seed(123)  # a new process: another global RNG state, another initialization
    resumed, resumed_loader = dropout_run(seed_model=2), loader()
    extra = resumed.load_checkpoint(path)
    if resumed_loader.generator is not None:  # the caller restores the data object's generator
        resumed_loader.generator.set_state(extra["data_rng"])
    assert resumed.step == 12 and resumed.epoch == 2 and resumed.scheduler.last_epoch == 12
    resumed.fit(resumed_loader, val, num_epochs=2)
    assert_same_run(whole, resumed)


def test_resume_between_steps_is_the_same_run(tmp_path):
    batches = regression_task()[0] * 2  # 12 steps
    torch.manual_seed(0)
    whole = dropout_run(seed_model=1)
    for batch in batches:
        whole.train_step(batch)
    torch.manual_seed(0)
    first = dropout_run(seed_model=1)
    for batch in batches[:5]:
        first.train_step(batch)
    path = first.save_checkpoint(tmp_path / "ckpt.pt")
    torch.manual_seed(123)
    resumed = dropout_run(seed_model=2)
    resumed.load_checkpoint(path)
    for batch in batches[5:]:
        resumed.train_step(batch)
    assert_same_run(whole, resumed)
    # restore_rng=False leaves the global RNG alone: the dropout masks, and so the run, differ
    torch.manual_seed(123)
    other = dropout_run(seed_model=2)
    other.load_checkpoint(path, restore_rng=False)
    for batch in batches[5:]:
        other.train_step(batch)
    assert other.step_history["loss"][5:] != whole.step_history["loss"][5:]


def test_grad_scaler_skips_non_finite_steps_and_its_state_is_checkpointed(tmp_path):
    # float16 AMP needs CUDA; a CPU GradScaler runs the same code path of the trainer
    def make():
        model = nn.Linear(1, 1, bias=False)
        nn.init.zeros_(model.weight)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        trainer = Trainer(
            model,
            lambda m, b: (torch.sqrt(m.weight.abs() + b[0]) + m.weight).sum(),
            opt,
            device="cpu",
            progress=False,
            scheduler=StepLR(opt, 1, gamma=0.5),
        )
        trainer.grad_scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
        return trainer

    trainer = make()
    trainer.train_step((torch.zeros(1),))  # finite loss, nan gradient: the scaler skips the update
    assert trainer.model.weight.item() == 0.0 and trainer.grad_scaler.get_scale() == 512.0
    assert trainer.scheduler.last_epoch == 0  # no update, no scheduler step
    assert trainer.step == 1 and math.isnan(trainer.step_history["grad_norm"][0])
    trainer.train_step((torch.ones(1),))  # a finite gradient: updated, scheduler steps
    assert trainer.model.weight.item() != 0.0 and trainer.scheduler.last_epoch == 1
    path = trainer.save_checkpoint(tmp_path / "ckpt.pt")
    fresh = make()
    fresh.load_checkpoint(path)
    assert fresh.grad_scaler.state_dict() == trainer.grad_scaler.state_dict()
    assert fresh.grad_scaler.get_scale() == 512.0


def test_load_checkpoint_checks_before_changing_anything(tmp_path):
    plain = make_trainer()
    path = plain.save_checkpoint(tmp_path / "plain.pt")
    with_scheduler = make_trainer(scheduler=lambda o: StepLR(o, 1))
    nn.init.zeros_(with_scheduler.model.weight)
    with pytest.raises(ValueError, match="holds no scheduler state, but this trainer has scheduler="):
        with_scheduler.load_checkpoint(path)
    assert with_scheduler.model.weight.abs().sum() == 0  # nothing was loaded
    path = with_scheduler.save_checkpoint(tmp_path / "sched.pt")
    with pytest.raises(ValueError, match="holds a scheduler state, but this trainer has scheduler=None"):
        plain.load_checkpoint(path)
    # a model-only checkpoint is not a trainer checkpoint
    model_only = save_checkpoint(tmp_path / "model.pt", plain.model, plain.optimizer)
    with pytest.raises(ValueError, match="holds no trainer state"):
        plain.load_checkpoint(model_only)
    with pytest.raises(ValueError, match="must not use the key 'trainer'"):
        plain.save_checkpoint(tmp_path / "x.pt", trainer=1)
    # a truncated file: a clear error, not OSError [Errno 22]
    data = (tmp_path / "plain.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="is not a complete torch.save file: it is truncated or corrupt"):
        plain.load_checkpoint(tmp_path / "cut.pt")


def test_checkpoint_keeps_the_callers_extra_data(tmp_path):
    trainer = make_trainer()
    path = trainer.save_checkpoint(tmp_path / "ckpt.pt", note="hello", data_rng=torch.arange(3))
    extra = make_trainer().load_checkpoint(path)
    assert extra.keys() == {"note", "data_rng"} and torch.equal(extra["data_rng"], torch.arange(3))


# -- fit_steps ------------------------------------------------------------------------------------
def test_fit_steps_is_the_train_step_loop_on_batch_fn_batches():
    train, _ = regression_task()
    seen = []

    def batch_fn(step):
        seen.append(step)
        return train[(step - 1) % len(train)]

    looped = make_trainer(grad_clip=0.5)
    want = [looped.train_step(train[i % len(train)])[0] for i in range(9)]
    fitted = make_trainer(grad_clip=0.5)
    got = fitted.fit_steps(batch_fn, 5)["loss"] + fitted.fit_steps(batch_fn, 4)["loss"]
    assert seen == list(range(1, 10))  # the step about to be taken, continued over calls
    assert got == want and fitted.step == 9 and fitted.epoch == 0
    assert fitted.step_history == looped.step_history
    for a, b in zip(fitted.model.parameters(), looped.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_fit_steps_evaluates_every_k_steps_and_after_the_last():
    train, val = regression_task()
    trainer = make_trainer()
    calls = []

    def eval_fn(t):
        calls.append(t.step)
        return t.evaluate(val)

    out = trainer.fit_steps(lambda step: train[0], 7, eval_fn=eval_fn, eval_every=3)
    assert out["eval_step"] == calls == [3, 6, 7]
    assert out["eval"][-1] == trainer.evaluate(val) and out["eval"][0] > out["eval"][-1]  # it learns
    assert trainer.fit_steps(lambda step: train[0], 2, eval_fn=eval_fn)["eval_step"] == [9]  # 0: the last only


def test_fit_steps_hooks_run_for_that_call_only_and_the_scheduler_steps():
    train, _ = regression_task()
    trainer = make_trainer(scheduler=lambda opt: StepLR(opt, step_size=2, gamma=0.5))
    records = []
    trainer.fit_steps(lambda step: train[0], 5, step_hooks=[records.append])
    assert [r.step for r in records] == [1, 2, 3, 4, 5]
    assert [r.lr for r in records] == [0.05, 0.05, 0.025, 0.025, 0.0125]
    assert trainer.step_hooks == []
    trainer.fit_steps(lambda step: train[0], 1)
    assert len(records) == 5


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"steps": 0}, "steps"),
        ({"steps": 2, "eval_every": -1}, "eval_every"),
        ({"steps": 2, "eval_fn": 3}, "eval_fn"),
        ({"steps": 2, "step_hooks": [1]}, "step_hooks"),
    ],
)
def test_fit_steps_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_trainer().fit_steps(lambda step: None, **kwargs)


@pytest.mark.parametrize("clip", [None, 0.5])
def test_fit_steps_is_bitwise_a_hand_written_loop(clip):
    # the loop the notebooks used to write: the same weights to the last bit, with and without clipping
    train, _ = regression_task()
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    sched = StepLR(opt, step_size=2, gamma=0.5)
    for i in range(7):
        loss = mse(model, train[i % len(train)])
        opt.zero_grad()
        loss.backward()
        if clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        sched.step()
    trainer = make_trainer(grad_clip=clip, scheduler=lambda o: StepLR(o, step_size=2, gamma=0.5))
    trainer.fit_steps(lambda step: train[(step - 1) % len(train)], 7)
    for a, b in zip(trainer.model.parameters(), model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_fit_steps_eval_first_evaluates_before_the_first_step():
    train, val = regression_task()
    trainer = make_trainer()
    untrained = trainer.evaluate(val)
    out = trainer.fit_steps(lambda step: train[0], 4, eval_fn=lambda t: t.evaluate(val), eval_every=2, eval_first=True)
    assert out["eval_step"] == [0, 2, 4] and out["eval"][0] == untrained and out["eval"][2] < untrained


def test_compile_runs_the_loss_on_the_compiled_model(monkeypatch):
    compiled_calls = []

    class Wrapped(nn.Module):  # a stand-in for torch.compile's wrapper: same parameters
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            compiled_calls.append(x.shape[0])
            return self.inner(x)

    monkeypatch.setattr(torch, "compile", Wrapped)
    train, val = regression_task()
    trainer = make_trainer(compile=True)
    assert isinstance(trainer.forward_model, Wrapped) and trainer.forward_model.inner is trainer.model
    trainer.fit_steps(lambda step: train[0], 2)
    trainer.evaluate(val)
    assert compiled_calls == [32, 32, 32, 32]  # two steps and the two validation batches
    assert set(trainer.model.state_dict()) == {"weight", "bias"}  # checkpoints keep the plain names
    plain = make_trainer()
    assert plain.forward_model is plain.model


def test_compile_where_torch_cannot_compile_warns_and_runs_eagerly(monkeypatch):
    monkeypatch.setattr(torch._dynamo, "is_dynamo_supported", lambda: False)
    with pytest.warns(RuntimeWarning, match="compile=True: torch.compile does not support this platform"):
        trainer = make_trainer(compile=True)
    assert trainer.forward_model is trainer.model
    train, _ = regression_task()
    assert trainer.fit_steps(lambda step: train[0], 1)["loss"]
