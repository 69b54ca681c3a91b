"""One build: dbt (models and tests), the blocking gates, the ledger transaction, publish.

The order is the guarantee (DECISIONLOG D34): nothing is finalized until every dbt test and
every blocking Great Expectations gate has passed over exactly the invoices about to be
finalized, and nothing is published unless finalization committed. `billing build` and the
Dagster monthly job run the same steps (`check_gates`, `finalize_ledger`, `publish`).
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from orchestration.calendar import normalize_as_of
from orchestration.ingest import ensure_raw_schema
from orchestration.ledger import (
    FinalizeResult,
    LedgerError,
    ensure_ledger_schema,
    finalize,
    pending_invoice_count,
)
from orchestration.run_context import (
    RunContext,
    ensure_control_schema,
    run_context_for,
    write_run_context,
)
from orchestration.settings import PROJECT_DIR, Settings, quiet_environment

PUBLISHED_SCHEMA = "marts"


class BuildError(Exception):
    """A failed build; its message is the one line the CLI prints."""


def parse_as_of(text: str | None, now: datetime | None = None) -> str:
    """`--as-of` as RFC 3339 UTC (a bare date or time is UTC), else now; one-line error.

    The build always records an explicit `as_of` in its run context, so the run can be
    reproduced later even when the user gave none.
    """
    try:
        return normalize_as_of(text, now or datetime.now(UTC))
    except ValueError as error:
        raise BuildError(f"--as-of must be an ISO 8601 date or timestamp, got {text!r}") from error


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
    """The tables dbt reads as sources (raw, ledger, control) must exist before any ingest."""
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
        ensure_ledger_schema(con)
        ensure_control_schema(con)
    finally:
        con.close()


def prepare_run(settings: Settings, context: RunContext) -> None:
    """Before every dbt invocation: the source tables exist and hold this run's context."""
    prepare_warehouse(settings)
    with duckdb.connect(str(settings.warehouse)) as con:
        write_run_context(con, context)


# dbt unit tests check SQL, not data: `make test` runs them once (test_dbt_unit_tests.py),
# builds skip them, so a run over a month of events never re-proves its fixtures.
PRODUCTION_BUILD_ARGS = ("--exclude-resource-type", "unit_test")


@dataclass
class BuildOutcome:
    """What a build did, for the CLI summary."""

    results: list
    finalized: FinalizeResult | None = None
    gates: str = ""
    published: bool = False


def build(
    settings: Settings, as_of: str, select: str | None = None, verbose: bool = True
) -> BuildOutcome:
    """dbt build, then (for a whole build) gates, the ledger transaction and publish.

    A partial build (`select`) is an editing loop: it builds and tests what was selected and
    stops there, so it never finalizes and never replaces the copy finance reads.
    """
    build_id = "" if select else f"build-{uuid.uuid4().hex}"
    prepare_run(settings, run_context_for(as_of, build_id))
    args = ["build", *PRODUCTION_BUILD_ARGS]
    if select:
        args += ["--select", select]
    results = run_dbt(args, settings, verbose=verbose)
    if not results:
        raise BuildError(
            f"dbt selected nothing for --select {select!r}: no model, seed or test was built"
            if select
            else "dbt built nothing: the project has no nodes"
        )
    outcome = BuildOutcome(results=results)
    if select:
        return outcome
    outcome.gates = check_gates(settings)
    outcome.finalized = finalize_ledger(settings, build_id)
    publish(settings)
    outcome.published = True
    return outcome


def check_gates(settings: Settings) -> str:
    """Run every blocking Great Expectations gate over all the data; raise if one fails.

    The gates read the marts, which already show the invoices this build is about to
    finalize as finalized (macro ledger_after_this_build), so what is checked is exactly
    what will be written. A failed gate raises its alerts and stops the build before the
    ledger.
    """
    from orchestration.alerts import alerts_from_report, raise_alerts
    from orchestration.quality import NoEventsError, QualityError, data_range, run_quality

    try:
        scope = data_range(settings.warehouse)
    except NoEventsError as error:
        return f"quality gates: nothing to check ({error})"
    except QualityError as error:
        raise BuildError(f"quality gates could not run, nothing was finalized: {error}") from error
    report = run_quality(settings.warehouse, scope)
    raise_alerts(settings.warehouse, alerts_from_report(report))
    if not report.passed:
        failed = sorted({result.suite for result in report.results if not result.passed})
        raise BuildError(
            f"quality gates failed ({', '.join(failed)}) for {scope.label}: nothing was "
            "finalized or published; see `billing quality` and `billing alerts`"
        )
    return f"quality gates passed for {scope.label}"


