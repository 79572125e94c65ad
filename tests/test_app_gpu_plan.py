"""The Backbone page's plan for a 6 GB GPU: shown before a backbone is downloaded, one click to use it."""

from __future__ import annotations

from explorer_ui import shared
from timellm_core.backbones import CATALOGUE
from timellm_core.backbones.gpu_fit import advise_gpu
from timellm_core.config import BackboneConfig, TimeLLMConfig, preset

from test_app_support import app_env, frame_with, open_page, start_app, texts  # noqa: F401 (fixtures)


def _seed_on_all_36_layers():
    """The seed's settings (Qwen 2.5 3B in 4-bit, batch 8, T 512, 1000 prototypes) with all 36 layers."""
    config = preset("cpu-quick")
    config.backbone = BackboneConfig(name="qwen2.5-3b", llm_layers=36, load_in_4bit=True)
    config.model = TimeLLMConfig(seq_len=512, pred_len=96, patch_len=16, stride=8, d_model=32, d_ff=32, n_heads=8)
    config.training.batch_size = 8
    return config


def test_backbone_page_offers_settings_that_fit_a_6_gb_gpu_and_uses_them(app_env):
    config = _seed_on_all_36_layers()
    at = start_app(dataset="ETTh1", backbone="qwen2.5-3b", **{shared.WORKING_CONFIG: config})
    at = open_page(at, "backbone")
    assert "not on this machine yet" in " ".join(w.value for w in at.warning)  # planned before the download
    expected = advise_gpu(CATALOGUE["qwen2.5-3b"], config.model, 36, 8, True, 7)
    assert any(f"Your settings need about {expected.asked.needed_bytes / 2**30:.2f} GiB of 6" in w.value
               for w in at.warning)
    plan = frame_with(at, "with the CUDA context (GiB)")
    assert list(plan["change"]) == ["(as set)", "batch 1", "10 LLM layers"]

    at.button(key="backbone_gpu_plan_use_1").click().run()  # 10 layers at batch 8
    assert not at.exception and not at.error
    working = at.session_state[shared.WORKING_CONFIG]
    assert (working.backbone.llm_layers, working.training.batch_size, working.backbone.load_in_4bit) == (10, 8, True)
    assert at.number_input(key="backbone_layers").value == 10
    assert [s.value for s in at.success] == ["Settings changed (10 LLM layers): the Train page starts with them."]
    assert "Your settings fit: about" in texts(at)
    assert "**Yes**, in 4bit" in texts(at)

    at = open_page(at, "train")
    assert at.number_input(key="train_form_llm_layers").value == 10
    assert at.number_input(key="train_form_batch_size").value == 8


def test_a_tiny_backbone_fits_as_set(app_env):
    at = open_page(start_app(dataset="ETTh1", backbone="tiny-llama"), "backbone")
    assert "Your settings fit: about" in texts(at)
    assert list(frame_with(at, "with the CUDA context (GiB)")["change"]) == ["(as set)"]
    assert not [b for b in at.button if str(b.key).startswith("backbone_gpu_plan_use")]
