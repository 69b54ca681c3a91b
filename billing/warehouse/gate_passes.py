"""Which staged rows a build's gate still has to check (DECISIONLOG D59).

The staged-events gate is the one gate at event grain: over all history it read every
routed row into a DataFrame on every build, most of a daily build's gate time. A routed row
that has not been written again since a gate passed it still passes (its rules are row by
row, and the twice-accepted count is taken over the whole table), so a build's gate reads
only the rows routed after the last build whose gates passed. A failed gate records
nothing: its rows are read again by every later build until they pass.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import duckdb

GATE_PASSES_SQL = """
create schema if not exists ops;
create table if not exists ops.gate_passes (
    passed_at timestamptz not null default current_timestamp,
    scope varchar not null,
    staged_through_batch bigint not null,
    staged_rules_fingerprint varchar not null
);
"""

# The routing batches the check model shows, and the definition its rules are inlined into.
ROUTED_BATCHES_SQL = "select coalesce(max(routed_batch), 0) from staging.stg_events__routed_events"
CHECK_VIEW_SQL = (
    "select sql from duckdb_views() where schema_name = 'checks' "
    "and view_name = 'chk_staged_events'"
)
LAST_PASS_SQL = """
select staged_through_batch, staged_rules_fingerprint
from ops.gate_passes
order by passed_at desc
limit 1
"""


@dataclass(frozen=True)
class StagedToCheck:
    """The routed rows a gate reads: those with a batch above `after_batch` (None: all).

    `through_batch` and `fingerprint` are what a passing gate records for the next build.
    """

    after_batch: int | None
    through_batch: int
    fingerprint: str


def rules_fingerprint(view_sql: str, expectations: list) -> str:
    """A hash of what the gate asserts: the check view's SQL (dbt inlines the thresholds
    into it) and the suite's expectations. A changed rule re-checks every row."""
    text = view_sql + "\n" + "\n".join(repr(expectation) for expectation in expectations)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def after_batch_for(
    last_pass: tuple[int, str] | None, through_batch: int, fingerprint: str
) -> int | None:
    """The batch above which rows are read, or None to read them all.

    All of them when no gate has passed yet, when a rule changed since, or when the table
    shows only batches below the last one passed: its routing was rebuilt in full with the
    clock set back, so batch numbers no longer say what was checked.
    """
    if last_pass is None:
        return None
    passed_through, passed_fingerprint = last_pass
    if passed_fingerprint != fingerprint or through_batch < passed_through:
        return None
    return passed_through


def staged_to_check(con: duckdb.DuckDBPyConnection, expectations: list) -> StagedToCheck:
    """What the next staged-events gate reads, from the warehouse as it stands."""
    con.execute(GATE_PASSES_SQL)
    through_batch = int(con.execute(ROUTED_BATCHES_SQL).fetchone()[0])
    view = con.execute(CHECK_VIEW_SQL).fetchone()
    fingerprint = rules_fingerprint(view[0] if view else "", expectations)
    last_pass = con.execute(LAST_PASS_SQL).fetchone()
    return StagedToCheck(
        after_batch_for(last_pass, through_batch, fingerprint), through_batch, fingerprint
    )


def record_gate_pass(con: duckdb.DuckDBPyConnection, scope: str, checked: StagedToCheck) -> None:
    """After every gate passed: the rows through `checked.through_batch` need no new check."""
    con.execute(GATE_PASSES_SQL)
    con.execute(
        "insert into ops.gate_passes (scope, staged_through_batch, staged_rules_fingerprint) "
        "values (?, ?, ?)",
        [scope, checked.through_batch, checked.fingerprint],
    )
