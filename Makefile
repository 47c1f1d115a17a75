# Two commands matter to users: `make demo` and `make test`. Both create the virtualenv when missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Every package of the environment, pinned (`make lock` updates it); the stamp changes with it.
LOCK := requirements/lock.txt
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile $(wildcard $(LOCK)) | sha1sum | cut -c1-12)
# The extras `make setup` installs and the lock pins: all but flash (flash-attn, GPU machines only).
EXTRAS := dev,docs,plots,optuna,ui,server,launchers,mteb
comma := ,
# Where runs write (the configs' paths.output_dir; pass OUTPUTS=... to both if you move it).
OUTPUTS ?= outputs
FIXTURES ?= $(OUTPUTS)/fixtures
# A new virtualenv takes about 7 GB (PyPI's torch for Linux is the CUDA build); checked before creating one.
MIN_FREE_GB ?= 7
# `make test` runs both tiers, tests/unit and tests/e2e, and skips tests marked slow (CI runs them:
# PYTEST_ARGS="-m 'slow or not slow'"); `make unit` runs tests/unit alone.
PYTEST_ARGS ?= -m "not slow"

.PHONY: setup lock test unit fixtures demo ui ui-check server lint format clean bench label docs

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile $(wildcard $(LOCK))
	@if [ ! -x $(PY) ]; then \
		free_gb=$$(df -Pk . | awk 'NR == 2 { print int($$4 / 1048576) }'); \
		if [ "$$free_gb" -lt $(MIN_FREE_GB) ]; then \
			echo "error: only $$free_gb GB free on this disk; a new $(VENV) needs about $(MIN_FREE_GB) GB" \
				"(torch's CUDA build). Free some space, or run with MIN_FREE_GB=0 to try anyway." >&2; \
			exit 1; \
		fi; \
	fi
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r $(LOCK)
	$(PY) -m pip install -q --no-deps -e '.[$(EXTRAS)]'
	rm -f $(VENV)/.installed-*
	touch $@

# Resolve the dependencies again from PyPI into $(LOCK), for Linux x86-64 and Python 3.11, torch held at
# requirements/torch.txt: pins still allowed by pyproject.toml stay, new or changed requirements are added;
# `make lock UPGRADE=1` moves every pin to the newest release allowed. The next `make setup` installs it.
lock:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q uv
	$(PY) -m uv pip compile pyproject.toml $(foreach extra,$(subst $(comma), ,$(EXTRAS)),--extra $(extra)) \
		--constraint requirements/torch.txt --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
		--custom-compile-command 'make lock' --quiet --output-file $(LOCK) $(if $(UPGRADE),--upgrade)

test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

# The quick loop: tests/unit only (in-process, no subprocess, no training; under a minute on a quiet machine).
unit: setup
	$(PY) -m pytest -q tests/unit

# The documentation site (mkdocs.yml, docs/) into site/; --strict turns every broken link or missing page into an error.
docs: setup
	NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true $(VENV)/bin/mkdocs build --strict --site-dir site

fixtures: setup
	$(PY) -m vdr_exp.fixtures --out $(FIXTURES)

bench: setup
	HF_HUB_OFFLINE=1 $(PY) benchmarks/bench.py
	HF_HUB_OFFLINE=1 $(PY) benchmarks/pipeline.py

lint: setup
	$(PY) -m ruff check vdr_exp tests benchmarks
	$(PY) -m ruff format --check vdr_exp tests benchmarks
	$(VENV)/bin/lint-imports  # the layer order and purity contracts in .importlinter

format: setup
	$(PY) -m ruff format vdr_exp tests benchmarks
	$(PY) -m ruff check --fix vdr_exp tests benchmarks

clean:
	rm -rf $(VENV) $(OUTPUTS)/fixtures .pytest_cache .ruff_cache build *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

demo: setup
	HF_HUB_OFFLINE=1 $(PY) -m vdr_exp.evaluate sweep=offline_demo
	@echo
	@echo "Done: trained the tiny model, compared it with its base and the 4x-larger tiny model (table above)."
	@echo "Compare the runs:  make ui, then open the link printed above: the sweep's runs by NDCG@10, no set-up; the parent"
	@echo "run 'offline_demo <time> (sweep)' shows the leaderboard on its Overview (docs/tutorials/compare-runs.md)."
	@echo "Export a leaderboard again with:  $(PY) -m vdr_exp.leaderboard --parent latest --base tiny_qwen3_vl"

ui: setup
	$(PY) -m mlflow ui --backend-store-uri sqlite:///$(abspath $(OUTPUTS))/mlflow.db \
		--default-artifact-root $(abspath $(OUTPUTS))/mlartifacts --host 127.0.0.1 --port $(or $(PORT),5000)

# A team's tracking server (tracking=team): a database for runs, a folder or bucket for artifacts, served over HTTP
# so no client needs the artifact store. DB defaults to a SQLite file; use PostgreSQL for a team.
DB ?= sqlite:///$(abspath $(OUTPUTS))/server.db
ARTIFACTS ?= $(abspath $(OUTPUTS))/server-artifacts
# Users (docs/how-to/team-server.md): MLflow's basic-auth app is on when the admin's password is set, in
# $MLFLOW_AUTH_ADMIN_PASSWORD or ADMIN_PASSWORD_FILE (mode 600), never here; a HOST other than loopback is refused
# without it. NAMES: the host names clients use (allowed Host headers, CORS origins). SERVER_DIR: the server's own
# files (generated auth config, CSRF key); the users' database sits beside DB unless AUTH_DB says otherwise.
SERVER_DIR ?= $(abspath $(OUTPUTS))/server
server: setup
	$(PY) -m vdr_exp.server serve --db '$(DB)' --artifacts '$(ARTIFACTS)' --folder '$(SERVER_DIR)' \
		--host $(or $(HOST),127.0.0.1) --port $(or $(PORT),5000) --names '$(NAMES)' --auth-db '$(AUTH_DB)' \
		--admin-password-file '$(ADMIN_PASSWORD_FILE)' --default-permission $(or $(DEFAULT_PERMISSION),READ)

# The labelling page for your own documents: make label DOCS=/data/contracts [ARGS='model=... port=8766']
label: setup
	$(PY) -m vdr_exp.label docs=$(or $(DOCS),$(error give the folder: make label DOCS=/path/to/pdfs)) $(ARGS)

# After `make demo`: Chromium (apt-get install chromium), driven by Playwright, checks the UI and saves screenshots.
ui-check: setup
	$(PY) tests/support/ui_check.py --store $(OUTPUTS)/mlflow.db --artifacts $(OUTPUTS)/mlartifacts \
		--out $(OUTPUTS)/screenshots
