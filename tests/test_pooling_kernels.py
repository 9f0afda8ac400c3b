"""Tests for chapter 2: kernels, Nadaraya--Watson pooling and its learnable version (d2l_attn.pooling)."""

import math

import pytest
import torch

from d2l_attn import widgets
from d2l_attn.pooling import (
    KERNELS,
    NadarayaWatson,
    average_pooling,
    boxcar_kernel,
    epanechnikov_kernel,
    gaussian_kernel,
    get_kernel,
    leave_one_out_mask,
    nadaraya_watson,
    soft_lookup,
    triangular_kernel,
)

COMPACT = ["boxcar", "epanechnikov", "triangular"]


def regression_data(n=40, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.sort(torch.rand(n, generator=g, dtype=dtype) * 5).values
    y = 2 * torch.sin(x) + x**0.8 + 0.5 * torch.randn(n, generator=g, dtype=dtype)
    return x, y


# -- kernels -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(KERNELS))
def test_kernel_integrates_to_one_is_symmetric_and_non_negative(name):
    kernel = KERNELS[name]
    u = torch.linspace(-8, 8, 160_001, dtype=torch.float64)
    k = kernel(u)
    assert torch.all(k >= 0)
    torch.testing.assert_close(k, kernel(-u))
    assert torch.trapezoid(k, u).item() == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("name", COMPACT)
def test_compact_kernels_vanish_outside_the_unit_interval(name):
    kernel = KERNELS[name]
    outside = torch.tensor([-3.0, -1.0001, 1.0001, 2.5])
    assert torch.all(kernel(outside) == 0)
    inside = torch.tensor([-0.999, -0.5, 0.0, 0.5, 0.999])
    assert torch.all(kernel(inside) > 0)


def test_gaussian_kernel_has_full_support_and_formula():
    u = torch.tensor([-4.0, 0.0, 1.0, 4.0], dtype=torch.float64)
    expected = torch.exp(-(u**2) / 2) / math.sqrt(2 * math.pi)
    torch.testing.assert_close(gaussian_kernel(u), expected)
    assert torch.all(gaussian_kernel(torch.tensor([5.0, 10.0])) > 0)


def test_kernel_formulas_at_known_points():
    u = torch.tensor([0.0, 0.5, 1.0])
    torch.testing.assert_close(epanechnikov_kernel(u), torch.tensor([0.75, 0.5625, 0.0]))
    torch.testing.assert_close(triangular_kernel(u), torch.tensor([1.0, 0.5, 0.0]))
    torch.testing.assert_close(boxcar_kernel(u), torch.tensor([0.5, 0.5, 0.5]))


def test_epanechnikov_is_not_triangular_not_even_after_rescaling():
    u = torch.linspace(-1, 1, 201)
    epa, tri = epanechnikov_kernel(u), triangular_kernel(u)
    assert (epa - tri).abs().max() > 0.2
    # no constant c makes c * tri equal epa (the weights would then be the same)
    ratio = epa[1:-1] / tri[1:-1]
    assert ratio.max() - ratio.min() > 0.5
    x, y = regression_data()
    q = torch.linspace(0, 5, 50, dtype=torch.float64)
    w_epa = nadaraya_watson(q, x, y, "epanechnikov", 0.8)[1]
    w_tri = nadaraya_watson(q, x, y, "triangular", 0.8)[1]
    assert (w_epa - w_tri).abs().max() > 1e-2


def test_get_kernel_names_callables_and_errors():
    assert get_kernel("Gaussian") is gaussian_kernel
    assert get_kernel(" epanechnikov ") is epanechnikov_kernel
    custom = lambda u: (u.abs() < 2).double()
    assert get_kernel(custom) is custom
    with pytest.raises(ValueError, match="kernel must be one of 'gaussian'"):
        get_kernel("cosine")
    with pytest.raises(ValueError, match="kernel must be one of"):
        get_kernel(3)
    with pytest.raises(ValueError, match="'Epanechikov' kernel .* is 'triangular'"):
        get_kernel("epanechikov")


# -- nonparametric pooling ---------------------------------------------------------------------


@pytest.mark.parametrize("name", list(KERNELS))
def test_weights_are_distributions_and_predictions_are_weighted_averages(name):
    x, y = regression_data()
    q = torch.linspace(-1, 6, 71, dtype=torch.float64)
    pred, w = nadaraya_watson(q, x, y, name, 0.4)
    assert w.shape == (71, 40) and pred.shape == (71,)
    assert torch.all(w >= 0) and torch.isfinite(w).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(71, dtype=torch.float64))
    torch.testing.assert_close(pred, w @ y)
    assert torch.all((pred >= y.min()) & (pred <= y.max()))


