"""``python -m timellm_core train | evaluate | runs``: training from the terminal with the reference's flags.

``train`` accepts every flag of the reference ``run_main.py`` (see ``training/reference_flags.py``),
so the reference's and the Qwen seed's command lines run unchanged apart from paths; it also runs
under ``accelerate launch --multi_gpu -m timellm_core train ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from timellm_core.errors import RunError


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser(
        "train", help="train Time-LLM (accepts the reference run_main.py flags)",
        description="Train Time-LLM's reprogramming layers on a frozen LLM. Accepts every flag of the "
                    "reference run_main.py; unused ones are marked so.")
    from timellm_core.training.reference_flags import add_extra_flags, add_reference_flags

    add_reference_flags(train)
    add_extra_flags(train)
    train.set_defaults(handler=_train)

    evaluate = subparsers.add_parser("evaluate", help="test a run's best weights again, next to the baselines")
    evaluate.add_argument("--run", required=True, help="run folder or run id")
    evaluate.add_argument("--runs_dir", help="where run ids are looked up (default: runs/ or $TIMELLM_RUNS)")
    evaluate.add_argument("--max_eval_windows", help="test windows: 'all', a number, or (default) the run's setting")
    evaluate.add_argument("--no_baselines", action="store_true", help="skip naive, seasonal naive and DLinear")
    evaluate.add_argument("--json", action="store_true", help="print JSON")
    evaluate.set_defaults(handler=_evaluate)

    runs = subparsers.add_parser("runs", help="list training runs on disk")
    actions = runs.add_subparsers(dest="runs_command", metavar="ACTION")
    runs.set_defaults(handler=lambda args: (runs.print_help(), 2)[1])
    listing = actions.add_parser("list", help="every run, newest first")
    listing.add_argument("--runs_dir", help="default: runs/ or $TIMELLM_RUNS")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=_list_runs)


# --- train -----------------------------------------------------------------------------------------

class _ProgressPrinter:
    """Turns trainer events into a tqdm bar and one line per epoch (main process only)."""

    def __init__(self) -> None:
        self.bar: Any = None

    def __call__(self, event: dict[str, Any]) -> None:
        from tqdm import tqdm

        kind = event["type"]
        if kind in ("started", "resumed"):
            self.bar = tqdm(total=event["total_steps"], initial=event.get("global_step", 0), unit="step",
                            dynamic_ncols=True, file=sys.stderr)
            if kind == "resumed":
                self.bar.write(f"resumed after epoch {event['from_epoch']}")
        elif kind == "step" and self.bar is not None:
            self.bar.update(event["global_step"] - self.bar.n)
            self.bar.set_postfix(epoch=event["epoch"], loss=f"{event['loss']:.4f}", lr=f"{event['lr']:.2e}")
        elif kind == "epoch":
            self._write(f"epoch {event['epoch']}: train loss {_fmt(event['train_loss'])} | val MSE "
                        f"{_fmt(event['val_mse'])} MAE {_fmt(event['val_mae'])} | test MSE {_fmt(event['test_mse'])} "
                        f"MAE {_fmt(event['test_mae'])} | lr {event['lr']:.3g}")
        elif kind == "early_stop":
            self._write(f"early stopping after epoch {event['epoch']} (best epoch {event.get('best_epoch')})")
        elif kind in ("finished", "failed", "cancelled") and self.bar is not None:
            self.bar.close()
            self.bar = None

    def _write(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, file=sys.stderr)


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}"


def _is_main_process() -> bool:
    # Under `accelerate launch` every process runs this command; only rank 0 creates the run folder.
    return int(os.environ.get("RANK", "0")) == 0


def _train(args: argparse.Namespace) -> int:
    from timellm_core.training.reference_flags import config_from_flags, run_name
    from timellm_core.training.runs import RunFolder, find_run
    from timellm_core.training.trainer import Trainer

    if args.resume:
        folder = RunFolder.open(find_run(args.resume, args.runs_dir))
        print(f"resuming {folder.path} with its saved settings", file=sys.stderr)
        result = _run_trainer(Trainer(folder.config(), run=folder, on_event=_ProgressPrinter(), resume=True), folder)
        return _report(result)
    config, notes = config_from_flags(args)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    data = _preflight(config)
    iterations = max(1, int(args.itr or 1))
    status = 0
    for iteration in range(iterations):
        current = config.copy()
        current.training.seed = int(config.training.seed) + iteration
        folder = None
        if _is_main_process():
            folder = RunFolder.create(current, args.runs_dir, name=run_name(args, iteration),
                                      cli={"argv": sys.argv[1:], "model_id": args.model_id,
                                           "model_comment": args.model_comment, "des": args.des})
            print(f"run folder: {folder.path}", file=sys.stderr)
        result = _run_trainer(Trainer(current, run=folder, data=data, on_event=_ProgressPrinter()), folder)
        status = _report(result)
        if status:
            break
    return status


def _preflight(config: Any) -> Any:
    """Check the dataset and the backbone before a run folder exists, so a typo leaves nothing behind.

    Returns the prepared data, which the trainer then reuses instead of reading the CSV again.
    """
    from timellm_core.backbones.catalogue import resolve_backbone_spec
    from timellm_core.backbones.loading import weights_source
    from timellm_core.training.parts import prepare_data_for

    config.validate()
    spec = resolve_backbone_spec(config.backbone.name)
    if not spec.tiny:
        weights_source(spec)  # BackboneError saying how to fetch it
    return prepare_data_for(config)


def _run_trainer(trainer: Any, folder: Any) -> Any:
    try:
        return trainer.run()
    except KeyboardInterrupt:
        if folder is not None:
            print(f"\nstopped; resume with: python -m timellm_core train --resume {folder.path}", file=sys.stderr)
        raise


def _report(result: Any) -> int:
    if not _is_main_process():
        return 0
    if result.status != "finished":
        print(f"run {result.status} after {result.epochs_done} epoch(s): {result.run_dir}")
        return 1
    metrics = result.test_metrics or {}
    print(f"run folder: {result.run_dir}")
    print(f"test ({metrics.get('test_windows')} windows, best epoch {metrics.get('best_epoch')}): "
          f"MSE {metrics['test_mse']:.4f}  MAE {metrics['test_mae']:.4f}  (scaled); "
          f"MSE {metrics['test_mse_original']:.4f}  MAE {metrics['test_mae_original']:.4f}  (original units)")
    for key in ("smape", "mase", "owa"):
        if key in metrics:
            print(f"{key}: {metrics[key]:.4f}")
    _print_paper_comparison(result.run_dir, metrics)
    return 0


def _print_paper_comparison(run_dir: Any, metrics: dict) -> None:
    """The published figure for the run's dataset and horizon, and what the run does differently."""
    from timellm_core.paper_results import compare_with_paper
    from timellm_core.training.runs import load_run

    info = load_run(run_dir)
    comparison = compare_with_paper(info.config, metrics, info.windows_total) if info.config else None
    if comparison is not None:
        print(comparison.sentence())


