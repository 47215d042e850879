# runplane — two commands matter: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install bytecode run test lint typecheck system-deps faults hosts-trial cluster-trial clean screenshots

install: $(STAMP) bytecode

# Every serve, agent, launcher and CLI call is a fresh interpreter. Where
# PYTHONDONTWRITEBYTECODE is set (as on the CI machine) none of them caches
# runplane's compiled modules, and each compiled all ~330 again: ~0.3 s of CPU
# per process (docs/testing.md). compileall writes them regardless, and only
# those whose source changed; a stale one is never used (its source's mtime
# no longer matches), it only costs that compile again.
bytecode: $(STAMP)
	$(BIN)/python -m compileall -q src tests $(wildcard bench) >/dev/null

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

run: install
	$(BIN)/runplane serve

# Debian's redis-server and PostgreSQL binaries, for the test servers.
system-deps:
	@bash scripts/system-deps.sh

lint: install
	$(BIN)/ruff format --check src tests $(wildcard bench)
	$(BIN)/ruff check src tests $(wildcard bench)

typecheck: install
	$(BIN)/mypy

# The e2e suite runs a second time on a 3-node Redis Cluster with PostgreSQL and
# two serves (docs/deploy.md), leaving out what runs the same in both modes and
# what is about one host's runtimes, not shared state (those ran just before):
# snapshots are taken on the runtime's own host (remote ones are not built yet).
CLUSTER_E2E_SKIP := --ignore=tests/e2e/test_cluster.py \
	--ignore=tests/e2e/test_dashboard.py \
	--ignore=tests/e2e/test_api_docs_browser.py \
	--ignore=tests/e2e/test_serve_isolation.py \
	--ignore=tests/e2e/test_hostile_tenant.py \
	--ignore=tests/e2e/test_docker.py \
	--ignore=tests/e2e/test_snapshots.py \
	--ignore=tests/e2e/test_exits_told.py \
	--ignore=tests/e2e/test_runtime_idle_docker.py \
	--ignore=tests/e2e/test_client_docs.py \
	--deselect tests/e2e/test_serve.py::test_embedded_defaults_serve_and_clean_up \
	--deselect tests/e2e/test_jobs.py::test_consumers_recover_from_a_redis_restart

# TEST_WORKERS=N runs both passes on N pytest-xdist workers: each starts its
# own redis-server, cluster, PostgreSQL and serves on ports of its own
# (tests/support/ports.py); the Podman tests share one worker. Two workers
# take `make test` from ~45 min to 24-26 min on a 2-core machine
# (docs/testing.md). TEST_WORKERS=0 runs each pass in one process.
TEST_WORKERS ?= 2
XDIST := -n $(TEST_WORKERS) --dist loadgroup

test: install system-deps lint typecheck
	$(BIN)/pytest tests $(XDIST)
	RUNPLANE_E2E_BACKEND=cluster $(BIN)/pytest tests/e2e $(XDIST) $(CLUSTER_E2E_SKIP)

# The fault trials at full size (docs/reliability.md); FAULTS_ARGS adds options,
# e.g. FAULTS_ARGS="--trials kill --jobs 500" or FAULTS_ARGS=--json.
faults: install system-deps
	$(BIN)/python -m tests.faults.trials $(FAULTS_ARGS)

# The hosts trial at full size (docs/hosts.md): 3 agents, 2 serves, 2,000 jobs,
# a serve and an agent killed -9; HOSTS_ARGS adds options, e.g. "--jobs 500".
hosts-trial: install system-deps
	$(BIN)/python -m tests.hosts.trial $(HOSTS_ARGS)

# The cluster trial at full size (docs/deploy.md): a 3-node Redis Cluster, two
# serves, 2,000 jobs, the relay's leader killed -9; CLUSTER_ARGS adds options.
cluster-trial: install system-deps
	$(BIN)/python -m tests.cluster.trial $(CLUSTER_ARGS)

clean:
	rm -rf $(VENV) .runplane .pytest_cache .mypy_cache .ruff_cache

# The dashboard's screenshots in docs/images/, taken in headless Chromium against
# a real serve it starts (and ends) with a few runtimes.
screenshots: install
	$(BIN)/python scripts/dashboard_screenshots.py --out docs/images
