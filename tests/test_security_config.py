"""Serving defaults (localhost only, upload limit) and no secrets in run folders or terminal output."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from timellm_core.cli import main
from timellm_core.data import csv_checks
from timellm_core.errors import DataError
from timellm_core.safety import MAX_UPLOAD_BYTES, MAX_UPLOAD_MB, REDACTED, redact_secrets

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TOKEN = "hf_TestTokenValue0123456789abcdefGHIJ"
OTHER_SECRET = "s3cr3t-Value-For-Tests-42"


def _streamlit_config() -> dict:
    return tomllib.loads((PROJECT_ROOT / ".streamlit" / "config.toml").read_text())


def test_app_binds_to_localhost_by_default():
    server = _streamlit_config()["server"]
    assert server["address"] == "127.0.0.1"
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    run_lines = [line for line in makefile.splitlines() if "streamlit run" in line]
    assert run_lines, "the Makefile has no `streamlit run` line"
    for line in run_lines:
        assert "--server.address 127.0.0.1" in line, line
        assert "0.0.0.0" not in line


def test_app_hides_tracebacks_and_collects_no_usage_data():
    config = _streamlit_config()
    assert config["client"]["showErrorDetails"] in ("none", False)
    assert config["browser"]["gatherUsageStats"] is False


def test_upload_limit_is_stated_in_both_places_and_agrees():
    max_upload_mb = _streamlit_config()["server"]["maxUploadSize"]
    assert max_upload_mb == MAX_UPLOAD_MB
    # The core's CSV reader applies the same limit to files on disk and to uploaded bytes.
    assert csv_checks.MAX_CSV_BYTES == MAX_UPLOAD_BYTES
    # Streamlit counts MiB: its limit is not below the core's, so the core's message is what people see.
    assert max_upload_mb * 2**20 >= csv_checks.MAX_CSV_BYTES


def test_a_file_over_the_limit_is_refused_before_it_is_read(tmp_path, capsys):
    huge = tmp_path / "huge.csv"
    with open(huge, "wb") as handle:
        handle.truncate(MAX_UPLOAD_BYTES + 1)  # sparse: costs no disk, but stat() says 200 MB
    assert main(["data", "check", str(huge)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "over the 200 MB limit" in err and "fewer rows or channels" in err


def test_uploaded_bytes_over_the_limit_are_refused(monkeypatch):
    monkeypatch.setattr(csv_checks, "MAX_CSV_BYTES", 1000)
    payload = b"date,a\n" + b"".join(b"2021-01-01 00:00:00,1\n" for _ in range(100))
    with pytest.raises(DataError) as caught:
        csv_checks.check_csv(payload)
    assert "MB limit" in str(caught.value) and "The uploaded CSV" in str(caught.value)


def test_redaction_of_tokens():
    environ = {"HF_TOKEN": TOKEN, "MY_SERVICE_API_KEY": OTHER_SECRET, "PATH": "/usr/bin", "DEBUG": "true"}
    text = f"GET https://huggingface.co/x?token={TOKEN} failed; key={OTHER_SECRET}; path /usr/bin; true"
    cleaned = redact_secrets(text, environ)
    assert TOKEN not in cleaned and OTHER_SECRET not in cleaned
    assert cleaned.count(REDACTED) == 2 and "/usr/bin" in cleaned and "true" in cleaned
    assert TOKEN not in redact_secrets(f"Authorization: Bearer {TOKEN}", {})  # shaped like a hub token


def test_cli_error_messages_never_echo_a_token(monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    from timellm_core.cli import data_commands

    def failing(args):
        raise DataError(f"Download of https://example.org/f.csv?token={TOKEN} failed.")

    monkeypatch.setattr(data_commands, "_list", failing)
    assert main(["data", "list"]) == 2
    err = capsys.readouterr().err
    assert TOKEN not in err and REDACTED in err and "Download of" in err


def _tiny_train_args(runs: Path, epochs: int = 1) -> list[str]:
    return ["train", "--data", "Synthetic", "--llm_model_path", "tiny-llama", "--llm_layers", "1",
            "--seq_len", "32", "--pred_len", "8", "--patch_len", "8", "--stride", "4", "--d_model", "8",
            "--d_ff", "16", "--n_heads", "2", "--num_prototypes", "16", "--batch_size", "8",
            "--eval_batch_size", "64", "--train_epochs", str(epochs), "--max_train_windows", "16",
            "--max_eval_windows", "16", "--device", "cpu", "--runs_dir", str(runs)]


def test_no_secret_reaches_run_files_or_cli_output(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", TOKEN)
    monkeypatch.setenv("MY_DATABASE_PASSWORD", OTHER_SECRET)
    runs = tmp_path / "runs"
    assert main(_tiny_train_args(runs)) == 0
    captured = capsys.readouterr()
    [run] = list(runs.iterdir())
    texts = {"stdout": captured.out, "stderr": captured.err}
    for path in run.iterdir():
        if path.suffix in (".json", ".jsonl"):
            texts[path.name] = path.read_text()
        else:
            texts[path.name] = path.read_bytes().decode("latin-1")  # safetensors metadata, npz
    assert {"config.json", "metrics.jsonl", "test_metrics.json"} <= set(texts)
    for name, text in texts.items():
        assert TOKEN not in text, f"token found in {name}"
        assert OTHER_SECRET not in text, f"secret found in {name}"
        assert not re.search(r"hf_[A-Za-z0-9]{30,}", text), name
    json.loads(texts["config.json"])  # still a readable config


def test_a_failure_message_with_a_token_is_redacted_in_metrics_jsonl(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    from timellm_core.training import trainer as trainer_module

    def leaking_loss(name):
        def loss(forecast, target, mask=None):
            raise RuntimeError(f"remote call https://hub.example/api?token={TOKEN} refused")
        return loss

    monkeypatch.setattr(trainer_module, "loss_function", leaking_loss)
    runs = tmp_path / "runs"
    assert main(_tiny_train_args(runs)) == 2
    err = capsys.readouterr().err
    assert TOKEN not in err and "refused" in err and "Traceback" not in err
    [run] = list(runs.iterdir())
    for name in ("metrics.jsonl", "config.json"):
        assert TOKEN not in (run / name).read_text(), name
    failed = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
              if json.loads(line)["type"] == "failed"]
    assert failed and REDACTED in failed[0]["message"]
