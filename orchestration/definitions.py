"""The Dagster code location: ingest, the dbt project as assets, gates, jobs and schedules.

- Ingest is an upstream asset over the landing folder; it produces the raw tables dbt reads
  as sources.
- The dbt project becomes assets through dagster-dbt. Which partitions an asset has comes
  from dbt: `meta.partition` (daily or monthly, set once per folder in dbt_project.yml);
  the steps are the selectors of selectors.yml; asset keys come from each node's schema and
  groups from its area folder. No model is named here.
- Each partition kind is split in two at its gate: daily staging, then (after the staged
  events gate) daily usage and reconciliation; monthly rating, then (after the invoice
  candidates gate) the invoice marts, then (after the invoice gates) the one ledger
  transaction. Gates are blocking asset checks, so a failed gate stops everything
  downstream and no invoice is finalized past it.
- Every job runs its steps one at a time in one process and carries the `billing/warehouse`
  tag, which the instance's run queue limits to one run per warehouse file (dagster.yaml).
"""

import json
import os
import sys
import warnings
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from orchestration.alerts import (
    alerts_from_report,
    raise_alerts,
    raise_rejected_file_alerts,
    run_failure_alert,
)
from orchestration.build import (
    PRODUCTION_BUILD_ARGS,
    dbt_environment,
    finalize_ledger,
    prepare_run,
    publish,
    run_dbt,
)
from orchestration.ingest import ingest_files
from orchestration.partitions import (
    partitions_start,
    previous_day_key,
    previous_month_key,
    run_as_of,
    run_context_of,
    window_of_run,
)
from orchestration.quality import run_quality
from orchestration.settings import PROJECT_DIR, load_settings, quiet_environment

quiet_environment()
# Single-run backfills (one dbt build for a range of days) are the point of the policy.
warnings.filterwarnings("ignore", category=dg.BetaWarning)

WAREHOUSE_POOL = "billing_warehouse"
WAREHOUSE_TAG = "billing/warehouse"
RAW_TABLES = {
    "raw_events": "Every received event line, verbatim.",
    "landed_files": "One row per landed event file.",
    "raw_control_totals": "Producers' control-total rows, verbatim.",
    "landed_control_files": "One row per landed control-totals file.",
    "rejected_files": "Files ingest could not read, with their hash and reason.",
    "withdrawn_files": "Landed files retired with `billing withdraw`, with the reason.",
}

DBT_PROJECT = DbtProject(project_dir=PROJECT_DIR, profiles_dir=PROJECT_DIR)
# The asset graph is read from dbt's manifest: parse when there is none, and under
# `dagster dev` every time, so the UI shows the project as it is on disk.
if os.environ.get("DAGSTER_IS_DEV_CLI") or not DBT_PROJECT.manifest_path.exists():
    run_dbt(["parse"], load_settings(), verbose=False)

DAILY = dg.DailyPartitionsDefinition(start_date=partitions_start().isoformat())
MONTHLY = dg.MonthlyPartitionsDefinition(start_date=partitions_start().replace(day=1).isoformat())


