"""Load a backbone: frozen, truncated to ``llm_layers`` before its weights load, optionally in 4-bit NF4.

Sources, in order: a tiny model built in-process; a local Hugging Face folder; a GGUF file
(de-quantised by transformers); a hub id already in the local Hugging Face cache. Nothing here
touches the network (``local_files_only=True`` everywhere); downloads happen only in ``fetch``.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError

from timellm_core.backbones.base import Backbone, BackboneSpec
from timellm_core.backbones.catalogue import cached_hub_folder, local_path, resolve_backbone_spec
from timellm_core.backbones.families import (
    base_model_class, base_model_kwargs, family_info, layer_count, transformer_layers, truncated_config)
from timellm_core.backbones.quantization import (
    CONTINUE_WITHOUT_4BIT, compute_dtype_for, count_quantized_linear, disable_cpu_packing, nf4_config,
    storage_bytes, unquantized_projections)
from timellm_core.backbones.conversion import CONVERTED_MARKER, repair_converted_folder
from timellm_core.backbones.gguf_weights import gguf_model_config, read_gguf_weights
from timellm_core.backbones.hf_quiet import quiet_transformers
from timellm_core.backbones.load_report import check_load_report
from timellm_core.backbones.tiny import build_tiny_model, save_tiny_backbone, tiny_tokenizer
from timellm_core.config import BackboneConfig
from timellm_core.errors import BackboneError
from timellm_core.safety import check_weight_file, pickle_weight_files

ATTENTION_IMPLEMENTATIONS = ("sdpa", "eager")
logger = logging.getLogger(__name__)
_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
           "float16": torch.float16, "fp16": torch.float16}


@dataclass(frozen=True)
class WeightsSource:
    """Where from_pretrained reads: a folder (or cache snapshot) and, for GGUF, the file name in it."""

    folder: Path
    gguf_file: str | None = None
    label: str = ""  # for messages


def resolve_device(device: str | torch.device | None) -> torch.device:
    """CUDA when present, else CPU; an explicit device is checked."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BackboneError("A CUDA device was asked for but none is available; use device='cpu'.")
    return device


def _resolve_dtype(dtype: str | torch.dtype | None, device: torch.device, load_in_4bit: bool) -> torch.dtype:
    if dtype is None:
        # 4-bit: non-quantised parts in the compute dtype. Otherwise fp32: exact, and what CPUs run fastest.
        return compute_dtype_for(device) if load_in_4bit else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return _DTYPES[str(dtype).lower()]
    except KeyError:
        raise BackboneError(f"Unknown dtype {dtype!r}; choose one of {', '.join(_DTYPES)}.") from None


def weights_source(spec: BackboneSpec) -> WeightsSource:
    """Where a pretrained spec's weights are on disk, or a BackboneError saying how to get them."""
    if spec.gguf_file:
        path = Path(spec.gguf_file)
        return WeightsSource(path.parent, path.name, str(path))
    folder = local_path(spec)
    if folder is not None and (folder / "config.json").is_file():
        return WeightsSource(folder, None, str(folder))
    if spec.hub_id:
        cached = cached_hub_folder(spec.hub_id)
        if cached is not None:
            return WeightsSource(cached, None, spec.hub_id)
    where = f" (looked in {folder})" if folder is not None else ""
    raise BackboneError(
        f"Backbone {spec.name!r} is not on this machine{where}. Download it once with "
        f"`python -m timellm_core backbones fetch {spec.name}` (or `make models` for the default ones), "
        "or give the path of a local Hugging Face model folder.")


def _check_llm_dim(llm_dim: int | None, hidden_size: int, name: str) -> None:
    if llm_dim is not None and int(llm_dim) != int(hidden_size):
        raise BackboneError(
            f"llm_dim={llm_dim} does not match {name}, whose hidden size is {hidden_size}. "
            f"Use llm_dim={hidden_size}, or leave llm_dim out: it is read from the model's config.")


