# safety-chain: two commands do all the set-up on a fresh machine (Python 3.11+, Java 17, Maven;
# `make test` also Go 1.26.7+, PostgreSQL and Debian's Chromium: README's "The two commands").
#   make run    run the whole system locally on embedded defaults (Ctrl-C stops everything)
#   make test   lint, type-check and run every test against a real Kafka broker and PostgreSQL

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
# The project's own code: compiled to bytecode at install, as pip compiles what it installs (an
# editable install is not), so the first test run does not compile 23,000 lines. So are pytest's
# plugins as pytest loads them (it rewrites the asserts of their packages, Hypothesis' 73 modules
# among them, on first use: a second and more), by one collection of a small test file.
SOURCES := cli devstack deploy sdk services shared
# The test runs keep their bytecode (pytest's rewritten test modules too) even where the
# environment says not to write any (PYTHONDONTWRITEBYTECODE): a second run then starts seconds sooner.
TEST_ENV := PYTHONDONTWRITEBYTECODE=

.PHONY: install lock kafka-jars keycloak browser run test test-unit test-deploy lint format docs bench clean

# Every dependency comes from requirements-dev.lock, pinned with its hashes (pip refuses any
# other); then the project itself, its dependencies already there. `pip check` fails when
# pyproject.toml names a dependency the lock lacks: then run `make lock`.
$(INSTALLED): pyproject.toml requirements-dev.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m pip check || { echo "requirements-dev.lock is behind pyproject.toml: make lock" >&2; exit 1; }
	$(PY) -m compileall -q -j 0 $(SOURCES)
	$(TEST_ENV) $(PY) -m pytest --collect-only -q -p no:cacheprovider --noconftest tests/unit/test_sources.py >/dev/null
	touch $(INSTALLED)

install: $(INSTALLED)

# The locks, from pyproject.toml, for Python 3.11 on Linux (CI's and the image's), every file
# of every pinned release hashed: requirements.lock (the dependencies and the postgres extra:
# what the image installs) and requirements-dev.lock (plus dev: what `make install` installs),
# which keeps the runtime lock's pins. Pins stay where pyproject.toml allows them;
# `make lock UPGRADE=1` moves every one to the newest release allowed. The lock tool is uv, at
# the version the dev lock names (installed here without the rest, so that a lock behind
# pyproject.toml can still be brought up to date).
LOCK_TOOL_VERSION = $(shell sed -n 's/^uv==\([^ ]*\).*/\1/p' requirements-dev.lock 2>/dev/null)
LOCK := $(PY) -m uv pip compile pyproject.toml --quiet --generate-hashes --python-version 3.11 \
	--python-platform linux --custom-compile-command "make lock" $(if $(UPGRADE),--upgrade)
lock:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m uv --version >/dev/null 2>&1 || $(PY) -m pip install --quiet "uv$(if $(LOCK_TOOL_VERSION),==$(LOCK_TOOL_VERSION))"
	$(LOCK) --extra postgres -o requirements.lock
	$(LOCK) --extra postgres --extra dev --constraint requirements.lock -o requirements-dev.lock

# The pinned Apache Kafka jars, from Maven Central into .cache/kafka (once).
kafka-jars: install
	$(PY) -c "from devstack.kafka import ensure_jars; print('kafka jars:', ensure_jars())"

# The pinned Keycloak (the organisations' identity providers in the tests and in
# `make run IDP=keycloak`), from Maven Central into .cache/keycloak (once).
keycloak: install
	$(PY) -c "from devstack.keycloak import ensure_distribution; print('keycloak:', ensure_distribution())"

