"""Prompt-as-Prefix, spec 2.3-2.4: input statistics of every series and the prompt text.

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
    """Statistics of B*N normalised series, spec 2.3."""

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


@dataclass
class PromptParts:
    """Prompt text of B*N series: the shared prefix and one statistics part per series."""

    prefix: str
    series_parts: list[str]  # (B*N)

    def full_prompts(self) -> list[str]:
        return [self.prefix + part for part in self.series_parts]


class PromptBuilder:
    """Writes prompts in one style for one dataset description and one pair of lengths."""

    def __init__(self, description: str, seq_len: int, pred_len: int, style: str = "reference") -> None:
        self.description = description
        self.seq_len = seq_len
        self.pred_len = pred_len
        self.style = style

    def prefix(self) -> str:
        """The part of every prompt that does not depend on the series."""
        if self.style == "reference":
            return (f"<|start_prompt|>Dataset description: {self.description}"
                    f"Task description: forecast the next {self.pred_len} steps given the previous "
                    f"{self.seq_len} steps information; Input statistics:")
        description = self.description.strip()
        return (f"<|start_prompt|>Dataset description: {description} "
                f"Task description: forecast the next {self.pred_len} steps given the previous "
                f"{self.seq_len} steps; Input statistics:")

    def series_parts(self, statistics: PromptStatistics) -> list[str]:
        """One statistics part per series, in the style's number format."""
        minimum = statistics.minimum.tolist()  # Python floats holding the float32 values exactly
        maximum = statistics.maximum.tolist()
        median = statistics.median.tolist()
        upward = (statistics.trend > 0).tolist()
        lags = statistics.lags.tolist()
        write = self._reference_part if self.style == "reference" else self._compact_part
        return [write(*values) for values in zip(minimum, maximum, median, upward, lags)]

    def series_part(self, statistics: PromptStatistics, index: int) -> str:
        """The statistics part of one series, read element by element (the reference's per-series loop)."""
        values = (statistics.minimum[index].tolist(), statistics.maximum[index].tolist(),
                  statistics.median[index].tolist(), bool(statistics.trend[index] > 0),
                  statistics.lags[index].tolist())
        write = self._reference_part if self.style == "reference" else self._compact_part
        return write(*values)

    def build(self, statistics: PromptStatistics, looped: bool = False) -> PromptParts:
        """Prefix and series parts; ``looped`` writes them one series at a time, as the reference does."""
        if looped:
            parts = [self.series_part(statistics, index) for index in range(statistics.minimum.shape[0])]
        else:
            parts = self.series_parts(statistics)
        return PromptParts(prefix=self.prefix(), series_parts=parts)

    @staticmethod
    def _reference_part(minimum: float, maximum: float, median: float, upward: bool, lags: list[int]) -> str:
        return (f" min value {minimum}, max value {maximum}, median value {median}, "
                f"the trend of input is {'upward' if upward else 'downward'}, "
                f"top 5 lags are : {lags}<|<end_prompt>|>")

    @staticmethod
    def _compact_part(minimum: float, maximum: float, median: float, upward: bool, lags: list[int]) -> str:
        return (f" min value {minimum:.4g}, max value {maximum:.4g}, median value {median:.4g}, "
                f"the trend of input is {'upward' if upward else 'downward'}, "
                f"top {len(lags)} lags are: {lags}<|end_prompt|>")
