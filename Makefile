# robofleet: `make serve` starts the orchestrator, `make test` runs the whole suite (ruff, mypy, pytest).
SHELL := /bin/bash
VENV ?= .venv
# The interpreter of the venv: the first of these that runs and is 3.11 or newer. Each candidate is run, quietly:
# under pyenv a version that is not installed still has a shim on PATH, which prints "command not found" and fails.
# Probed once, and only when a recipe needs it (the venv does not exist yet).
PYTHON_CANDIDATES := python3.14 python3.13 python3.12 python3.11 python3
PYTHON ?= $(eval PYTHON := $(shell for p in $(PYTHON_CANDIDATES); do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && echo $$p && break; done))$(PYTHON)
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.runtime-installed
DEV := $(VENV)/.dev-installed
ASSETS := src/robofleet/web/static/vendor/.built

.PHONY: serve test lint typecheck pytest assets system-deps clean

# Without ./robofleet.toml, the demo settings; said, because a bare `robofleet settings show` would not read them.
serve: $(RUNTIME) $(ASSETS)
	@$(if $(wildcard robofleet.toml),,echo "No ./robofleet.toml: serving examples/demo.toml" \
		"(robofleet settings show --config examples/demo.toml prints these settings)")
	$(BIN)/robofleet serve $(if $(wildcard robofleet.toml),,--config examples/demo.toml)

test: $(DEV) $(ASSETS) system-deps lint typecheck pytest

lint: $(DEV)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(DEV)
	$(BIN)/mypy
	$(BIN)/mypy --strict bench

pytest: $(DEV) $(ASSETS)
	$(BIN)/pytest

assets: $(ASSETS)

$(ASSETS): package.json package-lock.json scripts/build-assets.sh
	bash scripts/build-assets.sh

system-deps:
	bash scripts/install-system-deps.sh
	bash scripts/rdp-test-server.sh

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "robofleet needs Python 3.11 or newer" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(RUNTIME): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(DEV): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	touch $(RUNTIME) $@

clean:
	rm -rf $(VENV) node_modules src/robofleet/web/static/vendor .pytest_cache .mypy_cache .ruff_cache
