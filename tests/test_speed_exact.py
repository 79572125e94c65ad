"""The exact optimisations change nothing but rounding: the cached path equals the reference-style path."""

from __future__ import annotations

import copy
import dataclasses
import functools

import pytest
import torch

from timellm_core.backbones import load_backbone
from timellm_core.config import BackboneConfig, TimeLLMConfig
from timellm_core.model import TimeLLM

SEQ_LEN, PRED_LEN = 32, 8
TOLERANCE = 1e-4
ZERO_GRADIENT = "reprogramming.key_projection.bias"


@functools.lru_cache(maxsize=None)
def tiny(name: str, layers: int = 2):
    """A tiny backbone with sharpened attention.

    Freshly initialised attention is almost uniform (logits near 0), which would hide a wrong key,
    position or mask; scaling the query/key projections makes every key matter.
    """
    backbone = load_backbone(BackboneConfig(name=name, llm_layers=layers), device="cpu")
    model = copy.deepcopy(backbone.model)
    with torch.no_grad():
        for parameter_name, parameter in model.named_parameters():
            if any(part in parameter_name for part in ("q_proj", "k_proj", "c_attn", "query", "key")):
                parameter.mul_(6.0)
    return dataclasses.replace(backbone, model=model)


def config(**overrides) -> TimeLLMConfig:
    values = dict(seq_len=SEQ_LEN, pred_len=PRED_LEN, patch_len=8, stride=4, d_model=8, d_ff=16, n_heads=2,
                  num_prototypes=20, dropout=0.0, attention_dropout=0.0)
    values.update(overrides)
    return TimeLLMConfig(**values)


def windows(seed: int = 0, batch: int = 3, channels: int = 2) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, SEQ_LEN, channels, generator=generator).cumsum(dim=1)


def relative_difference(candidate: torch.Tensor, reference: torch.Tensor, floor: float) -> float:
    return ((candidate - reference).abs().max() / max(reference.abs().max().item(), floor)).item()


def forecast_and_gradients(model: TimeLLM, x: torch.Tensor, target: torch.Tensor):
    model.zero_grad(set_to_none=True)
    forecast = model(x)
    torch.nn.functional.mse_loss(forecast, target).backward()
    return forecast.detach(), {name: p.grad.detach().clone() for name, p in model.named_parameters()}


def paired_models(backbone_name: str, **overrides) -> tuple[TimeLLM, TimeLLM]:
    torch.manual_seed(0)
    optimized = TimeLLM(config(**overrides), tiny(backbone_name), description="Paired test series.")
    reference = TimeLLM(config(optimize=False, **overrides), tiny(backbone_name), description="Paired test series.")
    reference.load_trainable_state_dict(optimized.trainable_state_dict())
    return optimized, reference


def assert_same(optimized: TimeLLM, reference: TimeLLM, x: torch.Tensor, seed: int | None = None) -> None:
    target = torch.randn(x.shape[0], PRED_LEN, x.shape[2], generator=torch.Generator().manual_seed(5))
    if seed is not None:
        torch.manual_seed(seed)
    forecast, gradients = forecast_and_gradients(optimized, x, target)
    if seed is not None:
        torch.manual_seed(seed)
    reference_forecast, reference_gradients = forecast_and_gradients(reference, x, target)
    assert relative_difference(forecast, reference_forecast, 1e-12) <= TOLERANCE
    largest = max(g.abs().max().item() for g in reference_gradients.values())
    for name, gradient in gradients.items():
        if name == ZERO_GRADIENT:
            # Zero in exact arithmetic (softmax ignores a shift shared by all prototypes): both are noise.
            assert gradient.abs().max() <= 1e-6 * largest
            assert reference_gradients[name].abs().max() <= 1e-6 * largest
            continue
        assert relative_difference(gradient, reference_gradients[name], 1e-30) <= TOLERANCE, name


