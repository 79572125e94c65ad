"""The Forecast page's "Forecast the future" section in AppTest: after the last row of the run's dataset,
from an earlier row with the truth, and from an uploaded CSV (with a message naming a mismatch)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from test_app_support import app_env, finished_run, open_page, plotly_specs, start_app  # noqa: F401 (fixtures)
from timellm_core.data import find_dataset_file, get_dataset_spec

HOUR = pd.Timedelta(hours=1)  # the finished run is on ETTh1, hourly


def _etth1_tail(rows: int) -> pd.DataFrame:
    frame = pd.read_csv(find_dataset_file(get_dataset_spec("ETTh1")), parse_dates=["date"])
    return frame.iloc[-rows:]


def _future_chart(at) -> dict:
    charts = [spec for spec in plotly_specs(at) if "steps after row" in spec["layout"]["title"]["text"]]
    assert len(charts) == 1, [spec["layout"].get("title") for spec in plotly_specs(at)]
    return charts[0]


def _traces(chart: dict) -> dict[str, tuple[list[pd.Timestamp], np.ndarray]]:
    return {trace["name"]: ([pd.Timestamp(x) for x in trace["x"]], np.asarray(trace["y"], dtype=float))
            for trace in chart["data"]}


def _open(finished_run, monkeypatch):
    runs_dir, run_id = finished_run
    monkeypatch.setenv("TIMELLM_RUNS", str(runs_dir))
    return open_page(start_app(run_id=run_id), "forecast")


def test_the_future_after_the_last_row_and_from_an_earlier_row(app_env, finished_run, monkeypatch):
    at = _open(finished_run, monkeypatch)
    traces = _traces(_future_chart(at))
    assert set(traces) == {"input context", "Time-LLM forecast"}  # no truth past the end of the file
    context_dates, context = traces["input context"]
    dates, forecast = traces["Time-LLM forecast"]
    last = _etth1_tail(1)["date"].iloc[-1]
    assert len(context) == 32 and context_dates[-1] == last
    assert len(forecast) == 8 and np.isfinite(forecast).all()
    assert dates[0] == last + HOUR and all(b - a == HOUR for a, b in zip(dates, dates[1:]))
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Forecast starts"] == str(last + HOUR) and metrics["MSE against the truth"] == "no truth"
    assert any(button.proto.label == "Download the forecast (CSV)" for button in at.get("download_button"))

    at.toggle(key="future_earlier").set_value(True).run()  # default: pred_len rows before the end
    assert not at.exception and not at.error
    traces = _traces(_future_chart(at))
    truth_dates, truth = traces["ground truth"]
    dates, forecast = traces["Time-LLM forecast"]
    assert truth_dates == dates and len(truth) == 8 and np.isfinite(forecast).all()
    np.testing.assert_allclose(truth, _etth1_tail(8)["OT"].to_numpy())  # the target, drawn by default
    assert float({m.label: m.value for m in at.metric}["MSE against the truth"]) >= 0


def test_the_future_of_an_uploaded_csv_and_a_mismatch(app_env, finished_run, monkeypatch):
    at = _open(finished_run, monkeypatch)
    at.radio(key="future_source").set_value("an uploaded CSV").run()
    assert not at.exception and not at.error
    tail = _etth1_tail(120).iloc[:100]  # stops 20 hours before the run's own data does
    reordered = tail[["date", *reversed([c for c in tail.columns if c != "date"])]]
    at.file_uploader(key="future_upload").upload("recent.csv", reordered.to_csv(index=False).encode(), "text/csv")
    at.run()
    assert not at.exception and not at.error
    dates, forecast = _traces(_future_chart(at))["Time-LLM forecast"]
    assert dates[0] == tail["date"].iloc[-1] + HOUR and np.isfinite(forecast).all()

    wrong = tail.drop(columns=["HUFL"]).assign(extra=1.0)
    at.file_uploader(key="future_upload").upload("wrong.csv", wrong.to_csv(index=False).encode(), "text/csv")
    at.run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "missing 'HUFL'" in errors[0] and "extra 'extra'" in errors[0]
    assert not [spec for spec in plotly_specs(at) if "steps after row" in spec["layout"]["title"]["text"]]
