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
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch

from d2l_attn import (
    attribution,
    blocks,
    data,
    decoding,
    efficient,
    embeddings,
    interop,
    losses,
    masking,
    metrics,
    models,
    multihead,
    pooling,
    positional,
    scoring,
    stability,
    translation,
    utils,
)
from d2l_attn.attention_view import attention_view
from d2l_attn.data import Vocab, synthetic, truncate_pad
from d2l_attn.masking import Mask
from d2l_attn.models import TransformerConfig
from d2l_attn.tokenizers import BPETokenizer
from d2l_attn.translation import seq2seq_from_vocabs, transformer_from_vocabs

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
TRANSFORMER = transformer_from_vocabs(
    SRC_VOCAB, TGT_VOCAB, d_model=16, num_heads=2, d_ff=32, num_layers=1, dropout=0.0
).eval()
GRU = seq2seq_from_vocabs(SRC_VOCAB, TGT_VOCAB, embed_size=8, num_hiddens=8).eval()
SRC = torch.tensor([[4, 5, 6], [7, 8, 0]])
SRC_LENS = torch.tensor([3, 2])
MHA = multihead.MultiHeadAttention(8, 2)
BLOCK = blocks.Block.build(8, 2, 16)
DEC_BLOCK = blocks.Block.build(8, 2, 16, cross=True)


def _dot_product(queries, keys, values, valid_lens=None, attn_mask=None):
    """A reader's direct call: lengths and a mask given as a ``Mask.of`` (checked by the layer)."""
    return scoring.DotProductAttention()(queries, keys, values, Mask.of(valid_lens, attn_mask))


def _mha(queries, keys, values, valid_lens=None, attn_mask=None):
    return MHA(queries, (keys, values), mask=Mask.of(valid_lens, attn_mask))


def _block(x, valid_lens=None):
    """A reader's direct call of a block: the lengths as a ``Mask.of``."""
    return BLOCK(x, Mask.of(valid_lens))


