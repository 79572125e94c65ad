"""llm_mode=random: the backbone's architecture, size and tokenizer with weights from the class's own init
(Tan et al., NeurIPS 2024), built without reading a pretrained weight, frozen, on the runner's exact path."""

from __future__ import annotations

import functools

import pytest
import torch

from timellm_core.backbones import load_backbone
from timellm_core.backbones.random_init import RANDOM_INIT_SEED, load_random_backbone, randomly_initialised
from timellm_core.config import BackboneConfig, TimeLLMConfig
from timellm_core.model import TimeLLM

SEQ_LEN, PRED_LEN = 32, 8


@functools.lru_cache(maxsize=None)
def pretrained(name: str):
    return load_backbone(BackboneConfig(name=name, llm_layers=2), device="cpu")


def small_config(**overrides) -> TimeLLMConfig:
    values = dict(seq_len=SEQ_LEN, pred_len=PRED_LEN, patch_len=8, stride=4, d_model=8, d_ff=16, n_heads=2,
                  num_prototypes=20, llm_mode="random")
    values.update(overrides)
    return TimeLLMConfig(**values)


def windows(seed: int = 0) -> torch.Tensor:
    return torch.randn(2, SEQ_LEN, 3, generator=torch.Generator().manual_seed(seed)).cumsum(dim=1)


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-gpt2", "tiny-qwen2", "tiny-bert"])
def test_random_weights_differ_from_the_loaded_ones_with_the_same_shapes(name):
    loaded = pretrained(name)
    random = load_random_backbone(BackboneConfig(name=name, llm_layers=2), device="cpu")
    weights, random_weights = loaded.model.state_dict(), random.model.state_dict()
    assert {key: tuple(value.shape) for key, value in weights.items()} == \
        {key: tuple(value.shape) for key, value in random_weights.items()}
    assert type(random.model) is type(loaded.model)
    assert (random.hidden_size, random.num_layers, random.vocab_size, random.causal) == (
        loaded.hidden_size, loaded.num_layers, loaded.vocab_size, loaded.causal)
    matrices = [key for key, value in weights.items() if value.dim() >= 2]  # embeddings and projections
    assert matrices and all(not torch.equal(weights[key], random_weights[key]) for key in matrices)
    assert random.tokenizer("min value 0.5").input_ids == loaded.tokenizer("min value 0.5").input_ids
    assert random.random_init_seed == RANDOM_INIT_SEED and loaded.random_init_seed is None
    assert not any(p.requires_grad for p in random.model.parameters()) and not random.model.training
    assert any("Randomly initialised" in note for note in random.notes)


def test_the_same_seed_gives_identical_weights_by_either_route_and_another_seed_does_not():
    config = BackboneConfig(name="tiny-llama", llm_layers=2)
    first = load_random_backbone(config, device="cpu").model.state_dict()
    again = load_random_backbone(config, device="cpu").model.state_dict()
    twin = randomly_initialised(pretrained("tiny-llama")).model.state_dict()  # from the backbone in memory
    other = load_random_backbone(config, device="cpu", seed=RANDOM_INIT_SEED + 1).model.state_dict()
    assert all(torch.equal(first[key], again[key]) and torch.equal(first[key], twin[key]) for key in first)
    assert not torch.equal(first["embed_tokens.weight"], other["embed_tokens.weight"])


def test_the_build_leaves_the_callers_random_stream_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    load_random_backbone(BackboneConfig(name="tiny-gpt2", llm_layers=1), device="cpu")
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-qwen2"])
def test_a_random_mode_model_trains_through_the_runners_exact_path(name):
    torch.manual_seed(0)
    model = TimeLLM(small_config(), pretrained(name), description="A test series.")
    assert model.backbone.random_init_seed == RANDOM_INIT_SEED  # the pretrained backbone was swapped for its twin
    assert not torch.equal(model.backbone.word_embeddings(), pretrained(name).word_embeddings())
    forecast, trace = model(windows(), trace=True)
    assert forecast.shape == (2, PRED_LEN, 3) and torch.isfinite(forecast).all()
    assert trace.llm_path == "cached" and trace.prompts  # the prompt runs, into the memoised prefix cache
    forecast.square().mean().backward()
    gradients = [p.grad for p in model.trainable_parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in gradients)
    assert model.reprogramming.query_projection.weight.grad.abs().sum() > 0  # reached through the random LLM
    assert all(p.grad is None for p in model.backbone.model.parameters())

    # The exact path computes what the reference's full path computes, on random weights as on pretrained ones.
    model.eval()
    reference = TimeLLM(small_config(optimize=False), model.backbone, description="A test series.").eval()
    reference.load_trainable_state_dict(model.trainable_state_dict())
    with torch.no_grad():
        assert torch.allclose(model(windows(1)), reference(windows(1)), rtol=1e-4, atol=1e-5)


def test_random_and_frozen_train_the_same_parameters():
    frozen = TimeLLM(small_config(llm_mode="frozen"), pretrained("tiny-gpt2"))
    random = TimeLLM(small_config(), pretrained("tiny-gpt2"))
    assert {k: v.shape for k, v in frozen.state_dict().items()} == {k: v.shape for k, v in random.state_dict().items()}


def test_random_weights_load_in_4bit_too():
    random = load_random_backbone(BackboneConfig(name="tiny-qwen2", llm_layers=2, load_in_4bit=True), device="cpu")
    assert random.load_in_4bit and random.quantized_linear_layers > 0
    model = TimeLLM(small_config(), random, description="A test series.")
    with torch.no_grad():
        assert torch.isfinite(model(windows())).all()


def test_the_pipeline_names_the_random_llm():
    from timellm_core.config import RunConfig
    from timellm_core.inspection import pipeline_stages

    config = RunConfig(model=small_config())
    stages = {stage.key: stage for stage in pipeline_stages(config, channels=3, hidden_size=64)}
    assert "prompt" in stages and stages["llm"].title.startswith("Random LLM")
