"""Re-take the README's screenshots: the app in headless Chromium, two `cpu-quick` runs on SmolLM2-135M.

    .venv/bin/python docs/take_screenshots.py

Starts `streamlit run app.py` with an empty temporary runs folder, starts the session's default
run (ETTh1, SmolLM2-135M, cpu-quick) from the Train page (train.png while it trains), opens the
Forecast and Prompt & reprogramming pages on the finished run (forecast.png, reprogramming.png),
then trains the same run without the LLM with one click and shows the history (train-history.png).
Needs /usr/bin/chromium and the SmolLM2-135M backbone (`make models`); a few minutes on a 2-core CPU.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from explorer_ui.app_server import start_app  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
LONG_MS = 900_000


def _server(runs: Path) -> tuple[subprocess.Popen, str]:
    return start_app(runs, timeout_s=120.0)


def _settle(page) -> None:
    page.wait_for_timeout(1000)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=LONG_MS)
    page.wait_for_function("""() => Array.from(document.querySelectorAll('[data-testid="stPlotlyChart"]'))
                              .every(chart => chart.querySelector('.main-svg'))""", timeout=LONG_MS)


def _open(page, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first.click()
    _settle(page)


def _steps_drawn(page) -> int:
    return page.evaluate("""() => {
      for (const plot of document.querySelectorAll('.js-plotly-plot')) {
        const title = (plot.layout && plot.layout.title && plot.layout.title.text) || '';
        if (title.includes('Loss per step') && plot.data && plot.data.length) return plot.data[0].x.length;
      }
      return 0; }""")


def main() -> None:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    server, url = _server(Path(tempfile.mkdtemp(prefix="screenshots-runs-")))
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1700})
            page.set_default_timeout(LONG_MS)
            page.goto(url)
            page.wait_for_selector('[data-testid="stSidebar"]')
            _settle(page)
            _open(page, "Train")
            page.get_by_text("Dataset ETTh1, backbone smollm2-135m.").wait_for()
            page.get_by_role("button", name="Start training").click()
            page.wait_for_function("() => document.body.innerText.includes('Epoch 2 of 2')", timeout=LONG_MS)
            _settle(page)
            page.screenshot(path=str(OUT / "train.png"))
            page.get_by_text("Finished: the best weights").wait_for(timeout=LONG_MS)
            _settle(page)
            _open(page, "Forecast")
            page.get_by_text("Against simple forecasters").wait_for()
            _settle(page)
            page.screenshot(path=str(OUT / "forecast.png"), full_page=True)
            _open(page, "Prompt & reprogramming")
            page.get_by_text("Patch-to-prototype attention").wait_for()
            _settle(page)
            page.screenshot(path=str(OUT / "reprogramming.png"))
            _open(page, "Train")
            page.get_by_role("button", name="Train the same run without the LLM").click()
            page.wait_for_timeout(3000)
            page.get_by_text("Finished: the best weights").wait_for(timeout=LONG_MS)
            _settle(page)
            page.get_by_text("Run history").scroll_into_view_if_needed()
            page.screenshot(path=str(OUT / "train-history.png"), full_page=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(30)
    print(f"screenshots in {OUT}")


if __name__ == "__main__":
    main()
