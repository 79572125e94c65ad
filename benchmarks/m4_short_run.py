"""A short CPU run of Time-LLM on M4 next to naive, seasonal naive and Naive2 (sMAPE / MASE / OWA).

    .venv/bin/python benchmarks/m4_short_run.py                       # Hourly and Weekly, prints the table
    .venv/bin/python benchmarks/m4_short_run.py --write benchmarks/m4_results.md

The model follows the reference's M4 settings (preset ``m4-hourly``: patch_len 1, stride 1,
d_model 8, d_ff 32, SMAPE loss) with seq_len = 2 x horizon and pred_len = horizon for each
pattern; only the backbone depth and the number of epochs are cut down to fit a laptop CPU.
Every number is measured by this script; nothing is copied from elsewhere.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))
if "TIMELLM_DATA" not in os.environ and (PROJECT_ROOT.parent / "shared" / "datasets").is_dir():
    os.environ["TIMELLM_DATA"] = str(PROJECT_ROOT.parent / "shared" / "datasets")

import torch  # noqa: E402

from timellm_core.config import BackboneConfig, preset  # noqa: E402
from timellm_core.data import prepare_data  # noqa: E402
from timellm_core.data.m4 import m4_pattern  # noqa: E402

METHODS = (("naive", "Naive1"), ("seasonal_naive", "Seasonal naive"), ("naive2", "Naive2"))


def run_pattern(pattern: str, args: argparse.Namespace) -> dict:
    """Train on one pattern and return the model's and the benchmarks' scores with the run's facts."""
    from timellm_core.backbones import load_backbone
    from timellm_core.training.trainer import Trainer

    facts = m4_pattern(pattern)
    config = preset("m4-hourly")
    config.data.seasonal_patterns = facts.name
    config.model.seq_len, config.model.pred_len = facts.seq_len, facts.horizon
    config.backbone = BackboneConfig(name=args.backbone, llm_layers=args.llm_layers)
    config.model.num_prototypes = args.num_prototypes
    config.training.train_epochs = args.epochs
    config.training.max_train_windows = args.max_train_windows
    config.training.batch_size = args.batch_size
    config.training.test_each_epoch = False
    config.training.seed = args.seed
    config.training.device = "cpu"
    data = prepare_data(config.data, config.model.seq_len, config.model.pred_len)
    if hasattr(data, "set_seed"):
        data.set_seed(args.seed)
    backbone = load_backbone(config.backbone, device="cpu")
    steps = []
    started, cpu_started = time.perf_counter(), time.process_time()
    result = Trainer(config, data=data, backbone=backbone,
                     on_event=lambda event: steps.append(event) if event.get("type") == "step" else None).run()
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    return {"pattern": facts.name, "metrics": result.test_metrics, "seconds": seconds,
            "cpu_seconds": cpu_seconds, "steps": len(steps),
            "epochs": result.epochs_done, "best_epoch": result.best_epoch, "config": config,
            "series": len(data.series_ids), "train_windows": data.window_count("train")}


def render(results: list[dict], args: argparse.Namespace) -> str:
    """The markdown report: settings, then one table per pattern."""
    first = results[0]["config"]
    lines = [
        "# M4 short CPU run: Time-LLM vs naive, seasonal naive and Naive2",
        "",
        f"Measured with `benchmarks/m4_short_run.py` on {platform.processor() or platform.machine()} "
        f"({torch.get_num_threads()} torch threads), torch {torch.__version__}, CPU only.",
        "",
        "Settings: backbone "
        f"`{args.backbone}` (first {args.llm_layers} layers, frozen), patch_len {first.model.patch_len}, "
        f"stride {first.model.stride}, d_model {first.model.d_model}, d_ff {first.model.d_ff}, "
        f"n_heads {first.model.n_heads}, {first.model.num_prototypes} text prototypes; loss "
        f"{first.training.loss}, Adam lr {first.training.learning_rate} ({first.training.lradj}), "
        f"batch {first.training.batch_size}, up to {args.epochs} epoch(s) with early stopping on "
        f"validation MSE, seed {args.seed}. seq_len = 2 x horizon, pred_len = horizon. Training windows: "
        "one random cut per series per epoch from its last history_size x horizon points"
        + (f", at most {args.max_train_windows} per epoch" if args.max_train_windows else "")
        + "; validation: each series' last training horizon; test: the competition's test horizon of "
        "every series, forecast from the last seq_len training points.",
        "",
        "Scores over every series of the pattern (sMAPE in %, MASE at the pattern's frequency, OWA "
        "relative to Naive2, computed here; Naive2 reproduces the M4 paper's published figures).",
        "",
    ]
    for result in results:
        metrics = result["metrics"]
        lines += [
            f"## {result['pattern']} ({result['series']} series)",
            "",
            f"Training: {result['steps']} steps in {result['epochs']} epoch(s) (best epoch "
            f"{result['best_epoch']}), {result['seconds']:.0f} s wall clock ({result['cpu_seconds']:.0f} s of "
            "CPU time, on a machine shared with other jobs) including validation and the final test.",
            "",
            "| method | sMAPE | MASE | OWA |",
            "| --- | ---: | ---: | ---: |",
            f"| Time-LLM (this run) | {metrics['smape']:.3f} | {metrics['mase']:.3f} | {metrics['owa']:.3f} |",
        ]
        for key, label in METHODS:
            lines.append(f"| {label} | {metrics[key + '_smape']:.3f} | {metrics[key + '_mase']:.3f} | "
                         f"{metrics[key + '_owa']:.3f} |")
        lines.append("")
    lines += [
        "A run this short says little about Time-LLM's accuracy: the paper trains the full model for many "
        "epochs on a GPU. The table shows what the protocol and the metrics produce end to end, and the "
        "baselines any model should be read against.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patterns", nargs="+", default=["Hourly", "Weekly"])
    parser.add_argument("--backbone", default="smollm2-135m")
    parser.add_argument("--llm_layers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max_train_windows", type=int, default=None)
    parser.add_argument("--batch_size", type=int, default=24)
    parser.add_argument("--num_prototypes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2021)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--write", type=Path, help="markdown file to write the report to")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = [run_pattern(pattern, args) for pattern in args.patterns]
    report = render(results, args)
    print(report)
    if args.write:
        args.write.write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
