"""One build: dbt (models and tests), the blocking gates, the ledger transaction, publish.

The order is the guarantee (DECISIONLOG D34): nothing is finalized until every dbt test and
every blocking Great Expectations gate has passed over exactly the invoices about to be
finalized, and nothing is published unless finalization committed. `billing build` and the
Dagster monthly job run the same steps (`check_gates`, `finalize_ledger`, `publish`).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb

from billing.rules.calendar import normalize_as_of
from billing.settings import Settings
from billing.warehouse import lock
from billing.warehouse.dbt import PRODUCTION_BUILD_ARGS, BuildError, prepare_run, run_dbt
from billing.warehouse.gate_passes import record_gate_pass, staged_to_check
from billing.warehouse.ledger import FinalizeResult, LedgerError, finalize
from billing.warehouse.publish import publish
from billing.warehouse.run_context import run_context_for


def parse_as_of(text: str | None, now: datetime | None = None) -> str:
    """`--as-of` as RFC 3339 UTC (a bare date or time is UTC), else now; one-line error.

    The build always records an explicit `as_of` in its run context, so the run can be
    reproduced later even when the user gave none.
    """
    try:
        return normalize_as_of(text, now or datetime.now(UTC))
    except ValueError as error:
        raise BuildError(f"--as-of must be an ISO 8601 date or timestamp, got {text!r}") from error


@dataclass
class BuildOutcome:
    """What a build did, for the CLI summary; `seconds` is each phase's wall time, so a slow
    build shows whether dbt, the gates, the ledger or publish took it (`make bench`)."""

    results: list
    finalized: FinalizeResult | None = None
    gates: str = ""
    published: bool = False
    seconds: dict[str, float] = field(default_factory=dict)


def build(
    settings: Settings,
    as_of: str,
    select: str | None = None,
    verbose: bool = True,
    full_refresh: bool = False,
) -> BuildOutcome:
    """dbt build, then (for a whole build) gates, the ledger transaction and publish.

    A partial build (`select`) is an editing loop: it builds and tests what was selected and
    stops there, so it never finalizes and never replaces the copy finance reads. A full
    refresh rebuilds the incremental models from all landed rows (DECISIONLOG D57); the
    invoices are the same either way.
    """
    try:
        with lock.exclusive_run(settings.warehouse, "billing build"):
            return _build(settings, as_of, select, verbose, full_refresh)
    except lock.WarehouseBusy as error:
        raise BuildError(f"nothing was built: {error}") from error


def _build(
    settings: Settings, as_of: str, select: str | None, verbose: bool, full_refresh: bool
) -> BuildOutcome:
    """`build`'s steps, under the warehouse's run lock (D70)."""
    build_id = "" if select else f"build-{uuid.uuid4().hex}"
    prepare_run(settings, run_context_for(as_of, build_id))
    args = ["build", *PRODUCTION_BUILD_ARGS]
    if full_refresh:
        args.append("--full-refresh")
    if select:
        args += ["--select", select]
    seconds: dict[str, float] = {}
    mark = time.perf_counter()
    results = run_dbt(args, settings, verbose=verbose)
    mark = _lap(seconds, "dbt", mark)
    if not results:
        raise BuildError(
            f"dbt selected nothing for --select {select!r}: no model, seed or test was built"
            if select
            else "dbt built nothing: the project has no nodes"
        )
    outcome = BuildOutcome(results=results, seconds=seconds)
    if select:
        return outcome
    outcome.gates = check_gates(settings)
    mark = _lap(seconds, "gates", mark)
    outcome.finalized = finalize_ledger(settings, build_id)
    mark = _lap(seconds, "ledger", mark)
    publish(settings)
    _lap(seconds, "publish", mark)
    outcome.published = True
    return outcome


def _lap(seconds: dict[str, float], phase: str, since: float) -> float:
    """Record the wall time of `phase` since `since`; the mark the next phase starts from."""
    now = time.perf_counter()
    seconds[phase] = now - since
    return now


def phase_times(seconds: dict[str, float]) -> str:
    """`dbt 41.2s, gates 6.0s, ...`: where a build's time went, in the order it was spent."""
    return ", ".join(f"{phase} {spent:.1f}s" for phase, spent in seconds.items())


def check_gates(settings: Settings) -> str:
    """Run every blocking Great Expectations gate over all the data; raise if one fails.

    The gates read the marts, which already show the invoices this build is about to
    finalize as finalized (macro ledger_after_this_build), so what is checked is exactly
    what will be written. A failed gate raises its alerts and stops the build before the
    ledger. The staged-events gate reads only the rows routed since the last build whose
    gates passed (D59); a pass is recorded for the next build.
    """
    from billing.alerts import alerts_from_report, raise_alerts
    from billing.quality import (
        SUITES,
        NoEventsError,
        QualityError,
        data_range,
        run_quality,
    )

    try:
        scope = data_range(settings.warehouse)
    except NoEventsError as error:
        return f"quality gates: nothing to check ({error})"
    except QualityError as error:
        raise BuildError(f"quality gates could not run, nothing was finalized: {error}") from error
    staged_rules = next(spec for spec in SUITES if spec.name == "staged_events").expectations()
    with _connect(settings) as con:
        staged = staged_to_check(con, staged_rules)
    try:
        report = run_quality(settings.warehouse, scope, staged_after_batch=staged.after_batch)
    except QualityError as error:
        raise BuildError(f"quality gates could not run, nothing was finalized: {error}") from error
    raise_alerts(settings.warehouse, alerts_from_report(report))
    if not report.passed:
        failed = sorted({result.suite for result in report.results if not result.passed})
        raise BuildError(
            f"quality gates failed ({', '.join(failed)}) for {scope.label}: nothing was "
            "finalized or published; see `billing quality` and `billing alerts`"
        )
    with _connect(settings) as con:
        record_gate_pass(con, scope.label, staged)
    staged_rows = next(
        (result.row_count for result in report.results if result.suite == "staged_events"), 0
    )
    return f"quality gates passed for {scope.label} ({staged_rows:,} staged rows checked" + (
        ", those routed since the last passed gate)" if staged.after_batch is not None else ")"
    )


def _connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    """A writing connection to the warehouse between the build's steps, waiting while a
    reader or an ingest holds it (D70); one-line BuildError otherwise."""
    try:
        return lock.connect(settings.warehouse)
    except lock.WarehouseBusy as error:
        raise BuildError(f"nothing was finalized or published: {error}") from error
    except duckdb.Error as error:
        raise BuildError(f"cannot open warehouse {settings.warehouse}: {error}") from error


def finalize_ledger(settings: Settings, build_id: str) -> FinalizeResult:
    """The build's one write to the ledger, in one transaction (billing/warehouse/ledger.py).

    Only rows the dbt run `build_id` computed are taken: rows left by a partial build or
    another run (whose gates did not check them) make finalization refuse.
    """
    con = _connect(settings)
    try:
        return finalize(con, build_id)
    except LedgerError as error:
        raise BuildError(str(error)) from error
    finally:
        con.close()
