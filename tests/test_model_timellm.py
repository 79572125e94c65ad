"""The TimeLLM module: shapes, backbones, the trace, what is trained, ablations, checkpoints."""

from __future__ import annotations

import functools

import pytest
import torch

from timellm_core.backbones import load_backbone
from timellm_core.config import BackboneConfig, TimeLLMConfig
from timellm_core.errors import ConfigError, RunError
from timellm_core.model import TimeLLM, Trace
from timellm_core.model.reference_checkpoint import REFERENCE_TO_OURS

SEQ_LEN, PRED_LEN, PATCHES = 32, 8, 8  # patch_len 8, stride 4: P = int(24 / 4 + 2) = 8


@functools.lru_cache(maxsize=None)
def tiny(name: str, load_in_4bit: bool = False):
    return load_backbone(BackboneConfig(name=name, llm_layers=2, load_in_4bit=load_in_4bit), device="cpu")


def small_config(**overrides) -> TimeLLMConfig:
    values = dict(seq_len=SEQ_LEN, pred_len=PRED_LEN, patch_len=8, stride=4, d_model=8, d_ff=16, n_heads=2,
                  num_prototypes=20)
    values.update(overrides)
    return TimeLLMConfig(**values)


def windows(batch: int = 2, channels: int = 3, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, SEQ_LEN, channels, generator=generator).cumsum(dim=1)


@pytest.mark.parametrize("name,load_in_4bit", [
    ("tiny-gpt2", False), ("tiny-llama", False), ("tiny-qwen2", False), ("tiny-bert", False), ("tiny-qwen2", True),
])
def test_the_same_model_runs_and_trains_on_every_family(name, load_in_4bit):
    backbone = tiny(name, load_in_4bit)
    assert backbone.load_in_4bit == load_in_4bit
    torch.manual_seed(0)
    model = TimeLLM(small_config(), backbone, description="A test series.")
    x = windows()
    forecast = model(x)
    assert forecast.shape == (2, PRED_LEN, 3) and forecast.dtype == torch.float32
    assert torch.isfinite(forecast).all()
    forecast.square().mean().backward()
    gradients = [p.grad for p in model.trainable_parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in gradients)
    assert model.reprogramming.query_projection.weight.grad.abs().sum() > 0  # reached through the LLM


def test_no_gradient_reaches_the_backbone_and_it_stays_out_of_the_state_dict():
    backbone = tiny("tiny-llama")
    before = {name: p.detach().clone() for name, p in backbone.model.named_parameters()}
    model = TimeLLM(small_config(), backbone, description="A test series.")
    optimizer = torch.optim.Adam(model.trainable_parameters(), lr=0.1)
    model(windows()).square().mean().backward()
    optimizer.step()
    for name, parameter in backbone.model.named_parameters():
        assert not parameter.requires_grad and parameter.grad is None, name
        assert torch.equal(parameter, before[name]), name
    backbone_ids = {id(p) for p in backbone.model.parameters()}
    assert not backbone_ids & {id(p) for p in model.parameters()}
    assert set(model.state_dict()) == set(model.trainable_state_dict())
    assert not [key for key in model.state_dict() if "backbone" in key or "llm_model" in key]
    assert not backbone.model.training  # model.train() does not touch the frozen LLM
    model.train()
    assert not backbone.model.training


def test_trace_comes_from_the_same_forward_and_has_the_documented_shapes():
    backbone = tiny("tiny-qwen2")
    torch.manual_seed(0)
    config = small_config()
    model = TimeLLM(config, backbone, description="A test series.").eval()
    x = windows(batch=2, channels=3)
    with torch.no_grad():
        forecast = model(x)
        traced_forecast, trace = model(x, trace=True)
    assert isinstance(trace, Trace)
    assert torch.equal(traced_forecast, forecast)
    assert torch.equal(trace.forecast, forecast)
    series = 2 * 3
    assert trace.normalized_input.shape == (2, SEQ_LEN, 3)
    assert trace.patches.shape == (series, PATCHES, 8)
    assert trace.patch_embeddings.shape == (series, PATCHES, 8)
    assert len(trace.prompts) == series and len(trace.prompt_token_ids) == series
    assert trace.prototypes.shape == (20, backbone.hidden_size)
    assert trace.reprogramming_attention.shape == (series, 2, PATCHES, 20)
    assert torch.allclose(trace.reprogramming_attention.sum(dim=-1), torch.ones(series, 2, PATCHES), atol=1e-5)
    assert trace.llm_output.shape == (series, PATCHES, 16)
    assert trace.llm_attention is None and trace.llm_path == "cached"
    for tensor in (trace.normalized_input, trace.patches, trace.prototypes, trace.llm_output):
        assert tensor.device.type == "cpu" and not tensor.requires_grad
    # The normalised input's row for (sample 1, channel 2) is that series' patches, re-assembled.
    row = trace.series_index(1, 2)
    assert torch.equal(trace.patches[row, 0], trace.normalized_input[1, :8, 2])
    # The prompt tokens are the tokenizer's ids of the prompt text.
    assert trace.prompt_token_ids[row] == backbone.tokenizer(trace.prompts[row])["input_ids"]


