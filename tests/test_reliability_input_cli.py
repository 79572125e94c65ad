"""Bad input through the command line: every case exits 2 with a message that says what to do.

Entry points: `data check`, `train` (the reference's flags), `backbones info`, `evaluate --run`.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from timellm_core.cli import main

HOURS = 400  # rows in the generated CSVs: enough for seq_len 32 + pred_len 8 in a 7/1/2 split


def _rows(count: int = HOURS, sep: str = ",") -> str:
    return "".join(f"2021-01-{1 + h // 24:02d} {h % 24:02d}:00:00{sep}{h % 17}{sep}{(h * 7) % 11}\n"
                   for h in range(count))


def _fails(argv: list[str], capsys, *fragments: str) -> str:
    """Run the CLI; it must exit 2, print no traceback, and name every fragment (case-insensitive)."""
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2, (code, captured.out, captured.err)
    err = captured.err
    assert "Traceback" not in err and "Traceback" not in captured.out
    assert "error: " in err, err
    for fragment in fragments:
        assert fragment.lower() in err.lower(), (fragment, err)
    return err


def _passes(argv: list[str], capsys) -> str:
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


# --- CSV: `data check` ---------------------------------------------------------------------------

def test_gbk_file_is_read_with_a_warning(tmp_path, capsys):
    path = tmp_path / "gbk.csv"
    path.write_bytes(("date,温度,湿度\n" + _rows()).encode("gbk"))
    report = json.loads(_passes(["data", "check", str(path), "--json"], capsys))
    assert report["channels"] == ["温度", "湿度"] and report["encoding"] == "gbk"
    assert any("GBK" in warning for warning in report["warnings"])


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_with_or_without_a_byte_order_mark_is_read(tmp_path, capsys, encoding):
    path = tmp_path / f"{encoding}.csv"
    path.write_bytes(("date,a,b\n" + _rows()).encode(encoding))
    report = json.loads(_passes(["data", "check", str(path), "--json"], capsys))
    assert report["channels"] == ["a", "b"] and report["rows"] == HOURS


def test_utf8_bom_does_not_leak_into_the_first_column_name(tmp_path, capsys):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + ("date,a,b\n" + _rows()).encode())
    report = json.loads(_passes(["data", "check", str(path), "--json"], capsys))
    assert report["channels"] == ["a", "b"] and report["start"].startswith("2021-01-01")


def test_undecodable_bytes_ask_for_utf8(tmp_path, capsys):
    path = tmp_path / "latin1.csv"
    path.write_bytes(("date,caf\xe9\xff\xfe,b\n" + _rows()).encode("latin-1"))
    _fails(["data", "check", str(path)], capsys, "neither UTF-8 nor GBK", "Save it as UTF-8")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(bytes(range(256)) * 40)
    _fails(["data", "check", str(binary)], capsys, "Save it as UTF-8")


@pytest.mark.parametrize("sep", [";", "\t"])
def test_semicolon_and_tab_separators_are_detected(tmp_path, capsys, sep):
    path = tmp_path / "sep.csv"
    path.write_text(f"date{sep}a{sep}b\n" + _rows(sep=sep))
    report = json.loads(_passes(["data", "check", str(path), "--json"], capsys))
    assert report["separator"] == sep and report["channels"] == ["a", "b"]


def test_an_unsupported_separator_names_the_supported_ones(tmp_path, capsys):
    path = tmp_path / "pipe.csv"
    path.write_text("date|a|b\n" + _rows(sep="|"))
    _fails(["data", "check", str(path)], capsys, "separated by ',', ';' or tab")


def test_no_date_column(tmp_path, capsys):
    path = tmp_path / "nodate.csv"
    path.write_text("a,b\n" + "".join(f"{h},{h % 3}\n" for h in range(50)))
    _fails(["data", "check", str(path)], capsys, "no date column", "name one 'date'", "Columns found: 'a', 'b'")


def test_unparsable_dates_name_the_line(tmp_path, capsys):
    path = tmp_path / "baddate.csv"
    path.write_text("date,a\n" + "".join(f"2021-01-01 {h:02d}:00:00,{h}\n" for h in range(20)) + "yesterday,3\n")
    _fails(["data", "check", str(path)], capsys, "not dates", "line 22", "'yesterday'", "Fix or remove those rows")


def test_non_numeric_cell_names_column_line_and_value(tmp_path, capsys):
    path = tmp_path / "text.csv"
    path.write_text("date,a,b\n" + _rows(30) + "2021-01-03 00:00:00,1,abc\n")
    _fails(["data", "check", str(path)], capsys, "column 'b' is not numeric", "line 32", "'abc'")


def test_nan_is_refused_naming_cells_and_can_be_filled(tmp_path, capsys):
    path = tmp_path / "nan.csv"
    lines = _rows(60).splitlines()
    lines[4] = lines[4].rsplit(",", 1)[0] + ",nan"
    path.write_text("date,a,b\n" + "\n".join(lines) + "\n")
    _fails(["data", "check", str(path)], capsys, "missing value", "column 'b' at line 6", "--fill_missing")
    out = _passes(["data", "check", str(path), "--fill_missing"], capsys)
    assert "Filled 1 missing value" in out


def test_inf_is_refused_naming_the_cell(tmp_path, capsys):
    path = tmp_path / "inf.csv"
    lines = _rows(60).splitlines()
    lines[9] = lines[9].rsplit(",", 1)[0] + ",inf"
    path.write_text("date,a,b\n" + "\n".join(lines) + "\n")
    _fails(["data", "check", str(path), "--fill_missing"], capsys, "infinite", "column 'b' at line 11",
           "replace them in the file")


def test_a_value_float32_cannot_hold_is_refused_naming_column_and_line(tmp_path, capsys):
    path = tmp_path / "huge.csv"
    lines = _rows(60).splitlines()
    lines[9] = lines[9].split(",")[0] + ",1e40," + lines[9].split(",")[2]
    path.write_text("date,a,b\n" + "\n".join(lines) + "\n")
    _fails(["data", "check", str(path)], capsys, "too large for float32", "column 'a' at line 11", "1e+40")
    lines[9] = lines[9].split(",")[0] + ",-3e38," + lines[9].split(",")[2]  # float32 still holds this
    path.write_text("date,a,b\n" + "\n".join(lines) + "\n")
    _passes(["data", "check", str(path)], capsys)


def test_repeated_column_names_are_refused_not_renamed(tmp_path, capsys):
    path = tmp_path / "dup.csv"
    path.write_text("date,a,a,OT\n" + "".join(f"2021-01-{1 + h // 24:02d} {h % 24:02d}:00,{h},{h % 5},{h % 7}\n"
                                               for h in range(HOURS)))
    err = _fails(["data", "check", str(path)], capsys, "repeats column name", "'a' in columns 2, 3")
    assert "a.1" not in err


def _day_first_hours(start: str = "2021-01-01", end: str = "2021-03-25 23:00") -> str:
    import pandas as pd

    stamps = pd.date_range(start, end, freq="h")
    return "".join(f"{stamp:%d/%m/%Y %H:%M},{i % 17},{(i * 7) % 11}\n" for i, stamp in enumerate(stamps))


def test_day_first_dates_are_read_day_first_in_every_row(tmp_path, capsys):
    # Hourly from 1 January to 25 March, written 13/01/2021: read month-first row by row, 05/01 became
    # 1 May, the range reached December and the sort scrambled the series.
    path = tmp_path / "dayfirst.csv"
    path.write_text("date,a,OT\n" + _day_first_hours())
    report = json.loads(_passes(["data", "check", str(path), "--json"], capsys))
    assert (report["start"], report["end"]) == ("2021-01-01 00:00:00", "2021-03-25 23:00:00")
    assert report["rows"] == 84 * 24 and report["freq"] == "h"
    assert not any("not in increasing order" in w or "gap" in w for w in report["warnings"])
    assert any("day/month/year" in w and "'13/01/2021 00:00'" in w for w in report["warnings"])


def test_month_first_dates_stay_month_first(tmp_path, capsys):
    import pandas as pd

    stamps = pd.date_range("2021-01-01", "2021-03-25 23:00", freq="h")
    path = tmp_path / "us.csv"
    path.write_text("date,a\n" + "".join(f"{s:%m/%d/%Y %H:%M},{i % 5}\n" for i, s in enumerate(stamps)))
    report = json.loads(_passes(["data", "check", str(path), "--json"], capsys))
    assert (report["start"], report["end"], report["warnings"]) == ("2021-01-01 00:00:00", "2021-03-25 23:00:00", [])


def test_dates_in_both_orders_are_refused_naming_a_line_of_each(tmp_path, capsys):
    path = tmp_path / "mixed.csv"
    path.write_text("date,a\n13/01/2021 00:00,1\n01/14/2021 00:00,2\n" + "".join(
        f"01/02/2021 {h:02d}:00,{h}\n" for h in range(20)))
    _fails(["data", "check", str(path)], capsys, "mixes day-first and month-first", "line 2", "'13/01/2021 00:00'",
           "line 3", "YYYY-MM-DD")


def test_dates_no_row_decides_take_the_order_that_keeps_time_order(tmp_path, capsys):
    # Days 1-12 of January and of February, written day-first: month-first would go 1 Jan, 1 Feb, ...,
    # 1 Dec, then back to 2 Jan.
    path = tmp_path / "ambiguous.csv"
    path.write_text("date,a\n" + "".join(f"{d:02d}/{m:02d}/2021 00:00,{d}\n" for m in (1, 2) for d in range(1, 13)))
    report = json.loads(_passes(["data", "check", str(path), "--json"], capsys))
    assert (report["start"], report["end"], report["rows"]) == ("2021-01-01 00:00:00", "2021-02-12 00:00:00", 24)
    assert any("read day-first" in w and "keeps the rows in time order" in w for w in report["warnings"])
    # 1-12 January alone is in time order either way (daily or monthly): month-first, said plainly.
    path.write_text("date,a\n" + "".join(f"{d:02d}/01/2021 00:00,{d}\n" for d in range(1, 13)))
    report = json.loads(_passes(["data", "check", str(path), "--json"], capsys))
    assert report["end"] == "2021-12-01 00:00:00"
    assert any("read month-first" in w and "YYYY-MM-DD" in w for w in report["warnings"])


def test_constant_channel_is_accepted_with_a_warning(tmp_path, capsys):
    path = tmp_path / "const.csv"
    path.write_text("date,flat,b\n" + "".join(f"2021-01-{1 + h // 24:02d} {h % 24:02d}:00:00,5,{h % 7}\n"
                                              for h in range(HOURS)))
    report = json.loads(_passes(["data", "check", str(path), "--json"], capsys))
    assert any("'flat' is constant" in warning and "std 1" in warning for warning in report["warnings"])


def test_constant_channel_scales_without_division_by_zero(tmp_path):
    import numpy as np

    from timellm_core.config import DataConfig
    from timellm_core.data import prepare_data

    path = tmp_path / "const.csv"
    path.write_text("date,flat,b\n" + "".join(f"2021-01-{1 + h // 24:02d} {h % 24:02d}:00:00,5,{h % 7}\n"
                                              for h in range(HOURS)))
    data = prepare_data(DataConfig(name="custom", data_path=str(path)), seq_len=32, pred_len=8)
    x, y = data.windows("train")[0][:2]
    assert np.isfinite(np.asarray(x)).all() and np.isfinite(np.asarray(y)).all()


@pytest.mark.parametrize("content, fragment", [
    ("date,a\n2021-01-01 00:00:00,1\n", "has 1 data row"),
    ("date,a\n", "has 0 data row"),
    ("", "is empty"),
])
def test_a_single_row_a_header_only_and_an_empty_file(tmp_path, capsys, content, fragment):
    path = tmp_path / "short.csv"
    path.write_text(content)
    _fails(["data", "check", str(path)], capsys, fragment)


def test_too_few_rows_for_the_lengths_states_needed_and_found(tmp_path, capsys):
    path = tmp_path / "short.csv"
    path.write_text("date,a,b\n" + _rows(60))
    _fails(["data", "check", str(path), "--seq_len", "32", "--pred_len", "8"], capsys,
           "Too few rows", "at least 40 rows", "found train", "Use a smaller seq_len or pred_len")


def test_duplicate_and_unsorted_timestamps_are_sorted_with_warnings(tmp_path, capsys):
    lines = _rows().splitlines()
    lines[10] = lines[9]  # a duplicated timestamp
    lines[20], lines[21] = lines[21], lines[20]  # one step back in time
    path = tmp_path / "messy.csv"
    path.write_text("date,a,b\n" + "\n".join(lines) + "\n")
    report = json.loads(_passes(["data", "check", str(path), "--json"], capsys))
    warnings = " ".join(report["warnings"])
    assert "duplicated timestamp" in warnings and "not in increasing order" in warnings and "sorted" in warnings


def test_ragged_lines_and_a_missing_file(tmp_path, capsys):
    path = tmp_path / "ragged.csv"
    path.write_text("date,a\n2021-01-01 00:00:00,1\n2021-01-01 01:00:00,1,2,3\n2021-01-01 02:00:00,1\n")
    _fails(["data", "check", str(path)], capsys, "could not be parsed", "as many fields as the header")
    _fails(["data", "check", str(tmp_path / "nope.csv")], capsys, "CSV file not found", "Check the path")


def test_a_huge_file_states_the_limit(tmp_path, capsys):
    path = tmp_path / "huge.csv"
    with open(path, "wb") as handle:
        handle.truncate(200_000_001)  # sparse file
    _fails(["data", "check", str(path)], capsys, "over the 200 MB limit")


# --- training flags ------------------------------------------------------------------------------

def _train(runs: Path, *extra: str) -> list[str]:
    return ["train", "--data", "Synthetic", "--llm_model_path", "tiny-llama", "--llm_layers", "1",
            "--seq_len", "32", "--pred_len", "8", "--patch_len", "8", "--stride", "4", "--d_model", "8",
            "--d_ff", "16", "--n_heads", "2", "--num_prototypes", "16", "--batch_size", "8",
            "--eval_batch_size", "64", "--train_epochs", "1", "--max_train_windows", "16",
            "--max_eval_windows", "16", "--device", "cpu", "--runs_dir", str(runs), *extra]


@pytest.mark.parametrize("flags, fragments", [
    (["--patch_len", "64"], ["patch_len (64) is longer than seq_len (32)", "choose a patch_len of at most seq_len"]),
    (["--stride", "0"], ["stride must be a positive integer, not 0"]),
    (["--seq_len", "-5"], ["seq_len must be a positive integer, not -5"]),
    (["--pred_len", "0"], ["pred_len must be a positive integer, not 0"]),
    (["--batch_size", "0"], ["batch_size must be at least 1, not 0"]),
    (["--eval_batch_size", "-1"], ["eval_batch_size must be at least 1"]),
    (["--train_epochs", "0"], ["train_epochs must be at least 1"]),
    (["--llm_layers", "0"], ["llm_layers must be at least 1"]),
    (["--learning_rate", "0"], ["learning_rate must be positive"]),
    (["--dropout", "1.5"], ["dropout must be in [0, 1)"]),
    (["--percent", "0"], ["percent must be between 1 and 100"]),
    (["--features", "X"], ["features must be one of M, S, MS"]),
    (["--lradj", "fast"], ["lradj must be one of"]),
    (["--is_training", "0"], ["evaluate --run"]),
])
def test_bad_settings_stop_before_a_run_folder_is_made(tmp_path, capsys, flags, fragments):
    runs = tmp_path / "runs"
    _fails(_train(runs, *flags), capsys, *fragments)
    assert not runs.exists() or not any(runs.iterdir())


def test_an_unknown_llm_model_name(tmp_path, capsys):
    argv = [arg for arg in _train(tmp_path / "runs") if arg not in ("--llm_model_path", "tiny-llama")]
    _fails(argv + ["--llm_model", "MISTRAL"], capsys, "--llm_model 'MISTRAL' is unknown", "LLAMA, GPT2, BERT or QWEN")


def test_a_flag_of_the_wrong_type_is_an_argparse_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as caught:
        main(_train(tmp_path, "--seq_len", "abc"))
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "invalid int value: 'abc'" in err and "Traceback" not in err


def test_too_few_rows_for_seq_len_plus_pred_len_in_a_split(tmp_path, capsys):
    path = tmp_path / "short.csv"
    path.write_text("date,a,b\n" + _rows(60))
    argv = _train(tmp_path / "runs", "--data", "custom", "--root_path", str(tmp_path), "--data_path", "short.csv")
    _fails(argv, capsys, "Too few rows", "needs at least 40 rows", "Use a smaller seq_len or pred_len")


def test_custom_data_file_that_does_not_exist(tmp_path, capsys):
    argv = _train(tmp_path / "runs", "--data", "custom", "--root_path", str(tmp_path), "--data_path", "nope.csv")
    _fails(argv, capsys, "no file at", "Check --root_path and --data_path")


def test_unknown_dataset_name(tmp_path, capsys):
    _fails(_train(tmp_path / "runs", "--data", "NoSuchData"), capsys, "NoSuchData", "ETTh1")


# --- backbones -----------------------------------------------------------------------------------

def test_llm_layers_above_the_models_layer_count(tmp_path, capsys):
    _fails(_train(tmp_path / "runs", "--llm_layers", "99"), capsys,
           "has 4 layers", "llm_layers=99", "between 1 and 4")
    _fails(["backbones", "info", "tiny-llama", "--llm_layers", "99", "--device", "cpu"], capsys,
           "has 4 layers", "between 1 and 4")


def test_llm_dim_that_disagrees_names_the_right_value(tmp_path, capsys):
    _fails(_train(tmp_path / "runs", "--llm_dim", "4096"), capsys, "llm_dim=4096", "Use llm_dim=128")


def test_model_folder_that_does_not_exist(tmp_path, capsys):
    missing = tmp_path / "no-such-model"
    _fails(_train(tmp_path / "runs", "--llm_model_path", str(missing)), capsys,
           "no-such-model", "no folder or file at that path", "Hugging Face model folder")
    _fails(["backbones", "info", str(missing)], capsys, "no folder or file at that path")


def test_model_folder_without_config(tmp_path, capsys):
    folder = tmp_path / "empty-model"
    folder.mkdir()
    (folder / "README.md").write_text("weights go here")
    _fails(_train(tmp_path / "runs", "--llm_model_path", str(folder)), capsys,
           "has no config.json", "Point to the folder that holds config.json")
    _fails(["backbones", "info", str(folder)], capsys, "has no config.json")


def test_model_folder_with_a_broken_config(tmp_path, capsys):
    folder = tmp_path / "broken-model"
    folder.mkdir()
    (folder / "config.json").write_text("{not json")
    _fails(["backbones", "info", str(folder)], capsys, "Cannot read", "Fetch or copy the model again")


def test_model_folder_with_truncated_weights(tmp_path, capsys):
    from timellm_core.backbones import save_tiny_backbone

    folder = tmp_path / "tiny"
    save_tiny_backbone("tiny-llama", folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    _fails(["backbones", "info", str(folder), "--device", "cpu"], capsys, "Loading", "failed")


def test_a_gguf_that_is_not_a_gguf(tmp_path, capsys):
    fake = tmp_path / "model.gguf"
    fake.write_text("this is a text file, not llama.cpp weights")
    _fails(_train(tmp_path / "runs", "--llm_model_path", str(fake)), capsys,
           "is not a GGUF file", "Give a .gguf file")
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(b"GGUF\x03\x00\x00\x00\x01")
    _fails(["backbones", "info", str(truncated)], capsys, "damaged or truncated GGUF", "Download it again")
    _fails(["backbones", "info", str(tmp_path / "absent.gguf")], capsys, "does not exist")


def test_4bit_where_bitsandbytes_cannot_load(tmp_path, monkeypatch, capsys):
    # A failing import, as on a machine without a usable bitsandbytes build.
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)
    _fails(["backbones", "info", "tiny-llama", "--load_in_4bit", "--device", "cpu"], capsys,
           "bitsandbytes", "pip install bitsandbytes", "drop --load_in_4bit")
    _fails(_train(tmp_path / "runs", "--load_in_4bit"), capsys, "bitsandbytes", "load_in_4bit=False")


# --- run folders ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A real tiny run (one epoch), trained once for the run-folder cases."""
    runs = tmp_path_factory.mktemp("runs")
    assert main(_train(runs)) == 0
    [run] = list(runs.iterdir())
    assert (run / "model.safetensors").is_file()
    return run


