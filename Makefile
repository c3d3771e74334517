# The README's commands. `make run` and `make test` each create the virtual environment first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test lint bench bench-ingest clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## Install, load the demo shop into ./shopkeeper.db (once), serve on http://127.0.0.1:8000
run: install
	$(BIN)/shopkeeper db upgrade
	$(BIN)/shopkeeper demo --if-empty
	$(BIN)/shopkeeper serve

## Install and run the whole test suite (PostgreSQL tests run when SHOPKEEPER_TEST_DATABASE_URL is set)
test: install
	$(BIN)/pytest -q -n 2 --dist loadfile

lint: install
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy

bench: bench-ingest

bench-ingest: install
	$(BIN)/shopkeeper bench ingest --database-url sqlite
	$(BIN)/shopkeeper bench ingest --database-url postgresql://postgres@127.0.0.1:5432/postgres

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
