"""Where things live: the project, the warehouse, the landing folder (architecture §10)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]


def dbt_target_dir() -> Path:
    """Where dbt writes its manifest and compiled SQL: DBT_TARGET_PATH (relative to the
    project, as dbt reads it) or target/. Parallel test workers each set their own, so two
    dbt runs never share a partial parse or a manifest."""
    return PROJECT_DIR / os.environ.get("DBT_TARGET_PATH", "target")


DEFAULT_WAREHOUSE = PROJECT_DIR / "data" / "warehouse.duckdb"
DEFAULT_LANDING_DIR = PROJECT_DIR / "data" / "landing"
DEFAULT_SEEDS_DIR = PROJECT_DIR / "seeds"

# Nothing this project runs may try the network: dbt, Dagster and GX all phone home by default.
QUIET_ENVIRONMENT = {
    "DO_NOT_TRACK": "1",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "DAGSTER_DISABLE_TELEMETRY": "1",
    "GX_ANALYTICS_ENABLED": "false",
}


@dataclass(frozen=True)
class Settings:
    """Resolved locations for one command; built once from the environment."""

    warehouse: Path
    landing_dir: Path
    seeds_dir: Path

    @property
    def published_dir(self) -> Path:
        """Readers' copies live beside the warehouse, never inside the file builds write."""
        return self.warehouse.parent / "published"

    @property
    def published_warehouse(self) -> Path:
        return self.published_dir / "marts.duckdb"

    @property
    def invoice_documents_dir(self) -> Path:
        """Invoice documents (`billing invoice-pdf`), kept across publishes: every published
        version links `invoices/` here, so `published/invoices/` always shows them (D80)."""
        return self.warehouse.parent / "invoices"


def _path_from_env(name: str, default: Path) -> Path:
    """An env value is taken relative to the caller's folder, as a shell user expects."""
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser().resolve() if value else default


def load_settings() -> Settings:
    """Read BILLING_WAREHOUSE, BILLING_LANDING_DIR and BILLING_SEEDS_DIR."""
    return Settings(
        warehouse=_path_from_env("BILLING_WAREHOUSE", DEFAULT_WAREHOUSE),
        landing_dir=_path_from_env("BILLING_LANDING_DIR", DEFAULT_LANDING_DIR),
        seeds_dir=_path_from_env("BILLING_SEEDS_DIR", DEFAULT_SEEDS_DIR),
    )


DAGSTER_CONFIG_TEMPLATE = PROJECT_DIR / "billing" / "orchestration" / "dagster.yaml"


def dagster_home() -> Path:
    """$DAGSTER_HOME, else `.dagster/` in the project, holding this project's dagster.yaml.

    The instance config turns telemetry off and limits runs to one per warehouse file; a
    folder without it gets a copy, so every entry point (UI, CLI backfills, tests) agrees.
    """
    home = _path_from_env("DAGSTER_HOME", PROJECT_DIR / ".dagster")
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_CONFIG_TEMPLATE.read_text(encoding="utf-8"), encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def quiet_environment() -> None:
    """Turn telemetry off before any dbt, Dagster or GX import can read the environment."""
    for key, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(key, value)
