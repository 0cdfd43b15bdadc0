# Tsunagu: developer and CI entry points.
#   make venv   .venv with the package (editable) and the test tools; redone when pyproject.toml changes
#   make demo   SQLite database with demo data, served on http://localhost:5000
#   make test   ruff, then pytest on SQLite, then pytest on PostgreSQL when one is available:
#               TSUNAGU_TEST_DATABASE_URL if set (it must be reachable), else a throwaway server
#               from scripts/pg-test.sh if PostgreSQL is installed, else that pass is skipped.
#               PYTEST_ARGS='-x -k foo' passes options to both pytest runs; TSUNAGU_TEST_PG=0 skips PostgreSQL.
#   make lint   ruff

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q -e '.[test]'
	touch $@

demo: $(STAMP)
	$(VENV)/bin/tsunagu init --demo && $(VENV)/bin/tsunagu serve --port 5000

test: $(STAMP)
	VENV=$(VENV) scripts/test.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check .
