"""Forecasting the future with a trained run: the ``pred_len`` steps after the last row of a series.

The series is the run's own dataset or another CSV with the same channels (``data.future_input``
checks it). The context, the last ``seq_len`` rows before the forecast origin, is scaled with the
run's own scaler (fitted on its train split, as in training), the model forecasts, and the forecast
goes back to original units with timestamps continued at the data's step. When the file holds rows
after the origin (an earlier cut-off), they are returned as the truth and scored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from timellm_core.data.csv_reading import CsvSource
from timellm_core.data.forecast_data import ForecastData
from timellm_core.data.frequency import continue_dates
from timellm_core.data.future_input import M4_DECLINED, Cutoff, future_input
from timellm_core.data.registry import get_dataset_spec
from timellm_core.errors import DataError, RunError
from timellm_core.training.restore import load_run_model
from timellm_core.training.runs import find_run, load_run


@dataclass
class FutureForecast:
    """A forecast past the forecast origin, in original units, with what it was made from."""

    run_id: str
    source: str  # the file read, or "the run's dataset (NAME)"
    freq: str  # the data's step ("h", "15min", ...): forecast dates continue at it
    origin: int  # rows before the forecast; the context is rows [origin - seq_len, origin)
    rows: int  # rows in the file
    context: pd.DataFrame  # (seq_len rows) 'date' + input channels
    forecast: pd.DataFrame  # (pred_len rows) 'date' + target channels; dates = last context date + k steps
    truth: pd.DataFrame | None = None  # the file's rows after the origin (at most pred_len), 'date' + target channels
    truth_errors: dict[str, float] | None = None  # MSE/MAE over the truth's rows, original units and scaled
    warnings: list[str] = field(default_factory=list)

    @property
    def channels(self) -> list[str]:
        """The forecast's channels (the run's target channels)."""
        return [name for name in self.forecast.columns if name != "date"]

    def to_csv(self) -> str:
        """The forecast as CSV text: a date column, then one column per channel."""
        return self.forecast.to_csv(index=False)

    def summary(self) -> str:
        """A few lines for the terminal."""
        context_dates, dates = self.context["date"], self.forecast["date"]
        lines = [f"forecast of {self.source}: {len(self.forecast)} steps x {len(self.channels)} channel(s) "
                 f"after row {self.origin} of {self.rows} ({context_dates.iloc[-1]}), step {self.freq}",
                 f"context: rows {self.origin - len(self.context) + 1}-{self.origin} "
                 f"({context_dates.iloc[0]} .. {context_dates.iloc[-1]})",
                 f"forecast: {dates.iloc[0]} .. {dates.iloc[-1]}"]
        for name in self.channels[-8:]:  # the target is last; wide files would flood the terminal
            values = self.forecast[name]
            lines.append(f"  {name}: last value {self.context[name].iloc[-1]:.4g}, forecast "
                         f"{values.iloc[0]:.4g} .. {values.iloc[-1]:.4g} (min {values.min():.4g}, max {values.max():.4g})")
        if len(self.channels) > 8:
            lines.append(f"  (and {len(self.channels) - 8} more channel(s) in the CSV)")
        if self.truth_errors is not None:
            e = self.truth_errors
            lines.append(f"truth: {int(e['steps'])} of {len(self.forecast)} steps are in the file: MSE {e['mse_original']:.4g} "
                         f"MAE {e['mae_original']:.4g} (original units); MSE {e['mse']:.4f} MAE {e['mae']:.4f} (scaled)")
        else:
            lines.append("truth: none (the file ends at the forecast origin)")
        lines += [f"warning: {message}" for message in self.warnings]
        return "\n".join(lines)


def forecast_future(model: torch.nn.Module, data: ForecastData, source: CsvSource | None = None,
                    cutoff: Cutoff = None, *, fill_missing: bool = False, sentinels_missing: bool = False,
                    run_id: str = "") -> FutureForecast:
    """The ``pred_len`` steps after the origin of the run's dataset (``source`` None) or of another CSV.

    ``model`` is the run's model in eval mode and ``data`` its ``ForecastData`` (``load_run_model``):
    the scaler and the step come from it. ``cutoff`` (rows, or a timestamp) moves the origin back
    from the end of the file; rows after it become the truth.
    """
    prepared = future_input(data, source, cutoff, fill_missing=fill_missing, sentinels_missing=sentinels_missing)
    frame, origin = prepared.frame, prepared.origin
    seq_len, pred_len = data.seq_len, data.pred_len
    context = frame.iloc[origin - seq_len:origin].reset_index(drop=True)  # (T rows) date + N_in
    x = torch.from_numpy(data.transform(context[data.channels].to_numpy()))[None]  # (1, T, N_in) scaled
    model.eval()
    with torch.no_grad():
        output = model(x)  # (1, pred_len, N_in)
    n_out = len(data.target_channels)  # the targets come last (MS, S), as in training's target_part
    scaled = output[0, :, -n_out:].float().cpu().numpy()  # (pred_len, N_out) scaled
    if not np.isfinite(scaled).all():
        raise RunError("The run's model forecast non-finite values (NaN or infinity) for this context: its weights "
                       "may have diverged in training. Evaluate it (`evaluate --run`) or train it again.")
    values = data.inverse_transform(scaled).astype(np.float64)  # (pred_len, N_out) original units
    forecast = pd.DataFrame(values, columns=list(data.target_channels))
    forecast.insert(0, "date", continue_dates(context["date"].iloc[-1], data.freq, pred_len))

    truth = errors = None
    if origin < len(frame):
        truth = frame.iloc[origin:origin + pred_len][["date", *data.target_channels]].reset_index(drop=True)
        errors = _truth_errors(values, scaled, truth, data)
    return FutureForecast(run_id=run_id, source=prepared.source, freq=data.freq, origin=origin, rows=len(frame),
                          context=context, forecast=forecast, truth=truth, truth_errors=errors,
                          warnings=list(prepared.warnings))


def _truth_errors(values: np.ndarray, scaled: np.ndarray, truth: pd.DataFrame,
                  data: ForecastData) -> dict[str, float]:
    """MSE/MAE of the forecast's first len(truth) steps against the truth, original units and scaled."""
    steps = len(truth)
    real = truth[list(data.target_channels)].to_numpy(dtype=np.float64)  # (steps, N_out)
    index = data.target_indices
    real_scaled = (real - data.mean[index]) / data.std[index]
    error, error_scaled = values[:steps] - real, scaled[:steps].astype(np.float64) - real_scaled
    return {"steps": float(steps), "mse_original": float(np.mean(error ** 2)),
            "mae_original": float(np.mean(np.abs(error))), "mse": float(np.mean(error_scaled ** 2)),
            "mae": float(np.mean(np.abs(error_scaled)))}


