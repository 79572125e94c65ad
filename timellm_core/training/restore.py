"""Bring a finished run back: its model with the best weights (for inspection) and a fresh test of it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from timellm_core.errors import RunError
from timellm_core.training import checkpoint as ckpt
from timellm_core.training.evaluation import evaluate_batches, limited_windows
from timellm_core.training.parts import BackboneSource, build_model, prepare_data_for, resolve_backbone
from timellm_core.training.runs import MODEL_FILE, RunFolder
from timellm_core.training.results import build_test_metrics, extra_test_metrics


def load_run_model(run_dir: str | os.PathLike[str], backbone: BackboneSource = None, data: Any = None,
                   device: str | torch.device | None = None) -> tuple[torch.nn.Module, Any]:
    """(model in eval mode with the run's best weights, its ForecastData).

    ``backbone``: a loaded Backbone or a loader callable to reuse (default: load the run's backbone).
    A missing or corrupt ``model.safetensors``, or one from another configuration, is a RunError.
    """
    run = RunFolder.open(Path(run_dir))
    config = run.config()
    weights_path = run.file(MODEL_FILE)
    if not weights_path.is_file():
        raise RunError(f"The run {run.run_id} has no model.safetensors yet: it has not finished an epoch. "
                       "Wait for its first epoch, or resume it.")
    ckpt.read_metadata(weights_path)  # a corrupt file fails here, before a backbone is loaded for nothing
    if data is None:
        data = prepare_data_for(config)
    loaded = resolve_backbone(backbone, config.backbone, torch.device(device) if device else None,
                              random_weights=config.model.llm_mode == "random")
    model = build_model(config, loaded, data)
    weights = ckpt.load_model_weights(weights_path, config, model.trainable_state_dict())
    model.load_trainable_state_dict(weights)
    model.eval()
    return model, data


def evaluate_run(run_dir: str | os.PathLike[str], backbone: BackboneSource = None, data: Any = None,
                 model: torch.nn.Module | None = None, batch_size: int | None = None,
                 max_eval_windows: int | None | str = "config") -> dict[str, Any]:
    """Test the saved best weights again on the run's test windows (same seeded subset by default)."""
    run = RunFolder.open(Path(run_dir))
    config = run.config()
    if model is None:
        model, data = load_run_model(run_dir, backbone=backbone, data=data)
    elif data is None:
        data = prepare_data_for(config)
    training = config.training
    limit = training.max_eval_windows if max_eval_windows == "config" else max_eval_windows
    test_set, indices = limited_windows(data, "test", limit, int(training.seed))
    loader = DataLoader(test_set, batch_size=int(batch_size or training.eval_batch_size), shuffle=False)
    device = next((p.device for p in model.trainable_parameters()), torch.device("cpu"))
    model.eval()

    def predict(x: torch.Tensor) -> torch.Tensor:
        return model(x.to(device))

    result = evaluate_batches(predict, loader, data, collect=callable(getattr(data, "extra_test_metrics", None)))
    total = len(data.windows("test"))
    metrics = build_test_metrics(result, total)
    metrics.update(extra_test_metrics(data, result, indices))
    return metrics
