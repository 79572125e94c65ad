"""Faults during training and loading: each ends in a readable status, and no run or cache is left broken."""

from __future__ import annotations

import errno
import json
import threading
from pathlib import Path

import pytest

from timellm_core.backbones import load_backbone, save_tiny_backbone
from timellm_core.config import BackboneConfig, DataConfig, RunConfig, TimeLLMConfig, TrainingConfig
from timellm_core.data import prepare_data
from timellm_core.errors import BackboneError, TimeLLMError, TrainingError
from timellm_core.training import JobRegistry, RunFolder, Trainer
from timellm_core.training import checkpoint as ckpt
from timellm_core.training import runs as runs_module
from timellm_core.training import trainer as trainer_module
from timellm_core.training.runs import CHECKPOINT_FILE, MODEL_FILE, load_run

STEPS_PER_EPOCH = 4  # 32 training windows in batches of 8


def tiny_config(epochs: int = 2, train_windows: int = 32) -> RunConfig:
    return RunConfig(
        data=DataConfig(name="Synthetic"),
        backbone=BackboneConfig(name="tiny-llama", llm_layers=1),
        model=TimeLLMConfig(seq_len=32, pred_len=8, patch_len=8, stride=4, d_model=8, d_ff=16, n_heads=2,
                            num_prototypes=16),
        training=TrainingConfig(batch_size=8, eval_batch_size=64, train_epochs=epochs, learning_rate=0.001,
                                lradj="constant", max_train_windows=train_windows, max_eval_windows=16,
                                device="cpu", test_each_epoch=False),
    )


@pytest.fixture(scope="module")
def data():
    config = tiny_config()
    return prepare_data(config.data, config.model.seq_len, config.model.pred_len)


@pytest.fixture(scope="module")
def backbone():
    return load_backbone(tiny_config().backbone, device="cpu")


def _events(run: Path) -> list[dict]:
    """Every line of metrics.jsonl, each of which must be complete JSON."""
    text = (run / "metrics.jsonl").read_text()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def _status(run: Path) -> str:
    return json.loads((run / "config.json").read_text())["status"]


def _faulty_loss(fail_at: int, make_fault):
    """A loss_function replacement whose loss misbehaves on global call ``fail_at`` (1-based)."""
    real = trainer_module.loss_function
    calls = {"n": 0}

    def loss_function(name):
        inner = real(name)

        def loss(forecast, target, mask=None):
            calls["n"] += 1
            value = inner(forecast, target, mask)
            return make_fault(value) if calls["n"] == fail_at else value

        return loss

    return loss_function


def test_an_exception_inside_a_step_ends_as_failed_and_frees_the_slot(tmp_path, monkeypatch, data, backbone):
    def boom(value):
        raise RuntimeError("injected fault in the step")

    monkeypatch.setattr(trainer_module, "loss_function", _faulty_loss(2, boom))
    registry = JobRegistry()
    job = registry.start(tiny_config(), runs_dir=tmp_path, data=data, backbone=backbone)
    assert job.wait(120)
    assert job.status == "failed"
    assert "epoch 1, step 2" in job.error and "RuntimeError: injected fault in the step" in job.error
    run = Path(job.run_dir)
    events = _events(run)
    assert events[-1]["type"] == "failed" and "injected fault" in events[-1]["message"]
    assert [e["global_step"] for e in events if e["type"] == "step"] == [1]
    assert _status(run) == "failed" and load_run(run).status == "failed"
    assert registry.active() is None  # the failure released the one training slot
    monkeypatch.undo()
    second = registry.start(tiny_config(epochs=1, train_windows=8), runs_dir=tmp_path, data=data, backbone=backbone)
    assert second.wait(120) and second.status == "finished"


