"""The "Inside the LLM" page's helpers: the session's cache of attention maps, and its three figures.

The maps come from ``timellm_core.llm_attention`` (plain arrays); here they are only kept per
(model, window, channel) in the session and drawn with Plotly.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from explorer_ui import charts
from explorer_ui import shared
from explorer_ui.model import Inspected
from explorer_ui.window import WindowChoice
from timellm_core.llm_attention import PATCHES, LLMAttentionMaps, series_attention

CACHE = "llm_inside_maps"  # session key: OrderedDict (model key, data key, split, window, channel) -> maps
CACHE_SIZE = 8  # a few windows of the run and its untrained twin; each (layers, heads, P, K) float32, ~4 MB at T 512

# One colour per prompt part, the same in the heatmap's bands and the stacked bars.
GROUP_COLOURS = {"special tokens": "#9ca3af", "description": "#60a5fa", "task": "#a78bfa", "min": "#38bdf8",
                 "max": "#f87171", "median": "#fbbf24", "trend": "#34d399", "lags": "#c084fc",
                 "end marker": "#d1d5db", PATCHES: "#fb923c"}
TRAINED, UNTRAINED = "trained run", "untrained model"


def attention_maps(model: Any, model_key: str, target: Inspected,
                   choice: WindowChoice) -> tuple[LLMAttentionMaps, bool]:
    """(the maps of the chosen window and channel for ``model``, whether they came from the session's cache)."""
    cache: OrderedDict = st.session_state.setdefault(CACHE, OrderedDict())
    data = target.config.data
    key = (model_key, f"{data}|{target.config.model.seq_len}|{target.config.model.pred_len}", choice.split,
           choice.index, choice.channel)
    if key in cache:
        cache.move_to_end(key)
        return cache[key], True
    window = target.data.windows(choice.split)[choice.index][0]  # (T, N) scaled values
    with shared.core_errors(), st.spinner("Running the LLM on this channel with its attention maps ..."):
        maps = series_attention(model, window, choice.channel)
    cache[key] = maps
    while len(cache) > CACHE_SIZE:
        cache.popitem(last=False)
    return maps, False


def _tick(text: str) -> str:
    """A token as a tick label: spaces made visible, '<' and '>' as entities (Plotly reads tags in labels)."""
    return text.replace(" ", "␣").replace("\n", "⏎").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def key_labels(maps: LLMAttentionMaps) -> list[str]:
    """(K,) unique axis labels: position and token for the prompt, 'patch j' for the patches."""
    prompt = [f"{k} {_tick(token.text)}" for k, token in enumerate(maps.prompt_tokens)]
    return prompt + [f"patch {j}" for j in range(maps.patch_count)]


def token_heatmap(matrix: np.ndarray, maps: LLMAttentionMaps, title: str) -> go.Figure:
    """Patch positions (rows) over every key (columns), with a coloured band naming each prompt part.

    ``matrix`` is (P, K): one layer's attention, one head's or the heads' average.
    """
    labels, groups = key_labels(maps), maps.key_groups()
    hover = np.array([[f"{group}" for group in groups]] * matrix.shape[0])  # (P, K)
    fig = go.Figure(go.Heatmap(
        z=matrix, x=labels, y=[f"patch {i}" for i in range(matrix.shape[0])], customdata=hover,
        colorscale="Viridis", colorbar=dict(title=dict(text="attention")),
        hovertemplate="query %{y}<br>key %{x} (%{customdata})<br>attention %{z:.4f}<extra></extra>"))
    named = max(3, len(groups) // 25)  # keys a band needs for its name to fit
    for group, start, end in _runs(groups):  # the band above the plot: which part of the sequence a key is
        fig.add_shape(type="rect", xref="x", yref="paper", x0=start - 0.5, x1=end - 0.5, y0=1.0, y1=1.05,
                      fillcolor=GROUP_COLOURS.get(group, "#e5e7eb"), line=dict(width=0))
        if end - start >= named:
            fig.add_annotation(x=(start + end - 1) / 2, y=1.025, xref="x", yref="paper", text=_tick(group),
                               showarrow=False, font=dict(size=10))
    fig.update_xaxes(type="category", title_text="key: prompt token (position, text) then patch", tickangle=-90,
                     tickfont=dict(size=8))
    fig.update_yaxes(type="category", title_text="query: patch position", autorange="reversed")
    fig.update_layout(hovermode="closest")
    charts._layout(fig, max(420, 10 * matrix.shape[0] + 260), title)
    fig.update_layout(margin=dict(t=64))  # room for the band between the title and the plot
    return fig


def _runs(groups: Sequence[str]) -> list[tuple[str, int, int]]:
    """Consecutive keys of one group: (group, first key, end key)."""
    runs: list[tuple[str, int, int]] = []
    for position, group in enumerate(groups):
        if runs and runs[-1][0] == group and runs[-1][2] == position:
            runs[-1] = (group, runs[-1][1], position + 1)
        else:
            runs.append((group, position, position + 1))
    return runs


def group_heatmap(shares: np.ndarray, groups: Sequence[str], title: str) -> go.Figure:
    """Patch positions over prompt parts: ``shares`` (P, G), each row summing to 1."""
    return charts.heatmap(shares, list(groups), [f"patch {i}" for i in range(shares.shape[0])], "key group",
                          "query", "share of attention", title, height=max(360, 10 * shares.shape[0] + 200))


def prompt_share_bars(summaries: dict[str, pd.DataFrame]) -> go.Figure:
    """Per layer, the share of the patch positions' attention that goes to the prompt, one bar per model."""
    colours = {TRAINED: charts.FORECAST, UNTRAINED: "#9ca3af"}
    fig = go.Figure()
    for name, summary in summaries.items():
        fig.add_trace(go.Bar(x=[f"layer {layer}" for layer in summary["layer"]], y=summary["prompt share"],
                             name=name, marker_color=colours.get(name, charts.LINE),
                             text=[f"{value:.0%}" for value in summary["prompt share"]], textposition="outside"))
    fig.update_yaxes(title_text="share of attention on the prompt", range=[0, 1.1], tickformat=".0%")
    fig.update_layout(barmode="group")
    return charts._layout(fig, 340, "Does the LLM read the prompt? Attention from the patches to the prompt")


def group_share_bars(summary: pd.DataFrame, groups: Sequence[str], title: str) -> go.Figure:
    """Per layer, where the patch positions' attention goes: one stacked bar of the prompt parts and the patches."""
    fig = go.Figure()
    layers = [f"layer {layer}" for layer in summary["layer"]]
    for group in groups:
        fig.add_trace(go.Bar(x=layers, y=summary[group], name=group, marker_color=GROUP_COLOURS.get(group)))
    fig.update_yaxes(title_text="share of attention", range=[0, 1.0], tickformat=".0%")
    fig.update_layout(barmode="stack")
    return charts._layout(fig, 360, title)
