"""Exercises of chapter 2: attention pooling by similarity (Nadaraya--Watson regression)."""

from __future__ import annotations

import torch

from ..pooling import epanechnikov_kernel, leave_one_out_mask, nadaraya_watson
from .core import ChoiceExercise, FunctionExercise, NumberExercise, TensorExercise

_KEYS = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0])
_VALUES = torch.tensor([1.0, 3.0, 2.0, 5.0, 4.0])
_QUERY = torch.tensor([1.6])


def _predict(kernel: str, bandwidth: float = 1.0) -> float:
    return float(nadaraya_watson(_QUERY, _KEYS, _VALUES, kernel, bandwidth)[0].item())


by_hand = NumberExercise(
    id="ch02-epanechnikov-by-hand",
    prompt=(
        "Keys k = (0, 1, 2, 3, 4), values v = (1, 3, 2, 5, 4). What does Nadaraya-Watson regression "
        "with the Epanechnikov kernel K(u) = 3/4 (1 - u^2) on |u| <= 1 and bandwidth h = 1 predict "
        "for the query q = 1.6? (3 decimals)"
    ),
    solution=_predict("epanechnikov"),
    rtol=1e-3,
    wrong_answers=[
        _predict("boxcar"),  # 2.5: the plain average of the two keys in the window
        _predict("triangular"),  # 2.4: D2L's "Epanechikov" kernel
        _predict("gaussian"),  # the Gaussian kernel sees every key
        float(_VALUES.mean()),  # average pooling
    ],
    hints=[
        "Only keys with |q - k| < h = 1 get weight: here k = 1 (u = 0.6) and k = 2 (u = -0.4).",
        "K(0.6) = 0.75 (1 - 0.36) = 0.48 and K(-0.4) = 0.75 (1 - 0.16) = 0.63; the prediction is "
        "(0.48 * 3 + 0.63 * 2) / (0.48 + 0.63).",
    ],
    explanation="The triangular kernel would give 2.4 and the boxcar 2.5: kernels with the same "
    "support still weigh the keys differently.",
)


def _kernel_inputs(seed: int):
    g = torch.Generator().manual_seed(2000 + seed)
    shape = [(7,), (3, 4), (50,), (2, 3, 5), (1,)][seed % 5]
    return (3 * torch.randn(*shape, generator=g, dtype=torch.float64),)


def _reference_epanechnikov(u):
    return epanechnikov_kernel(u)


def _wrong_triangular(u):  # D2L's "Epanechikov" kernel
    return (1 - u.abs()).clamp_min(0)


def _wrong_no_support(u):
    return 0.75 * (1 - u**2)


def _wrong_unnormalized(u):
    return (1 - u**2).clamp_min(0)


epanechnikov_function = FunctionExercise(
    id="ch02-epanechnikov-fn",
    prompt=(
        "Write epanechnikov(u) that returns the Epanechnikov kernel K(u) = 3/4 (1 - u^2) for |u| <= 1 "
        "and 0 elsewhere, elementwise, for a tensor u of any shape."
    ),
    solution=_reference_epanechnikov,
    make_inputs=_kernel_inputs,
    wrong_answers=[_wrong_triangular, _wrong_no_support, _wrong_unnormalized, epanechnikov_kernel, "not a function"],
    forbidden=["d2l_attn"],
    hints=[
        "A parabola 3/4 (1 - u^2) that is cut off at |u| = 1; the test inputs include |u| > 1.",
        "Either torch.where(u.abs() <= 1, 0.75 * (1 - u**2), 0) or 0.75 * (1 - u**2).clamp_min(0).",
    ],
)


def _nw_inputs(seed: int):
    """Sorted keys that leave no query with an empty window, queries inside their range."""
    g = torch.Generator().manual_seed(3000 + seed)
    n_k, n_q = 10 + 5 * seed, 3 + 2 * seed
    keys = torch.linspace(0, 5, n_k, dtype=torch.float64) + 0.05 * torch.randn(n_k, generator=g, dtype=torch.float64)
    values = torch.randn(n_k, generator=g, dtype=torch.float64)
    queries = 5 * torch.rand(n_q, generator=g, dtype=torch.float64)
    bandwidth = [0.8, 1.5, 0.6, 3.0, 1.0][seed % 5]
    return queries, keys, values, bandwidth


def _reference_nw(queries, keys, values, bandwidth):
    return nadaraya_watson(queries, keys, values, "epanechnikov", bandwidth)[0]


def _nw_by_hand(queries, keys, values, bandwidth, kernel=lambda u: 0.75 * (1 - u**2).clamp_min(0), dim=-1):
    k = kernel((queries[:, None] - keys[None, :]) / bandwidth)  # (n_q, n_k)
    return (k / k.sum(dim, keepdim=True).clamp_min(1e-12)) @ values


def _wrong_forgot_bandwidth(queries, keys, values, bandwidth):
    return _nw_by_hand(queries, keys, values, 1.0)


def _wrong_normalized_over_queries(queries, keys, values, bandwidth):
    return _nw_by_hand(queries, keys, values, bandwidth, dim=0)