def _dec_block(x, memory, memory_valid_lens=None):
    return DEC_BLOCK(x, memory=memory, memory_mask=Mask.of(memory_valid_lens))


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
            _dot_product,
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
            _mha,
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
            "blocks.Block.build",
            blocks.Block.build,
            dict(d_model=8, num_heads=2, d_ff=16),
            dict(d_model="positive_int", num_heads=[0, 3], d_ff="positive_int", dropout="probability"),
        ),
        Entry(
            "blocks.Block.forward",
            _block,
            dict(x=x8, valid_lens=torch.tensor([3, 1])),
            dict(x=[_randn(2, 3, 7), _randn(3, 8), "x"], valid_lens="lens"),
        ),
        Entry(
            "blocks.Block.forward (cross-attention)",
            _dec_block,
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
        lambda: (
            scoring.DotProductAttention()(
                _randn(1, 2, 4),
                torch.cat([_randn(1, 2, 4), torch.full((1, 1, 4), NAN)], 1),
                _randn(1, 3, 4),
                Mask.of(torch.tensor([2])),
            ).output
        ),
    ),
    (
        "float64 inputs to multi-head attention",
        lambda: (
            multihead.MultiHeadAttention(8, 2)
            .double()(_randn(2, 3, 8).double(), (_randn(2, 3, 8).double(), _randn(2, 3, 8).double()))
            .output
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
        multihead.MultiHeadAttention(8, 2)(_randn(2, 3, 8).half(), (_randn(2, 3, 8).half(), _randn(2, 3, 8).half()))


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
    clean = layer(q, k, v, Mask.of(torch.tensor([3, 6]))).output
    k2, v2 = k.clone(), v.clone()
    (k2 if where == "keys" else v2)[0, :, 3:] = fill
    dirty = layer(q, k2, v2, Mask.of(torch.tensor([3, 6]))).output
    return bool(torch.isfinite(dirty).all()) and torch.allclose(dirty, clean, atol=1e-6, rtol=0)


def _causal_performer_ignores_a_later_key() -> bool:
    """EF31: the last key replaced by one aligned with the longest feature row (the largest feature value)."""
    layer = efficient.PerformerAttention(8, 64, generator=torch.Generator().manual_seed(0))
    q, k, v = _qkv4()
    before = layer(q, k, v, Mask.causal()).output
    w = layer.W[layer.W.square().sum(-1).argmax()]
    k2 = k.clone()
    k2[..., -1, :] = w * 8**0.25  # x' = w maximizes w.x' - |x'|^2 / 2
    after = layer(q, k2, v, Mask.causal()).output
    return torch.equal(before[..., :-1, :], after[..., :-1, :])


def _zeros(x: torch.Tensor) -> bool:
    return bool((x == 0).all())


def _argparse_error(*argv: str) -> None:
    """``pretrain.parse_args(argv)``: an argparse error (exit 2) re-raised as ValueError with its message."""
    import contextlib
    import io

    from d2l_attn import pretrain

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            pretrain.parse_args(list(argv))
        except SystemExit as exc:
            raise ValueError(err.getvalue()) from exc
    raise AssertionError(f"pretrain accepted {argv}")


def _tmp() -> Path:
    import tempfile

    return Path(tempfile.mkdtemp(prefix="d2l_probe_"))


def _zip_with(flag: int = 0, method: int | None = None) -> Path:
    """A zip of one stored member whose central-directory flag bits / method are then overwritten."""
    import struct
    import zipfile

    path = _tmp() / "archive.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("secret.txt", "hello")
    raw = bytearray(path.read_bytes())
    at = raw.index(b"PK\x01\x02")  # the central directory entry: flags at +8, method at +10
    struct.pack_into("<H", raw, at + 8, flag)
    if method is not None:
        struct.pack_into("<H", raw, at + 10, method)
    path.write_bytes(bytes(raw))
    return path


def _extract(path: Path) -> Path:
    from d2l_attn import data

    return data.extract_zip(path, path.parent / "out")


def _tiny_gpt(**overrides: Any):
    from d2l_attn.models import GPT, GPTConfig

    torch.manual_seed(0)
    sizes = dict(vocab_size=16, max_len=16, num_layers=1, num_heads=2, d_model=8, eos_id=-1)
    return GPT(GPTConfig(**{**sizes, **overrides})).eval()


def _hf(kind: str):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    if kind == "gpt2":
        config = transformers.GPT2Config(vocab_size=16, n_positions=16, n_embd=8, n_layer=2, n_head=2)
        return transformers.GPT2LMHeadModel(config)
    if kind == "bert":
        config = transformers.BertConfig(
            vocab_size=16, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16
        )
        return transformers.BertForPreTraining(config)
    config = transformers.ViTConfig(
        image_size=8,
        patch_size=2,
        num_channels=1,
        hidden_size=64,
        num_attention_heads=4,
        intermediate_size=128,
        num_hidden_layers=2,
    )
    return transformers.ViTForImageClassification(config)


def _probe_check(answer) -> bool:
    """XC47 / XC49: the answer is graded, and not as correct."""
    from d2l_attn import exercises

    feedback = exercises.check("ch03-masked-softmax-fn", answer)
    return not feedback.passed and "Correct" not in feedback.message


def _switch_off_then_cheat(s, l):
    import sys

    from d2l_attn import masking as m

    sys.setprofile(None)
    return m.masked_softmax(s, l)


def _switch_off_and_back(s, l):
    import sys

    from d2l_attn import masking as m

    hook = sys.getprofile()
    sys.setprofile(None)
    out = m.masked_softmax(s, l)
    sys.setprofile(hook)
    return out


def _review_cases() -> list[Case]:
    perf = efficient.PerformerAttention(8, 64, generator=torch.Generator().manual_seed(0))
    q, k, v = _qkv4()
    return [
        # efficient
        Case("EF17", lambda: _padded_keys_do_not_matter(efficient.LowRankAttention(8, 3)), check=bool),
        Case(
            "EF24",
            lambda: efficient.LinearAttention(eps=0)(q, k, v, Mask.of(torch.tensor([0, 6]))).output[0],
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
            lambda: multihead.MultiHeadAttention(8, 4, num_kv_heads=2)(_randn(2, 3, 8).double()),
            names=("x", "dtype", "float64"),
        ),
        # models: GPT, ViT, CNN and the Hugging Face imports
        Case("GP19", lambda: _tiny_gpt(eps=-1.0), names=("eps",)),
        Case("GP20", lambda: _tiny_gpt(eos_id=99, pad_id=99), names=("pad_id", "[0, 16)")),
        Case(
            "GP22",
            lambda: (
                decoding.sample(_tiny_gpt(), SRC[:, :2] % 16, None, 4, temperature=1e-300)
                == decoding.greedy_decode(_tiny_gpt(), SRC[:, :2] % 16, None, 4)
            ),
            check=bool,
        ),
        Case("VT14", lambda: models.ViTConfig(eps=-1.0), names=("eps",)),
        Case("VT05", lambda: models.ViT()(torch.zeros(2, 1, 8, 8, dtype=torch.uint8)), names=("images", "floating")),
        Case("VT06", lambda: models.ViT()(torch.zeros(2, 1, 8, 8, dtype=torch.float64)), names=("images", "dtype")),
        Case(
            "CN04", lambda: models.SmallCNN()(torch.zeros(2, 1, 8, 8, dtype=torch.float64)), names=("images", "dtype")
        ),
        Case("CN05", lambda: models.SmallCNN().train()(_randn(1, 1, 2, 2)), names=("images", "training mode")),
        Case("HF05", lambda: interop.from_hf_gpt2(_hf("gpt2"), max_len=32), names=("max_len", "16")),
        Case("HF06", lambda: interop.from_hf_gpt2(_hf("bert")), names=("hf_model", "GPT-2")),
        Case(
            "HF07",
            lambda: interop.gpt2_state_dict_to_ours(_hf("gpt2").state_dict(), 5),
            names=("num_layers=5", "2 layers"),
        ),
        Case("HF11", lambda: interop.from_hf_bert(_hf("gpt2")), names=("hf_model", "BERT")),
        Case("HF14", lambda: interop.from_hf_vit(_hf("vit")), names=("hf_model", ".vit")),
        # tokenizers
        Case(
            "TK10",
            lambda: BPETokenizer.train("a b", 2, extra_tokens=["<unk>", "[CLS]", "[CLS]"]).idx_to_token.count("[CLS]"),
            check=lambda n: n == 1,
        ),
        Case("TK14", lambda: _special_free_encoding(), check=bool),
        # pretrain (command line): an argparse error naming the option, before anything runs
        Case("PT03", lambda: _argparse_error("--log-every", "0"), names=("--log-every",)),
        Case("PT04", lambda: _argparse_error("--eval-batches", "0"), names=("--eval-batches",)),
        Case("PT05", lambda: _argparse_error("--steps", "-1"), names=("--steps",)),
        Case("PT06", lambda: _argparse_error("--lr", "nan"), names=("--lr",)),
        Case("PT09", lambda: _argparse_error("--threads", "-1"), names=("--threads",)),
        # attribution
        Case("AT04", lambda: attribution.attention_rollout(torch.full((1, 1, 3, 3), NAN)), names=("weights", "finite")),
        Case("AT05", lambda: attribution.attention_rollout(_randn(2, 1, 3, 3)), names=("weights",)),
        Case(
            "AT20",
            lambda: attribution.top_k_agreement(_randn(2, 3), torch.tensor([0.5, 1.5])),
            names=("truth", "integer positions"),
        ),
        Case(
            "AT21",
            lambda: attribution.fit_linear_probe(_randn(3, 4), torch.tensor([0, 1, 0]), torch.Generator()),
            names=("features", "too few"),
        ),
        Case(
            "AT22", lambda: attribution.fit_linear_probe(*_probe_data(nan_feature=True)), names=("features", "finite")
        ),
        Case("AT23", lambda: attribution.fit_linear_probe(*_probe_data(label=-1)), names=("labels", "non-negative")),
        Case(
            "AT28",
            lambda: attribution.control_labels(torch.tensor([10**11]), 2, torch.Generator()),
            names=("types", "2**24"),
        ),
        # stability
        Case(
            "ST14",
            lambda: stability.gumbel_softmax(
                torch.zeros(200000, 2, dtype=torch.float16), generator=torch.Generator().manual_seed(0)
            ),
            check=lambda y: y.dtype == torch.float16 and bool(torch.isfinite(y).all()) and bool((y > 0).all()),
        ),
        Case(
            "ST19",
            lambda: metrics.calibration_bins(torch.tensor([0.55, 0.56]), torch.tensor([2.0, 3.0])),
            names=("correct", "0/1"),
        ),
        # exercises: the forbidden-call watch cannot be switched off; an exit is a failed answer
        Case("XC47", lambda: _probe_check(_switch_off_then_cheat), check=bool),
        Case("XC47-restored", lambda: _probe_check(_switch_off_and_back), check=bool),
        Case("XC49", lambda: _probe_check(lambda s, l: sys.exit(3)), check=bool),
        # pooling, scoring, positional (old suite)
        Case("Q3", lambda: pooling.attention_pool(_randn(2, 3), [1.0, 2.0, 3.0]), names=("values", "tensor")),
        Case("Q4", lambda: pooling.attention_pool([[0.0, 1.0]], torch.ones(2)), names=("scores", "tensor")),
        Case(
            "Q9",
            lambda: pooling.hard_lookup(torch.tensor([3.0]), torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 2.0])),
            names=("values", "one entry per key"),
        ),
        Case(
            "S33",
            lambda: scoring.AdditiveAttention(8, 5, 4)(
                _randn(2, 3, 8).half(), _randn(2, 4, 5).half(), _randn(2, 4, 6).half()
            ),
            names=("queries", "dtype"),
        ),
        Case(
            "E10",
            lambda: positional.RotaryPositionalEncoding(8)(_randn(2, 5, 8), torch.arange(6)),
            names=("positions", "(5)"),
        ),
        Case("E11", lambda: positional.apply_rotary(_randn(5, 4), [[0.0, 0.0]] * 5), names=("angles", "tensor")),
        # translation, utils
        Case("T32", lambda: translation.evaluate_bleu(GRU, [], SRC_VOCAB, TGT_VOCAB, 5), names=("pairs",)),
        Case("T42", lambda: translation.load_model(_saved({"format": translation.FORMAT})), names=("incomplete",)),
        Case("U8", lambda: utils.seed_everything(2**70), names=("seed", "2**63")),
        Case("U12", lambda: utils.save_atomic({"a": 1}, _a_file() / "x.pt"), names=("path", "is a file")),
        # data: downloads, archives, IDX files
        Case("Z8", lambda: _extract(_tmp() / "missing.zip"), names=("zip_path", "missing.zip")),
        Case("DL10", lambda: _download_into_a_directory(), names=("good.bin", "directory")),
        Case("DL11", lambda: data.download(URL, "0" * 40, cache_dir=_tmp(), timeout=INF), names=("timeout", "finite")),
        Case("DL14", lambda: data.download(URL, "0" * 40, cache_dir=_tmp(), filename="a\x00b"), names=("filename",)),
        Case("DL22", lambda: _extract(_zip_with(flag=0x1)), names=("secret.txt", "encrypted")),
        Case("DL23", lambda: _extract(_zip_with(method=99)), names=("secret.txt", "compression method 99")),
        Case(
            "IM14",
            lambda: data.read_idx(b"\x00\x00\x08\x04" + (65536).to_bytes(4, "big") * 4),
            names=("promises", "18,446,744,073,709,551,616"),
        ),
        # the attention view
        Case(
            "AV09",
            lambda: (
                attention_view(["ok", "\ud800", "x"], torch.softmax(_randn(3, 3), -1))._repr_html_().encode("utf-8")
            ),
            check=lambda html: b"\xef\xbf\xbd" in html,  # U+FFFD in place of the lone surrogate
        ),
        # losses
        Case(
            "BT14",
            lambda: losses.mlm_loss(_randn(2, 3, 20), torch.tensor([[25, -100, -100], [1, 2, -100]])),
            names=("labels", "[0, V=20)"),
        ),
        Case(
            "BT15",
            lambda: losses.mlm_loss(_randn(2, 3, 20), torch.tensor([[-1, -100, -100], [1, 2, -100]])),
            names=("labels", "IGNORE_INDEX"),
        ),
        Case("BT17", lambda: losses.mlm_loss(_randn(1, 2, 5), torch.tensor([[1.0, 2.0]])), names=("labels", "int64")),
        Case("BT21", lambda: losses.lm_loss(_randn(2, 3, 15), SRC.float()), names=("tokens", "int64")),
    ]


