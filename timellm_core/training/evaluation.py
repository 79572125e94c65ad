"""Losses, window subsets and the evaluation loop shared by the trainer, ``evaluate`` and the baselines.

Metrics are sums over **every** window and element (no dropped tail batch, no mean of batch
means), accumulated in float64, in the scaled space the published tables use and also in the
data's original units (``data.inverse_transform``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from timellm_core.errors import ConfigError

# Above this many values per array the final test keeps the metrics but stores forecasts only for
# the first windows (Traffic at pred_len 720 would otherwise need gigabytes of predictions.npz).
MAX_PREDICTION_VALUES = 20_000_000


class Cancelled(Exception):
    """Raised inside loops when the job's cancel flag is set; never escapes the trainer."""


def check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled()


# --- subsets -------------------------------------------------------------------------------------

_SALTS = {"train": 0, "val": 1, "test": 2}


def subset_indices(count: int, limit: int | None, seed: int, split: str) -> np.ndarray:
    """Window indices kept for a split: all, or ``limit`` drawn without replacement, seeded, in order.

    Sorted so that kept windows stay in time order (the forecast page walks through them).
    """
    if limit is None or int(limit) >= count:
        return np.arange(count)
    rng = np.random.default_rng([int(seed), _SALTS.get(split, 3)])
    return np.sort(rng.choice(count, size=int(limit), replace=False))


def limited_windows(data: Any, split: str, limit: int | None, seed: int) -> tuple[Dataset, np.ndarray]:
    """``data.windows(split)`` reduced to at most ``limit`` windows, with the kept indices."""
    counter = getattr(data, "window_count", None)
    if callable(counter) and split != "train" and counter(split) == 0:
        return [], np.arange(0)  # a split too short for one window (no validation: the trainer copes)
    windows = data.windows(split)
    indices = subset_indices(len(windows), limit, seed, split)
    if len(indices) == len(windows):
        return windows, indices
    return Subset(windows, indices.tolist()), indices


# --- batches and losses --------------------------------------------------------------------------

def unpack_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(x, y) or (x, y, y_mask) -> x, y, mask (None when every target value is real)."""
    if isinstance(batch, dict):
        return batch["x"], batch["y"], batch.get("y_mask")
    if len(batch) == 2:
        return batch[0], batch[1], None
    if len(batch) == 3:
        return batch[0], batch[1], batch[2]
    raise ValueError(f"a batch must hold (x, y) or (x, y, y_mask), not {len(batch)} items")


def target_part(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The forecast's target channels: the model outputs every input channel, targets come last (MS)."""
    return output[..., -y.shape[-1]:]


def mse_loss(forecast: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return torch.mean((forecast - truth) ** 2)
    mask = mask.to(forecast.dtype)
    return torch.sum((forecast - truth) ** 2 * mask) / mask.sum().clamp_min(1.0)


def smape_loss(forecast: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """200 * mean(|f - y| / (|f| + |y|)), 0 where both are 0: the M4 training loss of the reference.

    The denominator is detached, as in the reference (and N-BEATS): the gradient pushes the error
    down without rewarding forecasts for growing in magnitude.
    """
    denominator = (forecast.detach().abs() + truth.abs())
    ratio = torch.where(denominator > 0, (forecast - truth).abs() / denominator.clamp_min(1e-12),
                        torch.zeros_like(denominator))
    if mask is None:
        return 200.0 * ratio.mean()
    mask = mask.to(ratio.dtype)
    return 200.0 * torch.sum(ratio * mask) / mask.sum().clamp_min(1.0)


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]] = {
    "MSE": mse_loss,
    "SMAPE": smape_loss,
}


def loss_function(name: str) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]:
    try:
        return LOSSES[name.upper()]
    except KeyError:
        raise ConfigError(f"loss must be one of {', '.join(LOSSES)}, not {name!r}.") from None


# --- evaluation ----------------------------------------------------------------------------------

