"""The trainer: a real tiny backbone learns, files are complete, best weights are reloaded, faults end cleanly."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from test_training_support import PRED_LEN, SEQ_LEN, StandInModel, forecast_data, small_config
from timellm_core.errors import RunError, TrainingError
from timellm_core.training import checkpoint as ckpt
from timellm_core.training.runs import RUN_FILES, RunFolder, load_run, read_events
from timellm_core.training.trainer import Trainer


def _train(tmp_path, config, model=None, data=None, **options):
    events = []
    run = RunFolder.create(config, tmp_path / "runs")
    trainer = Trainer(config, run=run, model=model, data=data if data is not None else forecast_data(),
                      on_event=events.append, **options)
    return trainer, run, events, trainer.run()


def test_tiny_backbone_learns_on_etth1_and_writes_every_file(tmp_path):
    config = small_config(train_epochs=2, max_train_windows=48, max_eval_windows=16, learning_rate=0.01)
    trainer, run, events, result = _train(tmp_path, config)

    assert result.status == "finished" and result.epochs_done == 2
    epochs = [e for e in events if e["type"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert epochs[1]["train_loss"] < epochs[0]["train_loss"]  # the loss goes down
    steps = [e for e in events if e["type"] == "step"]
    assert len(steps) == 2 * math.ceil(48 / 8)
    assert all(s["windows_per_s"] > 0 and s["lr"] == pytest.approx(0.01) for s in steps)

    for name in RUN_FILES:
        assert (run.path / name).is_file(), name
    metrics = json.loads((run.path / "test_metrics.json").read_text())
    assert metrics["test_windows"] == 16 and math.isfinite(metrics["test_mse"])
    assert metrics["test_mse_original"] != pytest.approx(metrics["test_mse"])  # really in original units
    predictions = np.load(run.path / "predictions.npz", allow_pickle=False)
    data = forecast_data()
    assert predictions["forecast"].shape == (16, PRED_LEN, len(data.target_channels))
    assert np.allclose(data.inverse_transform(predictions["forecast"]), predictions["forecast_original"], atol=1e-4)
    # Metrics are recomputable from the saved forecasts: all windows, no dropped tail.
    assert metrics["test_mse"] == pytest.approx(float(np.mean((predictions["forecast"].astype(np.float64)
                                                                 - predictions["truth"]) ** 2)), rel=1e-5)
    window = int(predictions["window_index"][3])
    assert np.allclose(predictions["truth"][3], data.windows("test")[window][1].numpy())
    # Only trainable weights are saved, and the backbone got no gradient.
    saved = load_file(str(run.path / "model.safetensors"))
    assert set(saved) == set(trainer.model.trainable_state_dict())
    assert all(p.grad is None for p in trainer.backbone.model.parameters())
    info = load_run(run.path)
    assert info.status == "finished" and info.epochs_done == 2 and info.test_metrics["test_mse"] == metrics["test_mse"]
    config_json = json.loads((run.path / "config.json").read_text())
    assert config_json["backbone"]["spec"]["name"] == "tiny-gpt2"
    assert config_json["dataset"]["windows_used"]["train"] == 48


def test_best_weights_are_reloaded_for_the_final_test(tmp_path):
    model = StandInModel()
    steps_per_epoch = 4  # 32 windows, batch 8

    def spoil_after_first_epoch(call: int, x: torch.Tensor) -> None:
        # Training forwards of epochs 2 and 3 start from wrecked weights: epoch 1 stays the best.
        if model.training and call > steps_per_epoch:
            with torch.no_grad():
                model.linear.weight.add_(1.0)

    model.hook = spoil_after_first_epoch
    config = small_config(train_epochs=3, learning_rate=0.05, patience=5)
    trainer, run, events, result = _train(tmp_path, config, model=model)
    epochs = [e for e in events if e["type"] == "epoch"]
    assert min(epochs, key=lambda e: e["val_mse"])["epoch"] == 1 and len(epochs) == 3
    assert result.best_epoch == 1 and result.test_metrics["best_epoch"] == 1
    saved = load_file(str(run.path / "model.safetensors"))
    last = load_file(str(run.path / "checkpoint.safetensors"))
    current = model.trainable_state_dict()
    assert all(torch.equal(saved[name], current[name]) for name in saved)  # the model holds the best weights
    assert not torch.equal(last["model/weight"], saved["weight"])  # which are not the last epoch's
    # The final test is epoch 1's test again, on the same windows.
    assert result.test_metrics["test_mse"] == pytest.approx(epochs[0]["test_mse"], rel=1e-6)


def test_early_stopping_after_patience_epochs_without_improvement(tmp_path):
    config = small_config(train_epochs=10, learning_rate=50.0, patience=2)
    _, _, events, result = _train(tmp_path, config, model=StandInModel())
    epochs = [e for e in events if e["type"] == "epoch"]
    vals = [e["val_mse"] for e in epochs]
    best_index = int(np.argmin(vals))
    assert len(epochs) == best_index + 1 + 2  # stopped two epochs after the best
    assert any(e["type"] == "early_stop" for e in events)
    assert result.test_metrics["stopped_early"] is True


def test_same_seed_same_run_and_another_seed_another_order(tmp_path):
    losses = []
    for seed in (7, 7, 8):
        config = small_config(train_epochs=1, seed=seed)
        _, _, events, _ = _train(tmp_path / str(len(losses)), config, model=StandInModel())
        losses.append([e["loss"] for e in events if e["type"] == "step"])
    assert losses[0] == losses[1]
    assert losses[0] != losses[2]


def test_ms_features_train_on_the_target_channel_only(tmp_path):
    data = forecast_data("MS")
    assert len(data.target_channels) == 1 and len(data.channels) > 1
    _, run, _, result = _train(tmp_path, small_config(train_epochs=1), model=StandInModel(), data=data)
    predictions = np.load(run.path / "predictions.npz")
    assert predictions["forecast"].shape[-1] == 1
    assert result.status == "finished"


def test_nan_loss_fails_naming_the_step(tmp_path):
    model = StandInModel()
    model.poison_from = 3  # the third training forward returns NaN
    with pytest.raises(TrainingError, match=r"epoch 1, step 3"):
        _train(tmp_path, small_config(), model=model)
    run_dir = next((tmp_path / "runs").iterdir())
    events = read_events(run_dir / "metrics.jsonl")
    assert events[-1]["type"] == "failed" and "nan" in events[-1]["message"].lower()
    assert [e["step"] for e in events if e["type"] == "step"] == [1, 2]
    assert load_run(run_dir).status == "failed"


def test_an_exception_inside_a_step_becomes_a_failed_event(tmp_path):
    def hook(call: int, x: torch.Tensor) -> None:
        if call == 2:
            raise RuntimeError("simulated fault in the forward pass")

    with pytest.raises(TrainingError, match="epoch 1, step 2.*simulated fault") as raised:
        _train(tmp_path, small_config(), model=StandInModel(hook=hook))
    run_dir = next((tmp_path / "runs").iterdir())
    failed = read_events(run_dir / "metrics.jsonl")[-1]
    assert failed["type"] == "failed" and failed["message"] == str(raised.value)
    assert json.loads((run_dir / "config.json").read_text())["status"] == "failed"


def test_failed_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    model = StandInModel()
    config = small_config(train_epochs=1)
    _, run, _, _ = _train(tmp_path, config, model=model)
    best = run.path / "model.safetensors"
    before = best.read_bytes()

    def full_disk(tensors, filename, metadata=None):
        with open(filename, "wb") as handle:
            handle.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckpt, "save_file", full_disk)
    changed = {name: tensor + 1 for name, tensor in model.trainable_state_dict().items()}
    with pytest.raises(RunError, match="No space left on device.*previous checkpoint is kept"):
        ckpt.save_model_weights(changed, best, config, epoch=2, val_mse=0.1)
    assert best.read_bytes() == before
    assert not [p for p in run.path.iterdir() if ".tmp" in p.name]


def test_a_write_failure_during_training_fails_the_run_with_the_disk_message(tmp_path, monkeypatch):
    def full_disk(tensors, filename, metadata=None):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckpt, "save_file", full_disk)
    with pytest.raises(RunError, match="No space left on device"):
        _train(tmp_path, small_config(train_epochs=1), model=StandInModel())
    run_dir = next((tmp_path / "runs").iterdir())
    assert load_run(run_dir).status == "failed" and "No space left" in load_run(run_dir).error


def test_masked_targets_do_not_count_in_the_loss():
    from timellm_core.training.evaluation import mse_loss, smape_loss

    forecast = torch.tensor([[1.0, 2.0, 3.0]])
    truth = torch.tensor([[1.0, 0.0, 100.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    assert float(mse_loss(forecast, truth, mask)) == pytest.approx((0 + 4) / 2)
    assert float(smape_loss(forecast, truth, mask)) == pytest.approx(200 * (0 + 2 / 2) / 2)
    assert float(smape_loss(torch.zeros(1, 2), torch.zeros(1, 2), None)) == 0.0


def test_input_shapes_reach_the_model_unchanged(tmp_path):
    seen = []
    _train(tmp_path, small_config(train_epochs=1, max_train_windows=9, batch_size=4), model=StandInModel(
        hook=lambda call, x: seen.append(tuple(x.shape))))
    channels = len(forecast_data().channels)
    assert seen[:3] == [(4, SEQ_LEN, channels), (4, SEQ_LEN, channels), (1, SEQ_LEN, channels)]  # no dropped tail