def test_weights_are_normalized_kernel_values():
    x, y = regression_data()
    q = torch.tensor([0.7, 2.2, 4.1], dtype=torch.float64)
    for name in KERNELS:
        h = 0.6
        k = KERNELS[name]((q[:, None] - x[None, :]) / h)  # (3, 40)
        expected = k / k.sum(-1, keepdim=True)
        torch.testing.assert_close(nadaraya_watson(q, x, y, name, h)[1], expected)


def test_gaussian_pooling_is_softmax_of_negative_squared_distance():
    x, y = regression_data()
    q = torch.linspace(0, 5, 30, dtype=torch.float64)
    sigma = 0.37
    _, w = nadaraya_watson(q, x, y, "gaussian", sigma)
    expected = torch.softmax(-((q[:, None] - x[None, :]) ** 2) / (2 * sigma**2), dim=-1)
    torch.testing.assert_close(w, expected)
    torch.testing.assert_close(nadaraya_watson(q, x, y, "gaussian", sigma)[0], soft_lookup(q, x, y, sigma)[0])


def test_gaussian_far_query_does_not_underflow():
    keys = torch.tensor([0.0, 1.0])
    pred, w = nadaraya_watson(torch.tensor([1000.0]), keys, torch.tensor([3.0, 7.0]), "gaussian", 0.01)
    assert torch.isfinite(w).all()
    torch.testing.assert_close(pred, torch.tensor([7.0]))


def test_bandwidth_limits_nearest_neighbour_and_average():
    x, y = regression_data(n=20)
    q = torch.linspace(0.1, 4.9, 13, dtype=torch.float64)
    nearest = y[(q[:, None] - x[None, :]).abs().argmin(-1)]
    for name in KERNELS:
        torch.testing.assert_close(nadaraya_watson(q, x, y, name, 1e-4)[0], nearest)
        pred_wide = nadaraya_watson(q, x, y, name, 1e8)[0]
        torch.testing.assert_close(pred_wide, y.mean().expand(13), rtol=1e-6, atol=1e-6)
    pred_avg, w_avg = average_pooling(q, x, y)
    torch.testing.assert_close(pred_avg, y.mean().expand(13))
    torch.testing.assert_close(w_avg, torch.full((13, 20), 1 / 20, dtype=torch.float64))


def test_vector_points_and_batches():
    g = torch.Generator().manual_seed(3)
    q, k, v = torch.randn(2, 5, 3, generator=g), torch.randn(2, 7, 3, generator=g), torch.randn(2, 7, 4, generator=g)
    pred, w = nadaraya_watson(q, k, v, "epanechnikov", 2.0)
    assert pred.shape == (2, 5, 4) and w.shape == (2, 5, 7)
    u = torch.cdist(q, k) / 2.0
    kv = epanechnikov_kernel(u)
    torch.testing.assert_close(w, kv / kv.sum(-1, keepdim=True))
    torch.testing.assert_close(pred, w @ v)


# -- empty windows: the documented nearest-key fallback ----------------------------------------


@pytest.mark.parametrize("name", COMPACT)
def test_empty_window_falls_back_to_the_nearest_key(name):
    keys = torch.tensor([0.0, 1.0, 4.0])
    values = torch.tensor([10.0, 20.0, 40.0])
    queries = torch.tensor([2.4, 2.6, 9.0, 0.5])  # windows of h = 0.2 around the first three are empty
    pred, w = nadaraya_watson(queries, keys, values, name, 0.2)
    assert torch.isfinite(pred).all() and torch.isfinite(w).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(4))
    torch.testing.assert_close(pred[:3], torch.tensor([20.0, 40.0, 40.0]))
    # a tie between two nearest keys shares the weight; 0.5 is 0.5 away from keys 0 and 1
    tie_pred, tie_w = nadaraya_watson(torch.tensor([0.5]), keys, values, name, 0.2)
    torch.testing.assert_close(tie_w, torch.tensor([[0.5, 0.5, 0.0]]))
    torch.testing.assert_close(tie_pred, torch.tensor([15.0]))


@pytest.mark.parametrize("name", ["epanechnikov", "triangular"])
def test_empty_window_rule_is_continuous_in_the_bandwidth(name):
    keys = torch.tensor([0.0, 1.0, 4.0], dtype=torch.float64)
    values = torch.tensor([10.0, 20.0, 40.0], dtype=torch.float64)
    query = torch.tensor([2.3], dtype=torch.float64)  # nearest key 1.0 at distance 1.3
    just_wide = nadaraya_watson(query, keys, values, name, 1.3 + 1e-6)[0]
    just_empty = nadaraya_watson(query, keys, values, name, 1.3 - 1e-6)[0]
    torch.testing.assert_close(just_wide, just_empty)


