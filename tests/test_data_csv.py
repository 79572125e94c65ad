"""Reading and checking user CSVs: encodings, separators, and each bad case with its message."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from timellm_core.config import DataConfig
from timellm_core.data import check_csv, prepare_data, read_series_csv
from timellm_core.errors import DataError


def _hourly(rows: int, start: str = "2021-03-01 00:00") -> list[str]:
    return [str(stamp) for stamp in pd.date_range(start, periods=rows, freq="h")]


def _write(tmp_path: Path, text: str, name: str = "series.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def _csv(rows: list[list[object]], header: str = "date,a,b", sep: str = ",") -> str:
    return header.replace(",", sep) + "\n" + "\n".join(sep.join(str(v) for v in row) for row in rows) + "\n"


def _good_rows(rows: int = 6) -> list[list[object]]:
    return [[stamp, i * 1.5, 10 - i] for i, stamp in enumerate(_hourly(rows))]


def test_plain_utf8_reads_dates_and_channels(tmp_path):
    frame, warnings = read_series_csv(_write(tmp_path, _csv(_good_rows())))
    assert list(frame.columns) == ["date", "a", "b"] and warnings == []
    assert frame["date"].dtype.kind == "M" and frame["a"].dtype == np.float64
    assert frame["a"].tolist() == [0.0, 1.5, 3.0, 4.5, 6.0, 7.5]


def test_gbk_with_chinese_column_names(tmp_path):
    text = _csv(_good_rows(), header="日期,负荷,温度")
    path = _write(tmp_path, text, encoding="gbk")
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")  # the file really is not UTF-8
    frame, warnings = read_series_csv(path)
    assert list(frame.columns) == ["date", "负荷", "温度"]  # first column detected as the dates
    assert frame["负荷"].iloc[2] == 3.0
    assert any("GBK" in message for message in warnings)


def test_utf8_bom_and_utf16(tmp_path):
    text = _csv(_good_rows())
    frame, _ = read_series_csv(_write(tmp_path, "\ufeff" + text, "bom.csv"))
    assert list(frame.columns) == ["date", "a", "b"]  # no BOM glued to 'date'
    frame16, _ = read_series_csv(_write(tmp_path, text, "utf16.csv", encoding="utf-16"))
    assert list(frame16.columns) == ["date", "a", "b"] and frame16["b"].iloc[-1] == 5.0


def test_semicolon_with_decimal_comma_and_tab(tmp_path):
    rows = [[stamp, f"{i},5", i] for i, stamp in enumerate(_hourly(5))]
    frame, _ = read_series_csv(_write(tmp_path, _csv(rows, sep=";"), "semi.csv"))
    assert list(frame.columns) == ["date", "a", "b"] and frame["a"].tolist() == [0.5, 1.5, 2.5, 3.5, 4.5]
    frame_tab, _ = read_series_csv(_write(tmp_path, _csv(_good_rows(), sep="\t"), "tab.csv"))
    assert list(frame_tab.columns) == ["date", "a", "b"] and frame_tab["b"].iloc[0] == 10.0


def test_bytes_and_file_objects_are_accepted(tmp_path):
    data = _csv(_good_rows()).encode("utf-8")
    from_bytes, _ = read_series_csv(data)
    upload = io.BytesIO(data)
    upload.name = "upload.csv"
    from_upload, _ = read_series_csv(upload)
    assert from_bytes.equals(from_upload) and len(from_bytes) == 6


def test_non_numeric_cell_names_column_line_and_value(tmp_path):
    rows = _good_rows()
    rows[2][2] = "abc"  # data row 3 -> file line 4
    with pytest.raises(DataError) as error:
        read_series_csv(_write(tmp_path, _csv(rows)))
    message = str(error.value)
    assert "column 'b' is not numeric" in message and "line 4" in message and "'abc'" in message


def test_nan_is_an_error_naming_rows_and_columns(tmp_path):
    rows = _good_rows()
    rows[1][1] = ""
    rows[4][2] = "NaN"
    with pytest.raises(DataError) as error:
        read_series_csv(_write(tmp_path, _csv(rows)))
    message = str(error.value)
    assert "2 missing value(s)" in message
    assert "column 'a' at line 3" in message and "column 'b' at line 6" in message
    assert "fill_missing" in message


def test_fill_missing_fills_forward_then_backward(tmp_path):
    rows = _good_rows()
    rows[0][1] = ""  # leading gap: takes the next value
    rows[3][1] = ""  # inner gap: takes the previous value
    frame, warnings = read_series_csv(_write(tmp_path, _csv(rows)), fill_missing=True)
    assert frame["a"].tolist() == [1.5, 1.5, 3.0, 3.0, 6.0, 7.5]
    assert any("Filled 2 missing value(s)" in message for message in warnings)


def test_inf_is_an_error_even_with_fill_missing(tmp_path):
    rows = _good_rows()
    rows[2][1] = "inf"
    path = _write(tmp_path, _csv(rows))
    for fill in (False, True):
        with pytest.raises(DataError) as error:
            read_series_csv(path, fill_missing=fill)
        assert "infinite" in str(error.value) and "column 'a' at line 4" in str(error.value)


def test_duplicate_timestamps_warn_and_keep_rows(tmp_path):
    rows = _good_rows()
    rows[3][0] = rows[2][0]
    frame, warnings = read_series_csv(_write(tmp_path, _csv(rows)))
    assert len(frame) == 6
    assert any("1 duplicated timestamp" in message and "line 5" in message for message in warnings)


def test_unsorted_timestamps_warn_and_sort_stably(tmp_path):
    rows = _good_rows()
    rows[1], rows[4] = rows[4], rows[1]
    rows.append([rows[0][0], 99, 99])  # a duplicate of the first time, last in the file
    frame, warnings = read_series_csv(_write(tmp_path, _csv(rows)))
    assert frame["date"].is_monotonic_increasing
    assert frame["a"].tolist() == [0.0, 99.0, 1.5, 3.0, 4.5, 6.0, 7.5]  # equal times keep file order
    assert any("not in increasing order" in message and "line 4" in message for message in warnings)


def test_constant_channel_scales_without_division_by_zero(tmp_path):
    rows = [[stamp, 3.25, float(np.sin(i))] for i, stamp in enumerate(_hourly(200))]
    path = _write(tmp_path, _csv(rows))
    _, warnings = read_series_csv(path)
    assert any("'a' is constant" in message for message in warnings)
    data = prepare_data(DataConfig(name="custom", data_path=str(path), target="b"), 24, 6)
    assert data.std[0] == 1.0 and data.mean[0] == 3.25
    values = data.split_values("train")
    assert np.isfinite(values).all() and np.all(values[:, 0] == 0)


def test_single_row_and_empty_files(tmp_path):
    with pytest.raises(DataError, match="1 data row"):
        read_series_csv(_write(tmp_path, _csv(_good_rows(1))))
    with pytest.raises(DataError, match="empty"):
        read_series_csv(_write(tmp_path, "", "empty.csv"))


def test_too_few_rows_for_seq_len_and_pred_len(tmp_path):
    path = _write(tmp_path, _csv(_good_rows(50)))
    with pytest.raises(DataError) as error:
        check_csv(path, seq_len=24, pred_len=12)
    message = str(error.value)
    # 50 rows: train [0, 35), val [11, 40), test [16, 50); each needs 24 + 12 = 36.
    assert "needs at least 36 rows" in message and "train 35, val 29, test 34" in message
    assert "at least 111 rows for these lengths" in message  # 110 rows leave val 11 + 24 < 36
    report = check_csv(_write(tmp_path, _csv(_good_rows(360)), "long.csv"), seq_len=24, pred_len=12)
    # int(360 * 0.7) is 251 in floating point (251.99999999999997), exactly as the reference computes it.
    assert report.borders == {"train": (0, 251), "val": (227, 288), "test": (264, 360)}
    assert report.windows == {"train": 251 - 35, "val": 61 - 35, "test": 96 - 35}
    assert all(count > 0 for count in report.windows.values())


def test_check_report_summary(tmp_path):
    report = check_csv(_write(tmp_path, _csv(_good_rows(30))))
    assert report.rows == 30 and report.channels == ["a", "b"] and report.freq == "h" and report.period == 24
    assert report.windows is None and "OK" in report.summary()


def test_no_date_column_and_bad_dates(tmp_path):
    with pytest.raises(DataError, match="no date column"):
        read_series_csv(_write(tmp_path, "x,y\n1,2\n3,4\n5,6\n"))
    rows = _good_rows()
    rows[3][0] = "not a date"
    with pytest.raises(DataError) as error:
        read_series_csv(_write(tmp_path, _csv(rows), "dates.csv"))
    assert "line 5" in str(error.value) and "'not a date'" in str(error.value)


def test_size_limit_is_checked_before_reading(tmp_path):
    path = _write(tmp_path, _csv(_good_rows(100)))
    with pytest.raises(DataError, match="limit"):
        read_series_csv(path, max_bytes=100)


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_series_csv(tmp_path / "nope.csv")


def test_weather_quirks_survive():
    path = Path(os.environ["TIMELLM_DATA"]) / "weather" / "weather.csv"
    if not path.is_file():
        pytest.skip("weather.csv not available")
    frame, warnings = read_series_csv(path)
    assert "SWDR (W/m\ufffd)" in frame.columns and "PAR (\ufffdmol/m\ufffd/s)" in frame.columns
    assert frame.columns[-1] == "OT" and len(frame) == 52696
    assert any("1 duplicated timestamp" in message and "2020-05-12 06:00:00" in message for message in warnings)
    assert any("gap" in message and "1h40min" in message for message in warnings)


def test_channel_names_are_the_target_choices_in_file_order(tmp_path):
    from timellm_core.data import channel_names

    assert channel_names(DataConfig(name="ETTh1")) == ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]
    assert channel_names(DataConfig(name="Synthetic"))[-1] == "OT"
    assert channel_names(DataConfig(name="m4", seasonal_patterns="Hourly", features="S")) is None
    # An upload: a semicolon file is read as prepare_data reads it, names as written.
    path = _write(tmp_path, _csv(_good_rows(), header="date;load;température", sep=";"))
    assert channel_names(DataConfig(name="custom", data_path=str(path))) == ["load", "température"]
    with pytest.raises(DataError):
        channel_names(DataConfig(name="custom", data_path=str(tmp_path / "missing.csv")))
