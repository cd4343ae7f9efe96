# One task runner: CI calls `make test` unchanged.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: install demo test chaos bench lint clean

install:  ## production: a venv with requirements.txt only (no test tools); then run .venv/bin/python abs.py doctor
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "pyBursar needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@echo "installed: $(PY) abs.py help   (next: cp .env.example .env; chmod 600 .env; $(PY) abs.py doctor)"

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

demo: $(VENV)/.installed  ## run Direction 1 end to end on the built-in sandbox
	$(PY) abs.py demo

test: $(VENV)/.installed  ## the whole test suite (installs Debian's OpenSSH for its integration test when it can)
	-sh scripts/ensure-openssh.sh
	-sh scripts/ensure-chromium.sh
	$(PY) -m pytest -n 2 -q

chaos: $(VENV)/.installed  ## the long kill sweep: today killed at POINTS more moments (minutes; not in make test)
	BURSAR_CHAOS_POINTS=$${POINTS:-24} $(PY) -m pytest -n 2 -q tests/e2e/test_kill_sweep.py

bench: $(VENV)/.installed  ## benchmarks (minutes; never part of `make test`)
	$(PY) bench/import_export.py
	$(PY) bench/reconcile.py

clean:
	rm -rf $(VENV) demo .pytest_cache

lint: $(VENV)/.installed  ## ruff, mypy, then the import-linter layering contracts
	$(VENV)/bin/ruff check bursar tests bench abs.py
	$(VENV)/bin/mypy bursar
	$(VENV)/bin/lint-imports