def _require_safetensors(source: WeightsSource) -> None:
    """A BackboneError when a model folder has no *.safetensors weights (naming any pickle files found)."""
    folder = Path(source.folder)
    if any(folder.glob("*.safetensors")) or (folder / "model.safetensors.index.json").is_file():
        return
    pickled = pickle_weight_files(folder)
    if pickled:
        check_weight_file(folder / pickled[0])  # raises, saying why pickle files are not read
    raise BackboneError(f"{source.label} has no *.safetensors weights. Fetch the model again "
                        "(`python -m timellm_core backbones fetch NAME`) or copy its model.safetensors there.")


def _from_pretrained(spec: BackboneSpec, source: WeightsSource, config: BackboneConfig, device: torch.device,
                     dtype: torch.dtype, attn_implementation: str) -> torch.nn.Module:
    """from_pretrained with the config truncated first, so unused layers are never allocated.

    Every weight of the truncated model must come from the checkpoint (``check_load_report``).
    A GGUF file is first de-quantised, kept layers only, into a temporary folder, so 4-bit and the
    load report work for it as for any folder.
    """
    from transformers import AutoConfig, AutoModel

    if source.gguf_file:
        with tempfile.TemporaryDirectory(prefix="timellm-gguf-") as folder:
            kept = _kept_layers_folder(Path(source.folder) / source.gguf_file, int(config.llm_layers),
                                       config.llm_dim, spec.name, Path(folder))
            return _from_pretrained(spec, WeightsSource(kept, None, source.label), config, device, dtype,
                                    attn_implementation)
    common: dict[str, Any] = {"local_files_only": True, "trust_remote_code": bool(config.trust_remote_code)}
    try:
        hf_config = AutoConfig.from_pretrained(str(source.folder), **common)
    except (OSError, ValueError) as error:
        raise BackboneError(f"Cannot read the model config of {source.label}: {error}") from None
    _check_llm_dim(config.llm_dim, hf_config.hidden_size, spec.name)
    hf_config = truncated_config(hf_config, int(config.llm_layers), spec.name)
    # Weights come from safetensors only: a pickle file (pytorch_model.bin) can run code when loaded.
    _require_safetensors(source)
    kwargs: dict[str, Any] = {**common, "config": hf_config, "dtype": dtype, "use_safetensors": True,
                              "attn_implementation": attn_implementation, "output_loading_info": True,
                              # mismatches come back in the report (and raise there, naming the keys)
                              "ignore_mismatched_sizes": True,
                              **base_model_kwargs(spec.family)}
    if config.load_in_4bit:
        kwargs["quantization_config"] = nf4_config(device)
        kwargs["device_map"] = {"": device}
    model_class = AutoModel if config.trust_remote_code else base_model_class(spec.family)
    try:
        with quiet_transformers():
            model, report = model_class.from_pretrained(str(source.folder), **kwargs)
    except BackboneError:
        raise
    except (OSError, ValueError, RuntimeError, ImportError, SafetensorError) as error:
        hint = f" If 4-bit is the problem: {CONTINUE_WITHOUT_4BIT}" if config.load_in_4bit else ""
        raise BackboneError(f"Loading {source.label} failed: {error}.{hint}") from None
    check_load_report(report, source.label, int(config.llm_layers))
    if config.load_in_4bit:
        disable_cpu_packing(model)  # a no-op on CUDA; see its docstring for the CPU failure it prevents
    else:
        model = model.to(device)
    return model


def _kept_layers_folder(gguf_path: Path, llm_layers: int, llm_dim: int | None, name: str, folder: Path) -> Path:
    """Write config.json + the kept layers' de-quantised weights of a GGUF file into ``folder``."""
    from safetensors.torch import save_file

    hf_config = gguf_model_config(gguf_path)
    _check_llm_dim(llm_dim, hf_config.hidden_size, name)
    weights = read_gguf_weights(gguf_path, hf_config, keep_layers=truncated_config(
        hf_config, llm_layers, name).num_hidden_layers)
    if hasattr(hf_config, "quantization_config"):
        del hf_config.quantization_config
    hf_config.save_pretrained(folder)
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


