# The two commands of the README: `make demo` and `make test`. Each sets up the virtualenv
# itself from the committed lock file, so a fresh clone needs nothing but Python 3.11.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9

# Nothing here may phone home: dbt, Dagster and Great Expectations all have telemetry.
export DO_NOT_TRACK := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export DAGSTER_DISABLE_TELEMETRY := 1
export GX_ANALYTICS_ENABLED := false
export UV_PROJECT_ENVIRONMENT := $(VENV)
# Compile every installed module to bytecode once, at install. Machines that set
# PYTHONDONTWRITEBYTECODE (this one does) otherwise recompile dbt, Dagster, GX and pandas
# from source in every process: about 5 s of each `billing` command and each test
# subprocess (measured: importing the stack took 11.0 s without, 5.7 s with).
export UV_COMPILE_BYTECODE := 1

DEMO_EVENTS ?= 1000000
DEMO_FIRST_DAY := 2026-09-01
DEMO_LAST_DAY := 2026-10-31
UI_PORT ?= 3000
DOCS_PORT ?= 8080
BI_PORT ?= 8088
# Superset lives in its own virtualenv, from its own lock: it pins pandas 2.1 and
# SQLAlchemy 1.4, which the project's dbt and Dagster do not accept.
BI_VENV := .venv-bi
export BILLING_BI_HOME ?= $(CURDIR)/data/bi
PUBLISHED_MARTS = $(dir $(or $(BILLING_WAREHOUSE),$(CURDIR)/data/warehouse.duckdb))published/marts.duckdb
export DAGSTER_HOME ?= $(CURDIR)/.dagster
BENCH_EVENTS ?= 1000000
BENCH_MONTHS ?= 1
# pytest workers (pytest-xdist): one per core of the 2-core machines this runs on.
PYTEST_WORKERS ?= 2
LINT_PROCESSES ?= 2

.PHONY: help demo test setup bi-setup browser lint format pytest test-bi test-faults torture bench quality ui docs bi clean

# `make help` lists every target with the text after its `##`.
help: ## list the targets
	@awk -F ':.*## ' '/^[a-z-]+:.*## / {printf "  make %-9s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/.synced: pyproject.toml uv.lock
	@test -x $(BIN)/uv || { $(PYTHON) -m venv $(VENV) && $(BIN)/pip install --quiet uv==$(UV_VERSION); }
	$(BIN)/uv sync --frozen --quiet
	@touch $@

setup: $(BIN)/.synced ## create .venv from the lock file (every target runs it)

$(BI_VENV)/.synced: bi/requirements.lock | $(BIN)/.synced
	@test -x $(BI_VENV)/bin/python || $(PYTHON) -m venv $(BI_VENV)
	$(BIN)/uv pip install --quiet --python $(BI_VENV)/bin/python -r bi/requirements.lock
	@touch $@

bi-setup: $(BI_VENV)/.synced ## create .venv-bi (Superset) from bi/requirements.lock

# Debian's Chromium and its driver, for the dashboard screenshot test (CI installs them).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		{ apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; }

demo: setup ## generate a month of events, ingest, build, print the invoices, their PDFs, the gates
	$(BIN)/billing generate --events $(DEMO_EVENTS) --spikes 1
	$(BIN)/billing ingest
	$(BIN)/billing build
	$(BIN)/billing invoices
	$(BIN)/billing invoice-pdf --all
	$(BIN)/billing quality

# The Great Expectations gates over every day and period with data (or DAY=YYYY-MM-DD,
# PERIOD=YYYY-MM); exits non-zero when a gate fails.
quality: setup ## run the Great Expectations gates (DAY=YYYY-MM-DD or PERIOD=YYYY-MM)
	$(BIN)/billing quality $(if $(DAY),--day $(DAY)) $(if $(PERIOD),--period $(PERIOD))

# With CI=true every suite runs, the Superset one included (locally: BILLING_BI=1).
test: setup lint $(if $(filter true,$(CI)),bi-setup browser) pytest ## lint, then every pytest suite

