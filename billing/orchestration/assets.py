"""The assets: ingest, the dbt project in four gate-bounded steps, the ledger and publish.

- Ingest is an upstream asset over the landing folder; it produces the raw tables dbt reads
  as sources.
- The dbt steps are the selectors of selectors.yml; which partitions an asset has comes
  from dbt (`meta.partition`, set once per folder). No model is named here.
- The ledger finalization follows every invoice mart, the publish assets follow their
  pipeline's marts; both take those from the dbt steps, not from model names.
"""

import json
from datetime import UTC, datetime

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from billing.alerts import raise_rejected_file_alerts
from billing.documents.render import render_finalized
from billing.landing import ingest_files
from billing.orchestration.partitions import run_as_of, run_context_of, window_of_run
from billing.orchestration.project import (
    DAILY,
    DBT_PROJECT,
    MONTHLY,
    WAREHOUSE_POOL,
    partitions_of,
)
from billing.orchestration.translator import TRANSLATOR
from billing.settings import load_settings
from billing.warehouse.build import finalize_ledger
from billing.warehouse.dbt import PRODUCTION_BUILD_ARGS, dbt_environment, prepare_run
from billing.warehouse.publish import publish

RAW_TABLES = {
    "raw_events": "Every received event line, verbatim.",
    "landed_files": "One row per landed event file.",
    "raw_control_totals": "Producers' control-total rows, verbatim.",
    "landed_control_files": "One row per landed control-totals file.",
    "rejected_files": "Files ingest could not read, with their hash and reason.",
    "withdrawn_files": "Landed files retired with `billing withdraw`, with the reason.",
}


def dbt_build(context, dbt: DbtCliResource, kind: str):
    """`dbt build` of this step's selection in the window's run context; streams its events."""
    settings = load_settings()
    window = window_of_run(context.run.tags, kind)
    # The run id tags the rows dbt computes for finalization; ledger/finalization of the
    # same run takes only those (billing/warehouse/ledger.py).
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
        partitions_def=partitions_of(kind),
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
    # After every asset of the invoicing step (and so after every gate on them).
    deps=sorted(monthly_invoicing.keys),
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
    """The one ledger write of the monthly run (billing/warehouse/ledger.py)."""
    result = finalize_ledger(load_settings(), context.run.run_id)
    context.log.info(result.describe())
    return dg.MaterializeResult(
        metadata={
            "invoices": result.invoices,
            "lines": result.lines,
            "credit_applications": result.credit_applications,
        }
    )


def published_asset(name: str, kind: str, deps, description: str):
    """Copy the marts to the readers' published copy once the gates above have passed."""

    @dg.asset(
        key=["published", name],
        deps=sorted(deps),
        partitions_def=partitions_of(kind),
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
    daily_usage.keys,  # every asset of the daily usage step, and so its gates
    "Daily marts (usage, reconciliation, quarantine) published for readers.",
)
published_invoices = published_asset(
    "invoices",
    "monthly",
    ledger_finalization.keys,
    "Invoices and the period tie-out published for finance.",
)


@dg.asset(
    key=["published", "invoice_documents"],
    deps=published_invoices.keys,
    partitions_def=MONTHLY,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="published",
    description=(
        "The PDF and HTML document of every invoice the month finalized, rendered from the "
        "published copy (`billing invoice-pdf --period`), written once and never replaced."
    ),
)
def invoice_documents(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """Finance's documents follow the invoices: after publish, not before, so a document
    only ever shows an invoice the ledger holds (DECISIONLOG D80)."""
    window = window_of_run(context.run.tags, "monthly")
    rendered = render_finalized(load_settings(), window)
    written = sum(each.outcome == "written" for each in rendered)
    context.log.info(f"{len(rendered)} invoice document(s), {written} new")
    return dg.MaterializeResult(metadata={"documents": len(rendered), "written": written})
