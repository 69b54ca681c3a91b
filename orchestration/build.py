"""Run the dbt build with the right vars, then publish the marts for readers (DESIGN 10, 11)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from orchestration.ingest import ensure_raw_schema
from orchestration.settings import PROJECT_DIR, Settings, quiet_environment

PUBLISHED_SCHEMA = "marts"


class BuildError(Exception):
    """A failed build; its message is the one line the CLI prints."""


def parse_as_of(text: str | None, now: datetime | None = None) -> str:
    """Normalize `--as-of` to an RFC 3339 UTC string; a bare date or time is taken as UTC.

    The build always passes an explicit `as_of`, so the run can be reproduced later from
    its logged vars even when the user gave none.
    """
    if not text:
        moment = now or datetime.now(UTC)
    else:
        try:
            moment = datetime.fromisoformat(text.strip().replace("z", "Z"))
        except ValueError as error:
            raise BuildError(
                f"--as-of must be an ISO 8601 date or timestamp, got {text!r}"
            ) from error
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def dbt_vars(as_of: str) -> str:
    """The `--vars` payload every build passes."""
    return json.dumps({"as_of": as_of})


def dbt_environment(settings: Settings) -> None:
    """dbt reads the warehouse and seed locations from the environment (profiles.yml)."""
    quiet_environment()
    os.environ["BILLING_WAREHOUSE"] = str(settings.warehouse)
    os.environ["BILLING_SEEDS_DIR"] = seeds_path_for_dbt(settings.seeds_dir)


def seeds_path_for_dbt(seeds_dir: Path) -> str:
    """The seeds folder as dbt must see it: relative, and inside the project.

    dbt writes each seed's compiled SQL to `target/run/<project>/<seed path>`; given an
    absolute seed path, that join lands on the seed file itself and overwrites it. So the
    folder must be given relative to the project, without leaving it.
    """
    try:
        relative = seeds_dir.resolve().relative_to(PROJECT_DIR)
    except ValueError as error:
        raise BuildError(
            f"BILLING_SEEDS_DIR must be a folder inside the project ({PROJECT_DIR}), "
            f"got {seeds_dir}"
        ) from error
    return relative.as_posix()


def run_dbt(args: list[str], settings: Settings, verbose: bool = True) -> list:
    """Invoke dbt in-process (no new interpreter per call) and fail with a one-line reason.

    Quiet runs show a progress bar over finished nodes instead of dbt's log; dbt still
    prints every failure in full.
    """
    dbt_environment(settings)
    from dbt.cli.main import dbtRunner

    full_args = [*args, "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR)]
    progress = None
    callbacks = []
    if not verbose:
        from tqdm import tqdm

        full_args.append("--quiet")
        progress = tqdm(desc=f"dbt {args[0]}", unit="node")
        callbacks.append(lambda event: _advance(progress, event))
    try:
        result = dbtRunner(callbacks=callbacks).invoke(full_args)
    finally:
        release_dbt_connection()
        if progress is not None:
            progress.close()
    if result.exception is not None:
        raise BuildError(f"dbt {args[0]} could not run: {result.exception}")
    node_results = list(getattr(result.result, "results", None) or [])
    failures = [
        node.node.name
        for node in node_results
        if str(getattr(node, "status", "")).lower() in {"error", "fail"}
    ]
    if not result.success:
        listed = ", ".join(failures[:5]) or "see the dbt output above"
        more = f" and {len(failures) - 5} more" if len(failures) > 5 else ""
        raise BuildError(f"dbt {args[0]} failed: {listed}{more}")
    return node_results


def _advance(progress, event) -> None:
    if event.info.name == "NodeFinished":
        progress.update(1)


def release_dbt_connection() -> None:
    """Close the DuckDB instance dbt-duckdb keeps open in this process after a run.

    dbt-duckdb caches one database instance per process; while it lives, no other connection
    with other settings (publishing opens the file read-only) may open the same file.
    """
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    with DuckDBConnectionManager._LOCK:
        if DuckDBConnectionManager._ENV is not None:
            DuckDBConnectionManager._ENV.close()
            DuckDBConnectionManager._ENV = None


def prepare_warehouse(settings: Settings) -> None:
    """The raw tables must exist before dbt reads them as sources, even before any ingest."""
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(settings.warehouse))
    except duckdb.Error as error:
        raise BuildError(
            f"cannot open warehouse {settings.warehouse} (another build or reader holding "
            f"it?): {error}"
        ) from error
    try:
        ensure_raw_schema(con)
    finally:
        con.close()


def build(settings: Settings, as_of: str, select: str | None = None, verbose: bool = True) -> list:
    """One `dbt build` (seeds, models, tests) and, when it passes, a fresh published copy."""
    prepare_warehouse(settings)
    args = ["build", "--vars", dbt_vars(as_of)]
    if select:
        args += ["--select", select]
    results = run_dbt(args, settings, verbose=verbose)
    publish(settings)
    return results


def publish(settings: Settings) -> None:
    """Copy every mart to a read-only DuckDB file and Parquet files, each swapped in atomically.

    Readers never open the file builds write (DuckDB allows one writer, and a reader holding
    it makes the next build fail), and a failed build never reaches this point.
    """
    target = settings.published_warehouse
    parquet_dir = settings.published_dir / "parquet"
    parquet_dir.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".duckdb.tmp")
    temporary.unlink(missing_ok=True)
    con = duckdb.connect()
    try:
        con.execute(f"attach '{settings.warehouse.as_posix()}' as warehouse (read_only)")
        con.execute(f"attach '{temporary.as_posix()}' as published")
        tables = [
            row[0]
            for row in con.execute(
                "select table_name from information_schema.tables "
                "where table_catalog = 'warehouse' and table_schema = ? order by table_name",
                [PUBLISHED_SCHEMA],
            ).fetchall()
        ]
        for table in tables:
            source = f"warehouse.{PUBLISHED_SCHEMA}.{table}"
            con.execute(f"create table published.main.{table} as select * from {source}")
            staged = parquet_dir / f"{table}.parquet.tmp"
            con.execute(f"copy {source} to '{staged.as_posix()}' (format parquet)")
            os.replace(staged, parquet_dir / f"{table}.parquet")
        con.execute("detach published")
    finally:
        con.close()
    os.replace(temporary, target)


def connect_published(settings: Settings) -> duckdb.DuckDBPyConnection:
    """A short-lived read-only connection to the published marts."""
    if not settings.published_warehouse.exists():
        raise BuildError(
            f"no published warehouse at {settings.published_warehouse}: run `billing build` first"
        )
    return duckdb.connect(str(settings.published_warehouse), read_only=True)