URL = "file:///nonexistent/good.bin"


def _special_free_encoding() -> bool:
    """TK14: text that spells ``<pad>`` or ``[MASK]`` (learned as merges) never encodes to a reserved id."""
    tk = BPETokenizer.train("<pad>x " * 20 + "[MASK]y " * 20, 40, extra_tokens=["[MASK]"])
    ids = tk.encode("<pad>q [MASK]z")
    reserved = len(BPETokenizer.SPECIALS) + 1  # <unk> <pad> <bos> <eos> [MASK]
    return all(i >= reserved or i == tk.unk_id for i in ids) and "<pad>" in tk.decode(ids)


def _probe_data(nan_feature: bool = False, label: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Generator]:
    features = _randn(10, 3)
    if nan_feature:
        features[:, 2] = NAN
    labels = torch.tensor([0, 1, 0, 1, 0, 1, 0, 1, label, 0])
    return features, labels, torch.Generator().manual_seed(0)


def _saved(obj: Any) -> Path:
    path = _tmp() / "model.pt"
    torch.save(obj, path)
    return path


def _a_file() -> Path:
    path = _tmp() / "afile"
    path.write_text("x")
    return path


def _download_into_a_directory() -> Path:
    cache = _tmp()
    (cache / "good.bin").mkdir()
    return data.download(URL, "0" * 40, cache_dir=cache)


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
