"""What one forward computed on the way to its forecast, for the app to show.

Every tensor is detached and on the CPU. B batch, T seq_len, N channels, P patches, S prototypes,
H reprogramming heads, D the LLM's hidden size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from timellm_core.model.prompt import PromptStatistics


@dataclass
class Trace:
    """The intermediate values of one ``TimeLLM`` forward (the same one that gave the forecast)."""

    normalized_input: torch.Tensor  # (B, T, N) after instance normalisation
    mean: torch.Tensor  # (B, 1, N) instance-normalisation statistics
    stdev: torch.Tensor  # (B, 1, N)
    patches: torch.Tensor  # (B*N, P, patch_len)
    patch_embeddings: torch.Tensor  # (B*N, P, d_model)
    prompts: list[str]  # (B*N) full prompt text; empty when llm_mode has no prompt
    prompt_token_ids: list[list[int]]  # (B*N) full prompt ids, special tokens included, no padding
    statistics: PromptStatistics | None  # per-series statistics written in the prompts
    prototypes: torch.Tensor  # (S, D)
    reprogramming_attention: torch.Tensor  # (B*N, H, P, S): patch-to-prototype attention
    llm_output: torch.Tensor  # (B*N, P, d_ff): what the output head reads
    forecast: torch.Tensor  # (B, pred_len, N)
    llm_attention: list[torch.Tensor] | None  # per LLM layer (B*N, heads, P, L) when asked for
    llm_path: str  # how the LLM ran: cached | full | reference | none | attention | transformer

    @property
    def channels(self) -> int:
        return self.normalized_input.shape[2]

    def series_index(self, sample: int, channel: int) -> int:
        """Row of the (B*N, ...) tensors that holds one sample's channel."""
        return sample * self.channels + channel


def detached(tensor: torch.Tensor) -> torch.Tensor:
    """A CPU copy: a trace never shares storage with the model's live or cached tensors."""
    return tensor.detach().to("cpu", copy=True)
