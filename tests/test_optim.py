"""d2l_attn.optim: schedules, temperature annealing and weight-decay groups, against hand-computed values."""

import math

import pytest
import torch
from torch import nn

from d2l_attn import optim, training


# -- schedules: values worked out by hand ---------------------------------------------------------
def test_noam_lr_at_hand_computed_steps():
    # d = 512, w = 4000: the peak at s = w is 1/sqrt(d w) = 1/sqrt(2,048,000)
    peak = 6.987712429686843e-4
    assert math.isclose(optim.noam_lr(4000, 512, 4000), peak, rel_tol=1e-12)
    assert math.isclose(optim.noam_lr(16000, 512, 4000), peak / 2, rel_tol=1e-12)  # s = 4w: sqrt(1/4)
    assert math.isclose(optim.noam_lr(1000, 512, 4000), peak / 4, rel_tol=1e-12)  # s = w/4: linear ramp
    assert math.isclose(optim.noam_lr(1, 512, 4000), peak / 4000, rel_tol=1e-12)


@pytest.mark.parametrize("warmup", [1, 4, 10])
def test_noam_lr_is_the_papers_formula(warmup):
    d = 512
    for s in range(1, 50):
        paper = d**-0.5 * min(s**-0.5, s * warmup**-1.5)
        assert math.isclose(optim.noam_lr(s, d, warmup), paper, rel_tol=1e-12)


def test_inverse_sqrt_factor_at_hand_computed_steps():
    # w = 4: s/w up to s = 4, then sqrt(4/s)
    got = [optim.inverse_sqrt_factor(s, 4) for s in (1, 2, 4, 16, 64)]
    assert got == [0.25, 0.5, 1.0, 0.5, 0.25]


def test_cosine_factor_at_hand_computed_steps():
    w, total, r = 10, 110, 0.1  # decay over 100 steps from 1 to 0.1
    assert optim.cosine_factor(5, w, total, r) == 0.5  # warm-up: 5/10
    assert optim.cosine_factor(10, w, total, r) == 1.0
    assert math.isclose(optim.cosine_factor(35, w, total, r), 0.8681980515339464)  # 0.1 + 0.45 (1 + cos(pi/4))
    assert math.isclose(optim.cosine_factor(60, w, total, r), 0.55)  # halfway: cos(pi/2) = 0
    assert math.isclose(optim.cosine_factor(85, w, total, r), 0.2318019484660536)  # 0.1 + 0.45 (1 - cos(pi/4))
    assert math.isclose(optim.cosine_factor(110, w, total, r), 0.1)
    assert math.isclose(optim.cosine_factor(160, w, total, r), 0.1)  # flat after the end
    assert math.isclose(optim.cosine_factor(3, 0, 4), 0.14644660940672627)  # no warm-up: 0.5 (1 + cos(3 pi / 4))


