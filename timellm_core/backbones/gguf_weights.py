"""De-quantise a GGUF file's tensors, only those of the layers that will be kept.

transformers' own GGUF loading de-quantises every tensor of the file and then keeps what the
(truncated) model asks for: 73 s and the whole model in memory to keep 6 of Qwen 2.5 0.5B's 24
layers. Here the file is memory-mapped and only the embeddings, the final norm and the blocks
``blk.0`` .. ``blk.{K-1}`` are de-quantised. transformers' name map and tensor processors (which
undo llama.cpp's permutation of LLaMA's query/key rows) are reused, so the weights are the ones
transformers would load, under the names of its ``*ForCausalLM`` class.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from timellm_core.backbones.families import truncated_config
from timellm_core.backbones.gguf_header import GGUFTensorInfo, read_gguf_tensor_directory
from timellm_core.errors import BackboneError

# Types stored as plain numbers; every other type is blocks of bytes that ``dequantize`` decodes.
_PLAIN_TYPES = {"F16": np.float16, "F32": np.float32, "F64": np.float64, "I8": np.int8, "I16": np.int16,
                "I32": np.int32, "I64": np.int64}
_BLOCK = re.compile(r"^blk\.(\d+)\.")
TensorProgress = Callable[[int, int], None]  # (tensors done, tensors to do)


def gguf_model_config(path: str | Path) -> Any:
    """The transformers config that a GGUF file's metadata describes (no tensor is read)."""
    from transformers import AutoConfig

    path = Path(path)
    try:
        return AutoConfig.from_pretrained(str(path.parent), gguf_file=path.name, local_files_only=True)
    except (OSError, ValueError, KeyError) as error:
        raise BackboneError(f"Cannot read the model config of {path}: {error}") from None


def _block_index(name: str) -> int | None:
    match = _BLOCK.match(name)
    return int(match.group(1)) if match else None


def _tensor_data(file_bytes: np.ndarray, info: GGUFTensorInfo, path: Path) -> np.ndarray:
    """The stored bytes of one tensor as the array gguf's ``dequantize`` expects (as GGUFReader builds it)."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, quant_shape_to_byte_shape

    kind = GGMLQuantizationType(info.type_id)
    count = int(np.prod(info.dims))
    shape = tuple(reversed(info.dims))
    block_size, type_size = GGML_QUANT_SIZES[kind]
    n_bytes = count * type_size // block_size
    if info.offset + n_bytes > file_bytes.size:
        raise BackboneError(f"{path} is truncated: tensor {info.name} runs past the end of the file. Download it again.")
    raw = file_bytes[info.offset:info.offset + n_bytes]
    plain = _PLAIN_TYPES.get(kind.name)
    if plain is not None:
        return raw.view(plain).reshape(shape)
    return raw.reshape(quant_shape_to_byte_shape(shape, kind))


def _gguf_names(skeleton: torch.nn.Module, processor: Any, architecture: str, blocks: int) -> dict[str, str]:
    """GGUF tensor name -> transformers name, for every weight of ``skeleton``.

    One name map for the whole model (transformers' ``get_gguf_hf_weights_map`` builds one per
    submodule: 18 s for SmolLM2); names are tried with and without the ``model.`` prefix.
    """
    from gguf import MODEL_ARCH_NAMES, get_tensor_name_map

    arch = next((key for key, value in MODEL_ARCH_NAMES.items() if value == architecture), None)
    if arch is None:
        raise BackboneError(f"GGUF architecture {architecture!r} is not known to the installed gguf package.")
    name_map = get_tensor_name_map(arch, blocks)
    names = {}
    for hf_name in skeleton.state_dict():
        stem, _, suffix = processor.preprocess_name(hf_name).rpartition(".")
        for candidate in (stem, stem.removeprefix("model.")):
            gguf_name = name_map.get_name(candidate)
            if gguf_name is not None:
                names[f"{gguf_name}.{suffix}"] = hf_name
                break
    return names


def read_gguf_weights(path: str | Path, config: Any, keep_layers: int | None = None,
                      progress: TensorProgress | None = None) -> dict[str, torch.Tensor]:
    """float32 tensors of the first ``keep_layers`` blocks (all when None), embeddings and final norm.

    Keys are those of the ``*ForCausalLM`` class ("model.layers.0.self_attn.q_proj.weight", ...),
    the base model's only: an output matrix (``lm_head``) is never read, as Time-LLM does not use
    it. A weight the base model needs and the file lacks is a BackboneError: nothing is left to
    random initialisation.
    """
    from gguf import GGMLQuantizationType, dequantize
    from transformers import AutoModelForCausalLM
    from transformers.modeling_gguf_pytorch_utils import TENSOR_PROCESSORS, TensorProcessor

    path = Path(path)
    kept = int(config.num_hidden_layers if keep_layers is None else keep_layers)
    kept_config = truncated_config(config, kept, str(path))
    with torch.device("meta"):  # names and shapes only, no memory
        skeleton = AutoModelForCausalLM.from_config(kept_config)
    header, directory = read_gguf_tensor_directory(path)
    processor = TENSOR_PROCESSORS.get(header.get("general.architecture"), TensorProcessor)(config=kept_config.to_dict())
    names = _gguf_names(skeleton, processor, str(header.get("general.architecture")), kept)

    wanted = [info for info in directory  # the base model's weights only: an LM head is never used
              if info.name in names and not names[info.name].startswith("lm_head.")
              and (_block_index(info.name) is None or _block_index(info.name) < kept)]
    weights: dict[str, torch.Tensor] = {}
    file_bytes = np.memmap(path, dtype=np.uint8, mode="r")
    for done, info in enumerate(wanted):
        values = dequantize(_tensor_data(file_bytes, info, path), GGMLQuantizationType(info.type_id))
        values = processor.process(weights=values, name=info.name).weights
        weights[names[info.name]] = torch.from_numpy(np.array(values, dtype=np.float32))  # a copy, off the map
        if progress is not None:
            progress(done + 1, len(wanted))
    del file_bytes

    expected = skeleton.state_dict()
    missing = [key for key in expected if key not in weights and not key.startswith("lm_head.")]
    if missing:
        raise BackboneError(f"{path} lacks weights the model needs: {', '.join(missing[:6])}"
                            + (f" ... and {len(missing) - 6} more" if len(missing) > 6 else "")
                            + ". The file is incomplete or of an architecture this project does not read.")
    wrong = [f"{key} {tuple(weights[key].shape)} (expected {tuple(expected[key].shape)})"
             for key in weights if key in expected and weights[key].shape != expected[key].shape]
    if wrong:
        raise BackboneError(f"{path} holds tensors of unexpected shapes: {', '.join(wrong[:4])}.")
    return weights
