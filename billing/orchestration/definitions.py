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

The code location in the dagster-open-platform shape: project.py (the dbt project, the
partitions), translator.py, assets.py, checks.py (gates declared in dbt `meta.gates`),
jobs.py, schedules.py, sensors.py; this module only puts them together.
"""

import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

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
    source_specs,
)
from billing.orchestration.checks import GATES
from billing.orchestration.jobs import daily_reconciliation_job, monthly_invoicing_job
from billing.orchestration.project import DBT_PROJECT
from billing.orchestration.schedules import (
    daily_reconciliation_schedule,
    monthly_invoicing_schedule,
)
from billing.orchestration.sensors import alert_on_run_failure

__all__ = [
    "GATES",
    "alert_on_run_failure",
    "daily_reconciliation_job",
    "defs",
    "monthly_invoicing_job",
]

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
        invoice_documents,
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
