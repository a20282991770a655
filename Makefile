# `make run` and `make test` each set up .venv on their own, so both work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STORAGE ?= sqlite:///embedauth.db

.PHONY: run test lint typecheck unit bench docs screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	@$(BIN)/embedauth --storage $(STORAGE) permissions add devices:read --description "List devices" --if-missing > /dev/null
	@$(BIN)/embedauth --storage $(STORAGE) permissions add devices:write --description "Change devices" --access write --if-missing > /dev/null
	@$(BIN)/embedauth --storage $(STORAGE) admins create --tenant site-1 --if-missing
	@echo
	@echo "embedauth on http://127.0.0.1:8000 (storage $(STORAGE)); the admin page is http://127.0.0.1:8000/admin/"
	@echo "(sign in with the admin registration above). In another terminal:"
	@echo "  1. $(BIN)/embedauth --storage $(STORAGE) registrations create --tenant site-1 --name 'Backup script' --scope devices:read"
	@echo "  2. curl -s -u CLIENT_ID:CLIENT_SECRET -d grant_type=client_credentials http://127.0.0.1:8000/oauth/token"
	@echo "  3. curl -s -H 'Authorization: Bearer ACCESS_TOKEN' http://127.0.0.1:8000/demo/whoami"
	$(BIN)/embedauth --storage $(STORAGE) serve --host 127.0.0.1 --port 8000

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks mkdocs_hooks.py
	$(BIN)/ruff format --check src tests benchmarks mkdocs_hooks.py

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python -m benchmarks

# The documentation site, into site/; --strict turns a broken link or a missing page into a failure.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# The admin page's screenshots in docs/img/admin/, from the browser tests (Chromium).
screenshots: $(STAMP)
	EMBEDAUTH_ARTIFACTS=docs/img/admin $(BIN)/pytest -q -p no:cacheprovider tests/browser -k "screens and starlette"
	rm -f docs/img/admin/sign-in-* docs/img/admin/permissions-*

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache site
