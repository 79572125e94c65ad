"""The Data page beyond the registry datasets: uploads checked by the data layer, and M4 series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from test_app_support import app_env, assert_clean, frame_with, open_page, plotly_specs, start_app, texts  # noqa: F401


def _csv(rows: int = 1000, missing_at: int | None = None) -> bytes:
    dates = pd.date_range("2021-01-01", periods=rows, freq="h")
    t = np.arange(rows)
    frame = pd.DataFrame({"date": dates.strftime("%Y-%m-%d %H:%M:%S"), "load": np.sin(t / 24 * 2 * np.pi) + 0.01 * t,
                          "OT": np.cos(t / 24 * 2 * np.pi)})
    text = frame.to_csv(index=False)
    if missing_at is not None:
        lines = text.splitlines()
        header, first = lines[0], lines[missing_at].split(",")
        first[1] = ""
        lines[missing_at] = ",".join(first)
        text = "\n".join([header] + lines[1:]) + "\n"
    return text.encode("utf-8")


def test_uploaded_csv_is_checked_selected_and_drawn(app_env, tmp_path):
    at = open_page(start_app(), "data")
    at.file_uploader(key="data_upload").upload("my series.csv", _csv(), "text/csv").run()
    assert_clean(at)
    assert at.session_state["dataset"] == "custom"
    assert at.selectbox(key="dataset").value == "custom"
    saved = list((tmp_path / "uploads").glob("my_series-*.csv"))
    assert len(saved) == 1 and saved[0].read_bytes() == _csv()
    assert any("1000 rows, 2 channels" in s.value for s in at.success)
    specs = plotly_specs(at)
    assert {"load", "OT"} <= {t.get("name") for t in specs[0]["data"]}
    assert list(frame_with(at, "train mean").index) == ["load", "OT"]


def test_a_bad_csv_shows_the_data_layer_message_and_keeps_the_choice(app_env):
    at = open_page(start_app(dataset="ETTh1"), "data")
    at.file_uploader(key="data_upload").upload("gaps.csv", _csv(missing_at=5), "text/csv").run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "load" in errors[0] and "line 6" in errors[0]  # names the column and line
    assert at.session_state["dataset"] == "ETTh1"  # a refused file does not replace the dataset


@pytest.mark.parametrize("header, cell, fragments", [
    ("date,load,load,OT", None, ["repeats column name", "'load' in columns 2, 3"]),
    ("date,load,OT", "1e40", ["too large for float32", "column 'load' at line 11"]),
])
def test_an_upload_with_repeated_names_or_a_float32_overflow_is_refused(app_env, header, cell, fragments):
    lines = _csv().decode().splitlines()
    if cell is None:  # one more column under the repeated name
        lines = [header] + [line + ",0.5" for line in lines[1:]]
        lines = [lines[0]] + [f"{l.split(',')[0]},{l.split(',')[1]},{l.split(',')[3]},{l.split(',')[2]}"
                              for l in lines[1:]]
    else:
        parts = lines[10].split(",")
        lines[10] = ",".join([parts[0], cell, parts[2]])
    at = open_page(start_app(dataset="ETTh1"), "data")
    at.file_uploader(key="data_upload").upload("teacher.csv", ("\n".join(lines) + "\n").encode(), "text/csv").run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and all(fragment in errors[0] for fragment in fragments), errors
    assert at.session_state["dataset"] == "ETTh1"


def test_an_upload_with_day_first_dates_is_read_in_time_order(app_env):
    dates = pd.date_range("2021-01-01", "2021-03-25", freq="h")  # the file: 1993 hourly rows
    t = np.arange(len(dates))
    text = pd.DataFrame({"date": dates.strftime("%d/%m/%Y %H:%M"), "load": np.sin(t / 24 * 2 * np.pi),
                         "OT": np.cos(t / 24 * 2 * np.pi)}).to_csv(index=False)
    at = open_page(start_app(), "data")
    at.file_uploader(key="data_upload").upload("dayfirst.csv", text.encode(), "text/csv").run()
    assert_clean(at)
    assert at.session_state["dataset"] == "custom"
    shown = " ".join(w.value for w in at.warning) + " ".join(i.value for i in at.info)
    assert "read day-first" in shown, shown
    assert "not in increasing order" not in shown
    x = [str(value) for value in plotly_specs(at)[0]["data"][0]["x"]]
    assert x[0].startswith("2021-01-01") and x[-1].startswith("2021-03-25T00"), (x[0], x[-1])
    assert x == sorted(x)


def test_a_csv_too_short_for_the_windows_is_refused_with_the_numbers(app_env):
    at = open_page(start_app(), "data")
    at.file_uploader(key="data_upload").upload("short.csv", _csv(rows=60), "text/csv").run()
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "Too few rows" in errors[0] and "seq_len 96" in errors[0]
    assert "set on the Train page" in errors[0]  # where to change them


def test_m4_pattern_and_series_with_the_test_horizon(app_env):
    at = open_page(start_app(dataset="m4", m4_pattern="Hourly"), "data")
    assert {m.label: m.value for m in at.metric}["Horizon"] == "48"
    chart = plotly_specs(at)[0]
    history, horizon = chart["data"][0], chart["data"][1]
    assert horizon["name"] == "test horizon" and len(horizon["y"]) == 48 + 1  # joined to the last value
    assert chart["layout"]["shapes"]  # the shaded test horizon
    at.selectbox(key="m4_series_Hourly").set_value("H10").run()
    assert_clean(at)
    assert plotly_specs(at)[0]["layout"]["title"]["text"].startswith("H10:")


@pytest.mark.parametrize("pattern", ["Weekly"])
def test_m4_other_pattern_uses_its_own_lengths(app_env, pattern):
    at = open_page(start_app(dataset="m4", m4_pattern=pattern), "data")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Horizon"] == "13" and metrics["Input (seq_len)"] == "26"
    assert "not scaled" in texts(at)


def test_a_dataset_not_downloaded_says_where_to_put_it_and_offers_a_download(app_env, monkeypatch, tmp_path):
    monkeypatch.setenv("TIMELLM_DATA", str(tmp_path / "empty"))  # nothing found there
    at = open_page(start_app(dataset="Traffic"), "data")
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 1 and "Traffic" in warnings[0] and "data fetch Traffic" in warnings[0]
    assert at.button(key="data_fetch").label.startswith("Download Traffic")
    assert not plotly_specs(at)


def test_an_m4_pattern_not_downloaded_offers_its_download(app_env):
    at = open_page(start_app(dataset="m4", m4_pattern="Yearly"), "data")
    assert "Yearly-train.csv" in at.warning[0].value
    assert at.button(key="m4_fetch").label == "Download M4 Yearly"
    assert at.selectbox(key="m4_pattern").options == ["Yearly", "Quarterly", "Monthly", "Weekly", "Daily", "Hourly"]
