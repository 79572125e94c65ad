"""``python -m timellm_core train`` for one process of a torchrun launch, reporting what that process held.

Launched by tests/test_training_distributed.py as ``torchrun ... distributed_train_entry.py OUT_DIR
[STOP_AFTER_EPOCH] -- train ARGS``. Every process (rank) runs the real CLI; around it, this entry
records in ``OUT_DIR/rank<R>.json`` a hash of the trainable weights the process holds after each
epoch, after the final test (the best weights) and, on resume, right after restoring the
checkpoint. ``STOP_AFTER_EPOCH`` (> 0) stops every process after that epoch, as the Stop button
does (the run ends ``cancelled`` with its checkpoint), so that the test can resume it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import torch

from timellm_core.cli import main
from timellm_core.training.trainer import Trainer


def state_hash(state: dict[str, torch.Tensor]) -> str:
    """sha256 over the tensors' names, dtypes, shapes and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def instrument(out_dir: Path, stop_after_epoch: int) -> None:
    rank = int(os.environ.get("RANK", "0"))
    record: dict = {"rank": rank, "world_size": int(os.environ.get("WORLD_SIZE", "1"))}

    def save() -> None:
        (out_dir / f"rank{rank}.json").write_text(json.dumps(record))

    def held(trainer: Trainer) -> str:
        return state_hash(trainer._unwrapped().trainable_state_dict())

    original_restore, original_train_epoch = Trainer._restore, Trainer._train_epoch
    original_final_test = Trainer._final_test

    def restore(self: Trainer) -> None:
        original_restore(self)
        record["restored"] = held(self)
        save()

    def train_epoch(self: Trainer, epoch: int) -> None:
        original_train_epoch(self, epoch)
        record["last_epoch"] = epoch
        record["after_last_epoch"] = record[f"epoch{epoch}"] = held(self)
        save()
        if epoch == stop_after_epoch:
            self.cancel.set()  # checked before the next step, the same on every process

    def final_test(self: Trainer):
        result = original_final_test(self)
        record["final"] = held(self)  # the best weights, reloaded for the final test
        record["processes"] = self.accelerator.num_processes
        save()
        return result

    Trainer._restore, Trainer._train_epoch, Trainer._final_test = restore, train_epoch, final_test


if __name__ == "__main__":
    separator = sys.argv.index("--")
    out, stop = Path(sys.argv[1]), int(sys.argv[2]) if separator > 2 else 0
    instrument(out, stop)
    sys.exit(main(sys.argv[separator + 1:]))
