"""dropout(softmax(Q K^T)) V over the text prototypes, a block of rows at a time (docs/how-it-works.md §2, step 8).

The reprogramming attention A is (H, B*N*P, S): at the benchmark's size (8 heads, 3584 patch rows,
1000 prototypes) each float copy of it is 115 MB, and the plain computation holds several at once
(scores, A, the dropout noise, the dropped A) and keeps A for the backward pass. When nobody asks
for the map (no trace), this function instead computes A for a block of rows, uses it and drops
it; the backward pass recomputes each block from Q and K (a few GFLOP) instead of reading a stored
A. What it keeps between forward and backward: Q, K, V and, with dropout, a boolean keep-mask.

Same numbers as the plain ops: the keep-mask is one ``bernoulli_`` draw over the whole (H, M, S)
shape, which is the draw ``torch.nn.functional.dropout`` makes (same random stream, same mask), and
the kept entries are scaled by the same float ``1 / (1 - p)``. Scores are computed in the inputs'
dtype, softmax in float32 (as autocast does), the mix in the values' dtype.

The fast path (``quick_mask``) draws the mask from raw random bits instead, 16 bits an entry
(p rounded to a multiple of 1/65536): 63 ms instead of 167 ms for the benchmark's 29M entries on
the 2-core CPU. Another random stream, so other dropped entries than the exact path's.
"""

from __future__ import annotations

import torch

BLOCK_ELEMENTS = 1 << 20  # entries of A per block (4 MiB in float32)


def _keep_scale(p: float) -> torch.Tensor:
    """The float32 factor dropout gives kept entries: 1 / (1 - p) computed as torch does."""
    return torch.tensor(1.0, dtype=torch.float32) / torch.tensor(1.0 - p, dtype=torch.float32)


def draw_keep_mask(shape: tuple[int, ...], p: float, device: torch.device, quick: bool = False) -> torch.Tensor:
    """A boolean mask, True with probability 1 - p: F.dropout's draw, or (``quick``) from 16-bit random words."""
    if not quick:
        return torch.empty(shape, dtype=torch.bool, device=device).bernoulli_(1 - p)
    count = 1
    for size in shape:
        count *= size
    words = torch.empty((count + 3) // 4, dtype=torch.int64, device=device).random_(-2 ** 63, None)  # all 64 bits
    threshold = round(p * 65536) - 32768  # an int16 word is below it with probability p (to 1/65536)
    return (words.view(torch.int16)[:count] >= threshold).view(shape)


def _blocks(heads: int, rows: int, columns: int):
    step = max(1, BLOCK_ELEMENTS // max(columns, 1))
    for head in range(heads):
        for start in range(0, rows, step):
            yield head, slice(start, min(start + step, rows))


class _BlockwisePrototypeAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, p: float,
                quick_mask: bool) -> torch.Tensor:
        heads, rows, _ = queries.shape
        columns = keys.shape[1]
        keep = draw_keep_mask((heads, rows, columns), p, queries.device, quick_mask) if p > 0 else None  # (H, M, S)
        scale = _keep_scale(p).to(queries.device) if p > 0 else None
        output = queries.new_empty((heads, rows, values.shape[2]), dtype=values.dtype)  # (H, M, E)
        device_type = queries.device.type
        with torch.autocast(device_type=device_type, enabled=False):
            for head, block in _blocks(heads, rows, columns):
                attention = torch.softmax((queries[head, block] @ keys[head].T).float(), dim=-1)  # (m, S)
                if keep is not None:  # in place: x * 1 * scale == x * scale and x * 0 * scale == 0, exactly
                    attention.mul_(keep[head, block]).mul_(scale)
                torch.matmul(attention.to(values.dtype), values[head], out=output[head, block])
        ctx.save_for_backward(queries, keys, values, keep)
        ctx.p = p
        return output

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        queries, keys, values, keep = ctx.saved_tensors
        heads, rows, _ = queries.shape
        columns = keys.shape[1]
        scale = _keep_scale(ctx.p).to(queries.device) if keep is not None else None
        grad_queries = torch.zeros(queries.shape, dtype=torch.float32, device=queries.device)
        grad_keys = torch.zeros(keys.shape, dtype=torch.float32, device=keys.device)
        grad_values = torch.zeros(values.shape, dtype=torch.float32, device=values.device)
        keys32, values32, grad32 = keys.float(), values.float(), grad_output.float()
        with torch.autocast(device_type=queries.device.type, enabled=False):
            for head, block in _blocks(heads, rows, columns):
                query = queries[head, block]
                attention = torch.softmax((query @ keys[head].T).float(), dim=-1)  # (m, S), recomputed
                dropped = attention if keep is None else attention * keep[head, block] * scale
                grad_values[head] += dropped.to(values.dtype).float().T @ grad32[head, block]
                grad_attention = grad32[head, block] @ values32[head].T  # (m, S)
                if keep is not None:
                    grad_attention.mul_(keep[head, block]).mul_(scale)
                # softmax backward: A * (dA - sum(dA * A))
                grad_scores = attention * (grad_attention - (grad_attention * attention).sum(dim=-1, keepdim=True))
                grad_queries[head, block] = grad_scores @ keys32[head]
                grad_keys[head] += grad_scores.T @ query.float()
        return (grad_queries.to(queries.dtype), grad_keys.to(keys.dtype), grad_values.to(values.dtype), None, None)


def blockwise_prototype_attention(queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                                  p: float = 0.0, quick_mask: bool = False) -> torch.Tensor:
    """queries (H, M, E) already scaled, keys and values (H, S, E), dropout p -> (H, M, E), without the map."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout p must be in [0, 1), got {p}")
    return _BlockwisePrototypeAttention.apply(queries, keys, values, float(p), bool(quick_mask))
