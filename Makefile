# The two commands a newcomer runs: `make run` (the product) and `make test` (the suite).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TSTAMP := $(VENV)/.installed-test

.PHONY: run test test-fast lint bench clean assets

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $(STAMP)

$(TSTAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(TSTAMP)

run: $(STAMP)
	$(BIN)/pdcaflow init-db
	$(BIN)/pdcaflow deploy processes/
	$(BIN)/pdcaflow demo
	$(BIN)/pdcaflow run --host $${HOST:-127.0.0.1} --port $${PORT:-5000}

test: $(TSTAMP)
	$(BIN)/python -m pytest $${PYTEST_ARGS:--q}

# The fast tier: no database (sandbox, expressions, forms, DI, policies, settings); seconds.
test-fast: $(TSTAMP)
	$(BIN)/python -m pytest tests/unit -m "not db" $${PYTEST_ARGS:--q}

lint: $(TSTAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/pdcaflow bench engine --n 2000 --json

clean:
	rm -rf $(VENV) instance .pytest_cache

# The bpmn.io bundles under web/static/vendor/ (committed: running the product needs no Node).
# Rebuild after changing web/frontend/package.json: npm ci from the lockfile, then copy the dists.
assets:
	cd web/frontend && npm ci --no-audit --no-fund && npm run build
