"""Each learning-rate schedule, step by step, against its written definition (docs/how-it-works.md §4.4)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from timellm_core.config import TrainingConfig
from timellm_core.errors import ConfigError
from timellm_core.training.schedules import LearningRateSchedule

LR, EPOCHS, STEPS = 0.01, 6, 5


def _rates(lradj: str, epochs: int = EPOCHS, steps: int = STEPS, pct_start: float = 0.2) -> list[list[float]]:
    """The rate each optimizer step used: rates[epoch - 1][step - 1], driven as the trainer drives it."""
    parameter = torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.Adam([parameter], lr=LR)
    schedule = LearningRateSchedule(
        optimizer, TrainingConfig(learning_rate=LR, lradj=lradj, train_epochs=epochs, pct_start=pct_start), steps)
    rates = []
    for _ in range(epochs):
        epoch_rates = []
        for _ in range(steps):
            epoch_rates.append(optimizer.param_groups[0]["lr"])
            parameter.grad = torch.ones(2)
            optimizer.step()
            schedule.after_batch()
        rates.append(epoch_rates)
        schedule.after_epoch()
    return rates


def test_type1_halves_every_epoch_starting_at_the_given_rate():
    for epoch, epoch_rates in enumerate(_rates("type1"), start=1):
        assert epoch_rates == pytest.approx([LR * 0.5 ** (epoch - 1)] * STEPS, rel=1e-12)
    # The reference's type1 trains its first epoch at lr / 25 (an unstepped one-cycle); this does not.
    assert _rates("type1")[0][0] == pytest.approx(LR)


def test_constant_never_changes():
    assert all(rate == pytest.approx(LR) for epoch in _rates("constant") for rate in epoch)


def test_cos_is_cosine_annealing_over_20_epochs_stepped_per_epoch():
    eta_min = 1e-8
    for epoch, epoch_rates in enumerate(_rates("COS", epochs=25), start=1):
        e = epoch - 1  # scheduler steps taken before this epoch
        # Past T_max=20 the cosine continues (torch's closed form is periodic), as in the reference.
        expected = eta_min + (LR - eta_min) * (1 + math.cos(math.pi * e / 20)) / 2
        assert epoch_rates == pytest.approx([expected] * STEPS, rel=1e-9, abs=1e-12)


def test_tst_is_one_cycle_stepped_every_batch():
    pct_start = 0.2
    rates = [rate for epoch in _rates("TST", pct_start=pct_start) for rate in epoch]
    total = EPOCHS * STEPS
    initial, final = LR / 25, LR / 25 / 1e4
    peak_step = pct_start * total - 1  # torch's phase boundary (float)

    def cosine(start: float, end: float, share: float) -> float:
        return end + (start - end) / 2 * (1 + math.cos(math.pi * share))

    expected = []
    for step in range(total):
        if step <= peak_step:
            expected.append(cosine(initial, LR, step / peak_step))
        else:
            expected.append(cosine(LR, final, (step - peak_step) / (total - 1 - peak_step)))
    assert rates == pytest.approx(expected, rel=1e-9)
    assert max(rates) == pytest.approx(LR, rel=1e-6)
    # The rate changes within an epoch (per batch), unlike the per-epoch schedules.
    assert len(set(rates[:STEPS])) == STEPS


def test_schedule_state_round_trips_through_json():
    parameter = torch.nn.Parameter(torch.zeros(1))
    for lradj in ("type1", "TST", "COS", "constant"):
        config = TrainingConfig(learning_rate=LR, lradj=lradj, train_epochs=4)
        optimizer = torch.optim.Adam([parameter], lr=LR)
        schedule = LearningRateSchedule(optimizer, config, 3)
        for _ in range(4):
            optimizer.step()
            schedule.after_batch()
        schedule.after_epoch()
        state = json.loads(json.dumps(schedule.state_dict()))
        fresh_optimizer = torch.optim.Adam([parameter], lr=LR)
        fresh = LearningRateSchedule(fresh_optimizer, config, 3)
        fresh.load_state_dict(state)
        assert fresh.lr == pytest.approx(schedule.lr)
        optimizer.step(), fresh_optimizer.step()
        schedule.after_batch(), fresh.after_batch()
        schedule.after_epoch(), fresh.after_epoch()
        assert fresh.lr == pytest.approx(schedule.lr), lradj


def test_loading_another_schedule_is_refused():
    parameter = torch.nn.Parameter(torch.zeros(1))
    saved = LearningRateSchedule(torch.optim.Adam([parameter]), TrainingConfig(lradj="COS"), 3).state_dict()
    other = LearningRateSchedule(torch.optim.Adam([parameter]), TrainingConfig(lradj="type1"), 3)
    with pytest.raises(ConfigError, match="COS"):
        other.load_state_dict(saved)
