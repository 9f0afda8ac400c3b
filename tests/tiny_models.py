"""Small models shared by the tests of the models, the decoders and translation (not a test file).

* :func:`tiny_gru` / :func:`tiny_transformer` / :func:`tiny_gpt` -- the real models of chapters 4, 7
  and 9, a few hundred parameters, fixed seeds; :func:`padded_sources` -- a padded source batch for
  them (for a GPT: prompts without padding);
* :class:`TableModel` -- a :class:`d2l_attn.decoding.StepModel` whose next-token logits are read
  from a fixed table indexed by (first source token, whole output prefix), so a test knows
  :math:`P(y \\mid x)` of every output exactly and can enumerate all of them;
* :class:`ScriptedModel` -- a StepModel that emits a given token sequence for each source.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from d2l_attn.data import Vocab
from d2l_attn.models.gpt import GPT, GPTConfig
from d2l_attn.models.rnn_seq2seq import AttentionDecoder, GRUEncoder, Seq2Seq
from d2l_attn.models.transformer import Transformer
from d2l_attn.translation import transformer_from_vocabs

PAD, BOS, EOS = 1, 2, 3  # the real models' special tokens (index 0 is <unk>)
RESERVED = ["<pad>", "<bos>", "<eos>"]
SRC_VOCAB = Vocab([[f"s{i}" for i in range(9)]], reserved_tokens=RESERVED)  # 13 tokens
TGT_VOCAB = Vocab([[f"t{i}" for i in range(11)]], reserved_tokens=RESERVED)  # 15 tokens


def tiny_gru(
    num_layers: int = 1,
    seed: int = 0,
    src_vocab_size: int = 11,
    tgt_vocab_size: int = 13,
    embed_size: int = 8,
    num_hiddens: int = 16,
) -> Seq2Seq:
    """Chapter 4's GRU encoder-decoder with Bahdanau attention, in eval mode."""
    torch.manual_seed(seed)
    encoder = GRUEncoder(src_vocab_size, embed_size, num_hiddens, num_layers)
    decoder = AttentionDecoder(tgt_vocab_size, embed_size, num_hiddens, num_layers)
    return Seq2Seq(encoder, decoder, bos_id=BOS, eos_id=EOS, pad_id=PAD).eval()


def tiny_transformer(norm_first: bool = False, seed: int = 0, fused: bool = True, **sizes) -> Transformer:
    """Chapter 7's Transformer for :data:`SRC_VOCAB` -> :data:`TGT_VOCAB`, in eval mode."""
    torch.manual_seed(seed)
    config = dict(d_model=16, num_heads=4, d_ff=32, num_layers=2, dropout=0.0)
    config.update(sizes)
    return transformer_from_vocabs(SRC_VOCAB, TGT_VOCAB, norm_first=norm_first, fused=fused, **config).eval()


def tiny_gpt(seed: int = 0, vocab_size: int = 13, **sizes) -> GPT:
    """Chapter 9's GPT with ``<eos>`` = :data:`EOS` (a decoder-only StepModel), in eval mode."""
    torch.manual_seed(seed)
    config = dict(max_len=24, num_layers=2, num_heads=2, d_model=16, eos_id=EOS, pad_id=PAD)
    config.update(sizes)
    return GPT(GPTConfig(vocab_size=vocab_size, **config)).eval()


def padded_sources(seed: int = 0, batch_size: int = 4, num_steps: int = 7, vocab_size: int = 11, padding: bool = True):
    """``src (B, T)`` of real tokens (ids >= 4) padded with ``<pad>`` after ``lens (B,)``; row 0 is full.

    ``padding=False``: every row is full (a GPT's prompts), from the same random tokens."""
    g = torch.Generator().manual_seed(seed)
    lens = torch.randint(1, num_steps + 1, (batch_size,), generator=g)
    lens[0] = num_steps
    if not padding:
        lens[:] = num_steps
    src = torch.randint(4, vocab_size, (batch_size, num_steps), generator=g)
    src[torch.arange(num_steps) >= lens[:, None]] = PAD
    return src, lens


# ------------------------------------------------------------------------------------------------
# A step model with known probabilities
# ------------------------------------------------------------------------------------------------
T_PAD, T_BOS, T_EOS = 0, 1, 2  # the TableModel's special tokens; ids 3.. are ordinary tokens


def node_of(prefix: tuple[int, ...], vocab_size: int) -> int:
    """Index of an output prefix in the tree of all prefixes: ``()`` is 0, ``child = node * V + y + 1``."""
    node = 0
    for token in prefix:
        node = node * vocab_size + token + 1
    return node


def num_nodes(vocab_size: int, max_len: int) -> int:
    """How many prefixes of length ``< max_len`` there are (the rows a table needs)."""
    return sum(vocab_size**d for d in range(max_len))