def _rates(scheduler_fn, steps, lr=2.0):
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    sched = scheduler_fn(opt)
    rates = []
    for _ in range(steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return rates


def test_warmup_cosine_scheduler_gives_step_s_the_factor_of_s():
    # w = 2, S = 4, r = 0, base 2: steps 1..4 use factors 1/2, 1, 1/2 (cos(pi/2)), 0
    got = _rates(lambda opt: optim.warmup_cosine(opt, 2, 4), 4)
    assert [round(x, 12) for x in got] == [1.0, 2.0, 1.0, 0.0]


def test_warmup_inverse_sqrt_scheduler_gives_step_s_the_factor_of_s():
    got = _rates(lambda opt: optim.warmup_inverse_sqrt(opt, 4), 6, lr=1.0)
    want = [0.25, 0.5, 0.75, 1.0, 0.8944271909999159, 0.816496580927726]  # then sqrt(4/5), sqrt(4/6)
    assert all(math.isclose(a, b, rel_tol=1e-12) for a, b in zip(got, want, strict=True))


def test_warmup_inverse_sqrt_in_the_trainer_records_the_papers_rates():
    d, warmup = 64, 5
    trainer = training.Trainer(
        nn.Linear(3, 1),
        lambda m, b: m(b).pow(2).mean(),
        lr=d**-0.5 * warmup**-0.5,
        device="cpu",
        progress=False,
        scheduler=lambda opt: optim.warmup_inverse_sqrt(opt, warmup),
    )
    for _ in range(12):
        trainer.train_step(torch.ones(2, 3))
    expected = [d**-0.5 * min(s**-0.5, s * warmup**-1.5) for s in range(1, 13)]
    for got, want in zip(trainer.step_history["lr"], expected, strict=True):
        assert math.isclose(got, want, rel_tol=1e-9)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: optim.inverse_sqrt_factor(0, 4), "step"),
        (lambda: optim.inverse_sqrt_factor(3, 0), "warmup_steps"),
        (lambda: optim.cosine_factor(3, 10, 10), "warmup_steps must be < total_steps"),
        (lambda: optim.cosine_factor(3, 2, 10, 1.5), "min_ratio"),
        (lambda: optim.noam_lr(3, -1, 4), "d_model"),
        (lambda: optim.warmup_inverse_sqrt(torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0), 0), "warmup"),
    ],
)
def test_schedule_bad_inputs(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_pretrain_learning_rate_is_the_cosine_schedule():
    from d2l_attn.pretrain import learning_rate, parse_args

    args = parse_args(["--steps", "4", "--warmup", "2", "--lr", "2.0", "--min-lr", "0.0"])
    assert [round(learning_rate(t, args), 12) for t in range(4)] == [1.0, 2.0, 1.0, 0.0]


# -- temperature annealing --------------------------------------------------------------------------
def test_gumbel_temperature_at_hand_computed_steps():
    rate = math.log(10) / 50  # 1 -> 0.1 in 50 steps
    assert optim.gumbel_temperature(0, 1.0, 0.1, rate) == 1.0
    assert math.isclose(optim.gumbel_temperature(25, 1.0, 0.1, rate), 10**-0.5)
    assert math.isclose(optim.gumbel_temperature(50, 1.0, 0.1, rate), 0.1)
    assert optim.gumbel_temperature(100, 1.0, 0.1, rate) == 0.1  # the floor
    assert math.isclose(optim.gumbel_temperature(2, 2.0, 0.1, math.log(2)), 0.5)  # halves every step
    assert optim.gumbel_temperature(1000, 2.0, 0.5) == 2.0  # rate 0: fixed
    for bad, name in [({"step": -1}, "step"), ({"tau_min": 0.0}, "tau_min"), ({"rate": -1.0}, "rate")]:
        kwargs = {"step": 0, "tau0": 1.0, "tau_min": 0.1, "rate": 0.1, **bad}
        with pytest.raises(ValueError, match=name):
            optim.gumbel_temperature(**kwargs)


# -- weight-decay groups ------------------------------------------------------------------------------
def test_weight_decay_groups_split_by_dimension_and_skip_frozen_and_shared():
    embed = nn.Embedding(5, 4)
    head = nn.Linear(4, 5)
    head.weight = embed.weight  # tied: one tensor, listed once
    frozen = nn.Linear(4, 4)
    frozen.requires_grad_(False)
    model = nn.Sequential(embed, nn.LayerNorm(4), frozen, head)
    decay, no_decay = optim.weight_decay_groups(model, 0.1)
    assert [tuple(p.shape) for p in decay["params"]] == [(5, 4)]  # the shared matrix, once
    assert [tuple(p.shape) for p in no_decay["params"]] == [(4,), (4,), (5,)]  # LN gain, LN bias, head bias
    assert (decay["weight_decay"], no_decay["weight_decay"]) == (0.1, 0.0)
    with pytest.raises(ValueError, match="weight_decay"):
        optim.weight_decay_groups(model, -1)
    with pytest.raises(ValueError, match="model"):
        optim.weight_decay_groups([embed], 0.1)


def test_adamw_with_the_groups_decays_only_matrices():
    model = nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.fill_(1.0)
        model.bias.fill_(1.0)
    opt = torch.optim.AdamW(optim.weight_decay_groups(model, 0.5), lr=0.1)
    model.weight.grad = torch.zeros_like(model.weight)
    model.bias.grad = torch.zeros_like(model.bias)
    opt.step()  # zero gradients: only decay moves a parameter, p <- p (1 - lr wd) = 0.95
    torch.testing.assert_close(model.weight, torch.full((1, 2), 0.95))
    torch.testing.assert_close(model.bias, torch.ones(1))
