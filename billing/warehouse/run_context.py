"""The run's context (its `as_of`, build id and partition window) as a one-row table dbt reads.

Why a table and not dbt `--vars`: dbt re-parses the whole project whenever its CLI vars
change, and `as_of` changes on every run, so every build paid a full parse (DECISIONLOG
D52). Python writes `control.run_context` just before each dbt invocation (`billing build`
and every Dagster dbt step alike, through `run_context_for`); the macros in
macros/run_context.sql read it through source('control', 'run_context'). The row stays after
the run: it is the context the tables were last built in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import duckdb

CONTROL_SCHEMA_SQL = """
create schema if not exists control;
create table if not exists control.run_context (
    singleton boolean primary key default true check (singleton),
    as_of timestamp not null,
    build_id varchar not null,
    partition_start date,
    partition_end date,
    finalize_periods_before date,
    written_at timestamp not null
);
"""


@dataclass(frozen=True)
class RunContext:
    """What one dbt invocation needs to know about its run.

    `as_of` is RFC 3339 UTC (calendar.normalize_as_of); `build_id` tags the rows the run
    computes for finalization (blank: a run that may finalize nothing); a partitioned run
    records its window (end exclusive), and a monthly one finalizes only periods before its
    end, so a run for September never finalizes October.
    """

    as_of: str
    build_id: str = ""
    partition_start: date | None = None
    partition_end: date | None = None
    finalize_periods_before: date | None = None

    def describe(self) -> str:
        """One log line with every value dbt will read."""
        values = {
            "as_of": self.as_of,
            "build_id": self.build_id or None,
            "partition_start": self.partition_start,
            "partition_end": self.partition_end,
            "finalize_periods_before": self.finalize_periods_before,
        }
        shown = ", ".join(f"{key}={value}" for key, value in values.items() if value)
        return f"run context: {shown}"


def run_context_for(
    as_of: str,
    build_id: str = "",
    start: date | None = None,
    end: date | None = None,
    monthly: bool = False,
) -> RunContext:
    """The one builder of a run's context, for `billing build` and Dagster steps alike.

    A window (`start`..`end`, end exclusive) is recorded as the partition; a monthly window
    also stops finalization at its end.
    """
    return RunContext(
        as_of=as_of,
        build_id=build_id,
        partition_start=start,
        partition_end=end,
        finalize_periods_before=end if monthly else None,
    )


def ensure_control_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create `control.run_context` if missing (dbt reads it as a source)."""
    con.execute(CONTROL_SCHEMA_SQL)


def write_run_context(con: duckdb.DuckDBPyConnection, context: RunContext) -> None:
    """Replace the one row with `context`, in one transaction (never zero or two rows)."""
    moment = datetime.fromisoformat(context.as_of.replace("Z", "+00:00"))
    if moment.tzinfo is not None:  # stored as naive UTC, as the models compare it
        moment = moment.astimezone(UTC)
    as_of = moment.replace(tzinfo=None)
    ensure_control_schema(con)
    con.execute("begin transaction")
    try:
        con.execute("delete from control.run_context")
        con.execute(
            "insert into control.run_context (as_of, build_id, partition_start, partition_end, "
            "finalize_periods_before, written_at) "
            "values (?, ?, ?, ?, ?, timezone('UTC', current_timestamp))",
            [
                as_of,
                context.build_id,
                context.partition_start,
                context.partition_end,
                context.finalize_periods_before,
            ],
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
