"""One config style for every model: a frozen dataclass, or its fields as keywords, merged by one rule."""

from __future__ import annotations

import dataclasses

import pytest

from d2l_attn.models import BERT, GPT, BERTConfig, GPTConfig, TransformerConfig, TransformerEncoder, ViT, ViTConfig

# config class, how to build its model from (config, **sizes), one field with a non-default value
CASES = {
    "GPT": (GPTConfig, lambda config=None, **s: GPT(config, **s), ("num_layers", 1)),
    "BERT": (BERTConfig, lambda config=None, **s: BERT(config, **s), ("num_layers", 1)),
    "ViT": (ViTConfig, lambda config=None, **s: ViT(config, **s), ("eps", 1e-6)),
    "Transformer": (
        TransformerConfig,
        lambda config=None, **s: TransformerEncoder(11, config, **s),
        ("num_layers", 1),
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_config_is_frozen(name):
    cls, _, (field, _) = CASES[name]
    config = cls()
    assert dataclasses.is_dataclass(config)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(config, field, getattr(config, field))


@pytest.mark.parametrize("name", CASES)
def test_keyword_sizes_are_applied_and_equal_the_config(name):
    cls, build, (field, value) = CASES[name]
    assert getattr(cls(), field) != value  # the override is a real change
    model = build(**{field: value})
    assert getattr(model.config, field) == value
    assert model.config == cls(**{field: value})
    given = cls(**{field: value})
    assert build(given).config is given  # a config object is used as it is


@pytest.mark.parametrize("name", CASES)
def test_unknown_keyword_raises_naming_it(name):
    cls, build, _ = CASES[name]
    with pytest.raises(ValueError, match=rf"unknown {cls.__name__} fields: \['no_such_size'\]"):
        build(no_such_size=3)


@pytest.mark.parametrize("name", CASES)
def test_config_and_sizes_together_raise(name):
    cls, build, (field, value) = CASES[name]
    with pytest.raises(ValueError, match="either config or keyword sizes, not both"):
        build(cls(), **{field: value})


@pytest.mark.parametrize("name", CASES)
def test_a_config_of_another_model_is_refused(name):
    cls, build, _ = CASES[name]
    other = next(c for c, _, _ in CASES.values() if c is not cls)()
    with pytest.raises(ValueError, match=f"config must be a {cls.__name__}"):
        build(other)


def test_vit_passes_its_epsilon_to_every_layer_norm():
    import torch

    model = ViT(eps=1e-6)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert len(norms) == 2 * model.config.num_layers + 1
    assert {m.eps for m in norms} == {1e-6}