class BillingTranslator(DagsterDbtTranslator):
    """Asset keys from each dbt node's schema and groups from its folder, never from its
    name: the groups are the areas of the two pipelines (metering, billing, ledger,
    landing, usage, reconciliation, invoicing)."""

    def get_asset_key(self, dbt_resource_props) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        return dg.AssetKey([layer_of(dbt_resource_props), dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props) -> str:
        if dbt_resource_props["resource_type"] == "source":
            return dbt_resource_props["source_name"]
        return area_of(dbt_resource_props)


def layer_of(dbt_resource_props) -> str:
    """The node's schema (staging, intermediate, marts, ledger, reference, audit)."""
    return dbt_resource_props.get("config", {}).get("schema") or dbt_resource_props["schema"]


def area_of(dbt_resource_props) -> str:
    """The model's area folder (models/marts/invoicing -> invoicing), else its schema."""
    fqn = dbt_resource_props.get("fqn", [])
    if dbt_resource_props["resource_type"] == "model" and len(fqn) > 3:
        return fqn[2]
    return layer_of(dbt_resource_props)


TRANSLATOR = BillingTranslator()


def dbt_build(context, dbt: DbtCliResource, kind: str):
    """`dbt build` of this step's selection in the window's run context; streams its events."""
    settings = load_settings()
    window = window_of_run(context.run.tags, kind)
    # The run id tags the rows dbt computes for finalization; ledger/finalization of the
    # same run takes only those (orchestration/ledger.py).
    run_context = run_context_of(
        window, run_as_of(context.run.tags, datetime.now(UTC)), context.run.run_id
    )
    prepare_run(settings, run_context)
    dbt_environment(settings)
    context.log.info(run_context.describe())
    args = ["build", "--indirect-selection", "buildable", *PRODUCTION_BUILD_ARGS]
    yield from dbt.cli(args, context=context).stream()


def partitioned_dbt_assets(name: str, selector: str, kind: str):
    """One dbt_assets op over a selector of selectors.yml, in the daily or monthly partitions."""

    @dbt_assets(
        manifest=DBT_PROJECT.manifest_path,
        project=DBT_PROJECT,
        selector=selector,
        name=name,
        partitions_def=DAILY if kind == "daily" else MONTHLY,
        dagster_dbt_translator=TRANSLATOR,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=WAREHOUSE_POOL,
    )
    def _assets(context: dg.AssetExecutionContext, dbt: DbtCliResource):
        yield from dbt_build(context, dbt, kind)

    return _assets


# Each pipeline is cut at its gate; the cuts are named in selectors.yml.
daily_staging = partitioned_dbt_assets("dbt_staging", "daily_staging", "daily")
daily_usage = partitioned_dbt_assets("dbt_daily_usage", "daily_usage", "daily")
monthly_rating = partitioned_dbt_assets("dbt_rating", "monthly_rating", "monthly")
monthly_invoicing = partitioned_dbt_assets("dbt_invoicing", "monthly_invoicing", "monthly")


@dg.multi_asset(
    specs=[
        dg.AssetSpec(["raw", table], description=text, group_name="raw")
        for table, text in RAW_TABLES.items()
    ],
    partitions_def=DAILY,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=WAREHOUSE_POOL,
)
def landed_events(context: dg.AssetExecutionContext):
    """Land every new file of the landing folder (idempotent: a landed file is skipped)."""
    settings = load_settings()
    result = ingest_files(settings.warehouse, [settings.landing_dir], settings.landing_dir)
    # A bad file is rejected alone (the others land) and raises an alert; it never stops
    # the day's run for every other producer.
    raise_rejected_file_alerts(settings.warehouse, result)
    for name, reason in result.rejected_files:
        context.log.warning(f"rejected {name}: {reason}")
    context.log.info(
        f"landed {len(result.loaded_files)} files ({result.loaded_rows} event rows, "
        f"{result.control_rows} control rows); {len(result.skipped_files)} already landed"
    )
    for table in RAW_TABLES:
        yield dg.MaterializeResult(
            asset_key=["raw", table],
            metadata={
                "files_loaded": len(result.loaded_files),
                "event_rows_loaded": result.loaded_rows,
                "control_rows_loaded": result.control_rows,
                "files_rejected": len(result.rejected_files),
            },
        )


def source_specs() -> list[dg.AssetSpec]:
    """The tables dbt reads as sources that no dbt step builds: the ledger (appended by the
    finalization below) and the run context (written before every dbt step), each in the
    group of its source; names and descriptions come from dbt. Raw tables are ingest's."""
    manifest = json.loads(DBT_PROJECT.manifest_path.read_text())
    return [
        dg.AssetSpec(
            [source["source_name"], source["name"]],
            description=source["description"],
            group_name=source["source_name"],
        )
        for source in manifest["sources"].values()
        if source["source_name"] != "raw"
    ]


@dg.asset(
    key=["ledger", "finalization"],
    deps=[
        dg.AssetKey(["marts", "fct_invoices"]),
        dg.AssetKey(["marts", "fct_invoice_line_items"]),
        dg.AssetKey(["marts", "fct_credit_notes"]),
        dg.AssetKey(["marts", "fct_reconciliation_periods"]),
    ],
    partitions_def=MONTHLY,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="ledger",
    description=(
        "The month's finalized invoices, lines and credit spend appended to the ledger in "
        "one transaction, after every gate on the invoices passed (the same function as "
        "`billing build`). dbt reads the result next time as the source `ledger`."
    ),
    pool=WAREHOUSE_POOL,
)
def ledger_finalization(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """The one ledger write of the monthly run (orchestration/ledger.py)."""
    result = finalize_ledger(load_settings(), context.run.run_id)
    context.log.info(result.describe())
    return dg.MaterializeResult(
        metadata={
            "invoices": result.invoices,
            "lines": result.lines,
            "credit_applications": result.credit_applications,
        }
    )


def published_asset(name: str, kind: str, deps: list[list[str]], description: str):
    """Copy the marts to the readers' published copy once the gates above have passed."""

    @dg.asset(
        key=["published", name],
        deps=[dg.AssetKey(dep) for dep in deps],
        partitions_def=DAILY if kind == "daily" else MONTHLY,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name="published",
        description=description,
        pool=WAREHOUSE_POOL,
    )
    def _published(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        settings = load_settings()
        publish(settings)
        return dg.MaterializeResult(metadata={"path": str(settings.published_warehouse)})

    return _published


published_reconciliation = published_asset(
    "reconciliation",
    "daily",
    [
        ["marts", "fct_reconciliation_daily"],
        ["marts", "fct_usage_daily"],
        ["marts", "fct_usage_anomalies"],
    ],
    "Daily marts (usage, reconciliation, quarantine) published for readers.",
)
published_invoices = published_asset(
    "invoices",
    "monthly",
    [["ledger", "finalization"]],
    "Invoices and the period tie-out published for finance.",
)


def quality_gate(
    name: str,
    asset: list[str],
    suites: tuple[str, ...],
    kind: str,
    blocking: bool = True,
    description: str | None = None,
):
    """A Great Expectations suite as an asset check; a failure raises its alert."""

    @dg.asset_check(
        asset=dg.AssetKey(asset),
        name=name,
        blocking=blocking,
        description=description
        or f"Great Expectations suite {', '.join(suites)} over the run's partition window.",
        pool=WAREHOUSE_POOL,
    )
    def _gate(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        settings = load_settings()
        window = window_of_run(context.run.tags, kind)
        report = run_quality(settings.warehouse, window.scope, suites=suites)
        raised = raise_alerts(settings.warehouse, alerts_from_report(report))
        context.log.info(report.describe())
        passed = report.passed and not report.anomaly_count
        return dg.AssetCheckResult(
            passed=passed,
            severity=dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN,
            metadata={
                "scope": window.scope.label,
                "report": dg.MetadataValue.md(f"```\n{report.describe()}\n```"),
                "alerts_new": len(raised.new),
                "alerts_repeated": len(raised.repeated),
            },
        )

    return _gate


GATES = [
    quality_gate(
        "staged_events_gate", ["staging", "stg_events__routed_events"], ("staged_events",), "daily"
    ),
    quality_gate("daily_usage_gate", ["marts", "fct_usage_daily"], ("daily_usage",), "daily"),
    quality_gate(
        "reconciliation_gate", ["marts", "fct_reconciliation_daily"], ("reconciliation",), "daily"
    ),
    quality_gate(
        "usage_spikes",
        ["marts", "fct_usage_anomalies"],
        ("anomalies",),
        "daily",
        blocking=False,
        description="Usage spikes in the window (fct_usage_anomalies): a warning, never blocking.",
    ),
    quality_gate(
        "invoice_candidates_gate",
        ["intermediate", "int_invoices_credited"],
        ("invoice_candidates",),
        "monthly",
    ),
    quality_gate("invoices_gate", ["marts", "fct_invoices"], ("invoices",), "monthly"),
    quality_gate(
        "usage_tie_out_gate", ["marts", "fct_reconciliation_periods"], ("usage_tie_out",), "monthly"
    ),
]


def billing_job(name: str, assets: list, description: str):
    """Steps one at a time in this process (one DuckDB writer), tagged with the warehouse."""
    return dg.define_asset_job(
        name,
        selection=dg.AssetSelection.assets(*assets),
        executor_def=dg.in_process_executor,
        tags={WAREHOUSE_TAG: str(load_settings().warehouse)},
        description=description,
    )


daily_reconciliation_job = billing_job(
    "daily_reconciliation",
    [landed_events, daily_staging, daily_usage, published_reconciliation],
    "Ingest, stage, gate, meter per day, reconcile and publish one UTC day (or a range).",
)
monthly_invoicing_job = billing_job(
    "monthly_invoicing",
    [monthly_rating, monthly_invoicing, ledger_finalization, published_invoices],
    "Rate the month, gate the invoice candidates, finalize those past their grace, "
    "gate the invoices and publish them.",
)


def previous_partition_schedule(name: str, cron: str, job, partition_key, description: str):
    """A UTC schedule that runs `job` for the partition `partition_key` picks for its tick."""

    @dg.schedule(
        name=name,
        cron_schedule=cron,
        job=job,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=description,
    )
    def _schedule(context: dg.ScheduleEvaluationContext):
        key = partition_key(context.scheduled_execution_time)
        return dg.RunRequest(run_key=key, partition_key=key)

    return _schedule


daily_reconciliation_schedule = previous_partition_schedule(
    "daily_reconciliation_schedule",
    "15 0 * * *",
    daily_reconciliation_job,
    previous_day_key,
    "00:15 UTC: reconcile the previous UTC day.",
)
monthly_invoicing_schedule = previous_partition_schedule(
    "monthly_invoicing_schedule",
    "0 6 4 * *",
    monthly_invoicing_job,
    previous_month_key,
    "The 4th at 06:00 UTC, after the default 72-hour grace: invoice the previous month.",
)


@dg.run_failure_sensor(
    monitored_jobs=[daily_reconciliation_job, monthly_invoicing_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def alert_on_run_failure(context: dg.RunFailureSensorContext) -> None:
    """A failed run (a failed gate included) raises a run_failure alert to the sinks."""
    run = context.dagster_run
    kind = "daily" if run.job_name == daily_reconciliation_job.name else "monthly"
    try:
        scope = window_of_run(run.tags, kind).scope
    except ValueError:
        scope = None
    message = context.failure_event.message or "the run failed"
    raise_alerts(load_settings().warehouse, [run_failure_alert(run.job_name, scope, message)])


defs = dg.Definitions(
    assets=[
        landed_events,
        daily_staging,
        daily_usage,
        monthly_rating,
        monthly_invoicing,
        ledger_finalization,
        published_reconciliation,
        published_invoices,
        *source_specs(),
    ],
    asset_checks=GATES,
    jobs=[daily_reconciliation_job, monthly_invoicing_job],
    schedules=[daily_reconciliation_schedule, monthly_invoicing_schedule],
    sensors=[alert_on_run_failure],
    resources={
        "dbt": DbtCliResource(
            project_dir=DBT_PROJECT, dbt_executable=str(Path(sys.prefix) / "bin" / "dbt")
        )
    },
)
