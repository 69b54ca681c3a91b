"""The two jobs operators run: the daily reconciliation and the monthly invoicing."""

import dagster as dg

from billing.orchestration.assets import (
    daily_staging,
    daily_usage,
    invoice_documents,
    landed_events,
    ledger_finalization,
    monthly_invoicing,
    monthly_rating,
    published_invoices,
    published_reconciliation,
)
from billing.orchestration.project import WAREHOUSE_TAG
from billing.settings import load_settings


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
    [monthly_rating, monthly_invoicing, ledger_finalization, published_invoices, invoice_documents],
    "Rate the month, gate the invoice candidates, finalize those past their grace, "
    "gate the invoices, publish them and render their documents.",
)
