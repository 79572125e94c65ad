"""Record the speed benchmark of issue 8: writes benchmarks/results_speed.json and results_speed.md.

    .venv/bin/python benchmarks/bench_speed.py [--steps 5]

Same measurements as ``python -m timellm_core bench`` (see timellm_core/model/benchmark.py); this
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

from timellm_core.model.benchmark import BenchSettings, run_benchmark  # noqa: E402
from timellm_core.model.benchmark_report import to_markdown  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default)")
    args = parser.parse_args()
    settings = BenchSettings(steps=args.steps, warmup=args.warmup, rounds=args.rounds, threads=args.threads)
    results = run_benchmark(settings, progress=lambda message: print(message, flush=True))
    (HERE / "results_speed.json").write_text(json.dumps(results, indent=2) + "\n")
    report = to_markdown(results)
    (HERE / "results_speed.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
