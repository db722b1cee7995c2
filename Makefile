# `make demo`, `make check` and `make test` each set themselves up from nothing (Python 3.10+ and make).
# `make install EXTRAS=s3,dask` installs optional extras too (comma-separated, as in pyproject.toml).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: demo test check lint-imports install install-dev docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(PIP) install -e ".[dev]"
	@touch $@

$(VENV)/.installed-docs: pyproject.toml $(VENV)/.installed
	$(PIP) install -e ".[docs]"
	@touch $@

EXTRAS ?=
comma := ,
EXTRAS_STAMP := $(VENV)/.installed-extras-$(subst $(comma),-,$(subst $() ,,$(EXTRAS)))
$(EXTRAS_STAMP): pyproject.toml $(VENV)/.installed
	$(PIP) install -e ".[$(subst $() ,,$(EXTRAS))]"
	@touch $@

install: $(VENV)/.installed $(if $(strip $(EXTRAS)),$(EXTRAS_STAMP))
install-dev: $(VENV)/.installed-dev

demo: $(VENV)/.installed
	$(BIN)/forecasting demo

# The whole suite, as CI runs it: PostgreSQL, Prefect servers, S3, training, benchmark smoke runs.
test: lint-imports
	$(BIN)/python -m pytest -n 2 --dist loadgroup

# The quick loop while you change code: unit tests and SQLite integration tests, no servers, no
# training-heavy or benchmark tests (markers in pyproject.toml).
check: lint-imports
	$(BIN)/python -m pytest -n 2 --dist loadgroup -m "not postgres and not prefect and not slow and not benchmark" tests/unit tests/integration

# The package layers and no import cycles (pyproject.toml [tool.importlinter]).
lint-imports: $(VENV)/.installed-dev
	$(BIN)/lint-imports --no-cache

# The documentation site (mkdocs-material) into site/; warnings fail the build.
docs: $(VENV)/.installed-docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

clean:
	rm -rf .forecasting .pytest_cache site