def _copy_run(run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "runs" / "copy"
    shutil.copytree(run, copy)
    return copy


def test_a_run_that_does_not_exist(tmp_path, capsys):
    _fails(["evaluate", "--run", str(tmp_path / "nope")], capsys, "No run at", "runs list")


def test_a_run_folder_with_a_missing_checkpoint(finished_run, tmp_path, capsys):
    run = _copy_run(finished_run, tmp_path)
    (run / "model.safetensors").unlink()
    _fails(["evaluate", "--run", str(run), "--no_baselines"], capsys,
           "has no model.safetensors", "resume it")


def test_a_run_folder_with_a_corrupt_checkpoint(finished_run, tmp_path, capsys):
    run = _copy_run(finished_run, tmp_path)
    (run / "model.safetensors").write_bytes(b"\x00garbage" * 100)
    _fails(["evaluate", "--run", str(run), "--no_baselines"], capsys, "corrupt or not a safetensors file")
    (run / "checkpoint.safetensors").write_bytes(b"not a checkpoint")
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    (run / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events if e["type"] != "finished"))
    _fails(["train", "--resume", str(run)], capsys, "corrupt")


def test_a_run_folder_with_a_corrupt_config(finished_run, tmp_path, capsys):
    run = _copy_run(finished_run, tmp_path)
    (run / "config.json").write_text("{ truncated")
    _fails(["evaluate", "--run", str(run)], capsys, "not valid JSON")
    info = json.loads((finished_run / "config.json").read_text())
    info["config"]["model"]["no_such_setting"] = 1
    (run / "config.json").write_text(json.dumps(info))
    _fails(["evaluate", "--run", str(run)], capsys, "no_such_setting")


