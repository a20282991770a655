# `make run` and `make test` each set up .venv on their own, so both work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STORAGE ?= sqlite:///embedauth.db

.PHONY: run test lint typecheck unit bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/embedauth --storage $(STORAGE) permissions add devices:read --description "List devices" --if-missing
	$(BIN)/embedauth --storage $(STORAGE) permissions add devices:write --description "Change devices" --access write --if-missing
	@echo "Storage: $(STORAGE). Next:"
	@echo "  $(BIN)/embedauth registrations create --tenant site-1 --name 'Backup script' --scope devices:read --json"
	@echo "  $(BIN)/embedauth registrations list --tenant site-1"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
