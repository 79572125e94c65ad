"""The benchmark's targets (README, Speed), its speed ratios and its Markdown report; the measuring is in ``speed``.

Ratios are against the reference code itself when ``bench --reference DIR`` timed it (the path
"reference", its float32 run), else against this project's unoptimised path.
"""

from __future__ import annotations

from typing import Any

from timellm_core.benchmarking.reference_checkout import REFERENCE_PATHS

PATHS = ("unoptimized", "exact", "fast")
BASELINE_WORDS = {"reference": "the reference code (float32)", "unoptimized": "our unoptimised path"}


def measured_paths(settings: dict[str, Any]) -> tuple[str, ...]:
    """The paths a benchmark with these settings times: the reference's first when a checkout is given."""
    if not settings.get("reference_dir"):
        return PATHS
    return REFERENCE_PATHS[:2 if settings.get("reference_bf16") else 1] + PATHS


def baseline_of(results: dict[str, Any]) -> str:
    """The path the ratios are against: the reference code when it was timed."""
    return "reference" if "reference" in results else "unoptimized"


def speed_ratios(results: dict[str, Any]) -> dict[str, Any]:
    """Speed-ups (baseline time / path time) and memory ratios (path RSS / baseline RSS) of the exact and
    fast paths against the baseline, and of every timed path against both the baseline and our unoptimised path."""
    baseline = baseline_of(results)
    timed = measured_paths(results["settings"])

    def against(name: str) -> dict[str, dict[str, float]]:
        base = results[name]
        return {path: {"train_speedup": base["train_step_s"] / results[path]["train_step_s"],
                       "eval_speedup": base["eval_step_s"] / results[path]["eval_step_s"],
                       "memory_ratio": results[path]["peak_rss_bytes"] / base["peak_rss_bytes"]} for path in timed}

    ratios = {"baseline": baseline, "ratios": against(baseline), "ratios_vs_unoptimized": against("unoptimized")}
    for path in ("exact", "fast"):
        row = ratios["ratios"][path]
        ratios[f"speedup_{path}"] = row["train_speedup"]
        ratios[f"eval_speedup_{path}"] = row["eval_speedup"]
        ratios[f"memory_ratio_{path}"] = row["memory_ratio"]
    return ratios


