"""The pieces behind the speed-ups: grouped-head attention, the blockwise prototype attention, inference mode, the bench report."""

from __future__ import annotations

import pytest
import torch

from timellm_core.backbones import load_backbone
from timellm_core.config import BackboneConfig, TimeLLMConfig
from timellm_core.model import TimeLLM
from timellm_core.model import prototype_attention
from timellm_core.benchmarking.speed import max_relative_difference
from timellm_core.benchmarking.report import PATHS, targets, to_markdown
from timellm_core.llm.grouped_attention import grouped_sdpa_attention


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


@pytest.mark.parametrize("p", [0.0, 0.25])
def test_blockwise_prototype_attention_equals_the_plain_ops_and_draws_the_same_noise(p, monkeypatch):
    monkeypatch.setattr(prototype_attention, "BLOCK_ELEMENTS", 7 * 30)  # several row blocks per head
    torch.manual_seed(0)
    queries = torch.randn(3, 40, 8, requires_grad=True)  # (H, M, E)
    keys, values = torch.randn(3, 30, 8, requires_grad=True), torch.randn(3, 30, 8, requires_grad=True)
    upstream = torch.randn(3, 40, 8)
    torch.manual_seed(7)
    dropout = torch.nn.Dropout(p).train()
    expected = torch.bmm(dropout(torch.softmax(queries @ keys.transpose(1, 2), dim=-1)), values)
    expected_grads = torch.autograd.grad(expected, (queries, keys, values), upstream)
    after_reference = torch.rand(1)
    torch.manual_seed(7)
    output = prototype_attention.blockwise_prototype_attention(queries, keys, values, p)
    grads = torch.autograd.grad(output, (queries, keys, values), upstream)
    assert torch.equal(torch.rand(1), after_reference)  # same random stream consumed
    assert torch.allclose(output, expected, atol=1e-6)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(grads, expected_grads))
    if p:  # the same entries are dropped: a wrong mask would move the output by far more than rounding
        torch.manual_seed(8)
        other = prototype_attention.blockwise_prototype_attention(queries, keys, values, p)
        assert not torch.allclose(other, expected, atol=1e-3)


def test_blockwise_prototype_attention_keeps_no_attention_map_for_backward():
    torch.manual_seed(0)
    queries = torch.randn(2, 300, 4, requires_grad=True)
    keys, values = torch.randn(2, 500, 4, requires_grad=True), torch.randn(2, 500, 4, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t, lambda t: t):
        prototype_attention.blockwise_prototype_attention(queries, keys, values, 0.1).sum().backward()
    # Q, K, V and the boolean keep-mask: nothing else of the (H, M, S) size in float
    assert sorted(saved) == sorted([2 * 300 * 4, 2 * 500 * 4, 2 * 500 * 4, 2 * 300 * 500])
    assert queries.grad is not None and keys.grad is not None and values.grad is not None


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
    assert "lower bound" not in report  # no floor measured, none reported
    results["eval_speedup_exact"], results["eval_speedup_fast"] = 2.5, 6.0
    results["exact_eval_floor"] = {"gflop": 300.0, "matmul_gflops": 150.0, "floor_s": 2.0, "max_eval_speedup": 3.0}
    assert "300 GFLOP, 2.00 s at the measured float32 rate of 150 GFLOP/s" in to_markdown(results)


def test_exact_eval_floor_counts_the_llm_products_of_every_position(monkeypatch):
    from timellm_core.benchmarking import speed as benchmark

    monkeypatch.setattr(benchmark, "matmul_rate_gflops", lambda rows: 100.0)
    settings = benchmark.BenchSettings(batch_size=1, channels=1, llm_layers=2)
    floor = benchmark.exact_eval_floor(settings, series_tokens=10, patch_count=4)
    d, f, kv = 576, 1536, 192  # SmolLM2: 9 query heads of 64, 3 key/value heads
    layer = 2 * (2 * d * d + 2 * d * kv + 3 * d * f)
    expected = 10 * (layer + 2 * (d * d + 2 * d * kv)) + 4 * 2 * layer  # statistics skip the last layer's rest
    assert floor["gflop"] == pytest.approx(expected / 1e9)
    assert floor["floor_s"] == pytest.approx(expected / 1e9 / 100.0)