def _wrong_triangular_nw(queries, keys, values, bandwidth):
    return _nw_by_hand(queries, keys, values, bandwidth, kernel=_wrong_triangular)


nw_function = FunctionExercise(
    id="ch02-nadaraya-watson-fn",
    prompt=(
        "Write nw(queries, keys, values, h) for 1-D tensors queries (n_q,), keys (n_k,), values (n_k,) "
        "that returns the (n_q,) Nadaraya-Watson predictions with the Epanechnikov kernel and "
        "bandwidth h. (Every query has a key within distance h in the tests.)"
    ),
    solution=_reference_nw,
    make_inputs=_nw_inputs,
    wrong_answers=[
        _wrong_forgot_bandwidth,
        _wrong_normalized_over_queries,
        _wrong_triangular_nw,
        lambda q, k, v, h: nadaraya_watson(q, k, v, "epanechnikov", h)[0],
    ],  # the library's
    forbidden=["d2l_attn"],
    hints=[
        "Build the (n_q, n_k) matrix u = (q_i - k_j) / h, apply the kernel, normalize each row, "
        "multiply by the values.",
        "Normalize over the keys: weights = K / K.sum(-1, keepdim=True), then weights @ values.",
    ],
)

_LOO_KEYS = torch.tensor([0.0, 1.0, 3.0])
_LOO_VALUES = torch.tensor([2.0, 4.0, 8.0])

loo_weights = TensorExercise(
    id="ch02-loo-weights",
    prompt=(
        "Training pairs (0, 2), (1, 4), (3, 8). Each training input is used as a query against the "
        "other two keys (leave-one-out). Give the (3, 3) matrix of attention weights for the "
        "triangular kernel K(u) = max(0, 1 - |u|) with h = 2.5 (rows: queries, columns: keys)."
    ),
    solution=nadaraya_watson(_LOO_KEYS, _LOO_KEYS, _LOO_VALUES, "triangular", 2.5, mask=leave_one_out_mask(3))[1],
    wrong_answers=[
        nadaraya_watson(_LOO_KEYS, _LOO_KEYS, _LOO_VALUES, "triangular", 2.5)[1],  # the key attends to itself
        nadaraya_watson(_LOO_KEYS, _LOO_KEYS, _LOO_VALUES, "epanechnikov", 2.5, mask=leave_one_out_mask(3))[1],
        torch.full((3, 3), 1 / 3),
    ],
    starter=torch.zeros(3, 3),
    hints=[
        "The diagonal is 0: query i may not use key i. Each row still sums to 1.",
        "Row 0: u = (0 - 1)/2.5 = -0.4 and (0 - 3)/2.5 = -1.2, so K = 0.6 and 0; the row is (0, 1, 0).",
    ],
)

concepts = ChoiceExercise(
    id="ch02-concepts",
    prompt="Which statements about Nadaraya-Watson attention pooling are true? Choose all that apply.",
    options=[
        "As the bandwidth h grows, every kernel in this chapter turns the estimator into average pooling.",
        "The kernel D2L calls 'Epanechikov', max(0, 1 - |u|), is the Epanechnikov kernel.",
        "With the Gaussian kernel the weights are softmax(-(q - k_i)^2 / (2 h^2)) over the keys.",
        "Fitting h by gradient descent on the training loss, with each training point used as a "
        "query against all training keys including itself, drives h towards 0.",
        "The parametric (learnable) version no longer needs to store the training data.",
    ],
    solution={"a", "c", "d"},
    wrong_answers=["a, c", "a, b, c, d", "a, c, d, e", "e"],
    hints=[
        "Check each statement against a cell of the chapter: the limits of h, the kernel plot, the "
        "softmax check, the over-fitting experiment.",
        "The learnable model has one parameter, w = 1/h, but its keys and values are still the "
        "training set; and max(0, 1 - |u|) is a triangle, not a parabola.",
    ],
    explanation="The learned model still attends over all training pairs: only the bandwidth is learned.",
)

boxcar_gradient = ChoiceExercise(
    id="ch02-boxcar-gradient",
    prompt=(
        "Why can the boxcar version of the learnable Nadaraya-Watson model not be trained by gradient "
        "descent on its inverse bandwidth w?"
    ),
    options=[
        "Its weights are piecewise constant in w: they change only when a key crosses the window's "
        "edge, so the gradient of the loss with respect to w is zero almost everywhere.",
        "The boxcar kernel has no parameter to learn.",
        "Its weights do not sum to 1.",
        "Its leave-one-out loss is always larger than the Epanechnikov kernel's.",
    ],
    solution="a",
    wrong_answers=["b", "c", "d"],
    hints=[
        "Look at K(w (q - k)) for the boxcar: what happens to a weight when w changes a little?",
        "Inside the window every key gets the same weight whatever w is; the loss moves only in jumps.",
    ],
    explanation="In PyTorch the loss is not even connected to w: the boxcar is a comparison, which has no gradient.",
)

EXERCISES = [by_hand, epanechnikov_function, nw_function, loo_weights, concepts, boxcar_gradient]
