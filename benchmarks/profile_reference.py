"""Where a train step and an eval forward spend their work: the reference code against our paths.

    .venv/bin/python benchmarks/profile_reference.py --reference /path/to/Time-LLM [--paths reference unoptimized]

Each path runs in a process of its own (the benchmark's settings, ``--threads`` torch threads): one
unmeasured train step, then one train step and one eval forward under ``torch.profiler``. Printed
per path and phase: the operators with the most self CPU time, with their call counts, input shapes
and FLOPs (matrix products), and the total FLOPs. On a shared machine the seconds move with the
load; the call counts, shapes and FLOPs do not, so compare those first.

``--counters N`` runs N train steps and N eval forwards per path without the profiler and prints,
for each, the process's user and system CPU seconds and its minor page faults (``getrusage``):
CPU seconds move less with other programs' load than wall time does, and page faults count the
memory a step takes fresh from the system.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from timellm_core.benchmarking.speed import BenchSettings, _build, _eval_step, _train_step, bench_batch  # noqa: E402


def _reference_phases(settings: BenchSettings, path: str):
    from timellm_core.benchmarking.reference_speed import (
        build_reference_model, reference_eval_step, reference_inputs, reference_train_step)

    model, _ = build_reference_model(settings, settings.reference_dir)
    batch = reference_inputs(settings)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    return (model, lambda: reference_train_step(model, optimizer, batch, settings.pred_len, path),
            lambda: reference_eval_step(model, batch, path))


def _our_phases(settings: BenchSettings, path: str):
    from timellm_core.training.optimizer import make_adam

    model, _ = _build(settings, path)
    x, y = bench_batch(settings)
    optimizer = make_adam(model.trainable_parameters(), lr=1e-3)
    return model, lambda: _train_step(model, optimizer, x, y), lambda: _eval_step(model, x)


def profile_path(settings: BenchSettings, path: str, rows: int) -> dict:
    make = _reference_phases if path.startswith("reference") else _our_phases
    model, train_step, eval_step = make(settings, path)
    model.train()
    train_step()  # warm-up: lazy initialisations, first allocations
    result = {}
    for phase, run, mode in (("train step", train_step, True), ("eval forward", eval_step, False)):
        model.train(mode)
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True, with_flops=True) as profiler:
            seconds = run()
        events = profiler.key_averages(group_by_input_shape=True)
        top = sorted(events, key=lambda event: event.self_cpu_time_total, reverse=True)[:rows]
        total_self = sum(event.self_cpu_time_total for event in events)
        result[phase] = {
            "wall_s": seconds, "self_cpu_s": total_self / 1e6,
            "gflop": sum(event.flops for event in events) / 1e9,
            "top": [{"op": event.key, "calls": event.count, "self_cpu_s": event.self_cpu_time_total / 1e6,
                     "share": event.self_cpu_time_total / max(total_self, 1), "gflop": event.flops / 1e9,
                     "shapes": str(event.input_shapes)[:110]} for event in top],
            "ops_by_name": _by_name(events),
        }
    return result


def count_path(settings: BenchSettings, path: str, repeats: int) -> dict:
    """Wall, user and system CPU seconds and minor page faults of each train step and eval forward."""
    make = _reference_phases if path.startswith("reference") else _our_phases
    model, train_step, eval_step = make(settings, path)
    model.train()
    train_step()  # warm-up
    result = {}
    for phase, run, mode in (("train step", train_step, True), ("eval forward", eval_step, False)):
        model.train(mode)
        samples = []
        for _ in range(repeats):
            before = resource.getrusage(resource.RUSAGE_SELF)
            wall = run()
            after = resource.getrusage(resource.RUSAGE_SELF)
            samples.append({"wall_s": wall, "user_s": after.ru_utime - before.ru_utime,
                            "sys_s": after.ru_stime - before.ru_stime,
                            "minor_faults": after.ru_minflt - before.ru_minflt})
        result[phase] = samples
    return result


def _by_name(events) -> dict[str, dict]:
    totals: dict[str, dict] = {}
    for event in events:
        entry = totals.setdefault(event.key, {"calls": 0, "self_cpu_s": 0.0, "gflop": 0.0})
        entry["calls"] += event.count
        entry["self_cpu_s"] += event.self_cpu_time_total / 1e6
        entry["gflop"] += event.flops / 1e9
    return dict(sorted(totals.items(), key=lambda item: -item[1]["self_cpu_s"]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", help="a checkout of the reference implementation")
    parser.add_argument("--paths", nargs="+", default=["reference", "unoptimized"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rows", type=int, default=25)
    parser.add_argument("--json", help="also write the profiles to this file")
    parser.add_argument("--counters", type=int, default=0,
                        help="instead of profiling: this many steps per phase with CPU seconds and page faults")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    settings = BenchSettings(threads=args.threads, reference_dir=args.reference)
    if args.worker:
        torch.set_num_threads(args.threads)
        measured = (count_path(settings, args.worker, args.counters) if args.counters
                    else profile_path(settings, args.worker, args.rows))
        print(json.dumps(measured))
        return 0
    profiles = {}
    for path in args.paths:
        print(f"profiling {path} ...", file=sys.stderr, flush=True)
        command = [sys.executable, __file__, "--worker", path, "--threads", str(args.threads), "--rows",
                   str(args.rows), "--counters", str(args.counters)] + (
                      ["--reference", args.reference] if args.reference else [])
        done = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ))
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            return 1
        profiles[path] = json.loads(done.stdout.strip().splitlines()[-1])
    if args.json:
        Path(args.json).write_text(json.dumps({"settings": dataclasses.asdict(settings), "profiles": profiles},
                                              indent=1))
    if args.counters:
        print("| path | phase | wall s | user CPU s | system CPU s | minor page faults |\n| --- | --- | ---: | ---: | ---: | ---: |")
        for path, phases in profiles.items():
            for phase, samples in phases.items():
                for sample in samples:
                    print(f"| {path} | {phase} | {sample['wall_s']:.2f} | {sample['user_s']:.2f} | "
                          f"{sample['sys_s']:.2f} | {sample['minor_faults']} |")
        return 0
    for path, phases in profiles.items():
        for phase, data in phases.items():
            print(f"\n## {path}: {phase} ({data['wall_s']:.2f} s wall, {data['self_cpu_s']:.2f} s self CPU, "
                  f"{data['gflop']:.0f} GFLOP in matrix products)\n")
            print("| op | calls | self CPU s | share | GFLOP | input shapes |\n| --- | ---: | ---: | ---: | ---: | --- |")
            for row in data["top"]:
                print(f"| {row['op']} | {row['calls']} | {row['self_cpu_s']:.3f} | {row['share']:.1%} | "
                      f"{row['gflop']:.1f} | {row['shapes']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
