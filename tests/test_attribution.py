"""Tests for d2l_attn.attribution (chapter 11): rollout, flow, gradients, scores, probes.

Each method is checked on a case computed by hand, chosen so that the usual mistakes (layers
multiplied in the wrong order, no residual, no (x - baseline) factor, ranks without ties) give
a different number.
"""

import math

import pytest
import torch

from d2l_attn.attribution import (
    attention_flow,
    attention_rollout,
    control_labels,
    embedding_function,
    fit_linear_probe,
    gradient_x_input,
    integrated_gradients,
    max_flow,
    spearman,
    top_k_agreement,
)
from d2l_attn.models.gpt import GPT

A1 = torch.tensor([[1.0, 0.0], [0.5, 0.5]])  # layer 1 (causal, one head)
A2 = torch.tensor([[0.5, 0.5], [0.0, 1.0]])  # layer 2 (not causal: any map will do)
# by hand: A'_1 = [[1, 0], [.25, .75]], A'_2 = [[.75, .25], [0, 1]], rollout = A'_2 A'_1
ROLLOUT = torch.tensor([[0.8125, 0.1875], [0.25, 0.75]])
# flow from output i to input j on the layered graph (paths through layer 1, bottlenecks by hand):
# (0->0): .75 via node 0 + .25 via node 1 = 1; (0->1): only via node 1, min(.25, .75) = .25;
# (1->0): only via node 1, min(1, .25) = .25; (1->1): via node 1, min(1, .75) = .75
FLOW = torch.tensor([[1.0, 0.25], [0.25, 0.75]])


def two_layers(heads=1):
    w = torch.stack([A1, A2])[:, None].expand(2, heads, 2, 2)  # (L, h, T, T)
    return w.clone()


def test_rollout_of_a_two_layer_case_matches_the_hand_computation():
    torch.testing.assert_close(attention_rollout(two_layers()), ROLLOUT)
    # heads are averaged first: two heads [A, B] give the rollout of (A + B) / 2
    w = torch.stack([torch.stack([A1, torch.eye(2)]), torch.stack([A2, A2])])  # (2, 2, 2, 2)
    mean = torch.stack([(A1 + torch.eye(2)) / 2, A2])[:, None]
    torch.testing.assert_close(attention_rollout(w), attention_rollout(mean))
    # residual=0 is the plain product A2 @ A1; residual=1 ignores attention (identity)
    torch.testing.assert_close(attention_rollout(two_layers(), residual=0.0), A2 @ A1)
    torch.testing.assert_close(attention_rollout(two_layers(), residual=1.0), torch.eye(2))
    # a batch axis in front
    batch = torch.stack([two_layers(), two_layers()])
    torch.testing.assert_close(attention_rollout(batch), torch.stack([ROLLOUT, ROLLOUT]))


def test_max_flow_on_the_textbook_network():
    # CLRS (3rd ed.) figure 26.1: s=0, v1..v4 = 1..4, t=5, maximum flow 23
    c = torch.zeros(6, 6)
    for u, v, cap in [
        (0, 1, 16),
        (0, 2, 13),
        (1, 3, 12),
        (2, 1, 4),
        (2, 4, 14),
        (3, 2, 9),
        (3, 5, 20),
        (4, 3, 7),
        (4, 5, 4),
    ]:
        c[u, v] = cap
    assert max_flow(c, 0, 5) == pytest.approx(23)
    assert max_flow(c, 5, 0) == 0  # no edge leaves the sink
    # a search that takes 0->1->2->3 first and cannot undo it (no reverse edges) stops at 1, not 2
    d = torch.zeros(4, 4)
    d[0, 1] = d[0, 2] = d[1, 3] = d[2, 3] = d[1, 2] = 1
    assert max_flow(d, 0, 3) == pytest.approx(2)


def test_attention_flow_matches_the_hand_computed_layered_graph():
    torch.testing.assert_close(attention_flow(two_layers()), FLOW)
    assert not torch.allclose(FLOW, ROLLOUT)  # the two methods really differ here
    torch.testing.assert_close(attention_flow(two_layers(), queries=[1]), FLOW[1:])
    # one layer: a single edge per (i, j), so flow = rollout = the residual-mixed attention
    torch.testing.assert_close(attention_flow(two_layers()[:1]), attention_rollout(two_layers()[:1]))
    batch = torch.stack([two_layers(), two_layers()])
    torch.testing.assert_close(attention_flow(batch), torch.stack([FLOW, FLOW]))


def _smooth(w):
    return lambda x: torch.tanh(x @ w).pow(2).sum(-1) + x.sum(-1)  # (B, d) -> (B,)


def test_integrated_gradients_are_complete_and_exact_for_linear_functions():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 4, generator=g, dtype=torch.float64)
    w = torch.randn(4, 3, generator=g, dtype=torch.float64)
    f = _smooth(w)
    ig = integrated_gradients(f, x, steps=200)
    torch.testing.assert_close(ig.sum(-1), f(x) - f(torch.zeros_like(x)), rtol=1e-4, atol=1e-5)
    base = torch.full_like(x, 0.3)
    ig = integrated_gradients(f, x, baseline=base, steps=200)
    torch.testing.assert_close(ig.sum(-1), f(x) - f(base), rtol=1e-4, atol=1e-5)
    # too few steps: completeness fails visibly (the test would notice a missing integral)
    coarse = integrated_gradients(f, x, steps=1).sum(-1)
    assert not torch.allclose(coarse, f(x) - f(torch.zeros_like(x)), rtol=1e-4, atol=1e-5)
    # a linear f: IG = gradient x input = x * w exactly, with any number of steps
    v = torch.randn(4, generator=g, dtype=torch.float64)
    torch.testing.assert_close(integrated_gradients(lambda x: x @ v, x, steps=3), x * v)
    torch.testing.assert_close(gradient_x_input(lambda x: x @ v, x), x * v)


