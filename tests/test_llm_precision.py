"""The fast path's precision: chosen per machine (a cached probe on CPU, the GPU's support on CUDA),
bf16 only where it is quicker, float32 keeping the fast path's other savings elsewhere."""

from __future__ import annotations

import json

import pytest
import torch

from timellm_core.backbones import load_backbone
from timellm_core.config import BackboneConfig, TimeLLMConfig
from timellm_core.errors import ConfigError
from timellm_core.llm import precision as precision_module
from timellm_core.llm.precision import FastPrecision, cached_cpu_rates, choose_fast_precision, probe_cpu_rates
from timellm_core.model import TimeLLM


@pytest.fixture(autouse=True)
def no_override(monkeypatch):
    monkeypatch.delenv("TIMELLM_FAST_PRECISION", raising=False)


def fake_rates(monkeypatch, fp32: float, bf16: float) -> list[int]:
    calls = []

    def probe():
        calls.append(1)
        return {"fp32": fp32, "bf16": bf16}

    monkeypatch.setattr(precision_module, "probe_cpu_rates", probe)
    return calls


def test_the_probe_measures_both_precisions_at_positive_rates():
    rates = probe_cpu_rates(shape=(32, 64, 64), budget_s=0.05)
    assert set(rates) == {"fp32", "bf16"} and all(rate > 0 for rate in rates.values())


def test_bf16_is_chosen_only_where_it_multiplies_clearly_faster(tmp_path, monkeypatch):
    fake_rates(monkeypatch, fp32=50.0, bf16=1.1)  # a CPU without bf16 instructions (AMD Zen 3)
    slow = choose_fast_precision("cpu", cache_path=tmp_path / "slow.json")
    assert slow.name == "fp32" and not slow.lowered and "not faster" in slow.reason and "1.1" in slow.reason
    fake_rates(monkeypatch, fp32=50.0, bf16=52.0)  # a tie is not a win
    assert choose_fast_precision("cpu", cache_path=tmp_path / "tie.json").name == "fp32"
    fake_rates(monkeypatch, fp32=50.0, bf16=150.0)  # AVX512-BF16 / AMX
    quick = choose_fast_precision("cpu", cache_path=tmp_path / "quick.json")
    assert quick.name == "bf16" and quick.dtype == torch.bfloat16 and "3.0x faster" in quick.reason
    assert not quick.loss_scaling


def test_the_probe_runs_once_per_machine_and_its_cache_survives_a_damaged_file(tmp_path, monkeypatch):
    calls = fake_rates(monkeypatch, fp32=40.0, bf16=120.0)
    cache = tmp_path / "cache" / "precision.json"
    assert cached_cpu_rates(cache) == {"fp32": 40.0, "bf16": 120.0}
    assert cached_cpu_rates(cache) == {"fp32": 40.0, "bf16": 120.0}
    assert len(calls) == 1  # the second answer came from the file
    stored = json.loads(cache.read_text())
    assert list(stored) == [precision_module.probe_key()]  # keyed by CPU, torch version and threads
    cache.write_text("{not json")
    assert cached_cpu_rates(cache)["bf16"] == 120.0 and len(calls) == 2  # measured again, file rewritten
    assert json.loads(cache.read_text())[precision_module.probe_key()]["fp32"] == 40.0


def test_the_override_is_checked(monkeypatch, tmp_path):
    monkeypatch.setenv("TIMELLM_FAST_PRECISION", "fp32")
    assert choose_fast_precision("cpu", cache_path=tmp_path / "p.json").name == "fp32"
    monkeypatch.setenv("TIMELLM_FAST_PRECISION", "fp16")
    with pytest.raises(ConfigError, match="needs a CUDA GPU"):
        choose_fast_precision("cpu")
    monkeypatch.setenv("TIMELLM_FAST_PRECISION", "int8")
    with pytest.raises(ConfigError, match="bf16, fp16 or fp32"):
        choose_fast_precision("cpu")


