"""The frozen LLM's gated MLP, down(silu(gate(x)) * up(x)), recomputed in the backward pass.

For this line autograd keeps three (rows, intermediate) tensors per LLaMA/Qwen2 layer: gate(x),
silu(gate(x)) and up(x); with SmolLM2 (1536 wide) and 3584 patch rows that is 66 MB a layer, the
largest part of a training step's activations. Here the gated product is checkpointed: the forward
keeps only x (576 wide, 8 MB), and the backward pass runs gate(x) and up(x) again before going
through them. Cost: two of the MLP's three matrix products once more for the patch positions
(about 8% of an exact-path training step at the benchmark's size); saving: 215 MB at 6 layers.
The recomputation repeats the same operations on the same inputs, so the gradients are the same
bit for bit (nothing random runs inside).

``lighter_gated_mlps(model)`` swaps the forward of every such MLP for the duration of a call (the
LLM runner uses it for the patch positions, which run with autograd); the caller holds the
backbone's lock, as for the attention switch.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

_SILU_CLASSES = ("SiLU", "SiLUActivation")


def is_gated_silu_mlp(module: nn.Module) -> bool:
    """A LLaMA-style MLP: gate/up/down projections and a SiLU, frozen, with no hooks of its own."""
    return (all(isinstance(getattr(module, name, None), nn.Module) for name in ("gate_proj", "up_proj", "down_proj"))
            and type(getattr(module, "act_fn", None)).__name__ in _SILU_CLASSES
            and type(module).__name__.endswith("MLP")
            and not any(parameter.requires_grad for parameter in module.parameters())
            and not module._forward_hooks and not module._forward_pre_hooks and "forward" not in vars(module))


def _light_forward(module: nn.Module):
    def gated(x: torch.Tensor) -> torch.Tensor:
        return module.act_fn(module.gate_proj(x)) * module.up_proj(x)  # (rows, intermediate)

    def forward(x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            hidden = checkpoint(gated, x, use_reentrant=False, preserve_rng_state=False)
        else:
            hidden = gated(x)
        return module.down_proj(hidden)

    return forward


@contextmanager
def lighter_gated_mlps(model: nn.Module) -> Iterator[int]:
    """Within the block, the model's gated SiLU MLPs recompute gate(x) and up(x) for backward; yields how many."""
    swapped = [module for module in model.modules() if is_gated_silu_mlp(module)]
    for module in swapped:
        module.forward = _light_forward(module)
    try:
        yield len(swapped)
    finally:
        for module in swapped:
            del module.forward
