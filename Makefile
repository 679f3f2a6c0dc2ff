# Two commands matter: `make run` and `make test`. Both create .venv and install first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: web-assets chromium run test lint lint-deploy lint-monitoring typecheck bench soak screenshots histories clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The GOV.UK Design System's styles, from npm into web/static/govuk (not committed;
# a second run with the same pinned version does nothing): scripts/vendor_govuk.py.
web-assets: $(STAMP)
	$(BIN)/python scripts/vendor_govuk.py

# The browser tests drive Debian's Chromium (never `playwright install`): installed here
# when it is missing (as root, as CI runs).
chromium:
	test -x /usr/bin/chromium || (apt-get update && apt-get install -y --no-install-recommends chromium)

run: $(STAMP) web-assets
	$(BIN)/whn-dev

test: $(STAMP) lint web-assets chromium
	$(BIN)/pytest -q

lint: $(STAMP) lint-deploy lint-monitoring
	$(BIN)/ruff check .
	$(BIN)/mypy domain workflows

# deploy/prometheus and deploy/grafana: configuration, PromQL and dashboards, offline.
lint-monitoring: $(STAMP)
	$(BIN)/python scripts/check_monitoring.py

screenshots: $(STAMP) web-assets chromium
	$(BIN)/python scripts/screenshots.py
	$(BIN)/python scripts/track_screenshots.py

# docker-compose.yml against the Compose Specification schema (vendored in check-jsonschema),
# then deploy/lint.py: every profile and override stack (deploy/compose/) merged and checked,
# and the Kubernetes manifests (deploy/k8s/) against vendored Kubernetes JSON schemas; the
# Dockerfile through hadolint. All offline, no Docker engine or cluster needed.
lint-deploy: $(STAMP)
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
	$(BIN)/python -m deploy.lint
	$(BIN)/hadolint Dockerfile

bench: $(STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# Not part of `make test`: 1,000 cases with faults injected (SOAK_ARGS=--quick: 100).
soak: $(STAMP)
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
