"""Inside the frozen LLM: where the patch positions look, as plain data for the "Inside the LLM" page.

The LLM reads one sequence per series, ``[prompt tokens][P reprogrammed patches]``. A trace with
``llm_attention=True`` keeps, per layer, the patch positions' attention rows over every key of that
sequence: (B*N, heads, P, L). This module takes one series' rows, drops the left padding that
batching put between the shared prefix and the statistics, names every prompt token after the
piece of the prompt it belongs to (description, task, min, max, median, trend, lags, from
``PromptBuilder``'s labelled segments and the tokenizer's character offsets), and sums the
attention per group: how much each layer's patch positions read the prompt, and which part of it.

Causal backbones (GPT-2, LLaMA, Qwen) let patch i see the prompt and patches 0..i; bidirectional
ones (BERT) let it see every patch, those after it included. Either way each row sums to 1.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from timellm_core.errors import BackboneError, ConfigError
from timellm_core.model.prompt import PromptParts, PromptSegment
from timellm_core.model.timellm import TimeLLM
from timellm_core.model.trace import Trace

SPECIAL = "special tokens"  # BOS / [CLS] / [SEP] the tokenizer adds around the prompt
END = "end marker"  # the template's closing words after the last statistic
PATCHES = "patches"
# Groups in reading order; the statistics part of the prompt starts at "min".
GROUP_OF_LABEL = {"description": "description", "pred_len": "task", "seq_len": "task", "min": "min",
                  "max": "max", "median": "median", "trend": "trend", "lags": "lags"}
GROUP_ORDER = (SPECIAL, "description", "task", "min", "max", "median", "trend", "lags", END, PATCHES)
STATISTICS_GROUPS = ("min", "max", "median", "trend", "lags")


@dataclass(frozen=True)
class PromptToken:
    """One token of the prompt as the LLM read it."""

    token_id: int
    text: str  # the prompt's characters it covers (a special token: its name)
    group: str  # one of GROUP_ORDER (never PATCHES)


@dataclass
class LLMAttentionMaps:
    """The frozen LLM's attention from one series' patch positions, every layer and head.

    Keys are ``[prompt tokens][patches]`` without padding, so column k < len(prompt_tokens) is
    ``prompt_tokens[k]`` and column len(prompt_tokens) + j is patch j.
    """

    attention: np.ndarray  # (layers, heads, P, K) float32, K = prompt tokens + P; each row sums to 1
    prompt_tokens: list[PromptToken]  # (K - P)
    causal: bool  # False: bidirectional (BERT), a patch also attends to the patches after it
    backbone: str
    seconds: float = 0.0  # how long the computation took (forward + grouping)

    @property
    def layer_count(self) -> int:
        return self.attention.shape[0]

    @property
    def head_count(self) -> int:
        return self.attention.shape[1]

    @property
    def patch_count(self) -> int:
        return self.attention.shape[2]

    def key_groups(self) -> list[str]:
        """(K,) the group of every key: each prompt token's, then PATCHES for the patch positions."""
        return [token.group for token in self.prompt_tokens] + [PATCHES] * self.patch_count

    def groups(self) -> list[str]:
        """The groups present, in reading order (PATCHES last)."""
        present = set(self.key_groups())
        return [group for group in GROUP_ORDER if group in present]


# --------------------------------------------------------------------------------------------
# Naming the prompt's tokens
# --------------------------------------------------------------------------------------------


def segment_groups(prefix: list[PromptSegment], series: list[PromptSegment]) -> list[str]:
    """The group of every segment of ``prefix + series``.

    A labelled segment is in its label's group. The template's own words join the next labelled
    segment of their part (" min value " belongs to min); the words closing the prefix join the task
    ("... Input statistics:"), and the words closing the prompt are the END marker.
    """
    groups: list[str] = []
    for part, closing in ((prefix, None), (series, END)):
        pending = 0  # unlabelled segments waiting for the next label
        last = None
        for segment in part:
            if segment.label is None:
                pending += 1
                continue
            last = GROUP_OF_LABEL[segment.label]
            groups += [last] * (pending + 1)
            pending = 0
        groups += [closing or last or "task"] * pending
    return groups


def prompt_tokens(model: TimeLLM, trace: Trace, row: int) -> list[PromptToken]:
    """The prompt of series ``row`` of ``trace`` as tokens, each named after the prompt piece it covers.

    The ids are re-derived from the text with character offsets and must equal the ids the LLM read.
    """
    builder, prompt_tokenizer = model.prompt_builder, model.prompt_tokenizer
    prefix, series = builder.prefix_segments(), builder.series_segments(trace.statistics, row)
    segments = prefix + series
    groups = segment_groups(prefix, series)
    text = "".join(segment.text for segment in segments)
    prefix_text = "".join(segment.text for segment in prefix)
    try:
        ids, spans = prompt_tokenizer.ids_with_spans(prefix_text, text[len(prefix_text):])
    except NotImplementedError as error:  # a slow (Python) tokenizer has no character offsets
        raise BackboneError(f"The tokenizer of {model.backbone.spec.name} gives no character offsets, so its "
                            "prompt tokens cannot be matched to the prompt's parts. Use a backbone with a fast "
                            "tokenizer (every catalogue backbone has one).") from error
    if ids != list(trace.prompt_token_ids[row]):
        raise BackboneError("Tokenising the prompt again gave other ids than the LLM read; the prompt's tokens "
                            "cannot be named. Please report this with the backbone's name.")
    ends = np.cumsum([len(segment.text) for segment in segments])  # (segments,) end character of each
    starts = ends - [len(segment.text) for segment in segments]
    tokens = []
    for token_id, span in zip(ids, spans):
        if span is None:
            name = prompt_tokenizer.tokenizer.convert_ids_to_tokens(token_id)
            tokens.append(PromptToken(token_id, str(name), SPECIAL))
            continue
        start, end = span
        overlap = np.minimum(ends, max(end, start + 1)) - np.maximum(starts, start)  # characters in each segment
        tokens.append(PromptToken(token_id, text[start:end], groups[int(np.argmax(overlap))]))
    return tokens