# sqlfluff lints a file per process (measured on this 2-core machine: 180 s on one, 139 s
# on two). billing/sql_lint.py skips the SQL files that passed unchanged (its cache is
# target/sqlfluff-passed.json); CI=true or LINT_ALL=1 lints every one.
lint: setup ## ruff and sqlfluff, checking only (LINT_ALL=1: every SQL file, no cache)
	$(BIN)/ruff check billing tests models bi
	$(BIN)/ruff format --check billing tests models bi
	@mkdir -p target
	BILLING_WAREHOUSE=target/lint.duckdb $(BIN)/python -m billing.sql_lint models tests macros --processes $(LINT_PROCESSES) $(if $(LINT_ALL),--no-cache)

format: setup ## ruff and sqlfluff, fixing what they can
	$(BIN)/ruff format billing tests models
	$(BIN)/ruff check --fix billing tests models
	@mkdir -p target
	BILLING_WAREHOUSE=target/lint.duckdb $(BIN)/sqlfluff fix models tests --disable-progress-bar

# Workers take whole test groups (tests/python/conftest.py), longest first.
pytest: setup ## the pytest suites on PYTEST_WORKERS workers (they run dbt builds)
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup --no-loadscope-reorder

test-bi: setup bi-setup browser ## only the Superset test (CI=true runs it within make test)
	BILLING_BI=1 $(BIN)/pytest -n 1 -m bi

test-faults: setup ## only the fault-injection tests (CI=true runs them within make test)
	BILLING_FAULTS=1 $(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup --no-loadscope-reorder -m faults

# Every fault-class test (the killed builds and ingests, replays, held warehouses, hostile
# alert text), fault injection included, then the table of faults injected and survived.
torture: setup ## every fault-injection, replay and concurrency test, then their table
	BILLING_FAULTS=1 BILLING_TORTURE=1 $(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup --no-loadscope-reorder -m torture

bench: setup ## full build, daily build, reference pipeline, side by side (BENCH_EVENTS=N a month, BENCH_MONTHS=M)
	$(BIN)/python -m billing.bench --events $(BENCH_EVENTS) --months $(BENCH_MONTHS)

# The Dagster UI on 127.0.0.1. On a fresh clone it first lands the demo month's events and
# runs the daily job over them (one run), so launching the monthly job for a closed month
# from the UI invoices the same data as `make demo`.
ui: setup ## the Dagster UI on 127.0.0.1 (UI_PORT=3000), demo data first on a fresh clone
	@mkdir -p $(DAGSTER_HOME) && cp billing/orchestration/dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dbt parse --project-dir . --profiles-dir . --quiet
	@if [ ! -f data/warehouse.duckdb ]; then \
		$(BIN)/billing generate --events $(DEMO_EVENTS) --spikes 1 && \
		$(BIN)/billing backfill daily $(DEMO_FIRST_DAY) $(DEMO_LAST_DAY); \
	fi
	@echo "Dagster UI: http://127.0.0.1:$(UI_PORT)  (Ctrl-C stops it)"
	$(BIN)/dagster dev -h 127.0.0.1 -p $(UI_PORT)

# The dbt docs as one page, data/docs/index.html, served on 127.0.0.1 (after `make demo` it
# shows the warehouse's column types too).
docs: setup ## write the dbt docs page and serve it on 127.0.0.1 (DOCS_PORT=8080)
	$(BIN)/billing docs --serve --port $(DOCS_PORT)

# Superset on 127.0.0.1 over the published marts, provisioned from bi/ (database, datasets,
# charts, the Finance and Operations dashboards); admin BILLING_BI_ADMIN / BILLING_BI_PASSWORD.
bi: setup bi-setup ## Superset on 127.0.0.1 (BI_PORT=8088): Finance and Operations dashboards
	SUPERSET_CONFIG_PATH=$(CURDIR)/bi/superset_config.py $(BI_VENV)/bin/python bi/provision.py serve --marts $(PUBLISHED_MARTS) --port $(BI_PORT)

clean: ## remove build output and published copies (keeps the warehouse and invoice documents)
	rm -rf target logs data/published data/published.versions data/published.next data/docs