def test_trace_can_return_the_llm_attention_of_the_patch_positions():
    backbone = tiny("tiny-gpt2")
    model = TimeLLM(small_config(), backbone, description="A test series.").eval()
    x = windows()
    with torch.no_grad():
        forecast = model(x)
        traced, trace = model(x, trace=True, llm_attention=True)
    assert torch.allclose(traced, forecast, atol=1e-5)  # eager instead of sdpa: rounding only
    assert len(trace.llm_attention) == backbone.num_layers
    prompt_length = len(trace.prompt_token_ids[0])
    for layer in trace.llm_attention:
        assert layer.shape[0] == 6 and layer.shape[2] == PATCHES
        assert torch.allclose(layer.sum(dim=-1), torch.ones(layer.shape[:3]), atol=1e-5)
        assert layer.shape[3] >= prompt_length + PATCHES
    assert backbone.model.config._attn_implementation == "sdpa"  # restored afterwards


@pytest.mark.parametrize("llm_mode", ["frozen", "none", "attention", "transformer", "random"])
def test_every_llm_mode_trains_a_step(llm_mode):
    torch.manual_seed(0)
    model = TimeLLM(small_config(llm_mode=llm_mode), tiny("tiny-llama"), description="A test series.")
    optimizer = torch.optim.Adam(model.trainable_parameters(), lr=0.01)
    x, target = windows(seed=1), torch.randn(2, PRED_LEN, 3)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    loss = torch.nn.functional.mse_loss(model(x), target)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    changed = [name for name, p in model.named_parameters() if not torch.equal(p, before[name])]
    assert "output_head.linear.weight" in changed and "reprogramming.query_projection.weight" in changed
    if llm_mode in ("attention", "transformer"):
        assert any(name.startswith("llm_replacement.") for name in changed)
    model.eval()
    with torch.no_grad():
        _, trace = model(x, trace=True)
    runs_the_llm = llm_mode in ("frozen", "random")  # random: the LLM runs, with random weights
    assert trace.llm_path == ("cached" if runs_the_llm else llm_mode)
    assert (trace.prompts != []) == runs_the_llm


def test_ablations_change_only_what_replaces_the_llm():
    frozen = TimeLLM(small_config(), tiny("tiny-llama"), description="A test series.")
    for llm_mode in ("none", "attention", "transformer"):
        ablated = TimeLLM(small_config(llm_mode=llm_mode), tiny("tiny-llama"), description="A test series.")
        extra = set(ablated.state_dict()) - set(frozen.state_dict())
        assert set(frozen.state_dict()) <= set(ablated.state_dict())
        assert all(key.startswith("llm_replacement.") for key in extra)
        assert bool(extra) == (llm_mode != "none")


@pytest.mark.parametrize("llm_mode", ["none", "attention", "transformer"])
def test_what_replaces_the_llm_ends_normalised_as_the_llm_does(llm_mode):
    """The head reads the replacement's output on the scale the LLM's final norm gives, whatever scale
    the reprogrammed patches reach: without it, Adam at lr 0.01 blew the no-LLM cpu-quick run up."""
    torch.manual_seed(0)
    model = TimeLLM(small_config(llm_mode=llm_mode, dropout=0.0), tiny("tiny-llama"), description="A test.").eval()
    x = windows()
    with torch.no_grad():
        _, trace = model(x, trace=True)
        features = trace.llm_output  # (B*N, P, d_ff): the first d_ff of D normalised features
        model.reprogramming.out_projection.weight.mul_(1000.0)  # patches a thousand times larger
        model.reprogramming.out_projection.bias.mul_(1000.0)
        _, scaled = model(x, trace=True)
    assert features.abs().max() < 10  # unit-scale features, not the raw projection
    if llm_mode == "none":  # the normalisation is scale-free: the same features
        torch.testing.assert_close(scaled.llm_output, features, rtol=1e-3, atol=1e-3)
    else:
        assert scaled.llm_output.abs().max() < 10


