"""Prompt-as-Prefix: statistics, the two text styles, and how prompts become token ids."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from timellm_core.backbones import base_models_dir, load_backbone
from timellm_core.config import BackboneConfig, TimeLLMConfig
from timellm_core.model import TimeLLM
from timellm_core.model.prompt import PromptBuilder, prompt_statistics
from timellm_core.model.prompt_tokens import PromptTokenizer

ZIGZAG = [0, 2, 1, 3, 2, 4, 3, 5, 4, 6, 5, 7, 6, 8, 7, 9]
DESCRIPTION = "Hourly oil temperature of two transformers."
# Written by hand from the reference template; the numbers are checked independently below.
EXPECTED_REFERENCE_PROMPT = (
    "<|start_prompt|>Dataset description: Hourly oil temperature of two transformers.Task description: "
    "forecast the next 4 steps given the previous 16 steps information; Input statistics: "
    "min value -1.7999986410140991, max value 1.7999986410140991, median value -0.1999998539686203, "
    "the trend of input is upward, top 5 lags are : [0, 14, 2, 15, 1]<|<end_prompt>|>"
)
EXPECTED_COMPACT_PROMPT = (
    "<|start_prompt|>Dataset description: Hourly oil temperature of two transformers. Task description: "
    "forecast the next 4 steps given the previous 16 steps; Input statistics: "
    "min value -1.8, max value 1.8, median value -0.2, "
    "the trend of input is upward, top 5 lags are: [0, 14, 2, 15, 1]<|end_prompt|>"
)
TINY = ("tiny-gpt2", "tiny-llama", "tiny-qwen2", "tiny-bert")


@functools.lru_cache(maxsize=None)
def tiny(name: str):
    return load_backbone(BackboneConfig(name=name, llm_layers=1), device="cpu")


def _zigzag_model(style: str) -> tuple[TimeLLM, torch.Tensor]:
    config = TimeLLMConfig(seq_len=16, pred_len=4, patch_len=4, stride=2, d_model=4, d_ff=8, n_heads=2,
                           num_prototypes=8, dropout=0.0, attention_dropout=0.0, prompt_style=style)
    x = torch.tensor(ZIGZAG, dtype=torch.float32).view(1, 16, 1)
    return TimeLLM(config, tiny("tiny-gpt2"), description=DESCRIPTION).eval(), x


def test_reference_prompt_is_the_template_character_for_character():
    model, x = _zigzag_model("reference")
    with torch.no_grad():
        _, trace = model(x, trace=True)
    assert trace.prompts == [EXPECTED_REFERENCE_PROMPT]
    assert trace.prompts[0].encode("utf-8") == EXPECTED_REFERENCE_PROMPT.encode("utf-8")


def test_reference_prompt_numbers_are_float32_values_printed_by_python():
    series = np.array(ZIGZAG, dtype=np.float32)
    mean = series.mean(dtype=np.float32)
    stdev = np.sqrt(((series - mean) ** 2).mean(dtype=np.float32) + np.float32(1e-5), dtype=np.float32)
    normalized = ((series - mean) / stdev).astype(np.float32)
    lower_median = np.sort(normalized)[(len(normalized) - 1) // 2]
    for text in (f"min value {float(normalized.min())},", f"max value {float(normalized.max())},",
                 f"median value {float(lower_median)},"):
        assert text in EXPECTED_REFERENCE_PROMPT
    assert "min value -1.7999986410140991," in EXPECTED_REFERENCE_PROMPT


def test_compact_prompt_fixes_the_typos_and_prints_four_significant_digits():
    model, x = _zigzag_model("compact")
    with torch.no_grad():
        _, trace = model(x, trace=True)
    assert trace.prompts == [EXPECTED_COMPACT_PROMPT]


def test_fast_mode_writes_compact_prompts():
    config = TimeLLMConfig(seq_len=16, pred_len=4, patch_len=4, stride=2, d_model=4, d_ff=8, n_heads=2,
                           num_prototypes=8, fast=True)
    assert TimeLLM(config, tiny("tiny-gpt2"), description=DESCRIPTION).prompt_builder.style == "compact"


def test_statistics_match_a_brute_force_computation():
    torch.manual_seed(0)
    series = torch.randn(6, 37)
    statistics = prompt_statistics(series, top_k=5)
    values = series.numpy().astype(np.float64)
    for row in range(6):
        assert statistics.minimum[row] == series[row].min()
        assert statistics.maximum[row] == series[row].max()
        assert statistics.median[row] == torch.sort(series[row]).values[(37 - 1) // 2]  # lower median
        assert statistics.trend[row] == pytest.approx(float(values[row, -1] - values[row, 0]), abs=1e-4)
        autocorrelation = np.array([np.dot(values[row], np.roll(values[row], -lag)) for lag in range(37)])
        assert statistics.lags[row, 0] == 0  # lag 0 always has the largest autocorrelation
        chosen = autocorrelation[statistics.lags[row].numpy()]
        assert np.allclose(np.sort(chosen)[::-1], np.sort(autocorrelation)[::-1][:5], atol=1e-3)


def test_vectorised_prompts_equal_the_per_series_loop():
    torch.manual_seed(1)
    statistics = prompt_statistics(torch.randn(9, 48), top_k=5)
    for style in ("reference", "compact"):
        builder = PromptBuilder(DESCRIPTION, 48, 12, style)
        assert builder.build(statistics).full_prompts() == builder.build(statistics, looped=True).full_prompts()


def _tokenizers() -> list[tuple[str, object]]:
    found = [(name, tiny(name).tokenizer) for name in TINY]
    for folder in ("SmolLM2-135M", "all-MiniLM-L6-v2"):
        path = base_models_dir() / folder
        if (path / "tokenizer.json").is_file():
            from transformers import AutoTokenizer

            found.append((folder, AutoTokenizer.from_pretrained(str(path), local_files_only=True)))
    return found


@pytest.mark.parametrize("style", ["reference", "compact"])
def test_batched_tokens_equal_one_at_a_time_and_the_whole_prompt(style):
    torch.manual_seed(2)
    series = torch.randn(12, 96).cumsum(dim=-1)
    series = (series - series.mean(dim=-1, keepdim=True)) / series.std(dim=-1, keepdim=True)
    parts = PromptBuilder(DESCRIPTION, 96, 24, style).build(prompt_statistics(series, top_k=5))
    for name, tokenizer in _tokenizers():
        prompt_tokenizer = PromptTokenizer(tokenizer)
        batched = prompt_tokenizer.tokenize(parts, batched=True)
        looped = prompt_tokenizer.tokenize(parts, batched=False)
        assert torch.equal(batched.prefix_ids, looped.prefix_ids), name
        assert torch.equal(batched.series_ids, looped.series_ids), name
        assert torch.equal(batched.series_mask, looped.series_mask), name
        # The split at the prefix boundary gives the ids of the whole prompt tokenised at once.
        assert prompt_tokenizer.boundary_is_exact, name
        whole = [prompt_tokenizer.whole_prompt_ids(prompt) for prompt in parts.full_prompts()]
        assert batched.per_series() == whole, name


def test_series_parts_are_left_padded_with_a_mask():
    tokenizer = PromptTokenizer(tiny("tiny-llama").tokenizer)
    parts = PromptBuilder(DESCRIPTION, 96, 24).build(prompt_statistics(torch.randn(5, 96), top_k=5))
    parts.series_parts[0] = " min value 1"  # much shorter than the others
    tokens = tokenizer.tokenize(parts)
    lengths = tokens.series_mask.sum(dim=1)
    assert lengths[0] < tokens.series_ids.shape[1]
    padding = tokens.series_ids.shape[1] - int(lengths[0])
    assert tokens.series_mask[0, :padding].sum() == 0 and tokens.series_mask[0, padding:].all()
    assert tokens.series_mask[1:].sum(dim=1).max() == tokens.series_ids.shape[1]


def test_bert_special_tokens_are_added_once_around_the_whole_prompt():
    tokenizer = tiny("tiny-bert").tokenizer
    prompt_tokenizer = PromptTokenizer(tokenizer)
    assert prompt_tokenizer.leading_special == [tokenizer.cls_token_id]
    assert prompt_tokenizer.trailing_special == [tokenizer.sep_token_id]
    parts = PromptBuilder(DESCRIPTION, 32, 8).build(prompt_statistics(torch.randn(3, 32), top_k=5))
    for ids in prompt_tokenizer.tokenize(parts).per_series():
        assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
        assert ids.count(tokenizer.cls_token_id) == 1 and ids.count(tokenizer.sep_token_id) == 1
