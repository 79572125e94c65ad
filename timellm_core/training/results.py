"""What a finished test produces: test_metrics.json, predictions.npz, and the data's extra metrics."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from timellm_core.training.evaluation import EvalResult
from timellm_core.training.events import Event


def build_test_metrics(result: EvalResult, total_windows: int, stopper: Any = None,
                      epochs_done: int | None = None) -> dict[str, Any]:
    """What test_metrics.json holds: scaled and original-unit MSE/MAE over every evaluated window."""
    metrics: dict[str, Any] = {
        "test_mse": result.mse, "test_mae": result.mae,
        "test_mse_original": result.mse_original, "test_mae_original": result.mae_original,
        "test_windows": result.windows, "test_windows_total": total_windows,
        "note": ("MSE/MAE over all evaluated test windows (no dropped last batch), scaled space; "
                 "*_original in the data's units" +
                 ("" if result.windows >= total_windows else f"; a seeded sample of {result.windows} windows")),
    }
    if stopper is not None:
        metrics.update(best_epoch=stopper.best_epoch, best_val_mse=stopper.best_score, stopped_early=stopper.stopped)
    if epochs_done is not None:
        metrics["epochs_done"] = epochs_done
    return metrics


def extra_test_metrics(data: Any, result: EvalResult, indices: np.ndarray) -> dict[str, Any]:
    """The data's own test metrics (M4: sMAPE, MASE, OWA), computed in original units, when it has them."""
    extra = getattr(data, "extra_test_metrics", None)
    if not callable(extra) or result.forecasts_original is None:
        return {}
    kept = result.collected_windows
    try:
        accepts_indices = "indices" in inspect.signature(extra).parameters
    except (TypeError, ValueError):
        accepts_indices = False
    if accepts_indices:
        return dict(extra(result.forecasts_original, result.truths_original, indices=indices[:kept]))
    return dict(extra(result.forecasts_original, result.truths_original))


def predictions_arrays(result: EvalResult, indices: np.ndarray, data: Any) -> dict[str, np.ndarray]:
    """predictions.npz: forecasts and truths (scaled and original units) and each window's index."""
    kept = result.collected_windows
    arrays = {
        "forecast": result.forecasts, "truth": result.truths,
        "forecast_original": result.forecasts_original, "truth_original": result.truths_original,
        # Window i of the test split is input rows [i, i + seq_len) of that split.
        "window_index": np.asarray(indices[:kept], dtype=np.int64),
        "target_channels": np.asarray([str(c) for c in (getattr(data, "target_channels", None) or [])], dtype=str),
    }
    if result.masks is not None:
        arrays["mask"] = result.masks
    return {name: value for name, value in arrays.items() if value is not None}


def events_up_to_checkpoint(events: list[Event], epoch: int) -> list[Event]:
    """The history as of the checkpoint of ``epoch``: later events (a lost partial epoch) are dropped."""
    cut = None
    for index, event in enumerate(events):
        if event.get("type") == "checkpoint" and event.get("kind") == "last" and event.get("epoch") == epoch:
            cut = index
    if cut is None:
        for index, event in enumerate(events):
            if event.get("type") == "epoch" and event.get("epoch") == epoch:
                cut = index
    return events if cut is None else events[:cut + 1]
