"""A reloaded run equals the run that was trained: same backbone weights, same test MSE (real SmolLM2)."""

import json
import subprocess
import sys

import pytest

from timellm_core.backbones import is_available, resolve_backbone_spec
from timellm_core.cli import main
from timellm_core.training.runs import TEST_METRICS_FILE, list_runs

# cpu-quick, made smaller still: a few steps are enough, the point is the reload.
SHORT_RUN = ["train", "--preset", "cpu-quick", "--seq_len", "32", "--pred_len", "8", "--train_epochs", "1",
             "--max_train_windows", "16", "--max_eval_windows", "24", "--device", "cpu"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    if not is_available(resolve_backbone_spec("smollm2-135m")):
        pytest.fail("smollm2-135m is not in base_models/: run `make models` first.")
    runs_dir = tmp_path_factory.mktemp("runs")
    assert main([*SHORT_RUN, "--runs_dir", str(runs_dir)]) == 0
    (run,) = list_runs(str(runs_dir))
    return run.path, json.loads((run.path / TEST_METRICS_FILE).read_text())["test_mse"]


@pytest.mark.slow
def test_evaluate_in_a_fresh_process_gives_the_trained_test_mse(trained_run, project_root):
    path, trained_mse = trained_run
    result = subprocess.run([sys.executable, "-m", "timellm_core", "evaluate", "--run", str(path), "--json",
                             "--no_baselines"], cwd=project_root, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    reloaded = json.loads(result.stdout)["model"]
    assert reloaded["test_windows"] == 24
    assert reloaded["test_mse"] == pytest.approx(trained_mse, rel=1e-5)


@pytest.mark.slow
def test_the_apps_reloaded_run_gives_the_trained_test_mse(trained_run):
    from explorer_ui.model import _run_model
    from timellm_core.training.restore import evaluate_run
    from timellm_core.training.runs import load_run

    path, trained_mse = trained_run
    config = load_run(path).config
    model, data = _run_model(str(path), (path / "model.safetensors").stat().st_mtime, config.backbone)
    assert evaluate_run(path, model=model, data=data)["test_mse"] == pytest.approx(trained_mse, rel=1e-5)
