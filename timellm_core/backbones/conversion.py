"""GGUF -> a Hugging Face folder (float32 safetensors + tokenizer), once; and repairing older conversions.

The folder holds every weight the base model needs under the ``*ForCausalLM`` names, tied ones
included: ``model.embed_tokens.weight`` is always written; an LM head, which Time-LLM never uses, is not.
Conversions written before that rule (format 1) saved only ``lm_head.weight`` for models with tied
embeddings, so the base model's input embeddings were missing and were initialised at random.
``repair_converted_folder`` detects such a folder and rewrites it; loading calls it.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any, Callable

from timellm_core.backbones.gguf_weights import gguf_model_config, read_gguf_weights
from timellm_core.backbones.hf_quiet import quiet_transformers
from timellm_core.errors import BackboneError

CONVERTED_MARKER = "converted_from_gguf.json"  # written next to weights de-quantised from a GGUF
CONVERSION_FORMAT = 2  # 2: every base-model weight is written, tied input embeddings included
WEIGHTS_FILE = "model.safetensors"
EMBEDDINGS_KEY = "model.embed_tokens.weight"
TIED_HEAD_KEY = "lm_head.weight"
ConversionProgress = Callable[[str, "float | None"], None]


def _write_marker(folder: Path, values: dict[str, Any]) -> None:
    (folder / CONVERTED_MARKER).write_text(json.dumps({**values, "format": CONVERSION_FORMAT}) + "\n")


def convert_gguf_folder(gguf_path: Path, out_folder: Path, progress: ConversionProgress | None = None,
                        source_sha256: str | None = None) -> Path:
    """De-quantise a GGUF file once into ``out_folder`` (config.json, model.safetensors, tokenizer)."""
    from safetensors.torch import save_file
    from transformers import AutoTokenizer

    def tensors_done(done: int, total: int) -> None:
        if progress is not None and (done == total or done % 32 == 0):
            progress(f"De-quantising {gguf_path.name}: {done}/{total} tensors", 0.6 + 0.3 * done / total)

    if progress is not None:
        progress(f"Converting {gguf_path.name} to safetensors (once) ...", 0.6)
    config = gguf_model_config(gguf_path)
    weights = read_gguf_weights(gguf_path, config, progress=tensors_done)
    with quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name,
                                                  local_files_only=True)
    out_folder.mkdir(parents=True, exist_ok=True)
    config = copy.deepcopy(config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.save_pretrained(out_folder)
    save_file(weights, str(out_folder / WEIGHTS_FILE), metadata={"format": "pt"})
    tokenizer.save_pretrained(out_folder)
    marker: dict[str, Any] = {"converted_from": gguf_path.name}
    if source_sha256:
        marker["sha256"] = source_sha256
    _write_marker(out_folder, marker)
    for path in out_folder.iterdir():
        path.chmod(0o644)  # readable by everyone sharing the checkout
    return out_folder


def conversion_format(folder: Path) -> int | None:
    """The format a converted folder was written in (1 for markers without one); None if not converted."""
    marker = folder / CONVERTED_MARKER
    if not marker.is_file():
        return None
    try:
        return int(json.loads(marker.read_text()).get("format", 1))
    except (OSError, ValueError, AttributeError):
        return 1


def repair_converted_folder(folder: Path) -> str | None:
    """Rewrite a format-1 conversion whose tied input embeddings are missing; a message when repaired.

    The missing ``model.embed_tokens.weight`` equals the saved ``lm_head.weight`` (the two were one
    tied tensor when the folder was written), so it is copied from there. The new file replaces the
    old one atomically. Nothing is done (None) for other folders or complete ones.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    fmt = conversion_format(folder)
    weights_path = folder / WEIGHTS_FILE
    if fmt is None or fmt >= CONVERSION_FORMAT or not weights_path.is_file():
        return None
    with safe_open(str(weights_path), "pt") as handle:
        keys = set(handle.keys())
        metadata = handle.metadata()
    marker = json.loads((folder / CONVERTED_MARKER).read_text())
    if EMBEDDINGS_KEY in keys:
        _write_marker(folder, marker)  # complete already: record that it was checked
        return None
    try:
        tied = bool(json.loads((folder / "config.json").read_text()).get("tie_word_embeddings", False))
    except (OSError, ValueError) as error:
        raise BackboneError(f"Cannot read {folder / 'config.json'}: {error}") from None
    if not (tied and TIED_HEAD_KEY in keys):
        raise BackboneError(
            f"{folder} was converted by an earlier version and lacks its input embeddings "
            f"({EMBEDDINGS_KEY}), with no tied LM head to restore them from. Delete the folder and run "
            "`python -m timellm_core backbones fetch NAME` again.")
    weights = load_file(str(weights_path))
    weights[EMBEDDINGS_KEY] = weights.pop(TIED_HEAD_KEY)
    partial = weights_path.with_name(f".{WEIGHTS_FILE}.repairing")
    try:
        save_file(weights, str(partial), metadata=metadata or {"format": "pt"})
        partial.chmod(0o644)
        os.replace(partial, weights_path)
    except OSError as error:
        raise BackboneError(
            f"{folder} lacks its input embeddings ({EMBEDDINGS_KEY}, left out by an earlier version's "
            f"conversion) and could not be repaired: {error}. Delete the folder and run "
            "`python -m timellm_core backbones fetch NAME` again.") from None
    finally:
        partial.unlink(missing_ok=True)
    _write_marker(folder, {**marker, "repaired": f"{EMBEDDINGS_KEY} restored from the tied {TIED_HEAD_KEY}"})
    return (f"Repaired {folder}: it was converted by an earlier version that left out the input "
            f"embeddings ({EMBEDDINGS_KEY}); they were restored from the tied LM head. Runs trained "
            "before this repair used random input embeddings and should be trained again.")
