# The two commands of the README: `make run` and `make test`. Both bring the local stack up first.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

DAPR_HOME ?= $(or $(DAPR_RUNTIME_PATH),$(HOME))/.dapr
export PATH := $(DAPR_HOME)/bin:$(PATH)
# daprd advertises this address to placement and name resolution (see stack/stack.env).
export DAPR_HOST_IP := 127.0.0.1
export UV_PYTHON ?= 3.11
# uv from PATH, or the one `make deps` installs with pip (run as a module: no PATH refresh needed).
UV := $(shell command -v uv || echo python3 -m uv)
MONGODB_URI ?= mongodb://127.0.0.1:27017/?retryWrites=false
export MONGODB_URI
# The event bus: redis (Redis streams) or kafka (`make up PUBSUB=kafka` starts a Kafka broker).
PUBSUB ?= redis
export PUBSUB
# The e2e modules `make test-kafka` runs on Kafka (events, queues, ordered keys, scale-out,
# the fault suite).
KAFKA_E2E ?= tests/e2e/test_walking_skeleton.py tests/e2e/test_job_engine.py \
	tests/e2e/test_scale_out.py tests/e2e/test_faults.py

.PHONY: help deps up down browser run run-scaled test test-kafka lint unit integration e2e bench bench-workflows bench-profile bench-hot-path bench-transports bench-dashboard image components

help:
	@echo "make run   - start the stack, then the worker with its sidecar (dapr run -f dapr.yaml)"
	@echo "make test  - start the stack, then lint, type-check and run every test layer"
	@echo "make run-scaled INSTANCES=3 - the same with N worker instances, each with its own daprd"
	@echo "make up / make down - start / stop the local stack (Redis, SecantusDB, placement, scheduler)"

deps:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@$(UV) sync --frozen --quiet

up: deps
	@stack/up.sh

down:
	@stack/down.sh

browser:
	@stack/install-browser.sh

# The cron binding components, written from the workers' decorators (a test fails when stale).
components: deps
	$(UV) run --frozen python -m app.dapr.cron_components

# The container image (buildah), on a Debian 12 base made here when python:3.11-slim is not at hand.
image:
	@stack/image.sh

run: up components
ifeq ($(PUBSUB),kafka)
	.venv/bin/python stack/scale.py --instances 1 --grpc-port 50001 > .state/dapr.kafka.yaml
	dapr run -f .state/dapr.kafka.yaml
else
	dapr run -f dapr.yaml
endif

INSTANCES ?= 3
run-scaled: up components
	.venv/bin/python stack/scale.py --instances $(INSTANCES) > .state/dapr.scaled.yaml
	dapr run -f .state/dapr.scaled.yaml

lint: deps
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy

unit: deps
	$(UV) run --frozen pytest tests/unit

integration: up
	$(UV) run --frozen pytest tests/integration

e2e: up browser
	$(UV) run --frozen pytest tests/e2e

# With PUBSUB=kafka: ours on Kafka and on Redis streams, and the peers, in one run (the
# workflow benchmark does not depend on the broker, and is left out).
bench: up
	$(UV) run --frozen python -m bench.queue_throughput
ifneq ($(PUBSUB),kafka)
	$(UV) run --frozen python -m bench.workflow_throughput
endif

bench-workflows: up
	$(UV) run --frozen python -m bench.workflow_throughput

bench-dashboard: deps
	$(UV) run --frozen python -m bench.dashboard_pages --runs 100000

bench-profile: up
	$(UV) run --frozen python -m bench.queue_throughput --events 4000 --profile 10

bench-hot-path: up
	$(UV) run --frozen python -m bench.hot_path

bench-transports: up
	$(UV) run --frozen python -m bench.transports.run

test: up browser lint
	$(UV) run --frozen pytest tests

# The same worker on Apache Kafka: the e2e modules of KAFKA_E2E with the `pubsub` component on
# the stack's Kafka broker (started here, beside the rest of the stack).
test-kafka: export PUBSUB = kafka
test-kafka: up
	$(UV) run --frozen pytest $(KAFKA_E2E)
