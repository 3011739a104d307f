# reconcile: install, demo, test, lint, bench, clean. GNU make; run as root on
# Debian 12 (or as a user, after the Debian packages are installed).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
APT_PACKAGES := postgresql-15 postgresql-15-pglogical
# promtool, for the alert rules' unit tests (tests/test_alert_rules.py skips
# them without it). Without recommends: no node_exporter pulled in.
TEST_APT_PACKAGES := prometheus
RECONCILE := $(PY) -m reconciler
SCHEMA := desired-state/sandbox-schema.sql

.PHONY: install system-packages venv demo test lint bench chaos docs clean

install: system-packages venv

# Debian's PostgreSQL 15 server and pglogical 2.4, and promtool: installed as
# root, else the exact command to run is printed.
system-packages:
	@missing=""; \
	for pkg in $(APT_PACKAGES) $(TEST_APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' "$$pkg" 2>/dev/null | grep -q 'install ok installed' \
	    || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing$$missing"; \
	    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $(APT_PACKAGES) \
	      && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(TEST_APT_PACKAGES); \
	  else \
	    echo "missing Debian packages:$$missing. Run as root:" >&2; \
	    echo "  apt-get update && apt-get install -y $(APT_PACKAGES)" >&2; \
	    echo "  apt-get install -y --no-install-recommends $(TEST_APT_PACKAGES)" >&2; \
	    exit 1; \
	  fi; \
	fi

# The venv is (re)created when its python does not run (e.g. a copy made on
# another machine); the project is reinstalled only when pyproject.toml changed.
venv:
	@if ! $(PY) -c 'import sys' >/dev/null 2>&1; then \
	  echo "creating $(VENV)"; rm -rf $(VENV); $(PYTHON) -m venv $(VENV); \
	fi
	@if [ ! -f $(STAMP) ] || [ pyproject.toml -nt $(STAMP) ]; then \
	  $(PY) -m pip install -q --upgrade pip && \
	  $(PY) -m pip install -q -e '.[test]' && touch $(STAMP); \
	else \
	  echo "$(VENV) up to date"; \
	fi

demo: install
	$(RECONCILE) sandbox up --schema $(SCHEMA)
	$(RECONCILE) validate --topology
	$(RECONCILE) plan
	$(RECONCILE) apply --auto-approve
	$(PY) scripts/demo_rows.py desired-state
	$(RECONCILE) plan --detailed-exitcode

test: install
	HYPOTHESIS_PROFILE=repeatable $(PY) -m pytest -q

lint: install
	$(PY) -m ruff check reconciler tests
	$(PY) -m mypy --strict -p reconciler

bench: install
	@if [ -d bench ]; then $(PY) -m bench; else echo "no benchmark yet (bench/ does not exist)"; fi

chaos: install
	$(PY) -m chaos

# The docs site: the generated pages (desired-state and command reference,
# status causes, figures) are written first, so they cannot drift; strict
# mode fails on a broken link or anchor. mkdocs comes with the `docs` extra.
docs: install
	@$(PY) -c 'import mkdocs, material' 2>/dev/null || $(PY) -m pip install -q -e '.[docs]'
	$(PY) -m tools.docs_gen
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

clean:
	@if $(PY) -c 'import reconciler' >/dev/null 2>&1; then $(RECONCILE) sandbox down; fi
	rm -rf .sandbox
