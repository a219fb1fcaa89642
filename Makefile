# gitlab-copilot-agent — every target installs what it needs, idempotently.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# npm installs the CLI of this machine's OS and CPU only (copilot-linux-x64, -arm64, darwin-...).
COPILOT = $(firstword $(wildcard node_modules/@github/copilot-*/copilot))
COPILOT_CACHE := .data/copilot-cache

.PHONY: help setup sandbox-check test test-fast run demo temporal lint format bench eval clean

help:  ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

setup: $(VENV)/.installed node_modules/.installed $(COPILOT_CACHE)/.warm sandbox-check  ## venv, pinned Python deps, pinned Copilot CLI, pre-warmed, bubblewrap

# The local executor runs every agent in a bubblewrap sandbox and refuses to run agents without it.
sandbox-check: $(VENV)/.installed  ## bubblewrap present and working (installed with apt-get when root)
	@command -v bwrap >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y bubblewrap || { apt-get update && apt-get install -y bubblewrap; }; \
	  else echo "agent runs need bubblewrap; install it: sudo apt-get install -y bubblewrap" >&2; exit 1; fi; }
	@$(PY) -c "from executors.process_sandbox import check; check()"

$(VENV)/.installed: requirements-dev.lock requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-dev.lock
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(COPILOT_CACHE)/.warm: node_modules/.installed
	mkdir -p $(COPILOT_CACHE)
	@test -n "$(COPILOT)" || { echo "no Copilot CLI for $$(uname -sm) under node_modules/@github" >&2; exit 1; }
	XDG_CACHE_HOME=$(COPILOT_CACHE) $(COPILOT) --version >/dev/null
	touch $@

# Bytecode caching on for the suite even where the environment turns it off (PYTHONDONTWRITEBYTECODE):
# without it every xdist worker re-rewrites the tests' asserts (~8 s of CPU each) and every sandboxed
# report tool recompiles contracts/ on each agent run.
test: setup  ## run the whole test suite (starts its own Temporal and stand-ins)
	env -u PYTHONDONTWRITEBYTECODE $(PY) -m pytest

run: setup  ## run for real from .env: Temporal dev server (unless TEMPORAL_ADDRESS), worker, API on :8000
	$(PY) -m devenv.run

demo: setup  ## end to end on one machine, no credentials: stand-ins, Temporal, worker, API, one review
	$(PY) -m devenv.demo

temporal: setup  ## Temporal dev server alone: gRPC :7233, Web UI :8233, history in .data/temporal.db
	mkdir -p .data
	$(VENV)/bin/temporal server start-dev --ip 127.0.0.1 --port 7233 --ui-port 8233 \
	  --db-filename .data/temporal.db $$($(PY) -c 'from devenv.temporal_server import search_attribute_flags as f; print(" ".join(f()))')

lint: setup  ## ruff check and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup  ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: setup  ## run every benchmark under bench/ and print the figures
	for script in bench/bench_*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

eval: setup  ## review the evaluation corpus through the service and print its figures (EVAL_ARGS: see README)
	$(PY) -m eval run $(EVAL_ARGS)

clean:  ## remove the virtualenv, node_modules and .data
	rm -rf $(VENV) node_modules .data

include mk/deploy.mk
