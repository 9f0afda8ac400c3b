"""The shared argument checks (d2l_attn._checks): the messages name the argument and the range."""

import pytest
import torch

from d2l_attn import _checks, masking, pooling, scoring
from d2l_attn.blocks import Block
from d2l_attn.masking import Mask
from d2l_attn.multihead import MultiHeadAttention


@pytest.mark.parametrize("value", [0, -1, 2.0, True, "3", None])
def test_positive_int_rejects_non_sizes(value):
    with pytest.raises(ValueError, match=r"width must be a positive int"):
        _checks.positive_int("width", value)


def test_positive_ints_names_the_first_bad_argument():
    _checks.positive_ints(a=1, b=2)
    with pytest.raises(ValueError, match=r"^b must be a positive int, got 0$"):
        _checks.positive_ints(a=1, b=0, c=-1)


@pytest.mark.parametrize("value", [-1, 1.5, False])
def test_nonnegative_int(value):
    assert _checks.nonnegative_int("n", 0) == 0
    with pytest.raises(ValueError, match=r"n must be a non-negative int"):
        _checks.nonnegative_int("n", value)


@pytest.mark.parametrize("value", [0, -1e-3, float("nan"), float("inf"), True, "0.1", None])
def test_positive_number_refuses_non_positive_nan_and_inf(value):
    with pytest.raises(ValueError, match=r"^lr must be a finite positive number, got "):
        _checks.positive_number("lr", value)


def test_positive_number_may_allow_inf():
    assert _checks.positive_number("clip", 2) == 2.0 and isinstance(_checks.positive_number("clip", 2), float)
    assert _checks.positive_number("clip", float("inf"), allow_inf=True) == float("inf")
    with pytest.raises(ValueError, match=r"^clip must be a positive number, got nan$"):
        _checks.positive_number("clip", float("nan"), allow_inf=True)


@pytest.mark.parametrize("value", [-0.1, 1.0, 1, True, "0.1"])
def test_unit_interval(value):
    assert _checks.unit_interval("dropout", 0) == 0.0
    with pytest.raises(ValueError, match=r"dropout must be a number in \[0, 1\)"):
        _checks.unit_interval("dropout", value)


def test_heads_divide_returns_the_head_size_and_is_used_by_every_attention_layer():
    assert _checks.heads_divide(12, 4) == 3
    for make in (lambda: MultiHeadAttention(10, 3), lambda: Block.build(10, 3, 8)):
        with pytest.raises(ValueError, match=r"d_model=10 must be divisible by num_heads=3"):
            make()


def test_bool_mask_rejects_masks_that_would_enlarge_the_result():
    scores = torch.zeros(2, 3, 4)
    ok = torch.ones(3, 4, dtype=torch.bool)
    assert _checks.bool_mask(ok, scores.shape) is ok
    too_big = torch.ones(5, 2, 3, 4, dtype=torch.bool)  # would broadcast scores to (5, 2, 3, 4)
    with pytest.raises(ValueError, match=r"mask of shape \(5, 2, 3, 4\) does not broadcast to \(2, 3, 4\)"):
        masking.masked_softmax(scores, mask=too_big)
    with pytest.raises(ValueError, match=r"attn_mask of shape \(5, 2, 3, 4\) does not broadcast"):
        scoring.DotProductAttention()(
            torch.zeros(2, 3, 8), torch.zeros(2, 4, 8), torch.zeros(2, 4, 8), Mask.of(attn_mask=too_big)
        )
    with pytest.raises(ValueError, match=r"mask must be a boolean tensor .* got torch.float32"):
        masking.masked_softmax(scores, mask=torch.ones(3, 4))
    q, k = torch.zeros(3, 1), torch.zeros(4, 1)
    with pytest.raises(ValueError, match=r"mask of shape \(2, 3, 4\) does not broadcast to \(3, 4\)"):
        pooling.nadaraya_watson(q, k, torch.zeros(4), mask=torch.ones(2, 3, 4, dtype=torch.bool))


def test_paired_lists_rejects_strings_and_length_mismatches():
    _checks.paired_lists("a", ["x"], "b", ["y"])
    with pytest.raises(ValueError, match=r"^a and b must be lists \(one entry per sentence\), not a single string$"):
        _checks.paired_lists("a", "x y", "b", ["y"])
    with pytest.raises(ValueError, match=r"^a and b must have the same length \(why\), got 1 and 2$"):
        _checks.paired_lists("a", ["x"], "b", ["y", "z"], " (why)")


def test_stack_sizes_checks_a_config_and_defaults_d_ff():
    from types import SimpleNamespace

    from d2l_attn._checks import stack_sizes

    config = SimpleNamespace(d_model=8, num_heads=2, num_layers=1, dropout=0.1, d_ff=None)
    assert stack_sizes(config, "d_model", "num_heads", "num_layers") == 32  # 4 * d_model
    assert stack_sizes(SimpleNamespace(**{**vars(config), "d_ff": 5}), "d_model") == 5
    for field, bad, match in [
        ("num_layers", 0, "num_layers"),
        ("dropout", 1.5, "dropout"),
        ("num_heads", 3, "divisible"),
        ("d_ff", -1, "d_ff"),
    ]:
        with pytest.raises(ValueError, match=match):
            stack_sizes(SimpleNamespace(**{**vars(config), field: bad}), "d_model", "num_heads", "num_layers")


def test_config_from_builds_or_checks_a_config():
    from dataclasses import dataclass

    from d2l_attn._checks import config_from

    @dataclass
    class Sizes:
        width: int = 4

    assert config_from(Sizes, None, {"width": 8}) == Sizes(8)
    given = Sizes(2)
    assert config_from(Sizes, given, {}) is given
    with pytest.raises(ValueError, match="not both"):
        config_from(Sizes, given, {"width": 8})
    with pytest.raises(ValueError, match="config must be a Sizes"):
        config_from(Sizes, "4", {})
