r"""An interactive attention view that needs no kernel and no CDN (chapters 7 and 11).

:func:`attention_view` turns attention weights :math:`\alpha_{ij}` (query :math:`i`, key
:math:`j`, one map per layer and head) into one self-contained HTML fragment: the tokens in two
columns, queries left and keys right, joined by lines whose opacity is the weight. Hovering,
clicking (touch) or tabbing to a query token keeps only its lines, shades each key by
:math:`\alpha_{ij}` and writes its largest weights as text; a layer selector and a head selector
(one head, or the mean over heads :math:`\frac1h \sum_k \alpha^{(k)}_{ij}`) switch the map.

Everything the view needs travels inside the fragment: the weights as JSON (per mille integers,
so within :math:`5 \cdot 10^{-4}` of the input), the script (``assets/attention_view.js``) and
the style (``assets/attention_view.css``). No script is loaded from anywhere, so the view works
offline in Jupyter, in Colab (whose output frames run inline scripts) and on the book's static
pages; every view has its own element id, so several can share a page. It plays the part of
bertviz's head view, which fetches its scripts from a CDN.
"""

from __future__ import annotations

import html
import json
import uuid
from collections.abc import Mapping, Sequence
from importlib import resources

import numpy as np
import torch

__all__ = ["AttentionView", "attention_view", "MAX_TOKENS", "MAX_WEIGHTS"]

MAX_TOKENS = 128  # tokens per side (queries, keys) that one view shows
MAX_WEIGHTS = 2**18  # L * h * T_q * T_k: about 1 MB of JSON at most
SCALE = 1000  # weights are stored as round(1000 * w): three decimals


def _array(name: str, weights: object) -> tuple[np.ndarray, bool]:
    """``weights`` as float64 numpy, and whether it came in half precision (looser row-sum check)."""
    if isinstance(weights, torch.Tensor):
        half = weights.dtype in (torch.float16, torch.bfloat16)
        return weights.detach().to("cpu", torch.float64).numpy(), half
    try:
        data = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a tensor or array of attention weights: {exc}") from exc
    return data, getattr(weights, "dtype", None) == np.float16


def _four_axes(name: str, weights: object) -> np.ndarray:
    """``weights`` as ``(L, h, T_q, T_k)`` float64, checked to hold one distribution per row."""
    data, half = _array(name, weights)
    shape = tuple(data.shape)
    if data.ndim == 5 and shape[0] == 1:  # (1, L, h, T_q, T_k): one sentence of collect_attention
        data = data[0]
    elif data.ndim == 5:
        raise ValueError(f"{name} has a batch of {shape[0]} examples, shape {shape}: pick one, e.g. {name}[0]")
    if data.ndim not in (2, 3, 4):
        raise ValueError(f"{name} must have shape (L, h, T_q, T_k), (h, T_q, T_k) or (T_q, T_k), got {shape}")
    data = data.reshape((1,) * (4 - data.ndim) + data.shape)
    if 0 in data.shape:
        raise ValueError(f"{name} must not be empty, got shape {shape}")
    if not np.isfinite(data).all():
        raise ValueError(f"{name} must be finite (no nan or inf)")
    if data.min() < -1e-6:
        raise ValueError(
            f"{name} must be non-negative attention weights, found {data.min():.3g} (scores passed before the softmax?)"
        )
    sums = data.sum(-1)
    tol = 1e-2 if half else 1e-3
    worst = np.unravel_index(np.abs(sums - 1).argmax(), sums.shape)
    if abs(sums[worst] - 1) > tol:
        raise ValueError(
            f"each row of {name} (one query's weights over the keys, last axis) must sum to 1 within {tol}: "
            f"row {tuple(int(i) for i in worst)} sums to {sums[worst]:.4g} (scores passed before the softmax?)"
        )
    return data


