"""The Dagster code location: what it defines, and the pipeline run through it end to end.

The daily job over two months of generated data and the monthly job for each month must
finalize exactly the invoices a plain `billing build` finalizes; repeating a run bills
nothing twice; a failed gate stops the run before finalization and raises an alert; and
`dagster dev` serves the same asset graph over GraphQL.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import date, datetime

import dagster as dg
import pytest
from conftest import TEST_SEEDS_ROOT, free_port, query

from billing.orchestration.partitions import RANGE_END_TAG, RANGE_START_TAG
from billing.sample.generate import GenerateOptions, generate
from billing.settings import DAGSTER_CONFIG_TEMPLATE, PROJECT_DIR, Settings, load_settings
from billing.warehouse.dbt import run_dbt

AS_OF = "2026-11-05T00:00:00Z"
OPTIONS = GenerateOptions(
    events=6_000, customers=10, months=2, first_month=date(2026, 9, 1), seed=5, spikes=1
)

# The asset graph: every asset and its partitions. A change here is a change to what
# operators see and schedule; update it on purpose.
EXPECTED_ASSETS = {
    "daily": [
        "checks/chk_daily_usage",
        "checks/chk_reconciliation_daily",
        "checks/chk_staged_events",
        "checks/chk_usage_anomalies",
        "intermediate/int_billing_periods",
        "intermediate/int_events_counted_to_days",
        "intermediate/int_events_metered",
        "intermediate/int_events_priced",
        "intermediate/int_subscriptions_prorated_to_periods",
        "intermediate/int_usage_aggregated_to_days",
        "marts/fct_landed_files",
        "marts/fct_quarantined_events",
        "marts/fct_reconciliation_daily",
        "marts/fct_rejected_files",
        "marts/fct_usage_anomalies",
        "marts/fct_usage_daily",
        "published/reconciliation",
        "raw/landed_control_files",
        "raw/landed_files",
        "raw/raw_control_totals",
        "raw/raw_events",
        "raw/rejected_files",
        "raw/withdrawn_files",
        "reference/credit_grants",
        "reference/currencies",
        "reference/customers",
        "reference/discounts",
        "reference/meters",
        "reference/plan_charge_tiers",
        "reference/plan_charges",
        "reference/plans",
        "reference/quarantine_reasons",
        "reference/subscription_override_tiers",
        "reference/subscription_overrides",
        "reference/subscriptions",
        "reference/usage_thresholds",
        "staging/stg_events__control_totals",
        "staging/stg_events__parsed_events",
        "staging/stg_events__rejected_files",
        "staging/stg_events__routed_events",
        "staging/stg_events__usage_events",
    ],
    "monthly": [
        "audit/snap_invoices",
        "audit/snap_plan_charge_tiers",
        "audit/snap_plan_charges",
        "audit/snap_plans",
        "checks/chk_invoice_candidate_identities",
        "checks/chk_invoice_identities",
        "checks/chk_threshold_crossings",
        "checks/chk_usage_tie_out",
        "intermediate/int_charge_limits_applied",
        "intermediate/int_charges_metered_to_periods",
        "intermediate/int_charges_rated",
        "intermediate/int_commitment_true_ups",
        "intermediate/int_credit_applications",
        "intermediate/int_credit_applications_finalizing",
        "intermediate/int_invoice_adjustments",
        "intermediate/int_invoice_lines_assembled",
        "intermediate/int_invoice_lines_finalizing",
        "intermediate/int_invoice_periods_billed",
        "intermediate/int_invoices_calculated",
        "intermediate/int_invoices_credited",
        "intermediate/int_invoices_finalizing",
        "intermediate/int_invoices_voided",
        "intermediate/int_subscription_periods_billed",
        "intermediate/int_usage_aggregated_to_charges",
        "intermediate/int_usage_aggregated_to_periods",
        "intermediate/int_usage_lines_rounded",
        "intermediate/int_usage_tied_out_to_periods",
        "ledger/finalization",
        "marts/fct_credit_balances",
        "marts/fct_credit_notes",
        "marts/fct_invoice_line_items",
        "marts/fct_invoices",
        "marts/fct_reconciliation_periods",
        "marts/fct_threshold_crossings",
        "marts/fct_voided_invoice_line_items",
        "marts/fct_voided_invoices",
        "published/invoice_documents",
        "published/invoices",
    ],
    # The ledger as the previous build left it: read by dbt as a source, written only by
    # ledger/finalization (a loop the graph cannot draw, so it is an external asset).
    "external": [
        "control/run_context",
        "ledger/fct_credit_applications_finalized",
        "ledger/fct_invoice_line_items_finalized",
        "ledger/fct_invoice_voids",
        "ledger/fct_invoices_finalized",
        # Which event rows each scoped data test has passed (D68), written by dbt's hooks.
        "ops/data_test_passes",
    ],
}
EXPECTED_GATES = {
    # check: (asset, blocking)
    "staged_events_gate": ("staging/stg_events__routed_events", True),
    "daily_usage_gate": ("marts/fct_usage_daily", True),
    "reconciliation_gate": ("marts/fct_reconciliation_daily", True),
    "usage_spikes": ("marts/fct_usage_anomalies", False),
    "invoice_candidates_gate": ("intermediate/int_invoices_credited", True),
    "invoices_gate": ("marts/fct_invoices", True),
    "usage_tie_out_gate": ("marts/fct_reconciliation_periods", True),
}


@pytest.fixture(scope="module")
def definitions():
    """The code location, loaded from a manifest parsed from the project as it is now."""
    run_dbt(["parse"], load_settings(), verbose=False)
    from billing.orchestration import definitions

    return definitions


def test_the_asset_graph_checks_jobs_and_schedules(definitions):
    graph = definitions.defs.resolve_asset_graph()
    kinds = {
        "DailyPartitionsDefinition": "daily",
        "MonthlyPartitionsDefinition": "monthly",
        "NoneType": "external",
    }
    assets: dict[str, list[str]] = {"daily": [], "monthly": [], "external": []}
    for key in graph.get_all_asset_keys():
        partitions = graph.get(key).partitions_def
        assets[kinds[type(partitions).__name__]].append(key.to_user_string())
    assert {kind: sorted(keys) for kind, keys in assets.items()} == EXPECTED_ASSETS
    # Groups are the areas of the two pipelines, from the folders.
    groups: dict[str, set[str]] = {}
    for key in graph.get_all_asset_keys():
        groups.setdefault(graph.get(key).group_name, set()).add(key.path[-1])
    assert groups["control"] == {"run_context"}
    # What each gate reads: models/checks/ (daily and monthly), one group.
    assert groups["checks"] == {
        "chk_daily_usage",
        "chk_invoice_candidate_identities",
        "chk_invoice_identities",
        "chk_reconciliation_daily",
        "chk_staged_events",
        "chk_threshold_crossings",
        "chk_usage_anomalies",
        "chk_usage_tie_out",
    }
    assert groups["metering"] == {
        "int_billing_periods",
        "int_events_counted_to_days",
        "int_events_metered",
        "int_events_priced",
        "int_subscriptions_prorated_to_periods",
        "int_usage_aggregated_to_days",
    }
    assert groups["ledger"] == {
        "finalization",
        "fct_credit_applications_finalized",
        "fct_invoice_line_items_finalized",
        "fct_invoice_voids",
        "fct_invoices_finalized",
        "int_credit_applications_finalizing",
        "int_invoice_lines_finalizing",
        "int_invoice_periods_billed",
        "int_invoices_finalizing",
        "int_invoices_voided",
    }
    assert groups["invoicing"] == {
        "fct_credit_balances",
        "fct_credit_notes",
        "fct_invoice_line_items",
        "fct_invoices",
        "fct_reconciliation_periods",
        "fct_threshold_crossings",
        "fct_voided_invoice_line_items",
        "fct_voided_invoices",
    }
    assert set(groups) == {
        "audit", "billing", "checks", "control", "invoicing", "landing", "ledger", "metering",
        "ops", "published", "raw", "reconciliation", "reference", "staging", "usage",
    }  # fmt: skip

    gates = {
        spec.key.name: (spec.key.asset_key.to_user_string(), spec.blocking)
        for checks in definitions.GATES
        for spec in checks.check_specs
    }
    assert gates == EXPECTED_GATES
    # dbt data tests are checks too, on the model they test (a singular test names it in
    # its meta); one whose parents span two steps still runs inside the later dbt build.
    dbt_checks = {
        (key.asset_key.to_user_string(), key.name)
        for key in graph.asset_check_keys
        if key.name not in EXPECTED_GATES
    }
    assert len(dbt_checks) > 150
    assert (
        "staging/stg_events__routed_events",
        "assert_every_raw_row_is_routed_once",
    ) in dbt_checks
    assert ("reference/plan_charges", "assert_rate_cards_are_well_formed") in dbt_checks
    assert ("reference/subscriptions", "assert_accounts_are_well_formed") in dbt_checks

    jobs = {job.name: job for job in definitions.defs.resolve_all_job_defs()}
    assert {"daily_reconciliation", "monthly_invoicing"} <= set(jobs)
    schedules = {
        schedule.name: (schedule.cron_schedule, schedule.job_name, schedule.execution_timezone)
        for schedule in definitions.defs.schedules
    }
    assert schedules == {
        "daily_reconciliation_schedule": ("15 0 * * *", "daily_reconciliation", "UTC"),
        "monthly_invoicing_schedule": ("0 6 4 * *", "monthly_invoicing", "UTC"),
    }
    assert [sensor.name for sensor in definitions.defs.sensors] == ["alert_on_run_failure"]
    for job in (definitions.daily_reconciliation_job, definitions.monthly_invoicing_job):
        assert "billing/warehouse" in job.tags


def test_the_instance_allows_one_run_per_warehouse():
    import yaml

    config = yaml.safe_load((DAGSTER_CONFIG_TEMPLATE).read_text())
    assert config["telemetry"] == {"enabled": False}
    assert config["concurrency"]["runs"]["tag_concurrency_limits"] == [
        {"key": "billing/warehouse", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
    ]
    assert config["concurrency"]["pools"] == {"default_limit": 1}


def schedule_request(definitions, name: str, when: str):
    schedule = next(s for s in definitions.defs.schedules if s.name == name)
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime.fromisoformat(when),
        repository_def=definitions.defs.get_repository_def(),
    )
    return schedule.evaluate_tick(context).run_requests


def test_schedules_request_the_previous_day_and_month(definitions):
    (daily,) = schedule_request(
        definitions, "daily_reconciliation_schedule", "2026-11-01T00:15:00+00:00"
    )
    assert daily.partition_key == "2026-10-31"
    (monthly,) = schedule_request(
        definitions, "monthly_invoicing_schedule", "2026-11-04T06:00:00+00:00"
    )
    assert monthly.partition_key == "2026-10-01"


def run_job(definitions, name: str, instance, **tags):
    partition = tags.pop("partition", None)
    job = definitions.defs.resolve_job_def(name)
    return job.execute_in_process(
        instance=instance,
        partition_key=partition,
        tags={"billing/as_of": AS_OF, **tags},
        raise_on_error=False,
    )


def check_results(result) -> dict[str, bool]:
    return {
        event.event_specific_data.check_name: event.event_specific_data.passed
        for event in result.all_events
        if event.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def materializations(result, key: str) -> list[dict]:
    """The metadata of each materialization of `key` in a run, as plain values."""
    return [
        {
            name: value.value
            for name, value in event.event_specific_data.materialization.metadata.items()
        }
        for event in result.all_events
        if event.event_type_value == "ASSET_MATERIALIZATION"
        and event.asset_key.to_user_string() == key
    ]


def invoices_of(warehouse) -> list[tuple]:
    return query(
        warehouse,
        "select invoice_id, customer_id, strftime(billing_period_start, '%Y-%m'), status, "
        "total_amount, line_item_count from marts.fct_invoices order by invoice_id",
    )


def lines_of(warehouse) -> list[tuple]:
    return query(
        warehouse,
        "select invoice_line_item_id, amount from marts.fct_invoice_line_items "
        "order by invoice_line_item_id",
    )


@pytest.fixture(scope="module")
def orchestrated(definitions, workspace, tmp_path_factory):
    """Two months of events through the daily job (one ranged run) and the monthly job."""
    generate(
        OPTIONS,
        workspace.landing_dir,
        workspace.seeds_dir,
        tmp_path_factory.mktemp("record") / "record.json",
    )
    instance = dg.DagsterInstance.ephemeral()
    daily = run_job(
        definitions,
        "daily_reconciliation",
        instance,
        **{RANGE_START_TAG: "2026-09-01", RANGE_END_TAG: "2026-10-31"},
    )
    september = run_job(definitions, "monthly_invoicing", instance, partition="2026-09-01")
    after_september = invoices_of(workspace.warehouse)
    documents_after_september = documents_of(workspace)
    october = run_job(definitions, "monthly_invoicing", instance, partition="2026-10-01")
    return {
        "instance": instance,
        "daily": daily,
        "september": september,
        "after_september": after_september,
        "documents_after_september": documents_after_september,
        "october": october,
    }


def documents_of(settings) -> list[str]:
    """The invoice documents on disk, as `YYYY-MM/INV-….pdf|html` (drafts included)."""
    folder = settings.invoice_documents_dir
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*.*"))


def test_each_month_run_renders_the_documents_of_the_invoices_it_finalized(orchestrated):
    # Ten customers: September's run renders September's ten invoices, PDF and HTML, and
    # no draft; October's adds October's and keeps September's as they were.
    pdfs = [name for name in orchestrated["documents_after_september"] if name.endswith(".pdf")]
    assert pdfs == [f"2026-09/INV-2026-09-{n:06d}.pdf" for n in range(1, 11)]
    assert len(orchestrated["documents_after_september"]) == 20
    [september] = materializations(orchestrated["september"], "published/invoice_documents")
    [october] = materializations(orchestrated["october"], "published/invoice_documents")
    assert (september["documents"], september["written"]) == (10, 10)
    assert (october["documents"], october["written"]) == (10, 10)


def test_the_daily_and_monthly_jobs_pass_every_gate(orchestrated):
    assert orchestrated["daily"].success
    assert orchestrated["september"].success and orchestrated["october"].success
    daily_checks = check_results(orchestrated["daily"])
    assert daily_checks["staged_events_gate"] is True
    assert daily_checks["daily_usage_gate"] is True
    assert daily_checks["reconciliation_gate"] is True
    assert daily_checks["assert_every_raw_row_is_routed_once"] is True
    assert daily_checks["usage_spikes"] is False  # the injected spike, a warning
    monthly_checks = check_results(orchestrated["october"])
    assert monthly_checks["invoice_candidates_gate"] is True
    assert monthly_checks["invoices_gate"] is True
    assert monthly_checks["usage_tie_out_gate"] is True


def test_a_month_run_finalizes_only_its_month(orchestrated):
    statuses = {(period, status) for _, _, period, status, *_ in orchestrated["after_september"]}
    assert statuses == {("2026-09", "finalized"), ("2026-10", "draft"), ("2026-11", "draft")}


def test_orchestrated_invoices_equal_a_plain_build(orchestrated, workspace, built_scenarios):
    # The same generated months, landed and built by `billing build` (shared with
    # test_quality_gates); the generator is seeded, so the events are the same.
    plain, _ = built_scenarios(OPTIONS, AS_OF)
    landed = "select file_name, content_hash from raw.landed_files order by file_name"
    assert query(plain.warehouse, landed) == query(workspace.warehouse, landed)
    orchestrated_invoices = invoices_of(workspace.warehouse)
    assert orchestrated_invoices == invoices_of(plain.warehouse)
    assert lines_of(workspace.warehouse) == lines_of(plain.warehouse)
    statuses = {(period, status) for _, _, period, status, *_ in orchestrated_invoices}
    assert statuses == {("2026-09", "finalized"), ("2026-10", "finalized"), ("2026-11", "draft")}
    # The published copy finance reads holds the same invoices.
    published = query(
        workspace.published_warehouse, "select count(*), sum(total_amount) from fct_invoices"
    )
    assert published == query(
        workspace.warehouse, "select count(*), sum(total_amount) from marts.fct_invoices"
    )


def test_repeating_a_month_bills_nothing_twice(definitions, orchestrated, workspace):
    ledger = (
        "select (select count(*) from ledger.fct_invoices_finalized), "
        "(select count(*) from ledger.fct_invoice_line_items_finalized), "
        "(select count(*) from ledger.fct_credit_applications_finalized)"
    )
    before = (query(workspace.warehouse, ledger), invoices_of(workspace.warehouse))
    again = run_job(
        definitions, "monthly_invoicing", orchestrated["instance"], partition="2026-10-01"
    )
    assert again.success
    assert (query(workspace.warehouse, ledger), invoices_of(workspace.warehouse)) == before
    # October's documents were rendered by its first run and are kept, not rewritten.
    [documents] = materializations(again, "published/invoice_documents")
    assert (documents["documents"], documents["written"]) == (10, 0)


@pytest.fixture
def broken(definitions, orchestrated, workspace, tmp_path, monkeypatch):
    """The same events, in a new warehouse, with rate data that makes one customer's tax
    negative: a mistake no dbt test catches, but the invoice gate does."""
    seeds = TEST_SEEDS_ROOT / uuid.uuid4().hex[:12]
    shutil.copytree(workspace.seeds_dir, seeds)
    rows = list(csv.reader((seeds / "accounts" / "customers.csv").open()))
    header, customer = rows[0], rows[1]
    customer[header.index("tax_rate")] = "-0.1"
    with (seeds / "accounts" / "customers.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    settings = Settings(tmp_path / "broken.duckdb", workspace.landing_dir, seeds)
    monkeypatch.setenv("BILLING_WAREHOUSE", str(settings.warehouse))
    monkeypatch.setenv("BILLING_SEEDS_DIR", str(seeds))
    yield settings, customer[0]
    shutil.rmtree(seeds, ignore_errors=True)


def test_a_failed_gate_stops_the_month_before_finalization(definitions, broken):
    settings, customer_id = broken
    instance = dg.DagsterInstance.ephemeral()
    daily = run_job(
        definitions,
        "daily_reconciliation",
        instance,
        **{RANGE_START_TAG: "2026-09-01", RANGE_END_TAG: "2026-10-31"},
    )
    assert daily.success
    september = run_job(definitions, "monthly_invoicing", instance, partition="2026-09-01")
    assert not september.success
    assert check_results(september)["invoice_candidates_gate"] is False
    materialized = {
        event.asset_key.to_user_string()
        for event in september.all_events
        if event.event_type_value == "ASSET_MATERIALIZATION"
    }
    assert "intermediate/int_invoices_credited" in materialized
    assert not {key for key in materialized if key.startswith(("ledger/", "published/"))}
    assert "marts/fct_invoices" not in materialized
    # Nothing was finalized (the ledger tables, created up front, are empty), and the
    # gate's alert names the customer.
    assert query(
        settings.warehouse,
        "select (select count(*) from ledger.fct_invoices_finalized), "
        "(select count(*) from ledger.fct_invoice_line_items_finalized), "
        "(select count(*) from ledger.fct_credit_applications_finalized)",
    ) == [(0, 0, 0)]
    alerts = query(
        settings.warehouse,
        "select alert_kind, check_name, severity, scope, customers from ops.alerts "
        "where alert_kind = 'quality_gate'",
    )
    assert alerts == [("quality_gate", "invoice_candidates", "critical", "2026-09", [customer_id])]

    # The run-failure sensor turns the failed run into an alert as well.
    failure = next(
        event for event in september.all_events if event.event_type_value == "PIPELINE_FAILURE"
    )
    context = dg.build_run_status_sensor_context(
        sensor_name="alert_on_run_failure",
        dagster_instance=instance,
        dagster_run=september.dagster_run,
        dagster_event=failure,
    ).for_run_failure()
    definitions.alert_on_run_failure(context)
    assert query(
        settings.warehouse,
        "select severity, scope from ops.alerts where alert_kind = 'run_failure'",
    ) == [("critical", "2026-09")]


def graphql(port: int, query_text: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query_text}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_dagster_dev_serves_the_asset_graph(definitions, tmp_path):
    """`dagster dev` loads the code location and serves the whole asset graph.

    Nothing here is timed: the test waits for readiness (the GraphQL endpoint answers and
    the code location reports LOADED), fails at once if the process exits, and keeps only a
    very generous safety limit against a process that hangs.
    """
    safety_limit_seconds = 15 * 60
    locations_query = (
        "{ workspaceOrError { __typename ... on Workspace { locationEntries { name "
        "loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"
    )
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(
        PROJECT_DIR / "billing" / "orchestration" / "dagster.yaml", home / "dagster.yaml"
    )
    log = tmp_path / "dagster-dev.log"
    port = free_port()

    def output() -> str:
        return log.read_text(errors="replace")[-4000:]

    def answer(query_text: str) -> dict | None:
        """The GraphQL answer, or None while the web server is not answering (yet)."""
        try:
            return graphql(port, query_text)
        except (OSError, ValueError):  # not up yet, or not answering JSON yet
            return None

    def loaded_locations() -> list[dict] | None:
        """The code locations once every one has finished loading."""
        workspace = ((answer(locations_query) or {}).get("data") or {}).get("workspaceOrError")
        entries = (workspace or {}).get("locationEntries")
        if entries and all(entry["loadStatus"] == "LOADED" for entry in entries):
            return entries
        return None

    def wait_for(fetch):
        """Poll `fetch` until it has a value; fail at once if the process exits."""
        deadline = time.monotonic() + safety_limit_seconds
        while True:
            if server.poll() is not None:
                pytest.fail(f"dagster dev exited ({server.returncode}):\n{output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"dagster dev hung (safety limit reached):\n{output()}")
            value = fetch()
            if value is not None:
                return value
            time.sleep(1)

    with log.open("w") as sink:
        server = subprocess.Popen(
            [
                # A pytest-xdist worker ignores SIGINT, and an ignored signal stays ignored
                # across exec: `dagster dev` then never heard the shutdown below and each
                # run waited out the 60 s grace (measured on 2026-12-06: 80 s in the suite,
                # 23 s alone). The launcher restores it, then becomes `dagster`.
                sys.executable,
                "-c",
                "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                "os.execv(sys.argv[1], sys.argv[1:])",
                str(PROJECT_DIR / ".venv" / "bin" / "dagster"),
                "dev",
                "-m",
                "billing.orchestration.definitions",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            cwd=PROJECT_DIR,
            env={
                **os.environ,
                "DAGSTER_HOME": str(home),
                "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
            },
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        entries = wait_for(loaded_locations)
        errors = [
            entry["locationOrLoadError"]["message"]
            for entry in entries
            if entry["locationOrLoadError"]["__typename"] == "PythonError"
        ]
        assert errors == [], errors
        nodes = wait_for(lambda: answer("{ assetNodes { assetKey { path } } }"))
        served = {"/".join(node["assetKey"]["path"]) for node in nodes["data"]["assetNodes"]}
        assert served == {key for keys in EXPECTED_ASSETS.values() for key in keys}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
