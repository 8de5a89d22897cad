# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Two stamps: `make run` installs the runtime only; `make test` and `make lint` add the dev extras.
RUNTIME := $(VENV)/.runtime-stamp
DEV := $(VENV)/.dev-stamp
# pip keeps its cache inside .venv: `make run` writes nothing outside the checkout.
PIP := PIP_CACHE_DIR=$(VENV)/.pip-cache PIP_DISABLE_PIP_VERSION_CHECK=1 $(PY) -m pip install --quiet

.PHONY: run test lint format migrate clean

$(RUNTIME): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Gatehouse needs Python 3.11 or newer (set PYTHON=python3.11)")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) -e .
	touch $(RUNTIME)

$(DEV): $(RUNTIME)
	$(PIP) -e '.[dev]'
	touch $(DEV)

run: $(RUNTIME)
	$(PY) -m app db upgrade
	$(PY) -m app serve

migrate: $(RUNTIME)
	$(PY) -m app db upgrade

test: $(DEV)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(DEV)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy app

format: $(DEV)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