@pytest.mark.parametrize("backbone_name", ["tiny-gpt2", "tiny-llama", "tiny-qwen2"])
def test_exact_path_forecast_and_gradients_equal_the_unoptimised_path(backbone_name):
    optimized, reference = paired_models(backbone_name)
    optimized.eval(), reference.eval()
    x = windows()
    assert_same(optimized, reference, x)
    with torch.no_grad():
        _, trace = optimized(x, trace=True)
        _, reference_trace = reference(x, trace=True)
    assert trace.llm_path == "cached" and reference_trace.llm_path == "reference"
    assert trace.prompt_token_ids == reference_trace.prompt_token_ids


@pytest.mark.parametrize("backbone_name", ["tiny-llama", "tiny-gpt2"])
def test_exact_path_equals_in_training_mode_with_dropout(backbone_name):
    # Dropout draws in the same order in both paths (the frozen LLM draws none), so with one seed
    # the training forward and backward are the same computation.
    optimized, reference = paired_models(backbone_name, dropout=0.1, attention_dropout=0.1)
    optimized.train(), reference.train()
    assert_same(optimized, reference, windows(seed=3), seed=11)


def test_exact_path_is_exact_with_one_layer_and_with_deeper_backbones():
    for layers in (1, 4):
        torch.manual_seed(0)
        backbone = tiny("tiny-llama", layers)
        optimized = TimeLLM(config(), backbone, description="d").eval()
        reference = TimeLLM(config(optimize=False), backbone, description="d").eval()
        reference.load_trainable_state_dict(optimized.trainable_state_dict())
        assert_same(optimized, reference, windows(seed=layers))


def test_bert_falls_back_to_the_full_sequence_and_still_equals_the_unoptimised_path():
    optimized, reference = paired_models("tiny-bert")
    assert not optimized.llm_runner.supports_cache
    optimized.eval(), reference.eval()
    x = windows()
    assert_same(optimized, reference, x)
    with torch.no_grad():
        _, trace = optimized(x, trace=True)
    assert trace.llm_path == "full"
    assert optimized.llm_runner.prefix_computations == 0


def test_prefix_cache_is_computed_once_and_never_mutated():
    model = TimeLLM(config(), tiny("tiny-qwen2"), description="Cache test series.").eval()
    first, second = windows(seed=1), windows(seed=2, batch=5, channels=3)
    with torch.no_grad():
        out_first = model(first)
        memo = [(k.clone(), v.clone()) for k, v in model.llm_runner._prefix_cache]
        out_second = model(second)
        out_first_again = model(first)
    assert torch.equal(out_first, out_first_again)
    assert model.llm_runner.prefix_computations == 1
    for (keys, values), (memo_keys, memo_values) in zip(model.llm_runner._prefix_cache, memo):
        assert torch.equal(keys, memo_keys) and torch.equal(values, memo_values)
        assert keys.shape[0] == 1  # stored once, expanded per batch
    # Training steps reuse the same memo and leave it as it was.
    model.train()
    optimizer = torch.optim.SGD(model.trainable_parameters(), lr=0.1)
    model(second).square().mean().backward()
    optimizer.step()
    assert model.llm_runner.prefix_computations == 1
    for (keys, _), (memo_keys, _) in zip(model.llm_runner._prefix_cache, memo):
        assert torch.equal(keys, memo_keys)


def test_prefix_cache_is_recomputed_when_the_prefix_changes():
    backbone = tiny("tiny-gpt2")
    model = TimeLLM(config(), backbone, description="First description.").eval()
    x = windows()
    with torch.no_grad():
        model(x)
        model.prompt_builder.description = "Another, longer description of the data."
        changed = model(x)
    assert model.llm_runner.prefix_computations == 2
    reference = TimeLLM(config(optimize=False), backbone, description="Another, longer description of the data.")
    reference.load_trainable_state_dict(model.trainable_state_dict())
    with torch.no_grad():
        assert torch.allclose(changed, reference.eval()(x), rtol=TOLERANCE, atol=1e-6)


def test_prototypes_once_per_state_in_eval_and_every_forward_unoptimised():
    optimized, reference = paired_models("tiny-llama")
    optimized.eval(), reference.eval()
    x = windows()
    with torch.no_grad():
        for _ in range(3):
            optimized(x)
            reference(x)
    assert optimized.text_prototypes.computations == 1
    assert reference.text_prototypes.computations == 3
    optimized.load_trainable_state_dict(reference.trainable_state_dict())
    with torch.no_grad():
        optimized(x)
    assert optimized.text_prototypes.computations == 2


