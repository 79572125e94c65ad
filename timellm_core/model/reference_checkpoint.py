"""Checkpoints of the reference implementation: its parameter names mapped onto this model's.

The reference saves its whole model; its trained layers are named
``patch_embedding.value_embedding.tokenConv.weight``, ``mapping_layer.{weight,bias}``,
``reprogramming_layer.{query,key,value,out}_projection.{weight,bias}`` and
``output_projection.linear.{weight,bias}``. Its LLM weights (``llm_model.*``) are ignored: the
backbone here comes from its own spec. A ``module.`` prefix (saved from a distributed wrapper) is
stripped. Anything else, or anything missing, is an error that lists the keys.
"""

from __future__ import annotations

from typing import Any

import torch

from timellm_core.errors import RunError

REFERENCE_TO_OURS: dict[str, str] = {
    "patch_embedding.value_embedding.tokenConv.weight": "patch_embedding.token_convolution.weight",
    "mapping_layer.weight": "text_prototypes.mapping.weight",
    "mapping_layer.bias": "text_prototypes.mapping.bias",
    **{f"reprogramming_layer.{part}_projection.{kind}": f"reprogramming.{part}_projection.{kind}"
       for part in ("query", "key", "value", "out") for kind in ("weight", "bias")},
    "output_projection.linear.weight": "output_head.linear.weight",
    "output_projection.linear.bias": "output_head.linear.bias",
}
IGNORED_PREFIXES = ("llm_model.",)


def load_reference_state_dict(model: Any, state_dict: dict[str, Any]) -> None:
    """Load a reference checkpoint's trained layers into a ``TimeLLM`` (same as its method)."""
    model.load_reference_state_dict(state_dict)


def from_reference_state_dict(state_dict: dict[str, Any], llm_mode: str = "frozen") -> dict[str, torch.Tensor]:
    """A reference state dict -> this model's trainable state dict (float32 tensors)."""
    if llm_mode != "frozen":
        raise RunError(f"Reference checkpoints hold a frozen-LLM Time-LLM; this model uses llm_mode={llm_mode!r}. "
                       "Build the model with llm_mode='frozen' to load it.")
    renamed: dict[str, torch.Tensor] = {}
    unknown = []
    for name, tensor in state_dict.items():
        name = name.removeprefix("module.")
        if name.startswith(IGNORED_PREFIXES):
            continue
        if name not in REFERENCE_TO_OURS:
            unknown.append(name)
            continue
        renamed[REFERENCE_TO_OURS[name]] = torch.as_tensor(tensor).float()
    missing = sorted(set(REFERENCE_TO_OURS) - {_ours_to_reference(name) for name in renamed})
    if unknown or missing:
        details = []
        if unknown:
            details.append(f"unknown keys: {', '.join(sorted(unknown))}")
        if missing:
            details.append(f"missing keys: {', '.join(missing)}")
        raise RunError("This is not a Time-LLM reference checkpoint this model can read (" + "; ".join(details) +
                       "). Expected the reference's trained layers: " + ", ".join(REFERENCE_TO_OURS) + ".")
    return renamed


def to_reference_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """This model's trainable state dict -> the reference's names (for exchange and round-trip tests)."""
    unknown = sorted(set(state_dict) - set(REFERENCE_TO_OURS.values()))
    if unknown:
        raise RunError(f"These layers have no counterpart in the reference implementation: {', '.join(unknown)}. "
                       "Only a llm_mode='frozen' model can be written in the reference's format.")
    return {_ours_to_reference(name): tensor for name, tensor in state_dict.items()}


def _ours_to_reference(name: str) -> str:
    for reference, ours in REFERENCE_TO_OURS.items():
        if ours == name:
            return reference
    raise KeyError(name)