def test_a_checkpoint_from_a_different_configuration(finished_run, tmp_path, capsys):
    run = _copy_run(finished_run, tmp_path)
    info = json.loads((run / "config.json").read_text())
    info["config"]["model"]["d_model"] = 12  # the weights were trained with d_model 8
    (run / "config.json").write_text(json.dumps(info))
    _fails(["evaluate", "--run", str(run), "--no_baselines"], capsys,
           "different configuration", "train a new run")


def test_weights_that_do_not_fit_the_model_name_the_tensors(finished_run, tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    run = _copy_run(finished_run, tmp_path)
    tensors = load_file(str(run / "model.safetensors"))
    name = sorted(tensors)[0]
    tensors[name] = tensors[name].flatten()[:3].clone()
    save_file(tensors, str(run / "model.safetensors"))  # no fingerprint: only the shapes can tell
    _fails(["evaluate", "--run", str(run), "--no_baselines"], capsys, "does not fit this model", name)


def test_resuming_a_finished_run_says_there_is_nothing_to_do(finished_run, tmp_path, capsys):
    run = _copy_run(finished_run, tmp_path)
    _fails(["train", "--resume", str(run)], capsys, "already finished", "Start a new run")


def test_the_real_command_exits_2_with_only_the_message(tmp_path):
    """`python -m timellm_core` as a person runs it: status 2, one readable line, no traceback."""
    import os
    import subprocess

    path = tmp_path / "text.csv"
    path.write_text("date,a\n2021-01-01 00:00:00,1\n2021-01-01 01:00:00,oops\n2021-01-01 02:00:00,3\n")
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-m", "timellm_core", "data", "check", str(path)], cwd=root,
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(root)))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert done.stderr.strip().startswith("error: ") and "'oops'" in done.stderr and "line 3" in done.stderr
