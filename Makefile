# The README's two commands: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test bench clean check-python

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
	$(BIN)/kiosk demo
	$(BIN)/kiosk serve --host $(HOST) --port $(PORT)

test: $(BIN)/.installed-test
	$(BIN)/pytest

bench: $(BIN)/.installed-test
	$(BIN)/python bench/issue.py

clean:
	rm -rf $(VENV) .pytest_cache
