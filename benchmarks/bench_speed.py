"""Record the speed benchmark: writes benchmarks/results_speed.json and results_speed.md.

    .venv/bin/python benchmarks/bench_speed.py [--steps 5] [--reference ~/Time-LLM [--reference_bf16]]

Same measurements as ``python -m timellm_core bench`` (see timellm_core/benchmarking/speed.py); this
script only saves them next to itself. Timings on a shared machine are noisy: the report states the
load average before and after, and speed-ups are ratios measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from timellm_core.benchmarking.speed import BenchSettings, _in_subprocess, machine_facts, run_benchmark  # noqa: E402
from timellm_core.benchmarking.report import to_markdown  # noqa: E402
from timellm_core.machine import cpu_has_bf16_instructions  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default)")
    parser.add_argument("--reference", metavar="DIR",
                        help="a checkout of the reference implementation: timed too, the ratios against it")
    parser.add_argument("--reference_bf16", action="store_true", help="also time the reference under bf16 autocast")
    parser.add_argument("--retrace_real", action="store_true",
                        help="re-measure only the traced window on the real SmolLM2-135M in the recorded results "
                             "(the other measurements use a random-weights backbone and stay as recorded)")
    args = parser.parse_args()
    if args.retrace_real:
        return retrace_real()
    settings = BenchSettings(steps=args.steps, warmup=args.warmup, rounds=args.rounds, threads=args.threads,
                             reference_dir=args.reference, reference_bf16=args.reference_bf16)
    results = run_benchmark(settings, progress=lambda message: print(message, flush=True))
    (HERE / "results_speed.json").write_text(json.dumps(results, indent=2) + "\n")
    report = to_markdown(results)
    (HERE / "results_speed.md").write_text(report)
    print(report)
    return 0


def retrace_real() -> int:
    """Replace the real-SmolLM2 traced-window entry of results_speed.json/.md with a new measurement.

    Kept apart from a full run because only that entry loads pretrained weights: the paths' timings
    run a randomly initialised backbone (the real model's shape and tokenizer), untouched by the fix
    of the converted SmolLM2 folder's missing input embeddings.
    """
    import os
    import time

    results = json.loads((HERE / "results_speed.json").read_text())
    settings = BenchSettings(**results["settings"])
    before = os.getloadavg()[0]
    entry = _in_subprocess("trace", settings, "smollm2-135m")
    bf16 = cpu_has_bf16_instructions()
    entry["remeasured"] = (f"{time.strftime('%Y-%m-%d')}, after the fix of SmolLM2's input embeddings, on "
                           f"{machine_facts()['cpu']} {'with' if bf16 else 'without'} AVX512-BF16 (not necessarily "
                           "the machine of the rest of this file); 1-minute load average "
                           f"{before:.1f} before, {os.getloadavg()[0]:.1f} after")
    results["trace_forward_one_window"] = [
        e for e in results["trace_forward_one_window"] if not str(e["backbone"]).startswith("smollm2-135m")] + [entry]
    (HERE / "results_speed.json").write_text(json.dumps(results, indent=2) + "\n")
    report = to_markdown(results)
    (HERE / "results_speed.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    from timellm_core.errors import TimeLLMError

    try:
        sys.exit(main())
    except TimeLLMError as error:  # e.g. a --reference folder that is not a checkout
        sys.exit(f"error: {error}")
