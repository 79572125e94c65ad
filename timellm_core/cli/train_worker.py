"""``python -m timellm_core.cli.train_worker RUN_DIR [--resume] [--parent PID]``: the app's training process.

The app (``ProcessTrainingJob``) creates the run folder and starts this; it trains the run with the
same Trainer as ``python -m timellm_core train`` and, once the run has finished, scores the
baselines on its test windows (``baselines.json``), so every page shows the comparison at once.
With ``--shuffle_test`` (the runs of ``ablate``) it also tests the trained model on the same windows
shuffled in time (``shuffle_test.json``).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from timellm_core.ablation.shuffle import run_shuffle_test
from timellm_core.comparison import compare_run
from timellm_core.errors import TimeLLMError
from timellm_core.training.runs import RunFolder
from timellm_core.training.worker import train_run


def record_comparison(run: RunFolder, trainer: Any) -> None:
    """baselines.json for a finished run; a failure here leaves the run finished (the pages offer a retry)."""
    try:
        compare_run(run.path, data=trainer.data)
    except (TimeLLMError, ValueError, RuntimeError) as error:
        print(f"Could not score the baselines for {run.run_id}: {error}", file=sys.stderr)


def record_shuffle_test(run: RunFolder, trainer: Any) -> None:
    """shuffle_test.json for a finished run, with the trained model still in memory."""
    try:
        run_shuffle_test(run.path, model=trainer.model, data=trainer.data)
    except (TimeLLMError, ValueError, RuntimeError) as error:
        print(f"Could not run the shuffled-input test for {run.run_id}: {error}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m timellm_core.cli.train_worker",
                                     description="Train one prepared run folder (the app starts this).")
    parser.add_argument("run_dir")
    parser.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    parser.add_argument("--parent", type=int, help="stop when this process (the app's server) is gone")
    parser.add_argument("--shuffle_test", action="store_true",
                        help="also test on the test windows shuffled in time (shuffle_test.json)")
    args = parser.parse_args(argv)

    def after_finish(run: RunFolder, trainer: Any) -> None:
        record_comparison(run, trainer)
        if args.shuffle_test:
            record_shuffle_test(run, trainer)

    return train_run(args.run_dir, resume=args.resume, parent_pid=args.parent, after_finish=after_finish)


if __name__ == "__main__":
    sys.exit(main())
