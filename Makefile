# Every target creates or updates the project-local virtual environment first.
# pip (not uv/poetry) so that torch 2.14.1 / torchvision 0.29.1 come from this machine's disk.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: venv demo test lint bench ui clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(BIN)/mulde-vad demo

test: venv
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# Local Prefect server (127.0.0.1, SQLite in .prefect/), the prefect.yaml deployments and a worker; Ctrl-C stops all.
ui: venv
	$(BIN)/mulde-vad ui

lint: venv
	$(BIN)/ruff check .

bench: venv
	$(BIN)/python bench/mulde_speed.py
	$(BIN)/python bench/tabular.py
	$(BIN)/python bench/extract_speed.py --frames 16

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
