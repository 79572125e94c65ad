"""Learning-rate schedules that do what their names say (docs/how-it-works.md §4.4).

- ``type1``: the rate halves every epoch: epoch e (1-based) trains at lr * 0.5 ** (e - 1).
- ``TST``: one-cycle (Smith's policy, torch's ``OneCycleLR`` with its defaults: max_lr = lr, warm-up
  share ``pct_start``, start at lr / 25, end at lr / 25 / 1e4, cosine annealing, Adam's beta1 cycled
  between 0.95 and 0.85), stepped after every batch over ``train_epochs * steps_per_epoch`` steps.
- ``COS``: cosine annealing with T_max 20 epochs and eta_min 1e-8, stepped after every epoch.
- ``constant``: lr throughout.

The reference builds a one-cycle scheduler for ``type1`` too and never steps it, which silently
trains the first epoch at lr / 25; here ``type1`` starts at exactly lr.

The schedule is deliberately not passed through ``accelerator.prepare``: accelerate steps a
prepared scheduler once per process, while ``steps_per_epoch`` here is already per process.
"""

from __future__ import annotations

from typing import Any

import torch

from timellm_core.config import LR_SCHEDULES, TrainingConfig
from timellm_core.errors import ConfigError

COSINE_T_MAX = 20  # epochs, as in the reference
COSINE_ETA_MIN = 1e-8


class LearningRateSchedule:
    """Owns a torch scheduler and knows whether it is stepped per batch or per epoch."""

    def __init__(self, optimizer: torch.optim.Optimizer, config: TrainingConfig, steps_per_epoch: int):
        if config.lradj not in LR_SCHEDULES:
            raise ConfigError(f"lradj must be one of {', '.join(LR_SCHEDULES)}, not {config.lradj!r}.")
        self.name = config.lradj
        self.optimizer = optimizer
        self.per_batch = self.name == "TST"
        if self.name == "type1":
            self.scheduler: torch.optim.lr_scheduler.LRScheduler = torch.optim.lr_scheduler.LambdaLR(
                optimizer, lr_lambda=lambda epoch_index: 0.5 ** epoch_index)
        elif self.name == "constant":
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=lambda epoch_index: 1.0)
        elif self.name == "COS":
            self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
                optimizer, T_max=COSINE_T_MAX, eta_min=COSINE_ETA_MIN)
        else:  # TST
            total_steps = max(1, int(config.train_epochs) * max(1, int(steps_per_epoch)))
            self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=float(config.learning_rate), total_steps=total_steps,
                pct_start=float(config.pct_start))
        self._total_batch_steps = int(config.train_epochs) * max(1, int(steps_per_epoch))
        self._batch_steps = 0

    @property
    def lr(self) -> float:
        """The rate the next optimizer step will use."""
        return float(self.optimizer.param_groups[0]["lr"])

    def after_batch(self) -> None:
        if self.per_batch:
            self._batch_steps += 1
            # OneCycleLR raises past its last step; the final optimizer step has already used its rate.
            if self._batch_steps < self._total_batch_steps:
                self.scheduler.step()

    def after_epoch(self) -> None:
        if not self.per_batch:
            self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        # LambdaLR's state holds no lambdas (torch drops non-callable-object functions), so it is JSON-able.
        state = {k: v for k, v in self.scheduler.state_dict().items() if k != "lr_lambdas"}
        return {"name": self.name, "batch_steps": self._batch_steps, "scheduler": state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name:
            raise ConfigError(f"The checkpoint's schedule is {state.get('name')!r}, this run's is {self.name!r}.")
        self._batch_steps = int(state.get("batch_steps", 0))
        scheduler_state = dict(state["scheduler"])
        if isinstance(self.scheduler, torch.optim.lr_scheduler.LambdaLR):
            scheduler_state["lr_lambdas"] = [None] * len(self.optimizer.param_groups)
        self.scheduler.load_state_dict(scheduler_state)
        # The optimizer's own state already carries the current lr; keep them in agreement.
        for group, lr in zip(self.optimizer.param_groups, self.scheduler.get_last_lr()):
            group["lr"] = lr
