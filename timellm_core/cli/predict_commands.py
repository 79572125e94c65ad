"""``python -m timellm_core predict``: a trained run forecasts the steps after the last row of its data or of a CSV."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from timellm_core.errors import DataError


def register(subparsers: argparse._SubParsersAction) -> None:
    predict = subparsers.add_parser(
        "predict", help="forecast the pred_len steps after the last row, with a trained run",
        description="Forecast the pred_len steps after the last row of the run's dataset, or of a CSV with the "
                    "same channels at the same step, scaled with the run's own scaler. Writes a CSV (a date column, "
                    "then one column per channel) and prints a summary.")
    predict.add_argument("--run", required=True, help="run folder or run id")
    predict.add_argument("--runs_dir", help="where run ids are looked up (default: runs/ or $TIMELLM_RUNS)")
    predict.add_argument("--data_path", help="a CSV with the run's channels (default: the run's own dataset)")
    predict.add_argument("--output", help="CSV file to write (default: the CSV goes to stdout, the summary to stderr)")
    predict.add_argument("--cutoff", help="forecast after this many rows, or after this timestamp, instead of after "
                                          "the last row; the rows after it are shown as the truth")
    predict.add_argument("--fill_missing", action="store_true",
                         help="fill missing cells of --data_path forward (default: as the run's data settings)")
    predict.set_defaults(handler=_predict)


def _predict(args: argparse.Namespace) -> int:
    from timellm_core.prediction import forecast_run_future

    result = forecast_run_future(args.run, args.runs_dir, data_path=args.data_path, cutoff=args.cutoff,
                                 fill_missing=True if args.fill_missing else None)
    if args.output is None:
        print(result.summary(), file=sys.stderr)
        sys.stdout.write(result.to_csv())
        return 0
    output = Path(args.output).expanduser()
    try:
        output.write_text(result.to_csv(), encoding="utf-8")
    except OSError as error:
        raise DataError(f"Could not write the forecast to {output}: {error.strerror or error}. Choose a writable "
                        "path with --output.") from error
    print(f"run: {result.run_id}")
    print(result.summary())
    print(f"written: {output}")
    return 0