def test_a_nan_loss_stops_naming_the_step_and_keeps_the_last_checkpoint(tmp_path, monkeypatch, capsys):
    from timellm_core.cli import main

    # Global step 6 is epoch 2, step 2: epoch 1's checkpoint is on disk by then.
    monkeypatch.setattr(trainer_module, "loss_function", _faulty_loss(6, lambda value: value * float("nan")))
    argv = ["train", "--data", "Synthetic", "--llm_model_path", "tiny-llama", "--llm_layers", "1",
            "--seq_len", "32", "--pred_len", "8", "--patch_len", "8", "--stride", "4", "--d_model", "8",
            "--d_ff", "16", "--n_heads", "2", "--num_prototypes", "16", "--batch_size", "8",
            "--eval_batch_size", "64", "--train_epochs", "2", "--max_train_windows", "32",
            "--max_eval_windows", "16", "--device", "cpu", "--no_test_each_epoch", "--runs_dir", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "training loss became nan at epoch 2, step 2" in err and "global step 6" in err
    assert "Lower the learning rate" in err and "last good checkpoint is kept" in err
    [run] = list(tmp_path.iterdir())
    events = _events(run)
    assert events[-1]["type"] == "failed" and "epoch 2, step 2" in events[-1]["message"]
    config = RunFolder.open(run).config()
    _, _, state, _ = ckpt.load_training_state(run / CHECKPOINT_FILE, config, _expected_state(run, config))
    assert state["epoch"] == 1


def _expected_state(run: Path, config: RunConfig) -> dict:
    """The trainable tensors a checkpoint of ``config`` must hold (from a freshly built model)."""
    from timellm_core.training.parts import build_model

    data = prepare_data(config.data, config.model.seq_len, config.model.pred_len)
    model = build_model(config, load_backbone(config.backbone, device="cpu"), data)
    return model.trainable_state_dict()


def test_cancel_mid_epoch_stops_within_one_step_and_leaves_a_consistent_run(tmp_path, data, backbone):
    cancel = threading.Event()
    steps: list[int] = []

    def on_event(event):
        if event["type"] == "step":
            steps.append(event["global_step"])
            if event["global_step"] == 2:
                cancel.set()  # mid-epoch: 4 steps per epoch

    run = RunFolder.create(tiny_config(), tmp_path)
    result = Trainer(tiny_config(), run=run, data=data, backbone=backbone, on_event=on_event, cancel=cancel).run()
    assert result.status == "cancelled"
    assert steps == [1, 2]  # no step after the one that saw the cancel
    events = _events(run.path)
    assert events[-1]["type"] == "cancelled" and events[-1]["global_step"] == 2
    assert _status(run.path) == "cancelled" and load_run(run.path).status == "cancelled"
    assert not list(run.path.glob(".*tmp*"))


def test_cancelling_a_background_job_from_another_thread(tmp_path, data, backbone):
    registry = JobRegistry()
    job = registry.start(tiny_config(epochs=20), runs_dir=tmp_path, data=data, backbone=backbone)
    for _ in range(600):
        if any(e["type"] == "step" for e in job.events()):
            break
        job.wait(0.1)
    seen = max(e["global_step"] for e in job.events() if e["type"] == "step")
    job.cancel()
    assert job.wait(60)
    assert job.status == "cancelled"
    last = max(e["global_step"] for e in job.events() if e["type"] == "step")
    assert last <= seen + 1  # the step in flight may finish; no other starts
    assert _events(Path(job.run_dir))[-1]["type"] == "cancelled"
    assert registry.active() is None


def test_disk_full_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch, data, backbone):
    real_save = ckpt.save_file
    calls = {"n": 0}

    def save_file(tensors, filename, metadata=None):
        calls["n"] += 1
        if calls["n"] > 2:  # epoch 1 wrote model.safetensors and checkpoint.safetensors; then the disk is full
            with open(filename, "wb") as handle:
                handle.write(b"partial")  # a half-written temporary file, as a real ENOSPC leaves
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(tensors, filename, metadata=metadata)

    monkeypatch.setattr(ckpt, "save_file", save_file)
    config = tiny_config(epochs=3)
    run = RunFolder.create(config, tmp_path)
    with pytest.raises(TimeLLMError) as caught:
        Trainer(config, run=run, data=data, backbone=backbone).run()
    message = str(caught.value)
    assert "No space left on device" in message
    assert "previous checkpoint is kept" in message and "Free some disk space" in message
    assert not list(run.path.glob(".*tmp*"))  # the half-written file is gone
    events = _events(run.path)
    assert events[-1]["type"] == "failed" and "No space left" in events[-1]["message"]
    saved = [e for e in events if e["type"] == "checkpoint"]
    assert {e["kind"] for e in saved} == {"best", "last"} and {e["epoch"] for e in saved} == {1}
    model_state, _, state, _ = ckpt.load_training_state(run.path / CHECKPOINT_FILE, config,
                                                        _expected_state(run.path, config))
    assert state["epoch"] == 1 and model_state
    ckpt.read_metadata(run.path / MODEL_FILE)

    monkeypatch.undo()  # space is free again: the run resumes from epoch 1's checkpoint
    resumed = Trainer(config, run=RunFolder.open(run.path), data=data, backbone=backbone, resume=True).run()
    assert resumed.status == "finished" and resumed.epochs_done == 3
    assert [e["epoch"] for e in _events(run.path) if e["type"] == "epoch"] == [1, 2, 3]


