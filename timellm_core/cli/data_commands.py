"""``python -m timellm_core data list | info | check | fetch``: the dataset layer from the terminal."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from timellm_core.config import FEATURES, DataConfig
from timellm_core.errors import ConfigError, DataError


def register(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="list, describe, check and download datasets",
                                 description="Datasets: list, describe, check a CSV, download.")
    commands = data.add_subparsers(dest="data_command", metavar="ACTION")
    data.set_defaults(handler=lambda args: _usage(data))

    listing = commands.add_parser("list", help="registered datasets and whether their files are here")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=_list)

    info = commands.add_parser("info", help="rows, channels, target, frequency and windows per split")
    info.add_argument("--data", required=True, help="dataset name (ETTh1, Weather, Synthetic, custom, m4, ...)")
    info.add_argument("--data_path", help="CSV file (custom, or to override a registered file)")
    info.add_argument("--seq_len", type=int, help="input steps T (required except for m4)")
    info.add_argument("--pred_len", type=int, help="forecast steps (required except for m4)")
    info.add_argument("--percent", type=int, default=100, help="few-shot: share of the train split kept")
    info.add_argument("--features", default="M", choices=FEATURES, help="M, S or MS")
    info.add_argument("--target", default="OT", help="target column")
    info.add_argument("--seasonal_patterns", help="M4 only: Yearly, Quarterly, Monthly, Weekly, Daily, Hourly")
    info.add_argument("--fill_missing", action="store_true", help="fill NaNs forward instead of failing")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(handler=_info)

    check = commands.add_parser("check", help="read and check a CSV file (exit 2 with the problem)")
    check.add_argument("file", help="CSV file: a date column and numeric channels")
    check.add_argument("--seq_len", type=int, help="with --pred_len: count windows of a 7/1/2 split")
    check.add_argument("--pred_len", type=int)
    check.add_argument("--fill_missing", action="store_true", help="fill NaNs forward instead of failing")
    check.add_argument("--json", action="store_true", help="print JSON")
    check.set_defaults(handler=_check)

    fetch = commands.add_parser("fetch", help="download a dataset file from its canonical URL")
    fetch.add_argument("name", help="dataset name (ETTh1, ..., m4 with --seasonal_patterns)")
    fetch.add_argument("--seasonal_patterns", help="M4 only: which frequency's files")
    fetch.add_argument("--force", action="store_true", help="download even if the file is already here")
    fetch.set_defaults(handler=_fetch)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _list(args: argparse.Namespace) -> int:
    from timellm_core.data import list_datasets
    from timellm_core.data.locate import candidate_paths, find_dataset_file

    rows = []
    for spec in list_datasets():
        path = None
        if spec.kind == "csv":
            try:
                path = str(find_dataset_file(spec))
            except DataError:
                path = None
            available: bool | None = path is not None
        elif spec.kind == "m4":
            folders = [folder for folder in candidate_paths(spec.folder) if folder.is_dir()]
            path = str(folders[0]) if folders else None
            available = path is not None
        else:
            available = spec.kind == "synthetic"
        rows.append({"name": spec.name, "kind": spec.kind, "freq": spec.freq, "split_rule": spec.split_rule,
                     "target": spec.target, "period": spec.period, "channels": spec.channels,
                     "file": spec.relative_path, "url": spec.url, "size_bytes": spec.size_bytes,
                     "sha256": spec.sha256, "available": available, "path": path})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':<10} {'kind':<10} {'freq':<6} {'split':<11} {'channels':>8}  file / status")
    for row in rows:
        if row["kind"] == "csv":
            status = row["path"] if row["available"] else f"missing: data fetch {row['name']}"
            where = f"{row['file']}  ({status})"
        elif row["kind"] == "m4":
            where = "m4/<Pattern>-train.csv, -test.csv  (data info --data m4 --seasonal_patterns P)"
        elif row["kind"] == "synthetic":
            where = "generated in code"
        else:
            where = "your CSV: --data custom --data_path FILE"
        channels = "" if row["channels"] is None else str(row["channels"])
        print(f"{row['name']:<10} {row['kind']:<10} {row['freq'] or '-':<6} {row['split_rule']:<11} "
              f"{channels:>8}  {where}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from timellm_core.data import get_dataset_spec, prepare_data

    spec = get_dataset_spec(args.data)
    if spec.kind == "m4":
        return _info_m4(args)
    if args.seq_len is None or args.pred_len is None:
        raise ConfigError(f"data info --data {spec.name} needs --seq_len and --pred_len "
                          "(for example --seq_len 512 --pred_len 96).")
    config = DataConfig(name=spec.name, data_path=args.data_path, features=args.features, target=args.target,
                        percent=args.percent, seasonal_patterns=args.seasonal_patterns,
                        fill_missing=args.fill_missing)
    info = prepare_data(config, args.seq_len, args.pred_len).info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    names = info["channel_names"]
    shown = ", ".join(names[:8]) + (f", ... ({len(names) - 8} more)" if len(names) > 8 else "")
    print(f"{info['name']}: {info['rows']} rows, {info['start']} .. {info['end']}")
    print(f"source    {info['source']}")
    print(f"channels  {info['channels']} in ({shown}) -> {len(info['target_channels'])} out "
          f"(features {info['features']})")
    print(f"target    {info['target']}")
    print(f"freq      {info['freq']} (seasonal period {info['period']})")
    print(f"split     {info['split_rule']}; seq_len {info['seq_len']}, pred_len {info['pred_len']}, "
          f"percent {info['percent']}")
    for split in ("train", "val", "test"):
        start, end = info["borders"][split]
        print(f"  {split:<5}   rows [{start}, {end})  windows {info['windows'][split]}")
    for message in info["warnings"]:
        print(f"warning   {message}")
    return 0


def _info_m4(args: argparse.Namespace) -> int:
    from timellm_core.data import m4
    if not args.seasonal_patterns:
        raise ConfigError("data info --data m4 needs --seasonal_patterns: one of "
                          f"{', '.join(m4.M4_PATTERNS)}.")
    options: dict[str, Any] = {"data_path": args.data_path} if args.data_path else {}
    info = m4.describe_m4(args.seasonal_patterns, args.seq_len, args.pred_len, **options)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    for key, value in info.items():
        if isinstance(value, list) and key == "notes":
            for note in value:
                print(f"{'note':<20} {note}")
        else:
            print(f"{key:<20} {value}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from timellm_core.data import check_csv

    report = check_csv(args.file, seq_len=args.seq_len, pred_len=args.pred_len, fill_missing=args.fill_missing)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.summary())
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from timellm_core.data import fetch_dataset
    from timellm_core.data.locate import plan_fetch

    for item in plan_fetch(args.name, args.seasonal_patterns):
        if item.existing is not None and not args.force:
            print(f"{item.relative_path}: already present at {item.existing}")
    bar = _ProgressBar()
    paths = fetch_dataset(args.name, progress=bar, pattern=args.seasonal_patterns, force=args.force)
    bar.close()
    if bar.files:
        print(f"{args.name}: downloaded and checked; files: {', '.join(str(path) for path in paths)}")
    return 0


class _ProgressBar:
    """Download progress on stderr: redrawn in place on a terminal, a line every 10% otherwise."""

    def __init__(self) -> None:
        self.terminal = sys.stderr.isatty()
        self.files = 0
        self.last_done = -1
        self.last_mark = -1

    def __call__(self, done: int, total: int | None) -> None:
        if done < self.last_done or self.files == 0:  # a new file started
            self.close()
            self.files += 1
            self.last_mark = -1
        self.last_done = done
        step = 1 if self.terminal else 10
        if total:
            percent = min(100, done * 100 // total)
            mark, text = percent // step, f"file {self.files}: {done / 1e6:8.1f} / {total / 1e6:.1f} MB {percent:3d}%"
        else:
            mark, text = done // (1 << 20) // step, f"file {self.files}: {done / 1e6:8.1f} MB"
        if mark != self.last_mark:
            self.last_mark = mark
            print("\r" + text if self.terminal else text, end="" if self.terminal else "\n",
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.files and self.terminal:
            print(file=sys.stderr)
