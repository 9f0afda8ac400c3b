"""Weights from elsewhere: Hugging Face checkpoints (and torch modules) into the book's models.

Each ``from_hf_*`` reads the sizes from the checkpoint's config, builds our model with them and
copies the weights, so that our forward pass equals theirs (the tests compare hidden states to
1e-5):

* :func:`from_hf_gpt2`: a ``transformers.GPT2LMHeadModel`` (or ``GPT2Model``) as a :class:`~d2l_attn.models.GPT`.
  GPT-2's ``Conv1D`` layers store ``(in, out)`` matrices, the transpose of :class:`torch.nn.Linear`
  (:func:`gpt2_state_dict_to_ours`);
* :func:`from_hf_bert`: a ``BertModel`` / ``BertForPreTraining`` as a :class:`~d2l_attn.models.BERT`
  (:func:`bert_state_dict_to_ours`; ``nn.Linear`` on both sides, no transposes);
* :func:`from_hf_vit`: a ``ViTModel`` as a :class:`~d2l_attn.models.ViT`; :func:`load_hf_vit`
  copies into a ViT you built (same sizes).

``**overrides`` may set what the checkpoint does not fix (dropout, special ids, a shorter
``max_len``, the ViT's ``num_classes``); a size that the checkpoint fixes raises.
:func:`load_torch_mha` copies a :class:`torch.nn.MultiheadAttention`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .models.bert import BERT, BERTConfig
from .models.gpt import GPT, GPTConfig
from .models.vit import ViT, ViTConfig
from .multihead import MultiHeadAttention

__all__ = [
    "from_hf_gpt2",
    "gpt2_state_dict_to_ours",
    "from_hf_bert",
    "bert_state_dict_to_ours",
    "from_hf_vit",
    "load_hf_vit",
    "load_torch_mha",
]


def _no_clash(overrides: Mapping[str, Any], sizes: Mapping[str, Any], allowed: set[str] = frozenset()) -> None:
    clash = set(overrides) & set(sizes) - set(allowed)
    if clash:
        raise ValueError(f"these sizes come from the checkpoint and cannot be overridden: {sorted(clash)}")


# -- GPT-2 ----------------------------------------------------------------------------------------
def from_hf_gpt2(hf_model: nn.Module, **overrides: Any) -> GPT:
    """A :class:`~d2l_attn.models.GPT` with the weights of a ``transformers.GPT2LMHeadModel`` (or ``GPT2Model``).

    ``overrides`` may set ``dropout``, the special ids, or a shorter ``max_len`` (the first
    ``max_len`` learned positions are kept); the sizes come from the checkpoint."""
    hf = getattr(hf_model, "config", None)
    if not all(hasattr(hf, name) for name in ("n_positions", "n_layer", "n_head", "n_embd")):
        raise ValueError(
            f"hf_model must be a Hugging Face GPT-2 model (GPT2LMHeadModel), got {type(hf_model).__name__}"
        )
    if getattr(hf, "activation_function", "gelu_new") not in ("gelu_new", "gelu_pytorch_tanh"):
        raise ValueError(f"only GPT-2's tanh GELU is supported, got {hf.activation_function!r}")
    sizes = dict(
        vocab_size=hf.vocab_size,
        max_len=hf.n_positions,
        num_layers=hf.n_layer,
        num_heads=hf.n_head,
        d_model=hf.n_embd,
        d_ff=hf.n_inner or 4 * hf.n_embd,
        eps=hf.layer_norm_epsilon,
        tie_weights=True,
        norm_first=True,
        num_kv_heads=hf.n_head,
        positional="learned",
    )
    _no_clash(overrides, sizes, {"max_len"})
    if overrides.get("max_len", 0) > hf.n_positions:
        raise ValueError(f"max_len={overrides['max_len']} is longer than the checkpoint's {hf.n_positions} positions")
    config = GPTConfig(**{**sizes, **overrides})
    model = GPT(config)
    ours = gpt2_state_dict_to_ours(hf_model.state_dict(), config.num_layers)
    ours["position_embedding.weight"] = ours["position_embedding.weight"][: config.max_len]  # a shorter context
    model.load_state_dict(ours)
    return model


def gpt2_state_dict_to_ours(sd: Mapping[str, torch.Tensor], num_layers: int) -> dict[str, torch.Tensor]:
    """Rename (and transpose) a Hugging Face GPT-2 state dict into :class:`~d2l_attn.models.GPT`'s parameter names.

    GPT-2's ``c_attn`` is one ``Conv1D`` of weight ``(d, 3d)``: ``x @ W + b`` with the query, key
    and value columns side by side; :class:`torch.nn.Linear` stores ``(out, in)``, so every
    ``Conv1D`` weight is transposed.
    """
    prefix = "transformer." if "transformer.wte.weight" in sd else ""
    if f"{prefix}wte.weight" not in sd:
        raise ValueError("sd must be a GPT2LMHeadModel or GPT2Model state dict (no 'wte.weight' found)")
    held = sum(1 for name in sd if name.startswith(f"{prefix}h.") and name.endswith(".attn.c_attn.weight"))
    if num_layers > held:
        raise ValueError(f"num_layers={num_layers}, but the state dict holds {held} layers")
    g = lambda name: sd[prefix + name]
    out = {
        "token_embedding.weight": g("wte.weight"),
        "position_embedding.weight": g("wpe.weight"),
        "final_norm.weight": g("ln_f.weight"),
        "final_norm.bias": g("ln_f.bias"),
        "lm_head.weight": g("wte.weight"),
    }
    for i in range(num_layers):
        h, b = f"h.{i}.", f"blocks.{i}."
        w_qkv, b_qkv = g(h + "attn.c_attn.weight").t().chunk(3, dim=0), g(h + "attn.c_attn.bias").chunk(3)
        for name, w, bias in zip(("W_q", "W_k", "W_v"), w_qkv, b_qkv):  # (d, d), (d,)
            out[f"{b}attention.{name}.weight"], out[f"{b}attention.{name}.bias"] = w, bias
        pairs = {"attention.W_o": "attn.c_proj", "ffn.dense1": "mlp.c_fc", "ffn.dense2": "mlp.c_proj"}
        for ours, theirs in pairs.items():
            out[f"{b}{ours}.weight"] = g(h + theirs + ".weight").t()
            out[f"{b}{ours}.bias"] = g(h + theirs + ".bias")
        for ours, theirs in (("addnorm1.norm", "ln_1"), ("addnorm2.norm", "ln_2")):
            out[f"{b}{ours}.weight"], out[f"{b}{ours}.bias"] = g(h + theirs + ".weight"), g(h + theirs + ".bias")
    return {k: v.detach().clone().contiguous() for k, v in out.items()}


# -- BERT -----------------------------------------------------------------------------------------
_BERT_HEADS = {f"{m}.{k}" for m in ("mlm.dense", "mlm.norm", "mlm.decoder", "nsp.pooler", "nsp.classifier")
               for k in ("weight", "bias")}  # fmt: skip


def from_hf_bert(hf_model: nn.Module, **overrides: Any) -> BERT:
    """A :class:`~d2l_attn.models.BERT` with the weights of a ``transformers.BertModel`` / ``BertForPreTraining``.

    ``overrides`` may set ``dropout`` (default 0: eval-equal to the checkpoint). Heads missing from
    ``hf_model`` (a bare ``BertModel`` has no MLM/NSP classifier) keep their fresh initialization;
    the pooler is copied when present.
    """
    hf = getattr(hf_model, "config", None)
    needed = ("hidden_act", "max_position_embeddings", "num_hidden_layers", "num_attention_heads", "hidden_size")
    if not all(hasattr(hf, name) for name in needed):
        raise ValueError(f"hf_model must be a Hugging Face BERT model (BertModel), got {type(hf_model).__name__}")
    if hf.hidden_act != "gelu" or getattr(hf, "position_embedding_type", "absolute") != "absolute":
        raise ValueError("only BERT with hidden_act='gelu' and absolute positions is supported")
    sizes = dict(
        vocab_size=hf.vocab_size,
        max_len=hf.max_position_embeddings,
        num_layers=hf.num_hidden_layers,
        num_heads=hf.num_attention_heads,
        d_model=hf.hidden_size,
        d_ff=hf.intermediate_size,
        num_segments=hf.type_vocab_size,
        eps=hf.layer_norm_eps,
    )
    _no_clash(overrides, sizes)
    config = BERTConfig(**{**sizes, "dropout": 0.0, **overrides})
    model = BERT(config)
    missing, unexpected = model.load_state_dict(
        bert_state_dict_to_ours(hf_model.state_dict(), config.num_layers), strict=False
    )
    if unexpected or set(missing) - _BERT_HEADS:
        raise ValueError(f"state dict mismatch: missing {sorted(set(missing) - _BERT_HEADS)}, unexpected {unexpected}")
    return model


def bert_state_dict_to_ours(sd: Mapping[str, torch.Tensor], num_layers: int) -> dict[str, torch.Tensor]:
    """Rename a Hugging Face BERT state dict (``BertModel``, or ``BertForPreTraining`` with ``bert.``
    and ``cls.`` prefixes) into :class:`~d2l_attn.models.BERT`'s names. ``nn.Linear`` layers on both
    sides: no transposes."""
    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in sd else ""
    if f"{prefix}embeddings.word_embeddings.weight" not in sd:
        raise ValueError(
            "sd must be a BertModel or BertForPreTraining state dict (no 'embeddings.word_embeddings.weight' found)"
        )
    names = {
        "token_embedding": "embeddings.word_embeddings",
        "position_embedding": "embeddings.position_embeddings",
        "segment_embedding": "embeddings.token_type_embeddings",
        "embedding_norm": "embeddings.LayerNorm",
        "nsp.pooler": "pooler.dense",
    }
    layer = {
        "attention.W_q": "attention.self.query",
        "attention.W_k": "attention.self.key",
        "attention.W_v": "attention.self.value",
        "attention.W_o": "attention.output.dense",
        "addnorm1.norm": "attention.output.LayerNorm",
        "ffn.dense1": "intermediate.dense",
        "ffn.dense2": "output.dense",
        "addnorm2.norm": "output.LayerNorm",
    }
    for i in range(num_layers):
        names.update({f"blocks.{i}.{ours}": f"encoder.layer.{i}.{theirs}" for ours, theirs in layer.items()})
    heads = {
        "mlm.dense": "cls.predictions.transform.dense",
        "mlm.norm": "cls.predictions.transform.LayerNorm",
        "nsp.classifier": "cls.seq_relationship",
    }
    out = {}
    for ours, theirs in [*((o, prefix + t) for o, t in names.items()), *heads.items()]:
        for kind in ("weight", "bias"):
            if f"{theirs}.{kind}" in sd:
                out[f"{ours}.{kind}"] = sd[f"{theirs}.{kind}"]
    if "cls.predictions.bias" in sd:
        out["mlm.decoder.bias"] = sd["cls.predictions.bias"]
    out["mlm.decoder.weight"] = out["token_embedding.weight"]
    return {k: v.detach().clone().contiguous() for k, v in out.items()}


# -- ViT ------------------------------------------------------------------------------------------
_VIT_SIZES = {  # Hugging Face ViTConfig field -> ours
    "hidden_size": "d_model",
    "num_attention_heads": "num_heads",
    "intermediate_size": "d_ff",
    "num_hidden_layers": "num_layers",
    "patch_size": "patch_size",
    "image_size": "image_size",
    "num_channels": "in_channels",
    "layer_norm_eps": "eps",
}


def from_hf_vit(hf_model: nn.Module, **overrides: Any) -> ViT:
    """A :class:`~d2l_attn.models.ViT` with the sizes and weights of a Hugging Face ``ViTModel`` (for a
    ``ViTForImageClassification``, pass its ``.vit``); our ``features`` then equal its ``last_hidden_state``.

    ``overrides`` may set ``num_classes`` and ``dropout`` (default 0); the head is not part of
    ``ViTModel`` and keeps its fresh initialization."""
    hf = getattr(hf_model, "config", None)
    if not all(hasattr(hf, name) for name in _VIT_SIZES):
        raise ValueError(f"hf_model must be a Hugging Face ViTModel, got {type(hf_model).__name__}")
    sizes = {ours: getattr(hf, theirs) for theirs, ours in _VIT_SIZES.items()}
    _no_clash(overrides, {**sizes, "pool": "cls"})
    return load_hf_vit(ViT(ViTConfig(**{**sizes, "dropout": 0.0, **overrides})), hf_model)


@torch.no_grad()
def load_hf_vit(model: ViT, hf_model: nn.Module) -> ViT:
    """Copy the weights of a Hugging Face ``ViTModel`` of the same sizes (LayerNorm epsilon included)
    into ``model``; returns ``model``."""
    c = model.config
    hf = getattr(hf_model, "config", None)
    for theirs, ours in _VIT_SIZES.items():
        if getattr(hf, theirs, None) != getattr(c, ours):
            raise ValueError(
                f"hf_model.config.{theirs} is {getattr(hf, theirs, None)!r}, this ViT has {ours}={getattr(c, ours)}"
            )
    if getattr(hf, "hidden_act", None) != "gelu" or not getattr(hf, "qkv_bias", True) or c.pool != "cls":
        raise ValueError("only ViTs with hidden_act='gelu', qkv_bias=True and a [CLS] token can be loaded")
    if not hasattr(hf_model, "embeddings"):
        raise ValueError(
            f"hf_model must be a Hugging Face ViTModel, got {type(hf_model).__name__}: "
            "for a ViTForImageClassification pass its .vit submodule"
        )
    emb = hf_model.embeddings
    model.embed.patches.load_conv_weights(emb.patch_embeddings.projection)
    model.embed.cls_token.copy_(emb.cls_token)
    model.embed.pos_encoding.embedding.weight.copy_(emb.position_embeddings[0])
    state = hf_model.state_dict()

    def find(i: int, *names: str) -> str:
        # transformers 5 names the layers "layers.i.attention.q_proj"; 4.x "encoder.layer.i.attention.attention.query"
        for name in names:
            for prefix in (f"layers.{i}.", f"encoder.layer.{i}."):
                if prefix + name + ".weight" in state:
                    return prefix + name
        raise ValueError(f"hf_model has no parameter {names[0]!r} for layer {i}: not a Hugging Face ViTModel?")

    pairs = [(model.norm, "layernorm")]
    for i, block in enumerate(model.blocks):
        a = block.attention
        pairs += [
            (a.W_q, find(i, "attention.q_proj", "attention.attention.query")),
            (a.W_k, find(i, "attention.k_proj", "attention.attention.key")),
            (a.W_v, find(i, "attention.v_proj", "attention.attention.value")),
            (a.W_o, find(i, "attention.o_proj", "attention.output.dense")),
            (block.ffn.dense1, find(i, "mlp.fc1", "intermediate.dense")),
            (block.ffn.dense2, find(i, "mlp.fc2", "output.dense")),
            (block.addnorm1.norm, find(i, "layernorm_before")),
            (block.addnorm2.norm, find(i, "layernorm_after")),
        ]
    for ours, name in pairs:
        ours.weight.copy_(state[name + ".weight"])
        ours.bias.copy_(state[name + ".bias"])
    return model


# -- torch ----------------------------------------------------------------------------------------
def load_torch_mha(ours: MultiHeadAttention, module: nn.MultiheadAttention) -> MultiHeadAttention:
    """Copy a :class:`torch.nn.MultiheadAttention`'s weights (same sizes) into ``ours``; returns ``ours``."""
    if not isinstance(ours, MultiHeadAttention):
        raise ValueError(f"ours must be a d2l_attn MultiHeadAttention, got {type(ours).__name__}")
    return ours.load_torch_weights(module)
