"""Shared test setup: datasets are found through TIMELLM_DATA (../shared/datasets by default)."""

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
_SHARED = PROJECT_ROOT.parent / "shared" / "datasets"
if "TIMELLM_DATA" not in os.environ and _SHARED.is_dir():
    os.environ["TIMELLM_DATA"] = str(_SHARED)

# Tests never touch the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT
