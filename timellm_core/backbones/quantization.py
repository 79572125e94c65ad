"""4-bit NF4 through bitsandbytes, and measuring what a loaded model really occupies.

NF4 with double quantisation stores each quantised weight in half a byte, plus one uint8 scale per
block of 64 weights and a float32 scale per 256 such scales: about 0.516 bytes per weight.
Embeddings, norms and biases stay in the compute dtype. On CUDA with bf16 support the compute dtype
is bfloat16; on CPU it is float32 (bitsandbytes' CPU kernels de-quantise to it).
"""

from __future__ import annotations

import logging
import math
import sys
import warnings
from typing import Any

import torch

from timellm_core.errors import BackboneError

CONTINUE_WITHOUT_4BIT = ("To continue in 16/32-bit instead, load without 4-bit "
                         "(load_in_4bit=False; drop --load_in_4bit on the command line).")


def compute_dtype_for(device: torch.device) -> torch.dtype:
    """bfloat16 on a CUDA device that supports it, else float32."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def require_bitsandbytes() -> Any:
    """Import bitsandbytes or stop with a message that offers continuing without 4-bit."""
    # bitsandbytes' CPU backend logs a warning when the optional `kernels` package (which would fetch
    # a kernel from the hub) is absent; its built-in kernels are used instead, so hide that warning.
    cpu_logger = logging.getLogger("bitsandbytes.backends.cpu.ops")
    previous = cpu_logger.level
    cpu_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import bitsandbytes
    except Exception as error:  # ImportError, or a broken native library raising anything
        raise BackboneError(
            f"4-bit loading needs the bitsandbytes package, which is not usable here ({error}). "
            f"Install it (pip install bitsandbytes) or: {CONTINUE_WITHOUT_4BIT}") from None
    finally:
        cpu_logger.setLevel(previous)
    return bitsandbytes


def nf4_config(device: torch.device) -> Any:
    """The BitsAndBytesConfig used for every 4-bit load: NF4, double quantisation, per-device compute dtype."""
    require_bitsandbytes()
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute_dtype_for(device))


def _linear4bit_class() -> type | None:
    """bitsandbytes' Linear4bit, or None when bitsandbytes was never imported (then no model has one)."""
    bnb = sys.modules.get("bitsandbytes")
    if bnb is None:
        return None
    return bnb.nn.Linear4bit


def parameter_count(model: torch.nn.Module) -> int:
    """Weights in the model, counting a packed 4-bit matrix by its original shape."""
    total = 0
    for parameter in model.parameters():
        state = getattr(parameter, "quant_state", None)
        total += math.prod(state.shape) if state is not None else parameter.numel()
    return total


def count_quantized_linear(model: torch.nn.Module) -> int:
    """Number of bitsandbytes ``Linear4bit`` modules in ``model``."""
    linear4bit = _linear4bit_class()
    if linear4bit is None:
        return 0
    return sum(isinstance(module, linear4bit) for module in model.modules())


def unquantized_projections(model: torch.nn.Module) -> list[str]:
    """Names of weight-matrix layers inside the transformer blocks that are still in full precision.

    ``nn.Linear`` and GPT-2's ``Conv1D`` both count; embeddings and norms are kept in full
    precision on purpose and are not listed.
    """
    from transformers.pytorch_utils import Conv1D

    linear4bit = _linear4bit_class()
    found = []
    for name, module in model.named_modules():
        if linear4bit is not None and isinstance(module, linear4bit):
            continue
        if isinstance(module, (torch.nn.Linear, Conv1D)) and "pooler" not in name:
            found.append(name)
    return found


def _quant_state_bytes(state: Any, seen: set[int]) -> int:
    """Bytes of the tensors a bitsandbytes QuantState holds (scales, code book, nested state)."""
    total = 0
    for attribute in ("absmax", "code", "offset"):
        tensor = getattr(state, attribute, None)
        if isinstance(tensor, torch.Tensor) and tensor.data_ptr() not in seen:
            seen.add(tensor.data_ptr())
            total += tensor.numel() * tensor.element_size()
    nested = getattr(state, "state2", None)
    if nested is not None:
        total += _quant_state_bytes(nested, seen)
    return total


def storage_bytes(model: torch.nn.Module) -> int:
    """Measured bytes of parameters and buffers as stored, shared tensors counted once.

    A 4-bit weight is a uint8 tensor holding two weights per byte, so ``numel * element_size``
    already counts the packed storage; its quantisation scales live on ``weight.quant_state``
    and are added here.
    """
    seen: set[int] = set()
    total = 0
    for tensor in list(model.parameters()) + list(model.buffers()):
        if tensor.device.type == "meta" or tensor.data_ptr() in seen:
            continue
        seen.add(tensor.data_ptr())
        total += tensor.numel() * tensor.element_size()
        state = getattr(tensor, "quant_state", None)
        if state is not None:
            total += _quant_state_bytes(state, seen)
    return total


def disable_cpu_packing(model: torch.nn.Module) -> int:
    """Keep bitsandbytes from repacking 4-bit weights for its CPU inference kernel; returns layers switched.

    bitsandbytes 0.50 repacks a weight in place on the first CPU forward without gradients (on
    AVX512-BF16 CPUs). After that the layer only has an inference kernel: a later forward with
    gradients fails ("a view of a leaf Variable ... in-place operation") or would not reach the
    inputs, and the repacking itself fails unless out_features % 32 == 0 and in_features % 64 == 0.
    Time-LLM alternates training with validation, so the generic de-quantising kernel (which has a
    backward) is kept everywhere on CPU. CUDA is not affected.
    """
    linear4bit = _linear4bit_class()
    switched = 0
    for module in model.modules():
        if linear4bit is not None and isinstance(module, linear4bit):
            if getattr(module, "support_avx512bf16_for_cpu", False):
                module.support_avx512bf16_for_cpu = False
                switched += 1
    return switched