def test_max_relative_difference_is_relative_to_each_tensor():
    small, large = torch.tensor([1e-3, -2e-3]), torch.tensor([10.0, 20.0])
    assert max_relative_difference([small * 1.01, large], [small, large]) == pytest.approx(0.01, rel=1e-4)


def test_bf16_grouped_attention_is_close_to_float32_and_needs_no_key_value_copies():
    torch.manual_seed(0)
    query = torch.randn(2, 6, 5, 8)
    key, value = torch.randn(2, 2, 11, 8), torch.randn(2, 2, 11, 8)
    mask = torch.rand(2, 1, 5, 11) > 0.3
    mask[..., 0] = True
    exact, _ = grouped_sdpa_attention(_Grouped(), query, key, value, mask, scaling=0.5)
    low, _ = grouped_sdpa_attention(_Grouped(), query.bfloat16(), key.bfloat16(), value.bfloat16(), mask,
                                    scaling=0.5)
    assert low.dtype == torch.bfloat16 and low.shape == exact.shape
    assert (low.float() - exact).abs().max() < 0.05
    with torch.autocast("cpu", dtype=torch.bfloat16):  # float32 inputs under bf16 autocast take the same route
        auto, _ = grouped_sdpa_attention(_Grouped(), query, key, value, mask, scaling=0.5)
    assert auto.dtype == torch.bfloat16 and (auto.float() - exact).abs().max() < 0.05


def test_adam_is_fused_on_the_cpu_and_falls_back_for_what_torch_cannot_fuse():
    from timellm_core.training.optimizer import make_adam

    weight = torch.nn.Parameter(torch.randn(4, 3))
    assert make_adam([weight], lr=1e-3).defaults["fused"] is True
    complex_weight = torch.nn.Parameter(torch.randn(2, dtype=torch.complex64))
    assert not make_adam([complex_weight], lr=1e-3).defaults.get("fused")
    # same update as the per-tensor loop, up to rounding
    other = torch.nn.Parameter(weight.detach().clone())
    fused, loop = make_adam([weight], lr=0.1), torch.optim.Adam([other], lr=0.1)
    for _ in range(3):
        for parameter, optimizer in ((weight, fused), (other, loop)):
            optimizer.zero_grad()
            parameter.square().sum().backward()
            optimizer.step()
    assert torch.allclose(weight, other, atol=1e-6)


def test_lighter_gated_mlps_swap_only_frozen_llama_mlps_and_restore_them():
    from timellm_core.llm.gated_mlp import is_gated_silu_mlp, lighter_gated_mlps

    backbone = load_backbone(BackboneConfig(name="tiny-llama", llm_layers=2), device="cpu")
    model = backbone.model
    with lighter_gated_mlps(model) as swapped:
        assert swapped == 2
        assert all("forward" in vars(layer.mlp) for layer in model.layers)
    assert not any("forward" in vars(module) for module in model.modules())
    gpt2 = load_backbone(BackboneConfig(name="tiny-gpt2", llm_layers=2), device="cpu").model
    assert not any(is_gated_silu_mlp(module) for module in gpt2.modules())
    mlp = model.layers[0].mlp
    mlp.up_proj.weight.requires_grad_(True)  # a trainable MLP is left to plain autograd
    try:
        assert not is_gated_silu_mlp(mlp)
    finally:
        mlp.up_proj.weight.requires_grad_(False)


def test_quick_keep_mask_has_the_dropout_rate_and_uses_every_bit():
    torch.manual_seed(0)
    mask = prototype_attention.draw_keep_mask((7, 301, 1000), 0.1, torch.device("cpu"), quick=True)
    assert mask.dtype == torch.bool and mask.shape == (7, 301, 1000)
    assert abs(mask.float().mean().item() - 0.9) < 0.002  # 2.1M draws: the rate to about 3 standard errors
    assert abs(mask[..., ::4].float().mean().item() - 0.9) < 0.003  # each 16-bit lane of a word is unbiased
    assert abs(mask[..., 3::4].float().mean().item() - 0.9) < 0.003
    assert not prototype_attention.draw_keep_mask((10, 10), 0.999, torch.device("cpu"), quick=True).all()
    exact = prototype_attention.draw_keep_mask((7, 301, 1000), 0.1, torch.device("cpu"))
    assert abs(exact.float().mean().item() - 0.9) < 0.002 and not torch.equal(exact, mask)
