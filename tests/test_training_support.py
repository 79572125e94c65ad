"""Shared pieces for the training tests (imported by the other test_training_* modules), and their own tests.

The stand-in model is a per-channel linear forecaster with the TimeLLM training interface and a
frozen "backbone" weight, so loop mechanics (cancel, resume, failures) are tested in milliseconds;
the real TimeLLM with tiny backbones is exercised in test_training_loop.py and test_training_cli.py.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from timellm_core.config import BackboneConfig, DataConfig, RunConfig, TimeLLMConfig, TrainingConfig
from timellm_core.training.evaluation import subset_indices

SEQ_LEN, PRED_LEN = 32, 8


@functools.lru_cache(maxsize=1)
def dataset_name() -> str:
    """ETTh1 from the shared datasets when present, else the generated Synthetic dataset."""
    from timellm_core.data import find_dataset_file, get_dataset_spec

    try:
        find_dataset_file(get_dataset_spec("ETTh1"))
        return "ETTh1"
    except Exception:
        return "Synthetic"


@functools.lru_cache(maxsize=4)
def forecast_data(features: str = "M"):
    from timellm_core.data import prepare_data

    return prepare_data(DataConfig(name=dataset_name(), features=features), SEQ_LEN, PRED_LEN)


def small_config(**training: object) -> RunConfig:
    """A tiny run: T=32, pred 8, tiny GPT-2, a few dozen windows."""
    values = dict(batch_size=8, eval_batch_size=16, train_epochs=2, learning_rate=0.01, lradj="constant",
                  patience=3, max_train_windows=32, max_eval_windows=16, seed=7)
    values.update(training)
    return RunConfig(
        data=DataConfig(name=dataset_name(), features="M"),
        backbone=BackboneConfig(name="tiny-gpt2", llm_layers=2),
        model=TimeLLMConfig(seq_len=SEQ_LEN, pred_len=PRED_LEN, patch_len=8, stride=4, d_model=8, d_ff=16,
                            n_heads=2, num_prototypes=16),
        training=TrainingConfig(**values),
    ).validate()


class StandInModel(nn.Module):
    """Forecasts each channel with one shared Linear(T -> pred_len); has a frozen weight like a backbone.

    ``hook(call_index, x)`` runs at the start of every forward (tests inject sleeps, faults, NaNs).
    """

    def __init__(self, seq_len: int = SEQ_LEN, pred_len: int = PRED_LEN,
                 hook: Callable[[int, torch.Tensor], None] | None = None, seed: int = 0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.linear = nn.Linear(seq_len, pred_len)
        with torch.no_grad():
            self.linear.weight.copy_(torch.randn(pred_len, seq_len, generator=generator) * 0.05)
            self.linear.bias.zero_()
        self.frozen = nn.Parameter(torch.ones(1), requires_grad=False)
        self.hook = hook
        self.calls = 0
        self.poison_from: int | None = None  # forward calls from this index on return NaN

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, N) -> (B, pred_len, N)
        self.calls += 1
        if self.hook is not None:
            self.hook(self.calls, x)
        out = self.linear(x.transpose(1, 2)).transpose(1, 2) * self.frozen
        if self.poison_from is not None and self.calls >= self.poison_from:
            out = out * float("nan")
        return out

    def trainable_parameters(self) -> list[nn.Parameter]:
        return list(self.linear.parameters())

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        return {name: tensor.detach().cpu().clone() for name, tensor in self.linear.state_dict().items()}

    def load_trainable_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.linear.load_state_dict(state)


def read_lines(path: Path) -> list[str]:
    return Path(path).read_text(encoding="utf-8").splitlines()


# --- tests of the shared pieces --------------------------------------------------------------------

def test_subset_indices_are_seeded_sorted_and_distinct():
    first = subset_indices(1000, 50, seed=3, split="train")
    again = subset_indices(1000, 50, seed=3, split="train")
    other_seed = subset_indices(1000, 50, seed=4, split="train")
    other_split = subset_indices(1000, 50, seed=3, split="test")
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other_seed)
    assert not np.array_equal(first, other_split)
    assert len(set(first.tolist())) == 50 and np.all(np.diff(first) > 0)
    assert np.array_equal(subset_indices(10, None, seed=3, split="train"), np.arange(10))
    assert np.array_equal(subset_indices(10, 99, seed=3, split="train"), np.arange(10))


def test_stand_in_model_trains_only_its_linear_layer():
    model = StandInModel()
    x = torch.randn(4, SEQ_LEN, 3)
    model(x).sum().backward()
    assert model.linear.weight.grad is not None
    assert model.frozen.grad is None
    assert os.environ.get("TIMELLM_DATA") or dataset_name() == "Synthetic"
