# Tsunagu: developer and CI entry points.
#   make venv   .venv with the package (editable) and the test tools; redone when pyproject.toml changes
#   make demo   SQLite database with demo data, served on http://localhost:5000
#   make test   ruff, then pytest on SQLite, then pytest on PostgreSQL when one is available:
#               TSUNAGU_TEST_DATABASE_URL if set (it must be reachable), else a throwaway server
#               from scripts/pg-test.sh if PostgreSQL is installed, else that pass is skipped.
#               PYTEST_ARGS='-x -k foo' passes options to both pytest runs; TSUNAGU_TEST_PG=0 skips PostgreSQL.
#   make lint   ruff
#   make node   node_modules from package-lock.json (`npm ci`), then the pages' browser bundles
#               (web/assets/*.js → web/static/build/, esbuild): bpmn-js, dmn-js, chart.js served
#               locally (no CDN); part of `make venv`
#   make messages  the message template from the sources (pybabel extract, babel.cfg), then both
#               catalogues updated from it (pybabel update); `make venv` compiles them (.mo)

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

NODE_STAMP := node_modules/.installed

ASSETS_STAMP := web/static/build/.built
ASSETS := $(wildcard web/assets/*.js web/assets/*.css web/assets/*/*.js) scripts/build-assets.mjs

TRANSLATIONS := web/translations
MO := $(TRANSLATIONS)/ja/LC_MESSAGES/messages.mo $(TRANSLATIONS)/en/LC_MESSAGES/messages.mo

.PHONY: venv demo test lint node messages

venv: $(STAMP) $(NODE_STAMP) $(ASSETS_STAMP) $(MO)

node: $(NODE_STAMP) $(ASSETS_STAMP)

$(NODE_STAMP): package.json package-lock.json
	@if command -v npm >/dev/null; then npm ci --no-audit --no-fund --loglevel=error && touch $@; \
	else echo "npm not found: the case page's diagram needs bpmn-js (install npm, then: make node)" >&2; fi

$(ASSETS_STAMP): $(NODE_STAMP) $(ASSETS)
	@if [ -x node_modules/.bin/esbuild ]; then node scripts/build-assets.mjs && mkdir -p $(@D) && touch $@; \
	else echo "esbuild not installed: run make node" >&2; fi

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q -e '.[test]'
	touch $@

$(TRANSLATIONS)/%/LC_MESSAGES/messages.mo: $(TRANSLATIONS)/%/LC_MESSAGES/messages.po $(STAMP)
	$(VENV)/bin/pybabel -q compile -d $(TRANSLATIONS) -l $*

messages: $(STAMP)
	$(VENV)/bin/pybabel -q extract -F babel.cfg -k t -k N_ --no-default-keywords --project Tsunagu \
		--version 0.1.0 --copyright-holder "Toyonaka City" -o $(TRANSLATIONS)/messages.pot .
	$(VENV)/bin/pybabel -q update -N -d $(TRANSLATIONS) -i $(TRANSLATIONS)/messages.pot

demo: $(STAMP) $(NODE_STAMP) $(ASSETS_STAMP) $(MO)
	$(VENV)/bin/tsunagu init --demo && $(VENV)/bin/tsunagu serve --port 5000

test: $(STAMP) $(NODE_STAMP) $(ASSETS_STAMP) $(MO)
	VENV=$(VENV) scripts/test.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check .
