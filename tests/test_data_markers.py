"""Values and names that are not what they look like: -9999 sentinels, "n/a" cells, damaged unit names."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from timellm_core.config import DataConfig
from timellm_core.data import check_csv, damaged_names, find_sentinels, prepare_data, repaired_name
from timellm_core.errors import DataError


def _frame(values: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"date": pd.date_range("2021-01-01", periods=len(values), freq="h"), "wind": values})


def test_a_sentinel_far_outside_the_channel_is_found_and_a_plain_value_is_not():
    values = [1.0, 2.0, -9999.0, 3.0, 2.5, -9999.0, 1.5]
    [found] = find_sentinels(_frame(values), ["wind"])
    assert (found.value, found.count, found.first_row) == (-9999.0, 2, 2)
    # -999 among values from -2000 to 2000 is a measurement like the others.
    assert find_sentinels(_frame([-2000.0, -999.0, 0.0, 2000.0, -999.0]), ["wind"]) == []


def test_weather_sentinels_are_reported_and_treated_as_missing_only_when_asked():
    raw = prepare_data(DataConfig(name="Weather"), 96, 24)
    found = {s.channel: s.count for s in find_sentinels(raw.frame, list(raw.channels))}
    assert found["OT"] == 50 and found["wv (m/s)"] == 1  # the target carries them too
    assert (raw.frame["OT"] == -9999).sum() == 50  # untouched unless asked
    treated = prepare_data(DataConfig(name="Weather", sentinels_missing=True), 96, 24)
    assert not (treated.frame[list(found)] == -9999).any().any()
    assert treated.frame["OT"].min() > -100
    assert any(w.startswith("Treated 81 sentinel value(s) as missing") for w in treated.warnings)
    assert not np.allclose(treated.mean, raw.mean)  # the scaler no longer sees them


def test_damaged_unit_names_are_repaired_for_display():
    assert repaired_name("SWDR (W/m\ufffd)") == "SWDR (W/m²)"
    assert repaired_name("PAR (\ufffdmol/m\ufffd/s)") == "PAR (µmol/m²/s)"
    assert repaired_name("T (degC)") == "T (degC)"
    weather = prepare_data(DataConfig(name="Weather"), 96, 24)
    assert damaged_names(list(weather.channels))["SWDR (W/m\ufffd)"] == "SWDR (W/m²)"


def _csv_with(cells: dict[int, str], fill: str = "") -> bytes:
    rows = ["date,a,OT"] + [f"2021-01-01 {h:02d}:00:00,{cells.get(h, str(h))},{h * 2}" for h in range(20)]
    return ("\n".join(rows) + "\n").encode()


def test_na_like_cells_are_counted_in_the_messages():
    with pytest.raises(DataError) as refused:
        check_csv(_csv_with({3: "n/a", 5: "NULL"}))
    message = str(refused.value)
    assert "2 missing value(s)" in message and "'n/a'" in message and "line 5" in message
    with pytest.raises(DataError) as mixed:
        check_csv(_csv_with({3: "n/a", 6: "abc"}))
    assert "'abc'" in str(mixed.value) and "'n/a'" in str(mixed.value)  # the bad cell and the missing marker
    filled = check_csv(_csv_with({3: "n/a"}), fill_missing=True)
    assert any("Filled 1 missing value(s)" in w and "'n/a'" in w for w in filled.warnings)
