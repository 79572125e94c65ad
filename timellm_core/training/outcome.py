"""Where a training run is (epoch, step, phase), when it stops early, and the result it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class TrainingResult:
    """How a run ended; ``test_metrics`` only when it finished."""

    status: str  # finished | cancelled
    run_dir: str | None
    epochs_done: int
    best_epoch: int | None
    test_metrics: dict[str, Any] | None = None


@dataclass
class EarlyStopping:
    """Stop after ``patience`` epochs without a lower validation MSE (the reference's rule, delta 0)."""

    patience: int
    best_score: float | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0
    stopped: bool = False

    def update(self, score: float, epoch: int) -> bool:
        """Record an epoch's score; True when it is the best so far."""
        if self.best_score is None or score < self.best_score:
            self.best_score, self.best_epoch, self.bad_epochs = score, epoch, 0
            return True
        self.bad_epochs += 1
        self.stopped = self.bad_epochs >= self.patience
        return False


@dataclass
class TrainingProgress:
    """Where the trainer is; read by the job that runs it (progress bars, ETA)."""

    epoch: int = 0
    step: int = 0
    global_step: int = 0
    total_steps: int = 0
    where: str = "starting"
    extra: dict[str, Any] = field(default_factory=dict)
