"""The pieces behind the speed-ups: grouped-head attention, the lighter dropout, inference mode, the bench report."""

from __future__ import annotations

import pytest
import torch

from timellm_core.backbones import load_backbone
from timellm_core.config import BackboneConfig, TimeLLMConfig
from timellm_core.model import TimeLLM
from timellm_core.model.attention_dropout import dropout_then_bmm
from timellm_core.model.benchmark import max_relative_difference
from timellm_core.model.benchmark_report import PATHS, targets, to_markdown
from timellm_core.model.grouped_attention import grouped_sdpa_attention


class _Grouped(torch.nn.Module):
    num_key_value_groups = 3
    is_causal = True


def test_grouped_sdpa_equals_repeated_key_value_heads_with_a_mask():
    torch.manual_seed(0)
    query = torch.randn(2, 6, 5, 8)  # (B, H, Lq, hd)
    key, value = torch.randn(2, 2, 11, 8), torch.randn(2, 2, 11, 8)  # (B, KV, Lk, hd)
    mask = torch.rand(2, 1, 5, 11) > 0.3
    mask[..., 0] = True
    output, weights = grouped_sdpa_attention(_Grouped(), query, key, value, mask, scaling=0.5)
    assert weights is None and output.shape == (2, 5, 6, 8)
    repeated_key, repeated_value = key.repeat_interleave(3, dim=1), value.repeat_interleave(3, dim=1)
    scores = (query @ repeated_key.transpose(-1, -2) * 0.5).masked_fill(~mask, float("-inf"))
    expected = (torch.softmax(scores, dim=-1) @ repeated_value).transpose(1, 2)
    assert torch.allclose(output, expected, atol=1e-5)


def test_lighter_dropout_equals_dropout_then_bmm_and_draws_the_same_noise():
    torch.manual_seed(0)
    attention = torch.softmax(torch.randn(3, 40, 30), dim=-1).requires_grad_(True)
    values = torch.randn(3, 30, 8, requires_grad=True)
    dropout = torch.nn.Dropout(0.25).train()
    upstream = torch.randn(3, 40, 8)
    torch.manual_seed(7)
    expected = torch.bmm(dropout(attention), values)
    expected_grads = torch.autograd.grad(expected, (attention, values), upstream)
    after_reference = torch.rand(1)
    torch.manual_seed(7)
    output = dropout_then_bmm(attention, values, dropout)
    grads = torch.autograd.grad(output, (attention, values), upstream)
    assert torch.equal(torch.rand(1), after_reference)  # same random stream consumed
    assert torch.equal(output, expected)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(grads, expected_grads))
    dropout.eval()
    assert torch.equal(dropout_then_bmm(attention, values, dropout), torch.bmm(attention, values))


def test_inference_mode_then_training_reuses_the_prefix_cache_safely():
    backbone = load_backbone(BackboneConfig(name="tiny-qwen2", llm_layers=2), device="cpu")
    config = TimeLLMConfig(seq_len=32, pred_len=8, patch_len=8, stride=4, d_model=8, d_ff=16, n_heads=2,
                           num_prototypes=20)
    model = TimeLLM(config, backbone, description="Inference mode test.").eval()
    x = torch.randn(2, 32, 3)
    with torch.inference_mode():
        model(x)
    model.train()
    model(x).square().mean().backward()  # the memoised prefix is a normal tensor: usable with autograd
    assert model.reprogramming.query_projection.weight.grad is not None
    assert model.llm_runner.prefix_computations == 1
    model.eval()
    with torch.no_grad():
        _, trace = model(x, trace=True)
        trace.prototypes.zero_()  # a trace is a copy: the model's cached prototypes are untouched
        assert model.prototypes().abs().sum() > 0


def _fake_results(unoptimized: float, exact: float, fast: float) -> dict:
    row = lambda train, rss, tokens: {"train_step_s": train, "eval_step_s": train / 2, "peak_rss_bytes": rss,
                                      "prompt_prefix_tokens": 100, "prompt_series_tokens_mean": tokens,
                                      "patch_count": 64, "tokenizer": "tiny"}
    results = {
        "settings": {"llm_layers": 6, "batch_size": 8, "channels": 7, "seq_len": 512, "pred_len": 96,
                     "d_model": 32, "d_ff": 32, "steps": 5, "warmup": 1, "rounds": 3},
        "machine": {"cpu": "test cpu", "logical_cores": 2, "torch": "x", "torch_threads": 2,
                    "load_average_1m_before": 0.5, "load_average_1m_after": 0.7},
        "unoptimized": row(unoptimized, 6e9, 107), "exact": row(exact, 2e9, 107), "fast": row(fast, 2e9, 67),
        "exact_max_rel_diff": 3e-6, "exact_forecast_max_rel_diff": 1e-7, "exact_gradient_max_rel_diff": 3e-6,
        "key_bias_gradient_noise": 1e-10, "tokenizer": "tiny",
        "trace_forward_one_window": [{"backbone": "random", "shape": [1, 512, 7], "first_s": 1.0, "median_s": 0.5}],
    }
    results["speedup_exact"] = unoptimized / exact
    results["speedup_fast"] = unoptimized / fast
    results["eval_speedup_exact"] = unoptimized / exact
    results["memory_ratio_exact"] = 2e9 / 6e9
    return results


def test_targets_and_report_say_what_was_met():
    results = _fake_results(unoptimized=12.0, exact=3.0, fast=2.0)
    checks = targets(results)
    assert checks["exact train step >= 3x faster"] == {"value": 4.0, "met": True}
    assert checks["fast train step >= 8x faster"]["met"] is False  # 6x
    assert checks["exact peak memory <= 0.4x"]["met"] is True
    results["targets"] = checks
    report = to_markdown(results)
    for path in PATHS:
        assert f"| {path} |" in report
    assert "| fast train step >= 8x faster | 6 | no |" in report
    assert "load average 0.5" in report


def test_max_relative_difference_is_relative_to_each_tensor():
    small, large = torch.tensor([1e-3, -2e-3]), torch.tensor([10.0, 20.0])
    assert max_relative_difference([small * 1.01, large], [small, large]) == pytest.approx(0.01, rel=1e-4)
