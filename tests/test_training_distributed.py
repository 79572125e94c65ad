"""Two training processes on one CPU (torchrun, gloo): one run folder, one log, the same weights in both
processes, and a stopped two-process run resumed by two processes ends where an unbroken one does.

Each launch runs the real ``python -m timellm_core train`` in two processes through
``distributed_train_entry.py``, which records a hash of the trainable weights every process holds
(after each epoch, after restoring a checkpoint, after the final test). Tiny LLaMA backbone, T 32,
32 training windows: 4 batches of 8 an epoch, so 2 steps per process.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from distributed_train_entry import state_hash
from test_training_support import dataset_name
from timellm_core.cli import main
from timellm_core.training.runs import CHECKPOINT_FILE, MODEL_FILE, load_run, read_events

pytestmark = pytest.mark.slow

TESTS = Path(__file__).resolve().parent
ENTRY = TESTS / "distributed_train_entry.py"
PROCESSES = 2
LAUNCH_TIMEOUT_S = 600


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def train_args(runs_dir: Path, epochs: int = 2) -> list[str]:
    return ["train", "--preset", "cpu-quick", "--data", dataset_name(), "--llm_model_path", "tiny-llama",
            "--llm_dim", "128", "--seq_len", "32", "--pred_len", "8", "--max_train_windows", "32",
            "--max_eval_windows", "16", "--train_epochs", str(epochs), "--runs_dir", str(runs_dir)]


def launch(out: Path, args: list[str], stop_after_epoch: int = 0) -> subprocess.CompletedProcess:
    """torchrun with two CPU processes on a free local port; each rank's record lands in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", str(PROCESSES),
               "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
               str(ENTRY), str(out), str(stop_after_epoch), "--", *args]
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS.parent), str(TESTS)]),
                       HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=LAUNCH_TIMEOUT_S)


def rank_records(out: Path) -> list[dict]:
    records = [json.loads((out / f"rank{rank}.json").read_text()) for rank in range(PROCESSES)]
    assert [record["world_size"] for record in records] == [PROCESSES] * PROCESSES
    return records


def only_run(runs_dir: Path) -> Path:
    folders = [path for path in runs_dir.iterdir() if path.is_dir()]
    assert len(folders) == 1, folders  # rank 1 makes no folder of its own
    return folders[0]


def checkpoint_model_hash(run: Path) -> str:
    tensors = load_file(str(run / CHECKPOINT_FILE))
    return state_hash({name[len("model/"):]: t for name, t in tensors.items() if name.startswith("model/")})


def epoch_rows(run: Path) -> list[tuple]:
    return [(e["epoch"], e["train_loss"], e["val_mse"], e["lr"]) for e in read_events(run / "metrics.jsonl")
            if e["type"] == "epoch"]


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory):
    """An uninterrupted two-process run: (its folder, the ranks' records, torchrun's output)."""
    root = tmp_path_factory.mktemp("unbroken")
    done = launch(root / "ranks", train_args(root / "runs"))
    assert done.returncode == 0, done.stderr[-3000:]
    return only_run(root / "runs"), rank_records(root / "ranks"), done


def test_two_processes_write_one_run_folder_with_one_log(unbroken, tmp_path):
    run, _, done = unbroken
    assert load_run(run).status == "finished"
    printed = done.stdout + done.stderr
    for line in ("run folder: ", "epoch 1: train loss", "test (16 windows"):  # printed by rank 0 only
        assert printed.count(line) == (2 if line == "run folder: " else 1), line  # the folder: at start and end
    single_runs = tmp_path / "single"
    assert main(train_args(single_runs, epochs=1)) == 0  # the same files whatever the number of epochs
    single = only_run(single_runs)
    assert sorted(p.name for p in run.iterdir()) == sorted(p.name for p in single.iterdir())

    events = read_events(run / "metrics.jsonl")
    kinds = [event["type"] for event in events]
    started = next(event for event in events if event["type"] == "started")
    assert started["processes"] == 2 and started["steps_per_epoch"] == 2  # 4 batches shared by 2 processes
    assert started["backend"] == "gloo" and started["device"].startswith("cpu")
    single_started = next(e for e in read_events(single / "metrics.jsonl") if e["type"] == "started")
    assert single_started["processes"] == 1 and single_started["steps_per_epoch"] == 4
    assert single_started["backend"] is None
    # Every event once: one process writes the log.
    assert kinds.count("started") == 1 and kinds.count("finished") == 1 and kinds.count("epoch") == 2
    steps = [(e["epoch"], e["step"], e["global_step"]) for e in events if e["type"] == "step"]
    assert steps == [(1, 1, 1), (1, 2, 2), (2, 1, 3), (2, 2, 4)]
    assert len({json.dumps(event, sort_keys=True) for event in events}) == len(events)


def test_both_processes_hold_the_weights_the_run_folder_saved(unbroken):
    run, records, _ = unbroken
    assert all(record["processes"] == 2 and record["last_epoch"] == 2 for record in records)
    # Gradients are averaged over the processes, so both take the same steps from the same start.
    assert records[0]["after_last_epoch"] == records[1]["after_last_epoch"] == checkpoint_model_hash(run)
    assert records[0]["final"] == records[1]["final"] == state_hash(load_file(str(run / MODEL_FILE)))
    assert records[0]["epoch1"] != records[0]["after_last_epoch"]  # it did train


def test_a_stopped_two_process_run_resumed_by_two_processes_ends_as_the_unbroken_run(unbroken, tmp_path):
    straight, straight_records, _ = unbroken
    stopped = launch(tmp_path / "ranks-stopped", train_args(tmp_path / "runs"), stop_after_epoch=1)
    run = only_run(tmp_path / "runs")
    assert load_run(run).status == "cancelled", stopped.stderr[-3000:]
    assert [record["last_epoch"] for record in rank_records(tmp_path / "ranks-stopped")] == [1, 1]

    resumed = launch(tmp_path / "ranks-resumed", ["train", "--resume", str(run)])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert only_run(tmp_path / "runs") == run and load_run(run).status == "finished"
    records = rank_records(tmp_path / "ranks-resumed")
    # Both processes restored epoch 1's checkpoint: the weights the unbroken run had after epoch 1.
    assert records[0]["restored"] == records[1]["restored"] == straight_records[0]["epoch1"]
    assert records[0]["final"] == records[1]["final"] == straight_records[0]["final"]
    assert epoch_rows(run) == epoch_rows(straight)  # losses, validation MSE, learning rates

    events = read_events(run / "metrics.jsonl")
    kinds = [event["type"] for event in events]
    assert kinds.count("started") == 1 and kinds.count("resumed") == 1 and "cancelled" not in kinds
    assert [e["global_step"] for e in events if e["type"] == "step"] == [1, 2, 3, 4]
    assert next(e for e in events if e["type"] == "resumed")["from_epoch"] == 1
