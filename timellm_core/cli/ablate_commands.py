"""``python -m timellm_core ablate --preset NAME [--seeds K] [--modes frozen,random,...]``: the ablation study.

Trains the preset once per llm_mode and seed (each run in a training process of its own, as the app
does), tests each run plainly and with its inputs shuffled in time, and prints the comparison table;
the table also goes to ``RUNS/studies/<study id>/study.json`` and ``study.md``. Every flag of
``train`` (except ``--llm_mode`` and ``--resume``) adjusts the preset for all runs alike.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tqdm import tqdm

from timellm_core.ablation.study import DEFAULT_MODES, STUDIES_FOLDER, STUDY_MARKDOWN, plan_study, run_study
from timellm_core.ablation.table import ModeRow, RunMeasures, text_table
from timellm_core.cli.train_commands import _preflight
from timellm_core.config import PRESETS
from timellm_core.errors import ConfigError
from timellm_core.training.progress import ProgressView
from timellm_core.training.reference_flags import add_extra_flags, add_reference_flags, config_from_flags
from timellm_core.training.runs import resolve_runs_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    ablate = subparsers.add_parser(
        "ablate", help="the ablation study of Tan et al. (2024): every llm_mode on one preset, plain and shuffled",
        description="Train a preset once per llm_mode and seed, test each run plainly and with every input window "
                    "shuffled in time, and print mode, test MSE/MAE (mean and spread over seeds), shuffled MSE "
                    "increase, trainable parameters, seconds per step and peak memory. Train flags adjust the preset "
                    "for every run.")
    study = ablate.add_argument_group("the study")
    study.add_argument("--seeds", type=int, default=1, help="seeds per mode: the preset's seed, +1, ... (default 1)")
    study.add_argument("--modes", default=",".join(DEFAULT_MODES),
                       help=f"comma-separated llm_modes (default {','.join(DEFAULT_MODES)})")
    add_reference_flags(ablate)
    add_extra_flags(ablate)
    ablate.set_defaults(handler=_ablate)


class _StudyPrinter:
    """One tqdm bar per run (0-100 %, its phase), redrawn only when either changes; then a line with its result."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.run_id: str | None = None
        self.shown: tuple[int, str] | None = None

    def progress(self, run: Any, number: int, total: int, view: ProgressView) -> None:
        if run.run_id != self.run_id:
            self.close()
            self.run_id = run.run_id
            self.bar = tqdm(total=100, dynamic_ncols=True, file=sys.stderr, bar_format="{desc} {percentage:3.0f}%|{bar}|")
        percent = int(round(view.fraction * 100))
        if (percent, view.phase) != self.shown:
            self.shown = (percent, view.phase)
            self.bar.set_description_str(f"[{number}/{total}] {run.mode} seed {run.seed}: {view.phase}", refresh=False)
            self.bar.update(percent - self.bar.n)

    def done(self, run: Any, measures: RunMeasures) -> None:
        self.close()
        if measures.status != "finished":
            print(f"{run.mode} seed {run.seed}: {measures.status} ({measures.run_id})", file=sys.stderr)
            return
        shuffled = (f", shuffled MSE {measures.shuffled_mse_increase_pct:+.1f}%"
                    if measures.shuffled_mse_increase_pct is not None else "")
        print(f"{run.mode} seed {run.seed}: test MSE {measures.test_mse:.4f} MAE {measures.test_mae:.4f}{shuffled}",
              file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar, self.run_id, self.shown = None, None, None


def _ablate(args: argparse.Namespace) -> int:
    if not args.preset:
        raise ConfigError(f"ablate needs --preset NAME (one of {', '.join(PRESETS)}); other flags adjust it.")
    if args.llm_mode is not None:
        raise ConfigError("ablate trains every mode in --modes: leave out --llm_mode (e.g. --modes frozen,none).")
    if args.resume is not None:
        raise ConfigError("ablate starts a new study; to continue one run, use `python -m timellm_core train --resume "
                          "RUN`.")
    if int(args.itr or 1) != 1:
        raise ConfigError("ablate repeats runs with --seeds K, not --itr.")
    config, notes = config_from_flags(args)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    _preflight(config)  # a missing dataset or backbone stops here, before any folder exists
    plan = plan_study(config, args.preset, args.modes, args.seeds, args.runs_dir)
    print(f"study {plan.study_id}: {len(plan.modes)} modes x {len(plan.seeds)} seeds = {len(plan.runs())} runs "
          f"({', '.join(plan.modes)}; seeds {', '.join(map(str, plan.seeds))})", file=sys.stderr)
    printer = _StudyPrinter()
    try:
        record = run_study(plan, args.runs_dir, on_progress=printer.progress, on_done=printer.done)
    finally:
        printer.close()
    rows = [ModeRow(**values) for values in record["table"]]
    folder = resolve_runs_dir(args.runs_dir) / STUDIES_FOLDER / plan.study_id
    print(text_table(rows))
    print(f"(test MSE/MAE in scaled space, mean ± std over {len(plan.seeds)} seed(s); shuffled +%: growth of the "
          "test error with every input window shuffled in time)")
    print(f"study: {folder / STUDY_MARKDOWN}")
    return 0 if all(values["status"] == "finished" for values in record["runs"]) else 1
