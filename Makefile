# Posta: `make run` to start it, `make test` to test it. Both do their own set-up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_DEBS := python3 python3-venv gettext ca-certificates
TEST_DEBS := $(RUN_DEBS) dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd dovecot-sieve \
	dovecot-managesieved chromium fonts-dejavu-core isync
# The slowest tests are listed at the end of each run, to keep the suite short.
PYTEST_ARGS ?= --durations=25

.PHONY: run test system-run system-test venv venv-test lint messages clean

# Debian packages, installed only when one is missing (needs root, as the README says).
system-run:
	@missing=$$(for p in $(RUN_DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends $$missing; fi

system-test:
	@missing=$$(for p in $(TEST_DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends $$missing; fi
	@# The distribution's own Dovecot is not ours to run; the tests start private ones.
	@systemctl disable --now dovecot >/dev/null 2>&1 || true

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

venv: system-run $(BIN)/python
	$(BIN)/pip install -q -e .

venv-test: system-test $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'

messages:
	cd src/posta && ../../$(BIN)/posta compilemessages --ignore '.venv' -v 0

run: venv messages
	$(BIN)/posta run

lint: venv-test
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src
	$(BIN)/lint-imports

# The suite keeps its files in a directory of its own, never in ./var.
test: export POSTA_DATA_DIR := $(CURDIR)/.test-data
test: venv-test messages lint
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)
	@if [ -n "$$POSTA_TEST_DATABASE_URL" ]; then \
		echo "== again on $$POSTA_TEST_DATABASE_URL"; \
		POSTA_DATABASE_URL="$$POSTA_TEST_DATABASE_URL" $(BIN)/pytest -n 2 -m "not browser" $(PYTEST_ARGS); \
	fi

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
