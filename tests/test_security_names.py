"""Uploaded file names and run ids cannot reach outside the upload folder or runs/."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from timellm_core.cli import main
from timellm_core.errors import RunError, TimeLLMError
from timellm_core.safety import check_name, child_path, confine, safe_file_name
from timellm_core.training.runs import RunFolder, check_run_id, find_run, run_path

HOSTILE_NAMES = [
    "../../etc/passwd",
    "..\\..\\windows\\system32\\config.csv",
    "/etc/passwd",
    "C:\\Users\\x\\data.csv",
    "data\x00.csv",
    "..",
    ".",
    ".hidden.csv",
    "",
    "\x00",
    "a/../../b.csv",
    "con\nsole\r.csv",
    "ünïcødé wéather (1).csv",
    "x" * 500 + ".csv",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_safe_file_name_is_one_plain_entry_inside_the_folder(tmp_path, name):
    cleaned = safe_file_name(name)
    assert cleaned and cleaned not in (".", "..")
    assert "/" not in cleaned and "\\" not in cleaned and "\x00" not in cleaned
    assert not cleaned.startswith(".")
    assert all(ch.isascii() and (ch.isalnum() or ch in "_.-") for ch in cleaned), cleaned
    assert len(cleaned) <= 100
    target = (tmp_path / cleaned).resolve()
    assert target.parent == tmp_path.resolve()
    target.write_text("ok")  # creatable: no NUL, no missing parent folder
    assert target.read_text() == "ok"


def test_safe_file_name_keeps_what_is_harmless():
    assert safe_file_name("ETTh1.csv") == "ETTh1.csv"
    assert safe_file_name("../../etc/passwd") == "passwd"
    assert safe_file_name("C:\\Users\\me\\my data.csv") == "my_data.csv"
    assert safe_file_name("x" * 500 + ".csv").endswith(".csv")
    assert safe_file_name("..", default="upload") == "upload"


@pytest.mark.parametrize("run_id", ["../../etc", "/etc", "a/b", "..", ".", "a\x00b", "", "x" * 200, "run id"])
def test_run_ids_that_leave_runs_are_refused_with_the_rule(tmp_path, run_id):
    with pytest.raises(RunError) as caught:
        run_path(tmp_path, run_id)
    message = str(caught.value)
    assert "Invalid run id" in message and "no path separators" in message
    with pytest.raises(RunError):
        check_run_id(run_id)


def test_run_folder_create_with_traversing_id_writes_nothing_outside(tmp_path):
    from timellm_core.config import RunConfig

    runs = tmp_path / "runs"
    runs.mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    for hostile in ("../escape", "/tmp/escape-run", "..", "a\x00b"):
        with pytest.raises(RunError):
            RunFolder.create(RunConfig(), runs, run_id=hostile)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert list(runs.iterdir()) == []


def test_free_text_run_names_become_safe_ids(tmp_path):
    from timellm_core.config import RunConfig

    run = RunFolder.create(RunConfig(), tmp_path, name="../../etc/passwd\x00 evil")
    assert run.path.parent == tmp_path.resolve()
    assert "/" not in run.run_id and ".." not in run.run_id.split("_")[0]


def test_find_run_by_id_cannot_escape_the_runs_folder(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "config.json").write_text("{}")
    runs = tmp_path / "runs"
    runs.mkdir()
    with pytest.raises(RunError) as caught:
        find_run("..", runs)
    assert "run id" in str(caught.value).lower()
    with pytest.raises(RunError):
        find_run("a\x00b", runs)


def test_cli_evaluate_with_hostile_run_id_exits_2_with_a_message(tmp_path, capsys):
    runs = tmp_path / "runs"
    runs.mkdir()
    for hostile in ("../../etc/passwd", "a\x00b", ".."):
        assert main(["evaluate", "--run", hostile, "--runs_dir", str(runs)]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err
        assert "No run at" in err or "Invalid run id" in err, err
        assert "runs list" in err or "no path separators" in err


def test_confine_refuses_paths_outside_the_root(tmp_path):
    root = tmp_path / "uploads"
    root.mkdir()
    assert confine("a.csv", root) == (root / "a.csv").resolve()
    for hostile in ("../a.csv", "/etc/passwd", str(tmp_path / "other.csv"), "x/../../a.csv"):
        with pytest.raises(TimeLLMError) as caught:
            confine(hostile, root, what="upload")
        assert "points outside" in str(caught.value) and "no '..'" in str(caught.value)
    with pytest.raises(TimeLLMError, match="NUL"):
        confine("a\x00.csv", root)


def test_confine_refuses_a_symlink_that_points_outside(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(TimeLLMError, match="points outside"):
        confine("link/secret.txt", root)


def test_check_name_and_child_path(tmp_path):
    assert child_path(tmp_path, "run-1") == (tmp_path / "run-1").resolve()
    for hostile in ("..", "../x", "a/b", "", None, ".hidden", "a\x00"):
        with pytest.raises(TimeLLMError) as caught:
            check_name(hostile, "run id")
        assert "Invalid run id" in str(caught.value)


def test_app_upload_folder_keeps_hostile_names_inside(tmp_path, monkeypatch):
    """The Data page stores uploads under safe names (checked through the page's own code)."""
    from streamlit.testing.v1 import AppTest

    uploads = tmp_path / "uploads"
    monkeypatch.setenv("TIMELLM_UPLOADS", str(uploads))
    monkeypatch.setenv("TIMELLM_RUNS", str(tmp_path / "runs"))
    start = datetime(2021, 1, 1)  # 1000 hourly rows: enough for the default session's 96 -> 96
    rows = "".join(f"{start + timedelta(hours=h):%Y-%m-%d %H:%M:%S},{h % 17},{h % 5}\n" for h in range(1000))
    payload = ("date,a,b\n" + rows).encode()
    app = str(Path(__file__).resolve().parents[1] / "app.py")
    # Streamlit itself refuses NUL bytes in upload names; safe_file_name covers them above.
    for hostile in ("../../../evil.csv", "..\\..\\evil.csv", "/etc/cron.d/job.csv"):
        # One session per upload: each starts from a fresh page, as a new visitor would.
        at = AppTest.from_file(app, default_timeout=60)
        at.run()
        at.switch_page("pages/data.py").run()
        at.file_uploader(key="data_upload").set_value((hostile, payload, "text/csv")).run()
        assert not at.exception, at.exception
        assert [e.value for e in at.error] == []
        assert at.session_state["dataset"] == "custom"
        stored_path = Path(at.session_state["custom_csv_path"])
        assert stored_path.resolve().parent == uploads.resolve()
    stored = sorted(p.name for p in uploads.iterdir())
    assert stored and all(name.endswith(".csv") and "\x00" not in name and not name.startswith(".")
                          for name in stored)
    assert not (tmp_path / "evil.csv").exists() and not list(tmp_path.glob("*evil*"))
    for path in uploads.iterdir():
        assert path.resolve().parent == uploads.resolve()
