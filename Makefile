# One command each: `make course` runs the course, `make test` runs the test suite.
# Both create .venv and install the project on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: venv course test lab bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e ".[dev]"
	@touch $@

course: $(STAMP)
	$(BIN)/python -m nsde_lib.course

test: $(STAMP)
	NSDE_QUICK=1 $(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-current-env $(PYTEST_ARGS)

lab: $(STAMP)
	$(BIN)/python -m nsde_lib.lab

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf build .pytest_cache
