"""Tiny backbones: each family loads, truncates, freezes and runs a masked forward from embeddings."""

import pytest
import torch

from timellm_core.backbones import Backbone, load_backbone, resolve_backbone_spec, tiny_tokenizer
from timellm_core.backbones.families import transformer_layers
from timellm_core.config import BackboneConfig
from timellm_core.errors import BackboneError

TINY = {"tiny-gpt2": ("gpt2", "GPT2Model", True), "tiny-llama": ("llama", "LlamaModel", True),
        "tiny-qwen2": ("qwen2", "Qwen2Model", True), "tiny-bert": ("bert", "BertModel", False)}
PROMPT = "<|start_prompt|>Dataset description: ETTh1. Task description: forecast the next 96 steps; min value -1.25"


@pytest.mark.parametrize("name", sorted(TINY))
def test_tiny_loads_truncated_frozen_and_runs_masked(name):
    family, class_name, causal = TINY[name]
    backbone = load_backbone(BackboneConfig(name=name, llm_layers=2), device="cpu")
    assert isinstance(backbone, Backbone)
    assert (backbone.family, type(backbone.model).__name__, backbone.causal) == (family, class_name, causal)
    assert backbone.num_layers == 2 and len(transformer_layers(backbone.model)) == 2
    assert backbone.model.config.num_hidden_layers == 2
    assert not backbone.model.training
    assert not any(p.requires_grad for p in backbone.model.parameters())
    assert backbone.word_embeddings().shape == (backbone.vocab_size, backbone.hidden_size)
    assert not hasattr(backbone.model, "lm_head")

    batch = backbone.tokenizer([PROMPT, "min value"], padding=True, return_tensors="pt")
    embeddings = backbone.embed(batch["input_ids"])  # (2, L, D)
    patches = torch.randn(2, 5, backbone.hidden_size, requires_grad=True)  # stands in for reprogrammed patches
    inputs = torch.cat([embeddings, patches], dim=1)  # (2, L + 5, D)
    mask = torch.cat([batch["attention_mask"], torch.ones(2, 5, dtype=torch.long)], dim=1)
    hidden = backbone.model(inputs_embeds=inputs, attention_mask=mask).last_hidden_state
    assert hidden.shape == (2, inputs.shape[1], backbone.hidden_size)
    (hidden[:, -5:] * torch.randn_like(hidden[:, -5:])).sum().backward()
    assert patches.grad is not None and patches.grad.abs().sum() > 0  # gradients reach the inputs
    assert all(p.grad is None for p in backbone.model.parameters())


def test_tiny_is_deterministic_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = load_backbone(BackboneConfig(name="tiny-qwen2", llm_layers=4), device="cpu")
    assert torch.equal(torch.rand(3), expected_next)
    second = load_backbone(BackboneConfig(name="tiny-qwen2", llm_layers=2), device="cpu")
    # Truncation keeps the first layers of the same seeded model.
    for key, value in second.model.state_dict().items():
        assert torch.equal(value, first.model.state_dict()[key]), key


def test_tiny_qwen2_has_grouped_key_value_heads():
    backbone = load_backbone(BackboneConfig(name="tiny-qwen2", llm_layers=1), device="cpu")
    config = backbone.model.config
    assert config.num_key_value_heads < config.num_attention_heads
    attention = transformer_layers(backbone.model)[0].self_attn
    head_dim = config.hidden_size // config.num_attention_heads
    assert attention.k_proj.out_features == config.num_key_value_heads * head_dim
    assert attention.q_proj.bias is not None  # Qwen2's q/k/v biases


@pytest.mark.parametrize("name", sorted(TINY))
def test_tiny_tokenizer_round_trips_prompt_text(name):
    tokenizer = tiny_tokenizer(name)
    assert tokenizer.pad_token is not None
    text = "min value -1.2345678806304932, top 5 lags are : [0, 24, 168]"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert 5 < len(ids) < len(text)  # merges were learnt: fewer tokens than characters
    assert tokenizer.decode(ids) == text
    assert len(tokenizer) == resolve_backbone_spec(name).vocab_size


def test_eager_attention_returns_attention_maps():
    backbone = load_backbone(BackboneConfig(name="tiny-llama", llm_layers=2), device="cpu",
                             attn_implementation="eager")
    inputs = torch.randn(1, 7, backbone.hidden_size)
    output = backbone.model(inputs_embeds=inputs, output_attentions=True)
    assert len(output.attentions) == 2 and output.attentions[0].shape == (1, 4, 7, 7)
    with pytest.raises(BackboneError, match="attn_implementation"):
        load_backbone(BackboneConfig(name="tiny-llama"), attn_implementation="flash")


def test_too_many_layers_names_the_count():
    with pytest.raises(BackboneError, match="tiny-gpt2 has 4 layers; llm_layers=5"):
        load_backbone(BackboneConfig(name="tiny-gpt2", llm_layers=5), device="cpu")


def test_llm_dim_mismatch_names_the_right_value():
    with pytest.raises(BackboneError, match="Use llm_dim=128"):
        load_backbone(BackboneConfig(name="tiny-llama", llm_layers=2, llm_dim=4096), device="cpu")
    assert load_backbone(BackboneConfig(name="tiny-llama", llm_layers=2, llm_dim=128), device="cpu").hidden_size == 128


@pytest.mark.parametrize("name", ["tiny-gpt2", "tiny-llama", "tiny-qwen2", "tiny-bert"])
def test_truncation_keeps_one_config_for_the_model_and_its_layers(name):
    """An attention switch on the model's config must reach every kept layer."""
    from timellm_core.backbones import load_backbone
    from timellm_core.config import BackboneConfig

    model = load_backbone(BackboneConfig(name=name, llm_layers=2), device="cpu").model
    configs = {id(module.config) for module in model.modules() if getattr(module, "config", None) is not None}
    assert configs == {id(model.config)}
    assert model.config.num_hidden_layers == 2