def targets(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each speed target with the measured value and whether it is met."""
    checks = {
        "exact train step >= 3x faster": (results["speedup_exact"], results["speedup_exact"] >= 3.0),
        "exact peak memory <= 0.4x": (results["memory_ratio_exact"], results["memory_ratio_exact"] <= 0.4),
        "exact max relative difference <= 1e-4": (results["exact_max_rel_diff"], results["exact_max_rel_diff"] <= 1e-4),
        "fast train step >= 8x faster": (results["speedup_fast"], results["speedup_fast"] >= 8.0),
        "exact eval forward >= 5x faster": (results["eval_speedup_exact"], results["eval_speedup_exact"] >= 5.0),
    }
    return {name: {"value": value, "met": bool(met)} for name, (value, met) in checks.items()}


def to_markdown(results: dict[str, Any]) -> str:
    """The results as a Markdown report: settings, machine, one row per path, targets."""
    settings, machine = results["settings"], results["machine"]
    gib = 1024 ** 3
    baseline = baseline_of(results)
    against = "reference" if baseline == "reference" else "unoptimised"
    lines = [
        "# Speed benchmark: " + ("the reference code vs " if baseline == "reference" else "")
        + "unoptimised vs exact vs fast",
        "",
        f"Backbone: random LLaMA shaped like SmolLM2-135M, {settings['llm_layers']} layers; tokenizer: "
        f"{results['tokenizer']}. Batch {settings['batch_size']} x {settings['channels']} channels, "
        f"T {settings['seq_len']}, pred {settings['pred_len']}, d_model {settings['d_model']}, "
        f"d_ff {settings['d_ff']}. Each path runs alone in a fresh process, {settings['rounds']} times, the paths "
        f"taking turns; times are medians over all measured steps (at least {settings['steps']}, each process "
        f"after {settings['warmup']} warm-up step), peak RSS the largest of its processes (default allocator). "
        "Train step = forward, MSE, backward, Adam step (fused, as the trainer does); eval = forward without autograd.",
        f"Prompt: {results['exact']['prompt_prefix_tokens']} shared prefix tokens + "
        f"{results['exact']['prompt_series_tokens_mean']:.0f} per-series tokens on average (reference style; "
        f"fast: {results['fast']['prompt_series_tokens_mean']:.0f}), {results['exact']['patch_count']} patches.",
        f"Machine: {machine['cpu']}, {machine['logical_cores']} logical cores, torch {machine['torch']} "
        f"({machine['torch_threads']} threads); 1-minute load average {machine['load_average_1m_before']:.1f} "
        f"before, {machine['load_average_1m_after']:.1f} after.",
        "",
    ]
    lines += reference_lines(results)
    lines += [
        f"Speed-ups and memory ratios below are against {BASELINE_WORDS[baseline]}"
        + ("." if baseline == "reference" else " (no reference checkout given: `bench --reference DIR` times "
                                               "the reference code too and compares with it)."),
        "",
        f"| path | train step (s) | eval forward (s) | peak RSS (GiB) | train speed-up vs {against} | "
        f"eval speed-up vs {against} | peak RSS vs {against} |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    base = results[baseline]
    for path in measured_paths(settings):
        row = results[path]
        lines.append(f"| {path} | {row['train_step_s']:.2f} | {row['eval_step_s']:.2f} | "
                     f"{row['peak_rss_bytes'] / gib:.2f} | {base['train_step_s'] / row['train_step_s']:.2f}x | "
                     f"{base['eval_step_s'] / row['eval_step_s']:.2f}x | "
                     f"{row['peak_rss_bytes'] / base['peak_rss_bytes']:.2f}x |")
    if baseline == "reference":
        unoptimized = results["unoptimized"]
        lines += ["", "Against our unoptimised path: " + "; ".join(
            f"{path} {unoptimized['train_step_s'] / results[path]['train_step_s']:.2f}x train, "
            f"{unoptimized['eval_step_s'] / results[path]['eval_step_s']:.2f}x eval"
            for path in measured_paths(settings) if path != "unoptimized") + "."]
    lines += [
        "",
        f"Exact vs unoptimised, max relative difference: {results['exact_max_rel_diff']:.2e} "
        f"(forecast {results['exact_forecast_max_rel_diff']:.2e}, gradients {results['exact_gradient_max_rel_diff']:.2e}; "
        f"the key-projection bias gradient, zero in exact arithmetic, is noise of "
        f"{results['key_bias_gradient_noise']:.1e} of the largest gradient in both).",
        "",
        f"One ETTh1-shaped window (1 x {settings['seq_len']} x {settings['channels']}) with trace, exact path, "
        "eval mode:",
        "",
    ]
    for entry in results["trace_forward_one_window"]:
        lines.append(f"- {entry['backbone']}: first call {entry['first_s']:.2f} s (computes the prefix cache), "
                     f"then {entry['median_s']:.2f} s (median)"
                     + (f"; re-measured {entry['remeasured']}" if entry.get("remeasured") else ""))
    exact, fast = results["exact"], results["fast"]
    prefix, per_series, patches = (exact["prompt_prefix_tokens"], exact["prompt_series_tokens_mean"],
                                   exact["patch_count"])
    full = prefix + per_series + patches
    lines += [
        "",
        f"Reading the numbers: each series is a sequence of {prefix} shared prefix tokens, {per_series:.0f} "
        f"statistics tokens and {patches} patches. The exact path runs the prefix once (cached) and the "
        "statistics without autograd, but the statistics tokens differ for every series and must still go "
        f"through the LLM: in eval the positions computed per series drop from {full:.0f} to about "
        f"{per_series + patches:.0f} ({full / (per_series + patches):.1f}x fewer; this tokenizer writes each digit "
        "as a token). The rest of the eval speed-up comes from sdpa instead of eager attention keeping every "
        "map and hidden state, prototypes computed once, and batched prompts; in training, from autograd "
        f"covering only the {patches} patch positions. The fast path's compact numbers cut the statistics to "
        f"{fast['prompt_series_tokens_mean']:.0f} tokens; it runs in bf16 only where this machine multiplies bf16 "
        "faster than float32 (timellm_core/llm/precision.py), else in float32 without the MLP recomputation.",
    ]
    floor = results.get("exact_eval_floor")
    if floor:
        lines += [
            "",
            f"The exact eval forward's lower bound on this machine: its LLM matrix products alone are "
            f"{floor['gflop']:.0f} GFLOP, {floor['floor_s']:.2f} s at the measured float32 rate of "
            f"{floor['matmul_gflops']:.0f} GFLOP/s, so no exact float32 implementation can run the eval more than "
            f"{floor['max_eval_speedup']:.1f}x faster than the unoptimised path here (measured: "
            f"{results['eval_speedup_exact']:.1f}x). Only fewer tokens or lower precision go further: that is "
            f"the fast path ({results['eval_speedup_fast']:.1f}x).",
        ]
    lines += ["", f"Targets: speed and memory against {BASELINE_WORDS[baseline]}, exactness against our unoptimised "
              "path.", "", "| target | measured | met |", "| --- | ---: | --- |"]
    for name, check in results["targets"].items():
        lines.append(f"| {name} | {check['value']:.3g} | {'yes' if check['met'] else 'no'} |")
    return "\n".join(lines) + "\n"


def reference_lines(results: dict[str, Any]) -> list[str]:
    """What the reference paths ran: its checkout, the backbone it was given, its sequence, the shims."""
    if "reference" not in results:
        return []
    reference, exact = results["reference"], results["exact"]
    ours = exact["prompt_prefix_tokens"] + exact["prompt_series_tokens_mean"] + exact["patch_count"]
    lines = [
        f"Reference: `models/TimeLLM.py` of {reference['reference_dir']} as shipped (its prompt loop, eager "
        "attention returning every attention map and hidden state, its Adam over the parameters with "
        f"requires_grad), given through {', '.join(reference['supplied'])}.from_pretrained the same random "
        f"SmolLM2-shaped weights (same seed) and the same tokenizer, and our description (prompt_domain 1): "
        f"its sequences are {reference['sequence_length']} positions, ours {ours:.0f} on average before padding. "
        + ("reference-bf16: the same under torch.autocast('cpu', bfloat16), where its --use_amp autocasts. "
           if "reference-bf16" in results else "")
        + "Shims for today's libraries: " + "; ".join(reference["shims"]) + ".",
        "",
    ]
    return lines
