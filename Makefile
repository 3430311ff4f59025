# One command per task. `make help` lists them.
SHELL := /bin/bash
UV_VERSION := 0.13.8
# uv from PATH, else the one `make env` installs for this Python.
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
PYTEST_WORKERS ?= auto

.DEFAULT_GOAL := help
.PHONY: help env run codes test test-fast lint format bench migrate clean

help: ## List the tasks
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

env: ## Create .venv from the lock file (installs uv first if missing)
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet "uv==$(UV_VERSION)"
	@$(UV) sync --frozen --quiet

run: env ## Run the whole suite (embedded PostgreSQL unless DATABASE_URL is set)
	@$(UV) run --frozen python -m ops.run

codes: env ## Print the one-time codes development sent by SMS and e-mail (while `make run` runs)
	@$(UV) run --frozen python -m ops.dev_codes $(ARGS)

test: env ## Run every test against a real PostgreSQL (embedded unless TEST_DATABASE_URL is set)
	@$(UV) run --frozen pytest -n $(PYTEST_WORKERS) --dist loadscope $(ARGS)

test-fast: env ## Run the tests except the end-to-end flows
	@$(UV) run --frozen pytest -m "not flow" $(ARGS)

lint: env ## ruff (lint + format check), mypy strict, import boundaries
	@$(UV) run --frozen ruff check .
	@$(UV) run --frozen ruff format --check .
	@$(UV) run --frozen mypy kit gateway services ops tests bench
	@$(UV) run --frozen lint-imports

format: env ## Apply ruff's fixes and formatting
	@$(UV) run --frozen ruff check --fix .
	@$(UV) run --frozen ruff format .

bench: env ## Run the benchmarks; each prints ratios against a baseline measured in the same run
	@$(UV) run --frozen python -m bench

migrate: env ## Apply every service's migrations to DATABASE_URL (what the deploy job runs)
	@$(UV) run --frozen python -m ops.migrate

clean: ## Remove the environment and local data (embedded databases, logs)
	rm -rf .venv .data
