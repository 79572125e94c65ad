"""dropout(A) @ V for the reprogramming attention, keeping less for the backward pass.

``torch.bmm(dropout(A), V)`` makes autograd keep three (H, B*N*P, S) float tensors: the softmax
output A (for the softmax backward), the dropout noise and the dropped A. This function draws
the same noise the same way as ``torch.nn.functional.dropout`` on these tensors (so results and
the random stream are unchanged), but keeps only A (which the softmax keeps anyway) and a
boolean keep-mask, and rebuilds the dropped A in the backward pass. At the benchmark's size that
is about 200 MB less per training step. Used in training without autocast; otherwise plain ops.
"""

from __future__ import annotations

import torch


class _DropoutThenBmm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, attention: torch.Tensor, values: torch.Tensor, p: float) -> torch.Tensor:
        noise = torch.empty_like(attention).bernoulli_(1 - p)  # as F.dropout draws it
        keep = noise.bool()
        noise.div_(1 - p)
        output = torch.bmm(attention * noise, values)  # (H, M, E)
        ctx.save_for_backward(attention, keep, values)
        ctx.p = p
        return output

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        attention, keep, values = ctx.saved_tensors
        scale = keep.to(attention.dtype).div_(1 - ctx.p)  # the forward's noise, rebuilt
        grad_attention = grad_values = None
        if ctx.needs_input_grad[0]:
            grad_attention = torch.bmm(grad_output, values.transpose(1, 2)).mul_(scale)  # (H, M, S)
        if ctx.needs_input_grad[1]:
            grad_values = torch.bmm((attention * scale).transpose(1, 2), grad_output)  # (H, S, E)
        return grad_attention, grad_values, None


def dropout_then_bmm(attention: torch.Tensor, values: torch.Tensor, dropout: torch.nn.Dropout) -> torch.Tensor:
    """bmm(dropout(attention), values): attention (H, M, S), values (H, S, E) -> (H, M, E)."""
    p = float(dropout.p)
    fused = (dropout.training and 0.0 < p < 1.0 and torch.is_grad_enabled()
             and not torch.is_autocast_enabled(attention.device.type) and attention.dtype == values.dtype)
    if not fused:
        return torch.bmm(dropout(attention), values)
    return _DropoutThenBmm.apply(attention, values, p)
