"""Start the app in a server process of its own and wait until it answers (for scripts that drive a browser)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Sequence

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_app(runs_dir: Path, *, command_prefix: Sequence[str] = (), extra_args: Sequence[str] = (),
              timeout_s: float = 120.0) -> tuple[subprocess.Popen, str]:
    """(server process, its URL) of `streamlit run app.py` on a free local port, runs kept in ``runs_dir``,
    offline. ``command_prefix`` goes before the interpreter (e.g. ``taskset -c 1``)."""
    port = free_port()
    env = dict(os.environ, TIMELLM_RUNS=str(runs_dir), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    server = subprocess.Popen(
        [*command_prefix, sys.executable, "-m", "streamlit", "run", str(PROJECT_ROOT / "app.py"),
         "--server.address", "127.0.0.1", "--server.port", str(port), "--server.headless", "true", *extra_args],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                return server, url
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit("the app did not start")
