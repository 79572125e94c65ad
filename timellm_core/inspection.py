"""What the app's pages show, as plain data: shapes, statistics, spans, rankings. No plotting.

Every function here takes arrays, frames or configs and returns arrays, frames or small
dataclasses, so a page only decides how to draw them and a test can check the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from timellm_core.config import RunConfig, patch_count
from timellm_core.model.ablations import runs_llm

# --------------------------------------------------------------------------------------------
# The pipeline with live tensor shapes (Home page)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PipelineStage:
    """One box of the pipeline diagram."""

    key: str
    title: str
    shape: str  # e.g. "(8, 512, 7)"; several lines (input / output) separated by "\n"
    detail: str  # one line: what happens, in the paper's words
    trainable: bool = False
    frozen: bool = False


def _shape(*dims: int | str) -> str:
    return "(" + ", ".join(str(d) for d in dims) + ")"


def pipeline_stages(config: RunConfig, channels: int | None, hidden_size: int | None = None,
                    vocab_size: int | None = None, prompt_tokens: int | None = None,
                    llm_layers: int | None = None) -> list[PipelineStage]:
    """The forward pass of section 2 of the spec, one stage per box, with shapes for ``config``.

    Unknown sizes stay symbolic (N, D, V, L) so the diagram is right before anything is loaded.
    ``channels`` is the number of input channels for the chosen dataset and ``features``.
    """
    model, batch = config.model, config.training.batch_size
    n: int | str = channels if channels else "N"
    d: int | str = hidden_size or "D"
    v: int | str = vocab_size or "V"
    prompt: int | str = prompt_tokens or "L"
    t, p = model.seq_len, model.patch_count
    series: int | str = batch * n if isinstance(n, int) else f"{batch}·N"
    out_channels: int | str = 1 if config.data.features in ("S", "MS") else n
    layers = llm_layers or config.backbone.llm_layers
    stages = [
        PipelineStage("input", "Input window x", _shape(batch, t, n),
                      f"B={batch} windows of T={t} scaled steps, N={n} channels"),
        PipelineStage("normalise", "RevIN normalise", _shape(batch, t, n),
                      "per window and channel: subtract mean, divide by std (kept for the output)"),
        PipelineStage("channels", "Channel independence", _shape(series, t, 1),
                      "each channel becomes its own sequence (B·N)"),
        PipelineStage("patch", "Patching", _shape(series, p, model.patch_len),
                      f"pad {model.stride} steps, cut P={p} patches of {model.patch_len} every {model.stride}"),
        PipelineStage("embed", "Patch embedding", _shape(series, p, model.d_model),
                      f"Conv1d patch_len -> d_model={model.d_model}", trainable=True),
        PipelineStage("prototypes", "Text prototypes", _shape(model.num_prototypes, d),
                      f"Linear over the frozen word embeddings {_shape(v, d)} -> S={model.num_prototypes}",
                      trainable=True),
        PipelineStage("reprogram", "Reprogramming attention",
                      f"A {_shape(series, model.n_heads, p, model.num_prototypes)}\nout {_shape(series, p, d)}",
                      f"patches attend to prototypes, H={model.n_heads} heads; output {_shape(series, p, d)}",
                      trainable=True),
        PipelineStage("prompt", "Prompt-as-Prefix", _shape(series, prompt, d),
                      "dataset description, task and input statistics, embedded by the frozen table",
                      frozen=True),
    ]
    if runs_llm(model.llm_mode):
        weights = "weights frozen" if model.llm_mode == "frozen" else "random weights (llm_mode=random), frozen"
        llm = PipelineStage("llm", f"{'Frozen' if model.llm_mode == 'frozen' else 'Random'} LLM ({layers} layers)",
                            f"{_shape(series, _sum(prompt, p), d)}\nkeep {_shape(series, p, model.d_ff)}",
                            f"prompt tokens then reprogrammed patches; {weights}", frozen=True)
    elif model.llm_mode == "none":
        llm = PipelineStage("llm", "No LLM (ablation)", f"{_shape(series, p, d)}\nkeep {_shape(series, p, model.d_ff)}",
                            "llm_mode=none: reprogrammed patches go straight to the head")
    else:
        llm = PipelineStage("llm", f"Replacement {model.llm_mode} layer (ablation)",
                            f"{_shape(series, p, d)}\nkeep {_shape(series, p, model.d_ff)}",
                            f"llm_mode={model.llm_mode}: a small trainable layer replaces the LLM", trainable=True)
    if not runs_llm(model.llm_mode):
        stages = [stage for stage in stages if stage.key != "prompt"]  # the ablations have no prompt
    stages += [
        llm,
        PipelineStage("head", "Output head", _shape(batch, n, model.pred_len),
                      f"last P positions, first d_ff={model.d_ff} features {_shape(batch, n, model.d_ff * p)} "
                      f"-> Linear -> pred_len={model.pred_len}", trainable=True),
        PipelineStage("forecast", "De-normalise", _shape(batch, model.pred_len, out_channels),
                      "undo RevIN with the input's statistics" +
                      (" (the target channel is kept)" if config.data.features == "MS" else "")),
    ]
    return stages


def _sum(a: int | str, b: int) -> int | str:
    return a + b if isinstance(a, int) else f"{a}+{b}"


# --------------------------------------------------------------------------------------------
# Data page: statistics and downsampling for drawing
# --------------------------------------------------------------------------------------------


def channel_statistics(frame: pd.DataFrame, channels: list[str],
                       train_border: tuple[int, int] | None = None) -> pd.DataFrame:
    """Per-channel count, missing, mean, std, min, median, max; plus train-split mean/std (the scaler's)."""
    rows = []
    for name in channels:
        values = pd.to_numeric(frame[name], errors="coerce")
        row = {"channel": name, "rows": int(values.size), "missing": int(values.isna().sum()),
               "mean": values.mean(), "std": values.std(ddof=0), "min": values.min(),
               "median": values.median(), "max": values.max()}
        if train_border is not None:
            train = values.iloc[train_border[0]:train_border[1]]
            row["train mean"] = train.mean()
            row["train std"] = train.std(ddof=0)
        rows.append(row)
    return pd.DataFrame(rows).set_index("channel")


def lttb_indices(y: np.ndarray, threshold: int) -> np.ndarray:
    """Largest-Triangle-Three-Buckets: indices of ``threshold`` points that keep the line's shape.

    Peaks and troughs survive (unlike a plain stride), so a downsampled chart does not hide spikes.
    The x axis is taken as the row index (equally spaced samples). Returns all indices when the
    series is already short enough.
    """
    n = int(y.size)
    if threshold >= n or threshold < 3:
        return np.arange(n)
    y = np.asarray(y, dtype=float)
    y = np.where(np.isfinite(y), y, np.nanmean(y) if np.isfinite(y).any() else 0.0)
    edges = np.linspace(1, n - 1, threshold - 1).astype(int)  # threshold-2 buckets between the ends
    chosen = np.empty(threshold, dtype=int)
    chosen[0], chosen[-1] = 0, n - 1
    previous = 0
    for i in range(threshold - 2):
        start, end = edges[i], max(edges[i + 1], edges[i] + 1)
        next_start, next_end = edges[i + 1], edges[i + 2] if i + 2 < len(edges) else n
        next_end = max(next_end, next_start + 1)
        mean_x = (next_start + next_end - 1) / 2.0
        mean_y = y[next_start:next_end].mean()
        xs = np.arange(start, end)
        area = np.abs((previous - mean_x) * (y[start:end] - y[previous])
                      - (previous - xs) * (mean_y - y[previous]))
        previous = start + int(np.argmax(area))
        chosen[i + 1] = previous
    return chosen


@dataclass(frozen=True)
class Downsampled:
    """A frame cut to at most ``max_points`` rows per channel for drawing."""

    frame: pd.DataFrame  # 'row' (original row number), 'date' when present, one column per channel
    original_rows: int
    points: int
    method: str  # "none" or "LTTB"


def downsample_for_plot(frame: pd.DataFrame, channels: list[str], max_points: int = 2000) -> Downsampled:
    """Per-channel LTTB downsampling; each channel keeps its own shape-preserving points.

    Channels are downsampled independently, so the result is long-form per channel aligned on the
    union of chosen rows (other channels are NaN there and Plotly connects gaps).
    """
    n = len(frame)
    base = pd.DataFrame({"row": np.arange(n)})
    if "date" in frame.columns:
        base["date"] = frame["date"].to_numpy()
    if n <= max_points:
        out = base.copy()
        for name in channels:
            out[name] = pd.to_numeric(frame[name], errors="coerce").to_numpy()
        return Downsampled(out, n, n, "none")
    picks: dict[str, np.ndarray] = {}
    for name in channels:
        values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)
        picks[name] = lttb_indices(values, max_points)
    rows = np.unique(np.concatenate(list(picks.values())))
    out = base.iloc[rows].reset_index(drop=True)
    for name in channels:
        column = np.full(rows.size, np.nan)
        keep = np.isin(rows, picks[name])
        column[keep] = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)[rows[keep]]
        out[name] = column
    return Downsampled(out, n, max_points, "LTTB")


