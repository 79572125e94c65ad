"""Does watching slow training down? The ``cpu-quick`` preset from the terminal vs from the app with two
browser sessions, written to benchmarks/two_viewers.md (+ .json).

The set-up of the classroom report: everything that trains (the terminal's process, or the app's
server and the training process it starts) is pinned to one core with ``taskset -c 1``; the two
headless Chromium sessions (and this script, which drives them) are pinned to the other core. One
session starts the preset from the Train page (the session's defaults: ETTh1, SmolLM2-135M) and
keeps the page open; the other opens the Train page and watches the run until it ends.

Step time is read from the run folder: the time between consecutive ``step`` events of one epoch
(the first step of an epoch is left out: it follows an evaluation pass). Terminal and app runs
alternate, so a change in the machine's other load hits both alike.

    .venv/bin/python benchmarks/two_viewers.py [--repeats 3] [--output benchmarks/two_viewers.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from explorer_ui.app_server import start_app  # noqa: E402

TRAIN_CORE, BROWSER_CORE = 1, 0
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
RUN_TIMEOUT_MS = 900_000
TARGET_RATIO = 1.2


def _cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def step_times(run_dir: Path) -> list[float]:
    """Seconds between consecutive step events of the same epoch."""
    from timellm_core.training.runs import load_run

    steps = load_run(run_dir).step_events()
    return [b["time"] - a["time"] for a, b in zip(steps, steps[1:]) if a["epoch"] == b["epoch"]]


def _newest_run(runs_dir: Path) -> Path:
    return max((p for p in runs_dir.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)


def terminal_run(runs_dir: Path) -> dict:
    runs_dir.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    started = time.perf_counter()
    done = subprocess.run(["taskset", "-c", str(TRAIN_CORE), sys.executable, "-m", "timellm_core", "train",
                           "--preset", "cpu-quick", "--runs_dir", str(runs_dir)],
                          cwd=PROJECT_ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"terminal run failed ({done.returncode}): {done.stderr[-2000:]}")
    run = _newest_run(runs_dir)
    return {"where": "terminal", "run": run.name, "wall_s": time.perf_counter() - started,
            "load_before": [round(v, 2) for v in load], "steps": step_times(run)}


def start_server(runs_dir: Path) -> tuple[subprocess.Popen, str]:
    return start_app(runs_dir, command_prefix=("taskset", "-c", str(TRAIN_CORE)),
                     extra_args=("--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"))


def _settle(page) -> None:
    page.wait_for_timeout(800)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=120_000)


def _open_train(context, url: str):
    page = context.new_page()
    page.set_default_timeout(120_000)
    page.goto(url)
    page.wait_for_selector('[data-testid="stSidebar"]')
    page.get_by_test_id("stSidebarNavItems").get_by_text("Look inside").wait_for()  # the app's navigation,
    # not Streamlit's list of the files in pages/ that a fresh server shows until it arrives
    _settle(page)
    page.locator('[data-testid="stSidebarNav"] a').filter(has_text="Train").first.click()
    _settle(page)
    return page


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def app_run(browser, url: str, runs_dir: Path, server_pid: int, watch: bool = True) -> dict:
    """Start the preset from one session and watch it from a second; ``watch=False`` closes both
    browsers once the run has started (the training process alone, for comparison)."""
    owner_context, viewer_context = browser.new_context(), browser.new_context()
    closed = False
    try:
        owner = _open_train(owner_context, url)
        owner.get_by_text("Dataset ETTh1, backbone smollm2-135m.").wait_for()  # the preset's own choices
        load = os.getloadavg()
        started = time.perf_counter()
        server_cpu = _cpu_seconds(server_pid)
        owner.get_by_role("button", name="Start training").click()
        owner.get_by_role("button", name="Stop", exact=True).wait_for()
        viewer = _open_train(viewer_context, url)
        viewer.get_by_text("Only the session that started this run can stop it.").wait_for()
        if watch:
            owner.get_by_text("Finished: the best weights").wait_for(timeout=RUN_TIMEOUT_MS)
        else:
            owner_context.close()
            viewer_context.close()
            closed = True
            run = _newest_run(runs_dir)
            deadline = time.time() + RUN_TIMEOUT_MS / 1000
            while not (run / "baselines.json").exists() and time.time() < deadline:  # written last
                time.sleep(0.5)
        wall = time.perf_counter() - started
        server_cpu = _cpu_seconds(server_pid) - server_cpu
    finally:
        if not closed:
            owner_context.close()
            viewer_context.close()
    run = _newest_run(runs_dir)
    return {"where": "app, two sessions" if watch else "app, sessions closed", "run": run.name, "wall_s": wall,
            "server_cpu_s": round(server_cpu, 1), "load_before": [round(v, 2) for v in load],
            "steps": step_times(run)}


def summary(rows: list[dict]) -> dict:
    pooled = [s for row in rows for s in row["steps"]]
    return {"median_step_s": statistics.median(pooled), "runs": len(rows), "steps": len(pooled),
            "run_medians_s": [round(statistics.median(row["steps"]), 3) for row in rows],
            "wall_s": [round(row["wall_s"], 1) for row in rows]}


def write_report(result: dict, output: Path) -> None:
    terminal, app, alone = result["terminal"], result["app"], result["app_alone"]
    ratio = result["ratio"]
    verdict = "meets" if ratio <= TARGET_RATIO else "does NOT meet"
    lines = [
        "# Training while two browser sessions watch",
        "",
        "`cpu-quick` (ETTh1, SmolLM2-135M, 2 epochs of 20 steps) from the terminal vs started from the app's "
        "Train page while a second session watches it. Training (the terminal's process; the app's server "
        f"and its training process) pinned to core {TRAIN_CORE}; both Chromium sessions and their driver to "
        f"core {BROWSER_CORE}. Runs alternate terminal / app.",
        "",
        f"- CPU: {result['cpu']} ({result['cpus']} CPUs visible); Python {result['python']}; measured "
        f"{result['date']}.",
        f"- Load average (1/5/15 min) before each run: " + "; ".join(
            f"{row['where']} {row['load_before']}" for row in result["rows"]) + ". A 1-minute load above "
        "about 1 before a run means other work was running besides the measurement's own previous run.",
        "",
        "| where | runs | steps timed | median step (s) | per-run medians (s) | wall (s) |",
        "| --- | ---: | ---: | ---: | --- | --- |",
        f"| terminal, `taskset -c {TRAIN_CORE}` | {terminal['runs']} | {terminal['steps']} | "
        f"{terminal['median_step_s']:.3f} | {terminal['run_medians_s']} | {terminal['wall_s']} |",
        f"| app, two sessions | {app['runs']} | {app['steps']} | {app['median_step_s']:.3f} | "
        f"{app['run_medians_s']} | {app['wall_s']} |",
        f"| app, sessions closed once started | {alone['runs']} | {alone['steps']} | "
        f"{alone['median_step_s']:.3f} | {alone['run_medians_s']} | {alone['wall_s']} |",
        "",
        f"**Ratio app / terminal (median step): {ratio:.2f}x**, which {verdict} the {TARGET_RATIO}x target. "
        "Before training moved to a process of its own, the same set-up measured 6.64 s against 0.87 s (7.6x). "
        f"Started from the app with both sessions then closed: {result['ratio_alone']:.2f}x (the training process "
        "itself, no one watching).",
        "",
        "The web server's own CPU time during each app run (both sessions' page updates; training excluded): "
        + ", ".join(f"{row['server_cpu_s']} s of {row['wall_s']:.0f} s" for row in result["rows"]
                    if "server_cpu_s" in row) + ".",
        "",
        "App wall time counts from the Start click to \"Finished\" on the page: it includes starting the "
        "training process (importing torch), loading the data and backbone, every evaluation and the final "
        "test; the terminal's counts the whole command.",
        "",
        "Reproduce: `.venv/bin/python benchmarks/two_viewers.py` (needs 2 CPUs, `taskset` and /usr/bin/chromium).",
        "",
    ]
    output.write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=str(PROJECT_ROOT / "benchmarks" / "two_viewers.md"))
    args = parser.parse_args()
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("needs two CPUs: one for training, one for the browsers")
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="two-viewers-"))
    os.sched_setaffinity(0, {BROWSER_CORE})  # the Playwright driver and Chromium inherit it
    server, url = start_server(work / "app-runs")
    rows = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                for repeat in range(args.repeats):
                    for measure in (lambda: terminal_run(work / "terminal-runs"),
                                    lambda: app_run(browser, url, work / "app-runs", server.pid),
                                    lambda: app_run(browser, url, work / "app-runs", server.pid, watch=False)):
                        row = measure()
                        rows.append(row)
                        print(f"{row['where']}: median step {statistics.median(row['steps']):.3f} s over "
                              f"{len(row['steps'])} steps, wall {row['wall_s']:.1f} s, load {row['load_before']}, "
                              f"server CPU {row.get('server_cpu_s', '-')} s", flush=True)
            finally:
                browser.close()
    finally:
        server.terminate()
        server.wait(30)
    terminal = summary([r for r in rows if r["where"] == "terminal"])
    app = summary([r for r in rows if r["where"] == "app, two sessions"])
    alone = summary([r for r in rows if r["where"] == "app, sessions closed"])
    result = {"cpu": _cpu_name(), "cpus": os.cpu_count(), "python": platform.python_version(),
              "date": time.strftime("%Y-%m-%d %H:%M"), "terminal": terminal, "app": app, "app_alone": alone,
              "ratio": app["median_step_s"] / terminal["median_step_s"],
              "ratio_alone": alone["median_step_s"] / terminal["median_step_s"], "rows": rows}
    output = Path(args.output)
    output.with_suffix(".json").write_text(json.dumps(result, indent=2), encoding="utf-8")  # first: the data
    write_report(result, output)
    print(output.read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