@dataclass
class MetricSums:
    """Running float64 sums: squared and absolute errors and the number of (real) values."""

    squared: float = 0.0
    absolute: float = 0.0
    count: float = 0.0

    def add(self, forecast: np.ndarray, truth: np.ndarray, mask: np.ndarray | None) -> None:
        error = forecast.astype(np.float64) - truth.astype(np.float64)
        if mask is not None:
            weights = mask.astype(np.float64)
            self.squared += float(np.sum(error ** 2 * weights))
            self.absolute += float(np.sum(np.abs(error) * weights))
            self.count += float(weights.sum())
        else:
            self.squared += float(np.sum(error ** 2))
            self.absolute += float(np.sum(np.abs(error)))
            self.count += float(error.size)

    @property
    def mse(self) -> float:
        return self.squared / self.count if self.count else float("nan")

    @property
    def mae(self) -> float:
        return self.absolute / self.count if self.count else float("nan")


@dataclass
class EvalResult:
    """Metrics over all evaluated windows, and (when collected) the forecasts themselves."""

    mse: float
    mae: float
    mse_original: float
    mae_original: float
    windows: int
    forecasts: np.ndarray | None = None  # (W, pred_len, N_out) scaled
    truths: np.ndarray | None = None
    forecasts_original: np.ndarray | None = None
    truths_original: np.ndarray | None = None
    masks: np.ndarray | None = None
    collected_windows: int = 0  # < windows when predictions were too large to keep
    extra: dict[str, Any] = field(default_factory=dict)


def _original_units(data: Any, values: np.ndarray) -> np.ndarray:
    inverse = getattr(data, "inverse_transform", None)
    return np.asarray(inverse(values), dtype=np.float32) if inverse is not None else values


def evaluate_batches(predict: Callable[[torch.Tensor], torch.Tensor], batches: Iterable[Any], data: Any,
                     *, gather: Callable[[Any], Any] | None = None, collect: bool = False,
                     cancel: threading.Event | None = None,
                     max_prediction_values: int = MAX_PREDICTION_VALUES,
                     on_batch: Callable[[int], None] | None = None) -> EvalResult:
    """Run ``predict`` over batches; MSE/MAE scaled and original; optionally keep the forecasts.

    ``on_batch(batches_done)`` is called after every batch (the trainer turns it into progress events).

    ``gather`` (``accelerator.gather_for_metrics``) joins the shards of several processes and
    drops the samples accelerate repeats to even out the last batch.
    """
    scaled, original = MetricSums(), MetricSums()
    kept: dict[str, list[np.ndarray]] = {"f": [], "y": [], "fo": [], "yo": [], "m": []}
    windows = collected = 0
    with torch.no_grad():
        for batches_done, batch in enumerate(batches, start=1):
            check_cancel(cancel)
            x, y, mask = unpack_batch(batch)
            forecast = target_part(predict(x), y).float()
            parts = (forecast, y.float()) if mask is None else (forecast, y.float(), mask.float())
            if gather is not None:
                parts = gather(parts)
            f = parts[0].cpu().numpy()
            t = parts[1].cpu().numpy()
            m = parts[2].cpu().numpy() if mask is not None else None
            f_original, t_original = _original_units(data, f), _original_units(data, t)
            scaled.add(f, t, m)
            original.add(f_original, t_original, m)
            windows += f.shape[0]
            if on_batch is not None:
                on_batch(batches_done)
            if collect and (collected + f.shape[0]) * int(np.prod(f.shape[1:])) <= max_prediction_values:
                kept["f"].append(f)
                kept["y"].append(t)
                kept["fo"].append(f_original)
                kept["yo"].append(t_original)
                if m is not None:
                    kept["m"].append(m)
                collected += f.shape[0]
    result = EvalResult(mse=scaled.mse, mae=scaled.mae, mse_original=original.mse, mae_original=original.mae,
                        windows=windows, collected_windows=collected)
    if collect and kept["f"]:
        result.forecasts = np.concatenate(kept["f"])
        result.truths = np.concatenate(kept["y"])
        result.forecasts_original = np.concatenate(kept["fo"])
        result.truths_original = np.concatenate(kept["yo"])
        result.masks = np.concatenate(kept["m"]) if kept["m"] else None
    return result
