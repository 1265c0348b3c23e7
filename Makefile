# The README's two commands: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test bench clean check-python translations vendor

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Kodomat needs Python 3.11 or newer; set PYTHON=python3.11")'

$(BIN)/.installed: pyproject.toml | check-python
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(BIN)/.installed-test: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# Creates the SQLite database in instance/, seeds the demo library when the
# database is empty, and serves on http://127.0.0.1:5000/.
run: $(BIN)/.installed
	$(BIN)/kiosk db upgrade
	KIOSK_BASE_URL=http://$(HOST):$(PORT) $(BIN)/kiosk demo
	$(BIN)/kiosk serve --host $(HOST) --port $(PORT)

# axe-core (accessibility checks in the browser tests) comes from the npm registry;
# without npm those tests say how to get it and are skipped (never in CI).
node_modules/.installed: package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund && touch $@; \
	else echo "npm not found: the accessibility checks will be skipped (apt-get install npm)"; fi

test: $(BIN)/.installed-test node_modules/.installed
	$(BIN)/pytest

$(BIN)/.installed-bench: $(BIN)/.installed-test
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $@

bench: $(BIN)/.installed-bench
	$(BIN)/python bench/slip.py
	$(BIN)/python bench/abuse.py
	$(BIN)/python bench/sip2.py
	$(BIN)/python bench/cli_start.py
	$(BIN)/python bench/floor.py
	$(BIN)/python bench/imports.py
	$(BIN)/python bench/retention.py
	$(BIN)/python bench/rush.py
	$(BIN)/python bench/backup.py

clean:
	rm -rf $(VENV) .pytest_cache

# After changing a translatable text: update the catalogues, translate, compile.
translations: $(BIN)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -o kiosk/translations/messages.pot --no-location --omit-header .
	$(BIN)/pybabel update -i kiosk/translations/messages.pot -d kiosk/translations --width 100
	$(BIN)/pybabel compile -d kiosk/translations --statistics

# htmx comes from the npm registry at the version package.json pins.
vendor:
	npm ci --no-audit --no-fund
	mkdir -p static/vendor
	cp node_modules/htmx.org/dist/htmx.min.js static/vendor/htmx-$$(node -p "require('./node_modules/htmx.org/package.json').version").min.js
