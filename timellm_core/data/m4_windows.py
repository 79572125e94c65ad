"""The M4 protocol of the reference ``run_m4.py``: sampled training windows, hold-out validation,
last-window test forecasts, and the competition's metrics against Naive2.

Splits:

- train: one window per series per epoch (``samples_per_series`` for more). Item i belongs to
  series ``i % n_series``; its cut point is drawn uniformly from
  ``[max(1, L - window_limit), L)`` where L is the series' training length and
  ``window_limit = int(history_size * horizon)``, as the reference M4 loader does.
  Input = the seq_len points before the cut (left-padded with zeros, mask 0 there);
  target = the pred_len points from the cut (right-padded with zeros, mask 0 there).
- val: the last horizon of each training series, forecast from the seq_len points before it.
  The reference validates on the test horizon instead (its 'val' loader reads the test file);
  this project does not, so early stopping never sees test values. With
  ``holdout_validation=True`` (the default) training windows are drawn from each series
  without its last horizon, so validation is out of sample too.
- test: each series' test horizon, forecast from the last seq_len points of its full training part.

No scaling: the model's instance normalisation handles level, and the M4 metrics are in the
series' own units, so ``inverse_transform`` is the identity.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from timellm_core import metrics
from timellm_core.data.m4 import M4Series, describe_m4, load_m4, read_m4_description
from timellm_core.data.m4_patterns import M4Pattern, check_m4_lengths, m4_pattern
from timellm_core.data.registry import get_dataset_spec
from timellm_core.errors import DataError

SPLITS = ("train", "val", "test")
DEFAULT_SEED = 2021  # TrainingConfig's default seed; the trainer may call set_seed with the run's


def last_window(series: np.ndarray, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """The last seq_len points, right-aligned in zeros, and their mask (1 where a value is real)."""
    values = np.zeros(seq_len, dtype=np.float32)
    mask = np.zeros(seq_len, dtype=np.float32)
    tail = series[-seq_len:]
    values[seq_len - tail.size:] = tail
    mask[seq_len - tail.size:] = 1.0
    return values, mask


class M4TrainWindows(Dataset):
    """Randomly cut training windows, reproducible for a given seed.

    The k-th time item i is read, its cut point comes from a generator seeded with
    (seed, i, k). So each epoch that reads every item once sees fresh windows, and the
    windows do not depend on the order a shuffling DataLoader reads items in.
    ``set_epoch(e)`` makes the next read of every item use draw e (for resuming or
    for DataLoader worker processes, whose copies of the read counts do not come back).
    """

    def __init__(self, series: list[np.ndarray], seq_len: int, pred_len: int, window_limit: int,
                 seed: int = DEFAULT_SEED, samples_per_series: int = 1) -> None:
        short = [i for i, values in enumerate(series) if values.size < 2]
        if short:
            raise DataError(f"{len(short)} M4 training series have fewer than 2 points after holding out "
                            "the validation horizon; turn holdout_validation off for this pattern.")
        if samples_per_series < 1:
            raise DataError(f"samples_per_series must be at least 1, not {samples_per_series}.")
        self.series = series
        self.seq_len = seq_len
        self.pred_len = pred_len
        self.window_limit = window_limit
        self.seed = int(seed)
        self.samples_per_series = int(samples_per_series)
        self._reads = np.zeros(len(series) * self.samples_per_series, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._reads)

    def set_epoch(self, epoch: int) -> None:
        self._reads[:] = int(epoch)

    def reseed(self, seed: int) -> None:
        """Use another seed from the first draw on."""
        self.seed = int(seed)
        self._reads[:] = 0

    def cut_range(self, series_index: int) -> tuple[int, int]:
        """Half-open range [low, high) the cut point of this series is drawn from."""
        length = self.series[series_index].size
        return max(1, length - self.window_limit), length

    def window_at(self, index: int, draw: int) -> tuple[np.ndarray, ...]:
        """(x, x_mask, y, y_mask, cut) of item ``index`` on its ``draw``-th read; float32 1-D arrays."""
        series_index = index % len(self.series)
        values = self.series[series_index]
        low, high = self.cut_range(series_index)
        cut = int(np.random.default_rng([self.seed, index, draw]).integers(low, high))
        x, x_mask = last_window(values[:cut], self.seq_len)
        after = values[cut: cut + self.pred_len]
        y = np.zeros(self.pred_len, dtype=np.float32)
        y_mask = np.zeros(self.pred_len, dtype=np.float32)
        y[: after.size] = after
        y_mask[: after.size] = 1.0
        return x, x_mask, y, y_mask, cut

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        index = int(index)
        draw = int(self._reads[index])
        self._reads[index] += 1
        x, _, y, y_mask, _ = self.window_at(index, draw)
        # (T, 1), (pred_len, 1), (pred_len, 1): tensors, like the other datasets' windows
        return (torch.from_numpy(x[:, None]), torch.from_numpy(y[:, None]), torch.from_numpy(y_mask[:, None]))


class M4FixedWindows(Dataset):
    """One fixed (input, target) pair per series: the val and test splits."""

    def __init__(self, inputs: np.ndarray, targets: np.ndarray) -> None:
        self.inputs = torch.from_numpy(inputs.astype(np.float32)[:, :, None])  # (n_series, T, 1)
        self.targets = torch.from_numpy(targets.astype(np.float32)[:, :, None])  # (n_series, pred_len, 1)
        self.target_mask = torch.ones_like(self.targets)

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.inputs[index], self.targets[index], self.target_mask[index]


@dataclass
class M4Data:
    """One M4 pattern prepared for the trainer: the same interface as the other datasets' data objects."""

    series: M4Series
    description: str
    seed: int = DEFAULT_SEED
    samples_per_series: int = 1
    holdout_validation: bool = True
    name: str = "m4"
    kind: str = "m4"
    features: str = "S"
    channels: list[str] = field(default_factory=lambda: ["value"])
    target_channels: list[str] = field(default_factory=lambda: ["value"])
    _splits: dict = field(default_factory=dict, repr=False)
    _benchmarks: dict | None = field(default=None, repr=False)

    @classmethod
    def from_series(cls, series: M4Series, description: str, **options) -> "M4Data":
        return cls(series=series, description=description, **options)

    # -- facts ---------------------------------------------------------------------------------
    @property
    def pattern(self) -> M4Pattern:
        return self.series.meta

    @property
    def seq_len(self) -> int:
        return self.pattern.seq_len

    @property
    def pred_len(self) -> int:
        return self.pattern.horizon

    @property
    def period(self) -> int:
        return self.pattern.frequency

    @property
    def series_ids(self) -> list[str]:
        return self.series.ids

    @property
    def spec(self):
        """The registry entry named "m4" (the data layer's DatasetSpec)."""
        return get_dataset_spec("m4")

    def train_series(self, i: int) -> np.ndarray:
        """The full training history of series i (float64, original units)."""
        return self.series.train[i]

    def test_series(self, i: int) -> np.ndarray:
        """The test horizon of series i; a DataError when the test file is missing."""
        if self.series.test is None:
            self.series.test_matrix()  # raises the DataError that names the missing file
        return self.series.test[i]

    def series_index(self, series_id: str) -> int:
        try:
            return self.series.ids.index(series_id)
        except ValueError:
            raise DataError(f"No series {series_id!r} in M4 {self.pattern.name}.") from None

    # -- windows -------------------------------------------------------------------------------
    def set_seed(self, seed: int) -> None:
        """Seed of the training cut points (the trainer passes its run seed); resets the draws."""
        self.seed = int(seed)
        if "train" in self._splits:  # changed in place: a trainer may already hold a Subset of it
            self._splits["train"].reseed(self.seed)

    def set_epoch(self, epoch: int) -> None:
        """Make the training windows of ``epoch`` reproducible whatever happened before (resume, workers)."""
        train = self.windows("train")
        train.set_epoch(epoch)

    def _training_histories(self) -> list[np.ndarray]:
        if not self.holdout_validation:
            return self.series.train
        return [values[: values.size - self.pred_len] for values in self.series.train]

    def windows(self, split: str) -> Dataset:
        """The split as a torch Dataset of (x (T, 1), y (pred_len, 1), y_mask (pred_len, 1)) float32."""
        if split not in SPLITS:
            raise DataError(f"Unknown split {split!r}: choose one of {', '.join(SPLITS)}.")
        if split not in self._splits:
            self._splits[split] = self._build(split)
        return self._splits[split]

    def _build(self, split: str) -> Dataset:
        if split == "train":
            return M4TrainWindows(self._training_histories(), self.seq_len, self.pred_len,
                                  self.pattern.window_limit, self.seed, self.samples_per_series)
        if split == "val":
            histories = [values[: values.size - self.pred_len] for values in self.series.train]
            targets = np.stack([values[values.size - self.pred_len:] for values in self.series.train])
        else:
            histories = self.series.train
            targets = self.series.test_matrix()
        inputs = np.stack([last_window(values, self.seq_len)[0] for values in histories])
        return M4FixedWindows(inputs, targets)

    def window_count(self, split: str) -> int:
        if split == "test" and self.series.test is None:
            return 0
        return len(self.windows(split))

    def info(self) -> dict:
        """``describe_m4`` facts plus window counts per split, for `data info` and the app."""
        facts = describe_m4(self.pattern.name, data_path=str(self.series.train_path))
        facts["windows"] = {split: self.window_count(split) for split in SPLITS}
        facts.update(seed=self.seed, holdout_validation=self.holdout_validation,
                     samples_per_series=self.samples_per_series)
        return facts

    def inverse_transform(self, values: np.ndarray) -> np.ndarray:
        """Identity: M4 values are never scaled here (the model normalises each window itself)."""
        return values

    # -- metrics -------------------------------------------------------------------------------
    def benchmark_forecasts(self) -> dict[str, np.ndarray]:
        """naive, seasonal_naive and naive2 test forecasts, each (n_series, horizon), computed once."""
        if self._benchmarks is None:
            self._benchmarks = metrics.benchmark_forecasts(self.series.train, self.pred_len, self.period)
        return self._benchmarks

    def benchmark_table(self, rows: np.ndarray | None = None) -> dict[str, dict[str, float]]:
        """sMAPE / MASE / OWA of the three benchmarks on the test horizons (of ``rows``, default all)."""
        rows = np.arange(len(self.series.ids)) if rows is None else np.asarray(rows)
        truths = self.series.test_matrix()[rows]
        insamples = [self.series.train[i] for i in rows]
        forecasts = {name: values[rows] for name, values in self.benchmark_forecasts().items()}
        naive2 = metrics.score_forecasts(forecasts["naive2"], truths, insamples, self.period)
        return {name: metrics.score_forecasts(values, truths, insamples, self.period, naive2)
                for name, values in forecasts.items()}

    def _series_rows(self, truth: np.ndarray, indices) -> np.ndarray:
        """Which series each evaluated test window is, checked against the test values."""
        expected = self.series.test_matrix()
        if indices is not None:
            rows = np.asarray(indices, dtype=np.int64)
        elif truth.shape[0] == expected.shape[0]:
            rows = np.arange(expected.shape[0])
        else:
            # A subset (max_eval_windows) keeps windows in series order: match each row to the next
            # series with the same test values. Only series with identical test horizons could be
            # confused, and then sMAPE is unaffected.
            rows, start = [], 0
            for values in truth:
                close = np.all(np.isclose(expected[start:], values, rtol=1e-5, atol=1e-3), axis=1)
                if not close.any():
                    break
                rows.append(start + int(np.argmax(close)))
                start = rows[-1] + 1
            rows = np.asarray(rows, dtype=np.int64)
        if rows.shape[0] != truth.shape[0] or not np.allclose(truth, expected[rows], rtol=1e-5, atol=1e-3):
            raise DataError(f"The M4 {self.pattern.name} test targets do not match the test file in series order: "
                            "evaluate the test split unshuffled (or pass the window indices).")
        return rows

    def extra_test_metrics(self, forecast: np.ndarray, truth: np.ndarray, indices=None) -> dict[str, float]:
        """M4 scores of test forecasts (n, pred_len[, 1]), with the benchmarks' on the same series.

        Keys: smape, mase, owa, and naive_*, seasonal_naive_*, naive2_* for the same three, so a
        model is always reported next to them. Rows are the test windows in series order (all of
        them, or an ordered subset; ``indices`` names the series when known). ``truth`` is checked
        against the test file, because MASE and Naive2 need to know which series each row is.
        """
        forecast = np.asarray(forecast, dtype=np.float64)
        truth = np.asarray(truth, dtype=np.float64)
        forecast = forecast.reshape(forecast.shape[0], -1)  # (n, pred_len)
        truth = truth.reshape(truth.shape[0], -1)
        if forecast.shape != truth.shape or forecast.shape[1] != self.pred_len:
            raise DataError(f"M4 {self.pattern.name} metrics need (n, {self.pred_len}) forecasts and truths, "
                            f"not {forecast.shape} and {truth.shape}.")
        rows = self._series_rows(truth, indices)
        table = self.benchmark_table(rows)
        insamples = [self.series.train[i] for i in rows]
        scores = metrics.score_forecasts(forecast, truth, insamples, self.period, table["naive2"])
        scores["series"] = int(rows.size)
        for name, values in table.items():
            scores.update({f"{name}_{metric}": value for metric, value in values.items()})
        return scores


def prepare_m4(config, seq_len: int | None, pred_len: int | None, **options):
    """Load one pattern and return its ``M4Data`` (the reference ``run_m4.py`` protocol).

    ``config`` is a ``DataConfig`` (uses ``seasonal_patterns`` and ``data_path``). ``seq_len`` and
    ``pred_len`` must be 2 x horizon and the horizon (None picks them); anything else raises a
    ConfigError that names the right values. ``options`` go to ``M4Data.from_series`` (seed,
    samples_per_series, holdout_validation).
    """
    chosen = m4_pattern(getattr(config, "seasonal_patterns", None))
    seq_len, pred_len = check_m4_lengths(chosen, seq_len, pred_len)
    loaded = load_m4(chosen.name, getattr(config, "data_path", None))
    return M4Data.from_series(loaded, description=read_m4_description(chosen.name), **options)
