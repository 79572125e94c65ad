"""Read transformers' load report and refuse a backbone whose checkpoint lacks weights it should hold.

``from_pretrained`` initialises at random any weight the checkpoint does not provide, and says so
only in a log line (which ``quiet_transformers`` silences). A frozen LLM with random weights still
runs, so nothing downstream would notice: the report is checked here instead.

Allowed: checkpoint keys that truncation leaves unused on purpose (layers past ``llm_layers``, an LM
head, BERT's pooler and pre-training heads). Everything else, a missing key, a shape mismatch, an
unknown key, is a BackboneError naming the keys.
"""

from __future__ import annotations

import re
from typing import Any

from timellm_core.errors import BackboneError

# Checkpoint keys the base model never uses: a causal LM's head, BERT's pooler and pre-training heads.
_UNUSED_HEADS = re.compile(r"^(?:lm_head|cls|pooler)\.|(?:^|\.)pooler\.")
# The block index in "model.layers.7.", "h.7.", "encoder.layer.7." (any prefix).
_LAYER_INDEX = re.compile(r"(?:^|\.)(?:layers|h|layer)\.(\d+)\.")
_SHOWN = 6  # keys named in a message before "... and N more"


def _dropped_on_purpose(key: str, kept_layers: int) -> bool:
    if _UNUSED_HEADS.search(key):
        return True
    match = _LAYER_INDEX.search(key)
    return match is not None and int(match.group(1)) >= kept_layers


def _named(keys: list[str]) -> str:
    shown = ", ".join(keys[:_SHOWN])
    return shown + (f" ... and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else "")


def check_load_report(report: dict[str, Any], label: str, kept_layers: int) -> None:
    """Raise a BackboneError unless every weight of the truncated model came from the checkpoint.

    ``report``: the dict ``from_pretrained(..., output_loading_info=True)`` returns
    (missing_keys, unexpected_keys, mismatched_keys, error_msgs).
    """
    missing = sorted(report.get("missing_keys") or [])
    if missing:
        raise BackboneError(
            f"{label} does not hold every weight the model needs: {_named(missing)} "
            f"({len(missing)} missing). They would be initialised at random, so loading stops. "
            "Fetch the model again (`python -m timellm_core backbones fetch NAME`) or copy a complete "
            "model.safetensors into its folder.")
    mismatched = sorted(report.get("mismatched_keys") or [])
    if mismatched:
        described = [f"{key} {tuple(found)} where the model expects {tuple(expected)}"
                     for key, found, expected in mismatched]
        raise BackboneError(f"{label} holds weights of the wrong shape: {_named(described)}. "
                            "Its config.json and weights do not belong together.")
    unknown = sorted(key for key in report.get("unexpected_keys") or [] if not _dropped_on_purpose(key, kept_layers))
    if unknown:
        raise BackboneError(f"{label} holds weights this architecture does not use: {_named(unknown)}. "
                            "Its config.json may describe another model.")
    errors = [str(message) for message in report.get("error_msgs") or []]
    if errors:
        raise BackboneError(f"Loading {label} reported errors: {'; '.join(errors[:3])}")
