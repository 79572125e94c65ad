"""`python -m timellm_core data ...` through ``timellm_core.cli.main``."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from timellm_core.cli import main
from timellm_core.data import locate


def test_data_info_json_for_etth1(capsys):
    assert main(["data", "info", "--data", "ETTh1", "--seq_len", "512", "--pred_len", "96", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["rows"] == 17420 and info["channels"] == 7 and info["target"] == "OT" and info["freq"] == "h"
    assert info["windows"] == {"train": 8033, "val": 2785, "test": 2785}


def test_data_info_text_with_features_and_percent(capsys):
    code = main(["data", "info", "--data", "synthetic", "--seq_len", "96", "--pred_len", "24",
                 "--features", "S", "--percent", "50"])
    out = capsys.readouterr().out
    assert code == 0
    # 8760 rows: train end (6132 - 96) * 50 // 100 + 96 = 3114.
    assert "rows [0, 3114)  windows 2995" in out and "1 out (features S)" in out


def test_data_info_needs_lengths_and_m4_needs_a_pattern(capsys):
    assert main(["data", "info", "--data", "ETTh1"]) == 2
    assert "--seq_len and --pred_len" in capsys.readouterr().err
    assert main(["data", "info", "--data", "m4"]) == 2
    err = capsys.readouterr().err
    assert "--seasonal_patterns" in err and "Hourly" in err and "Traceback" not in err


def test_data_list_json(capsys):
    assert main(["data", "list", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["ETTh1"]["available"] is True and rows["ETTh1"]["path"].endswith("ETTh1.csv")
    assert rows["Synthetic"]["available"] is True and rows["ECL"]["file"] == "electricity/electricity.csv"


def test_data_check_exit_codes(tmp_path, capsys):
    good = tmp_path / "good.csv"
    good.write_text("date,a\n" + "".join(f"2021-01-01 {h:02d}:00:00,{h}\n" for h in range(24)))
    assert main(["data", "check", str(good)]) == 0
    assert "OK" in capsys.readouterr().out
    bad = tmp_path / "bad.csv"
    bad.write_text("date,a\n2021-01-01 00:00:00,1\n2021-01-01 01:00:00,oops\n2021-01-01 02:00:00,3\n")
    assert main(["data", "check", str(bad)]) == 2
    captured = capsys.readouterr()
    assert "error:" in captured.err and "'oops'" in captured.err and "line 3" in captured.err
    assert "Traceback" not in captured.err
    assert main(["data", "check", str(good), "--seq_len", "20", "--pred_len", "10"]) == 2
    assert "needs at least 30 rows" in capsys.readouterr().err


def test_data_fetch_offline_names_where_to_put_the_file(tmp_path, monkeypatch, capsys):
    def offline(request, timeout=None):
        raise urllib.error.URLError("Network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.setattr(locate, "DATASET_DIR", tmp_path / "dataset")
    monkeypatch.setenv("TIMELLM_DATA", str(tmp_path / "shared"))
    assert main(["data", "fetch", "Traffic"]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "dataset" / "traffic" / "traffic.csv") in err and "Network is unreachable" in err
