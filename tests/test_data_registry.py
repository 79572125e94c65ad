"""The dataset registry, descriptions, finding files, and fetching (never over the network)."""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request

import pytest

from timellm_core.data import fetch_dataset, find_dataset_file, get_dataset_spec, list_datasets, read_description
from timellm_core.data import locate
from timellm_core.data.locate import fetch_file
from timellm_core.errors import DataError

EXPECTED = {  # name: (file, split rule, freq, period)
    "ETTh1": ("ETT-small/ETTh1.csv", "ett_hour", "h", 24),
    "ETTh2": ("ETT-small/ETTh2.csv", "ett_hour", "h", 24),
    "ETTm1": ("ETT-small/ETTm1.csv", "ett_minute", "15min", 96),
    "ETTm2": ("ETT-small/ETTm2.csv", "ett_minute", "15min", 96),
    "Weather": ("weather/weather.csv", "ratio", "10min", 144),
    "ECL": ("electricity/electricity.csv", "ratio", "h", 24),
    "Traffic": ("traffic/traffic.csv", "ratio", "h", 24),
    "ILI": ("illness/national_illness.csv", "ratio", "W", 52),
}


def test_registry_entries():
    names = [spec.name for spec in list_datasets()]
    assert names[:8] == list(EXPECTED) and {"Synthetic", "custom", "m4"} <= set(names)
    for name, (relative, rule, freq, period) in EXPECTED.items():
        spec = get_dataset_spec(name)
        assert (spec.relative_path, spec.split_rule, spec.freq, spec.period) == (relative, rule, freq, period)
        assert spec.kind == "csv" and spec.target == "OT" and spec.url.startswith("https://")
        assert spec.url.endswith("/" + spec.file_name)
    assert get_dataset_spec("etth1").sha256 == "f18de3ad269cef59bb07b5438d79bb3042d3be49bdeecf01c1cd6d29695ee066"
    assert get_dataset_spec("ETTh1").size_bytes == 2589657
    assert "zhouhaoyi/ETDataset" in get_dataset_spec("ETTm2").url
    assert get_dataset_spec("electricity").name == "ECL" and get_dataset_spec("ECL").size_bytes > 90e6
    assert not get_dataset_spec("Traffic").size_exact and get_dataset_spec("Traffic").size_bytes > 130e6
    assert get_dataset_spec("M4").kind == "m4" and get_dataset_spec("synthetic").kind == "synthetic"


def test_unknown_name_lists_the_choices():
    with pytest.raises(DataError) as error:
        get_dataset_spec("ETTh3")
    assert "ETTh1" in str(error.value) and "Weather" in str(error.value) and "custom" in str(error.value)


def test_every_dataset_has_its_own_plain_description():
    texts = {}
    for spec in list_datasets():
        if spec.kind == "m4":
            continue  # written with the M4 loader
        text = read_description(spec.name)
        assert 80 < len(text) < 800 and "\n" not in text and not text.startswith("#")
        texts[spec.name] = text
    assert len(set(texts.values())) == len(texts)  # no dataset borrows another's sentence
    assert "transformer" in texts["ETTh1"].lower() and "influenza" in texts["ILI"].lower()


def test_find_prefers_the_project_folder_then_the_environment(tmp_path, monkeypatch):
    spec = get_dataset_spec("ETTh1")
    project, shared = tmp_path / "dataset", tmp_path / "shared"
    (shared / "ETT-small").mkdir(parents=True)
    (shared / "ETT-small" / "ETTh1.csv").write_text("date,OT\n")
    monkeypatch.setattr(locate, "DATASET_DIR", project)
    monkeypatch.setenv("TIMELLM_DATA", str(shared))
    assert find_dataset_file(spec) == shared / "ETT-small" / "ETTh1.csv"
    (project / "ETT-small").mkdir(parents=True)
    (project / "ETT-small" / "ETTh1.csv").write_text("date,OT\n")
    assert find_dataset_file(spec) == project / "ETT-small" / "ETTh1.csv"
    explicit = tmp_path / "mine.csv"
    explicit.write_text("date,OT\n")
    assert find_dataset_file(spec, str(explicit)) == explicit


def test_missing_file_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setattr(locate, "DATASET_DIR", tmp_path / "dataset")
    monkeypatch.setenv("TIMELLM_DATA", str(tmp_path / "shared"))
    with pytest.raises(DataError) as error:
        find_dataset_file(get_dataset_spec("Weather"))
    message = str(error.value)
    assert str(tmp_path / "dataset" / "weather" / "weather.csv") in message
    assert str(tmp_path / "shared" / "weather" / "weather.csv") in message
    assert "data fetch Weather" in message
    with pytest.raises(DataError, match="data_path"):
        find_dataset_file(get_dataset_spec("custom"))
    with pytest.raises(DataError, match="not found"):
        find_dataset_file(get_dataset_spec("custom"), str(tmp_path / "absent.csv"))


def test_fetch_offline_fails_fast_and_says_where_to_put_the_file(tmp_path, monkeypatch):
    calls = []

    def offline(request, timeout=None):
        calls.append((request.full_url, timeout))
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.setenv("TIMELLM_DATA", str(tmp_path / "shared"))
    with pytest.raises(DataError) as error:
        fetch_dataset("ECL", dest_dir=tmp_path / "dataset")
    message = str(error.value)
    assert str(tmp_path / "dataset" / "electricity" / "electricity.csv") in message
    assert "$TIMELLM_DATA/electricity/electricity.csv" in message and "offline" in message
    assert calls == [(get_dataset_spec("ECL").url, 10.0)]  # one try, with a short timeout
    assert not (tmp_path / "dataset").exists()  # nothing half-made left behind


def test_fetch_skips_files_already_present():
    path = fetch_dataset("ETTh1")  # found through TIMELLM_DATA: no download attempted
    assert path[0].name == "ETTh1.csv" and path[0].is_file()
    with pytest.raises(DataError, match="generated in code"):
        fetch_dataset("Synthetic")


def test_fetch_file_checks_size_and_sha256(tmp_path):
    source = tmp_path / "remote.csv"
    payload = b"date,OT\n2020-01-01 00:00:00,1.0\n" * 50
    source.write_bytes(payload)
    seen = []
    target = tmp_path / "out" / "weather" / "weather.csv"
    fetch_file(source.as_uri(), target, size_bytes=len(payload), sha256=hashlib.sha256(payload).hexdigest(),
               progress=lambda done, total: seen.append((done, total)))
    assert target.read_bytes() == payload and seen[-1] == (len(payload), len(payload))
    assert not target.with_name("weather.csv.part").exists()

    bad = tmp_path / "out" / "bad.csv"
    with pytest.raises(DataError, match="sha256"):
        fetch_file(source.as_uri(), bad, size_bytes=len(payload), sha256="0" * 64)
    with pytest.raises(DataError, match="bytes instead of"):
        fetch_file(source.as_uri(), bad, size_bytes=len(payload) + 1)
    with pytest.raises(DataError, match="far from"):
        fetch_file(source.as_uri(), bad, size_bytes=len(payload) * 2, size_exact=False)
    assert not bad.exists() and not bad.with_name("bad.csv.part").exists()
    fetch_file(source.as_uri(), bad, size_bytes=int(len(payload) * 1.01), size_exact=False)  # close enough
    assert bad.is_file()
