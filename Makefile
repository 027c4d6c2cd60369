# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

# uv installs the dependencies exactly as uv.lock says. It lives in a venv of its own,
# installed with pip at this version (the same as [tool.uv] required-version and the
# Dockerfile's); it never downloads a Python: the environment uses $(PYTHON).
UV_VERSION := 0.13.9
TOOLS ?= .venv-tools
UV := $(TOOLS)/bin/uv
UV_STAMP := $(TOOLS)/.uv-$(UV_VERSION)
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
# The uv cache and the project may be on different file systems: copy, and say nothing.
export UV_LINK_MODE ?= copy
# Compile every module at install, as pip does: some (merchantapi) hold SyntaxWarnings that
# the test run's warnings-as-errors would otherwise turn into errors at first import.
export UV_COMPILE_BYTECODE := 1

LOCK_STALE := uv.lock does not match pyproject.toml: run 'make lock' and commit uv.lock

.PHONY: run test install lock check-lock lint pytest bench screenshots clean

run: install .env
	$(BIN)/miva-connect demo

test: check-lock install lint pytest

install: $(VENV)/.installed

# The project (editable) and the dev group, exactly as locked; anything else is removed.
$(VENV)/.installed: pyproject.toml uv.lock Makefile $(UV_STAMP)
	@$(UV) sync --quiet --locked --python $(PYTHON) \
		|| { echo "uv sync failed (above); if $(LOCK_STALE)" >&2; exit 1; }
	touch $@

$(UV_STAMP):
	rm -rf $(TOOLS)
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	touch $@

# After a change to the dependencies in pyproject.toml: rewrite uv.lock (commit both).
lock: $(UV_STAMP)
	$(UV) lock --python $(PYTHON)

# CI: the lock must be the one pyproject.toml gives.
check-lock: $(UV_STAMP)
	@$(UV) lock --check --quiet --python $(PYTHON) || { echo "$(LOCK_STALE)" >&2; exit 1; }

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

# The benchmark (about 5 to 6 minutes): writes bench/RESULTS.md and bench/RESULTS.json.
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
	rm -rf $(VENV) $(TOOLS) .mypy_cache .ruff_cache .pytest_cache
