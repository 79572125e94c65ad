"""Scaled dot-product attention that lets torch handle grouped key/value heads (LLaMA, Qwen2).

Transformers' ``sdpa`` path copies the key/value heads (``repeat_kv``) whenever an attention mask
is given, and autograd then keeps those copies for the backward pass: for SmolLM2 (9 query heads
over 3 key/value heads) that triples the stored keys and values. On the CPU, torch's own
``enable_gqa`` gives the same result without the copies, mask included. Anything else (no
grouping, no mask, another device, extra arguments) goes to transformers' ``sdpa`` unchanged.

Registered with transformers' attention and mask interfaces under ``GROUPED_SDPA``; the LLM runner
selects it for the calls it makes, per call.
"""

from __future__ import annotations

import threading
from typing import Any

import torch

GROUPED_SDPA = "timellm_grouped_sdpa"
_registered = False
_register_lock = threading.Lock()


def grouped_sdpa_attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                           attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                           **kwargs: Any) -> tuple[torch.Tensor, None]:
    """query (B, H, Lq, hd), key/value (B, KV, Lk, hd), boolean mask (B, 1, Lq, Lk) -> (B, Lq, H, hd)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    groups = getattr(module, "num_key_value_groups", 1)
    plain = (groups == 1 or attention_mask is None or attention_mask.dtype != torch.bool
             or query.device.type != "cpu"
             or any(kwargs.get(name) is not None for name in ("softcap", "position_bias", "sliding_window")))
    if plain:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    output = torch.nn.functional.scaled_dot_product_attention(
        query, key, value, attn_mask=attention_mask, dropout_p=dropout, scale=scaling, enable_gqa=True)
    return output.transpose(1, 2).contiguous(), None


def register_grouped_sdpa() -> str:
    """Make ``GROUPED_SDPA`` a valid attention implementation name (once per process)."""
    global _registered
    with _register_lock:
        if not _registered:
            from transformers import AttentionInterface
            from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

            AttentionInterface.register(GROUPED_SDPA, grouped_sdpa_attention)
            AttentionMaskInterface.register(GROUPED_SDPA, sdpa_mask)
            _registered = True
    return GROUPED_SDPA
