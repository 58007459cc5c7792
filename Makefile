# The two commands a newcomer needs: `make run` (the product with demo data) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_CUSTOMERS ?= 2000
SCALE ?= small

.PHONY: run test bench lint format messages venv services

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

# The product on embedded defaults: SQLite and in-process Celery unless DATABASE_URL /
# CELERY_BROKER_URL say otherwise. Safe to run again: demo data is loaded once.
run: venv
	DEBUG=$${DEBUG:-1} $(PY) manage.py migrate --no-input
	DEBUG=$${DEBUG:-1} $(PY) manage.py setup_demo --customers $(DEMO_CUSTOMERS) --url http://$(HOST):$(PORT)/admin/
	DEBUG=$${DEBUG:-1} $(PY) manage.py runserver $(HOST):$(PORT)

# The whole test suite (PostgreSQL and Redis when DATABASE_URL / CELERY_BROKER_URL are set).
test: venv
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# Benchmarks on PostgreSQL; figures go to BENCHMARKS.md. SCALE=ci|small|full.
bench: venv
	SECRET_KEY=$${SECRET_KEY:-bench-only-secret-key} $(PY) -m bench --scale $(SCALE) $(BENCH_ARGS)

# PostgreSQL + Redis + a real Celery worker and beat (see the Procfile).
services: venv
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/honcho start

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Refresh the translation catalogues (needs GNU gettext) and compile them (committed .mo files).
messages: venv
	DEBUG=1 $(PY) manage.py makemessages -l ru --no-obsolete --ignore=.venv --ignore=bench
	DEBUG=1 $(PY) manage.py compilemessages -l ru --ignore=.venv