def _load_tokenizer(source: WeightsSource, config: BackboneConfig) -> Any:
    from transformers import AutoTokenizer

    kwargs: dict[str, Any] = {"local_files_only": True, "trust_remote_code": bool(config.trust_remote_code)}
    if source.gguf_file:
        kwargs["gguf_file"] = source.gguf_file
    try:
        with quiet_transformers():
            return AutoTokenizer.from_pretrained(str(source.folder), **kwargs)
    except (OSError, ValueError) as error:
        raise BackboneError(f"Cannot load the tokenizer of {source.label}: {error}") from None


def _ensure_pad_token(tokenizer: Any, embedding_rows: int, label: str) -> str | None:
    """Give the tokenizer a pad token whose id has a row in the embedding table.

    Padded positions are masked, so any in-range token pads; an id past the table (a tokenizer with
    more tokens than the model's ``vocab_size``) would fail at the first step with an IndexError.
    Returns a note when the pad token had to be replaced.
    """
    def in_range(token: str | None) -> bool:
        return token is not None and 0 <= int(tokenizer.convert_tokens_to_ids(token)) < embedding_rows

    if tokenizer.pad_token is not None and in_range(tokenizer.pad_token):
        return None
    previous = tokenizer.pad_token
    for candidate in (tokenizer.eos_token, tokenizer.unk_token, tokenizer.bos_token):
        if in_range(candidate):
            tokenizer.pad_token = candidate
            if previous is None:
                return None
            return (f"The tokenizer's pad token {previous!r} (id {tokenizer.convert_tokens_to_ids(previous)}) has no "
                    f"row in the {embedding_rows}-row embedding table; prompts are padded with {candidate!r} "
                    "instead (padded positions are masked).")
    if previous is not None:
        raise BackboneError(
            f"The tokenizer of {label} pads with token id {tokenizer.convert_tokens_to_ids(previous)}, but the "
            f"model's embedding table has {embedding_rows} rows (ids 0..{embedding_rows - 1}), and it has no "
            "end-of-sequence, unknown or beginning token inside that range to pad with instead.")
    raise BackboneError("The tokenizer has no pad, end-of-sequence or unknown token to pad prompts with.")


def _truncate_built(model: torch.nn.Module, llm_layers: int, name: str) -> None:
    """Drop layers of an already built (tiny) model; its config is updated to match.

    The config is updated in place, not replaced: the layers hold the same object, so a later
    attention switch (sdpa <-> eager) reaches them through it.
    """
    truncated = truncated_config(model.config, llm_layers, name)
    layers = transformer_layers(model)
    del layers[llm_layers:]
    model.config.num_hidden_layers = truncated.num_hidden_layers
    if hasattr(truncated, "layer_types"):
        model.config.layer_types = truncated.layer_types


def _notes(spec: BackboneSpec, model: torch.nn.Module, config: BackboneConfig, quantized: int,
           source: WeightsSource | None) -> list[str]:
    notes = []
    if spec.tiny:
        notes.append("Tiny random backbone: its weights are untrained, so forecasts show the mechanics, not skill.")
    if source is not None and (source.gguf_file or (source.folder / CONVERTED_MARKER).is_file()):
        notes.append("Weights de-quantised from a GGUF file: they carry that file's quantisation error.")
    if not family_info(spec.family).causal:
        notes.append("Bidirectional encoder: prompt tokens also attend to the patches after them.")
    if config.load_in_4bit:
        left = [n for n in unquantized_projections(model) if n]
        if left:
            notes.append(f"4-bit: {len(left)} projection layers stayed in full precision "
                         f"(e.g. {', '.join(left[:3])}).")
        elif spec.family == "gpt2":
            notes.append(f"4-bit: GPT-2's Conv1D projections were converted to 4-bit Linear layers "
                         f"({quantized} in all; transformers transposes their weights when quantising).")
        notes.append("4-bit: embeddings and norms stay in the compute dtype; NF4 weights change outputs slightly.")
    return notes


