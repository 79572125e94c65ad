"""What the Inside the LLM page computes: one channel's LLM attention maps, and the whole window's for comparison.

    .venv/bin/python benchmarks/llm_inside.py

The page calls ``timellm_core.llm_attention.series_attention`` (the chosen channel run alone with
eager attention, then its tokens named and the padding removed) once for the chosen model, and
once more for its untrained twin when a run is chosen. This times that call with the real
SmolLM2-135M on ETTh1 test window 0, at the library's default depth (6 layers, T 512) and at the
app's default preset (cpu-quick: 2 layers, T 96): the first call (which builds the prompt prefix's
cache) and the median of the next five (other channels); and, for comparison, the whole window's
traced forward with the attention maps (all 7 channels). Writes llm_inside.md and .json.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import torch  # noqa: E402

from timellm_core.backbones import load_backbone  # noqa: E402
from timellm_core.benchmarking.speed import matmul_rate_gflops  # noqa: E402
from timellm_core.config import BackboneConfig, DataConfig, TimeLLMConfig, preset  # noqa: E402
from timellm_core.data import prepare_data  # noqa: E402
from timellm_core.llm_attention import series_attention  # noqa: E402
from timellm_core.model import TimeLLM  # noqa: E402

REPEATS = 5
IDLE_GFLOPS = 52.6  # float32 (256, 576) @ (576, 1536) on this project's idle 2-core EPYC (llm/precision.py)
SETTINGS = {  # name -> (layers kept, model settings)
    "default (6 layers, T 512)": (6, TimeLLMConfig()),
    "app preset cpu-quick (2 layers, T 96)": (preset("cpu-quick").backbone.llm_layers, preset("cpu-quick").model),
}


def _measure(layers: int, config: TimeLLMConfig) -> dict:
    data = prepare_data(DataConfig(name="ETTh1"), seq_len=config.seq_len, pred_len=config.pred_len)
    window = data.windows("test")[0][0]  # (T, 7)
    backbone = load_backbone(BackboneConfig(name="smollm2-135m", llm_layers=layers), device="cpu")
    torch.manual_seed(0)
    model = TimeLLM(config, backbone, description=data.description).eval()
    cpu = time.process_time()
    first = series_attention(model, window, channel=6)
    first_cpu = time.process_time() - cpu
    seconds, cpu_seconds, rates = [], [], []
    for channel in range(REPEATS):
        rates.append(matmul_rate_gflops(rows=256))  # how fast the machine multiplies right now
        cpu = time.process_time()
        seconds.append(series_attention(model, window, channel=channel).seconds)
        cpu_seconds.append(time.process_time() - cpu)
    started, cpu = time.perf_counter(), time.process_time()
    with torch.no_grad():
        model(torch.as_tensor(window).unsqueeze(0).float(), trace=True, llm_attention=True)  # (1, T, 7)
    whole, whole_cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"first_s": first.seconds, "median_s": statistics.median(seconds), "all_s": seconds,
            "first_cpu_s": first_cpu, "median_cpu_s": statistics.median(cpu_seconds), "all_cpu_s": cpu_seconds,
            "whole_window_s": whole, "whole_window_cpu_s": whole_cpu, "shape": list(first.attention.shape),
            "matmul_gflops": rates, "idle_estimate_s": statistics.median(
                [wall * rate / IDLE_GFLOPS for wall, rate in zip(seconds, rates)])}


def main() -> int:
    results = {"threads": torch.get_num_threads(), "load_average_1m_before": os.getloadavg()[0], "settings": {}}
    for name, (layers, config) in SETTINGS.items():
        results["settings"][name] = _measure(layers, config)
    results["load_average_1m_after"] = os.getloadavg()[0]
    lines = [
        "# Inside the LLM: one channel's attention maps",
        "",
        f"`series_attention(model, window, channel)` on ETTh1 test window 0 with the real SmolLM2-135M, eval mode, "
        f"{results['threads']} torch threads; the first call, then the median of {REPEATS} (channels in turn); the "
        "whole window's traced forward with attention maps (7 channels) once, for comparison. 1-minute load average "
        f"{results['load_average_1m_before']:.1f} before, {results['load_average_1m_after']:.1f} after (a shared "
        "machine: the seconds move with the other work on it).",
        "",
        "Each cell: wall seconds, then in brackets the process's CPU seconds (both threads together), which "
        "depend much less on the other work: on an idle 2-core machine the wall time is at most about the CPU time.",
        "",
        "| setting | maps (layers, heads, P, keys) | first call | then, median | page with a run: both models, "
        "first / then | whole window, 7 channels |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for name, row in results["settings"].items():
        lines.append(
            f"| {name} | {tuple(row['shape'])} | {row['first_s']:.2f} s ({row['first_cpu_s']:.2f}) | "
            f"{row['median_s']:.2f} s ({row['median_cpu_s']:.2f}) | {2 * row['first_s']:.2f} / "
            f"{2 * row['median_s']:.2f} s ({2 * row['first_cpu_s']:.2f} / {2 * row['median_cpu_s']:.2f}) | "
            f"{row['whole_window_s']:.2f} s ({row['whole_window_cpu_s']:.2f}) |")
    lines += ["", "Scaled to the idle machine (each call's wall time x the float32 product rate measured just before "
              f"it / {IDLE_GFLOPS} GFLOP/s, the rate of this project's idle 2-core EPYC; an estimate, median): "
              + "; ".join(f"{name}: {row['idle_estimate_s']:.2f} s a channel, {2 * row['idle_estimate_s']:.2f} s "
                          f"for a run and its twin (rates measured {min(row['matmul_gflops']):.1f}-"
                          f"{max(row['matmul_gflops']):.1f} GFLOP/s)" for name, row in results["settings"].items())
              + "."]
    lines += ["", "A model's first call also computes its text prototypes (S x V x D = 1000 x 49152 x 576, 57 GFLOP; "
              "the other inspection pages share them for the run's model) and its prompt prefix's cache; a run and "
              "its untrained twin each have their own, once per server process. The page keeps each (model, window, channel) in the session, so changing the layer, the head or "
              "the view draws again without computing."]
    (HERE / "llm_inside.md").write_text("\n".join(lines) + "\n")
    (HERE / "llm_inside.json").write_text(json.dumps(results, indent=2) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