# --------------------------------------------------------------------------------------------
# The attention maps of one series
# --------------------------------------------------------------------------------------------


def maps_from_trace(model: TimeLLM, trace: Trace, row: int) -> LLMAttentionMaps:
    """Series ``row`` of a trace made with ``llm_attention=True`` -> its maps, padding removed."""
    if not trace.llm_attention:
        raise ConfigError("This trace has no LLM attention: run the model with trace=True, llm_attention=True "
                          "(only llm_mode 'frozen' has an LLM to look inside).")
    tokens = prompt_tokens(model, trace, row)
    attention = torch.stack([layer[row] for layer in trace.llm_attention]).float()  # (layers, heads, P, L)
    patch_count = attention.shape[2]
    padding = attention.shape[-1] - patch_count - len(tokens)
    if padding:  # left padding sits after the shared prefix: [prefix][padding][statistics][patches]
        builder = model.prompt_builder
        prefix_count = len(model.prompt_tokenizer.tokenize(
            PromptParts(builder.prefix(), [builder.series_part(trace.statistics, row)])).prefix_ids)
        keep = torch.cat([torch.arange(prefix_count), torch.arange(prefix_count + padding, attention.shape[-1])])
        attention = attention[..., keep]  # (layers, heads, P, K)
    return LLMAttentionMaps(attention=attention.numpy(), prompt_tokens=tokens, causal=model.backbone.causal,
                            backbone=model.backbone.spec.name)


def series_attention(model: TimeLLM, window: np.ndarray | torch.Tensor, channel: int) -> LLMAttentionMaps:
    """The LLM's attention maps for one channel of one input window (T, N) of scaled values.

    Channels are independent in Time-LLM (each is its own LLM sequence), so only the chosen
    channel is run, at 1/N of the whole window's cost. The maps are the whole window's up to float
    rounding: normalising (1, T, 1) instead of (1, T, N) can move a statistic's last bit, and the
    reference prompt prints every digit, so a number's last digits (and tokens) may differ.
    """
    if model.config.llm_mode != "frozen":
        raise ConfigError(f"llm_mode is '{model.config.llm_mode}': this model has no frozen LLM, so there is no "
                          "LLM attention to look inside.")
    started = time.perf_counter()
    series = torch.as_tensor(np.asarray(window), dtype=torch.float32)[:, channel:channel + 1]  # (T, 1)
    with torch.no_grad():
        _, trace = model(series.unsqueeze(0), trace=True, llm_attention=True)  # (1, T, 1)
    maps = maps_from_trace(model, trace, 0)
    maps.seconds = time.perf_counter() - started
    return maps


# --------------------------------------------------------------------------------------------
# Summing attention per group
# --------------------------------------------------------------------------------------------


def group_shares(maps: LLMAttentionMaps) -> tuple[list[str], np.ndarray]:
    """(groups, shares (layers, heads, P, G)): each query row's attention summed per key group."""
    groups = maps.groups()
    index = {group: i for i, group in enumerate(groups)}
    member = np.zeros((len(maps.key_groups()), len(groups)), dtype=np.float32)  # (K, G) one-hot
    member[np.arange(member.shape[0]), [index[group] for group in maps.key_groups()]] = 1.0
    return groups, maps.attention @ member


def layer_summary(maps: LLMAttentionMaps) -> pd.DataFrame:
    """Per layer: the share of the patch positions' attention on the prompt, on the first prompt token,
    and on every group, PATCHES included (averaged over heads and patch positions)."""
    groups, shares = group_shares(maps)
    per_layer = shares.mean(axis=(1, 2))  # (layers, G)
    frame = pd.DataFrame(per_layer, columns=groups)
    frame.insert(0, "first token", maps.attention[..., 0].mean(axis=(1, 2)))
    frame.insert(0, "prompt share", 1.0 - frame[PATCHES])
    frame.insert(0, "layer", np.arange(maps.layer_count))
    return frame


def _percent(value: float) -> str:
    return f"{100 * value:.0f}%"


def reading(untrained: pd.DataFrame, trained: pd.DataFrame | None = None) -> str:
    """One plain-language sentence on how much the patch positions read the prompt (``layer_summary`` frames)."""
    layers = len(untrained)
    over = "In its only layer" if layers == 1 else f"Averaged over the {layers} layers"
    untrained_share = float(untrained["prompt share"].mean())
    if trained is None:
        return (f"{over}, the patch positions of this untrained model give {_percent(untrained_share)} of their "
                f"attention to the prompt and {_percent(1 - untrained_share)} to the patches; choose a trained run "
                "to see what training changes.")
    trained_share = float(trained["prompt share"].mean())
    change = trained_share - untrained_share
    verdict = ("about as much as before training" if abs(change) < 0.05
               else "more than before training" if change > 0 else "less than before training")
    shares = trained["prompt share"].to_numpy()
    heaviest = int(np.argmax(shares))
    where = f", most in layer {heaviest} ({_percent(float(shares[heaviest]))})" if layers > 1 else ""
    return (f"{over}, the trained run's patch positions give {_percent(trained_share)} of their attention to the "
            f"prompt (untrained: {_percent(untrained_share)}): they read it {verdict}{where}.")
