# KXN Meetings. `make run` and `make test` are all a newcomer needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app kxn_meetings
PORT ?= 5000
STAMP := $(VENV)/.installed

.PHONY: run test test-sqlite test-postgresql coverage-sqlite coverage-postgresql bench install browser imap-server clean db lint screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,lint]'
	touch $(STAMP)

install: $(STAMP)

instance/config.py:
	@mkdir -p instance
	@umask 077 && $(BIN)/python -c "import secrets; print(f'SECRET_KEY = {secrets.token_hex(32)!r}')" > instance/config.py
	@echo "Wrote instance/config.py with a new secret key."

db: install instance/config.py
	$(FLASK) kxn init
	$(FLASK) kxn demo

run: db
	@echo "Serving on http://127.0.0.1:$(PORT)  (sign in as organiser@kxn.example.org: see README, 'Signing in')"
	@export KXN_OUTBOX_DELIVER_AFTER_COMMIT=$${KXN_OUTBOX_DELIVER_AFTER_COMMIT:-true}; \
	grep -qs '^BASE_URL' instance/config.py || export KXN_BASE_URL=$${KXN_BASE_URL:-http://127.0.0.1:$(PORT)}; \
	$(FLASK) kxn outbox worker & worker=$$!; \
	trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	$(FLASK) run --host 127.0.0.1 --port $(PORT)

browser:
	@command -v chromium >/dev/null || { \
	  echo "Installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

imap-server:
	@command -v dovecot >/dev/null || test -x /usr/sbin/dovecot || { \
	  echo "Installing Debian's dovecot-imapd for the calendar-reply tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd >/dev/null; }

tests/js/node_modules: tests/js/package-lock.json
	npm ci --prefix tests/js --no-audit --no-fund

# Tests run on as many processes as there are cores; TEST_WORKERS=0 runs them in this one process.
TEST_WORKERS ?= auto
PYTEST_OPTIONS := -n $(TEST_WORKERS) --dist worksteal
PYTEST := $(BIN)/pytest $(PYTEST_OPTIONS)

# The two passes use different databases and each waits part of its time (on PostgreSQL, processes, Chromium), so
# they run at the same time; each pass's output is shown in one piece when it ends. Coverage is measured in the
# SQLite pass, which runs every test: tracing the PostgreSQL pass as well made it a third slower and found 24 more
# lines, the PostgreSQL-only branches (`make coverage-postgresql` measures them).
#
# The pass that measures coverage runs on the newest Python 3.12 or later the machine has (on PATH, or installed by
# pyenv), in a virtualenv of its own: coverage follows the code there through sys.monitoring. On three test modules
# that cost -4 to +14 % against no coverage, where Python 3.11's tracer cost +24 to +73 % (pairs of runs). The
# PostgreSQL pass stays on python3, so `make test` runs the oldest and the newest Python the app supports. Without a
# Python 3.12, both passes run on python3.
PYENV_VERSIONS := $(or $(PYENV_ROOT),$(HOME)/.pyenv)/versions
NEWEST_PYTHON := $(shell \
  for p in python3.12 python3.13 python3.14 $(wildcard $(PYENV_VERSIONS)/3.1[2-9]*/bin/python3); do \
  "$$p" -c 'import sys; sys.version_info >= (3, 12) and print("%d.%03d" % sys.version_info[:2], sys.executable)' \
  2>/dev/null; done | sort | tail -n 1 | cut -d' ' -f2)
COVERAGE_VENV := $(if $(NEWEST_PYTHON),.venv-newest,$(VENV))
ifneq ($(NEWEST_PYTHON),)
export COVERAGE_CORE := sysmon
endif

.venv-newest/.installed: pyproject.toml
	@echo "Making .venv-newest on $$($(NEWEST_PYTHON) --version) for the pass that measures coverage"
	$(NEWEST_PYTHON) -m venv .venv-newest
	.venv-newest/bin/python -m pip install --quiet --upgrade pip
	.venv-newest/bin/pip install --quiet -e '.[test,lint]'
	touch $@

test: install $(COVERAGE_VENV)/.installed lint browser imap-server tests/js/node_modules
	rm -f .coverage .coverage.*
	@echo "Running the SQLite pass ($$($(COVERAGE_VENV)/bin/python --version)) and the PostgreSQL pass" \
	  "($$($(BIN)/python --version)) at once; each one's output appears when it ends."
	@$(MAKE) --no-print-directory -j2 --output-sync=target coverage-sqlite test-postgresql; status=$$?; \
	$(COVERAGE_VENV)/bin/coverage report --data-file=.coverage.sqlite --skip-covered; exit $$status

coverage-sqlite coverage-postgresql: coverage-%: $(COVERAGE_VENV)/.installed
	KXN_TEST_DATABASE=$* COVERAGE_FILE=.coverage.$* $(COVERAGE_VENV)/bin/pytest $(PYTEST_OPTIONS) --cov=kxn_meetings \
	  --cov-report= $(PYTEST_ARGS)

test-sqlite: install browser imap-server tests/js/node_modules
	KXN_TEST_DATABASE=sqlite $(PYTEST) $(PYTEST_ARGS)

test-postgresql: install browser imap-server tests/js/node_modules
	KXN_TEST_DATABASE=postgresql $(PYTEST) $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check kxn_meetings tests bench
	$(BIN)/ruff format --check kxn_meetings tests bench
	$(BIN)/mypy
	$(BIN)/vulture

# Every benchmark runs; the target fails at the end when any of them missed a goal.
bench: install
	@command -v wrk >/dev/null || { echo "Installing Debian's wrk, the load generator"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	@status=0; for script in bench/[!_]*.py; do echo "== $$script"; $(BIN)/python $$script || status=1; done; exit $$status

screenshots: install browser
	$(BIN)/python docs/screenshots.py

clean:
	rm -rf $(VENV) .venv-newest build dist .pytest_cache .coverage .coverage.*