def test_empty_window_respects_the_mask_and_gradients_stay_finite():
    keys = torch.tensor([0.0, 1.0, 4.0])
    values = torch.tensor([10.0, 20.0, 40.0])
    mask = torch.tensor([[True, False, True]])  # key 1.0 (the nearest) is not allowed
    pred, w = nadaraya_watson(torch.tensor([1.2]), keys, values, "epanechnikov", 0.1, mask=mask)
    torch.testing.assert_close(pred, torch.tensor([10.0]))
    assert w[0, 1] == 0
    model = NadarayaWatson("triangular", 0.1)
    out = model(torch.tensor([2.5, 0.05]), keys, values)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(model.w.grad)


# -- masks and leave-one-out -------------------------------------------------------------------


def test_leave_one_out_mask_and_pooling():
    mask = leave_one_out_mask(4)
    assert mask.dtype == torch.bool and mask.shape == (4, 4)
    assert not mask.diagonal().any() and mask.sum() == 12
    x, y = regression_data(n=10)
    for name in KERNELS:
        _, w = nadaraya_watson(x, x, y, name, 0.5, mask=leave_one_out_mask(10))
        assert torch.all(w.diagonal() == 0)
        torch.testing.assert_close(w.sum(-1), torch.ones(10, dtype=torch.float64))
    for bad in [1, 0, 2.0, True, "3"]:
        with pytest.raises(ValueError, match="n must be an int >= 2"):
            leave_one_out_mask(bad)


def test_bad_masks():
    x, y = regression_data(n=5)
    with pytest.raises(ValueError, match="mask must be a boolean tensor"):
        nadaraya_watson(x, x, y, mask=torch.ones(5, 5))
    with pytest.raises(ValueError, match="does not broadcast"):
        nadaraya_watson(x, x, y, mask=torch.ones(4, 5, dtype=torch.bool))
    empty_row = torch.ones(5, 5, dtype=torch.bool)
    empty_row[2] = False
    with pytest.raises(ValueError, match="leaves a query with no key"):
        nadaraya_watson(x, x, y, "boxcar", mask=empty_row)
    with pytest.raises(ValueError, match="leaves a query with no key"):
        NadarayaWatson()(x, x, y, mask=empty_row)


# -- bad inputs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bandwidth", [0, 0.0, -1.0, float("nan"), float("inf"), "1", None, True, torch.tensor([1.0, 2.0])]
)
def test_bad_bandwidth(bandwidth):
    x, y = regression_data(n=5)
    with pytest.raises(ValueError, match="bandwidth must be a positive finite number"):
        nadaraya_watson(x, x, y, "gaussian", bandwidth)
    with pytest.raises(ValueError, match="bandwidth must be a positive finite number"):
        NadarayaWatson("gaussian", bandwidth)


def test_bad_shapes_and_kernels():
    x, y = regression_data(n=5)
    with pytest.raises(ValueError, match="one row per key"):
        nadaraya_watson(x, x, y[:4])
    with pytest.raises(ValueError, match="same feature size d"):
        nadaraya_watson(torch.zeros(3, 2), torch.zeros(5, 3), torch.zeros(5))
    with pytest.raises(ValueError, match="got a scalar"):
        nadaraya_watson(torch.tensor(1.0), x, y)
    with pytest.raises(ValueError, match="do not broadcast"):
        nadaraya_watson(torch.zeros(2, 3, 1), torch.zeros(3, 5, 1), torch.zeros(3, 5, 1))
    with pytest.raises(ValueError, match="unknown kernel|kernel must be one of"):
        nadaraya_watson(x, x, y, "epanechikov")
    with pytest.raises(ValueError, match="kernel must be one of"):
        NadarayaWatson("parabolic")
    with pytest.raises(ValueError, match="finite and non-negative"):
        nadaraya_watson(x, x, y, lambda u: -u.abs())
    with pytest.raises(ValueError, match="same shape"):
        nadaraya_watson(x, x, y, lambda u: u.sum())
    with pytest.raises(ValueError, match="must be a tensor"):
        average_pooling([1.0, 2.0], x, y)


# -- the module: nonparametric and learnable ---------------------------------------------------


