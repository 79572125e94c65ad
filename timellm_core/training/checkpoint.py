"""Checkpoint files: safetensors only (no pickle), written atomically, checked against the run's config.

Two files per run:

- ``model.safetensors``: the best trainable weights (what inspection and ``evaluate`` load);
- ``checkpoint.safetensors``: the last finished epoch, for ``resume``: trainable weights under
  ``model/``, optimizer tensors under ``optimizer/``, RNG states under ``rng/``, and the rest of
  the training state (epoch, scheduler, early stopping, optimizer structure) as JSON in the file's
  metadata. One file, so a crash can never pair the weights of one epoch with the state of another.

Every write goes to a temporary file in the same folder, is fsync'd, then ``os.replace``d over the
old file: a crash or a full disk leaves the previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from timellm_core.config import RunConfig
from timellm_core.errors import RunError

FORMAT_VERSION = "1"


def config_fingerprint(config: RunConfig) -> str:
    """A hash of everything that decides which weights fit which model (training settings excluded)."""
    values = config.to_dict()
    shaping = {"data": values["data"], "backbone": values["backbone"], "model": values["model"]}
    # Switches that change speed or numerics but not the weights' meaning do not count.
    for volatile in ("optimize", "fast"):
        shaping["model"].pop(volatile, None)
    text = json.dumps(shaping, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def write_safetensors_atomic(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    """Write tensors to ``path`` through a temporary file and a rename; RunError if that fails."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    prepared = {name: tensor.detach().to("cpu").contiguous() for name, tensor in tensors.items()}
    try:
        save_file(prepared, str(temporary), metadata=metadata)
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        _fsync_folder(path.parent)
    except (OSError, SafetensorError, RuntimeError) as error:
        try:
            temporary.unlink(missing_ok=True)
        except OSError:
            pass
        kept = "The previous checkpoint is kept. " if path.exists() else ""
        raise RunError(f"Could not write the checkpoint {path}: {error}. {kept}"
                       "Free some disk space (or check the folder's permissions) and resume the run.") from error


def _fsync_folder(folder: Path) -> None:
    # The rename itself must reach the disk, or a power cut can undo it.
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def save_model_weights(state: dict[str, torch.Tensor], path: Path, config: RunConfig, epoch: int,
                       val_mse: float | None) -> None:
    """The best trainable weights, tagged with the config they belong to."""
    metadata = {"format": FORMAT_VERSION, "kind": "best", "config_fingerprint": config_fingerprint(config),
                "epoch": str(epoch), "val_mse": json.dumps(val_mse)}
    write_safetensors_atomic(state, path, metadata)


def read_metadata(path: Path) -> dict[str, str]:
    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except FileNotFoundError:
        raise RunError(f"No checkpoint at {path}: the run has not finished an epoch yet.") from None
    except (OSError, SafetensorError, ValueError) as error:
        raise RunError(f"The checkpoint {path} is corrupt or not a safetensors file ({error}). "
                       "Resume the run from its last checkpoint or train it again.") from error


def load_model_weights(path: Path, config: RunConfig, expected: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Read weights saved by ``save_model_weights`` and check they fit ``expected`` (a model's state)."""
    path = Path(path)
    metadata = read_metadata(path)
    check_fingerprint(path, metadata, config)
    try:
        tensors = load_file(str(path))
    except (OSError, SafetensorError, ValueError) as error:
        raise RunError(f"The checkpoint {path} is corrupt ({error}). Train the run again.") from error
    check_fits(path, tensors, expected)
    return tensors


def check_fingerprint(path: Path, metadata: dict[str, str], config: RunConfig) -> None:
    saved = metadata.get("config_fingerprint")
    if saved is not None and saved != config_fingerprint(config):
        raise RunError(f"The checkpoint {path} was saved for a different configuration than this run's "
                       "config.json (data, backbone or model settings differ). Load it with the config it "
                       "was trained with, or train a new run.")


def check_fits(path: Path, tensors: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    """RunError naming missing, unexpected and mis-shaped weights."""
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    misshaped = sorted(name for name in set(expected) & set(tensors)
                       if tuple(expected[name].shape) != tuple(tensors[name].shape))
    if missing or unexpected or misshaped:
        details = []
        if missing:
            details.append("missing " + ", ".join(missing[:5]))
        if unexpected:
            details.append("unexpected " + ", ".join(unexpected[:5]))
        if misshaped:
            details.append("shapes differ for " + ", ".join(
                f"{n} {tuple(tensors[n].shape)} vs {tuple(expected[n].shape)}" for n in misshaped[:5]))
        raise RunError(f"The checkpoint {path} does not fit this model ({'; '.join(details)}): it comes from "
                       "a different configuration or backbone. Use the backbone and settings it was trained with.")


# --- training state (resume) -------------------------------------------------------------------

def _encode(value: Any, tensors: dict[str, torch.Tensor], prefix: str) -> Any:
    """Nested optimizer/scheduler state -> JSON with tensors set aside (dict key types preserved)."""
    if isinstance(value, torch.Tensor):
        name = f"{prefix}{len(tensors)}"
        tensors[name] = value
        return {"__tensor__": name}
    if isinstance(value, dict):
        return {"__dict__": [[key, _encode(item, tensors, prefix)] for key, item in value.items()]}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(item, tensors, prefix) for item in value]}
    if isinstance(value, list):
        return [_encode(item, tensors, prefix) for item in value]
    return value


def _decode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, dict):
        if "__tensor__" in value:
            return tensors[value["__tensor__"]]
        if "__dict__" in value:
            return {key: _decode(item, tensors) for key, item in value["__dict__"]}
        if "__tuple__" in value:
            return tuple(_decode(item, tensors) for item in value["__tuple__"])
    if isinstance(value, list):
        return [_decode(item, tensors) for item in value]
    return value


def save_training_state(path: Path, config: RunConfig, model_state: dict[str, torch.Tensor],
                        optimizer_state: dict[str, Any], state: dict[str, Any]) -> None:
    """The last finished epoch: weights, optimizer, RNG, and ``state`` (JSON-able: epoch, scheduler, ...)."""
    tensors: dict[str, torch.Tensor] = {f"model/{name}": tensor for name, tensor in model_state.items()}
    optimizer_json = _encode(optimizer_state, tensors, "optimizer/")
    tensors["rng/torch"] = torch.get_rng_state()
    metadata = {"format": FORMAT_VERSION, "kind": "last", "config_fingerprint": config_fingerprint(config),
                "optimizer": json.dumps(optimizer_json), "state": json.dumps(state)}
    write_safetensors_atomic(tensors, path, metadata)


def load_training_state(path: Path, config: RunConfig, expected_model: dict[str, torch.Tensor]
                        ) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any], torch.Tensor | None]:
    """(model weights, optimizer state, training state, torch RNG state) from ``save_training_state``."""
    path = Path(path)
    metadata = read_metadata(path)
    check_fingerprint(path, metadata, config)
    try:
        tensors = load_file(str(path))
        optimizer_json = json.loads(metadata["optimizer"])
        state = json.loads(metadata["state"])
    except (OSError, SafetensorError, ValueError, KeyError) as error:
        raise RunError(f"The resume checkpoint {path} is corrupt ({error}). Start a new run.") from error
    model_state = {name[len("model/"):]: tensor for name, tensor in tensors.items() if name.startswith("model/")}
    check_fits(path, model_state, expected_model)
    optimizer_state = _decode(optimizer_json, tensors)
    return model_state, optimizer_state, state, tensors.get("rng/torch")
