"""Words for prototypes: nearest tokens by cosine similarity, and the largest mapping weights."""

from __future__ import annotations

import pytest
import torch

from timellm_core.backbones import load_backbone
from timellm_core.config import BackboneConfig, TimeLLMConfig
from timellm_core.errors import ConfigError
from timellm_core.model import TimeLLM
from timellm_core.model import prototype_words
from timellm_core.model.prototype_words import nearest_tokens, top_mapping_tokens


@pytest.fixture(scope="module")
def model() -> TimeLLM:
    backbone = load_backbone(BackboneConfig(name="tiny-llama", llm_layers=1), device="cpu")
    torch.manual_seed(0)
    config = TimeLLMConfig(seq_len=32, pred_len=8, patch_len=8, stride=4, d_model=8, d_ff=16, n_heads=2,
                           num_prototypes=300)
    return TimeLLM(config, backbone).eval()


def test_nearest_tokens_are_the_highest_cosine_similarities(model):
    results = nearest_tokens(model, prototype_ids=[3, 200], k=4)
    assert [r.prototype for r in results] == [3, 200]
    embeddings = model.backbone.word_embeddings()
    for result in results:
        prototype = model.prototypes()[result.prototype]
        similarity = torch.nn.functional.cosine_similarity(embeddings, prototype.unsqueeze(0), dim=-1)
        expected = similarity.topk(4)
        assert result.token_ids == expected.indices.tolist()
        assert result.scores == pytest.approx(expected.values.tolist(), abs=1e-5)
        assert result.tokens == [model.backbone.tokenizer.decode([i]) for i in result.token_ids]


def test_all_prototypes_are_covered_in_blocks(model):
    results = nearest_tokens(model, k=2)  # 300 prototypes: more than one block of 128
    assert [r.prototype for r in results] == list(range(300))
    assert all(r.scores[0] >= r.scores[1] for r in results)


def test_top_mapping_tokens_are_the_largest_weights(model):
    [result] = top_mapping_tokens(model, prototype_ids=[7], k=5)
    expected = model.text_prototypes.mapping.weight[7].topk(5)
    assert result.token_ids == expected.indices.tolist()
    assert result.scores == pytest.approx(expected.values.tolist())


def test_the_approximation_is_stated_and_bad_numbers_are_refused(model):
    for function in (prototype_words, nearest_tokens, top_mapping_tokens):
        assert "approximation" in function.__doc__
    with pytest.raises(ConfigError, match="out of range"):
        nearest_tokens(model, prototype_ids=[300])
