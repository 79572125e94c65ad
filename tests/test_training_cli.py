"""The CLI: the seed's command line runs unchanged apart from paths; reference flags map onto the config."""

from __future__ import annotations

import argparse
import json
import shlex

import pytest

from test_training_support import dataset_name, forecast_data, small_config
from timellm_core.cli import build_parser, main
from timellm_core.errors import ConfigError
from timellm_core.training.reference_flags import REFERENCE_FLAGS, UNUSED_FLAGS, config_from_flags
from timellm_core.training.runs import RUN_FILES, RunFolder, load_run
from timellm_core.training.trainer import Trainer

# The Qwen seed's command line, verbatim.
SEED_COMMAND = (
    "--task_name long_term_forecast --is_training 1 --root_path ./dataset/ETT-small/ --data_path ETTh1.csv "
    "--model_id ETTh1_512_96 --model TimeLLM --data ETTh1 --features M --seq_len 512 --label_len 48 "
    "--pred_len 96 --factor 3 --enc_in 7 --dec_in 7 --c_out 7 --des Exp --itr 1 --d_model 32 --d_ff 32 "
    "--batch_size 8 --learning_rate 0.01 --llm_layers 6 --train_epochs 10 --model_comment TimeLLM-ETTh1 "
    "--llm_model QWEN --llm_model_path base_models/Qwen2.5-3B --llm_dim 2048 --load_in_4bit")


def _parse(argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["train", *shlex.split(argv)])


def _replace(command: str, **values: object) -> str:
    words = shlex.split(command)
    for name, value in values.items():
        words[words.index(f"--{name}") + 1] = str(value)
    return shlex.join(words)


def test_the_seed_command_line_maps_onto_the_config():
    config, notes = config_from_flags(_parse(SEED_COMMAND))
    assert (config.data.name, config.data.features, config.data.data_path) == ("ETTh1", "M", None)
    assert config.backbone.name == "base_models/Qwen2.5-3B"
    assert config.backbone.load_in_4bit and config.backbone.llm_dim == 2048 and config.backbone.llm_layers == 6
    model = config.model
    assert (model.seq_len, model.pred_len, model.d_model, model.d_ff, model.patch_len, model.stride) == (
        512, 96, 32, 32, 16, 8)
    training = config.training
    assert (training.batch_size, training.learning_rate, training.train_epochs) == (8, 0.01, 10)
    # Flags the seed leaves out take the reference's defaults.
    assert (training.lradj, training.patience, training.eval_batch_size, training.seed) == ("type1", 10, 8, 2021)
    assert (training.pct_start, model.n_heads, model.dropout) == (0.2, 8, 0.1)


def test_the_seed_command_line_trains_end_to_end_with_a_tiny_qwen2_in_4bit(tmp_path, monkeypatch, capsys):
    from timellm_core.backbones import save_tiny_backbone

    folder = save_tiny_backbone("tiny-qwen2", tmp_path / "Qwen2-tiny")
    hidden = json.loads((folder / "config.json").read_text())["hidden_size"]
    monkeypatch.chdir(tmp_path)  # ./dataset/ETT-small/ETTh1.csv is not here: the registry finds the file
    command = _replace(SEED_COMMAND, llm_model_path=folder, llm_dim=hidden, seq_len=32, pred_len=8, llm_layers=2,
                       train_epochs=1, data=dataset_name())
    command += f" --max_train_windows 8 --max_eval_windows 8 --runs_dir {tmp_path / 'runs'}"
    assert main(["train", *shlex.split(command)]) == 0
    out = capsys.readouterr().out
    run_dir = next((tmp_path / "runs").iterdir())
    assert f"run folder: {run_dir}" in out and "MSE" in out
    assert run_dir.name.startswith("ETTh1_512_96_TimeLLM-ETTh1_")
    for name in RUN_FILES:
        assert (run_dir / name).is_file(), name
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["config"]["backbone"]["load_in_4bit"] is True
    assert saved["backbone"]["quantized_linear_layers"] > 0
    assert saved["cli"]["model_comment"] == "TimeLLM-ETTh1"
    assert load_run(run_dir).status == "finished"


def test_a_wrong_llm_dim_is_reported_with_the_right_value(tmp_path, capsys):
    code = main(["train", "--data", dataset_name(), "--llm_model_path", "tiny-gpt2", "--llm_dim", "4096",
                 "--seq_len", "32", "--pred_len", "8", "--llm_layers", "2", "--runs_dir", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "llm_dim" in err and "4096" in err and "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    ("--is_training 0", "evaluate --run"),
    ("--task_name imputation", "long_term_forecast"),
    ("--model Autoformer", "only TimeLLM"),
    ("--llm_model MISTRAL", "LLAMA, GPT2, BERT or QWEN"),
    ("--lradj type3", "lradj"),
])
def test_unsupported_choices_are_clear_errors(argv, message):
    with pytest.raises(ConfigError, match=message):
        config_from_flags(_parse(argv))


