"""`kill -9` in the middle of a run: the run folder stays readable, its checkpoint loads, and it resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from timellm_core.backbones import load_backbone
from timellm_core.cli import main
from timellm_core.data import prepare_data
from timellm_core.training import checkpoint as ckpt
from timellm_core.training.parts import build_model
from timellm_core.training.runs import CHECKPOINT_FILE, MODEL_FILE, RunFolder, load_run

PROJECT_ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 3


def _train_argv(runs: Path) -> list[str]:
    return ["train", "--data", "Synthetic", "--llm_model_path", "tiny-llama", "--llm_layers", "1",
            "--seq_len", "32", "--pred_len", "8", "--patch_len", "8", "--stride", "4", "--d_model", "8",
            "--d_ff", "16", "--n_heads", "2", "--num_prototypes", "16", "--batch_size", "8",
            "--eval_batch_size", "64", "--train_epochs", str(EPOCHS), "--max_train_windows", "32",
            "--max_eval_windows", "16", "--lradj", "constant", "--learning_rate", "0.001",
            "--device", "cpu", "--no_test_each_epoch", "--runs_dir", str(runs)]


def _complete_lines(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n"), "metrics.jsonl ends in a torn line"
    return [json.loads(line) for line in text.splitlines()]


def _wait_for_checkpoint(process: subprocess.Popen, runs: Path, timeout: float = 240.0) -> Path:
    """The run folder, once its metrics.jsonl records epoch 1's resume checkpoint."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "training ended before it could be killed"
        for metrics in runs.glob("*/metrics.jsonl"):
            for line in metrics.read_text(encoding="utf-8").splitlines():
                if '"checkpoint"' in line and '"last"' in line:
                    return metrics.parent
        time.sleep(0.05)
    raise AssertionError("no checkpoint event within the time limit")


def test_kill_9_mid_run_leaves_a_readable_resumable_run(tmp_path, capsys):
    runs = tmp_path / "runs"
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    log = tmp_path / "train.log"
    with open(log, "wb") as output:
        process = subprocess.Popen([sys.executable, "-m", "timellm_core", *_train_argv(runs)], cwd=PROJECT_ROOT,
                                   env=env, stdout=output, stderr=subprocess.STDOUT)
        try:
            run = _wait_for_checkpoint(process, runs)
        finally:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
            process.wait(30)
    assert process.returncode == -signal.SIGKILL, log.read_text(errors="replace")

    # Readable: complete JSON lines, a config.json, and a status that says what happened.
    events = _complete_lines(run / "metrics.jsonl")
    assert events[0]["type"] == "started"
    assert not any(e["type"] in ("finished", "failed", "cancelled") for e in events)
    info = load_run(run)
    assert info.status == "interrupted" and info.config is not None and info.has_checkpoint

    # The last checkpoint is intact and fits the run's model.
    config = RunFolder.open(run).config()
    data = prepare_data(config.data, config.model.seq_len, config.model.pred_len)
    model = build_model(config, load_backbone(config.backbone, device="cpu"), data)
    weights, _, state, _ = ckpt.load_training_state(run / CHECKPOINT_FILE, config, model.trainable_state_dict())
    assert state["epoch"] >= 1 and set(weights) == set(model.trainable_state_dict())
    ckpt.load_model_weights(run / MODEL_FILE, config, model.trainable_state_dict())

    # Resumable: it continues after the checkpointed epoch and finishes.
    checkpointed = state["epoch"]
    assert main(["train", "--resume", str(run)]) == 0
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    events = _complete_lines(run / "metrics.jsonl")
    epochs = [e["epoch"] for e in events if e["type"] == "epoch"]
    assert epochs == list(range(1, EPOCHS + 1))  # none lost, none repeated
    resumed = [e for e in events if e["type"] == "resumed"]
    assert len(resumed) == 1 and resumed[0]["from_epoch"] == checkpointed
    assert events[-1]["type"] == "finished" and load_run(run).status == "finished"
    assert (run / "test_metrics.json").is_file() and (run / "predictions.npz").is_file()
