# notepipe: the README's two commands are `make scenarios` and `make test`.
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST := $(BIN)/pytest

.PHONY: bootstrap peers scenarios scenarios-real-toxiproxy mutants test test-local test-docker lint format stack clean

bootstrap: $(VENV)/.bootstrapped

$(VENV)/.bootstrapped: pyproject.toml scripts/bootstrap.sh
	scripts/bootstrap.sh
	touch $@

## The main job: every chaos scenario, a verdict table, reports/latest/index.html.
## Two xdist workers: a scenario mostly waits (load pacing, leases, drains), so two at a
## time on 2 cores take ~5 min instead of 8.7 (each worker calibrates its own budget).
scenarios: bootstrap
	$(PYTEST) scenarios/ -n 2

## The network-fault scenarios and the mixed schedules again, through the real
## Toxiproxy (.peers/bin first on PATH; the launcher takes a toxiproxy-server on PATH).
## Its report goes to reports/real-toxiproxy/ so `latest` stays the main job's.
REAL_TOXIPROXY_SCENARIOS := scenarios/test_network_redis.py scenarios/test_network_postgres.py \
	scenarios/test_mixed_schedules.py
scenarios-real-toxiproxy: bootstrap peers
	@test -x .peers/bin/toxiproxy-server || { echo "no .peers/bin/toxiproxy-server: run make peers (needs Go)" >&2; exit 1; }
	env -u NOTEPIPE_TOXIPROXY_URL PATH="$(CURDIR)/.peers/bin:$$PATH" NOTEPIPE_EXPECT_TOXIPROXY=toxiproxy-server \
		$(PYTEST) $(REAL_TOXIPROXY_SCENARIOS) --notepipe-report-dir reports/real-toxiproxy

## The real Toxiproxy and Jaeger, built from pinned Go modules into .peers/bin (cached;
## without Go it says so and the built-ins stay the default; with CI=true it must build).
peers:
	scripts/peers.sh

## The harness tests itself: each mutant of src/ (mutants/catalog.toml) must make its
## catcher scenario's checker verdict `invalid`; a survivor exits non-zero.
mutants: bootstrap
	$(BIN)/python -m harness.mutation --json reports/mutants.json

## Everything CI runs: lint, unit/integration tests (local backend), then the
## service tests again on the testcontainers backend (a private Docker engine).
test: lint peers test-local test-docker

test-local: bootstrap
	$(PYTEST) tests -m "not docker"

test-docker: bootstrap
	scripts/local-docker.sh up
	eval "$$(scripts/local-docker.sh env)" && NOTEPIPE_BACKEND=testcontainers \
		$(PYTEST) -m "docker or chaos" tests scenarios/test_baseline.py

lint: bootstrap
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: bootstrap
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

stack: bootstrap
	$(BIN)/notepipe-harness stack up --workers 2 --env-file .notepipe/stack.env

clean:
	rm -rf reports/2* reports/latest .notepipe .mypy_cache .ruff_cache .pytest_cache
