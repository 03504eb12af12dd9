# Two commands: `make run` (set up, migrate, seed the demo once, serve on :8000) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
# The tests create and drop their own databases on this server (trust auth on loopback).
SVQM_TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
export SVQM_TEST_POSTGRES_URL
# The suite runs on every core (pytest-xdist); a file's tests stay on one worker so that its
# fixtures (servers, browser, databases) are shared. `make test PYTEST_JOBS=0` runs in one process.
# --no-loadscope-reorder: the files start in the order tests/conftest.py gives (the longest first),
# not pytest-xdist's own (the most tests first, which started a 5-minute browser file last).
PYTEST_JOBS ?= auto

.PHONY: run test bench setup system-deps postgres lint clean

# The venv with the project and its dev tools (pytest, ruff, playwright's Python package).
$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

CSS := svqm/web/static/build/app.css

# Everything `run` and `test` need: Debian packages, the venv, the npm packages, the stylesheet.
setup: system-deps $(STAMP) node_modules/.installed $(CSS)

# The service's stylesheet: GOV.UK Frontend's Sass compiled with a system font (never committed).
$(CSS): svqm/web/static/scss/app.scss node_modules/.installed
	mkdir -p $(dir $@)
	npx sass --load-path=. --no-source-map --style=compressed --quiet-deps \
	  --silence-deprecation=import $< $@

# Debian packages the project needs: graphviz draws the workflow diagrams as SVG; chromium is the
# browser the browser tests drive through Playwright (never a Playwright browser download); pango
# and a font are what WeasyPrint lays the certificate PDFs out with; wrk is the HTTP load generator the
# benchmarks (and their tests) drive the server with.
system-deps:
	@missing=""; \
	command -v dot >/dev/null || missing="$$missing graphviz"; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	ldconfig -p | grep -q libpangoft2-1.0.so.0 || missing="$$missing libpango-1.0-0 libpangoft2-1.0-0"; \
	test -d /usr/share/fonts/truetype/liberation2 || missing="$$missing fonts-liberation2"; \
	command -v wrk >/dev/null || missing="$$missing wrk"; \
	if [ -n "$$missing" ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# Front-end packages from npm (package.json): govuk-frontend, and axe-core for the accessibility checks.
# `npm ci` installs exactly the committed package-lock.json; without one, `npm install` writes it.
node_modules/.installed: package.json $(wildcard package-lock.json)
	if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
	touch $@

# Start the local PostgreSQL if it is down (the machine runs one; tests need it).
postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 1; done; echo "PostgreSQL did not start" >&2; exit 1

# Migrate var/svqm.db, seed the demo once and serve on $(HOST):$(PORT).
run: setup
	$(BIN)/svqm db upgrade
	SVQM_BASE_URL=$${SVQM_BASE_URL:-http://$(HOST):$(PORT)} $(BIN)/svqm demo
	$(BIN)/svqm serve --host $(HOST) --port $(PORT)

# Lint, check the import layers and the types, and run the whole test suite (browser tests included).
test: setup postgres
	$(BIN)/ruff check svqm tests benchmarks
	$(BIN)/ruff format --check svqm tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python -m pytest -n $(PYTEST_JOBS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

# The benchmarks (results in var/bench/results.json); B4 drives the server with Debian's wrk.
# `make bench B=B3` (or `B="B3 B5"`) runs only those.
bench: setup
	$(BIN)/python -m benchmarks $(B)

# Lint only (with the import layers and the types).
lint: setup
	$(BIN)/ruff check svqm tests benchmarks
	$(BIN)/ruff format --check svqm tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/mypy

# Remove what setup, run and test made (node_modules is kept: `npm ci` replaces it anyway).
clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