def checked_load_options(config: BackboneConfig, device: str | torch.device | None, dtype: str | torch.dtype | None,
                         attn_implementation: str) -> tuple[BackboneSpec, torch.device, torch.dtype]:
    """(catalogue spec, device, weights' dtype) for a load, after checking the config and attention choice."""
    config.validate()
    if attn_implementation not in ATTENTION_IMPLEMENTATIONS:
        raise BackboneError(f"attn_implementation must be one of {', '.join(ATTENTION_IMPLEMENTATIONS)}, "
                            f"not {attn_implementation!r}.")
    spec = resolve_backbone_spec(config.name)
    device = resolve_device(device)
    return spec, device, _resolve_dtype(dtype, device, config.load_in_4bit)


def load_backbone(config: BackboneConfig, device: str | torch.device | None = None,
                  attn_implementation: str = "sdpa", dtype: str | torch.dtype | None = None) -> Backbone:
    """Load ``config.name`` frozen, in eval mode, truncated to ``config.llm_layers``, on ``device``.

    ``attn_implementation``: "sdpa" normally, "eager" when the LLM's attention maps are needed.
    ``dtype``: weights' dtype for non-quantised loads (default float32; 4-bit uses the compute dtype).
    """
    spec, device, torch_dtype = checked_load_options(config, device, dtype, attn_implementation)

    source: WeightsSource | None = None
    repaired: str | None = None  # a message when an older conversion was repaired on the way
    if spec.tiny:
        tokenizer = tiny_tokenizer(spec.name)
        if config.load_in_4bit:
            # Quantise through the same from_pretrained path as real models: save, then reload in 4-bit.
            with tempfile.TemporaryDirectory(prefix="timellm-tiny-") as folder, quiet_transformers():
                save_tiny_backbone(spec.name, folder)
                model = _from_pretrained(spec, WeightsSource(Path(folder), None, spec.name), config, device,
                                         torch_dtype, attn_implementation)
        else:
            model = build_tiny_model(spec.name, attn_implementation)
            _check_llm_dim(config.llm_dim, model.config.hidden_size, spec.name)
            _truncate_built(model, int(config.llm_layers), spec.name)
            model = model.to(device=device, dtype=torch_dtype)
    else:
        source = weights_source(spec)
        repaired = None if source.gguf_file else repair_converted_folder(Path(source.folder))
        if repaired:
            logger.warning(repaired)
        model = _from_pretrained(spec, source, config, device, torch_dtype, attn_implementation)
        tokenizer = _load_tokenizer(source, config)
    return finish_backbone(spec, model, tokenizer, config, source, [repaired] if repaired else [])


def finish_backbone(spec: BackboneSpec, model: torch.nn.Module, tokenizer: Any, config: BackboneConfig,
                    source: WeightsSource | None, notes: list[str], random_init_seed: int | None = None) -> Backbone:
    """A loaded model and tokenizer -> the frozen ``Backbone`` (eval mode, no gradients, a pad token)."""
    pad_note = _ensure_pad_token(tokenizer, int(model.get_input_embeddings().weight.shape[0]), spec.name)

    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    hf_config = model.config
    quantized = count_quantized_linear(model)
    if config.load_in_4bit and quantized == 0:
        raise BackboneError(f"4-bit loading of {spec.name} produced no 4-bit layers. "
                            "Load it without 4-bit (load_in_4bit=False).")
    return Backbone(
        spec=spec, model=model, tokenizer=tokenizer, family=spec.family,
        hidden_size=int(hf_config.hidden_size), num_layers=layer_count(hf_config),
        vocab_size=int(model.get_input_embeddings().weight.shape[0]),
        causal=family_info(spec.family).causal, load_in_4bit=bool(config.load_in_4bit),
        quantized_linear_layers=quantized, memory_bytes=storage_bytes(model),
        notes=[note for note in (*notes, pad_note) if note] + _notes(spec, model, config, quantized, source),
        random_init_seed=random_init_seed)
