"""The input-shuffling test of Tan et al. (NeurIPS 2024): does the model use the order of its input?

A trained run is tested again on its own test windows (the same seeded subset as its final test)
with each input window shuffled in time: window i's seq_len steps are reordered by a permutation
drawn from (``SHUFFLE_SEED``, i), the same for every channel of the window and for every run, so
runs of a study are shuffled identically. Targets are untouched. A forecaster that reads the series
as a sequence gets worse; one that ignores order (e.g. the window mean) does not change at all.
The report is the growth of the test MSE and MAE, in percent of the unshuffled ones.

M4 windows shorter than seq_len are zero-padded at the start; the padding is shuffled with the rest.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from timellm_core.errors import RunError
from timellm_core.training.evaluation import evaluate_batches, limited_windows
from timellm_core.training.restore import load_run_model
from timellm_core.training.runs import RunFolder

SHUFFLE_SEED = 20241209  # fixed: every run of every study sees the same shuffles


def window_permutation(window_index: int, seq_len: int, seed: int = SHUFFLE_SEED) -> np.ndarray:
    """The time order of shuffled window ``window_index``: a permutation of 0..seq_len-1, (seq_len,)."""
    return np.random.default_rng([int(seed), int(window_index)]).permutation(int(seq_len))


class TimeShuffledWindows(Dataset):
    """``windows`` with each input shuffled in time; item k is window ``indices[k]`` of the split.

    Items are the windows' own tuples ``(x, y[, y_mask])`` with x (T, N) reordered along T.
    """

    def __init__(self, windows: Any, indices: Sequence[int], seed: int = SHUFFLE_SEED) -> None:
        if len(windows) != len(indices):
            raise ValueError(f"{len(windows)} windows but {len(indices)} indices")
        self.windows = windows
        self.indices = [int(i) for i in indices]
        self.seed = int(seed)

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, k: int) -> tuple:
        x, *rest = self.windows[k]
        x = torch.as_tensor(x)
        order = torch.from_numpy(window_permutation(self.indices[k], x.shape[0], self.seed))
        return (x[order], *rest)  # (T, N): the same reordering for every channel


@dataclass
class ShuffleTest:
    """Test MSE/MAE (scaled space) of the same windows, in time order and shuffled."""

    mse: float
    mae: float
    shuffled_mse: float
    shuffled_mae: float
    windows: int
    seed: int = SHUFFLE_SEED

    @property
    def mse_increase_pct(self) -> float:
        return _increase_pct(self.mse, self.shuffled_mse)

    @property
    def mae_increase_pct(self) -> float:
        return _increase_pct(self.mae, self.shuffled_mae)

    def as_dict(self) -> dict[str, Any]:
        return {"test_mse": self.mse, "test_mae": self.mae, "shuffled_test_mse": self.shuffled_mse,
                "shuffled_test_mae": self.shuffled_mae, "mse_increase_pct": self.mse_increase_pct,
                "mae_increase_pct": self.mae_increase_pct, "test_windows": self.windows, "shuffle_seed": self.seed}


def _increase_pct(plain: float, shuffled: float) -> float:
    return 100.0 * (shuffled / plain - 1.0) if plain > 0 else float("nan")


def shuffle_test(predict: Callable[[torch.Tensor], torch.Tensor], windows: Any, indices: Sequence[int], data: Any,
                 batch_size: int = 32, seed: int = SHUFFLE_SEED) -> ShuffleTest:
    """Evaluate ``predict`` (x (B, T, N) -> forecast) on ``windows`` as they are and shuffled in time.

    ``indices`` are the windows' indices in their split (they choose each window's permutation).
    """
    plain = evaluate_batches(predict, DataLoader(windows, batch_size=batch_size, shuffle=False), data)
    shuffled = evaluate_batches(
        predict, DataLoader(TimeShuffledWindows(windows, indices, seed), batch_size=batch_size, shuffle=False), data)
    return ShuffleTest(plain.mse, plain.mae, shuffled.mse, shuffled.mae, plain.windows, int(seed))


def run_shuffle_test(run_dir: str | os.PathLike[str], model: torch.nn.Module | None = None, data: Any = None,
                     backbone: Any = None, seed: int = SHUFFLE_SEED, write: bool = True) -> dict[str, Any]:
    """The shuffle test of a finished run on its own test windows; written to its ``shuffle_test.json``.

    ``model`` and ``data`` (the trainer's, still in memory) avoid loading them again.
    """
    run = RunFolder.open(Path(run_dir))
    config = run.config()
    if model is None:
        model, data = load_run_model(run.path, backbone=backbone, data=data)
    elif data is None:
        raise RunError("run_shuffle_test needs the run's data along with its model.")
    training = config.training
    windows, indices = limited_windows(data, "test", training.max_eval_windows, int(training.seed))
    if len(windows) == 0:
        raise RunError(f"The run {run.run_id} has no test windows to shuffle.")
    device = next((p.device for p in model.trainable_parameters()), torch.device("cpu"))
    model.eval()
    result = shuffle_test(lambda x: model(x.to(device)), windows, indices, data,
                          batch_size=int(training.eval_batch_size), seed=seed).as_dict()
    result["llm_mode"] = config.model.llm_mode
    if write:
        run.write_shuffle_test(result)  # read back as RunInfo.shuffle_test
    return result
