"""A probe of bad and edge inputs across the public API: every one gets a clear answer.

For every public entry point we list one valid call, and for each of its arguments the kind of
value it takes (a positive int, a probability, a tensor of a given shape, ...). The probe then
replaces one argument at a time by values of the wrong kind, type, range or shape, and demands
a ``ValueError`` (or ``TypeError``/``RuntimeError`` where noted) **whose message names the
argument** -- never a silent result, never a bare error from deep inside torch. A second list
holds edge inputs that must *work* and give finite results (float64 inputs, a single token,
empty-but-valid masks).

``test_probe_size`` checks how many calls the probe makes, so that it cannot shrink unnoticed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch

from d2l_attn import (
    blocks,
    decoding,
    efficient,
    embeddings,
    losses,
    masking,
    metrics,
    multihead,
    pooling,
    positional,
    scoring,
    translation,
    utils,
)
from d2l_attn.data import Vocab, synthetic, truncate_pad
from d2l_attn.models import Seq2Seq, Transformer, TransformerConfig

NAN, INF = float("nan"), float("inf")

# bad values by kind of argument ------------------------------------------------------------------
BAD = {
    "positive_int": [0, -1, 1.5, True, None, "3", NAN],
    "nonnegative_int": [-1, 1.5, None, "3"],
    "probability": [-0.1, 1.5, NAN, INF, "0.1", None],
    "positive_float": [0.0, -1.0, NAN, INF, "1", None],
    "bool_mask": [torch.ones(2, 3), "mask", torch.ones(5, 5, 5, 5, 5, dtype=torch.bool)],
    "lens": [torch.tensor([1.5, 2.0]), torch.tensor([-1, 2]), torch.tensor([99, 1]), "3", torch.tensor([True, False])],
    "tokens": [
        torch.zeros(2, 3),
        torch.zeros(2, dtype=torch.long),
        torch.full((2, 3), 999),
        torch.full((2, 3), -1),
        [[1, 2, 3]],
    ],
}


@dataclass
class Entry:
    """One public callable: ``call(**args)`` must succeed; ``kinds`` maps an argument to its kind or to a
    list of bad values of its own."""

    name: str
    call: Callable[..., Any]
    args: dict[str, Any]
    kinds: dict[str, str | list[Any]] = field(default_factory=dict)
    #: an argument passed on under another name may be named that way in the message
    aliases: dict[str, str] = field(default_factory=dict)


def _randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


SRC_VOCAB = Vocab([[f"s{i}" for i in range(9)]], reserved_tokens=["<pad>", "<bos>", "<eos>"])
TGT_VOCAB = Vocab([[f"t{i}" for i in range(11)]], reserved_tokens=["<pad>", "<bos>", "<eos>"])
torch.manual_seed(0)
TRANSFORMER = Transformer.from_vocabs(
    SRC_VOCAB, TGT_VOCAB, d_model=16, num_heads=2, d_ff=32, num_layers=1, dropout=0.0
).eval()
GRU = Seq2Seq.from_vocabs(SRC_VOCAB, TGT_VOCAB, embed_size=8, num_hiddens=8).eval()
SRC = torch.tensor([[4, 5, 6], [7, 8, 0]])
SRC_LENS = torch.tensor([3, 2])
MHA = multihead.MultiHeadAttention(8, 2)
BLOCK = blocks.SelfAttentionBlock(8, 2, 16)
DEC_BLOCK = blocks.TransformerDecoderBlock(8, 2, 16)


def _entries() -> list[Entry]:
    x8 = _randn(2, 3, 8)
    return [
        # masking
        Entry(
            "masking.sequence_mask",
            masking.sequence_mask,
            dict(valid_lens=torch.tensor([1, 3]), max_len=4),
            dict(valid_lens="lens", max_len="nonnegative_int"),
        ),
        Entry(
            "masking.padding_mask",
            masking.padding_mask,
            dict(valid_lens=torch.tensor([1, 3]), num_queries=2, num_keys=4),
            dict(valid_lens="lens", num_queries="nonnegative_int", num_keys="nonnegative_int"),
        ),
        Entry(
            "masking.causal_mask",
            masking.causal_mask,
            dict(num_queries=3, num_keys=4),
            dict(num_queries="nonnegative_int", num_keys=[-1, 2, 1.5, "4"]),
        ),
        Entry(
            "masking.masked_softmax",
            masking.masked_softmax,
            dict(scores=_randn(2, 3, 4), valid_lens=torch.tensor([1, 4])),
            dict(scores=[torch.zeros(2, 3, 4, dtype=torch.long), "s", torch.zeros(())], valid_lens="lens"),
        ),
        # pooling
        Entry(
            "pooling.nadaraya_watson",
            pooling.nadaraya_watson,
            dict(queries=torch.rand(5), keys=torch.rand(7), values=torch.rand(7), kernel="gaussian", bandwidth=0.5),
            dict(
                bandwidth="positive_float",
                kernel=["cosine", 3, None],
                keys=[torch.zeros(0), torch.rand(7, 2), "k", torch.zeros(7, dtype=torch.complex64)],
                values=[torch.rand(6), "v"],
            ),
        ),
        Entry(
            "pooling.soft_lookup",
            pooling.soft_lookup,
            dict(queries=torch.rand(5), keys=torch.rand(7), values=torch.rand(7), sigma=0.5),
            dict(sigma="positive_float", values=[torch.rand(6)], keys=[torch.zeros(0)]),
        ),
        Entry("pooling.leave_one_out_mask", pooling.leave_one_out_mask, dict(n=4), dict(n="positive_int")),
        Entry(
            "pooling.NadarayaWatson",
            pooling.NadarayaWatson,
            dict(kernel="gaussian", bandwidth=1.0),
            dict(bandwidth="positive_float", kernel=["nope", 1]),
        ),
        # scoring
        Entry(
            "scoring.AdditiveAttention",
            scoring.AdditiveAttention,
            dict(query_dim=4, key_dim=5, num_hiddens=6, dropout=0.1),
            dict(query_dim="positive_int", key_dim="positive_int", num_hiddens="positive_int", dropout="probability"),
        ),
        Entry(
            "scoring.DotProductAttention.forward",
            scoring.DotProductAttention(),
            dict(
                queries=_randn(2, 3, 4), keys=_randn(2, 5, 4), values=_randn(2, 5, 6), valid_lens=torch.tensor([5, 2])
            ),
            dict(
                queries=[_randn(2, 3, 5), _randn(3, 4), "q"],
                keys=[_randn(2, 5, 3), _randn(3, 5, 4)],
                values=[_randn(2, 4, 6)],
                valid_lens="lens",
                attn_mask="bool_mask",
            ),
        ),
        Entry(
            "scoring.DotProductAttention", scoring.DotProductAttention, dict(dropout=0.0), dict(dropout="probability")
        ),
        # multihead
        Entry(
            "multihead.MultiHeadAttention",
            multihead.MultiHeadAttention,
            dict(d_model=8, num_heads=2),
            dict(
                d_model="positive_int",
                num_heads=[0, -2, 3, 1.5, None],
                dropout="probability",
                key_dim=[0, -1, 1.5],
                value_dim=[0, -1, "4"],
            ),
        ),
        Entry(
            "multihead.MultiHeadAttention.forward",
            MHA,
            dict(queries=x8, keys=x8, values=x8),
            dict(
                queries=[_randn(2, 3, 7), _randn(3, 8), "q"],
                keys=[_randn(2, 4, 7), _randn(1, 3, 8)],
                values=[_randn(2, 4, 8)],
                valid_lens="lens",
                attn_mask="bool_mask",
            ),
        ),
        Entry(
            "multihead.split_heads",
            multihead.split_heads,
            dict(x=x8, num_heads=2),
            dict(x=[_randn(8), "x"], num_heads=[0, 3, -1, None]),
        ),
        # positional and embeddings
        Entry(
            "positional.sinusoidal_encoding",
            positional.sinusoidal_encoding,
            dict(max_len=5, d_model=8),
            dict(max_len="positive_int", d_model=[0, 7, -2, 1.5, None]),
        ),
        Entry(
            "positional.SinusoidalPositionalEncoding",
            positional.SinusoidalPositionalEncoding,
            dict(d_model=8, max_len=10, dropout=0.1),
            dict(d_model=[0, 7, None], max_len="positive_int", dropout="probability", base=[0.0, -1.0, NAN, 1.0]),
        ),
        Entry(
            "positional.SinusoidalPositionalEncoding.forward",
            positional.SinusoidalPositionalEncoding(8, 10),
            dict(x=x8, offset=2),
            dict(x=[_randn(2, 11, 8), _randn(2, 3, 7), "x"], offset=[-1, 8, 1.5]),
        ),
        Entry(
            "positional.RotaryPositionalEncoding",
            positional.RotaryPositionalEncoding,
            dict(dim=8),
            dict(dim=[0, 7, None], base=[0.0, -1.0, NAN]),
        ),
        Entry(
            "embeddings.TokenEmbedding",
            embeddings.TokenEmbedding,
            dict(vocab_size=10, d_model=8, max_len=20),
            dict(
                vocab_size="positive_int",
                d_model="positive_int",
                max_len="positive_int",
                dropout="probability",
                positions=["relative", None],
            ),
        ),
        # blocks
        Entry(
            "blocks.PositionWiseFFN",
            blocks.PositionWiseFFN,
            dict(d_model=8, d_ff=16),
            dict(d_model="positive_int", d_ff="positive_int", dropout="probability", activation=["tanh", None]),
        ),
        Entry(
            "blocks.SelfAttentionBlock",
            blocks.SelfAttentionBlock,
            dict(d_model=8, num_heads=2, d_ff=16),
            dict(d_model="positive_int", num_heads=[0, 3], d_ff="positive_int", dropout="probability"),
        ),
        Entry(
            "blocks.SelfAttentionBlock.forward",
            BLOCK,
            dict(x=x8, valid_lens=torch.tensor([3, 1])),
            dict(x=[_randn(2, 3, 7), _randn(3, 8), "x"], valid_lens="lens"),
        ),
        Entry(
            "blocks.TransformerDecoderBlock.forward",
            DEC_BLOCK,
            dict(x=x8, memory=_randn(2, 4, 8), memory_valid_lens=torch.tensor([4, 2])),
            dict(x=[_randn(2, 3, 7)], memory=[_randn(2, 4, 7), _randn(3, 4, 8)], memory_valid_lens="lens"),
            # the block hands it to the cross-attention as valid_lens (one check per call, not per block)
            aliases=dict(memory_valid_lens="valid_lens"),
        ),
        # models
        Entry(
            "models.TransformerConfig",
            TransformerConfig,
            dict(d_model=16, num_heads=2),
            dict(
                d_model=[0, 15, -16, None],
                num_heads=[0, 3],
                d_ff="positive_int",
                num_layers="positive_int",
                dropout="probability",
                max_len="positive_int",
                activation=["tanh"],
            ),
        ),
        Entry(
            "models.Transformer.forward",
            TRANSFORMER,
            dict(src=SRC, src_valid_lens=SRC_LENS, tgt_in=SRC),
            dict(src="tokens", src_valid_lens="lens", tgt_in="tokens"),
        ),
        Entry(
            "models.Seq2Seq.forward",
            GRU,
            dict(src=SRC, src_valid_lens=SRC_LENS, tgt_in=SRC),
            dict(src="tokens", src_valid_lens=["lens", torch.tensor([0, 2])], tgt_in="tokens"),
        ),
        # losses
        Entry(
            "losses.shift_right",
            losses.shift_right,
            dict(targets=SRC, bos_id=2),
            dict(targets=[torch.zeros(2, 3), "t"], bos_id=[-1, 1.5, None, True]),
        ),
        Entry(
            "losses.masked_cross_entropy",
            losses.masked_cross_entropy,
            dict(logits=_randn(2, 3, 15), targets=SRC, valid_lens=torch.tensor([3, 1])),
            dict(
                logits=[_randn(2, 15), "z"],
                targets=[torch.zeros(2, 3), SRC[:, :2], torch.full((2, 3), 15)],
                valid_lens=["lens", torch.tensor([0, 0])],
                label_smoothing="probability",
            ),
        ),
        # decoding
        Entry(
            "decoding.greedy_decode",
            decoding.greedy_decode,
            dict(model=TRANSFORMER, src=SRC, src_valid_lens=SRC_LENS, max_len=4),
            dict(model=[torch.nn.Linear(2, 2), "m", None], src="tokens", src_valid_lens="lens", max_len="positive_int"),
        ),
        Entry(
            "decoding.beam_search",
            decoding.beam_search,
            dict(model=GRU, src=SRC, src_valid_lens=SRC_LENS, max_len=4, beam_size=2),
            dict(beam_size="positive_int", length_penalty=[NAN, INF, -1.0, "a", None], src="tokens"),
        ),
        Entry(
            "decoding.sample",
            decoding.sample,
            dict(model=TRANSFORMER, src=SRC, src_valid_lens=SRC_LENS, max_len=3),
            dict(
                temperature="positive_float",
                top_k=[0, -1, 1.5, True, "3"],
                top_p=[0.0, 1.5, NAN, "a"],
                generator=["g", 3],
            ),
        ),
        # translation and metrics
        Entry(
            "translation.translate",
            translation.translate,
            dict(model=GRU, sentences=["s1 s2"], src_vocab=SRC_VOCAB, tgt_vocab=TGT_VOCAB, num_steps=4),
            dict(
                sentences=["s1 s2", [""]],
                num_steps="positive_int",
                beam_size="positive_int",
                model=[torch.nn.Linear(2, 2)],
            ),
        ),
        Entry(
            "metrics.bleu",
            metrics.bleu,
            dict(pred="a b c", label="a b d", k=2),
            dict(k="positive_int", pred=[3, None], label=[3, None]),
        ),
        Entry(
            "metrics.corpus_bleu",
            metrics.corpus_bleu,
            dict(preds=[["a", "b"]], references=[[["a", "b"]]]),
            dict(preds=["a b", 3], max_n="positive_int"),
        ),
        # data
        Entry(
            "data.Vocab",
            Vocab,
            dict(tokens=[["a", "b"]], min_freq=1),
            dict(
                tokens=["hello world", [1, 2], [["a", 3]]],
                min_freq="positive_int",
                reserved_tokens=[["<unk>"], ["a", "a"], [1]],
            ),
        ),
        Entry(
            "data.truncate_pad",
            truncate_pad,
            dict(line=[1, 2], num_steps=4, padding_token=0),
            dict(num_steps="positive_int"),
        ),
        Entry(
            "data.synthetic.copy_task",
            synthetic.copy_task,
            dict(batch_size=2, length=3, vocab_size=5, generator=torch.Generator().manual_seed(0)),
            dict(batch_size="positive_int", length="positive_int", vocab_size=[1, 0, 2.5, None], generator=[None, 0]),
        ),
        # utils
        Entry("utils.seed_everything", utils.seed_everything, dict(seed=0), dict(seed=[-1, 1.5, "0", True, None])),
    ]


def _bad_values(kind: str | list[Any]) -> list[Any]:
    if isinstance(kind, str):
        return BAD[kind]
    out: list[Any] = []
    for value in kind:
        out.extend(BAD[value] if isinstance(value, str) and value in BAD else [value])
    return out


def _cases() -> list[tuple[str, Entry, str, Any]]:
    cases = []
    for entry in _entries():
        for arg, kind in entry.kinds.items():
            for value in _bad_values(kind):
                cases.append((f"{entry.name}:{arg}={value!r:.40}", entry, arg, value))
    return cases


CASES = _cases()


@pytest.mark.parametrize("entry", _entries(), ids=lambda e: e.name)
def test_the_valid_call_works(entry):
    out = entry.call(**entry.args)
    tensors = (
        [out]
        if isinstance(out, torch.Tensor)
        else [t for t in (out if isinstance(out, tuple) else ()) if isinstance(t, torch.Tensor)]
    )
    for t in tensors:
        if t.is_floating_point():
            assert torch.isfinite(t).all(), entry.name


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_a_bad_argument_gets_a_clear_error_naming_it(case):
    _, entry, arg, value = case
    args = dict(entry.args, **{arg: value})
    with pytest.raises((ValueError, TypeError)) as info:
        entry.call(**args)
    message = str(info.value)
    named = arg in message or entry.aliases.get(arg, arg) in message
    assert named, f"the error does not name {arg!r}: {type(info.value).__name__}: {message}"


# edge inputs that must work -----------------------------------------------------------------------
EDGE = [
    (
        "fused attention with NaN in a padded key is finite",
        lambda: scoring.DotProductAttention()(
            _randn(1, 2, 4),
            torch.cat([_randn(1, 2, 4), torch.full((1, 1, 4), NAN)], 1),
            _randn(1, 3, 4),
            torch.tensor([2]),
        ),
    ),
    (
        "float64 inputs to multi-head attention",
        lambda: multihead.MultiHeadAttention(8, 2).double()(
            _randn(2, 3, 8).double(), _randn(2, 3, 8).double(), _randn(2, 3, 8).double()
        ),
    ),
    ("a single token through a Transformer", lambda: TRANSFORMER(SRC[:1, :1], torch.tensor([1]), SRC[:1, :1])),
    (
        "a query whose keys are all masked gets zeros",
        lambda: masking.masked_softmax(_randn(1, 1, 3), torch.tensor([0])),
    ),
    ("beam search with length_penalty 0", lambda: decoding.beam_search(GRU, SRC, SRC_LENS, 3, length_penalty=0.0)),
    ("NW with one key", lambda: pooling.nadaraya_watson(torch.rand(3), torch.rand(1), torch.rand(1))[0]),
]


@pytest.mark.parametrize("name, call", EDGE, ids=[e[0] for e in EDGE])
def test_edge_inputs_work_and_are_finite(name, call):
    out = call()
    values = (
        out
        if isinstance(out, torch.Tensor)
        else torch.tensor([float(v) for seq in out for v in (seq if isinstance(seq, list) else [0])])
    )
    if isinstance(values, torch.Tensor) and values.is_floating_point():
        assert torch.isfinite(values).all(), name


def test_mismatched_dtypes_get_a_clear_error():
    with pytest.raises(ValueError, match="dtype"):
        multihead.MultiHeadAttention(8, 2)(_randn(2, 3, 8).half(), _randn(2, 3, 8).half(), _randn(2, 3, 8).half())


def test_probe_size():
    """The probe tries this many inputs; it cannot shrink unnoticed."""
    total = len(CASES) + len(_entries()) + len(EDGE) + 1
    assert total >= 250, total
    assert math.isfinite(total)


# the cases of the 2026-12-07 reliability review: one row per case id --------------------------------
@dataclass
class Case:
    """A review case: ``call()`` raises ``error`` whose message holds every word of ``names``, or, with
    ``check``, returns a value for which ``check(value)`` is true (a silent case made correct)."""

    id: str
    call: Callable[[], Any]
    names: tuple[str, ...] = ()
    check: Callable[[Any], bool] | None = None
    error: type[BaseException] = ValueError


def _qkv4(seed: int = 0, d: int = 8) -> list[torch.Tensor]:
    """Queries, keys and values ``(B=2, h=2, T=6, d)``."""
    return [_randn(2, 2, 6, d, seed=seed + i) for i in range(3)]


def _padded_keys_do_not_matter(layer, fill: float = NAN, where: str = "keys") -> bool:
    """``layer`` with ``valid_lens=[3, 6]``: example 0's padded keys (or values) set to ``fill`` change nothing."""
    q, k, v = _qkv4()
    clean = layer(q, k, v, valid_lens=torch.tensor([3, 6]))
    k2, v2 = k.clone(), v.clone()
    (k2 if where == "keys" else v2)[0, :, 3:] = fill
    dirty = layer(q, k2, v2, valid_lens=torch.tensor([3, 6]))
    return bool(torch.isfinite(dirty).all()) and torch.allclose(dirty, clean, atol=1e-6, rtol=0)


