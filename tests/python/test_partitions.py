"""The pure functions that turn partition windows into run contexts, gate scopes and run keys."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from billing.orchestration.backfill import BackfillError, backfill_runs, parse_partition
from billing.orchestration.partitions import (
    daily_window,
    monthly_window,
    partitions_start,
    previous_day_key,
    previous_month_key,
    run_as_of,
    run_context_of,
    window_of_run,
)
from billing.rules.calendar import Window
from billing.warehouse.run_context import RunContext, run_context_for

NOW = datetime(2026, 11, 22, 4, 5, 6, tzinfo=UTC)
NOW_TEXT = "2026-11-22T04:05:06Z"


def test_one_day_is_a_day_scope_and_a_range_of_days_a_range():
    assert daily_window("2026-09-30", "2026-09-30") == Window(
        "daily", date(2026, 9, 30), date(2026, 10, 1)
    )
    assert daily_window("2026-09-30", "2026-09-30") == Window.day(date(2026, 9, 30))
    assert daily_window("2026-09-30", "2026-09-30").kind == "day"
    days = daily_window("2026-09-01", "2026-10-31")
    assert (days.start, days.end) == (date(2026, 9, 1), date(2026, 11, 1))
    assert (days.kind, days.label) == ("range", "2026-09-01..2026-11-01")


def test_a_month_is_a_period_scope_across_a_year_end():
    december = monthly_window("2025-12-01", "2025-12-01")
    assert (december.start, december.end) == (date(2025, 12, 1), date(2026, 1, 1))
    assert december == Window.period(date(2025, 12, 17))
    assert (december.kind, december.label) == ("period", "2025-12")
    quarter = monthly_window("2026-01-01", "2026-03-01")
    assert quarter == Window.months(date(2026, 1, 1), date(2026, 3, 31))
    assert (quarter.kind, quarter.end) == ("range", date(2026, 4, 1))


def test_a_daily_run_context_carries_the_window_and_the_run_clock():
    context = run_context_of(daily_window("2026-10-07", "2026-10-07"), NOW_TEXT, "run-1")
    assert context == RunContext(
        as_of=NOW_TEXT,
        build_id="run-1",
        partition_start=date(2026, 10, 7),
        partition_end=date(2026, 10, 8),
        finalize_periods_before=None,
    )


def test_a_monthly_run_context_stops_finalization_at_the_month_end():
    context = run_context_of(monthly_window("2026-09-01", "2026-09-01"), NOW_TEXT, "run-2")
    assert (context.partition_start, context.partition_end) == (date(2026, 9, 1), date(2026, 10, 1))
    assert context.finalize_periods_before == date(2026, 10, 1)
    assert context.describe() == (
        "run context: as_of=2026-11-22T04:05:06Z, build_id=run-2, partition_start=2026-09-01, "
        "partition_end=2026-10-01, finalize_periods_before=2026-10-01"
    )


def test_billing_build_and_dagster_share_one_builder():
    """`billing build` has no window: nothing recorded, nothing limited."""
    assert run_context_for(NOW_TEXT, "build-1") == RunContext(NOW_TEXT, "build-1")


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({}, "2026-11-22T04:05:06Z"),
        ({"billing/as_of": "2026-11-05T00:00:00Z"}, "2026-11-05T00:00:00Z"),
        ({"billing/as_of": "2026-11-05T02:00:00+02:00"}, "2026-11-05T00:00:00Z"),
        ({"billing/as_of": "2026-11-05"}, "2026-11-05T00:00:00Z"),
        ({"billing/as_of": "  "}, "2026-11-22T04:05:06Z"),
    ],
)
def test_the_run_clock_is_the_tag_or_now(tags, expected):
    assert run_as_of(tags, NOW) == expected


def test_schedules_ask_for_the_previous_day_and_month():
    assert previous_day_key(datetime(2026, 11, 1, 0, 15, tzinfo=UTC)) == "2026-10-31"
    assert previous_day_key(datetime(2026, 1, 1, 0, 15, tzinfo=UTC)) == "2025-12-31"
    assert previous_month_key(datetime(2026, 11, 4, 6, 0, tzinfo=UTC)) == "2026-10-01"
    assert previous_month_key(datetime(2026, 1, 4, 6, 0, tzinfo=UTC)) == "2025-12-01"


def test_partitions_start_from_the_environment():
    assert partitions_start({}) == date(2026, 1, 1)
    assert partitions_start({"BILLING_PARTITIONS_START": "2025-07-15"}) == date(2025, 7, 15)


def test_backfill_runs_one_range_of_days_or_one_run_per_month():
    days = backfill_runs("daily", date(2026, 9, 1), date(2026, 10, 31), None)
    assert days == [
        {
            "dagster/asset_partition_range_start": "2026-09-01",
            "dagster/asset_partition_range_end": "2026-10-31",
        }
    ]
    months = backfill_runs("monthly", date(2026, 11, 1), date(2027, 1, 1), "2027-02-10T00:00:00Z")
    assert [run["dagster/partition"] for run in months] == [
        "2026-11-01",
        "2026-12-01",
        "2027-01-01",
    ]
    assert {run["billing/as_of"] for run in months} == {"2027-02-10T00:00:00Z"}


def test_backfill_ranges_are_checked():
    assert parse_partition("monthly", "2026-09") == date(2026, 9, 1)
    assert parse_partition("monthly", "2026-09-17") == date(2026, 9, 1)
    with pytest.raises(BackfillError, match="expected YYYY-MM-DD, got '2026-9'"):
        parse_partition("daily", "2026-9")
    with pytest.raises(BackfillError, match="ends"):
        backfill_runs("daily", date(2026, 9, 2), date(2026, 9, 1), None)


def test_a_run_window_comes_from_its_partition_tags():
    assert window_of_run({"dagster/partition": "2026-10-01"}, "monthly") == Window(
        "monthly", date(2026, 10, 1), date(2026, 11, 1)
    )
    ranged = {
        "dagster/asset_partition_range_start": "2026-09-01",
        "dagster/asset_partition_range_end": "2026-09-30",
    }
    assert window_of_run(ranged, "daily") == Window("daily", date(2026, 9, 1), date(2026, 10, 1))
    with pytest.raises(ValueError, match="not a partitioned run"):
        window_of_run({}, "daily")
