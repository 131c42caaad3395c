# One command each: `make course` runs the course and builds its site, `make test` runs the test
# suite, `make student` writes the learners' copies. `NSDE_QUICK=1 make course` builds the quick site.
# Both create .venv and install the project on first use, at the versions of requirements/lock.txt
# (LOCK=0: the newest). `make matrix` runs noxfile.py's test matrix, as CI does after `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
NOX_ARGS ?=

# LOCK=1 (the default) installs the exact versions of requirements/lock.txt, the ones CI tested,
# so two machines set up a month apart run the same code. LOCK=0 installs the newest versions
# pyproject.toml admits (`make venv LOCK=0`, `make test LOCK=0`). `make lock` refreshes the lock.
LOCK ?= 1
ifeq ($(LOCK),1)
INSTALL := -c requirements/lock.txt -e ".[dev,ray]"
ATTACKS := -r requirements/torchattacks.txt
else ifeq ($(LOCK),0)
INSTALL := --upgrade --upgrade-strategy eager -e ".[dev,ray]"
ATTACKS := --upgrade -r requirements/torchattacks.in
else
$(error LOCK must be 1 (requirements/lock.txt, the default) or 0 (the newest), got LOCK=$(LOCK))
endif
# Holds the LOCK of the last `make`; rewritten only when it changes, so that switching between
# LOCK=1 and LOCK=0 reinstalls and nothing else does.
MODE := $(VENV)/.lock-mode

.PHONY: venv course student test matrix lock lab bench clean chromium FORCE

venv: $(STAMP)

$(MODE): FORCE
	@mkdir -p $(VENV)
	@test "$$(cat $@ 2>/dev/null)" = "LOCK=$(LOCK)" || echo "LOCK=$(LOCK)" > $@

# The stamp records how the venv was installed: tests/test_environment.py checks a LOCK=1
# install against the lock.
$(STAMP): pyproject.toml requirements/lock.txt requirements/torchattacks.txt $(MODE)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(INSTALL)
	$(BIN)/python -m pip install --no-deps $(ATTACKS)  # pins requests~=2.25 (see pyproject)
	@echo "LOCK=$(LOCK)" > $@

course: $(STAMP)
	$(BIN)/python -m coursekit.site

student: $(STAMP)
	$(BIN)/python -m coursekit.student

test: $(STAMP) chromium
	NSDE_QUICK=1 $(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-current-env $(PYTEST_ARGS)

# noxfile.py: the notebooks under other instruction sets and thread counts, and the unit tests at
# the lowest versions pyproject.toml admits (the sessions tagged ci; NOX_ARGS="-s notebooks": all
# of the notebook sessions).
matrix: $(STAMP)
	$(BIN)/nox $(NOX_ARGS)

# Rewrites requirements/lock.txt, lowest.txt and torchattacks.txt with uv (the commands are in
# noxfile.py, session lock); the next `make` installs the new lock.
lock: $(STAMP)
	$(BIN)/nox -s lock

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
	rm -rf build .pytest_cache .nox
