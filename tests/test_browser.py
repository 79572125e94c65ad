"""The app in a real browser: `streamlit run app.py` driven by headless Chromium through Playwright.

Picks ETTh1 and a tiny backbone, starts a small training run, waits until the loss chart shows at
least two points, then opens the Prompt & reprogramming page and finds the attention heatmap, and the
Inside the LLM page with its attention heatmap and the trained-vs-untrained bars, and the Forecast
page's forecast past the data's last row (finite values, dates one step after the last row).
Screenshots go to test-artifacts/. Debian's chromium is required: the test fails (never skips)
with the command to install it when /usr/bin/chromium is missing.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PAGE_TIMEOUT_MS = 120_000


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_healthy(port: int, server: subprocess.Popen, timeout_s: float = 90.0) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"streamlit exited with {server.returncode}: {server.stdout.read()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"streamlit did not answer on port {port} within {timeout_s} s")


@pytest.fixture
def server(tmp_path):
    """`streamlit run app.py` on a free port, headless, bound to 127.0.0.1, with a temporary runs folder."""
    port = _free_port()
    env = dict(os.environ, TIMELLM_RUNS=str(tmp_path / "runs"), TIMELLM_UPLOADS=str(tmp_path / "uploads"),
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    command = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.address", "127.0.0.1",
               "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    try:
        _wait_healthy(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


def _settle(page) -> None:
    """Wait until the script has stopped running and every Plotly chart has drawn."""
    page.wait_for_timeout(800)
    page.wait_for_function("""() => !document.querySelector(
                              '[data-testid="stStatusWidget"], [data-testid="stSpinner"]')""", timeout=PAGE_TIMEOUT_MS)
    page.wait_for_function("""() => Array.from(document.querySelectorAll('[data-testid="stPlotlyChart"]'))
                              .every(chart => chart.querySelector('.main-svg'))""", timeout=PAGE_TIMEOUT_MS)


def _choose(page, label: str, option: str) -> None:
    box = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').filter(has_text=label)
    box.locator("input").first.click()
    page.keyboard.type(option)
    page.locator('[role="option"]').filter(has_text=option).first.click()
    _settle(page)


def _open(page, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first.click()
    _settle(page)


def _fill(page, label: str, value: int) -> None:
    field = page.get_by_label(label, exact=True)
    field.fill(str(value))
    field.press("Tab")


_STEP_POINTS = """() => {
  for (const plot of document.querySelectorAll('.js-plotly-plot')) {
    const title = (plot.layout && plot.layout.title && plot.layout.title.text) || '';  // the theme adds <b>
    if (title.includes('Loss per step') && plot.data && plot.data.length) return plot.data[0].x.length;
  }
  return 0;
}"""

_HEATMAP_CELLS = """() => {
  for (const plot of document.querySelectorAll('.js-plotly-plot')) {
    for (const trace of (plot.data || [])) {
      // z arrives base64-encoded; the axes say how many cells were drawn.
      if (trace.type === 'heatmap' && trace.x && trace.y) return trace.x.length * trace.y.length;
    }
  }
  return 0;
}"""


_FUTURE_TRACES = """() => {
  for (const plot of document.querySelectorAll('.js-plotly-plot')) {
    const title = (plot.layout && plot.layout.title && plot.layout.title.text) || '';
    if (title.includes('steps after row')) {
      const out = {};
      for (const trace of plot.data) out[trace.name] = {x: Array.from(trace.x), y: Array.from(trace.y)};
      return out;
    }
  }
  return {};
}"""


def _stamp(text: str):
    from datetime import datetime

    return datetime.fromisoformat(text)


_BAR_TRACES = """() => {
  for (const plot of document.querySelectorAll('.js-plotly-plot')) {
    const title = (plot.layout && plot.layout.title && plot.layout.title.text) || '';
    if (title.includes('read the prompt')) return plot.data.map(trace => trace.name);
  }
  return [];
}"""


def test_train_then_inspect_in_chromium(server):
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: install Debian's browser with `apt-get install chromium` "
                    "(`make test` does it when it can). This test never skips.")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            # Streamlit scrolls inside the page, so a tall view is what makes the screenshots show more.
            page = browser.new_page(viewport={"width": 1400, "height": 2000})
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            page.goto(server)
            page.wait_for_selector('[data-testid="stSidebar"]')
            _settle(page)
            _choose(page, "Dataset", "ETTh1")
            _choose(page, "Backbone", "tiny-gpt2")
            _open(page, "Train")
            for label, value in (("seq_len (T)", 32), ("pred_len", 8), ("patch_len", 8), ("stride", 4),
                                 ("d_model", 8), ("d_ff", 16), ("prototypes (S)", 20), ("llm_layers", 1),
                                 ("train_epochs", 2), ("max train windows (0 = all)", 64),
                                 ("max eval windows (0 = all)", 16)):
                _fill(page, label, value)
            page.get_by_role("button", name="Start training").click()
            page.wait_for_function(f"() => ({_STEP_POINTS})() >= 2", timeout=PAGE_TIMEOUT_MS)
            page.screenshot(path=str(ARTIFACTS / "browser-train.png"), full_page=True)
            page.get_by_text("Finished: the best weights").wait_for(timeout=PAGE_TIMEOUT_MS)
            _settle(page)
            assert page.evaluate(_STEP_POINTS) == 2 * 8  # 2 epochs x 64 windows / batch 8

            _choose(page, "Run", "ETTh1 · tiny-gpt2 · 32→8")
            _open(page, "Prompt & reprogramming")
            page.get_by_text("Patch-to-prototype attention").wait_for()
            _settle(page)
            assert page.evaluate(_HEATMAP_CELLS) == 8 * 20  # P = 8 patches x all 20 prototypes (top-k capped at S)
            assert page.get_by_text("Trained weights of run ETTh1_tiny-gpt2").is_visible()
            assert page.locator('[data-testid="stException"]').count() == 0
            assert page.locator('[data-testid="stAlertContentError"]').count() == 0
            page.screenshot(path=str(ARTIFACTS / "browser-reprogramming.png"), full_page=True)

            _open(page, "Inside the LLM")
            page.get_by_text("Does the LLM read the prompt?", exact=True).wait_for()
            _settle(page)
            assert page.evaluate(_HEATMAP_CELLS) > 8 * (50 + 8)  # P = 8 patch queries x (prompt tokens + 8 patches)
            assert page.evaluate(_BAR_TRACES) == ["trained run", "untrained model"]
            assert page.locator('[data-testid="stException"]').count() == 0
            assert page.locator('[data-testid="stAlertContentError"]').count() == 0
            page.screenshot(path=str(ARTIFACTS / "browser-inside-llm.png"), full_page=True)

            _open(page, "Forecast")
            page.get_by_text("Forecast the future", exact=True).wait_for()
            _settle(page)
            future = page.evaluate(_FUTURE_TRACES)
            context, forecast = future["input context"], future["Time-LLM forecast"]
            assert len(forecast["y"]) == 8
            assert all(isinstance(v, (int, float)) and math.isfinite(v) for v in forecast["y"])
            step = _stamp(context["x"][-1]) - _stamp(context["x"][-2])
            assert _stamp(forecast["x"][0]) - _stamp(context["x"][-1]) == step  # dates continue the data's
            assert _stamp(forecast["x"][-1]) - _stamp(forecast["x"][0]) == 7 * step
            assert page.locator('[data-testid="stException"]').count() == 0
            page.screenshot(path=str(ARTIFACTS / "browser-future.png"), full_page=True)
        finally:
            browser.close()


def test_a_second_browser_sees_the_run_without_a_stop_button(server):
    """Two browser contexts are two sessions: the one that started the run can stop it, the other only watches."""
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: install Debian's browser with `apt-get install chromium`.")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            owner = browser.new_context(viewport={"width": 1400, "height": 1600}).new_page()
            owner.set_default_timeout(PAGE_TIMEOUT_MS)
            owner.goto(server)
            owner.wait_for_selector('[data-testid="stSidebar"]')
            _settle(owner)
            _choose(owner, "Dataset", "ETTh1")
            _choose(owner, "Backbone", "tiny-gpt2")
            _open(owner, "Train")
            for label, value in (("seq_len (T)", 32), ("pred_len", 8), ("patch_len", 8), ("stride", 4),
                                 ("d_model", 8), ("d_ff", 16), ("prototypes (S)", 20), ("llm_layers", 1),
                                 ("train_epochs", 100), ("max train windows (0 = all)", 400),
                                 ("max eval windows (0 = all)", 16)):
                _fill(owner, label, value)
            owner.get_by_role("button", name="Start training").click()
            owner.wait_for_function(f"() => ({_STEP_POINTS})() >= 2", timeout=PAGE_TIMEOUT_MS)
            assert owner.get_by_role("button", name="Stop", exact=True).is_visible()

            viewer = browser.new_context(viewport={"width": 1400, "height": 1600}).new_page()
            viewer.set_default_timeout(PAGE_TIMEOUT_MS)
            viewer.goto(server)
            viewer.wait_for_selector('[data-testid="stSidebar"]')
            _settle(viewer)
            _open(viewer, "Train")
            viewer.get_by_text("Only the session that started this run can stop it.").wait_for()
            viewer.wait_for_function(f"() => ({_STEP_POINTS})() >= 2", timeout=PAGE_TIMEOUT_MS)
            assert viewer.get_by_role("button", name="Stop", exact=True).count() == 0
            assert viewer.locator('[data-testid="stProgress"]').count() >= 1  # it sees the progress
            viewer.screenshot(path=str(ARTIFACTS / "browser-second-session.png"), full_page=True)

            owner.get_by_role("button", name="Stop", exact=True).click()
            owner.get_by_text("Stopped during epoch").wait_for(timeout=PAGE_TIMEOUT_MS)
            assert owner.locator('[data-testid="stException"]').count() == 0
        finally:
            browser.close()
