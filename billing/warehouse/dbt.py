"""dbt in this process: the environment it reads, the run context it needs, one-line failures.

Every dbt invocation (`billing build`, the tests, Dagster's steps through `prepare_run`)
first makes sure the tables dbt reads as sources exist and hold this run's context
(DECISIONLOG D52).
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from billing.landing import ensure_raw_schema
from billing.settings import PROJECT_DIR, Settings, quiet_environment
from billing.warehouse import lock
from billing.warehouse.ledger import ensure_ledger_schema
from billing.warehouse.run_context import RunContext, write_run_context


class BuildError(Exception):
    """A failed build; its message is the one line the CLI prints."""


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
    prints every failure in full. Returns the results of the nodes dbt built and tested,
    without its run hooks.
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

    def invoke():
        try:
            return dbtRunner(callbacks=callbacks).invoke(full_args)
        finally:
            release_dbt_connection()

    try:
        # dbt opens the warehouse itself; a reader that took the file since prepare_run
        # makes it fail at its first node, before anything ran: wait and run it again (D70).
        result = lock.retry_while_held(invoke, settings.warehouse, _lock_holder_of)
    except lock.WarehouseBusy as error:
        raise BuildError(f"dbt {args[0]} did not run: {error}") from error
    finally:
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
    # The project's run hooks (D68) report as results too; what was built is the rest, so
    # a selection that matched nothing still returns nothing.
    return [node for node in node_results if node.node.resource_type != "operation"]


def _lock_holder_of(result) -> str | None:
    """Who held the warehouse when a dbt run failed because it could not open it."""
    if result.success:
        return None
    texts = [str(result.exception or "")] + [
        str(getattr(node, "message", "") or "")
        for node in (getattr(result.result, "results", None) or [])
    ]
    return next(filter(None, map(lock.lock_conflict_holder, texts)), None)


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


def prepare_run(settings: Settings, context: RunContext) -> None:
    """Before every dbt invocation, in one connection: the tables dbt reads as sources (raw,
    ledger, control) exist, even before any ingest, and control holds this run's context."""
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = lock.connect(settings.warehouse)
    except lock.WarehouseBusy as error:
        raise BuildError(f"nothing was built: {error}") from error
    except duckdb.Error as error:
        raise BuildError(f"cannot open warehouse {settings.warehouse}: {error}") from error
    try:
        ensure_raw_schema(con)
        ensure_ledger_schema(con)
        write_run_context(con, context)  # creates control.run_context when missing
    finally:
        con.close()


# dbt unit tests check SQL, not data: `make test` runs them once (test_dbt_unit_tests.py),
# builds skip them, so a run over a month of events never re-proves its fixtures.
PRODUCTION_BUILD_ARGS = ("--exclude-resource-type", "unit_test")