def test_disk_full_while_appending_metrics_is_a_message_not_a_traceback(tmp_path, monkeypatch, data, backbone):
    import os as real_os

    class FullDiskForMetrics:
        """``os`` for the runs module, whose fsync of metrics.jsonl fails after three events."""

        def __init__(self):
            self.metrics_syncs = 0

        def __getattr__(self, name):
            return getattr(real_os, name)

        def fsync(self, descriptor):
            if real_os.readlink(f"/proc/self/fd/{descriptor}").endswith("metrics.jsonl"):
                self.metrics_syncs += 1
                if self.metrics_syncs > 3:
                    raise OSError(errno.ENOSPC, "No space left on device")
            return real_os.fsync(descriptor)

    monkeypatch.setattr(runs_module, "os", FullDiskForMetrics())
    config = tiny_config(epochs=1)
    run = RunFolder.create(config, tmp_path)
    with pytest.raises(TimeLLMError) as caught:
        Trainer(config, run=run, data=data, backbone=backbone).run()
    message = str(caught.value)
    assert "No space left on device" in message and "metrics.jsonl" in message and "Free some disk space" in message
    monkeypatch.undo()
    events = _events(run.path)  # only complete lines: the failed writes were taken back
    assert len(events) == 3
    assert _status(run.path) == "failed"


def test_two_sessions_starting_at_once_one_runs_the_other_is_told(tmp_path, data, backbone):
    registry = JobRegistry()
    barrier = threading.Barrier(2)
    started, refused = [], []

    def session():
        barrier.wait()
        try:
            started.append(registry.start(tiny_config(epochs=20), runs_dir=tmp_path, data=data, backbone=backbone))
        except TrainingError as error:
            refused.append(str(error))

    threads = [threading.Thread(target=session) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert len(started) == 1 and len(refused) == 1
        message = refused[0]
        assert started[0].run_id in message
        assert "in progress" in message and "Wait for it to finish, or stop it first" in message
        assert len(list(tmp_path.iterdir())) == 1  # the refused session made no run folder
    finally:
        for job in started:
            job.cancel()
            job.wait(60)
    assert registry.active() is None


def test_a_backbone_load_that_fails_halfway_leaves_nothing_behind(tmp_path, capsys):
    folder = tmp_path / "tiny"
    save_tiny_backbone("tiny-llama", folder)
    weights = folder / "model.safetensors"
    intact = weights.read_bytes()
    weights.write_bytes(intact[: len(intact) // 2])  # the weights end halfway
    config = BackboneConfig(name=str(folder), llm_layers=2)
    with pytest.raises(BackboneError) as caught:
        load_backbone(config, device="cpu")
    assert "Loading" in str(caught.value) and "failed" in str(caught.value)
    weights.write_bytes(intact)
    loaded = load_backbone(config, device="cpu")
    assert loaded.num_layers == 2
    assert not any(p.requires_grad for p in loaded.model.parameters())


def test_a_failed_tokenizer_build_is_not_cached(monkeypatch):
    from timellm_core.backbones import tiny

    monkeypatch.setattr(tiny, "_trained_tokenizer", None)
    monkeypatch.setattr(tiny, "_family_tokenizers", {})

    def interrupted():
        yield "the first lines of the corpus"
        raise OSError(errno.EIO, "Input/output error")

    real_corpus = tiny._corpus
    monkeypatch.setattr(tiny, "_corpus", interrupted)
    with pytest.raises(OSError):
        load_backbone(BackboneConfig(name="tiny-gpt2", llm_layers=1), device="cpu")
    assert tiny._trained_tokenizer is None and tiny._family_tokenizers == {}
    monkeypatch.setattr(tiny, "_corpus", real_corpus)
    loaded = load_backbone(BackboneConfig(name="tiny-gpt2", llm_layers=1), device="cpu")
    assert loaded.tokenizer.pad_token is not None and loaded.num_layers == 1
