# Every target sets up what it needs (virtualenv, dependencies) first; `make help` lists them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
RUNS   ?= 1000000

.DEFAULT_GOAL := help
.PHONY: help install run run-prod test fuzz lint fmt seed migrate uninstall prune-runs api-key bench bench-writes bench-freshness clean-db

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-15s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q --upgrade pip
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the service with its dev tools

run: $(STAMP) ## Serve on http://localhost:8000 with reload (embedded PostgreSQL unless DATABASE_URL/DB_* is set)
	$(BIN)/python app.py --reload

# run-prod: one worker per core unless WORKERS is given.
WORKERS ?= $(shell $(PYTHON) -c 'import os; print(os.cpu_count() or 1)')

run-prod: $(STAMP) ## Serve with WORKERS worker processes (default: one per core), no reload; several instances may share one embedded data folder
	$(BIN)/python app.py --workers $(WORKERS)

# Two parts: most tests on two pytest-xdist workers, then those that start services or assert a time
# bound (markers live, slow, timing) in one process, so that no other test competes with them for
# the two cores. Exit status 5 (nothing selected, e.g. with ARGS='-k name') is not a failure.
FAST_TESTS   := not fuzz and not live and not slow and not timing
SERIAL_TESTS := (live or slow or timing) and not fuzz

test: $(STAMP) ## Run the tests against a real PostgreSQL (embedded, or DATABASE_URL/DB_* when set); ARGS='-k name -x' go to pytest
	$(BIN)/python -m pytest -m "$(FAST_TESTS)" $(ARGS) || [ $$? = 5 ]
	$(BIN)/python -m pytest -n 0 -m "$(SERIAL_TESTS)" $(ARGS) || [ $$? = 5 ]

fuzz: $(STAMP) ## schemathesis against the live OpenAPI document: >= 2,000 cases, every contract check (FUZZ_SEED, FUZZ_MAX_EXAMPLES)
	$(BIN)/python -m pytest -n 0 -m fuzz tests/test_fuzz.py -s

lint: $(STAMP) ## ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

fmt: $(STAMP) ## Format and auto-fix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

migrate: $(STAMP) ## Create missing tables and indexes in the configured database, then exit (DRY_RUN=1: print the SQL)
	$(BIN)/python -m db.migrate $(if $(DRY_RUN),--dry-run)

uninstall: $(STAMP) ## Remove the service's triggers, indexes, functions and tables, never the engines' (DRY_RUN=1: print the SQL)
	$(BIN)/python -m db.uninstall $(if $(DRY_RUN),--dry-run)

prune-runs: $(STAMP) ## Delete finished runs older than DAYS days with their states and checkpoints, in batches (ARCHIVE=file.jsonl keeps them; DRY_RUN=1 counts)
	@test -n "$(DAYS)" || { echo "usage: make prune-runs DAYS=90 [ARCHIVE=old-runs.jsonl] [DRY_RUN=1]"; exit 2; }
	$(BIN)/python -m db.retention --older-than-days $(DAYS) $(if $(ARCHIVE),--archive $(ARCHIVE)) $(if $(DRY_RUN),--dry-run)
api-key: $(STAMP) ## Make an API key and print its token once (NAME=dash SCOPES=read+write); ACTION=list|revoke NAME=...
	$(BIN)/python -m auth $(or $(ACTION),create) $(if $(filter list,$(ACTION)),,$(NAME)) $(if $(or $(filter create,$(ACTION)),$(if $(ACTION),,x)),--scopes $(SCOPES))

seed: $(STAMP) ## Fill the database with realistic demo runs, states and checkpoints (N=500)
	$(BIN)/python -m db.seed --runs $${N:-500}

bench: $(STAMP) ## Benchmark against the FastAPI + asyncpg peer at RUNS runs (default 1,000,000)
	RUNS=$(RUNS) bash bench/run.sh

# bench-writes preloads 100,000 runs unless RUNS is given (the 1,000,000 above is for `make bench`).
WRITE_RUNS := $(if $(filter file,$(origin RUNS)),100000,$(RUNS))

bench-writes: $(STAMP) ## What the service's install costs engine writes: pgbench cycles/s, bare vs installed (RUNS=100000 DURATION=10 REPEAT=2 DATABASE_URL=server)
	$(BIN)/python bench/engine_writes.py --runs $(WRITE_RUNS) --duration $(or $(DURATION),10) --repeat $(or $(REPEAT),2) $(BENCH_WRITES_ARGS)

# bench-freshness preloads 10,000 runs unless RUNS is given.
FRESH_RUNS := $(if $(filter file,$(origin RUNS)),10000,$(RUNS))

bench-freshness: $(STAMP) ## How soon a direct engine write shows in get, list, states and stats (SAMPLES=200 WRITERS=4 RUNS=10000 DATABASE_URL=server)
	$(BIN)/python bench/freshness.py --runs $(FRESH_RUNS) --samples $(or $(SAMPLES),200) --background-writers $(or $(WRITERS),4) $(BENCH_FRESHNESS_ARGS)

clean-db: ## Delete the embedded database's data folder (.pgdata); stop `make run` first
	rm -rf .pgdata
