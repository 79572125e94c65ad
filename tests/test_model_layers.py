"""The layers of the Time-LLM forward pass (docs/how-it-works.md §2), each against a hand computation."""

from __future__ import annotations

import math

import pytest
import torch

from timellm_core.model.head import FlattenHead
from timellm_core.model.normalization import InstanceNormalization
from timellm_core.model.patch_embedding import PatchEmbedding
from timellm_core.model.patching import Patching, patch_count
from timellm_core.model.prototypes import TextPrototypes
from timellm_core.model.reprogramming import ReprogrammingLayer


def test_normalize_denormalize_round_trip_and_statistics_per_call():
    torch.manual_seed(0)
    x = torch.randn(3, 40, 4) * 5 + 2
    normalization = InstanceNormalization()
    normalized, statistics = normalization.normalize(x)
    assert torch.allclose(normalized.mean(dim=1), torch.zeros(3, 4), atol=1e-5)
    assert torch.allclose(normalized.var(dim=1, unbiased=False), torch.ones(3, 4), atol=1e-3)
    expected_stdev = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + 1e-5)
    assert torch.allclose(statistics.stdev, expected_stdev)
    assert torch.allclose(normalization.denormalize(normalized, statistics), x, atol=1e-5)
    # Statistics are returned, not stored: the module holds no tensors after a call.
    assert not [value for value in vars(normalization).values() if isinstance(value, torch.Tensor)]
    assert not list(normalization.buffers())
    # ... and are detached, so gradients do not flow through them.
    x.requires_grad_(True)
    _, statistics = normalization.normalize(x)
    assert not statistics.mean.requires_grad and not statistics.stdev.requires_grad


@pytest.mark.parametrize("seq_len,patch_len,stride,expected", [
    (512, 16, 8, 64), (96, 16, 8, 12), (100, 16, 8, 12), (336, 16, 8, 42), (17, 16, 8, 2), (50, 1, 1, 51),
])
def test_patch_count_follows_the_spec_formula_and_the_unfold(seq_len, patch_len, stride, expected):
    assert patch_count(seq_len, patch_len, stride) == expected == int((seq_len - patch_len) / stride + 2)
    patches = Patching(patch_len, stride)(torch.randn(2, 3, seq_len))
    assert patches.shape == (2 * 3, expected, patch_len)


def test_patching_replicates_the_end_and_keeps_channels_apart():
    series = torch.arange(10, dtype=torch.float32).view(1, 1, 10).repeat(1, 2, 1)
    series[0, 1] += 100
    patches = Patching(patch_len=4, stride=3)(series)  # padded: 0..9, 9, 9, 9
    assert patches.shape == (2, 4, 4)
    assert patches[0].tolist() == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9], [9, 9, 9, 9]]
    assert patches[1, 0].tolist() == [100, 101, 102, 103]


def test_patch_embedding_is_a_circular_convolution_over_patches():
    torch.manual_seed(0)
    embedding = PatchEmbedding(patch_len=2, d_model=3, dropout=0.0)
    weight = embedding.token_convolution.weight  # (d_model, patch_len, 3)
    assert embedding.token_convolution.bias is None
    patches = torch.randn(1, 4, 2)  # (B*N, P, patch_len)
    out = embedding(patches)
    expected = torch.zeros(1, 4, 3)
    for p in range(4):
        for o in range(3):
            total = 0.0
            for c in range(2):
                for k in range(3):
                    total += weight[o, c, k].item() * patches[0, (p + k - 1) % 4, c].item()
            expected[0, p, o] = total
    assert torch.allclose(out, expected, atol=1e-6)


def test_patch_embedding_init_is_kaiming_normal_fan_in():
    torch.manual_seed(0)
    embedding = PatchEmbedding(patch_len=16, d_model=256, dropout=0.0)
    fan_in = 16 * 3
    gain = math.sqrt(2.0 / (1 + 0.01 ** 2))  # leaky_relu, default slope
    std = embedding.token_convolution.weight.std().item()
    assert abs(std - gain / math.sqrt(fan_in)) < 0.02