# --------------------------------------------------------------------------------------------
# Patches page
# --------------------------------------------------------------------------------------------


def patch_spans(seq_len: int, patch_len: int, stride: int) -> list[tuple[int, int]]:
    """(start, end) in input steps of each patch, end exclusive; the last ones reach into the padding.

    The model pads ``stride`` copies of the last value, so positions >= seq_len are padding.
    """
    return [(i * stride, i * stride + patch_len) for i in range(patch_count(seq_len, patch_len, stride))]


# --------------------------------------------------------------------------------------------
# Prompt & reprogramming page
# --------------------------------------------------------------------------------------------

def top_prototypes(attention: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` prototypes with the most attention mass, most attended first.

    ``attention`` is one series' map, (H, P, S) or (P, S); mass is summed over heads and patches.
    """
    attention = np.asarray(attention, dtype=float)
    mass = attention.reshape(-1, attention.shape[-1]).sum(axis=0)  # (S,)
    k = max(1, min(int(k), mass.size))
    return np.argsort(-mass, kind="stable")[:k]


def patch_top_prototypes(attention: np.ndarray, patch: int, k: int = 10,
                         head: int | None = None) -> pd.DataFrame:
    """For one patch, the prototypes it attends to most: prototype, weight (head mean or one head)."""
    attention = np.asarray(attention, dtype=float)  # (H, P, S)
    weights = attention[:, patch, :].mean(axis=0) if head is None else attention[head, patch, :]
    order = np.argsort(-weights, kind="stable")[:max(1, int(k))]
    return pd.DataFrame({"prototype": order, "attention": weights[order]})


def attention_entropy(attention: np.ndarray) -> np.ndarray:
    """Entropy (nats) of each patch's distribution over prototypes, (..., P); log(S) means uniform."""
    attention = np.clip(np.asarray(attention, dtype=float), 1e-12, 1.0)
    return -(attention * np.log(attention)).sum(axis=-1)


# --------------------------------------------------------------------------------------------
# Forecast page
# --------------------------------------------------------------------------------------------


def errors_per_step(forecast: np.ndarray, truth: np.ndarray) -> pd.DataFrame:
    """MSE and MAE per horizon step, averaged over the leading axes (windows, channels).

    ``forecast`` and ``truth`` are (..., pred_len, N) or (pred_len, N) in the same (scaled) space.
    """
    forecast, truth = np.asarray(forecast, dtype=float), np.asarray(truth, dtype=float)
    if forecast.shape != truth.shape:
        raise ValueError(f"forecast {forecast.shape} and truth {truth.shape} differ in shape")
    error = forecast - truth
    axes = tuple(i for i in range(error.ndim) if i != error.ndim - 2)
    return pd.DataFrame({"step": np.arange(1, error.shape[-2] + 1),
                         "MSE": (error ** 2).mean(axis=axes),
                         "MAE": np.abs(error).mean(axis=axes)})


# --------------------------------------------------------------------------------------------
# Train page: training events as tables
# --------------------------------------------------------------------------------------------


def step_losses(events: list[dict]) -> pd.DataFrame:
    """One row per optimiser step: global_step, epoch, loss, lr (from ``step`` events)."""
    rows = [{"global_step": e.get("global_step"), "epoch": e.get("epoch"), "loss": e.get("loss"), "lr": e.get("lr")}
            for e in events if e.get("type") == "step"]
    return pd.DataFrame(rows, columns=["global_step", "epoch", "loss", "lr"])


def epoch_losses(events: list[dict]) -> pd.DataFrame:
    """One row per finished epoch: train (mean training loss), val and test MSE, val and test MAE.

    A resumed run can repeat an epoch; the last record of each epoch wins.
    """
    rows: dict[int, dict] = {}
    for e in events:
        if e.get("type") == "epoch":
            rows[int(e["epoch"])] = {"epoch": int(e["epoch"]), "train": e.get("train_loss"), "val": e.get("val_mse"),
                                     "test": e.get("test_mse"), "val_mae": e.get("val_mae"),
                                     "test_mae": e.get("test_mae"), "lr": e.get("lr")}
    columns = ["epoch", "train", "val", "test", "val_mae", "test_mae", "lr"]
    return pd.DataFrame([rows[k] for k in sorted(rows)], columns=columns).astype(
        {c: float for c in columns if c != "epoch"})


def epoch_boundaries(events: list[dict]) -> list[int]:
    """The global step at which each finished epoch ended (for vertical lines on the step chart)."""
    last_step: dict[int, int] = {}
    for e in events:
        if e.get("type") == "step" and e.get("epoch") is not None:
            last_step[int(e["epoch"])] = int(e["global_step"])
    return [last_step[k] for k in sorted(last_step)][:-1] if last_step else []


def forecast_table(forecast: np.ndarray, truth: np.ndarray, window_index: np.ndarray, channels: list[str],
                   forecast_original: np.ndarray | None = None, truth_original: np.ndarray | None = None,
                   horizon_dates: list[np.ndarray] | None = None) -> pd.DataFrame:
    """Long table of a run's test forecasts: one row per (window, step, channel), for a CSV download.

    Arrays are (W, pred_len, N_out); ``horizon_dates`` (one array of pred_len timestamps per window)
    is added as a 'date' column when given.
    """
    windows, steps, width = forecast.shape
    w, s, c = np.meshgrid(np.arange(windows), np.arange(steps), np.arange(width), indexing="ij")
    table = pd.DataFrame({"test_window": np.asarray(window_index)[w.ravel()], "step": s.ravel() + 1,
                          "channel": np.asarray(channels)[c.ravel()],
                          "forecast_scaled": forecast.ravel(), "truth_scaled": truth.ravel()})
    if forecast_original is not None and truth_original is not None:
        table["forecast"] = forecast_original.ravel()
        table["truth"] = truth_original.ravel()
    if horizon_dates is not None:
        dates = np.stack([np.asarray(d) for d in horizon_dates])  # (W, pred_len)
        table.insert(1, "date", dates[w.ravel(), s.ravel()])
    return table