# --- evaluate ----------------------------------------------------------------------------------------

def _parse_limit(text: str | None) -> int | None | str:
    if text is None:
        return "config"
    if str(text).lower() == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        raise RunError(f"--max_eval_windows must be 'all' or a number, not {text!r}.") from None
    if value < 1:
        raise RunError("--max_eval_windows must be at least 1.")
    return value


def _evaluate(args: argparse.Namespace) -> int:
    from timellm_core.baselines import evaluate_baselines
    from timellm_core.comparison import compare_run
    from timellm_core.training.restore import evaluate_run, load_run_model
    from timellm_core.training.runs import find_run, load_run

    path = find_run(args.run, args.runs_dir)
    info = load_run(path)
    if info.config is None:
        raise RunError(f"The run {info.run_id} cannot be evaluated: {info.problem}")
    limit = _parse_limit(args.max_eval_windows)
    model, data = load_run_model(path)
    metrics = evaluate_run(path, model=model, data=data, max_eval_windows=limit)
    training = info.config.training
    effective_limit = training.max_eval_windows if limit == "config" else limit
    if args.no_baselines:
        baselines = {}
    elif limit == "config":  # the run's own test windows: the comparison kept in its folder, made once
        stored = info.baselines or compare_run(path, data=data)
        baselines = stored["forecasters"]
    else:
        baselines = evaluate_baselines(data, max_eval_windows=effective_limit, seed=int(training.seed),
                                       max_train_windows=training.max_train_windows)
    if args.json:
        print(json.dumps({"run": str(path), "model": metrics, "baselines": baselines}, indent=2, default=str))
        return 0
    print(f"run: {path}")
    m4 = [key for key in ("smape", "mase", "owa") if key in metrics]  # M4 runs add the competition's scores
    header = f"{'forecaster':<16}{'MSE':>12}{'MAE':>10}{'MSE (orig)':>14}{'MAE (orig)':>14}"
    print(header + "".join(f"{key.upper():>10}" for key in m4))
    rows = [("Time-LLM", {"mse": metrics["test_mse"], "mae": metrics["test_mae"],
                          "mse_original": metrics["test_mse_original"], "mae_original": metrics["test_mae_original"],
                          **{key: metrics[key] for key in m4}})]
    rows += list(baselines.items())
    for name, values in rows:
        print(f"{name:<16}{values['mse']:>12.4f}{values['mae']:>10.4f}{values['mse_original']:>14.4f}"
              f"{values['mae_original']:>14.4f}" + "".join(f"{values.get(key, float('nan')):>10.4f}" for key in m4))
    print(f"({metrics['test_windows']} of {metrics['test_windows_total']} test windows; scaled space unless 'orig')")
    _print_paper_comparison(path, metrics)
    return 0


# --- runs list ---------------------------------------------------------------------------------------

def _list_runs(args: argparse.Namespace) -> int:
    from timellm_core.training.runs import list_runs, resolve_runs_dir

    runs = list_runs(args.runs_dir)
    if args.json:
        print(json.dumps([run.summary() for run in runs], indent=2, default=str))
        return 0
    if not runs:
        print(f"no runs in {resolve_runs_dir(args.runs_dir)}")
        return 0
    print(f"{'run id':<52}{'status':<12}{'data':<10}{'epochs':>7}{'best val':>10}{'test MSE':>10}")
    for run in runs:
        summary = run.summary()
        print(f"{run.run_id[:51]:<52}{run.status:<12}{str(summary['data'])[:9]:<10}{summary['epochs_done']:>7}"
              f"{_fmt(summary['best_val_mse']):>10}{_fmt(summary['test_mse']):>10}")
    return 0