class TableModel(nn.Module):
    """A StepModel that reads ``logits[s, node_of(prefix)]`` from a table ``(S, N, V)``.

    ``s = src[:, 0]`` (each "sentence" is its first token); the prefix is every token fed after
    ``<bos>``. With ``weight_scores (S, N, T_max)`` each step also returns attention-like weights:
    a softmax of ``weight_scores[s, node, :T]`` over the real source positions (0 on padding), so
    the weights, too, depend on the whole prefix. Special tokens: ``<pad>`` 0, ``<bos>`` 1, ``<eos>`` 2.
    """

    def __init__(self, logits: torch.Tensor, weight_scores: torch.Tensor | None = None):
        super().__init__()
        self.register_buffer("logits", logits)  # (S, N, V)
        self.register_buffer("weight_scores", weight_scores)  # (S, N, T_max) or None
        self.device_anchor = nn.Parameter(torch.zeros(()))  # translate() reads the device from a parameter
        self.bos_id, self.eos_id, self.pad_id = T_BOS, T_EOS, T_PAD
        self.vocab_size = logits.shape[-1]

    @classmethod
    def random(
        cls, num_sources: int, vocab_size: int, max_len: int, seed: int, scale: float = 2.0, src_len: int | None = None
    ) -> TableModel:
        g = torch.Generator().manual_seed(seed)
        n = num_nodes(vocab_size, max_len)
        logits = scale * torch.randn(num_sources, n, vocab_size, generator=g)
        scores = torch.randn(num_sources, n, src_len, generator=g) if src_len else None
        return cls(logits, scores)

    @classmethod
    def from_probs(cls, vocab_size: int, max_len: int, probs: dict[tuple[int, ...], dict[int, float]]) -> TableModel:
        """One source; ``probs[prefix] = {token: P(token | prefix)}``, the rest of the mass shared
        equally by the other tokens; prefixes not listed are uniform."""
        logits = torch.zeros(1, num_nodes(vocab_size, max_len), vocab_size, dtype=torch.float64)
        for prefix, given in probs.items():
            rest = 1.0 - sum(given.values())
            assert rest > 0, "leave some mass for the tokens not listed"
            p = torch.full((vocab_size,), rest / (vocab_size - len(given)), dtype=torch.float64)
            for token, prob in given.items():
                p[token] = prob
            logits[0, node_of(prefix, vocab_size)] = p.log()
        return cls(logits)

    def init_state(self, src: torch.Tensor, src_valid_lens):
        lens = torch.as_tensor(src_valid_lens, device=src.device)
        node = torch.zeros(src.shape[0], dtype=torch.long, device=src.device)  # (B,): the empty prefix
        return src[:, 0], node, lens, False, src.shape[1]

    def step(self, tokens: torch.Tensor, state):
        sources, node, lens, started, src_len = state
        if started:  # the fed token extends the prefix (the first fed token is <bos>)
            node = node * self.vocab_size + tokens + 1  # (B,)
        logits = self.logits[sources, node]  # (B, V)
        weights = None
        if self.weight_scores is not None:
            scores = self.weight_scores[sources, node, :src_len]  # (B, T)
            real = torch.arange(src_len, device=scores.device) < lens[:, None]  # (B, T)
            weights = scores.masked_fill(~real, float("-inf")).softmax(dim=-1)  # (B, T)
        return logits, (sources, node, lens, True, src_len), weights

    def reorder_state(self, state, index: torch.Tensor):
        sources, node, lens, started, src_len = state
        return sources[index], node[index], lens[index], started, src_len

    def log_prob(self, source: int, output: list[int]) -> float:
        """:math:`\\sum_t \\log P(y_t \\mid y_{<t})` read straight off the table (float64)."""
        total, prefix = 0.0, ()
        for token in output:
            row = self.logits[source, node_of(prefix, self.vocab_size)].double()
            total += float(row.log_softmax(-1)[token])
            prefix += (token,)
        return total


class ScriptedModel(nn.Module):
    """A StepModel that emits ``script(source ids without padding)`` and then ``<eos>``.

    Logits are +10 on the scripted token and -10 elsewhere; weights are uniform over the real
    source tokens. Special tokens come from the target vocabulary.
    """

    def __init__(self, script: Callable[[list[int]], list[int]], tgt_vocab: Vocab):
        super().__init__()
        self.script = script
        self.vocab_size = len(tgt_vocab)
        self.bos_id, self.eos_id, self.pad_id = tgt_vocab["<bos>"], tgt_vocab["<eos>"], tgt_vocab["<pad>"]
        self.device_anchor = nn.Parameter(torch.zeros(()))

    def init_state(self, src: torch.Tensor, src_valid_lens):
        lens = torch.as_tensor(src_valid_lens)
        outputs = [self.script(src[b, : int(lens[b])].tolist()) + [self.eos_id] for b in range(src.shape[0])]
        width = max(len(o) for o in outputs)
        planned = torch.tensor([o + [self.eos_id] * (width - len(o)) for o in outputs])  # (B, width)
        return planned, lens, 0, src.shape[1]

    def step(self, tokens: torch.Tensor, state):
        planned, lens, t, src_len = state
        wanted = planned[:, min(t, planned.shape[1] - 1)]  # (B,)
        logits = torch.full((tokens.shape[0], self.vocab_size), -10.0)
        logits[torch.arange(tokens.shape[0]), wanted] = 10.0  # (B, V)
        real = (torch.arange(src_len) < lens[:, None]).float()  # (B, T)
        return logits, (planned, lens, t + 1, src_len), real / real.sum(-1, keepdim=True)

    def reorder_state(self, state, index: torch.Tensor):
        planned, lens, t, src_len = state
        return planned[index], lens[index], t, src_len
