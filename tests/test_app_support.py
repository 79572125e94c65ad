"""Shared pieces of the app tests (imported by the other test_app_* modules), and a test of them.

The app runs in ``streamlit.testing.v1.AppTest``: the real app.py with its st.navigation, the real
pages and the real timellm_core. Runs are written to a temporary runs folder (``TIMELLM_RUNS``)
by ``timellm_core.training`` itself, with a tiny backbone and a few windows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest
import streamlit.config
from streamlit.testing.v1 import AppTest

from timellm_core.config import BackboneConfig, DataConfig, RunConfig, TimeLLMConfig, TrainingConfig

APP = Path(__file__).resolve().parents[1] / "app.py"
TIMEOUT_S = 240  # one script run, under a loaded 2-core machine


def tiny_run_config(dataset: str = "ETTh1", **training: Any) -> RunConfig:
    """T=32 -> 8 on a tiny GPT-2 with one layer: a run in seconds."""
    values = dict(batch_size=8, eval_batch_size=16, train_epochs=1, learning_rate=0.01, lradj="constant",
                  patience=2, max_train_windows=32, max_eval_windows=16, seed=3, device="cpu")
    values.update(training)
    return RunConfig(
        data=DataConfig(name=dataset, features="M"),
        backbone=BackboneConfig(name="tiny-gpt2", llm_layers=1),
        model=TimeLLMConfig(seq_len=32, pred_len=8, patch_len=8, stride=4, d_model=8, d_ff=16, n_heads=2,
                            num_prototypes=20),
        training=TrainingConfig(**values),
    ).validate()


def train_tiny_run(runs_dir: Path, config: RunConfig | None = None) -> str:
    """Train a finished run through timellm_core.training; returns its run id."""
    from timellm_core.training import RunFolder, Trainer

    config = config or tiny_run_config()
    run = RunFolder.create(config, runs_dir)
    result = Trainer(config, run=run).run()
    assert result.status == "finished", result
    return run.run_id


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(runs folder, run id) of one finished tiny ETTh1 run, shared by the app tests."""
    runs_dir = tmp_path_factory.mktemp("app-runs")
    return runs_dir, train_tiny_run(runs_dir)


@pytest.fixture
def app_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty runs folder and uploads folder for one test; full error details in AppTest."""
    runs = tmp_path / "runs"
    runs.mkdir()
    monkeypatch.setenv("TIMELLM_RUNS", str(runs))
    monkeypatch.setenv("TIMELLM_UPLOADS", str(tmp_path / "uploads"))
    # The app hides error details from people (config.toml); a test must see them.
    streamlit.config.set_option("client.showErrorDetails", "full")
    yield runs


@pytest.fixture(autouse=True)
def no_job_running() -> Iterator[None]:
    """Tests share the process-wide job registry: never leave a job running for the next test.

    Autouse in every module that imports it by name (the Train and comparison page tests)."""
    yield
    from timellm_core.training import default_registry

    for job in default_registry().jobs():
        if job.is_active:
            job.cancel()
            job.wait(120)


def start_app(**state: Any) -> AppTest:
    """Run app.py once (the Home page), then set session state for the next run."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)
    at.run()
    assert_clean(at)
    for key, value in state.items():
        at.session_state[key] = value
    return at


def open_page(at: AppTest, page: str) -> AppTest:
    """Switch to pages/<page>.py, run, and check nothing failed."""
    at.switch_page(f"pages/{page}.py").run()
    assert_clean(at)
    return at


def assert_clean(at: AppTest) -> None:
    """No uncaught exception and no st.error on the page."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def plotly_specs(at: AppTest) -> list[dict]:
    """The Plotly figures on the page, as the JSON the browser receives."""
    return [json.loads(element.proto.spec) for element in at.get("plotly_chart")]


def frame_with(at: AppTest, column: str) -> Any:
    """The first st.dataframe on the page that has ``column`` (AppTest does not keep their keys)."""
    for element in at.dataframe:
        if column in element.value.columns:
            return element.value
    raise AssertionError(f"no dataframe with a {column!r} column; columns: "
                         f"{[list(e.value.columns) for e in at.dataframe]}")


def trace_types(at: AppTest) -> list[str]:
    return [trace.get("type", "scatter") for spec in plotly_specs(at) for trace in spec["data"]]


def texts(at: AppTest) -> str:
    """Every info, caption and markdown text on the page, joined (for 'it says what to do' checks)."""
    parts = [e.value for e in at.info] + [e.value for e in at.caption] + [e.value for e in at.markdown]
    return "\n".join(str(p) for p in parts)


def test_tiny_run_config_is_small_and_valid():
    config = tiny_run_config()
    assert config.model.patch_count == 8 and config.backbone.name == "tiny-gpt2"
    assert config.training.max_train_windows == 32
