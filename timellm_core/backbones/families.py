"""The four supported model families: what is causal, which class is the base model, how to truncate.

Every family keeps its layer count under ``config.num_hidden_layers`` (GPT-2 maps it to ``n_layer``
through the config's ``attribute_map``), so truncation is one assignment on the config plus, for
Qwen2, the per-layer ``layer_types`` list.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from timellm_core.errors import BackboneError


@dataclass(frozen=True)
class FamilyInfo:
    """Facts about one architecture family."""

    name: str
    causal: bool  # decoder-only; False for bidirectional encoders (BERT)
    base_class: str  # transformers class name of the model without its LM head
    model_types: tuple[str, ...]  # config.json ``model_type`` values that belong here


FAMILIES: dict[str, FamilyInfo] = {
    "gpt2": FamilyInfo("gpt2", True, "GPT2Model", ("gpt2",)),
    "llama": FamilyInfo("llama", True, "LlamaModel", ("llama",)),
    "qwen2": FamilyInfo("qwen2", True, "Qwen2Model", ("qwen2",)),
    "bert": FamilyInfo("bert", False, "BertModel", ("bert",)),
}


def family_info(family: str) -> FamilyInfo:
    try:
        return FAMILIES[family]
    except KeyError:
        raise BackboneError(
            f"Unsupported model family {family!r}: supported families are "
            f"{', '.join(FAMILIES)} (GPT-2, LLaMA, Qwen2 and BERT architectures).") from None


def family_of_model_type(model_type: str | None, where: str) -> str:
    """Map a config's ``model_type`` (or a GGUF ``general.architecture``) to a family name."""
    for info in FAMILIES.values():
        if model_type in info.model_types:
            return info.name
    raise BackboneError(
        f"{where} holds a {model_type!r} model; supported model types are "
        f"{', '.join(t for f in FAMILIES.values() for t in f.model_types)}.")


def base_model_class(family: str) -> type:
    """The transformers class of the model without its LM head (imported lazily: transformers is slow)."""
    import transformers

    return getattr(transformers, family_info(family).base_class)


def base_model_kwargs(family: str) -> dict[str, Any]:
    """Constructor arguments of the base model: Time-LLM reads the last hidden state only,
    so BERT's pooler would be unused weight."""
    return {"add_pooling_layer": False} if family == "bert" else {}


def layer_count(config: Any) -> int:
    return int(config.num_hidden_layers)


def truncated_config(config: Any, llm_layers: int, where: str) -> Any:
    """A copy of ``config`` that builds only the first ``llm_layers`` layers.

    Asking for more layers than the model has is an error naming the model's count.
    """
    available = layer_count(config)
    if llm_layers > available:
        raise BackboneError(
            f"{where} has {available} layers; llm_layers={llm_layers} asks for more. "
            f"Choose llm_layers between 1 and {available}.")
    if llm_layers < 1:
        raise BackboneError(f"llm_layers must be at least 1, not {llm_layers}.")
    config = copy.deepcopy(config)
    config.num_hidden_layers = llm_layers
    layer_types = getattr(config, "layer_types", None)
    if isinstance(layer_types, list) and len(layer_types) > llm_layers:
        config.layer_types = layer_types[:llm_layers]
    return config


def transformer_layers(model: Any) -> Any:
    """The ModuleList of transformer blocks of a base model (for checks and the memory planner)."""
    for path in ("layers", "h", "encoder.layer"):
        module = model
        try:
            for part in path.split("."):
                module = getattr(module, part)
        except AttributeError:
            continue
        return module
    raise BackboneError(f"Cannot find the transformer layers of a {type(model).__name__}.")
