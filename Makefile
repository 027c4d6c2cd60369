# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test install lint pytest bench screenshots clean

run: install .env
	$(BIN)/miva-connect demo

test: install lint pytest

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --editable '.[dev]'
	touch $@

# A development key on first run; production keys come from a secret store.
.env: | install
	@echo "writing .env with a new development encryption key"
	@umask 077; echo "MIVA_CONNECT_ENCRYPTION_KEYS=$$($(BIN)/miva-connect keys generate)" > .env

lint:
	$(BIN)/ruff check src tests alembic bench
	$(BIN)/ruff format --check src tests alembic bench
	$(BIN)/mypy

pytest:
	scripts/ensure-services.sh
	scripts/ensure-chromium.sh
	scripts/ensure-wrk.sh
	$(BIN)/pytest

# The benchmark (about 4 minutes): writes bench/RESULTS.md and bench/RESULTS.json.
bench: install
	scripts/ensure-services.sh
	scripts/ensure-wrk.sh
	$(BIN)/python -m bench.run

# Regenerate the README's screenshots of each step (the tests save them in screenshots/).
screenshots: install
	scripts/ensure-services.sh
	scripts/ensure-chromium.sh
	$(BIN)/pytest -q tests/e2e -k "sqlite"
	mkdir -p docs/screenshots
	cp screenshots/flow/*.png docs/screenshots/

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
