# One command each: `make course` runs the course and builds its site, `make test` runs the test
# suite, `make student` writes the learners' copies. `NSDE_QUICK=1 make course` builds the quick site.
# Both create .venv and install the project on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: venv course student test lab bench clean chromium

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e ".[dev,ray]"
	$(BIN)/python -m pip install --no-deps "torchattacks>=3.5"  # pins requests~=2.25 (see pyproject)
	@touch $@

course: $(STAMP)
	$(BIN)/python -m coursekit.site

student: $(STAMP)
	$(BIN)/python -m coursekit.student

test: $(STAMP) chromium
	NSDE_QUICK=1 $(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-current-env $(PYTEST_ARGS)

# The browser test drives the system Chromium (Playwright cannot download its own offline).
# Installed when missing and possible (root + apt-get, as on CI); otherwise that test skips,
# except under CI=true, where it fails.
CHROMIUM_NAMES := chromium chromium-browser google-chrome google-chrome-stable
chromium:
	@for b in $(CHROMIUM_NAMES); do command -v $$b >/dev/null 2>&1 && exit 0; done; \
	test -n "$$NSDE_CHROMIUM" && exit 0; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Chromium for the browser test (apt-get install chromium)"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium \
		|| echo "warning: could not install Chromium; the browser test will skip (fail under CI)"; \
	else \
		echo "note: no Chromium and no root apt-get to install it; the browser test will skip" \
		     "(install it: sudo apt-get install chromium)"; \
	fi

lab: $(STAMP)
	$(BIN)/python -m coursekit.lab

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf build .pytest_cache
