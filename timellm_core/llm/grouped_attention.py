"""Scaled dot-product attention that lets torch handle grouped key/value heads (LLaMA, Qwen2).

Transformers' ``sdpa`` path copies the key/value heads (``repeat_kv``) whenever an attention mask
is given, and autograd then keeps those copies for the backward pass: for SmolLM2 (9 query heads
over 3 key/value heads) that triples the stored keys and values. On the CPU, torch's own
``enable_gqa`` gives the same result without the copies, mask included. Anything else (no
grouping, no mask, another device, extra arguments) goes to transformers' ``sdpa`` unchanged.

In bfloat16 on the CPU (the fast path), torch's fused kernel is slower than plain matrix
products for these short sequences (measured at the benchmark's shapes: 45 vs 25 ms for the
statistics of one layer, 115 vs 66 ms for the patches forward and backward), so there the
attention is written out: grouped heads by reshaping the queries (no key/value copies), all in
bfloat16.

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
    if dropout == 0.0 and _in_bfloat16(query):
        return _bf16_matmul_attention(query, key, value, attention_mask, groups, scaling), None
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


def _in_bfloat16(query: torch.Tensor) -> bool:
    """bfloat16 inputs, or float32 ones (rotary embeddings promote) that CPU autocast would cast to bfloat16."""
    return query.dtype == torch.bfloat16 or (
        torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16)


def _bf16_matmul_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor,
                           groups: int, scaling: float | None) -> torch.Tensor:
    """query (B, H, Lq, hd), key/value (B, KV, Lk, hd), boolean mask (B, 1, Lq, Lk) -> (B, Lq, H, hd).

    All in bfloat16 (torch's CPU softmax accumulates in float32 internally)."""
    batch, heads, length, head_dim = query.shape
    kv_heads = key.shape[1]
    scale = scaling if scaling is not None else head_dim ** -0.5
    query, key, value = query.to(torch.bfloat16), key.to(torch.bfloat16), value.to(torch.bfloat16)
    grouped = (query * scale).reshape(batch, kv_heads, groups * length, head_dim)  # head h = kv * groups + g
    scores = torch.matmul(grouped, key.transpose(-1, -2)).view(batch, kv_heads, groups, length, -1)
    scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))  # (B, KV, G, Lq, Lk)
    weights = torch.softmax(scores, dim=-1).view(batch, kv_heads, groups * length, -1)
    output = torch.matmul(weights, value).view(batch, heads, length, head_dim)
    return output.transpose(1, 2).contiguous()
