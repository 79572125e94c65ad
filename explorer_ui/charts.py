"""Plotly figures shared by the pages. Inputs are plain arrays and frames from timellm_core.inspection."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

SPLIT_COLOURS = {"train": "rgba(37, 99, 235, 0.10)", "val": "rgba(234, 179, 8, 0.16)",
                 "test": "rgba(220, 38, 38, 0.12)", "unused": "rgba(120, 120, 120, 0.10)"}
SPLIT_LEGEND = {"train": "rgba(37, 99, 235, 0.5)", "val": "rgba(234, 179, 8, 0.6)",
                "test": "rgba(220, 38, 38, 0.5)", "unused": "rgba(120, 120, 120, 0.5)"}
LINE = "#1f2937"
FORECAST = "#dc2626"
TRUTH = "#16a34a"
CONTEXT = "#2563eb"
# Far from the blue context, green truth and red forecast (a cyan or olive baseline read as one of them).
BASELINE_COLOURS = ("#9333ea", "#ea580c", "#a16207", "#db2777")
BASELINE_COLOUR = {"naive": BASELINE_COLOURS[0], "seasonal naive": BASELINE_COLOURS[1],
                   "dlinear": BASELINE_COLOURS[2]}  # the same colour for a baseline in every chart
PATCH_COLOURS = ("rgba(37, 99, 235, 0.18)", "rgba(234, 88, 12, 0.18)")


def _layout(fig: go.Figure, height: int, title: str | None = None) -> go.Figure:
    """Shared look: the title on its own line at the top, the legend between it and the plot."""
    legend = any(trace.showlegend is not False for trace in fig.data) and len(fig.data) > 1
    top = (34 if title else 8) + (28 if legend else 0)
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=top, b=10), hovermode="x unified",
                      title=dict(text=title, y=1.0, yref="container", yanchor="top", pad=dict(t=10)) if title else None,
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="left", x=0))
    return fig


# ------------------------------------------------------------------------------------------
# Data page
# ------------------------------------------------------------------------------------------


def series_with_splits(frame: pd.DataFrame, channels: Sequence[str], spans: dict[str, tuple[int, int]],
                       x_column: str = "date", row_height: int = 150) -> go.Figure:
    """One panel per channel, sharing the x axis, with the split regions shaded.

    ``frame`` holds a 'row' column (original row numbers), ``x_column`` and the channels;
    ``spans`` maps split name -> (first row, end row) of the rows that belong to that split only.
    """
    fig = make_subplots(rows=len(channels), cols=1, shared_xaxes=True, vertical_spacing=0.02,
                        subplot_titles=list(channels))
    x = frame[x_column] if x_column in frame.columns else frame["row"]
    for i, name in enumerate(channels, start=1):
        values = frame[name]
        keep = values.notna().to_numpy()
        fig.add_trace(go.Scattergl(x=x[keep], y=values[keep], mode="lines", name=name,
                                   line=dict(width=0.8, color=LINE), showlegend=False), row=i, col=1)
    first_rows, xs = frame["row"].to_numpy(), x.to_numpy()
    for split, (start, end) in spans.items():
        if end <= start:
            continue
        x0, x1 = _x_at(first_rows, xs, start), _x_at(first_rows, xs, end - 1)
        for i in range(1, len(channels) + 1):
            fig.add_vrect(x0=x0, x1=x1, fillcolor=SPLIT_COLOURS.get(split, SPLIT_COLOURS["unused"]),
                          line_width=0, layer="below", row=i, col=1)
        # One legend entry per split, drawn as an invisible marker.
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=split,
                                 marker=dict(size=12, symbol="square",
                                             color=SPLIT_LEGEND.get(split, SPLIT_LEGEND["unused"]))),
                      row=1, col=1)
    fig.update_annotations(font_size=12, x=0, xanchor="left")
    fig.update_layout(hovermode="closest")
    return _layout(fig, height=max(260, row_height * len(channels) + 60))


def _x_at(rows: np.ndarray, xs: np.ndarray, row: int) -> object:
    """The x value of the drawn point closest to original row ``row``."""
    index = int(np.clip(np.searchsorted(rows, row), 0, len(rows) - 1))
    value = xs[index]
    # Shapes are serialised as they are: nanosecond datetime64 strings do not parse in plotly.js.
    return pd.Timestamp(value).isoformat() if isinstance(value, np.datetime64) else value


def single_series(x: Sequence, y: Sequence, shade: tuple[object, object] | None = None,
                  shade_label: str = "test horizon", tail: tuple[Sequence, Sequence] | None = None,
                  title: str | None = None) -> go.Figure:
    """One series (e.g. an M4 series) with an optional shaded region and a continuation drawn after it."""
    fig = go.Figure(go.Scatter(x=list(x), y=list(y), mode="lines", name="history", line=dict(color=LINE, width=1.4)))
    if tail is not None:
        fig.add_trace(go.Scatter(x=list(tail[0]), y=list(tail[1]), mode="lines", name=shade_label,
                                 line=dict(color=TRUTH, width=1.6)))
    if shade is not None:
        fig.add_vrect(x0=shade[0], x1=shade[1], fillcolor=SPLIT_COLOURS["test"], line_width=0, layer="below",
                      annotation_text=shade_label, annotation_position="top left")
    return _layout(fig, 340, title)


# ------------------------------------------------------------------------------------------
# Pipeline diagram (Home)
# ------------------------------------------------------------------------------------------


_SIDE_INPUTS = {"prototypes": "reprogram", "prompt": "llm"}  # boxes that feed the next step from the side


def _box(stage: object, side: bool = False) -> str:
    classes = ["tl-box"] + (["trainable"] if stage.trainable else ["frozen"] if stage.frozen else [])
    if side:
        classes.append("side")
    tag = "trainable" if stage.trainable else "frozen" if stage.frozen else ""
    shapes = "".join(f'<div class="tl-shape">{_esc(line)}</div>' for line in str(stage.shape).split("\n"))
    return (f'<div class="{" ".join(classes)}" title="{_esc(stage.detail)}">'
            f'<div class="tl-title">{_esc(stage.title)}</div>{shapes}'
            + (f'<div class="tl-tag">{tag}</div>' if tag else "") + "</div>")


def pipeline_html(stages: Sequence) -> str:
    """The pipeline as wrapping boxes with arrows; each box shows its live tensor shape.

    HTML rather than a graph layout so the labels keep the page's font size at any width.
    Side inputs (text prototypes, the prompt) have a dashed border and sit above the step they feed.
    """
    style = (
        "<style>"
        ".tl-flow{display:flex;flex-wrap:wrap;align-items:flex-end;gap:6px 4px;font-family:inherit}"
        ".tl-box{border:1px solid #9ca3af;border-radius:8px;padding:6px 10px;min-width:128px;max-width:210px;"
        "background:#f9fafb;line-height:1.25}"
        ".tl-box.trainable{background:#dbeafe;border-color:#60a5fa}"
        ".tl-box.frozen{background:#e5e7eb;border-color:#6b7280}"
        ".tl-box.side{border-style:dashed}"
        ".tl-title{font-weight:600;font-size:0.92rem}"
        ".tl-shape{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:0.88rem;color:#111827}"
        ".tl-tag{font-size:0.72rem;color:#4b5563;text-transform:uppercase;letter-spacing:0.03em}"
        ".tl-arrow{align-self:flex-end;font-size:1.3rem;color:#6b7280;padding:0 2px 14px 2px}"
        ".tl-stack{display:flex;flex-direction:column;align-items:stretch;gap:0}"
        ".tl-down{text-align:center;color:#6b7280;font-size:1.1rem;line-height:1.1}"
        "</style>")
    parts: list[str] = []
    index = 0
    while index < len(stages):
        stage = stages[index]
        if parts:
            parts.append('<div class="tl-arrow">&rarr;</div>')
        if stage.key in _SIDE_INPUTS and index + 1 < len(stages) and stages[index + 1].key == _SIDE_INPUTS[stage.key]:
            # The side input sits above the step it feeds, joined by a down arrow.
            parts.append('<div class="tl-stack">' + _box(stage, side=True) + '<div class="tl-down">&darr;</div>'
                         + _box(stages[index + 1]) + "</div>")
            index += 2
            continue
        parts.append(_box(stage))
        index += 1
    return style + '<div class="tl-flow">' + "".join(parts) + "</div>"


def _esc(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ------------------------------------------------------------------------------------------
# Heatmaps (patch embeddings, attention)
# ------------------------------------------------------------------------------------------


def heatmap(z: np.ndarray, x_labels: Sequence, y_labels: Sequence, x_title: str, y_title: str,
            colour_title: str, title: str | None = None, colorscale: str = "Viridis",
            height: int = 380, zmid: float | None = None) -> go.Figure:
    fig = go.Figure(go.Heatmap(z=np.asarray(z), x=[str(v) for v in x_labels], y=[str(v) for v in y_labels],
                               colorscale=colorscale, zmid=zmid, colorbar=dict(title=dict(text=colour_title)),
                               hovertemplate=f"{y_title} %{{y}}<br>{x_title} %{{x}}<br>{colour_title} %{{z:.4f}}"
                                             "<extra></extra>"))
    fig.update_xaxes(title_text=x_title, type="category")
    fig.update_yaxes(title_text=y_title, type="category", autorange="reversed")
    fig.update_layout(hovermode="closest")
    return _layout(fig, height, title)


# ------------------------------------------------------------------------------------------
# Patches page
# ------------------------------------------------------------------------------------------


def window_with_patches(values: np.ndarray, padded: np.ndarray, spans: Sequence[tuple[int, int]],
                        highlight: int | None, title: str, y_title: str) -> go.Figure:
    """The (normalised) window, its end padding, and every patch as an alternating band.

    Alternate patches are drawn in two rows of bands (above/below) so their overlap stays visible.
    """
    t = len(values)
    fig = go.Figure()
    low, high = float(np.nanmin(padded)), float(np.nanmax(padded))
    pad = (high - low) * 0.08 or 1.0
    for i, (start, end) in enumerate(spans):
        upper = i % 2 == 0
        y0, y1 = (high + pad * 0.2, high + pad) if upper else (low - pad, low - pad * 0.2)
        colour = "rgba(220, 38, 38, 0.55)" if i == highlight else PATCH_COLOURS[i % 2].replace("0.18", "0.45")
        # A white edge separates patches that touch (every other patch when stride = patch_len / 2).
        fig.add_shape(type="rect", x0=start - 0.5, x1=end - 0.5, y0=y0, y1=y1, fillcolor=colour,
                      line=dict(color="white", width=2))
        if len(spans) <= 32:
            fig.add_annotation(x=(start + end - 1) / 2, y=(y0 + y1) / 2, text=str(i), showarrow=False,
                               font=dict(size=10, color="#111827"))
        if i == highlight:
            fig.add_vrect(x0=start - 0.5, x1=end - 0.5, fillcolor="rgba(220, 38, 38, 0.10)", line_width=0,
                          layer="below")
    fig.add_trace(go.Scatter(x=np.arange(t), y=values, mode="lines", name="window", line=dict(color=LINE)))
    fig.add_trace(go.Scatter(x=np.arange(t - 1, len(padded)), y=padded[t - 1:], mode="lines",
                             name="end padding (repeated last value)", line=dict(color=FORECAST, dash="dot")))
    fig.add_vline(x=t - 0.5, line=dict(color="#6b7280", dash="dash", width=1))
    fig.update_xaxes(title_text="step in the window")
    fig.update_yaxes(title_text=y_title)
    return _layout(fig, 360, title)


def simple_line(x: Sequence, ys: dict[str, Sequence], title: str | None, x_title: str, y_title: str,
                height: int = 300) -> go.Figure:
    fig = go.Figure()
    for i, (name, y) in enumerate(ys.items()):
        fig.add_trace(go.Scatter(x=list(x), y=list(y), mode="lines+markers" if len(x) < 40 else "lines",
                                 name=name, line=dict(color=[LINE, FORECAST, TRUTH, CONTEXT][i % 4])))
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=y_title)
    return _layout(fig, height, title)


# ------------------------------------------------------------------------------------------
# Train page
# ------------------------------------------------------------------------------------------


def step_loss(steps: Sequence[int], losses: Sequence[float], epoch_steps: Sequence[int] = ()) -> go.Figure:
    """Training loss per optimiser step, with epoch boundaries."""
    fig = go.Figure(go.Scatter(x=list(steps), y=list(losses), mode="lines+markers" if len(steps) < 60 else "lines",
                               name="train loss (step)", line=dict(color=CONTEXT, width=1.4), marker=dict(size=5)))
    for step in epoch_steps:
        fig.add_vline(x=step, line=dict(color="#9ca3af", dash="dot", width=1))
    fig.update_xaxes(title_text="optimiser step")
    fig.update_yaxes(title_text="loss")
    return _layout(fig, 320, "Loss per step")


def epoch_metrics(frame: pd.DataFrame) -> go.Figure:
    """train / val / test loss per epoch; ``frame`` has 'epoch' and any of those columns."""
    fig = go.Figure()
    colours = {"train": CONTEXT, "val": "#ca8a04", "test": FORECAST}
    for column in ("train", "val", "test"):
        if column in frame.columns and frame[column].notna().any():
            fig.add_trace(go.Scatter(x=frame["epoch"], y=frame[column], mode="lines+markers", name=column,
                                     line=dict(color=colours[column])))
    fig.update_xaxes(title_text="epoch", dtick=1)
    fig.update_yaxes(title_text="MSE (scaled)")
    return _layout(fig, 320, "Per epoch")


def runs_overlay(curves: dict[str, pd.DataFrame], metric: str, metric_label: str) -> go.Figure:
    """One line per run: ``metric`` per epoch (e.g. validation MSE), named ``metric_label`` on the axis."""
    fig = go.Figure()
    for i, (label, frame) in enumerate(curves.items()):
        fig.add_trace(go.Scatter(x=frame["epoch"], y=frame[metric], mode="lines+markers", name=label,
                                 line=dict(color=(CONTEXT, FORECAST, TRUTH, *BASELINE_COLOURS)[i % 7])))
    fig.update_xaxes(title_text="epoch", dtick=1)
    fig.update_yaxes(title_text=metric_label)
    return _layout(fig, 360, f"{metric_label[0].upper()}{metric_label[1:]} per epoch, by run")


# ------------------------------------------------------------------------------------------
# Forecast page
# ------------------------------------------------------------------------------------------


def forecast_chart(context_x: Sequence, context: Sequence[float], horizon_x: Sequence, truth: Sequence[float],
                   forecast: Sequence[float], baselines: dict[str, Sequence[float]] | None = None,
                   title: str | None = None, y_title: str = "value") -> go.Figure:
    """Input context, ground truth and forecast on one time axis, baselines dashed."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=list(context_x), y=list(context), mode="lines", name="input context",
                             line=dict(color=CONTEXT, width=1.3)))
    fig.add_trace(go.Scatter(x=list(horizon_x), y=list(truth), mode="lines", name="ground truth",
                             line=dict(color=TRUTH, width=2)))
    fig.add_trace(go.Scatter(x=list(horizon_x), y=list(forecast), mode="lines", name="Time-LLM forecast",
                             line=dict(color=FORECAST, width=2)))
    for i, (name, values) in enumerate((baselines or {}).items()):
        colour = BASELINE_COLOUR.get(name.lower(), BASELINE_COLOURS[i % len(BASELINE_COLOURS)])
        fig.add_trace(go.Scatter(x=list(horizon_x), y=list(values), mode="lines", name=name,
                                 line=dict(color=colour, dash="dash", width=1.4)))
    if len(horizon_x):
        fig.add_vrect(x0=horizon_x[0], x1=horizon_x[-1], fillcolor="rgba(220, 38, 38, 0.06)", line_width=0,
                      layer="below")
    fig.update_yaxes(title_text=y_title)
    return _layout(fig, 420, title)


