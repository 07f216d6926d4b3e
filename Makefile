# safety-chain: two commands do all the set-up on a fresh machine (Python 3.11+, Java 17, Maven).
#   make run    run the whole system locally on embedded defaults (Ctrl-C stops everything)
#   make test   lint, type-check and run every test against a real Kafka broker and PostgreSQL

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: install kafka-jars browser run test test-unit lint format docs bench clean

$(INSTALLED): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,postgres]"
	touch $(INSTALLED)

install: $(INSTALLED)

# The pinned Apache Kafka jars, from Maven Central into .cache/kafka (once).
kafka-jars: install
	$(PY) -c "from devstack.kafka import ensure_jars; print('kafka jars:', ensure_jars())"

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

run: kafka-jars
	$(PY) -m devstack

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy .

test: kafka-jars browser lint
	$(PY) -m pytest

# Unit tests only: no broker, no database, a few seconds.
test-unit: install
	$(PY) -m pytest tests/unit -x -q

# Regenerate what is derived from the code: JSON Schemas, AsyncAPI, Kubernetes topics and users.
docs: install
	$(PY) -m shared.contracts.docs
	$(PY) -m deploy.k8s.generate

# Performance is measured here, never asserted in tests (see bench/README.md).
bench: kafka-jars
	$(PY) -m bench.micro
	$(PY) -m bench.throughput --signals 2000 --http 200

format: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

clean:
	rm -rf $(VENV) .cache .local .pytest_cache .mypy_cache .ruff_cache *.egg-info
