"""End-to-end measurement of a preset (``cpu-quick`` by default), written to benchmarks/cpu_quick.md (+ .json).

Runs ``python -m timellm_core train --preset NAME`` as a subprocess (so the wall time includes
start-up, data, backbone loading, training, every evaluation and the final test), evaluates the run
again in a fresh process (``evaluate --run``: a reloaded run must give the trained test MSE), then
scores the naive, seasonal-naive and DLinear baselines on the very same test windows, and records
the machine's load, because on a shared 2-core CPU the load decides the wall time.

    .venv/bin/python benchmarks/cpu_quick.py [--preset NAME] [--runs_dir DIR] [--output FILE] [--exact_only]

Unless ``--exact_only``, it then trains the same preset with ``--no_optimize`` and with ``--fast`` and
records each path's training-step time and test MSE next to the default (exact) path's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

BUDGET_S = 300


def _cpu_name() -> str:
    from timellm_core.benchmarking.speed import machine_facts

    return machine_facts()["cpu"]


def _load() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


# The same preset on each model path: the default exact path, the reference-style one, and --fast.
PATH_FLAGS = {"exact": [], "unoptimized": ["--no_optimize"], "fast": ["--fast"]}


def run_preset(runs_dir: Path, flags: list[str] | None = None,
               preset: str = "cpu-quick") -> tuple[Path, float, list[float], list[float]]:
    """Train the preset through the CLI; (run folder, wall seconds, load before, load after)."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    before = _load()
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "timellm_core", "train", "--preset", preset, "--runs_dir", str(runs_dir),
         *(flags or [])],
        cwd=PROJECT_ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = _load()
    if completed.returncode != 0:
        sys.stderr.write(completed.stdout + completed.stderr)
        raise SystemExit(f"{preset} failed with exit status {completed.returncode}")
    runs = sorted(runs_dir.iterdir(), key=lambda path: path.stat().st_mtime)
    return runs[-1], wall, before, after


def evaluate_in_fresh_process(run_dir: Path) -> float:
    """The run's test MSE as `evaluate --run` computes it in a new process (weights and backbone reloaded)."""
    completed = subprocess.run(
        [sys.executable, "-m", "timellm_core", "evaluate", "--run", str(run_dir), "--json", "--no_baselines"],
        cwd=PROJECT_ROOT, capture_output=True, text=True)
    if completed.returncode != 0:
        sys.stderr.write(completed.stderr)
        raise SystemExit(f"evaluate failed with exit status {completed.returncode}")
    return float(json.loads(completed.stdout)["model"]["test_mse"])


