# Two commands for a new user: `make run` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
MODELS := models/manifest.json

.PHONY: setup models run test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "playlistgen needs Python 3.11 (essentia-tensorflow wheels); found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP)

models: $(STAMP)
	$(BIN)/playlistgen models install --models-dir models

run: setup models
	mkdir -p library
	$(BIN)/playlistgen serve --library ./library

test: setup models
	$(BIN)/ruff check playlistgen tests bench
	$(BIN)/python -m pytest

bench: setup models
	$(BIN)/python bench/db.py

clean:
	rm -rf $(VENV) build dist *.egg-info