@pytest.mark.parametrize("name", list(KERNELS))
def test_module_equals_function(name):
    x, y = regression_data()
    q = torch.linspace(0, 5, 21, dtype=torch.float64)
    fixed = NadarayaWatson(name, 0.7, learnable=False)
    assert "w" in dict(fixed.named_buffers()) and not list(fixed.parameters())
    pred, w = fixed(q, x, y, return_weights=True)
    ref_pred, ref_w = nadaraya_watson(q, x, y, name, 0.7)
    torch.testing.assert_close(pred, ref_pred)
    torch.testing.assert_close(w, ref_w)
    assert fixed.bandwidth == pytest.approx(0.7)
    learnable = NadarayaWatson(name, 0.7)
    assert [n for n, _ in learnable.named_parameters()] == ["w"]
    torch.testing.assert_close(learnable(q, x, y), ref_pred)


def test_zero_scale_is_average_pooling():
    x, y = regression_data()
    model = NadarayaWatson("gaussian", 1.0)
    with torch.no_grad():
        model.w.zero_()
    assert model.bandwidth == math.inf
    torch.testing.assert_close(model(x[:5], x, y), y.mean().expand(5))


@pytest.mark.parametrize("name", ["gaussian", "epanechnikov", "triangular"])
def test_learnable_bandwidth_lowers_the_leave_one_out_loss(name):
    x, y = regression_data(n=50, seed=1, dtype=torch.float32)
    mask = leave_one_out_mask(50)
    model = NadarayaWatson(name, bandwidth=3.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    losses = []
    for _ in range(60):
        optimizer.zero_grad()
        loss = ((model(x, x, y, mask=mask) - y) ** 2).mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0], (losses[0], losses[-1])
    assert 0.05 < model.bandwidth < 3.0
    # sharper weights: each row puts more weight on its largest entry
    _, w_after = model(x, x, y, mask=mask, return_weights=True)
    _, w_before = NadarayaWatson(name, 3.0)(x, x, y, mask=mask, return_weights=True)
    assert w_after.max(-1).values.mean() > 2 * w_before.max(-1).values.mean()


def test_without_leave_one_out_the_training_loss_rewards_memorization():
    x, y = regression_data(n=50, seed=1, dtype=torch.float32)
    mse = lambda h, mask=None: ((nadaraya_watson(x, x, y, "gaussian", h, mask=mask)[0] - y) ** 2).mean()
    hs = [0.001, 0.05, 0.2, 1.0]
    plain = [mse(h).item() for h in hs]
    assert plain == sorted(plain) and plain[0] < 1e-3  # smaller h, smaller training loss
    loo = [mse(h, leave_one_out_mask(50)).item() for h in hs]
    assert min(loo) < loo[0]  # with leave-one-out, the smallest h is not the best


# -- widgets for chapter 2 ---------------------------------------------------------------------


def test_kernel_regression_figure_plots_the_library_fit():
    x, y = regression_data(n=30, dtype=torch.float32)
    q = torch.linspace(0, 5, 40)
    fig = widgets.kernel_regression_figure(x, y, q, "triangular", 0.5, truth=2 * torch.sin(q) + q**0.8)
    left, right = fig.axes[0], fig.axes[1]
    prediction_line = [line for line in left.lines if line.get_label() == "prediction"][0]
    expected = nadaraya_watson(q, x, y, "triangular", 0.5)[0]
    torch.testing.assert_close(torch.as_tensor(prediction_line.get_ydata()), expected)
    mesh = right.collections[0]
    assert mesh.get_array().shape == (40, 30)
    with pytest.raises(ValueError, match="keys and values must both have shape"):
        widgets.kernel_regression_figure(x, y[:3], q)
    with pytest.raises(ValueError, match="truth must have the shape"):
        widgets.kernel_regression_figure(x, y, q, truth=q[:3])


def test_kernel_regression_explorer_redraws_with_the_chosen_kernel_and_bandwidth(monkeypatch):
    pytest.importorskip("ipywidgets")
    calls = []
    real = widgets.kernel_regression_figure
    monkeypatch.setattr(
        widgets, "kernel_regression_figure", lambda *args, **kwargs: calls.append(args[3:5]) or real(*args, **kwargs)
    )
    x, y = regression_data(n=20, dtype=torch.float32)
    box = widgets.kernel_regression_explorer(x, y, torch.linspace(0, 5, 25), kernel="boxcar", bandwidth=0.3)
    kernel_box, slider = box.children[0].children
    assert list(kernel_box.options) == list(KERNELS)
    assert calls == [("boxcar", pytest.approx(0.3))]
    kernel_box.value = "epanechnikov"
    slider.value = 1.0
    assert calls[1:] == [("epanechnikov", pytest.approx(0.3)), ("epanechnikov", pytest.approx(1.0))]