def test_fast_mode_runs_close_to_the_exact_path():
    torch.manual_seed(0)
    exact = TimeLLM(config(), tiny("tiny-llama"), description="d").eval()
    fast = TimeLLM(config(fast=True), tiny("tiny-llama"), description="d").eval()
    fast.load_trainable_state_dict(exact.trainable_state_dict())
    x = windows()
    with torch.no_grad():
        exact_forecast = exact(x)
        fast_forecast, trace = fast(x, trace=True)
    assert fast_forecast.dtype == torch.float32
    assert trace.prompts[0].endswith("<|end_prompt|>")  # compact prompt
    difference = (fast_forecast - exact_forecast).abs().max() / exact_forecast.abs().max()
    assert difference < 0.1  # bf16 and a shorter prompt: close, not equal
    fast.train()
    fast(x).square().mean().backward()
    assert fast.reprogramming.query_projection.weight.grad.abs().sum() > 0


def test_fast_mode_runs_the_llm_on_bf16_copies_made_once_and_leaves_the_backbone_alone(monkeypatch):
    monkeypatch.setenv("TIMELLM_FAST_PRECISION", "bf16")  # what the probe picks on a CPU with fast bf16
    backbone = tiny("tiny-llama")
    fast = TimeLLM(config(fast=True), backbone, description="d").train()
    weights_before = {name: p.detach().clone() for name, p in backbone.model.named_parameters()}
    x = windows()
    for _ in range(2):
        fast(x).square().mean().backward()
    runner = fast.llm_runner
    assert runner._lowered is not None and all(t.dtype == torch.bfloat16 for t in runner._lowered.values())
    first_copy = runner._lowered
    fast(x).square().mean().backward()
    assert runner._lowered is first_copy  # memoised, not rebuilt per step
    assert all(p.dtype == torch.float32 and torch.equal(p, weights_before[name])
               for name, p in backbone.model.named_parameters())  # the shared backbone is untouched
    assert runner.word_embeddings().dtype == torch.bfloat16  # the fast runner's own copy
    exact_runner = TimeLLM(config(), backbone, description="d").llm_runner
    assert exact_runner.word_embeddings().dtype == torch.float32  # the exact path: the backbone's own table


def test_exact_training_forward_keeps_neither_the_mlp_intermediates_nor_the_prototype_map():
    """The two memory savings of the exact path, seen in what autograd keeps for backward."""
    backbone = tiny("tiny-llama")
    intermediate = backbone.model.config.intermediate_size
    model = TimeLLM(config(attention_dropout=0.1, num_prototypes=37), backbone, description="d").train()
    shapes = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: shapes.append((tuple(t.shape), t.dtype)) or t,
                                                  lambda t: t):
        forecast = model(windows())
    assert not [s for s, _ in shapes if s and s[-1] == intermediate]  # gate(x), up(x): recomputed in backward
    maps = [dtype for s, dtype in shapes if len(s) == 3 and s[-1] == 37]  # (H, B*N*P, S)
    assert maps == [torch.bool]  # only the dropout keep-mask: the float map is recomputed blockwise
    forecast.square().mean().backward()
    assert all(p.grad is not None for p in model.trainable_parameters())


@pytest.mark.parametrize("backbone_name", ["tiny-gpt2", "tiny-bert", "tiny-qwen2"])
def test_fast_mode_runs_every_family_on_bf16_copies(backbone_name, monkeypatch):
    monkeypatch.setenv("TIMELLM_FAST_PRECISION", "bf16")
    fast = TimeLLM(config(fast=True), tiny(backbone_name), description="d").train()
    forecast = fast(windows())
    assert forecast.dtype == torch.float32 and torch.isfinite(forecast).all()
    forecast.square().mean().backward()
    assert fast.reprogramming.query_projection.weight.grad.abs().sum() > 0
    assert fast.llm_runner._lowered is not None
