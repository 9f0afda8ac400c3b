"""d2l_attn.metrics calibration: the expected calibration error and its bins on a hand-computed case."""

import math

import pytest
import torch

from d2l_attn import metrics


def test_ece_on_a_hand_computed_case():
    # bins of width 0.5: (0, 0.5] holds 0.2, 0.4 (1 of 2 correct), (0.5, 1] holds 0.6, 0.8, 1.0 (3 of 3)
    conf = torch.tensor([0.2, 0.4, 0.6, 0.8, 1.0])
    correct = torch.tensor([0, 1, 1, 1, 1])
    # |0.5 - 0.3| * 2/5 + |1.0 - 0.8| * 3/5 = 0.08 + 0.12
    assert math.isclose(metrics.expected_calibration_error(conf, correct, num_bins=2), 0.2, abs_tol=1e-6)
    bins = metrics.calibration_bins(conf, correct, num_bins=2)
    torch.testing.assert_close(bins.count, torch.tensor([2, 3]))
    torch.testing.assert_close(bins.confidence, torch.tensor([0.3, 0.8], dtype=torch.float64), rtol=1e-6, atol=1e-6)
    empty = metrics.calibration_bins(torch.tensor([0.95]), torch.tensor([1]), num_bins=4)
    assert torch.isnan(empty.accuracy[0]) and empty.count.tolist() == [0, 0, 0, 1]
    assert metrics.expected_calibration_error(torch.tensor([0.9] * 10), torch.tensor([1] * 9 + [0])) < 1e-6
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metrics.expected_calibration_error(torch.tensor([1.5]), torch.tensor([1]))