def _stack(weights: object, layer_names: Sequence[str] | None) -> tuple[np.ndarray, list[str]]:
    """One ``(L, h, T_q, T_k)`` array and a name per layer, from an array or a dict of them."""
    if isinstance(weights, Mapping):
        if not weights:
            raise ValueError("weights is an empty dict: pass at least one map")
        parts, names = [], []
        for key, value in weights.items():
            part = _four_axes(f"weights[{key!r}]", value)
            if parts and part.shape[1:] != parts[0].shape[1:]:
                raise ValueError(
                    f"every map in weights must have the same (h, T_q, T_k): weights[{key!r}] has "
                    f"{part.shape[1:]}, the first has {parts[0].shape[1:]}; show maps of other sizes in another view"
                )
            parts.append(part)
            names += [str(key)] if len(part) == 1 else [f"{key} · layer {i + 1}" for i in range(len(part))]
        data = np.concatenate(parts)
    else:
        data = _four_axes("weights", weights)
        names = [f"layer {i + 1}" for i in range(len(data))]
    if layer_names is not None:
        names = _labels("layer_names", layer_names, len(data), "one per layer")
    return data, names


def _labels(name: str, labels: object, n: int, what: str) -> list[str]:
    if isinstance(labels, str) or not isinstance(labels, Sequence):
        raise ValueError(f"{name} must be a list of strings ({what}), got {type(labels).__name__}")
    if len(labels) != n:
        raise ValueError(f"{name} must have {n} entries ({what}), got {len(labels)}")
    bad = [x for x in labels if not isinstance(x, str)]
    if bad:
        raise ValueError(f"{name} must hold strings, found {bad[0]!r} ({type(bad[0]).__name__})")
    return list(labels)


def _utf8(text: str) -> str:
    """``text`` with every lone surrogate (``'\\ud800'``, not encodable as UTF-8) replaced by U+FFFD."""
    return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)


def _asset(filename: str) -> str:
    return resources.files("d2l_attn").joinpath("assets", filename).read_text(encoding="utf-8")