def test_description_comes_from_the_argument_and_the_config_overrides_it():
    backbone = tiny("tiny-gpt2")
    assert "Rain in Bergen." in TimeLLM(small_config(), backbone, description="Rain in Bergen.").prompt_builder.prefix()
    model = TimeLLM(small_config(description="Wind at sea."), backbone, description="Rain in Bergen.")
    assert "Wind at sea." in model.prompt_builder.prefix() and "Bergen" not in model.prompt_builder.prefix()


def test_user_errors_are_clear():
    backbone = tiny("tiny-gpt2")  # hidden size 64
    with pytest.raises(ConfigError, match="d_ff"):
        TimeLLM(small_config(d_ff=65), backbone)
    model = TimeLLM(small_config(), backbone)
    with pytest.raises(ConfigError, match="seq_len=32"):
        model(torch.randn(2, 31, 3))


def test_trainable_state_dict_round_trips_and_rejects_another_configuration():
    backbone = tiny("tiny-llama")
    torch.manual_seed(0)
    source = TimeLLM(small_config(), backbone).eval()
    torch.manual_seed(1)
    target = TimeLLM(small_config(), backbone).eval()
    x = windows()
    with torch.no_grad():
        assert not torch.allclose(source(x), target(x))
        target.load_trainable_state_dict(source.trainable_state_dict())
        assert torch.equal(source(x), target(x))
    other = TimeLLM(small_config(d_model=12), backbone)
    with pytest.raises(RunError, match="patch_embedding.token_convolution.weight"):
        other.load_trainable_state_dict(source.trainable_state_dict())
    ablated = TimeLLM(small_config(llm_mode="attention"), backbone)
    with pytest.raises(RunError, match="missing keys: llm_replacement"):
        ablated.load_trainable_state_dict(source.trainable_state_dict())


def test_reference_checkpoint_round_trips():
    backbone = tiny("tiny-qwen2")
    torch.manual_seed(0)
    source = TimeLLM(small_config(), backbone).eval()
    reference = source.to_reference_state_dict()
    assert set(reference) == set(REFERENCE_TO_OURS)
    assert "patch_embedding.value_embedding.tokenConv.weight" in reference
    assert "reprogramming_layer.out_projection.bias" in reference
    # As the reference saves it: a distributed-wrapper prefix, bf16 weights and its LLM's weights too.
    saved = {f"module.{name}": tensor.to(torch.bfloat16) for name, tensor in reference.items()}
    saved["module.llm_model.layers.0.self_attn.q_proj.weight"] = torch.randn(4, 4)
    torch.manual_seed(1)
    target = TimeLLM(small_config(), backbone).eval()
    target.load_reference_state_dict(saved)
    for name, tensor in source.trainable_state_dict().items():
        assert torch.equal(target.trainable_state_dict()[name], tensor.to(torch.bfloat16).float()), name
    target.load_reference_state_dict(reference)
    x = windows()
    with torch.no_grad():
        assert torch.equal(target(x), source(x))


def test_reference_checkpoint_errors_list_the_keys():
    model = TimeLLM(small_config(), tiny("tiny-gpt2"))
    reference = model.to_reference_state_dict()
    with pytest.raises(RunError, match="unknown keys: normalize_layers.weight"):
        model.load_reference_state_dict({**reference, "normalize_layers.weight": torch.zeros(1)})
    incomplete = {k: v for k, v in reference.items() if not k.startswith("mapping_layer")}
    with pytest.raises(RunError, match="missing keys: mapping_layer.bias, mapping_layer.weight"):
        model.load_reference_state_dict(incomplete)
    with pytest.raises(RunError):
        TimeLLM(small_config(llm_mode="attention"), tiny("tiny-gpt2")).to_reference_state_dict()
