"""The reference ``run_main.py`` flags, with their names, types and defaults, mapped onto a RunConfig.

Every flag of the reference is accepted so its command lines (and the Qwen seed's) run unchanged.
Flags this implementation has no use for are accepted and listed as unused in ``--help``.

Precedence: a flag given on the command line > the ``--preset`` > the reference's default. Two
defaults differ on purpose: ``--model`` (the reference declares ``Autoformer`` but requires the
flag; here only TimeLLM exists) and ``--num_workers`` (the reference's 10 worker processes only add
start-up time for in-memory windows; 0 here).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from timellm_core.config import LLM_MODES, PRESETS, PROMPT_STYLES, RunConfig, preset
from timellm_core.errors import ConfigError

_UNUSED = "accepted for compatibility, unused"


@dataclass(frozen=True)
class Flag:
    name: str
    type: Any  # int | float | str | "store_true"
    default: Any  # the reference's default
    help: str


REFERENCE_FLAGS: tuple[Flag, ...] = (
    Flag("task_name", str, "long_term_forecast", "long_term_forecast or short_term_forecast (M4)"),
    Flag("is_training", int, 1, "1 trains; 0 is refused (use `evaluate --run DIR` to test a saved run)"),
    Flag("model_id", str, "test", "names the run folder (with model_comment)"),
    Flag("model_comment", str, "none", "names the run folder (with model_id)"),
    Flag("model", str, "TimeLLM", "TimeLLM only (the reference declares Autoformer but requires the flag)"),
    Flag("seed", int, 2021, "seeds torch, numpy, random and the data order"),
    Flag("data", str, "ETTm1", "ETTh1, ETTh2, ETTm1, ETTm2, custom (root_path/data_path), m4, or a registry name"),
    Flag("root_path", str, "./dataset", "folder of the data file"),
    Flag("data_path", str, "ETTh1.csv", "data file name inside root_path"),
    Flag("features", str, "M", "M: all in, all out; S: target only; MS: all in, target out"),
    Flag("target", str, "OT", "target column for S and MS"),
    Flag("loader", str, "modal", _UNUSED),
    Flag("freq", str, "h", f"{_UNUSED} (the dataset registry knows each frequency)"),
    Flag("checkpoints", str, "./checkpoints/", f"{_UNUSED} (runs go to --runs_dir)"),
    Flag("seq_len", int, 96, "input steps T"),
    Flag("label_len", int, 48, f"{_UNUSED} (Time-LLM has no decoder)"),
    Flag("pred_len", int, 96, "forecast steps"),
    Flag("seasonal_patterns", str, "Monthly", "M4 subset: Yearly, Quarterly, Monthly, Weekly, Daily, Hourly"),
    Flag("enc_in", int, 7, f"{_UNUSED} (channels come from the data)"),
    Flag("dec_in", int, 7, _UNUSED),
    Flag("c_out", int, 7, f"{_UNUSED} (output channels come from --features)"),
    Flag("d_model", int, 16, "patch embedding width"),
    Flag("n_heads", int, 8, "reprogramming heads"),
    Flag("e_layers", int, 2, _UNUSED),
    Flag("d_layers", int, 1, _UNUSED),
    Flag("d_ff", int, 32, "reprogramming head size, and features the output head reads"),
    Flag("moving_avg", int, 25, f"{_UNUSED} (the DLinear baseline uses 25)"),
    Flag("factor", int, 1, _UNUSED),
    Flag("dropout", float, 0.1, "dropout"),
    Flag("embed", str, "timeF", _UNUSED),
    Flag("activation", str, "gelu", _UNUSED),
    Flag("output_attention", "store_true", False, _UNUSED),
    Flag("patch_len", int, 16, "patch length"),
    Flag("stride", int, 8, "patch stride"),
    Flag("prompt_domain", int, 0, f"{_UNUSED}: every dataset always gets its own description"),
    Flag("llm_model", str, "LLAMA", "LLAMA, GPT2, BERT or QWEN (--llm_model_path wins when given)"),
    Flag("llm_dim", int, None, "checked against the backbone's hidden size when given (reference default 4096)"),
    Flag("num_workers", int, 0, "data loader workers (reference default 10; 0 here: windows are in memory)"),
    Flag("itr", int, 1, "repeat the experiment this many times (seed + i for repeat i)"),
    Flag("train_epochs", int, 10, "epochs"),
    Flag("align_epochs", int, 10, _UNUSED),
    Flag("batch_size", int, 32, "training batch size"),
    Flag("eval_batch_size", int, 8, "validation and test batch size"),
    Flag("patience", int, 10, "early stopping patience (epochs without a lower validation MSE)"),
    Flag("learning_rate", float, 0.0001, "Adam learning rate (the schedule's peak for TST)"),
    Flag("des", str, "test", "free description, recorded in config.json"),
    Flag("loss", str, "MSE", "MSE or SMAPE"),
    Flag("lradj", str, "type1", "type1 (halve every epoch), TST (one-cycle per batch), COS, constant"),
    Flag("pct_start", float, 0.2, "one-cycle warm-up share (TST)"),
    Flag("use_amp", "store_true", False, "bf16 mixed precision (same as --mixed_precision bf16)"),
    Flag("llm_layers", int, 6, "keep the first K layers of the LLM"),
    Flag("percent", int, 100, "few-shot: share of the train split kept"),
    Flag("llm_model_path", str, None, "local model folder, .gguf file, or hub id (wins over --llm_model)"),
    Flag("load_in_4bit", "store_true", False, "load the LLM in 4-bit NF4 (bitsandbytes)"),
)
UNUSED_FLAGS = tuple(flag.name for flag in REFERENCE_FLAGS if flag.help.startswith(_UNUSED))

# Our catalogue names for the reference's --llm_model values.
LLM_MODEL_NAMES = {"llama": "llama-7b", "gpt2": "gpt2", "bert": "bert-base-uncased", "qwen": "qwen2.5-3b"}
ETT_NAMES = ("ETTh1", "ETTh2", "ETTm1", "ETTm2")


def add_reference_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("flags of the reference run_main.py (same names, types and defaults)")
    for flag in REFERENCE_FLAGS:
        shown = "" if flag.default is None else f" (default {flag.default})"
        if flag.type == "store_true":
            group.add_argument(f"--{flag.name}", action="store_true", default=None, help=flag.help)
        else:
            # None marks "not given", so a preset's value is not overwritten by a reference default.
            group.add_argument(f"--{flag.name}", type=flag.type, default=None, help=flag.help + shown)


def add_extra_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("this implementation's flags")
    group.add_argument("--preset", help=f"start from a preset ({', '.join(PRESETS)}); flags override it")
    group.add_argument("--runs_dir", help="where run folders go (default: runs/ or $TIMELLM_RUNS)")
    group.add_argument("--max_train_windows", type=int, help="train on a seeded random sample of this many windows")
    group.add_argument("--max_eval_windows", type=int,
                       help="validate and test on a seeded random sample of this many windows")
    group.add_argument("--llm_mode", choices=LLM_MODES, help="frozen (the paper) or an ablation: none, attention, "
                       "transformer")
    group.add_argument("--prompt_style", choices=PROMPT_STYLES, help="reference (faithful) or compact")
    group.add_argument("--num_prototypes", type=int, help="text prototypes S (1000 in the paper)")
    group.add_argument("--fast", action="store_true", default=None, help="bf16 autocast in the model (numbers change "
                       "slightly)")
    group.add_argument("--no_optimize", action="store_true", default=None,
                       help="compute the forecast the way the reference does (slow; for comparison)")
    group.add_argument("--mixed_precision", choices=("no", "bf16", "fp16"), help="accelerate mixed precision")
    group.add_argument("--device", help="auto (default), cpu, cuda or cuda:N")
    group.add_argument("--no_test_each_epoch", action="store_true", default=None,
                       help="skip the per-epoch test (the final test on the best weights still runs)")
    group.add_argument("--resume", metavar="RUN", help="continue a run (folder or run id) from its last checkpoint; "
                       "other flags are ignored")


def _given(args: argparse.Namespace, name: str) -> bool:
    return getattr(args, name, None) is not None


def _value(args: argparse.Namespace, name: str, use_reference_default: bool) -> Any:
    value = getattr(args, name, None)
    if value is not None:
        return value
    if use_reference_default:
        return next(flag.default for flag in REFERENCE_FLAGS if flag.name == name)
    return None


def config_from_flags(args: argparse.Namespace) -> tuple[RunConfig, list[str]]:
    """A validated RunConfig from parsed flags, and notes for the user (e.g. a flag that was overridden)."""
    notes: list[str] = []
    base_is_reference = not args.preset
    config = preset(args.preset) if args.preset else RunConfig()

    def value(name: str) -> Any:
        return _value(args, name, base_is_reference)

    task = value("task_name")
    if task is not None and task not in ("long_term_forecast", "short_term_forecast"):
        raise ConfigError(f"task_name {task!r} is not supported: use long_term_forecast or short_term_forecast.")
    if _given(args, "is_training") and int(args.is_training) != 1:
        raise ConfigError("is_training 0 does not train. To test a saved run, use "
                          "`python -m timellm_core evaluate --run RUN_DIR`.")
    model_name = value("model")
    if model_name is not None and str(model_name).lower() not in ("timellm", "time-llm"):
        raise ConfigError(f"--model {model_name} is not available: only TimeLLM trains here. The DLinear, naive and "
                          "seasonal-naive baselines are printed by `evaluate --run RUN_DIR`.")

    _apply_data(config, args, value, notes)
    _apply_backbone(config, args, value)
    for name in ("seq_len", "pred_len", "d_model", "d_ff", "n_heads", "dropout", "patch_len", "stride"):
        if value(name) is not None:
            setattr(config.model, name, value(name))
    if config.data.name.lower() == "m4":
        _apply_m4_lengths(config, args, notes)
    for name in ("llm_mode", "prompt_style", "num_prototypes"):
        if _given(args, name):
            setattr(config.model, name, getattr(args, name))
    if args.fast:
        config.model.fast = True
    if args.no_optimize:
        config.model.optimize = False

    training = config.training
    for name in ("batch_size", "eval_batch_size", "train_epochs", "patience", "learning_rate", "lradj",
                 "pct_start", "seed", "num_workers", "loss"):
        if value(name) is not None:
            setattr(training, name, value(name))
    training.loss = str(training.loss).upper()
    for name in ("max_train_windows", "max_eval_windows", "device", "mixed_precision"):
        if _given(args, name):
            setattr(training, name, getattr(args, name))
    if args.use_amp:
        training.mixed_precision = "bf16"
    if args.no_test_each_epoch:
        training.test_each_epoch = False
    return config.validate(), notes


def _apply_data(config: RunConfig, args: argparse.Namespace, value: Any, notes: list[str]) -> None:
    data = config.data
    for name in ("features", "target", "percent"):
        if value(name) is not None:
            setattr(data, name, value(name))
    name = value("data")
    if name is None:
        return
    root, file_name = value("root_path"), value("data_path")
    given_file = Path(root or ".").expanduser() / file_name if file_name else None
    exists = given_file is not None and given_file.is_file()
    lowered = str(name).lower()
    if lowered == "m4":
        data.name = "m4"
        data.features = "S"
        data.seasonal_patterns = value("seasonal_patterns") or data.seasonal_patterns or "Monthly"
        data.data_path = None
        return
    if lowered == "custom":
        registered = _registry_name_for_file(file_name) if file_name else None
        if registered is not None:
            # A benchmark file under `custom` (weather.csv, ...) gets its registry entry and description.
            data.name = registered
            data.data_path = str(given_file) if exists else None
        elif exists:
            data.name, data.data_path = "custom", str(given_file)
        else:
            raise ConfigError(f"--data custom: no file at {given_file} and {file_name!r} is not a registered "
                              "dataset file. Check --root_path and --data_path.")
        return
    data.name = next((ett for ett in ETT_NAMES if ett.lower() == lowered), str(name))
    # The reference reads root_path/data_path; when that file exists it is used, else the registry finds it.
    data.data_path = str(given_file) if exists and (_given(args, "root_path") or _given(args, "data_path")) else None
    if exists and data.data_path and Path(file_name).stem.lower() != data.name.lower():
        notes.append(f"--data {data.name} reads {given_file} with {data.name}'s split rule and description.")


def _registry_name_for_file(file_name: str) -> str | None:
    from timellm_core.data.registry import list_datasets

    wanted = os.path.basename(str(file_name)).lower()
    for spec in list_datasets():
        if spec.file_name and spec.file_name.lower() == wanted:
            return spec.name
    return None


def _apply_backbone(config: RunConfig, args: argparse.Namespace, value: Any) -> None:
    backbone = config.backbone
    if _given(args, "llm_model_path"):
        backbone.name = args.llm_model_path
    elif value("llm_model") is not None:
        key = str(value("llm_model")).strip().lower()
        if key not in LLM_MODEL_NAMES:
            raise ConfigError(f"--llm_model {value('llm_model')!r} is unknown: use LLAMA, GPT2, BERT or QWEN, or "
                              "give a model folder with --llm_model_path.")
        backbone.name = LLM_MODEL_NAMES[key]
    if value("llm_layers") is not None:
        backbone.llm_layers = value("llm_layers")
    if _given(args, "llm_dim"):
        backbone.llm_dim = args.llm_dim
    if args.load_in_4bit:
        backbone.load_in_4bit = True


def _apply_m4_lengths(config: RunConfig, args: argparse.Namespace, notes: list[str]) -> None:
    # As the reference's run_m4.py: pred_len is the pattern's horizon and seq_len twice that.
    from timellm_core.data.m4 import m4_pattern

    pattern = m4_pattern(config.data.seasonal_patterns)
    for name, wanted in (("seq_len", pattern.seq_len), ("pred_len", pattern.horizon)):
        if _given(args, name) and int(getattr(args, name)) != wanted:
            notes.append(f"M4 {pattern.name}: {name} is {wanted} (the protocol's), not {getattr(args, name)}.")
        setattr(config.model, name, wanted)


def run_name(args: argparse.Namespace, iteration: int) -> str | None:
    """The start of the run id from --model_id / --model_comment (as the reference names its checkpoint
    folders), or None for the default naming; the run folder adds a time stamp."""
    parts = [getattr(args, "model_id", None), getattr(args, "model_comment", None)]
    parts = [str(part) for part in parts if part and part != "none"]
    if not parts:
        return None
    if int(getattr(args, "itr", None) or 1) > 1:
        parts.append(f"itr{iteration}")
    return "_".join(parts)
