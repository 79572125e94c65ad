"""The smaller things on the pages: sentinels reported and optional on Data, repaired unit names, an
upload named by its own name, and parameters counted as parameters in 4-bit."""

from __future__ import annotations

from test_app_data import _csv
from test_app_support import app_env, assert_clean, frame_with, open_page, plotly_specs, start_app, texts  # noqa: F401


def test_weather_sentinels_can_be_treated_as_missing_here_and_in_training(app_env):
    at = open_page(start_app(dataset="Weather"), "data")
    warnings = [w.value for w in at.warning]
    assert any("-9999 in 'OT' (50 rows" in w for w in warnings), warnings
    assert frame_with(at, "train mean").loc["OT", "min"] == -9999
    at.checkbox(key="data_sentinels_missing").check().run()
    assert_clean(at)
    assert at.session_state["working_config"].data.sentinels_missing  # the Train page starts runs with it
    assert frame_with(at, "train mean").loc["OT", "min"] > -100
    assert any("treated as missing" in i.value for i in at.info)


def test_weather_unit_names_are_shown_repaired(app_env):
    at = open_page(start_app(dataset="Weather"), "data")
    stats = frame_with(at, "train mean")
    assert "SWDR (W/m²)" in stats.index and "PAR (µmol/m²/s)" in stats.index
    assert not any("\ufffd" in name for name in stats.index)
    assert "replacement characters (U+FFFD)" in texts(at)
    traces = {t.get("name") for t in plotly_specs(at)[0]["data"]}
    assert not any("\ufffd" in str(name) for name in traces)


def test_an_upload_is_named_by_its_own_name(app_env, tmp_path):
    at = open_page(start_app(), "data")
    at.file_uploader(key="data_upload").upload("my series.csv", _csv(), "text/csv").run()
    assert_clean(at)
    # Its own name (made safe to show and store: the space becomes "_"), not the server's path.
    assert [h.value for h in at.subheader if h.value.startswith("custom")] == ["custom: my_series.csv"]
    assert str(tmp_path) not in " ".join(h.value for h in at.subheader)


def test_4bit_counts_parameters_not_packed_storage(app_env):
    at = open_page(start_app(backbone="tiny-llama"), "backbone")
    at.button(key="backbone_load").click().run()
    full = frame_with(at, "parameters kept").iloc[0]["parameters kept"]
    at.toggle(key="backbone_4bit").set_value(True).run()
    at.button(key="backbone_load").click().run()
    assert_clean(at)
    facts = frame_with(at, "parameters kept").iloc[0]
    assert facts["4-bit layers"] > 0  # really packed
    assert facts["parameters kept"] == full