def _script_json(value: object) -> str:
    """JSON that is safe inside ``<script>``: no ``<``, ``>`` or ``&`` (``</script>`` in a token)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class AttentionView:
    """The view returned by :func:`attention_view`; Jupyter shows it through ``_repr_html_``.

    Attributes: ``payload`` (the dict embedded as JSON: ``keys``, ``queries``, ``layers``,
    ``heads``, ``scale``, ``weights`` as nested ``[L][h][T_q][T_k]`` integers). Every rendering
    gets a new element id, so showing one view twice on a page gives two working copies.
    """

    def __init__(self, payload: dict, title: str | None):
        self.payload = payload
        self.title = title

    def weights(self) -> np.ndarray:
        """The embedded weights, ``(L, h, T_q, T_k)``, as the page reads them (three decimals)."""
        return np.asarray(self.payload["weights"], dtype=np.float64) / self.payload["scale"]

    def row(self, query: int, layer: int = 0, head: int | None = None) -> np.ndarray:
        """Query ``query``'s weights over the keys as the page shows them, ``(T_k,)``: one head, or
        the mean over heads (``head=None``, the page's "all heads"), computed in the page's order."""
        counts = np.asarray(self.payload["weights"][layer], dtype=np.int64)[:, query]  # (h, T_k)
        if head is not None:
            return counts[head] / self.payload["scale"]
        return counts.sum(0) / self.payload["scale"] / self.payload["heads"]

    def top_keys(self, query: int, layer: int = 0, head: int | None = None, k: int = 3) -> list[tuple[int, float]]:
        """The ``k`` largest weights of a query as ``(key index, weight)``, largest first (ties: the
        earlier key first): what the page's readout lists."""
        weights = self.row(query, layer, head)
        order = sorted(range(len(weights)), key=lambda j: -weights[j])[:k]
        return [(j, float(weights[j])) for j in order]

    def _repr_html_(self) -> str:
        uid = f"d2l-av-{uuid.uuid4().hex[:12]}"
        title = f'<div class="d2l-av-title">{html.escape(self.title)}</div>' if self.title else ""
        label = html.escape(self.title or "attention weights")
        return (
            f'<div class="d2l-av" id="{uid}" role="group" aria-label="{label}">'
            f"<style>{_asset('attention_view.css')}</style>{title}"
            f'<script type="application/json" class="d2l-av-data">{_script_json(self.payload)}</script>'
            '<p class="d2l-av-nojs">This interactive attention view needs JavaScript (in Jupyter: a trusted '
            "notebook; rerun the cell).</p></div>"
            f"<script>{_asset('attention_view.js')}\nD2LAttentionView.mount({json.dumps(uid)});</script>"
        )

    def __repr__(self) -> str:
        p = self.payload
        shape = (len(p["layers"]), p["heads"], len(p["queries"]), len(p["keys"]))
        return f"AttentionView(title={self.title!r}, (L, h, T_q, T_k)={shape})"


def attention_view(
    tokens: Sequence[str],
    weights: object,
    *,
    query_tokens: Sequence[str] | None = None,
    layer_names: Sequence[str] | None = None,
    title: str | None = None,
) -> AttentionView:
    """An interactive, self-contained view of attention weights (display it, or end a cell with it).

    Args:
        tokens: the keys' tokens, ``T_k`` strings (also the queries' for self-attention).
        weights: ``(L, h, T_q, T_k)``, ``(h, T_q, T_k)`` or ``(T_q, T_k)`` (tensor or array;
            a leading batch axis of size 1 is dropped), or a dict ``name -> weights`` such as
            :func:`d2l_attn.interpret.collect_attention` returns, whose maps share
            ``(h, T_q, T_k)`` and are stacked as layers. Each row (last axis) must be a
            distribution: finite, non-negative, summing to 1.
        query_tokens: the queries' ``T_q`` tokens, for cross-attention; default ``tokens``.
        layer_names: one name per layer, default ``layer 1, ...`` (``name · layer i`` for a dict).
        title: shown above the view.

    At most :data:`MAX_TOKENS` tokens per side and :data:`MAX_WEIGHTS` weights in all: slice
    longer inputs (``weights[..., :128, :128]``) or pick layers first. A lone surrogate in a token,
    the title or a layer name (text that UTF-8 cannot encode) is shown as U+FFFD.
    """
    data, names = _stack(weights, layer_names)
    num_layers, num_heads, t_q, t_k = data.shape
    if max(t_q, t_k) > MAX_TOKENS:
        raise ValueError(
            f"attention_view shows at most {MAX_TOKENS} tokens per side, got T_q={t_q}, T_k={t_k}: "
            f"slice the weights and tokens first, e.g. weights[..., :{MAX_TOKENS}, :{MAX_TOKENS}]"
        )
    if data.size > MAX_WEIGHTS:
        raise ValueError(
            f"attention_view embeds at most {MAX_WEIGHTS} weights (L * h * T_q * T_k), got {data.size} "
            f"for shape {data.shape}: pick fewer layers or heads, or a shorter sequence"
        )
    keys = _labels("tokens", tokens, t_k, "one per key, the last axis of weights")
    if query_tokens is None and t_q != t_k:
        raise ValueError(f"weights have T_q={t_q} queries but T_k={t_k} keys: pass query_tokens (cross-attention)")
    queries = keys if query_tokens is None else _labels("query_tokens", query_tokens, t_q, "one per query")
    if title is not None and not isinstance(title, str):
        raise ValueError(f"title must be a string or None, got {type(title).__name__}")
    keys, queries, names = [_utf8(t) for t in keys], [_utf8(t) for t in queries], [_utf8(n) for n in names]
    title = None if title is None else _utf8(title)
    payload = {
        "keys": keys,
        "queries": queries,
        "layers": names,
        "heads": num_heads,
        "scale": SCALE,
        "weights": np.rint(np.clip(data, 0.0, None) * SCALE).astype(np.int64).tolist(),
    }
    return AttentionView(payload, title)
