"""What replaces the frozen LLM in the ablations of Tan et al. (NeurIPS 2024).

"Are Language Models Actually Useful for Time Series Forecasting?" removes the LLM or swaps it
for a single attention layer or Transformer block and finds the forecast rarely gets worse.
Everything else (patching, reprogramming into the LLM's embedding space, the head) is unchanged,
and there is no prompt: these layers only see the P reprogrammed patches.

- ``none``: the reprogrammed patches (B*N, P, D) go straight to the head.
- ``attention``: one trainable multi-head self-attention layer of width D (pre-norm, residual).
- ``transformer``: one trainable Transformer encoder block of width D (pre-norm, feed-forward 4 D).

Each replacement ends as the LLM does, with a normalisation of its output (the LLM's last hidden
state has passed its final norm): here a LayerNorm without parameters, so ``none`` still trains
nothing of its own. Without it the head reads the reprogrammed patches at whatever scale the
prototypes reach, and Adam's first steps at the presets' learning rate (0.01) move every one of
the V x S mapping weights at once: on ``cpu-quick`` the loss went from 0.33 to 853 in one step and
the run ended at a test MSE of 1387.
- ``random``: the LLM stays, with its prompt, but randomly initialised (same architecture, size and
  tokenizer, frozen; ``backbones.random_init``): does pretraining matter, or only the shape?
"""

from __future__ import annotations

import torch
from torch import nn

MAX_HEADS = 8
LLM_RUNNING_MODES = ("frozen", "random")  # modes whose forward runs the (frozen) LLM over [prompt][patches]


def runs_llm(llm_mode: str) -> bool:
    """True when the LLM itself runs (pretrained or randomly initialised); False when a layer replaces it."""
    return llm_mode in LLM_RUNNING_MODES


def ablation_heads(width: int) -> int:
    """The most heads (up to 8) that divide the width evenly."""
    return next(heads for heads in range(MAX_HEADS, 0, -1) if width % heads == 0)


class SelfAttentionBlock(nn.Module):
    """x + MultiheadAttention(LayerNorm(x)) over the P patch positions."""

    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.attention = nn.MultiheadAttention(width, ablation_heads(width), dropout=dropout, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = self.norm(x)  # (B*N, P, D)
        mixed, _ = self.attention(normed, normed, normed, need_weights=False)
        return x + mixed


def normalize_output(hidden: torch.Tensor) -> torch.Tensor:
    """(B*N, P, D) replacement output -> the same, normalised over D: the stand-in for the LLM's final
    norm, a LayerNorm without parameters (so checkpoints keep their keys and ``none`` trains nothing)."""
    return nn.functional.layer_norm(hidden, hidden.shape[-1:])


def build_llm_replacement(llm_mode: str, width: int, dropout: float) -> nn.Module | None:
    """The trainable module standing in for the LLM; None where the LLM runs (``frozen``, ``random``)."""
    if runs_llm(llm_mode):
        return None
    if llm_mode == "none":
        return nn.Identity()
    if llm_mode == "attention":
        return SelfAttentionBlock(width, dropout)
    if llm_mode == "transformer":
        return nn.TransformerEncoderLayer(width, ablation_heads(width), dim_feedforward=4 * width,
                                          dropout=dropout, activation="gelu", batch_first=True, norm_first=True)
    raise ValueError(f"unknown llm_mode {llm_mode!r}")  # validate() has already rejected it