@pytest.mark.parametrize("bf16_supported, capability, expected, scaled", [
    (True, (8, 0), "bf16", False),  # A100, H100: bf16
    (False, (7, 0), "fp16", True),  # V100: no bf16, float16 with a loss scaler
    (False, (5, 2), "fp32", False),  # Maxwell: neither
])
def test_on_cuda_bf16_where_supported_else_fp16_with_a_loss_scaler_else_fp32(monkeypatch, bf16_supported,
                                                                          capability, expected, scaled):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16_supported)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: "a GPU")
    chosen = choose_fast_precision(torch.device("cuda", 0))
    assert (chosen.name, chosen.loss_scaling) == (expected, scaled)


def _config(**overrides) -> TimeLLMConfig:
    values = dict(seq_len=32, pred_len=8, patch_len=8, stride=4, d_model=8, d_ff=16, n_heads=2,
                  num_prototypes=20, dropout=0.0, attention_dropout=0.0)
    values.update(overrides)
    return TimeLLMConfig(**values)


def test_fast_in_float32_keeps_the_weights_and_the_mlp_activations_and_stays_close_to_exact(monkeypatch):
    monkeypatch.setenv("TIMELLM_FAST_PRECISION", "fp32")
    backbone = load_backbone(BackboneConfig(name="tiny-llama", llm_layers=2), device="cpu")
    intermediate = backbone.model.config.intermediate_size
    torch.manual_seed(0)
    exact = TimeLLM(_config(), backbone, description="d").train()
    fast = TimeLLM(_config(fast=True), backbone, description="d").train()
    fast.load_trainable_state_dict(exact.trainable_state_dict())
    assert fast.fast_precision.name == "fp32" and exact.fast_precision is None
    x = torch.randn(2, 32, 3).cumsum(dim=1)
    shapes = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: shapes.append((tuple(t.shape), t.dtype)) or t,
                                                  lambda t: t):
        forecast = fast(x)
    assert fast.llm_runner._lowered is None  # no low-precision copies
    assert any(s and s[-1] == intermediate for s, _ in shapes)  # the MLP activations are kept, not recomputed
    assert all(dtype != torch.bfloat16 for _, dtype in shapes)  # nothing ran in bf16
    assert fast.prompt_style == "compact"  # the fast path's other savings stay
    forecast.square().mean().backward()
    assert fast.reprogramming.query_projection.weight.grad.abs().sum() > 0
    with torch.no_grad():
        reference = exact.eval()(x)
        close = fast.eval()(x)
    assert ((close - reference).abs().max() / reference.abs().max()) < 0.1  # only the prompt differs


def test_a_fast_run_records_its_precision_and_a_scaled_precision_trains_through_the_scaler(tmp_path, monkeypatch):
    """The run's config.json says which precision and why; loss scaling (fp16 on a GPU) goes through a
    GradScaler, exercised here on the CPU with bf16 standing in for fp16."""
    from test_training_support import forecast_data, small_config
    from timellm_core.model import timellm as timellm_module
    from timellm_core.training.runs import RunFolder, load_run
    from timellm_core.training.trainer import Trainer

    scaled = FastPrecision("bf16", "a test stand-in for fp16 on a GPU", loss_scaling=True)
    monkeypatch.setattr(timellm_module, "choose_fast_precision", lambda device: scaled)
    steps = []
    original_step = torch.amp.GradScaler.step
    monkeypatch.setattr(torch.amp.GradScaler, "step",
                        lambda self, optimizer, *a, **k: steps.append(1) or original_step(self, optimizer, *a, **k))
    config = small_config(train_epochs=1, max_train_windows=16, max_eval_windows=8)
    config.model.fast = True
    run = RunFolder.create(config, tmp_path / "runs")
    Trainer(config, run=run, data=forecast_data()).run()
    info = load_run(run.path)
    assert info.status == "finished"
    assert info.fast_precision == {"name": "bf16", "reason": "a test stand-in for fp16 on a GPU", "loss_scaling": True}
    assert steps and len(steps) == len(info.step_events())
    assert all(event["loss"] == event["loss"] for event in info.step_events())  # finite
