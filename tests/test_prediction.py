"""Forecasting the future with a finished run (timellm_core.prediction and `predict`): on the run's own data
and on another CSV with its channels, the context scaled with the run's scaler, dates continued at the
data's step, the truth after an earlier cut-off, and a message naming each mismatch."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from test_training_support import PRED_LEN, SEQ_LEN, forecast_data, small_config
from timellm_core.cli import main
from timellm_core.config import DataConfig, RunConfig
from timellm_core.data.frequency import continue_dates, step_of
from timellm_core.errors import DataError
from timellm_core.prediction import forecast_future, forecast_run_future
from timellm_core.training.restore import load_run_model
from timellm_core.training.runs import RunFolder
from timellm_core.training.trainer import Trainer


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RunFolder, torch.nn.Module, object]:
    """(runs folder, run, its model with the best weights, its ForecastData): one tiny run for the module."""
    runs_dir = tmp_path_factory.mktemp("predict-runs")
    config = small_config(train_epochs=1, max_train_windows=8, max_eval_windows=8)
    run = RunFolder.create(config, runs_dir)
    assert Trainer(config, run=run, data=forecast_data()).run().status == "finished"
    model, data = load_run_model(run.path)
    return runs_dir, run, model, data


def _write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def _step(data) -> pd.Timedelta:
    return step_of(data.freq)


# --- the run's own data ------------------------------------------------------------------------------

def test_forecast_after_the_last_row_of_the_runs_dataset(finished):
    _, run, model, data = finished
    result = forecast_future(model, data, run_id=run.run_id)
    assert result.origin == result.rows == data.rows and result.truth is None and result.truth_errors is None
    # The context is the file's last seq_len rows, in original units.
    expected = data.frame.iloc[-SEQ_LEN:].reset_index(drop=True)
    assert list(result.context.columns) == ["date", *data.channels]
    np.testing.assert_allclose(result.context[data.channels].to_numpy(), expected[data.channels].to_numpy())
    # pred_len x channels, finite, dates continuing the data's own step.
    assert list(result.forecast.columns) == ["date", *data.target_channels]
    assert result.forecast.shape == (PRED_LEN, 1 + len(data.target_channels))
    assert np.isfinite(result.forecast[data.target_channels].to_numpy()).all()
    last = data.frame["date"].iloc[-1]
    assert result.forecast["date"].iloc[0] == last + _step(data)
    assert (result.forecast["date"].diff().dropna() == _step(data)).all()


def test_the_context_is_scaled_with_the_runs_own_scaler_as_in_training(finished):
    """From a cut-off where a test window's input ends, the model sees exactly that window's scaled input."""
    _, _, model, data = finished
    seen: list[torch.Tensor] = []

    def recording(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.clone())
        return model(x)

    recording.eval = model.eval  # forecast_future puts the model in eval mode
    window = 5
    cutoff = data.border("test")[0] + window + SEQ_LEN
    result = forecast_future(recording, data, cutoff=cutoff)
    x, y = data.windows("test")[window]
    assert torch.equal(seen[0][0], torch.as_tensor(x))  # (T, N_in): the training scaler, bit for bit
    with torch.no_grad():
        reference = model(torch.as_tensor(x)[None])[0, :, -len(data.target_channels):].numpy()
    # The same input in another memory block can differ in a last bit of the prompt's statistics, which the
    # prompt prints in full: the forecasts then agree closely, not bit for bit.
    np.testing.assert_allclose(result.forecast[data.target_channels].to_numpy(),
                               data.inverse_transform(reference), rtol=1e-2, atol=1e-2)
    # The rows after the cut-off are the truth: the window's own target.
    np.testing.assert_allclose(result.truth[data.target_channels].to_numpy(),
                               data.inverse_transform(np.asarray(y)), rtol=1e-5, atol=1e-4)
    errors = result.truth_errors
    assert errors["steps"] == PRED_LEN
    forecast_scaled = data.transform(result.forecast[data.channels].to_numpy())
    assert errors["mse"] == pytest.approx(float(np.mean((forecast_scaled - np.asarray(y)) ** 2)), rel=1e-4)
    diff = result.forecast[data.target_channels].to_numpy() - result.truth[data.target_channels].to_numpy()
    assert errors["mae_original"] == pytest.approx(float(np.mean(np.abs(diff))), rel=1e-6)


def test_a_cutoff_by_timestamp_is_the_same_as_by_row_count(finished):
    _, _, model, data = finished
    cutoff = data.rows - 3  # three rows of truth: fewer than pred_len
    by_rows = forecast_future(model, data, cutoff=str(cutoff))
    by_date = forecast_future(model, data, cutoff=str(data.frame["date"].iloc[cutoff - 1]))
    assert by_rows.origin == by_date.origin == cutoff
    pd.testing.assert_frame_equal(by_rows.forecast, by_date.forecast)
    assert len(by_rows.truth) == 3 and by_rows.truth_errors["steps"] == 3
    with pytest.raises(DataError, match=f"from 1 to {data.rows}"):
        forecast_future(model, data, cutoff=data.rows + 1)
    with pytest.raises(DataError, match="neither a row count nor a timestamp"):
        forecast_future(model, data, cutoff="soon")


# --- another file ------------------------------------------------------------------------------------

def test_another_csv_with_the_same_channels_in_another_order(finished, tmp_path):
    _, _, model, data = finished
    tail = data.frame.iloc[-100:]
    reordered = tail[["date", *reversed(data.channels)]]
    other = forecast_future(model, data, _write(reordered, tmp_path / "recent.csv"))
    own = forecast_future(model, data)
    assert other.source.endswith("recent.csv") and other.rows == 100
    pd.testing.assert_frame_equal(other.forecast, own.forecast, rtol=1e-6)
    assert other.forecast["date"].iloc[0] == tail["date"].iloc[-1] + _step(data)


def test_an_upload_is_checked_like_any_upload(finished, tmp_path):
    _, _, model, data = finished
    frame = data.frame.iloc[-60:].copy()
    frame.iloc[10, 2] = np.nan
    path = _write(frame, tmp_path / "holes.csv")
    with pytest.raises(DataError, match="missing value"):
        forecast_future(model, data, path)
    filled = forecast_future(model, data, path, fill_missing=True)
    assert np.isfinite(filled.forecast[data.target_channels].to_numpy()).all()
    assert any("Filled 1 missing value" in message for message in filled.warnings)


def test_other_channels_are_named(finished, tmp_path):
    _, _, model, data = finished
    frame = data.frame.iloc[-60:].drop(columns=[data.channels[0]]).assign(extra_sensor=1.0)
    with pytest.raises(DataError) as caught:
        forecast_future(model, data, _write(frame, tmp_path / "other.csv"))
    message = str(caught.value)
    assert f"missing '{data.channels[0]}'" in message and "extra 'extra_sensor'" in message
    assert "other channels" in message


def test_too_few_rows_say_how_many_are_needed_and_found(finished, tmp_path):
    _, _, model, data = finished
    with pytest.raises(DataError, match=f"seq_len {SEQ_LEN} rows of context, but the file .* has 20 rows"):
        forecast_future(model, data, _write(data.frame.iloc[-20:], tmp_path / "short.csv"))
    with pytest.raises(DataError, match=f"seq_len {SEQ_LEN} .* has 10 rows before the cut-off"):
        forecast_future(model, data, cutoff=10)


def test_another_frequency_names_the_runs_and_the_files(finished, tmp_path):
    _, _, model, data = finished
    every_other = data.frame.iloc[-200::2]  # twice the run's step
    with pytest.raises(DataError) as caught:
        forecast_future(model, data, _write(every_other, tmp_path / "coarse.csv"))
    theirs = pd.tseries.frequencies.to_offset(step_of(data.freq) * 2).freqstr
    message = str(caught.value)
    assert "another frequency" in message and f"steps every {data.freq}," in message
    assert f"the file every {theirs}" in message


def test_an_m4_run_is_declined_before_anything_is_loaded(tmp_path):
    config = RunConfig(data=DataConfig(name="m4", seasonal_patterns="Hourly", features="S"))
    run = RunFolder.create(config, tmp_path)
    with pytest.raises(DataError, match="An M4 run cannot forecast past the end"):
        forecast_run_future(run.path)


def test_dates_continue_at_fixed_and_calendar_steps():
    assert list(continue_dates("2020-01-01 23:00", "h", 2)) == [pd.Timestamp("2020-01-02 00:00"),
                                                                pd.Timestamp("2020-01-02 01:00")]
    assert continue_dates("2020-01-01 23:45", "15min", 1)[0] == pd.Timestamp("2020-01-02 00:00")
    tuesday = pd.Timestamp("2002-01-01")  # ILI is weekly, dated on Tuesdays: pandas' "W" would move to Sundays
    assert list(continue_dates(tuesday, "W", 2)) == [pd.Timestamp("2002-01-08"), pd.Timestamp("2002-01-15")]
    assert list(continue_dates("2020-01-15", "MS", 2)) == [pd.Timestamp("2020-02-15"), pd.Timestamp("2020-03-15")]
    assert continue_dates("2020-01-01", "QS", 1)[0] == pd.Timestamp("2020-04-01")
    assert continue_dates("2020-01-01", "2D", 1)[0] == pd.Timestamp("2020-01-03")


# --- the command line --------------------------------------------------------------------------------

def test_predict_writes_a_csv_and_prints_a_summary(finished, tmp_path, capsys):
    runs_dir, run, _, data = finished
    output = tmp_path / "future.csv"
    assert main(["predict", "--run", run.run_id, "--runs_dir", str(runs_dir), "--output", str(output)]) == 0
    out = capsys.readouterr().out
    assert f"forecast of the run's dataset ({data.spec.name}): {PRED_LEN} steps" in out
    assert "truth: none" in out and f"written: {output}" in out
    written = pd.read_csv(output, parse_dates=["date"])
    assert list(written.columns) == ["date", *data.target_channels] and len(written) == PRED_LEN
    assert np.isfinite(written[data.target_channels].to_numpy()).all()
    assert written["date"].iloc[0] == data.frame["date"].iloc[-1] + _step(data)


def test_predict_on_another_file_with_a_cutoff_prints_the_csv_and_scores_the_truth(finished, tmp_path, capsys):
    _, run, _, data = finished
    path = _write(data.frame.iloc[-80:], tmp_path / "recent.csv")
    assert main(["predict", "--run", str(run.path), "--data_path", str(path), "--cutoff", "75"]) == 0
    captured = capsys.readouterr()
    assert "forecast of the file" in captured.err and "recent.csv" in captured.err
    assert f"truth: 5 of {PRED_LEN} steps are in the file" in captured.err  # the file ends 5 rows after the cut-off
    lines = captured.out.splitlines()  # stdout is the CSV alone
    assert lines[0] == ",".join(["date", *data.target_channels]) and len(lines) == 1 + PRED_LEN
    assert lines[1].startswith(str(data.frame["date"].iloc[-80 + 74] + _step(data)))


def test_predict_mismatches_are_errors_not_tracebacks(finished, tmp_path, capsys):
    runs_dir, run, _, data = finished
    short = _write(data.frame.iloc[-20:], tmp_path / "short.csv")
    assert main(["predict", "--run", run.run_id, "--runs_dir", str(runs_dir), "--data_path", str(short)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Too few rows") and "has 20 rows" in err and "Traceback" not in err
    assert main(["predict", "--run", run.run_id, "--runs_dir", str(runs_dir),
                 "--data_path", str(tmp_path / "absent.csv")]) == 2
    assert "CSV file not found" in capsys.readouterr().err
    assert main(["predict", "--run", "../elsewhere", "--runs_dir", str(runs_dir)]) == 2


def test_a_run_that_did_not_finish_forecasts_with_its_best_weights_and_says_so(finished, tmp_path, capsys):
    _, run, _, _ = finished
    copy = Path(shutil.copytree(run.path, tmp_path / "stopped"))
    events = [line for line in (copy / "metrics.jsonl").read_text().splitlines()
              if json.loads(line)["type"] != "finished"]
    (copy / "metrics.jsonl").write_text("\n".join(events) + "\n")
    info = json.loads((copy / "config.json").read_text())
    info.update(status="running", pid=2 ** 22 + 1, host="elsewhere")  # its writer is gone: interrupted
    (copy / "config.json").write_text(json.dumps(info))
    assert main(["predict", "--run", str(copy), "--output", str(tmp_path / "out.csv")]) == 0
    assert "warning: The run stopped is interrupted, not finished" in capsys.readouterr().out
