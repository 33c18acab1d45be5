# churnlens — `make help` lists the targets. Everything installs from uv.lock into .venv.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3.11
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
RUN := $(VENV)/bin
DEMO_DIR ?= out/demo
DEMO_ACCOUNTS ?= 3000
DEMO_SEED ?= 42
PYTEST_ARGS ?=
BENTO_ARGS ?=
SCALE_ARGS ?=
SOAK_ARGS ?=
# No usage statistics from MLflow or BentoML from make targets (set them to false to opt in).
export MLFLOW_DISABLE_TELEMETRY ?= true
export BENTOML_DO_NOT_TRACK ?= true

.PHONY: help setup demo test lint typecheck unit audit bench soak bento clean

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv>=0.9,<1"

# The `spark` extra (pyspark, sqlglot) is installed too: the Spark parity tests run in CI.
$(VENV)/.synced: $(UV) uv.lock pyproject.toml
	UV_PYTHON=$(PYTHON) $(UV) sync --frozen --quiet --extra spark
	@touch $@

setup: $(VENV)/.synced ## Install churnlens and its locked dependencies into .venv
	@echo "churnlens installed in $(VENV) (run $(RUN)/churnlens --help)"

demo: export MLFLOW_TRACKING_URI ?= sqlite:///$(DEMO_DIR)/mlflow.db
demo: export CHURNLENS_DATABASE_URL ?= sqlite:///$(DEMO_DIR)/churnlens.db
demo: setup ## Simulate a base, validate, build timeline + indicators, train, score
	@mkdir -p $(DEMO_DIR)
	$(RUN)/churnlens simulate --out $(DEMO_DIR)/data --accounts $(DEMO_ACCOUNTS) --seed $(DEMO_SEED)
	$(RUN)/churnlens validate --data $(DEMO_DIR)/data
	$(RUN)/churnlens timeline --data $(DEMO_DIR)/data --out $(DEMO_DIR)/timeline.parquet
	$(RUN)/churnlens indicators --data $(DEMO_DIR)/data --out $(DEMO_DIR)/indicators.parquet --top 5
	$(RUN)/churnlens train --data $(DEMO_DIR)/data
	$(RUN)/churnlens score --data $(DEMO_DIR)/data --out $(DEMO_DIR)/scores.csv --top 10
	$(RUN)/churnlens drift --data $(DEMO_DIR)/data
	@echo "MLflow runs and registry: $(RUN)/mlflow ui --backend-store-uri $$MLFLOW_TRACKING_URI"

lint: setup ## Ruff (lint + format check) and mypy on the packages
	$(RUN)/ruff check .
	$(RUN)/ruff format --check .
	@mkdir -p .typecheck && ln -sfn .. .typecheck/churnlens
	cd .typecheck && ../$(RUN)/mypy --config-file ../pyproject.toml -p churnlens

# Spark needs Java 17+: JAVA_HOME from the `java` on the PATH when unset.
unit: export JAVA_HOME ?= $(shell j=$$(command -v java) && dirname "$$(dirname "$$(readlink -f "$$j")")")
unit: setup ## Run the test suite only (no lint)
	$(RUN)/pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

test: lint audit unit ## Install, lint, type-check, audit the lock and run every test (slow ones included)

audit: setup ## Known vulnerabilities in uv.lock (pip-audit; says so when the advisory service is unreachable)
	$(RUN)/python .ci/audit.py --uv $(UV)

bench: setup ## Benchmarks: each figure beside a baseline measured in the same run
	$(RUN)/python bench/run.py
	$(RUN)/python bench/quality.py
	$(RUN)/python bench/serving.py
	$(RUN)/python bench/ui.py
	$(RUN)/python bench/scale.py $(SCALE_ARGS)

soak: setup ## Load + soak on loopback: 10 min steady, 1 min at 5x (SOAK_ARGS="--duration 60")
	$(RUN)/python bench/load.py $(SOAK_ARGS)

bento: setup ## Build the API as a bento with the champion inside (BENTO_ARGS="--model URI")
	$(RUN)/churnlens bento --uv $(UV) $(BENTO_ARGS)

clean: ## Remove the environment and generated outputs
	rm -rf $(VENV) $(TOOLS) .typecheck out dist build .pytest_cache .mypy_cache .ruff_cache
