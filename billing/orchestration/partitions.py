"""Partition windows and the run context they become (architecture §8): small pure functions.

Orchestration hands dbt a partition's window only through the run context
(billing/warehouse/run_context.py); everything else the
window decides (which day or month the gates check, which month a schedule asks for) is
computed here too, so it can be tested without Dagster.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta

from billing.rules.calendar import Window, add_months, normalize_as_of
from billing.warehouse.run_context import RunContext, run_context_for

DEFAULT_PARTITIONS_START = date(2026, 1, 1)
# Run tag that pins a run's "now" (architecture §6.1); without it a run uses the current time.
AS_OF_TAG = "billing/as_of"
# Dagster's own run tags for one partition and for a single-run range of partitions.
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def partitions_start(environment: dict | None = None) -> date:
    """First day of the partitions: BILLING_PARTITIONS_START (YYYY-MM-DD), else 2026-01-01.

    Monthly partitions start on the first of that day's month.
    """
    environment = os.environ if environment is None else environment
    text = environment.get("BILLING_PARTITIONS_START", "").strip()
    return date.fromisoformat(text) if text else DEFAULT_PARTITIONS_START


def daily_window(first_key: str, last_key: str) -> Window:
    """Days `first_key` through `last_key` (YYYY-MM-DD, inclusive)."""
    return Window.days(date.fromisoformat(first_key), date.fromisoformat(last_key))


def monthly_window(first_key: str, last_key: str) -> Window:
    """Months starting `first_key` through `last_key` (YYYY-MM-DD month starts, inclusive)."""
    return Window.months(date.fromisoformat(first_key), date.fromisoformat(last_key))


def window_of_run(tags: dict, kind: str) -> Window:
    """A run's window, from Dagster's partition tags: one partition, or a single-run range.

    Steps and checks of a run both read it from here, so they agree on the window.
    """
    single = tags.get(PARTITION_TAG)
    first = tags.get(RANGE_START_TAG, single)
    last = tags.get(RANGE_END_TAG, single)
    if first is None or last is None:
        raise ValueError("not a partitioned run: no partition tags")
    return (daily_window if kind == "daily" else monthly_window)(first, last)


def run_as_of(tags: dict, now: datetime) -> str:
    """The run's `as_of`: the `billing/as_of` tag when set, else `now` (calendar's normaliser).

    A run rates what has landed by the time it runs. The partition does not move the
    clock: an old month backfilled today must not treat every later event as future.
    """
    return normalize_as_of(tags.get(AS_OF_TAG), now)


def run_context_of(window: Window, as_of: str, build_id: str) -> RunContext:
    """The run context of a partitioned dbt step (run_context_for, as `billing build` uses).

    Both kinds record their window; a monthly window also stops finalization at its end, so
    a run for September never finalizes October even when October's grace has passed.
    """
    return run_context_for(
        as_of, build_id, window.start, window.end, monthly=window.grain == "monthly"
    )


def previous_day_key(scheduled: datetime) -> str:
    """The UTC day before a run scheduled shortly after midnight: the day to reconcile."""
    return (scheduled.astimezone(UTC).date() - timedelta(days=1)).isoformat()


def previous_month_key(scheduled: datetime) -> str:
    """The month before the scheduled run's month: the month to invoice."""
    this_month = scheduled.astimezone(UTC).date().replace(day=1)
    return add_months(this_month, -1).isoformat()