def _naive_reprogramming(layer: ReprogrammingLayer, patches: torch.Tensor, prototypes: torch.Tensor):
    """Spec 2.8 written head by head with explicit softmax."""
    heads, d_keys = layer.n_heads, layer.d_keys
    q = layer.query_projection(patches)
    k = layer.key_projection(prototypes)
    v = layer.value_projection(prototypes)
    outputs, maps = [], []
    for h in range(heads):
        part = slice(h * d_keys, (h + 1) * d_keys)
        scores = q[:, :, part] @ k[:, part].T / math.sqrt(d_keys)  # (B*N, P, S)
        attention = scores.exp() / scores.exp().sum(dim=-1, keepdim=True)
        maps.append(attention)
        outputs.append(attention @ v[:, part])
    return layer.out_projection(torch.cat(outputs, dim=-1)), torch.stack(maps, dim=1)


def test_reprogramming_matches_the_spec_and_attention_rows_sum_to_one():
    torch.manual_seed(0)
    layer = ReprogrammingLayer(d_model=8, n_heads=4, d_keys=6, d_llm=20, attention_dropout=0.1).eval()
    patches, prototypes = torch.randn(5, 7, 8), torch.randn(11, 20)
    out, attention = layer(patches, prototypes)
    assert out.shape == (5, 7, 20)
    assert attention.shape == (5, 4, 7, 11)  # (B*N, H, P, S)
    assert torch.allclose(attention.sum(dim=-1), torch.ones(5, 4, 7), atol=1e-6)
    expected_out, expected_attention = _naive_reprogramming(layer, patches, prototypes)
    assert torch.allclose(attention, expected_attention, atol=1e-6)
    assert torch.allclose(out, expected_out, atol=1e-5)


def test_flatten_head_reads_features_major_then_patches():
    torch.manual_seed(0)
    head = FlattenHead(d_ff=3, patch_count=4, pred_len=5, dropout=0.0)
    features = torch.randn(2 * 6, 4, 3)  # (B*N, P, d_ff), B=2, N=6
    out = head(features, channels=6)
    assert out.shape == (2, 5, 6)
    weight, bias = head.linear.weight, head.linear.bias
    b, n, t = 1, 4, 2
    manual = bias[t] + sum(weight[t, f * 4 + p] * features[b * 6 + n, p, f] for f in range(3) for p in range(4))
    assert torch.allclose(out[b, t, n], manual, atol=1e-5)


def test_prototypes_are_the_mapping_of_the_transposed_embeddings():
    torch.manual_seed(0)
    prototypes = TextPrototypes(vocab_size=30, num_prototypes=7)
    embeddings = torch.randn(30, 12)  # (V, D)
    expected = prototypes.mapping(embeddings.T).T  # the reference's way: Linear over (D, V)
    assert torch.allclose(prototypes.compute(embeddings), expected, atol=1e-5)


def test_prototypes_cached_per_model_state_in_eval_only():
    torch.manual_seed(0)
    prototypes = TextPrototypes(vocab_size=30, num_prototypes=7)
    embeddings = torch.randn(30, 12)
    prototypes.eval()
    with torch.no_grad():
        first = prototypes(embeddings)
        again = prototypes(embeddings)
    assert again is first and prototypes.computations == 1
    optimizer = torch.optim.SGD(prototypes.parameters(), lr=0.1)
    prototypes.train()
    prototypes(embeddings).sum().backward()  # training: computed every step, with a graph
    assert prototypes.computations == 2
    optimizer.step()
    prototypes.eval()
    with torch.no_grad():
        updated = prototypes(embeddings)
    assert prototypes.computations == 3
    assert not torch.allclose(updated, first)
    assert torch.allclose(updated, prototypes.compute(embeddings))
    # A weight changed in place while staying in eval mode also invalidates the cache.
    with torch.no_grad():
        prototypes.mapping.bias.add_(1.0)
        shifted = prototypes(embeddings)
    assert torch.allclose(shifted, updated + 1.0, atol=1e-5)
