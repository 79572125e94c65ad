"""Words for text prototypes: which vocabulary tokens a prototype is close to, or built from.

Both views are approximations. A prototype is a learned mixture of the whole vocabulary's
embeddings (all V weights of its mapping row), not a word: the nearest tokens by cosine
similarity and the tokens with the largest mapping weights are two readable summaries of it,
and they can disagree. The app labels them as such.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from timellm_core.errors import ConfigError

CHUNK = 128  # prototypes per similarity block: bounds the (chunk, V) matrix in memory


@dataclass
class PrototypeWords:
    """Tokens that summarise one prototype, best first."""

    prototype: int
    token_ids: list[int]
    tokens: list[str]
    scores: list[float]  # cosine similarity (nearest_tokens) or mapping weight (top_mapping_tokens)


def nearest_tokens(model: Any, prototype_ids: Sequence[int] | None = None, k: int = 5) -> list[PrototypeWords]:
    """For each prototype, the k vocabulary tokens whose frozen embeddings have the highest cosine similarity.

    An approximation: the prototype is a mixture of all token embeddings, and its nearest single
    tokens only hint at what it encodes.
    """
    prototypes = model.prototypes()  # (S, D)
    ids = _prototype_ids(prototypes.shape[0], prototype_ids)
    vocabulary = _named_vocabulary_size(model)
    with torch.no_grad():
        embeddings = torch.nn.functional.normalize(
            model.backbone.word_embeddings()[:vocabulary].float(), dim=-1)  # (V', D)
        chosen = torch.nn.functional.normalize(prototypes[ids].to(embeddings.device), dim=-1)  # (S', D)
        results = []
        for start in range(0, len(ids), CHUNK):
            similarity = chosen[start:start + CHUNK] @ embeddings.T  # (chunk, V')
            scores, tokens = similarity.topk(min(k, vocabulary), dim=-1)
            results += _words(model, ids[start:start + CHUNK], tokens, scores)
    return results


def top_mapping_tokens(model: Any, prototype_ids: Sequence[int] | None = None, k: int = 5) -> list[PrototypeWords]:
    """For each prototype, the k tokens with the largest weights in its row of the mapping layer.

    An approximation: every token contributes (with weights of either sign), and a large weight on
    a token with a small embedding can matter less than many small weights.
    """
    weight = model.text_prototypes.mapping.weight.detach()  # (S, V)
    ids = _prototype_ids(weight.shape[0], prototype_ids)
    vocabulary = _named_vocabulary_size(model)
    scores, tokens = weight[ids, :vocabulary].float().topk(min(k, vocabulary), dim=-1)  # (S', k)
    return _words(model, ids, tokens, scores)


def _prototype_ids(count: int, prototype_ids: Sequence[int] | None) -> list[int]:
    if prototype_ids is None:
        return list(range(count))
    ids = [int(index) for index in prototype_ids]
    bad = [index for index in ids if not 0 <= index < count]
    if bad:

        raise ConfigError(f"Prototype numbers {bad} are out of range: this model has {count} prototypes (0-{count - 1}).")
    return ids


def _named_vocabulary_size(model: Any) -> int:
    """Rows of the embedding table that the tokenizer can name (tables are often padded past it)."""
    return min(len(model.backbone.tokenizer), model.backbone.vocab_size)


def _words(model: Any, prototype_ids: list[int], tokens: torch.Tensor, scores: torch.Tensor) -> list[PrototypeWords]:
    tokenizer = model.backbone.tokenizer
    return [PrototypeWords(prototype=index, token_ids=row.tolist(),
                           tokens=[tokenizer.decode([token]) for token in row.tolist()],
                           scores=[float(value) for value in row_scores.tolist()])
            for index, row, row_scores in zip(prototype_ids, tokens.cpu(), scores.cpu())]
