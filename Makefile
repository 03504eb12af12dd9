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

.PHONY: run test bench setup system-deps postgres lint clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: system-deps $(STAMP)

# Debian packages the project needs: graphviz draws the workflow diagrams as SVG.
system-deps:
	@command -v dot >/dev/null || { apt-get update -qq && apt-get install -y -qq graphviz; }

# Start the local PostgreSQL if it is down (the machine runs one; tests need it).
postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 1; done; echo "PostgreSQL did not start" >&2; exit 1

run: setup
	$(BIN)/svqm db upgrade
	$(BIN)/svqm demo
	$(BIN)/svqm serve --host $(HOST) --port $(PORT)

test: setup postgres
	$(BIN)/ruff check svqm tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m benchmarks

lint: setup
	$(BIN)/ruff check svqm tests benchmarks

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
