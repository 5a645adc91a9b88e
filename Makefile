# The two commands of the README: `make run` and `make test`. Both bring the local stack up first.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

DAPR_HOME ?= $(or $(DAPR_RUNTIME_PATH),$(HOME))/.dapr
export PATH := $(DAPR_HOME)/bin:$(PATH)
# daprd advertises this address to placement and name resolution (see stack/stack.env).
export DAPR_HOST_IP := 127.0.0.1
export UV_PYTHON ?= 3.11
MONGODB_URI ?= mongodb://127.0.0.1:27017/?retryWrites=false
export MONGODB_URI

.PHONY: help deps up down run test lint unit integration e2e

help:
	@echo "make run   - start the stack, then the worker with its sidecar (dapr run -f dapr.yaml)"
	@echo "make test  - start the stack, then lint, type-check and run every test layer"
	@echo "make up / make down - start / stop the local stack (Redis, SecantusDB, placement, scheduler)"

deps:
	@command -v uv >/dev/null || python3 -m pip install --quiet uv
	@uv sync --frozen --quiet

up: deps
	@stack/up.sh

down:
	@stack/down.sh

run: up
	dapr run -f dapr.yaml

lint: deps
	uv run --frozen ruff check .
	uv run --frozen ruff format --check .
	uv run --frozen mypy

unit: deps
	uv run --frozen pytest tests/unit

integration: up
	uv run --frozen pytest tests/integration

e2e: up
	uv run --frozen pytest tests/e2e

test: up lint
	uv run --frozen pytest tests