def forecast_run_future(run: str | os.PathLike[str], runs_dir: str | os.PathLike[str] | None = None,
                        data_path: CsvSource | None = None, cutoff: Cutoff = None, *,
                        fill_missing: bool | None = None, backbone: Any = None,
                        device: str | torch.device | None = None) -> FutureForecast:
    """Load a run (a folder or a run id, as ``evaluate --run``) and forecast past the end of its data or ``data_path``.

    ``fill_missing`` None: treat missing cells as the run's data settings did.
    """
    path = find_run(run, runs_dir)
    info = load_run(path)
    if info.config is None:
        raise RunError(f"The run {info.run_id} cannot forecast: {info.problem}")
    settings = info.config.data
    if get_dataset_spec(settings.name).kind == "m4":  # before loading a backbone for nothing
        raise DataError(M4_DECLINED)
    if isinstance(data_path, (str, os.PathLike)):
        data_path = Path(data_path).expanduser()
        if not data_path.is_file():
            raise DataError(f"CSV file not found: {data_path}. Check the path (relative paths start at {Path.cwd()}).")
    model, data = load_run_model(path, backbone=backbone, device=device)
    fill = bool(settings.fill_missing) if fill_missing is None else bool(fill_missing)
    result = forecast_future(model, data, data_path, cutoff, fill_missing=fill,
                             sentinels_missing=bool(settings.sentinels_missing), run_id=info.run_id)
    if info.status != "finished":  # model.safetensors holds the best finished epoch so far
        result.warnings.insert(0, f"The run {info.run_id} is {info.status}, not finished: the forecast uses the "
                                  f"weights of its best epoch so far ({info.epochs_done} epoch(s) done).")
    return result