def per_step_errors(frame: pd.DataFrame) -> go.Figure:
    """MSE and MAE per horizon step (columns 'step', 'MSE', 'MAE')."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=frame["step"], y=frame["MSE"], name="MSE", line=dict(color=FORECAST)),
                  secondary_y=False)
    fig.add_trace(go.Scatter(x=frame["step"], y=frame["MAE"], name="MAE", line=dict(color=CONTEXT, dash="dot")),
                  secondary_y=True)
    fig.update_xaxes(title_text="horizon step")
    fig.update_yaxes(title_text="MSE", secondary_y=False)
    fig.update_yaxes(title_text="MAE", secondary_y=True)
    return _layout(fig, 300, "Error per horizon step (all test windows, all channels)")


# ------------------------------------------------------------------------------------------
# Prompt & reprogramming page
# ------------------------------------------------------------------------------------------

STAT_COLOURS = {"min": "#bfdbfe", "max": "#fecaca", "median": "#fde68a", "trend": "#bbf7d0", "lags": "#e9d5ff",
                "pred_len": "#e5e7eb", "seq_len": "#e5e7eb"}


def highlighted_prompt(segments: Sequence) -> str:
    """The prompt as HTML with each statistic marked (and named on hover); the text is unchanged."""
    parts = []
    for segment in segments:
        text = _esc(segment.text)
        colour = STAT_COLOURS.get(segment.label) if segment.label else None  # the statistics and lengths
        if colour:
            parts.append(f'<mark title="{segment.label}" style="background:{colour};padding:0 2px;'
                         f'border-radius:3px">{text}</mark>')
        else:
            parts.append(text)
    return ('<div style="font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:0.86rem;'
            'white-space:pre-wrap;word-break:break-word;line-height:1.6;border:1px solid #e5e7eb;'
            'border-radius:6px;padding:10px;background:#fafafa">' + "".join(parts) + "</div>")


def attention_heads_grid(attention: np.ndarray, prototypes: Sequence[int], columns: int = 4) -> go.Figure:
    """Small multiples: one patch x prototype heatmap per head, on one colour scale.

    ``attention`` is (H, P, k) for the chosen prototypes.
    """
    heads = attention.shape[0]
    rows = int(np.ceil(heads / columns))
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=[f"head {h}" for h in range(heads)],
                        horizontal_spacing=0.03, vertical_spacing=0.12)
    high = float(attention.max()) if attention.size else 1.0
    labels = [str(p) for p in prototypes]
    for h in range(heads):
        fig.add_trace(go.Heatmap(z=attention[h], x=labels, y=list(range(attention.shape[1])), zmin=0, zmax=high,
                                 colorscale="Viridis", showscale=h == 0, colorbar=dict(title=dict(text="weight")),
                                 hovertemplate="patch %{y}<br>prototype %{x}<br>weight %{z:.4f}<extra></extra>"),
                      row=h // columns + 1, col=h % columns + 1)
    fig.update_xaxes(type="category", showticklabels=False)
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(hovermode="closest")
    return _layout(fig, 220 * rows + 40)


# ------------------------------------------------------------------------------------------
# Comparisons
# ------------------------------------------------------------------------------------------


def comparison_bars(forecasters: Sequence[str], values: Sequence[float], metric: str, title: str) -> go.Figure:
    """One bar per forecaster (the run first, in the forecast colour; baselines in their own colours)."""
    colours = [FORECAST] + [_baseline_colour(name, i) for i, name in enumerate(forecasters[1:])]
    fig = go.Figure(go.Bar(x=list(forecasters), y=list(values), marker_color=colours,
                           text=[f"{v:.3f}" for v in values], textposition="outside", name=metric))
    fig.update_yaxes(title_text=metric, rangemode="tozero")
    return _layout(fig, 340, title)


def final_test_bars(labels: Sequence[str], values: Sequence[float], modes: Sequence[str]) -> go.Figure:
    """The final test MSE of each finished run, coloured by llm_mode (frozen LLM vs the ablations)."""
    palette = {"frozen": FORECAST, "none": CONTEXT, "attention": BASELINE_COLOURS[0],
               "transformer": BASELINE_COLOURS[1], "random": BASELINE_COLOURS[3]}
    fig = go.Figure()
    for mode in dict.fromkeys(modes):
        chosen = [i for i, m in enumerate(modes) if m == mode]
        fig.add_trace(go.Bar(x=[labels[i] for i in chosen], y=[values[i] for i in chosen], name=f"llm_mode {mode}",
                             marker_color=palette.get(mode, LINE), text=[f"{values[i]:.3f}" for i in chosen],
                             textposition="outside"))
    fig.update_yaxes(title_text="final test MSE (scaled)", rangemode="tozero")
    return _layout(fig, 360, "Final test MSE of each run")


def _baseline_colour(label: str, index: int) -> str:
    """A baseline's colour from its label ("seasonal naive (period 24)" -> seasonal naive's)."""
    lowered = label.lower()
    for name in sorted(BASELINE_COLOUR, key=len, reverse=True):  # "seasonal naive" before "naive"
        if lowered.startswith(name):
            return BASELINE_COLOUR[name]
    return BASELINE_COLOURS[index % len(BASELINE_COLOURS)]