def finalize_ledger(settings: Settings, build_id: str) -> FinalizeResult:
    """The build's one write to the ledger, in one transaction (orchestration/ledger.py).

    Only rows the dbt run `build_id` computed are taken: rows left by a partial build or
    another run (whose gates did not check them) make finalization refuse.
    """
    try:
        con = duckdb.connect(str(settings.warehouse))
    except duckdb.Error as error:
        raise BuildError(f"cannot open warehouse {settings.warehouse}: {error}") from error
    try:
        return finalize(con, build_id)
    except LedgerError as error:
        raise BuildError(str(error)) from error
    finally:
        con.close()


def sql_string(text: str) -> str:
    """A SQL string literal: paths go into ATTACH and COPY, which take no parameters."""
    return "'" + text.replace("'", "''") + "'"


def sql_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


PUBLISHED_VERSIONS_KEPT = 3


def publish(settings: Settings) -> Path:
    """Write every mart to a new version folder, then swap one pointer to it (D47).

    A version is a read-only DuckDB file and a Parquet file per mart; `published` is a
    symlink to the current version, replaced by one atomic rename. A reader opens either
    the old set or the new one, never a mix, and a publish killed half way leaves only an
    unfinished version folder nobody points to. Readers never open the file builds write
    (DuckDB allows one writer), and a failed build never reaches this point.
    """
    pointer = settings.published_dir
    versions = pointer.parent / "published.versions"
    refuse_pending_finalization(settings.warehouse)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    partial = versions / f"{stamp}.partial"
    parquet_dir = partial / "parquet"
    parquet_dir.mkdir(parents=True)
    con = duckdb.connect()
    try:
        con.execute(f"attach {sql_string(settings.warehouse.as_posix())} as warehouse (read_only)")
        con.execute(f"attach {sql_string((partial / 'marts.duckdb').as_posix())} as published")
        tables = [
            row[0]
            for row in con.execute(
                "select table_name from information_schema.tables "
                "where table_catalog = 'warehouse' and table_schema = ? order by table_name",
                [PUBLISHED_SCHEMA],
            ).fetchall()
        ]
        for table in tables:
            source = f"warehouse.{sql_identifier(PUBLISHED_SCHEMA)}.{sql_identifier(table)}"
            con.execute(
                f"create table published.main.{sql_identifier(table)} as select * from {source}"
            )
            parquet = sql_string((parquet_dir / f"{table}.parquet").as_posix())
            con.execute(f"copy {source} to {parquet} (format parquet)")
        con.execute("detach published")
    finally:
        con.close()
    version = versions / stamp
    partial.rename(version)
    previous = pointer.resolve() if pointer.is_symlink() else None
    swap_pointer(pointer, version)
    prune_versions(versions, keep={version, previous})
    return version


def refuse_pending_finalization(warehouse: Path) -> None:
    """Never publish invoices the marts show as finalized before the ledger committed them.

    After a failed gate or ledger refusal the marts still show that build's pending
    invoices as finalized (macro ledger_after_this_build); a later publish (the daily
    job's, say) must not hand those to finance.
    """
    with duckdb.connect(str(warehouse), read_only=True) as con:
        pending = pending_invoice_count(con)
    if pending:
        raise BuildError(
            f"not published: {pending} invoice(s) of the last invoicing build were never "
            "finalized (a gate or the ledger check failed); run `billing build` or the "
            "monthly job again once it passes"
        )


def swap_pointer(pointer: Path, version: Path) -> None:
    """Point `published` at `version` with one rename; a pre-pointer folder moves aside once."""
    if pointer.exists() and not pointer.is_symlink():
        pointer.rename(pointer.with_name(f"published.before-{datetime.now(UTC):%Y%m%dT%H%M%S}"))
    staged = pointer.with_name("published.next")
    staged.unlink(missing_ok=True)
    staged.symlink_to(version.relative_to(pointer.parent), target_is_directory=True)
    os.replace(staged, pointer)


def prune_versions(versions: Path, keep: set) -> None:
    """Keep the newest complete versions, always the current and the previous one (a
    reader may still hold it open); unfinished `.partial` folders of killed publishes go."""
    complete = sorted(p for p in versions.iterdir() if p.is_dir() and p.suffix != ".partial")
    newest = set(complete[-PUBLISHED_VERSIONS_KEPT:])
    for folder in versions.iterdir():
        if folder.is_dir() and folder not in newest and folder not in keep:
            shutil.rmtree(folder, ignore_errors=True)


def connect_published(settings: Settings) -> duckdb.DuckDBPyConnection:
    """A short-lived read-only connection to the published marts."""
    if not settings.published_warehouse.exists():
        raise BuildError(
            f"no published warehouse at {settings.published_warehouse}: run `billing build` first"
        )
    return duckdb.connect(str(settings.published_warehouse), read_only=True)
