"""Prompt-as-Prefix (docs/how-it-works.md §2, steps 3-4): input statistics of every series and the prompt text.

The statistics are computed for all B*N series at once. A prompt is written as two parts:
a prefix shared by every series of a run (dataset and task description) and a per-series part
(the statistics). The concatenation is the full prompt; the split lets the LLM runner reuse the
prefix's key/value cache.

Two styles:
- ``reference``: the reference template character for character, quirks included (no space
  before "Task description", "steps information", "top 5 lags are :" whatever the number of lags,
  the ``<|<end_prompt>|>`` marker); numbers are ``str()`` of the float32 value as a Python float.
- ``compact``: the typos fixed and numbers printed with 4 significant digits (fewer tokens).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

DEFAULT_DESCRIPTION = "A multivariate time series; each channel is forecast on its own."


@dataclass
class PromptStatistics:
    """Statistics of B*N normalised series (docs/how-it-works.md §2, step 3)."""

    minimum: torch.Tensor  # (B*N,)
    maximum: torch.Tensor  # (B*N,)
    median: torch.Tensor  # (B*N,) lower median, as torch.median
    trend: torch.Tensor  # (B*N,) sum of first differences
    lags: torch.Tensor  # (B*N, top_k) int64, largest circular autocorrelation first

    def to(self, device: str | torch.device) -> "PromptStatistics":
        """A copy on ``device``."""
        return PromptStatistics(*(getattr(self, name).detach().to(device, copy=True)
                                  for name in ("minimum", "maximum", "median", "trend", "lags")))


def prompt_statistics(series: torch.Tensor, top_k: int) -> PromptStatistics:
    """series (B*N, T) normalised values -> their statistics, all series at once."""
    series = series.detach().float()
    spectrum = torch.fft.rfft(series, dim=-1)  # (B*N, T//2 + 1)
    autocorrelation = torch.fft.irfft(spectrum * torch.conj(spectrum), n=series.shape[-1], dim=-1)  # (B*N, T)
    _, lags = torch.topk(autocorrelation, top_k, dim=-1)  # (B*N, top_k)
    return PromptStatistics(
        minimum=series.min(dim=-1).values,
        maximum=series.max(dim=-1).values,
        median=series.median(dim=-1).values,
        trend=series.diff(dim=-1).sum(dim=-1),
        lags=lags,
    )


@dataclass(frozen=True)
class PromptSegment:
    """A piece of a prompt. ``label`` names what the piece states, None for the template's own words.

    Labels: "description", "pred_len", "seq_len", "min", "max", "median", "trend", "lags".
    """

    text: str
    label: str | None = None


def joined(segments: list[PromptSegment]) -> str:
    return "".join(segment.text for segment in segments)


@dataclass
class PromptParts:
    """Prompt text of B*N series: the shared prefix and one statistics part per series."""

    prefix: str
    series_parts: list[str]  # (B*N)

    def full_prompts(self) -> list[str]:
        return [self.prefix + part for part in self.series_parts]


class PromptBuilder:
    """Writes prompts in one style for one dataset description and one pair of lengths.

    The template is written once, as labelled segments (``prefix_segments``, ``series_segments``):
    the prompt text is their concatenation, and the pages read the labels (which words are the
    description, the task, each statistic) from the same segments, never by parsing the text back.
    """

    def __init__(self, description: str, seq_len: int, pred_len: int, style: str = "reference") -> None:
        self.description = description
        self.seq_len = seq_len
        self.pred_len = pred_len
        self.style = style

    def prefix_segments(self) -> list[PromptSegment]:
        """The part of every prompt that does not depend on the series, labelled."""
        reference = self.style == "reference"
        description = self.description if reference else self.description.strip() + " "
        return [PromptSegment("<|start_prompt|>Dataset description: "),
                PromptSegment(description, "description"),
                PromptSegment("Task description: forecast the next "), PromptSegment(str(self.pred_len), "pred_len"),
                PromptSegment(" steps given the previous "), PromptSegment(str(self.seq_len), "seq_len"),
                PromptSegment(" steps information; Input statistics:" if reference else " steps; Input statistics:")]

    def prefix(self) -> str:
        """The part of every prompt that does not depend on the series."""
        return joined(self.prefix_segments())

    def series_segments(self, statistics: PromptStatistics, index: int) -> list[PromptSegment]:
        """The labelled statistics part of series ``index`` (a row of the B*N series)."""
        return self._series_segments(*self._values(statistics, index))

    def segments(self, statistics: PromptStatistics, index: int) -> list[PromptSegment]:
        """The whole prompt of series ``index``, labelled: its text is ``prefix() + series_parts(...)[index]``."""
        return self.prefix_segments() + self.series_segments(statistics, index)

    def series_parts(self, statistics: PromptStatistics) -> list[str]:
        """One statistics part per series, in the style's number format."""
        minimum = statistics.minimum.tolist()  # Python floats holding the float32 values exactly
        maximum = statistics.maximum.tolist()
        median = statistics.median.tolist()
        upward = (statistics.trend > 0).tolist()
        lags = statistics.lags.tolist()
        return [joined(self._series_segments(*values)) for values in zip(minimum, maximum, median, upward, lags)]

    def series_part(self, statistics: PromptStatistics, index: int) -> str:
        """The statistics part of one series, read element by element (the reference's per-series loop)."""
        return joined(self.series_segments(statistics, index))

    def build(self, statistics: PromptStatistics, looped: bool = False) -> PromptParts:
        """Prefix and series parts; ``looped`` writes them one series at a time, as the reference does."""
        if looped:
            parts = [self.series_part(statistics, index) for index in range(statistics.minimum.shape[0])]
        else:
            parts = self.series_parts(statistics)
        return PromptParts(prefix=self.prefix(), series_parts=parts)

    @staticmethod
    def _values(statistics: PromptStatistics, index: int) -> tuple[float, float, float, bool, list[int]]:
        return (statistics.minimum[index].tolist(), statistics.maximum[index].tolist(),
                statistics.median[index].tolist(), bool(statistics.trend[index] > 0),
                statistics.lags[index].tolist())

    def _series_segments(self, minimum: float, maximum: float, median: float, upward: bool,
                         lags: list[int]) -> list[PromptSegment]:
        reference = self.style == "reference"
        number = str if reference else (lambda value: f"{value:.4g}")
        # The reference writes "top 5 lags are :" whatever the number of lags, and its own end marker.
        lags_words = "top 5 lags are : " if reference else f"top {len(lags)} lags are: "
        return [PromptSegment(" min value "), PromptSegment(number(minimum), "min"),
                PromptSegment(", max value "), PromptSegment(number(maximum), "max"),
                PromptSegment(", median value "), PromptSegment(number(median), "median"),
                PromptSegment(", the trend of input is "), PromptSegment("upward" if upward else "downward", "trend"),
                PromptSegment(", " + lags_words), PromptSegment(str(lags), "lags"),
                PromptSegment("<|<end_prompt>|>" if reference else "<|end_prompt|>")]
