# AI Actuary back office — the two commands a new user needs are `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# Tests run on SQLite unless DATABASE_URL is set; `make test-postgres` uses a throwaway PG database.
PG_TEST_URL ?= postgres://postgres@127.0.0.1:5432/ai_actuary_test_$(shell id -u)

# Find a Python >= 3.12: the pyenv shim honours .python-version, then versioned names,
# then pyenv's own install folder. Stop with a clear message if none is found.
PYTHON ?= $(shell for c in python3 python3.13 python3.12 $$HOME/.pyenv/versions/3.13*/bin/python3 $$HOME/.pyenv/versions/3.12*/bin/python3; do \
	if command -v $$c >/dev/null 2>&1 && $$c -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then command -v $$c; break; fi; done)

# The manual (mkdocs.yml, docs/): `make docs` serves it, `make docs-build` builds it strictly.
DOCS_HOST ?= 127.0.0.1
DOCS_PORT ?= 8001
DOCS_SITE_DIR ?= site

.PHONY: help run serve test test-postgres test-all bench lint format migrations-check install clean check-python docs docs-build

help:
	@echo "make run            create the virtualenv, install, migrate, load demo data, serve on http://$(HOST):$(PORT)/admin/"
	@echo "make serve          production-style: gunicorn (gunicorn.conf.py) and the workers of the Procfile"
	@echo "make test           run the test suite (SQLite unless DATABASE_URL is set)"
	@echo "make test-postgres  run the test suite on PostgreSQL ($(PG_TEST_URL))"
	@echo "make test-all       run everything, slow tests included, on SQLite and PostgreSQL"
	@echo "make bench          run the benchmarks (print figures; not part of the test suite)"
	@echo "make lint           ruff check, ruff format --check, import contracts, makemigrations --check"
	@echo "make docs           serve the manual on http://$(DOCS_HOST):$(DOCS_PORT)/ (reloads as docs/ changes)"
	@echo "make docs-build     build the manual into $(DOCS_SITE_DIR)/ with --strict, as CI does"

check-python:
	@if [ -z "$(PYTHON)" ]; then \
		echo "ERROR: Python 3.12 or newer is required (Django 6.1 needs it) and none was found."; \
		echo "       Found: $$(python3 --version 2>&1 || echo 'no python3')."; \
		echo "       Install one, e.g. 'pyenv install 3.12' (this folder's .python-version asks for 3.12),"; \
		echo "       or run 'make PYTHON=/path/to/python3.12 run'."; \
		exit 1; \
	fi

$(VENV)/.installed: pyproject.toml | check-python
	@if [ -x $(PY) ] && ! $(PY) -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then \
		echo "Removing $(VENV): it was made with an older Python."; rm -rf $(VENV); fi
	@[ -x $(PY) ] || { echo "Creating $(VENV) with $(PYTHON) ($$($(PYTHON) --version))"; $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(VENV)/.installed

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_demo
	@echo ""
	@echo "  AI Actuary back office: http://$(HOST):$(PORT)/admin/"
	@echo "  Log in as admin / admin (superuser), or an actuary: alice / alice, bob / bob."
	@echo "  A worker runs beside the web server (Procfile.dev): queued runs complete."
	@echo ""
	HOST=$(HOST) PORT=$(PORT) PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/honcho start -f Procfile.dev

# Production-style serving on this machine: gunicorn and the workers, as the Procfile says,
# with the settings of the environment (docs/operators/deployment.md#serving).
serve: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	HOST=$(HOST) PORT=$(PORT) PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/honcho start -f Procfile

test: install
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

test-postgres: install
	@pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	DATABASE_URL=$(PG_TEST_URL) $(VENV)/bin/pytest -q --create-db $(PYTEST_ARGS)

test-all: install
	$(VENV)/bin/pytest -q --create-db --run-slow $(PYTEST_ARGS)
	@$(MAKE) --no-print-directory test-postgres PYTEST_ARGS="--run-slow $(PYTEST_ARGS)"

bench: install
	$(VENV)/bin/pytest -q -s -m benchmark --run-benchmarks

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-logo
	$(PY) manage.py makemigrations --check --dry-run

docs: install
	$(VENV)/bin/mkdocs serve --dev-addr $(DOCS_HOST):$(DOCS_PORT)

docs-build: install
	$(VENV)/bin/mkdocs build --strict --site-dir $(DOCS_SITE_DIR)

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) db.sqlite3 media staticfiles $(DOCS_SITE_DIR)
