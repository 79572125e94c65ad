"""The plan for a 6 GB GPU: do the settings fit, and if not, the nearest settings that do."""

from dataclasses import replace

import pytest

from timellm_core.backbones import CATALOGUE
from timellm_core.backbones.gpu_fit import GPU_GIB, advise_gpu, gpu_bytes_needed
from timellm_core.backbones.memory import CUDA_RESERVE_GIB, GIB, plan_memory
from timellm_core.config import TimeLLMConfig
from timellm_core.errors import BackboneError

QWEN_3B = CATALOGUE["qwen2.5-3b"]
SEED = TimeLLMConfig(seq_len=512, pred_len=96, patch_len=16, stride=8, d_model=32, d_ff=32, n_heads=8)


def test_the_seeds_settings_fit_a_6_gb_gpu_on_the_exact_path():
    advice = advise_gpu(QWEN_3B, SEED, llm_layers=6, batch_size=8, load_in_4bit=True, n_channels=7)
    assert advice.asked_fits and advice.options == ()
    plan = advice.asked.plan
    assert advice.asked.needed_bytes == plan.peak_bytes + CUDA_RESERVE_GIB * GIB
    # The step's peak: what persists + the kept activations + the first layer's backward working set.
    assert 4.7 * GIB < plan.peak_bytes < plan.total_bytes < 5.1 * GIB
    # 16-bit embeddings on a GPU: the prototypes' product keeps their float32 copy, 1.16 GiB.
    assert plan.late_saved_bytes == 151936 * 2048 * 4


def test_all_36_layers_do_not_fit_and_the_nearest_settings_that_do_are_offered():
    advice = advise_gpu(QWEN_3B, SEED, llm_layers=36, batch_size=8, load_in_4bit=True, n_channels=7)
    assert not advice.asked_fits and advice.asked.needed_bytes > 9 * GIB
    by_change = {option.changes: option for option in advice.options}
    assert set(by_change) == {("batch 1",), ("10 LLM layers",)}
    for option in advice.options:
        assert option.fits(GPU_GIB) and option.needed_bytes == gpu_bytes_needed(option.plan)
    # Nearest: one step back towards the asked settings no longer fits.
    assert not advise_gpu(QWEN_3B, SEED, 36, 2, True, 7).asked_fits
    assert not advise_gpu(QWEN_3B, SEED, 11, 8, True, 7).asked_fits
    assert by_change[("batch 1",)].settings.llm_layers == 36
    assert by_change[("10 LLM layers",)].settings.batch_size == 8


def test_a_float32_reference_path_run_is_told_to_use_4_bit_and_the_exact_path():
    reference = replace(SEED, optimize=False)
    advice = advise_gpu(QWEN_3B, reference, llm_layers=6, batch_size=8, load_in_4bit=False, n_channels=7)
    assert not advice.asked_fits and advice.asked.plan.precision == "fp32"
    (option,) = advice.options
    assert option.changes == ("load in 4-bit NF4", "the exact path (optimize)")
    assert option.settings.load_in_4bit and option.settings.optimize and option.settings.llm_layers == 6


def test_when_nothing_else_fits_fewer_prototypes_are_the_last_lever():
    advice = advise_gpu(QWEN_3B, SEED, llm_layers=6, batch_size=8, load_in_4bit=True, n_channels=7, gigabytes=3.0)
    (option,) = advice.options
    assert option.changes[-1].endswith("prototypes") and option.settings.num_prototypes < 1000
    assert option.fits(3.0)
    assert advise_gpu(QWEN_3B, SEED, 6, 8, True, 7, gigabytes=1.0).options == ()  # nothing fits 1 GiB


def test_a_tiny_backbone_fits_as_asked():
    advice = advise_gpu(CATALOGUE["tiny-llama"], SEED, llm_layers=2, batch_size=8, load_in_4bit=False, n_channels=7)
    assert advice.asked_fits and not advice.options


def test_the_plan_is_the_planners_for_cuda():
    advice = advise_gpu(QWEN_3B, SEED, 6, 8, True, 7)
    plan = plan_memory(QWEN_3B, 6, "4bit", SEED, 8, 7, optimize=True, device="cuda")
    assert advice.asked.plan.to_dict() == plan.to_dict()
    assert plan.to_dict() != plan_memory(QWEN_3B, 6, "4bit", SEED, 8, 7, optimize=True, device="cpu").to_dict()


def test_too_many_layers_are_refused_with_the_planners_message():
    with pytest.raises(BackboneError, match="between 1 and 36"):
        advise_gpu(QWEN_3B, SEED, llm_layers=99, batch_size=8, load_in_4bit=True, n_channels=7)