# The audit console's browser tests drive Debian's Chromium through Playwright, which never
# downloads a browser of its own here. Installed with apt-get when we are root; otherwise this
# says what to install. Chromium aborts without any font, so a font comes with it.
CHROMIUM := /usr/bin/chromium
BROWSER_FONT := /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
browser:
	@if [ -x $(CHROMIUM) ] && [ -e $(BROWSER_FONT) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's chromium and fonts-dejavu-core for the browser tests"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core; \
	else \
	  echo "the browser tests need $(CHROMIUM) and a font: sudo apt-get install chromium fonts-dejavu-core" >&2; \
	  exit 1; \
	fi

# `make run IDP=keycloak`: also a local Keycloak, one realm per organisation, which the services
# trust (README, "Sign in with Keycloak"); without it, the development issuer alone.
run: kafka-jars $(if $(filter keycloak,$(IDP)),keycloak)
	$(if $(IDP),SC_IDENTITY_PROVIDER=$(IDP)) $(PY) -m devstack

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy .
	$(VENV)/bin/lint-imports

test: kafka-jars keycloak browser lint
	$(TEST_ENV) $(PY) -m pytest

# Unit tests only, in seconds: no network, no broker, no database server, no Go (the deployment
# checks are test-deploy's). `make test` runs them with every other tier.
test-unit: install
	$(TEST_ENV) $(PY) -m pytest tests/unit -x -q

# The deployment files (docker-compose.yml, deploy/k8s, deploy/monitoring): kustomize and
# Prometheus' parser are built with the machine's Go and the schemas fetched (pip, Maven), once,
# into .cache/; a first run takes minutes, later ones seconds. `make test` runs them too.
test-deploy: install
	$(TEST_ENV) $(PY) -m pytest tests/deploy -q

# Regenerate what is derived from the code: JSON Schemas, AsyncAPI, Kubernetes topics and users.
docs: install
	$(PY) -m shared.plumbing.contract_docs
	$(PY) -m deploy.k8s.generate

# The Kubernetes manifests: `kustomize build` of deploy/k8s/base and of every overlay, each object
# validated offline against the Kubernetes and Strimzi schemas. The tools and schemas are pinned
# in deploy/k8s/validate.py and fetched once into .cache/deploy (Go, pip, Maven); `make test`
# runs the same checks (tests/deploy/test_k8s_schemas.py, also in `make test-deploy`).
.PHONY: deploy-check
deploy-check: install
	$(PY) -m deploy.k8s.validate

# Performance is measured here, never asserted in tests (see bench/README.md). The micro-benchmarks
# and the audit-only ingest go first: the throughput benchmark reads their JSON (the compute floor
# per signal, the ingest figure) into its table of issue 20's goals. The throughput run is made
# twice, with one replica of each service (SQLite stores, as before) and with two (PostgreSQL,
# started by the run), then bench.replicas sets them side by side (issue 21). Every result:
# $(BENCH_OUT).
BENCH_OUT ?= .local/bench
BENCH_INPUTS = --micro-json $(BENCH_OUT)/micro.json --ingest-json $(BENCH_OUT)/audit-ingest.json \
	--verify-json $(BENCH_OUT)/audit-verify.json
bench: kafka-jars
	mkdir -p $(BENCH_OUT)
	$(PY) -m bench.micro --json $(BENCH_OUT)/micro.json
	$(PY) -m bench.audit_verify --records 1000000 --json $(BENCH_OUT)/audit-verify.json
	$(PY) -m bench.audit_ingest --signals 1000 --json $(BENCH_OUT)/audit-ingest.json
	$(PY) -m bench.throughput --signals 2000 --http 200 --http-rates 50,150 $(BENCH_INPUTS) \
		--json $(BENCH_OUT)/throughput.json
	$(PY) -m bench.throughput --replicas 2 --signals 2000 --http 200 --http-rates 50,150 $(BENCH_INPUTS) \
		--json $(BENCH_OUT)/throughput-2-replicas.json
	$(PY) -m bench.replicas --one $(BENCH_OUT)/throughput.json \
		--two $(BENCH_OUT)/throughput-2-replicas.json --json $(BENCH_OUT)/replicas.json

format: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

clean:
	rm -rf $(VENV) .cache .local .pytest_cache .mypy_cache .ruff_cache *.egg-info
