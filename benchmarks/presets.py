"""Every CPU preset trained with 3 seeds, end to end, against the baselines on its own test windows.

Writes benchmarks/presets.md (+ .json). For each preset and seed: ``python -m timellm_core train --preset
NAME --seed S`` as a subprocess (wall time around the whole process: start-up, data, backbone, training,
validation, the final test), then naive, seasonal naive and DLinear scored on the very same test windows
(DLinear fitted on the run's own training windows, and once more on every training window). The
machine's load is recorded around each run, because on a shared 2-core CPU the load decides the time.

    .venv/bin/python benchmarks/presets.py [--presets cpu-quick classroom qwen-cpu] [--seeds 2021 2022 2023]
                                           [--runs_dir DIR] [--output FILE] [--report_only] [--update]

``--update`` re-records only the presets named and keeps the others' recorded runs from the .json (each
run row carries its own date).

The summary (mean test MSE, median minutes, the baselines' mean MSE) is what the Train page shows next
to each preset: ``timellm_core/preset_expectations.py`` holds it, and a test checks the two agree.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))
sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))

from cpu_quick import run_preset, summarise  # noqa: E402

DEFAULT_PRESETS = ("cpu-quick", "classroom", "qwen-cpu")
DEFAULT_SEEDS = (2021, 2022, 2023)
DLINEAR_MARGIN = 1.10  # the classroom preset's target: within 10% of DLinear's test MSE


def run_one(preset: str, seed: int, runs_dir: Path) -> dict:
    run_dir, wall, before, after = run_preset(runs_dir / f"{preset}_seed{seed}", ["--seed", str(seed)], preset)
    summary = summarise(run_dir)
    metrics, baselines = summary["test_metrics"], summary["baselines"]
    return {
        "preset": preset, "seed": seed, "date": time.strftime("%Y-%m-%d"), "run_dir": str(run_dir),
        "wall_s": round(wall, 1),
        "load_before": before, "load_after": after, "steps": summary["steps"],
        "training_steps_s": round(summary["phase_seconds"]["training_steps"], 1),
        "test_mse": metrics["test_mse"], "test_mae": metrics["test_mae"], "best_epoch": metrics.get("best_epoch"),
        "test_windows": metrics["test_windows"], "train_windows": summary["windows_used"]["train"],
        "naive_mse": baselines["naive"]["mse"], "seasonal_naive_mse": baselines["seasonal_naive"]["mse"],
        "dlinear_mse": baselines["dlinear"]["mse"], "dlinear_all_train_mse": summary["dlinear_full_train"]["mse"],
        "config": summary["config"],
    }


def summarise_preset(rows: list[dict]) -> dict:
    def mean(key: str) -> float:
        return statistics.fmean(row[key] for row in rows)

    def spread(key: str) -> float:
        return statistics.stdev(row[key] for row in rows) if len(rows) > 1 else 0.0

    return {
        "preset": rows[0]["preset"], "seeds": [row["seed"] for row in rows],
        "test_mse_mean": mean("test_mse"), "test_mse_std": spread("test_mse"),
        "test_mae_mean": mean("test_mae"), "test_mae_std": spread("test_mae"),
        "naive_mse_mean": mean("naive_mse"), "seasonal_naive_mse_mean": mean("seasonal_naive_mse"),
        "dlinear_mse_mean": mean("dlinear_mse"), "dlinear_all_train_mse_mean": mean("dlinear_all_train_mse"),
        "minutes_median": statistics.median(row["wall_s"] for row in rows) / 60,
        "minutes_max": max(row["wall_s"] for row in rows) / 60,
        "beats_naive_every_seed": all(row["test_mse"] < row["naive_mse"] for row in rows),
        "beats_seasonal_naive_every_seed": all(row["test_mse"] < row["seasonal_naive_mse"] for row in rows),
        "ratio_to_dlinear": [row["test_mse"] / row["dlinear_mse"] for row in rows],
        "within_10pct_of_dlinear_every_seed": all(row["test_mse"] <= DLINEAR_MARGIN * row["dlinear_mse"]
                                                  for row in rows),
        "test_windows": rows[0]["test_windows"], "train_windows": rows[0]["train_windows"],
    }


def _settings(config: dict) -> str:
    data, backbone, model, training = config["data"], config["backbone"], config["model"], config["training"]
    target = f", target {data['target']}" if data["features"] != "M" else ""
    return (f"{data['name']} features {data['features']}{target}, {model['seq_len']} -> {model['pred_len']}, "
            f"{backbone['name']} at {backbone['llm_layers']} layers"
            f"{' in 4-bit NF4' if backbone.get('load_in_4bit') else ''}, d_model {model['d_model']}, d_ff "
            f"{model['d_ff']}, {model['num_prototypes']} prototypes, {model['prompt_style']} prompt, batch "
            f"{training['batch_size']}, lr {training['learning_rate']:g} ({training['lradj']}), "
            f"{training['train_epochs']} epoch(s), {training['max_train_windows'] or 'all'} train windows, "
            f"{training['max_eval_windows'] or 'all'} val/test windows{', fast mode' if model.get('fast') else ''}")


def _dates(record: dict) -> str:
    dates = sorted({row.get("date", record["date"]) for row in record["runs"]})
    return ", ".join(dates)


def write_report(record: dict, output: Path) -> None:
    machine = record["machine"]
    lines = [
        "# Presets, 3 seeds each, against the baselines on their own test windows",
        "",
        f"Machine: {machine['cpu']} ({machine['cpus']} CPUs visible), Python {machine['python']}, torch "
        f"{machine['torch']}, runs recorded {_dates(record)}. One run at a time; load average (1 min) before each run is in the "
        "table. Wall time: the whole `train` process (start-up, data, backbone load, training, validation, final "
        "test).",
        "",
        "Each seed draws its own sample of training and test windows, so each row's baselines are scored on "
        "that row's test windows; DLinear is fitted on the run's own training windows (and, in the last "
        "column, on every training window). MSE in the scaled space.",
        "",
        "## Summary",
        "",
        "| preset | minutes (median, max) | test MSE (mean ± sd) | naive | seasonal naive | DLinear | "
        "Time-LLM / DLinear | beats naive and seasonal naive |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for summary in record["summaries"]:
        ratios = ", ".join(f"{ratio:.2f}" for ratio in summary["ratio_to_dlinear"])
        beats = summary["beats_naive_every_seed"] and summary["beats_seasonal_naive_every_seed"]
        lines.append(
            f"| `{summary['preset']}` | {summary['minutes_median']:.1f}, {summary['minutes_max']:.1f} | "
            f"{summary['test_mse_mean']:.4f} ± {summary['test_mse_std']:.4f} | {summary['naive_mse_mean']:.4f} | "
            f"{summary['seasonal_naive_mse_mean']:.4f} | {summary['dlinear_mse_mean']:.4f} | {ratios} | "
            f"{'yes, every seed' if beats else 'NO'} |")
    lines += ["", "## Targets", "",
              "Every preset should beat naive and seasonal naive on its own test windows; `classroom` should come "
              f"within {DLINEAR_MARGIN - 1:.0%} of DLinear's test MSE on the same windows, in at most 10 minutes.", ""]
    for summary in record["summaries"]:
        runs = [row for row in record["runs"] if row["preset"] == summary["preset"]]
        count = len(runs)
        naive = sum(row["test_mse"] < row["naive_mse"] for row in runs)
        seasonal = sum(row["test_mse"] < row["seasonal_naive_mse"] for row in runs)
        within = sum(row["test_mse"] <= DLINEAR_MARGIN * row["dlinear_mse"] for row in runs)
        lines.append(f"- `{summary['preset']}`: beats naive on {naive} of {count} seeds, seasonal naive on {seasonal} "
                     f"of {count}; within {DLINEAR_MARGIN - 1:.0%} of DLinear on {within} of {count} (mean MSE "
                     f"{summary['test_mse_mean'] / summary['dlinear_mse_mean']:.2f}x DLinear's); slowest run "
                     f"{summary['minutes_max']:.1f} min.")
    lines += ["", "## Settings", ""]
    for name, settings in record["settings"].items():
        lines.append(f"- `{name}`: {settings}.")
    lines += [
        "",
        "## Runs",
        "",
        "| preset | seed | date | wall (s) | load before | steps | test MSE | test MAE | naive | seasonal naive | DLinear "
        "| DLinear, all train windows |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in record["runs"]:
        lines.append(
            f"| `{row['preset']}` | {row['seed']} | {row.get('date', record['date'])} | {row['wall_s']:.0f} | "
            f"{row['load_before'][0]:.2f} | {row['steps']} | "
            f"{row['test_mse']:.4f} | {row['test_mae']:.4f} | {row['naive_mse']:.4f} | "
            f"{row['seasonal_naive_mse']:.4f} | {row['dlinear_mse']:.4f} | {row['dlinear_all_train_mse']:.4f} |")
    lines += [
        "",
        f"Reproduce: `.venv/bin/python benchmarks/presets.py --presets {' '.join(record['presets'])}` (writes this "
        f"file and {output.with_suffix('.json').name}); `--update --presets NAME` re-records one preset and keeps the "
        "others' recorded runs.",
        "",
    ]
    output.write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report_only", action="store_true",
                        help="rewrite the .md from the recorded .json without training")
    parser.add_argument("--presets", nargs="+", default=list(DEFAULT_PRESETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(DEFAULT_SEEDS))
    parser.add_argument("--runs_dir", help="where the run folders go (default: a temporary folder)")
    parser.add_argument("--output", default=str(PROJECT_ROOT / "benchmarks" / "presets.md"))
    parser.add_argument("--update", action="store_true",
                        help="keep the recorded runs of the presets not named (from the .json)")
    args = parser.parse_args()
    import torch

    from timellm_core.machine import cpu_model_name

    output = Path(args.output)
    if args.report_only:
        write_report(json.loads(output.with_suffix(".json").read_text(encoding="utf-8")), output)
        print(output.read_text(encoding="utf-8"))
        return
    runs_dir = Path(args.runs_dir) if args.runs_dir else Path(tempfile.mkdtemp(prefix="presets-"))
    record = {"date": time.strftime("%Y-%m-%d"), "presets": list(args.presets), "seeds": args.seeds, "runs": [],
              "machine": {"cpu": cpu_model_name(), "cpus": os.cpu_count(), "python": platform.python_version(),
                          "torch": torch.__version__}}
    if args.update:
        recorded = json.loads(output.with_suffix(".json").read_text(encoding="utf-8"))
        kept = [name for name in recorded["presets"] if name not in args.presets]
        record["presets"] = kept + [name for name in args.presets]
        record["runs"] = [dict(row, date=row.get("date", recorded["date"])) for row in recorded["runs"]
                          if row["preset"] in kept]
    for preset in args.presets:
        for seed in args.seeds:
            row = run_one(preset, seed, runs_dir)
            record["runs"].append(row)
            print(f"{preset} seed {seed}: {row['wall_s']:.0f} s, test MSE {row['test_mse']:.4f} (naive "
                  f"{row['naive_mse']:.4f}, seasonal naive {row['seasonal_naive_mse']:.4f}, DLinear "
                  f"{row['dlinear_mse']:.4f})", flush=True)
    record["summaries"] = [summarise_preset([row for row in record["runs"] if row["preset"] == preset])
                           for preset in record["presets"]]
    record["settings"] = {preset: _settings(next(row["config"] for row in record["runs"] if row["preset"] == preset))
                          for preset in record["presets"]}
    output.with_suffix(".json").write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
    write_report(record, output)
    print(output.read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
