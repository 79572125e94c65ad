"""``bench``: speed and memory of the unoptimised, exact and fast paths, and of the reference code with
``--reference DIR`` (see timellm_core/benchmarking/speed.py)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bench", help="time the unoptimised, exact and fast paths (random SmolLM2-shaped backbone, CPU)",
        description="Train-step and eval-forward times (median after warm-up) and peak memory of the three "
                    "paths, each in a fresh process; the exact path's difference from the unoptimised one; "
                    "one traced ETTh1-shaped window. Takes several minutes on a laptop CPU. With --reference DIR "
                    "the reference implementation's own code is timed as one more path, and the speed-ups are "
                    "reported against it.")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--steps", type=int, default=5, help="measured steps per path (default 5, at least 1)")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured steps first in each process (default 1)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="fresh processes per path, the paths taking turns (default 3)")
    parser.add_argument("--llm_layers", type=int, default=6, help="layers of the SmolLM2-shaped backbone (default 6)")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--seq_len", type=int, default=512)
    parser.add_argument("--pred_len", type=int, default=96)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per measurement (default: torch's default, one per core)")
    parser.add_argument("--no-real", dest="include_real", action="store_false",
                        help="skip the traced window with the real SmolLM2-135M even when it is present")
    parser.add_argument("--reference", metavar="DIR",
                        help="a checkout of the reference implementation (github.com/KimMeen/Time-LLM): its "
                             "models/TimeLLM.py is timed too, on the same backbone, batch and settings, and the "
                             "speed-ups are reported against it")
    parser.add_argument("--reference_bf16", action="store_true",
                        help="with --reference: also time it under bf16 autocast, as its --use_amp would")
    parser.set_defaults(handler=_bench)


def _bench(args: argparse.Namespace) -> int:
    from timellm_core.benchmarking.speed import run_benchmark

    settings = settings_from_args(args)
    progress = None if args.json else (lambda message: print(message, file=sys.stderr, flush=True))
    results = run_benchmark(settings, include_real=args.include_real, progress=progress)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(format_results(results))
    return 0


def settings_from_args(args: argparse.Namespace):
    """The benchmark's settings from the command line; a ``ConfigError`` for a bad value or reference folder."""
    from timellm_core.benchmarking.reference_checkout import check_reference_checkout
    from timellm_core.benchmarking.speed import BenchSettings
    from timellm_core.errors import ConfigError

    if args.steps < 1 or args.rounds < 1 or args.warmup < 0 or (args.threads is not None and args.threads < 1):
        raise ConfigError("--steps, --rounds and --threads must be at least 1, and --warmup at least 0.")
    if args.reference_bf16 and not args.reference:
        raise ConfigError("--reference_bf16 times the reference code: give its checkout with --reference DIR.")
    reference = str(check_reference_checkout(args.reference)) if args.reference else None
    return BenchSettings(batch_size=args.batch_size, seq_len=args.seq_len, pred_len=args.pred_len,
                         llm_layers=args.llm_layers, steps=args.steps, warmup=args.warmup, rounds=args.rounds,
                         threads=args.threads, reference_dir=reference, reference_bf16=args.reference_bf16)


def format_results(results: dict[str, Any]) -> str:
    """A plain-text table of the benchmark results."""
    from timellm_core.benchmarking.report import to_markdown

    return to_markdown(results)