def _causal_performer_ignores_a_later_key() -> bool:
    """EF31: the last key replaced by one aligned with the longest feature row (the largest feature value)."""
    layer = efficient.PerformerAttention(8, 64, generator=torch.Generator().manual_seed(0))
    q, k, v = _qkv4()
    before = layer(q, k, v, is_causal=True)
    w = layer.W[layer.W.square().sum(-1).argmax()]
    k2 = k.clone()
    k2[..., -1, :] = w * 8**0.25  # x' = w maximizes w.x' - |x'|^2 / 2
    after = layer(q, k2, v, is_causal=True)
    return torch.equal(before[..., :-1, :], after[..., :-1, :])


def _zeros(x: torch.Tensor) -> bool:
    return bool((x == 0).all())


def _review_cases() -> list[Case]:
    perf = efficient.PerformerAttention(8, 64, generator=torch.Generator().manual_seed(0))
    q, k, v = _qkv4()
    return [
        # efficient
        Case("EF17", lambda: _padded_keys_do_not_matter(efficient.LowRankAttention(8, 3)), check=bool),
        Case(
            "EF24",
            lambda: efficient.LinearAttention(eps=0)(q, k, v, valid_lens=torch.tensor([0, 6]))[0],
            check=_zeros,
        ),
        Case("EF25", lambda: _padded_keys_do_not_matter(efficient.LinearAttention()), check=bool),
        Case("EF26", lambda: _padded_keys_do_not_matter(efficient.LinearAttention(), where="values"), check=bool),
        Case("EF31", _causal_performer_ignores_a_later_key, check=bool),
        Case("EF32", lambda: _padded_keys_do_not_matter(perf, fill=5.0), check=bool),
        Case("EF33", lambda: _padded_keys_do_not_matter(perf), check=bool),
        Case(
            "EF38",
            lambda: efficient.tiled_attention(q, k[..., :0, :], v[..., :0, :], block_q=3, block_k=2),
            check=_zeros,
        ),
        Case(
            "EF47",
            lambda: efficient.GroupedQueryAttention(8, 4, 2)(*[_randn(2, 3, 8).double()] * 3),
            names=("queries", "dtype", "float64"),
        ),
    ]


REVIEW = _review_cases()


@pytest.mark.parametrize("case", REVIEW, ids=[c.id for c in REVIEW])
def test_review_case(case):
    if case.check is not None:
        assert case.check(case.call()), case.id
        return
    with pytest.raises(case.error) as info:
        case.call()
    message = str(info.value)
    missing = [word for word in case.names if word not in message]
    assert not missing, f"{case.id}: the message does not name {missing}: {type(info.value).__name__}: {message}"