def test_attributions_on_a_gpt_token_embedding_are_complete():
    torch.manual_seed(0)
    model = GPT(vocab_size=11, max_len=6, num_layers=2, num_heads=2, d_model=8).double().eval()
    tokens = torch.randint(0, 11, (3, 6), generator=torch.Generator().manual_seed(1))
    target = torch.tensor([1, 2, 3])
    f = embedding_function(model, model.token_embedding, (tokens,), lambda y: y[torch.arange(3), -1, target])
    emb = model.token_embedding(tokens).detach()
    torch.testing.assert_close(f(emb), model(tokens)[torch.arange(3), -1, target])  # f is the model
    ig = integrated_gradients(f, emb, steps=64)
    torch.testing.assert_close(ig.sum((1, 2)), f(emb) - f(torch.zeros_like(emb)), rtol=1e-3, atol=1e-4)
    assert not model.token_embedding._forward_hooks  # nothing stays registered
    gxi = gradient_x_input(f, emb)
    assert gxi.shape == emb.shape and gxi[:, 0].abs().sum() > 0  # causal: token 0 reaches the last position


def test_spearman_by_hand_with_and_without_ties():
    a = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert float(spearman(a, torch.tensor([1.0, 3.0, 2.0, 4.0]))) == pytest.approx(1 - 6 * 2 / (4 * 15))
    assert float(spearman(a, -a)) == pytest.approx(-1)
    # ties share the average rank: [1, 1, 2] -> ranks [1.5, 1.5, 3]; by hand 1.5 / sqrt(1.5 * 2)
    assert float(spearman(torch.tensor([1.0, 1.0, 2.0]), torch.tensor([1.0, 2.0, 3.0]))) == pytest.approx(
        1.5 / math.sqrt(3)
    )
    # rows; a constant row has no ranking
    out = spearman(torch.tensor([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]]), torch.tensor([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]]))
    assert float(out[0]) == pytest.approx(-1) and math.isnan(float(out[1]))


def test_top_k_agreement_by_hand():
    scores = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]])
    truth = torch.tensor([1, 1, 0])
    assert top_k_agreement(scores, truth, k=1) == pytest.approx(1 / 3)
    assert top_k_agreement(scores, truth, k=2) == pytest.approx(2 / 3)
    assert top_k_agreement(scores, truth, k=3) == 1.0


def test_linear_probe_separates_what_is_linear_and_control_labels_follow_the_types():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 5, generator=g)
    labels = (x[:, 0] + x[:, 1] > 0).long()
    result = fit_linear_probe(x, labels, torch.Generator().manual_seed(1))
    assert result.test_accuracy > 0.95
    noise = torch.randint(0, 2, (400,), generator=g)  # unrelated to x
    assert fit_linear_probe(x, noise, torch.Generator().manual_seed(1)).test_accuracy < 0.65
    types = torch.tensor([3, 1, 3, 0, 1, 3])
    ctrl = control_labels(types, 4, torch.Generator().manual_seed(2))
    assert ctrl[0] == ctrl[2] == ctrl[5] and ctrl[1] == ctrl[4]
    assert ctrl.min() >= 0 and ctrl.max() < 4


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r"weights must have shape \(\.\.\., L, h, T, T\)"):
        attention_rollout(torch.ones(2, 2))
    with pytest.raises(ValueError, match="residual must be a number in"):
        attention_rollout(two_layers(), residual=1.5)
    with pytest.raises(ValueError, match="queries must be positions"):
        attention_flow(two_layers(), queries=[2])
    with pytest.raises(ValueError, match="capacity must be finite and non-negative"):
        max_flow(-torch.ones(2, 2), 0, 1)
    with pytest.raises(ValueError, match="sink must be a node index"):
        max_flow(torch.ones(2, 2), 0, 2)
    with pytest.raises(ValueError, match="steps must be a positive int"):
        integrated_gradients(lambda x: x.sum(-1), torch.ones(2, 2), steps=0)
    with pytest.raises(ValueError, match="baseline must have the shape of x"):
        integrated_gradients(lambda x: x.sum(-1), torch.ones(2, 2), baseline=torch.ones(2))
    with pytest.raises(ValueError, match="f must return one score per example"):
        gradient_x_input(lambda x: x.sum(), torch.ones(2, 2))
    with pytest.raises(ValueError, match="a and b must be tensors of the same shape"):
        spearman(torch.ones(3), torch.ones(4))
    with pytest.raises(ValueError, match="truth must hold one index per row"):
        top_k_agreement(torch.ones(2, 3), torch.tensor([0]))
    with pytest.raises(ValueError, match="k and truth must be in"):
        top_k_agreement(torch.ones(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="labels must be integer class ids"):
        fit_linear_probe(torch.ones(4, 2), torch.ones(4), torch.Generator())
    with pytest.raises(ValueError, match="types must be a 1-D tensor"):
        control_labels(torch.tensor([-1, 2]), 3, torch.Generator())