def test_every_reference_flag_is_accepted_and_unused_ones_say_so():
    argv = []
    for flag in REFERENCE_FLAGS:
        if flag.type == "store_true":
            argv.append(f"--{flag.name}")
        elif flag.default is not None:
            argv += [f"--{flag.name}", str(flag.default)]
    args = _parse(shlex.join(argv))
    assert all(hasattr(args, flag.name) for flag in REFERENCE_FLAGS)
    assert {"label_len", "e_layers", "d_layers", "factor", "embed", "activation", "moving_avg", "des"} - set(
        UNUSED_FLAGS) == {"des"}
    help_text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    assert "accepted for compatibility, unused" in help_text


def test_reference_defaults_apply_without_a_preset_and_a_preset_wins_over_them():
    reference, _ = config_from_flags(_parse("--data ETTh1"))
    assert (reference.training.learning_rate, reference.training.batch_size, reference.model.d_model) == (
        0.0001, 32, 16)
    assert reference.backbone.name == "llama-7b"  # the reference's default LLAMA
    quick, _ = config_from_flags(_parse("--preset cpu-quick --learning_rate 0.002"))
    assert quick.backbone.name == "smollm2-135m" and quick.training.learning_rate == 0.002
    assert quick.training.max_train_windows is not None  # kept from the preset


def test_data_flags_map_onto_the_registry(tmp_path):
    csv = tmp_path / "mine.csv"
    csv.write_text("date,a,OT\n2020-01-01 00:00:00,1,2\n")
    custom, _ = config_from_flags(_parse(f"--data custom --root_path {tmp_path} --data_path mine.csv"))
    assert (custom.data.name, custom.data.data_path) == ("custom", str(csv))
    weather, _ = config_from_flags(_parse("--data custom --root_path ./nowhere/ --data_path weather.csv"))
    assert (weather.data.name, weather.data.data_path) == ("Weather", None)
    with pytest.raises(ConfigError, match="no file at"):
        config_from_flags(_parse(f"--data custom --root_path {tmp_path} --data_path missing.csv"))
    m4, notes = config_from_flags(_parse("--data m4 --seasonal_patterns Hourly --seq_len 512 --pred_len 96"))
    assert (m4.data.name, m4.data.seasonal_patterns, m4.model.seq_len, m4.model.pred_len) == ("m4", "Hourly", 96, 48)
    assert any("pred_len is 48" in note for note in notes)
    gpt2, _ = config_from_flags(_parse("--llm_model GPT2 --use_amp"))
    assert gpt2.backbone.name == "gpt2" and gpt2.training.mixed_precision == "bf16"


def test_evaluate_and_runs_list(tmp_path, capsys):
    config = small_config(train_epochs=1, max_train_windows=8, max_eval_windows=8)
    run = RunFolder.create(config, tmp_path)
    Trainer(config, run=run, data=forecast_data()).run()
    saved = json.loads((run.path / "test_metrics.json").read_text())

    assert main(["evaluate", "--run", run.run_id, "--runs_dir", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"]["test_mse"] == pytest.approx(saved["test_mse"], rel=1e-5)
    assert set(report["baselines"]) == {"naive", "seasonal_naive", "dlinear"}
    assert all(values["windows"] == 8 for values in report["baselines"].values())

    assert main(["evaluate", "--run", str(run.path), "--no_baselines"]) == 0
    assert "Time-LLM" in capsys.readouterr().out

    assert main(["runs", "list", "--runs_dir", str(tmp_path), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["run_id"], r["status"]) for r in listed] == [(run.run_id, "finished")]
    assert main(["runs", "list", "--runs_dir", str(tmp_path)]) == 0
    assert run.run_id[:40] in capsys.readouterr().out
    assert main(["evaluate", "--run", "../elsewhere", "--runs_dir", str(tmp_path)]) == 2


@pytest.mark.parametrize("load_in_4bit", [False, True])
def test_fast_mode_trains_end_to_end_in_float32_and_in_4bit(tmp_path, monkeypatch, capsys, load_in_4bit):
    """--fast through the trainer: bf16 weight copies for a float32 backbone, plain autocast for NF4."""
    from timellm_core.backbones import save_tiny_backbone

    folder = save_tiny_backbone("tiny-qwen2", tmp_path / "Qwen2-tiny")
    hidden = json.loads((folder / "config.json").read_text())["hidden_size"]
    monkeypatch.chdir(tmp_path)
    command = _replace(SEED_COMMAND, llm_model_path=folder, llm_dim=hidden, seq_len=32, pred_len=8, llm_layers=2,
                       train_epochs=1, data=dataset_name())
    if not load_in_4bit:
        command = command.replace(" --load_in_4bit", "")
    command += f" --max_train_windows 8 --max_eval_windows 8 --fast --runs_dir {tmp_path / 'runs'}"
    assert main(["train", *shlex.split(command)]) == 0
    run_dir = next((tmp_path / "runs").iterdir())
    info = load_run(run_dir)
    assert info.status == "finished" and info.config.model.fast
    assert info.config.backbone.load_in_4bit is load_in_4bit
    assert all(event["loss"] == event["loss"] for event in info.step_events())  # no NaN