def summarise(run_dir: Path) -> dict:
    from timellm_core.baselines import evaluate_baselines
    from timellm_core.training.parts import prepare_data_for
    from timellm_core.training.runs import load_run

    info = load_run(run_dir)
    config = info.config
    steps = info.step_events()
    losses = [event["loss"] for event in steps]
    tenth = max(1, len(losses) // 10)
    epochs = info.epoch_events()
    data = prepare_data_for(config)
    training = config.training
    baselines = evaluate_baselines(data, max_eval_windows=training.max_eval_windows, seed=int(training.seed),
                                   max_train_windows=training.max_train_windows)
    full_dlinear = evaluate_baselines(data, max_eval_windows=training.max_eval_windows, seed=int(training.seed),
                                      names=("dlinear",))["dlinear"]
    started = next(e for e in info.events if e["type"] == "started")
    return {
        "run_dir": str(run_dir),
        "config": config.to_dict(),
        "status": info.status,
        "windows": started["windows"], "windows_used": started["windows_used"],
        "steps": len(losses),
        "first_steps_loss": float(np.mean(losses[:tenth])), "last_steps_loss": float(np.mean(losses[-tenth:])),
        "epochs": [{k: e.get(k) for k in ("epoch", "train_loss", "val_mse", "val_mae", "test_mse", "test_mae")}
                   for e in epochs],
        "test_metrics": info.test_metrics,
        "baselines": baselines,
        "dlinear_full_train": full_dlinear,
        "phase_seconds": _phases(info.events),
    }


def _phases(events: list[dict]) -> dict:
    """Seconds in training steps vs everything between (evaluation, checkpoints), from event times."""
    started = next(e for e in events if e["type"] == "started")["time"]
    finished = next(e for e in events if e["type"] == "finished")["time"]
    step_seconds = 0.0
    previous = started
    for event in events:
        if event["type"] == "step":
            step_seconds += event["time"] - previous
        if event["type"] in ("step", "epoch", "checkpoint", "started"):
            previous = event["time"]
    return {"started_to_finished": finished - started, "training_steps": step_seconds,
            "evaluation_and_saving": finished - started - step_seconds}


def write_report(result: dict, output: Path) -> None:
    metrics = result["test_metrics"]
    reproduce_flags = (f"--preset {result['preset']} --output benchmarks/{output.name}"
                       + ("" if result.get("paths") else " --exact_only"))
    config = result["config"]
    model, training, backbone = config["model"], config["training"], config["backbone"]
    lines = [
        f"# {result['preset']}, measured end to end",
        "",
        f"Command: `python -m timellm_core train --preset {result['preset']}` (wall time measured around the whole "
        f"process: start-up, data, backbone load, training, validation every epoch, final test).",
        "",
        f"- Machine: {result['cpu']} ({result['cpus']} CPUs visible), Python {result['python']}, "
        f"torch {result['torch']}, measured {result['date']}.",
        f"- Load average (1/5/15 min) before: {result['load_before']}, after: {result['load_after']} "
        "(other processes shared the 2 cores; the figures are for that load).",
        f"- Settings: {config['data']['name']} features {config['data']['features']}, backbone "
        f"{backbone['name']} ({backbone['llm_layers']} layers), seq_len {model['seq_len']}, pred_len "
        f"{model['pred_len']}, d_model {model['d_model']}, d_ff {model['d_ff']}, heads {model['n_heads']}, "
        f"prototypes {model['num_prototypes']}, batch {training['batch_size']}, lr {training['learning_rate']} "
        f"({training['lradj']}), {training['train_epochs']} epochs, train windows "
        f"{result['windows_used']['train']} of {result['windows']['train']}, val/test windows "
        f"{result['windows_used']['test']} of {result['windows']['test']} (seeded samples).",
        "",
        f"**Wall time: {result['wall_s']:.0f} s** (budget {BUDGET_S} s: "
        f"{'within' if result['wall_s'] <= BUDGET_S else 'OVER'}). Inside the run: "
        f"{result['phase_seconds']['training_steps']:.0f} s of training steps, "
        f"{result['phase_seconds']['evaluation_and_saving']:.0f} s of evaluation and checkpoints.",
        "",
        f"Training loss: mean of the first tenth of the {result['steps']} steps "
        f"{result['first_steps_loss']:.4f} -> last tenth {result['last_steps_loss']:.4f}; per epoch: "
        + ", ".join(f"{e['train_loss']:.4f}" for e in result["epochs"]) + ".",
        "",
        f"## Test metrics on the same {metrics['test_windows']} test windows (scaled space; original units "
        "in brackets)",
        "",
        "| forecaster | MSE | MAE |",
        "| --- | --- | --- |",
        f"| Time-LLM ({result['preset']}, best epoch {metrics.get('best_epoch')}) | {metrics['test_mse']:.4f} "
        f"({metrics['test_mse_original']:.3f}) | {metrics['test_mae']:.4f} ({metrics['test_mae_original']:.3f}) |",
    ]
    labels = {"naive": "naive (last value)", "seasonal_naive": "seasonal naive (period 24)",
              "dlinear": f"DLinear (same {result['windows_used']['train']} train windows)"}
    for name, values in result["baselines"].items():
        lines.append(f"| {labels.get(name, name)} | {values['mse']:.4f} ({values['mse_original']:.3f}) | "
                     f"{values['mae']:.4f} ({values['mae_original']:.3f}) |")
    full = result["dlinear_full_train"]
    lines += [
        f"| DLinear (all {result['windows']['train']} train windows) | {full['mse']:.4f} "
        f"({full['mse_original']:.3f}) | {full['mae']:.4f} ({full['mae_original']:.3f}) |",
        "",
        f"The run reloaded in a fresh process (`python -m timellm_core evaluate --run RUN`: weights and "
        f"backbone loaded again) gives test MSE {result['reloaded_test_mse']:.6f}, the trained run "
        f"{metrics['test_mse']:.6f} (relative difference "
        f"{abs(result['reloaded_test_mse'] - metrics['test_mse']) / metrics['test_mse']:.1e}).",
        "",
        "A few minutes of CPU training on a random sample of windows is a demonstration that the pipeline "
        "learns, not a reproduction of the paper's table (T=512, LLaMA-7B, full data, many epochs).",
        "",
        f"Reproduce: `.venv/bin/python benchmarks/cpu_quick.py {reproduce_flags}` "
        f"(writes this file and {output.with_suffix('.json').name}).",
        "",
    ]
    paths = result.get("paths")
    if paths:
        exact_steps = paths["exact"]["training_steps_s"]
        lines += [
            "## The same preset on each model path",
            "",
            "Each path trained the preset once, one after the other (flags: none, `--no_optimize`, `--fast`). "
            "Training steps = seconds inside the run spent in training steps (evaluation and saving excluded).",
            "",
            "| path | wall time (s) | training steps (s) | steps faster than unoptimised | test MSE |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        slow = paths["unoptimized"]["training_steps_s"]
        for name, row in paths.items():
            lines.append(f"| {name} | {row['wall_s']:.0f} | {row['training_steps_s']:.1f} | "
                         f"{slow / row['training_steps_s']:.2f}x | {row['test_mse']:.4f} |")
        lines += [
            "",
            f"The exact path's training steps take {exact_steps:.1f} s against {slow:.1f} s unoptimised; "
            "its test MSE equals the unoptimised path's up to rounding (same seed, same dropout draws), "
            "while fast mode's bf16 and compact prompt give a slightly different run.",
            "",
        ]
    output.write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs_dir", help="where the run folder goes (default: a temporary folder)")
    parser.add_argument("--output", default=str(PROJECT_ROOT / "benchmarks" / "cpu_quick.md"))
    parser.add_argument("--preset", default="cpu-quick", help="the preset to time (default cpu-quick)")
    parser.add_argument("--exact_only", action="store_true",
                        help="train the default path only (skip the unoptimised and fast runs, ~10 minutes)")
    args = parser.parse_args()
    import torch

    from timellm_core.training.runs import load_run

    runs_dir = Path(args.runs_dir) if args.runs_dir else Path(tempfile.mkdtemp(prefix="cpu-quick-"))
    run_dir, wall, before, after = run_preset(runs_dir / "exact", preset=args.preset)
    result = summarise(run_dir)
    result.update(preset=args.preset, reloaded_test_mse=evaluate_in_fresh_process(run_dir), wall_s=wall, load_before=before, load_after=after, cpu=_cpu_name(), cpus=os.cpu_count(),
                  python=platform.python_version(), torch=torch.__version__,
                  date=time.strftime("%Y-%m-%d %H:%M"))
    if not args.exact_only:
        result["paths"] = {"exact": {"wall_s": wall, "training_steps_s": result["phase_seconds"]["training_steps"],
                                     "test_mse": result["test_metrics"]["test_mse"]}}
        for name in ("unoptimized", "fast"):
            other_dir, other_wall, _, _ = run_preset(runs_dir / name, PATH_FLAGS[name], preset=args.preset)
            info = load_run(other_dir)
            result["paths"][name] = {"wall_s": other_wall, "training_steps_s": _phases(info.events)["training_steps"],
                                     "test_mse": info.test_metrics["test_mse"]}
        result["load_after_all_paths"] = _load()
    output = Path(args.output)
    write_report(result, output)
    output.with_suffix(".json").write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    print(output.read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
