"""Tests for d2l_attn.positional (chapter 6): sinusoidal, learned and rotary encodings."""

import math

import pytest
import torch

from d2l_attn.positional import (
    LearnedPositionalEncoding,
    RotaryPositionalEncoding,
    SinusoidalPositionalEncoding,
    apply_rotary,
    rotary_angles,
    sinusoidal_encoding,
    sinusoidal_frequencies,
    sinusoidal_shift_matrix,
)


def test_sinusoidal_values_match_the_formula():
    table = sinusoidal_encoding(50, 6)
    assert table.shape == (50, 6) and table.dtype == torch.float32
    for pos in (0, 1, 7, 49):
        for i in range(3):
            angle = pos / 10000 ** (2 * i / 6)
            assert table[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
            assert table[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)
    torch.testing.assert_close(table[0], torch.tensor([0.0, 1.0] * 3))
    torch.testing.assert_close(sinusoidal_frequencies(4, base=100.0), torch.tensor([1.0, 0.1]))


def test_layer_adds_the_table_and_rejects_long_inputs():
    layer = SinusoidalPositionalEncoding(8, max_len=10)
    x = torch.randn(2, 7, 8)
    torch.testing.assert_close(layer(x), x + sinusoidal_encoding(10, 8)[:7])
    assert "encoding" not in layer.state_dict() and not list(layer.parameters())
    with pytest.raises(ValueError, match=r"sequence length 11 \(offset 0 \+ 11 steps\) exceeds max_len=10"):
        layer(torch.randn(2, 11, 8))
    with pytest.raises(ValueError, match=r"shape \(batch_size, num_steps, d_model=8\)"):
        layer(torch.randn(2, 5, 6))
    with pytest.raises(ValueError, match=r"shape \(batch_size, num_steps, d_model=8\)"):
        layer(torch.randn(5, 8))


def test_odd_and_bad_sizes_are_rejected_clearly():
    with pytest.raises(ValueError, match="d_model must be even"):
        SinusoidalPositionalEncoding(7)
    with pytest.raises(ValueError, match="d_model must be even"):
        sinusoidal_encoding(10, 5)
    with pytest.raises(ValueError, match="dim must be even"):
        RotaryPositionalEncoding(3)
    with pytest.raises(ValueError, match="max_len must be a positive int"):
        SinusoidalPositionalEncoding(8, max_len=0)
    with pytest.raises(ValueError, match="dropout must be a number in"):
        SinusoidalPositionalEncoding(8, dropout=1.5)
    with pytest.raises(ValueError, match="base must be a number > 1"):
        sinusoidal_frequencies(8, base=1)


def test_dropout_train_and_eval():
    torch.manual_seed(0)
    layer = SinusoidalPositionalEncoding(16, max_len=20, dropout=0.5)
    x = torch.zeros(4, 20, 16)
    out = layer(x)  # training mode: about half the entries are zeroed, the rest scaled by 2
    expected = sinusoidal_encoding(20, 16).expand(4, 20, 16)
    kept = out != 0
    assert 0.3 < kept.float().mean() < 0.7
    torch.testing.assert_close(out[kept], 2 * expected[kept])
    layer.eval()
    torch.testing.assert_close(layer(x), expected)


def test_shift_matrix_is_an_offset_only_rotation():
    table = sinusoidal_encoding(60, 8, dtype=torch.float64)
    for k in (1, 3, 10):
        m = sinusoidal_shift_matrix(k, 8, dtype=torch.float64)
        torch.testing.assert_close(table[:-k] @ m.T, table[k:])  # P[p + k] = M_k P[p] for every p
        torch.testing.assert_close(m @ m.T, torch.eye(8, dtype=torch.float64))
    # the dot product of two encodings depends only on their offset
    dots = table @ table.T  # (60, 60)
    torch.testing.assert_close(dots[5, 9], dots[20, 24])
    torch.testing.assert_close(dots[9, 5], dots[5, 9])


def test_learned_shapes_parameters_and_limit():
    torch.manual_seed(0)
    layer = LearnedPositionalEncoding(6, max_len=5, dropout=0.0)
    assert layer.embedding.weight.shape == (5, 6)
    assert sum(p.numel() for p in layer.parameters()) == 30
    x = torch.randn(3, 4, 6)
    out = layer(x)
    assert out.shape == (3, 4, 6)
    torch.testing.assert_close(out - x, layer.embedding.weight[:4].expand(3, 4, 6))
    out.sum().backward()
    assert layer.embedding.weight.grad[:4].abs().sum() > 0 and layer.embedding.weight.grad[4].abs().sum() == 0
    with pytest.raises(ValueError, match=r"sequence length 6 \(offset 0 \+ 6 steps\) exceeds max_len=5"):
        layer(torch.randn(1, 6, 6))


def test_rotary_preserves_norms_and_matches_the_formula():
    rope = RotaryPositionalEncoding(6)
    x = torch.randn(2, 3, 10, 6, dtype=torch.float64)  # (B, h, T, d_h)
    y = rope(x)
    assert y.shape == x.shape
    torch.testing.assert_close(y.norm(dim=-1), x.norm(dim=-1))
    torch.testing.assert_close(y[..., 0, :], x[..., 0, :])  # position 0 is not rotated
    p, i = 4, 1
    theta = p * 10000 ** (-2 * i / 6)
    c, s = math.cos(theta), math.sin(theta)
    a, b = x[0, 0, p, 2 * i], x[0, 0, p, 2 * i + 1]
    torch.testing.assert_close(y[0, 0, p, 2 * i], a * c - b * s)
    torch.testing.assert_close(y[0, 0, p, 2 * i + 1], a * s + b * c)


def test_rotary_scores_depend_only_on_relative_position():
    rope = RotaryPositionalEncoding(8)
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(8, generator=g, dtype=torch.float64), torch.randn(8, generator=g, dtype=torch.float64)

    def score(m, n):
        rq = rope(q.expand(1, 1, 8), torch.tensor([m]))
        rk = rope(k.expand(1, 1, 8), torch.tensor([n]))
        return (rq * rk).sum()

    for m, n, shift in [(3, 1, 5), (0, 7, 11), (10, 10, 3), (2, 9, 100)]:
        torch.testing.assert_close(score(m, n), score(m + shift, n + shift))
    assert not torch.allclose(score(3, 1), score(1, 3))  # but it does depend on the offset's sign


def test_rotary_positions_argument_and_errors():
    rope = RotaryPositionalEncoding(4)
    x = torch.randn(1, 5, 4)
    torch.testing.assert_close(rope(x), rope(x, torch.arange(5)))
    shifted = rope(x, 3 + torch.arange(5))
    torch.testing.assert_close(shifted, apply_rotary(x, rotary_angles(3 + torch.arange(5), 4)))
    with pytest.raises(ValueError, match=r"shape \(\.\.\., num_steps, dim=4\)"):
        rope(torch.randn(1, 5, 6))
    with pytest.raises(ValueError, match="angles must have 2 columns"):
        apply_rotary(x, torch.zeros(5, 3))


def test_positional_explorer_figure_and_widget():
    from matplotlib.figure import Figure

    from d2l_attn import widgets

    table = sinusoidal_encoding(40, 8)
    fig = widgets.positional_explorer_figure(table, position=5, dim=3)
    assert isinstance(fig, Figure)
    column_ax = next(ax for ax in fig.axes if ax.get_title().startswith("column j = 3 (cos)"))
    torch.testing.assert_close(torch.tensor(column_ax.lines[0].get_ydata(), dtype=torch.float32), table[:, 3])
    row_ax = next(ax for ax in fig.axes if ax.get_title().startswith("row p = 5"))
    torch.testing.assert_close(torch.tensor([b.get_height() for b in row_ax.patches], dtype=torch.float32), table[5])
    with pytest.raises(ValueError, match=r"position must lie in \[0, 39\]"):
        widgets.positional_explorer_figure(table, position=40, dim=0)
    with pytest.raises(ValueError, match=r"dim must lie in \[0, 7\]"):
        widgets.positional_explorer_figure(table, position=0, dim=8)
    with pytest.raises(ValueError, match=r"shape \(max_len, d\)"):
        widgets.positional_explorer_figure(table[0], position=0, dim=0)
    pytest.importorskip("ipywidgets")
    box = widgets.positional_explorer(table, position=3, dim=2)
    assert box.children
