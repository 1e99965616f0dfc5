# The project's contract: setup, lint, test, integration, deploy, destroy.
#
#   make integration   emulator -> branch stack -> scenarios -> traces -> teardown
#   make test          the harness's own tests (unit, plugin, end-to-end)
#
# Every target installs what it needs first (make setup), so both work on a
# fresh machine with only Python, pip, git and make.

SHELL := /bin/bash
.SHELLFLAGS := -e -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(CURDIR)/$(VENV)/bin
# Recipes, and the deploy command the harness runs, use the project's tools.
export PATH := $(BIN):$(PATH)
PYTEST_ARGS ?=
# Python's default: compiled modules (and pytest's rewritten test modules) are cached in
# __pycache__. Some machines turn that off for every process (PYTHONDONTWRITEBYTECODE), and then
# every pytest start, xdist worker and harness subprocess compiles every module again.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: help setup setup-cdk setup-serverless lint test test-fast conformance integration integration-cdk deploy destroy gc bench reliability clean

help:
	@echo "make integration   deploy the branch stack on the embedded emulator, run scenarios, tear down"
	@echo "make test          run the harness's own tests"
	@echo "make test-fast     only the unit and plugin tiers (no emulator; under a minute)"
	@echo "make conformance   run the conformance corpus (tests/conformance) through the harness"
	@echo "make lint          ruff + cfn-lint + the import contract (.importlinter)"
	@echo "make integration-cdk   the same for the CDK reference app (two stacks; make setup-cdk first)"
	@echo "make setup-serverless  the Serverless Framework example app's tools (npm ci; make test runs it)"
	@echo "make bench         benchmarks -> docs/benchmarks.md"
	@echo "make reliability   fault matrix -> docs/reliability.md"
	@echo "make gc ARGS=--yes delete expired or orphaned branch stacks"
	@echo "make deploy STAGE=name / make destroy STAGE=name   the reference stack's production deploy"

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[local,deploy,dev]'
	touch $@

# The CDK reference app's tools: the pinned CDK CLI (npm ci, a few seconds)
# and aws-cdk-lib (pip, about a minute). Only the CDK tests need them.
setup-cdk: setup
	$(MAKE) -C reference-cdk setup PYTHON=$(BIN)/python

# The Serverless Framework example app's tools: serverless@3 and serverless-localstack,
# pinned by its package-lock.json (npm ci, about two minutes). Only its e2e test needs them.
SLS_APP := tests/conformance/serverless_rest
setup-serverless:
	$(MAKE) -C $(SLS_APP) setup

lint: setup
	$(BIN)/ruff check harness tests scenarios reliability benchmarks conftest.py reference-stack/functions reference-cdk/app.py reference-cdk/orders_cdk reference-cdk/functions reference-cdk/scenarios
	$(BIN)/ruff format --check harness tests scenarios reliability benchmarks conftest.py
	$(BIN)/cfn-lint reference-stack/template.yaml tests/conformance/*/template.yaml
	$(BIN)/lint-imports --no-cache

# Tests run in parallel, one worker per core, each test on whichever worker is free; the tests of
# a file that share a fixture (its emulator) stay together (tests/e2e/conftest.py groups them).
TEST_WORKERS ?= auto
test: setup-cdk setup-serverless
	$(BIN)/python -m pytest tests -q -m "not conformance" -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# The unit and plugin tiers only: no emulator, no deploy (the inner loop while changing the harness).
test-fast: setup
	$(BIN)/python -m pytest tests/unit tests/plugin -q -n $(TEST_WORKERS) --hypothesis-profile=fast $(PYTEST_ARGS)

# Ten small serverless apps, each deployed with its own Makefile and tested by
# its own tests through the harness on the embedded emulator (two at a time).
conformance: setup
	$(BIN)/python -m pytest tests/e2e/test_conformance_e2e.py -q -n 2 -m conformance $(PYTEST_ARGS)

# The integration jobs load the pytest plugins they use and no other: entry-point autoloading
# would also load the dev environment's report plugins (pytest-html, allure-pytest,
# pytest-metadata, typeguard's), about 0.45 s of every run's start-up and collection.
# Add others with EXTRA_PLUGINS, e.g. pytest-html's report:
#   make integration EXTRA_PLUGINS="pytest_html.plugin pytest_metadata.plugin" PYTEST_ARGS=--html=report.html
INTEGRATION_PLUGINS := harness.pytest.plugin xdist.plugin _hypothesis_pytestplugin
EXTRA_PLUGINS ?=
INTEGRATION_PLUGIN_ARGS = --disable-plugin-autoload $(addprefix -p ,$(INTEGRATION_PLUGINS) $(EXTRA_PLUGINS))

integration: setup
	$(BIN)/python -m pytest $(INTEGRATION_PLUGIN_ARGS) scenarios --stack on -v $(PYTEST_ARGS)

# The CDK reference app (two stacks) through the harness: its own `make deploy`
# (cdk bootstrap + cdk deploy --all), its scenarios, teardown importers first.
CDK_FINGERPRINT := reference-cdk/app.py,reference-cdk/orders_cdk/**,reference-cdk/functions/**,\
reference-cdk/cdk.json,reference-cdk/Makefile,reference-cdk/package-lock.json,reference-cdk/requirements.txt
integration-cdk: setup-cdk
	HARNESS_APP=orders-cdk HARNESS_STACK_NAME_PATTERN='{app}-api-{stage}' \
	HARNESS_DEPLOY_COMMAND='make -C reference-cdk deploy' HARNESS_FINGERPRINT_PATHS='$(CDK_FINGERPRINT)' \
	$(BIN)/python -m pytest $(INTEGRATION_PLUGIN_ARGS) reference-cdk/scenarios --stack on -v $(PYTEST_ARGS)

# The reference stack's production deploy: this is the command the harness runs.
deploy:
	$(MAKE) -C reference-stack deploy PYTHON=$(BIN)/python

destroy:
	$(MAKE) -C reference-stack destroy

# Delete expired or orphaned branch stacks (dry run unless ARGS=--yes).
gc: setup
	$(BIN)/harness gc $(ARGS)

# Speed of a branch-stack cycle against the floor; writes docs/benchmarks.md.
bench: setup
	$(BIN)/python -m benchmarks $(ARGS)

# The fault matrix (leaks, signals, bad input, secrets, faults); writes docs/reliability.md.
reliability: setup
	$(BIN)/python -m reliability $(ARGS)

clean:
	$(MAKE) -C reference-stack clean
	rm -rf harness-report .test-cache
