"""The dbt project as Dagster sees it, the partitions and the one-writer limits.

Everything else in this package reads the project from here. The asset graph comes from
dbt's manifest: parsed when there is none, and under `dagster dev` every time, so the UI
shows the project as it is on disk.
"""

import os
import warnings

import dagster as dg
from dagster_dbt import DbtProject

from billing.orchestration.partitions import partitions_start
from billing.settings import PROJECT_DIR, dbt_target_dir, load_settings, quiet_environment
from billing.warehouse.dbt import run_dbt

quiet_environment()
# Single-run backfills (one dbt build for a range of days) are the point of the policy.
warnings.filterwarnings("ignore", category=dg.BetaWarning)

# One run per warehouse file: the pool limits steps, the tag limits queued runs (dagster.yaml).
WAREHOUSE_POOL = "billing_warehouse"
WAREHOUSE_TAG = "billing/warehouse"

DBT_PROJECT = DbtProject(
    project_dir=PROJECT_DIR,
    profiles_dir=PROJECT_DIR,
    target_path=dbt_target_dir().relative_to(PROJECT_DIR),
)
if os.environ.get("DAGSTER_IS_DEV_CLI") or not DBT_PROJECT.manifest_path.exists():
    run_dbt(["parse"], load_settings(), verbose=False)

DAILY = dg.DailyPartitionsDefinition(start_date=partitions_start().isoformat())
MONTHLY = dg.MonthlyPartitionsDefinition(start_date=partitions_start().replace(day=1).isoformat())


def partitions_of(kind: str) -> dg.PartitionsDefinition:
    """The partitions of a dbt folder's `meta.partition` (daily or monthly)."""
    return DAILY if kind == "daily" else MONTHLY
