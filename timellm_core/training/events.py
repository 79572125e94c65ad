"""Training events: plain dicts with a ``type`` and a ``time``, one JSON line each in ``metrics.jsonl``.

Dicts rather than classes because they go three places unchanged: the job's event list (read by
the app from another thread), the run folder's ``metrics.jsonl``, and the CLI's progress bar.

Types and their fields:

- ``started``: epochs, steps_per_epoch, total_steps, first_epoch, windows {train, val, test}, val_batches,
  test_batches, test_each_epoch, batch_size, eval_batch_size (the plan a progress bar needs)
- ``resumed``: from_epoch (the last finished epoch), global_step, and the plan as in ``started``
- ``step``: epoch, step (1-based in the epoch), global_step, total_steps, loss, lr, seconds (the step's
  wall time), windows_per_s
- ``evaluating``: epoch, split ("val" or "test"), final (the test of the best weights), batch (done so
  far, 0 when the pass begins), batches; at most a few a second, and always the last batch
- ``epoch``: epoch, train_loss, val_mse, val_mae, test_mse, test_mae (None when not evaluated), lr
- ``checkpoint``: epoch, path, kind ("best" or "last"), val_mse
- ``early_stop``: epoch, patience
- ``finished``: test metrics (``test_mse``, ``test_mae``, ``test_mse_original``, ...)
- ``failed``: message
- ``cancelled``: epoch, global_step, epochs_done, kept_epoch (the epoch whose weights are kept, or None)
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

from timellm_core.safety import redact_secrets

EVENT_TYPES = ("started", "resumed", "step", "evaluating", "epoch", "checkpoint", "early_stop", "finished", "failed",
               "cancelled")
TERMINAL_TYPES = ("finished", "failed", "cancelled")

Event = dict[str, Any]
EventSink = Callable[[Event], None]


def make_event(event_type: str, **fields: Any) -> Event:
    """An event dict stamped with the wall-clock time; non-finite floats become None (valid JSON)."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    event: Event = {"type": event_type, "time": time.time()}
    for key, value in fields.items():
        event[key] = json_safe(value)
    if event_type == "failed" and isinstance(event.get("message"), str):
        # A failure quotes exception text, which may hold a URL with a token: metrics.jsonl is a log.
        event["message"] = redact_secrets(event["message"])
    return event


def json_safe(value: Any) -> Any:
    # json.dumps writes NaN/Infinity, which is not JSON; a reader in another language would choke.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "tolist") and hasattr(value, "ndim"):
        return json_safe(value.tolist())  # numpy / torch scalars and arrays
    return value


def last_of_type(events: list[Event], event_type: str) -> Event | None:
    """The most recent event of a type, or None."""
    for event in reversed(events):
        if event.get("type") == event_type:
            return event
    return None
