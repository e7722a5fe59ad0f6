# goldstress — the two commands of the contract:
#   make run  [DATA=<dir>]   install everything, run the full stress test
#   make test [DATA=<dir>]   install everything, run the tests
# Needs only Python >= 3.11 and make. Everything else comes from requirements.lock.

SHELL  := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   ?=

# Telemetry off (the one list: goldstress/telemetry.env).
include goldstress/telemetry.env
export $(shell sed -n 's/^\([A-Z_]*\)=.*/\1/p' goldstress/telemetry.env)
# A cold ephemeral Prefect server takes ~15 s on 2 cores: the 20 s default is too close.
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 120
export PYTHONPATH := $(CURDIR)

ifneq ($(strip $(DATA)),)
export GOLDSTRESS_DATA_DIR := $(abspath $(DATA))
endif

.PHONY: run test lint format install browser serve serve-prefect serve-mlflow bench lock clean

run: $(STAMP)
	$(BIN)/goldstress run

test: $(STAMP) browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Lint, format check, type check (models/ and the platform), and the layer contract (pyproject.toml).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The dashboard's browser tests drive Debian's chromium (Playwright never downloads a browser).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian's chromium for the browser tests"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| echo "could not install chromium (needs root and apt): browser tests will skip"; }

serve: $(STAMP)
	$(BIN)/python -m service.serve --host 127.0.0.1 --port 8000

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "goldstress needs Python >= 3.11, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	@# (the grep only hides pip's notes about configured package folders absent on this machine)
	$(BIN)/python -m pip install --quiet --no-input -r requirements.lock 2>&1 \
		| { grep -v "is ignored: it is neither a file nor a directory" || true; }
	@# the project itself, editable, for the `goldstress` command in $(BIN)
	$(BIN)/python -m pip install --quiet --no-input --no-deps -e . 2>&1 \
		| { grep -v "is ignored: it is neither a file nor a directory" || true; }
	@touch $@

# Regenerate the locks after editing pyproject.toml (needs uv: pip install uv): the dev lock, then
# the image's runtime lock at the same versions.
lock:
	uv pip compile pyproject.toml --extra dev --python-version 3.11 --universal -o requirements.lock
	uv pip compile pyproject.toml --python-version 3.11 --universal -c requirements.lock -o requirements-runtime.lock

bench: $(STAMP)
	$(BIN)/python bench/benchmark.py

serve-prefect: $(STAMP)
	$(BIN)/prefect server start --host 127.0.0.1 --port 4200

serve-mlflow: $(STAMP)
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/mlflow server --workers 1 --host 127.0.0.1 --port 5000 \
		--backend-store-uri sqlite:///$(CURDIR)/var/mlflow.db --default-artifact-root $(CURDIR)/var/mlartifacts

clean:
	rm -rf var reports
