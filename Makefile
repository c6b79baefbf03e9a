# pbx-outreach: the two commands a newcomer runs are `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    := .venv
BIN     := $(VENV)/bin
PYTHON  ?= python3
CONFIG  ?= config/example.yaml
INSTALLED := $(VENV)/.installed
PYTEST_ARGS ?=
SMS     ?=

.PHONY: help venv demo test fuzz lint format bench lab-start lab-stop lab-status postgres chromium docs lock clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

$(INSTALLED): pyproject.toml requirements.lock
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "python3-venv is missing; installing it from Debian"; \
	  apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install -qq --upgrade pip
	$(BIN)/pip install -qq -c requirements.lock -e '.[dev]'
	@touch $@

venv: $(INSTALLED)  ## create the virtual environment and install from the lock

demo: venv  ## run the daemon against the lab PBX (started and stopped for you); SMS=aliyun|tencent: SMS through that provider's stand-in; Ctrl-C ends it
	SMS=$(SMS) scripts/demo $(CONFIG)

test: lint postgres chromium  ## lint, type-check, then the whole suite against the lab PBX, PostgreSQL, a browser
	scripts/with-lab-pbx $(BIN)/pytest $(PYTEST_ARGS)

fuzz: venv  ## the API and config fuzz tests with many more examples (minutes; no PBX needed)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest -p no:cacheprovider --timeout 1800 \
	  tests/integration/http/test_fuzz.py tests/integration/cli/test_config_fuzz.py

lint: venv  ## ruff (lint + format check), mypy strict over dialer/ and notifiers/, hadolint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile

format: venv  ## apply ruff's formatting and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: venv  ## run the benchmarks in bench/ (they print figures)
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

lab-start:  ## build (first time) and start the lab Asterisk
	lab/pbx start

lab-stop:  ## stop the lab Asterisk this checkout started
	lab/pbx stop

lab-status:  ## is the lab Asterisk running, and where are its logs
	lab/pbx status

postgres:  ## make sure PostgreSQL runs on 127.0.0.1:5432
	scripts/ensure-postgres

chromium:  ## make sure Debian's chromium is installed (the status page test drives it)
	scripts/ensure-chromium

docs: venv  ## regenerate docs/config-reference.md from the config models
	$(BIN)/python -m dialer.config.reference > docs/config-reference.md

lock: venv  ## re-pin every dependency into requirements.lock
	$(BIN)/pip-compile --quiet --extra dev --strip-extras --no-emit-index-url --no-emit-find-links \
	  -o requirements.lock pyproject.toml

clean:  ## remove the virtual environment and caches (not the lab PBX cache)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
