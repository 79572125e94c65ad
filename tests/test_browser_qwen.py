"""The `qwen-cpu` preset from the browser: real Qwen 2.5 0.5B in 4-bit, trained and inspected in Chromium.

Loads the preset on the Train page (which selects Qwen in the sidebar and shows the preset's settings
in the form: features S, not the default preset's M), starts it, sees the live loss
chart and the progress bar, waits for the run to finish (about 90-180 s on a 2-core CPU), then opens
Patches, Prompt & reprogramming and Forecast on the finished run. On the prompt page the tokens
expander must show the prompt cut by Qwen's own tokenizer (its pieces of "<|start_prompt|>" differ
from SmolLM2's). Screenshots go to test-artifacts/. Like the other real-backbone tests, it fails
(never skips) when Qwen 2.5 0.5B or Chromium is missing: `make test` fetches both.
"""

from __future__ import annotations

import pytest

from test_backbones_real import _require
from test_browser import (  # noqa: F401 (the server fixture)
    ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, PAGE_TIMEOUT_MS, _STEP_POINTS, _choose, _open, _settle, server)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(1500)]  # a real model on a shared CPU

QWEN = "qwen2.5-0.5b"
RUN_TIMEOUT_MS = 900_000  # 86 s on a quiet 2-core CPU; 9 min when others load it (load average 5-6)
PROMPT_START = "<|start_prompt|>Dataset description:"


def _qwen_pieces(text: str) -> str:
    """``text`` as the prompt page shows tokens: each Qwen token decoded alone, joined by ' | '."""
    from transformers import AutoTokenizer

    from timellm_core.backbones import resolve_backbone_spec
    from timellm_core.backbones.catalogue import local_path

    tokenizer = AutoTokenizer.from_pretrained(str(local_path(resolve_backbone_spec(QWEN))))
    return " | ".join(repr(tokenizer.decode([token]))[1:-1] for token in tokenizer(text)["input_ids"])


def _no_failure_on(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0


def test_qwen_cpu_preset_trains_and_inspects_in_chromium(server):
    _require(QWEN)
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: install Debian's browser with `apt-get install chromium` "
                    "(`make test` does it when it can). This test never skips.")
    expected_pieces = _qwen_pieces(PROMPT_START)
    assert "start | _prompt" in expected_pieces  # Qwen's pieces (SmolLM2 cuts 'start | _ | prompt')
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2000})
        try:
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            page.goto(server)
            page.wait_for_selector('[data-testid="stSidebar"]')
            _settle(page)
            _choose(page, "Dataset", "ETTh1")
            _open(page, "Train")

            # The preset: chosen in the main area's selectbox, then loaded; it selects Qwen in the sidebar.
            preset = page.locator('[data-testid="stMain"] [data-testid="stSelectbox"]').filter(has_text="Preset")
            preset.locator("input").first.click()
            page.keyboard.type("qwen-cpu")
            page.locator('[role="option"]').filter(has_text="qwen-cpu").first.click()
            _settle(page)
            page.get_by_role("button", name="Load preset").click()
            _settle(page)
            backbone = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').filter(has_text="Backbone")
            assert backbone.locator("input").first.input_value() == QWEN
            assert page.get_by_label("llm_layers", exact=True).input_value() == "2"
            # The browser shows (and submits) the preset's values: one channel (HULL), not cpu-quick's 7.
            features = page.locator('[data-testid="stMain"] [data-testid="stSelectbox"]').filter(has_text="features")
            assert features.locator("input").first.input_value() == "S"
            assert page.get_by_label("max train windows (0 = all)", exact=True).input_value() == "960"
            # The preset trains 2 epochs x 960 windows (240 steps, minutes); the test keeps 1 x 160 of them.
            for label, value in (("train_epochs", 1), ("max train windows (0 = all)", 160)):
                field = page.get_by_label(label, exact=True)
                field.fill(str(value))
                field.press("Tab")
            _settle(page)

            page.get_by_role("button", name="Start training").click()
            page.wait_for_function(f"() => ({_STEP_POINTS})() >= 2", timeout=RUN_TIMEOUT_MS)  # the live chart
            assert page.locator('[data-testid="stProgress"]').count() >= 1
            page.screenshot(path=str(ARTIFACTS / "browser-qwen-train.png"), full_page=True)
            page.get_by_text("Finished: the best weights").wait_for(timeout=RUN_TIMEOUT_MS)
            _settle(page)
            assert page.evaluate(_STEP_POINTS) == 1 * 20  # 1 epoch x 160 windows / batch 8
            _no_failure_on(page)

            _choose(page, "Run", f"ETTh1 · {QWEN} · 96→24")
            _open(page, "Patches")
            page.get_by_text("trained weights of run").first.wait_for()
            _settle(page)
            _no_failure_on(page)

            _open(page, "Prompt & reprogramming")
            page.get_by_text("Patch-to-prototype attention").wait_for()
            _settle(page)
            tokens = page.locator('[data-testid="stExpander"]').filter(has_text="tokens").first
            tokens.locator("summary").click()
            shown = tokens.locator("code").inner_text()
            assert shown.startswith(expected_pieces), shown[:200]  # Qwen's tokenizer cut this prompt
            _no_failure_on(page)
            page.screenshot(path=str(ARTIFACTS / "browser-qwen-reprogramming.png"), full_page=True)

            _open(page, "Forecast")
            page.get_by_text("One test window").wait_for()
            _settle(page)
            assert page.locator('[data-testid="stPlotlyChart"]').count() >= 1
            _no_failure_on(page)
            page.screenshot(path=str(ARTIFACTS / "browser-qwen-forecast.png"), full_page=True)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "browser-qwen-failure.png"), full_page=True)
            raise
        finally:
            browser.close()
