"""`make bench`'s own logic: the held-out day it lands later, the clock of each step and
the comparison with the reference (the timings themselves are never asserted)."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from datetime import date
from decimal import Decimal

import pytest

from billing.bench import (
    StepFailed,
    compare_usage,
    history_start,
    in_subprocess,
    peak_rss_gb,
    reference_gaps,
    slowest_nodes,
    step_as_of,
    table,
    verdict_of,
)
from billing.sample.generate import CONTROL_PREFIX, FILE_PREFIX, GenerateOptions, generate
from billing.settings import DEFAULT_SEEDS_DIR

SMALL = GenerateOptions(events=3_000, customers=8, months=1, first_month=date(2026, 9, 1), seed=3)
HELD = GenerateOptions(
    events=3_000, customers=8, months=1, first_month=date(2026, 9, 1), seed=3, held_out_days=1
)


def control_counts(path) -> dict[tuple, int]:
    with path.open(newline="", encoding="utf-8") as handle:
        return {
            (row["report_date"], row["customer_id"], row["event_type"]): int(row["event_count"])
            for row in csv.DictReader(handle)
        }


def test_the_held_out_day_lands_apart_with_control_rows_that_restate_the_month(tmp_path):
    generate(SMALL, tmp_path / "all", tmp_path / "s1", tmp_path / "all.json")
    generate(HELD, tmp_path / "kept", tmp_path / "s2", tmp_path / "kept.json", tmp_path / "later")

    events = sorted(p.name for p in (tmp_path / "all").glob(f"{FILE_PREFIX}*"))
    kept = sorted(p.name for p in (tmp_path / "kept").glob(f"{FILE_PREFIX}*"))
    later = sorted(p.name for p in (tmp_path / "later").glob(f"{FILE_PREFIX}*"))
    assert len(events) == 30 and len(kept) == 29 and len(later) == 1
    assert sorted(kept + later) == events
    assert later[0].startswith(f"{FILE_PREFIX}2026-09-30")
    for name in later:  # the day's file is byte for byte the one of the whole month
        assert (tmp_path / "later" / name).read_bytes() == (tmp_path / "all" / name).read_bytes()

    month = control_counts(tmp_path / "all" / f"{CONTROL_PREFIX}2026-09.csv")
    before = control_counts(tmp_path / "kept" / f"{CONTROL_PREFIX}2026-09.csv")
    restated = control_counts(tmp_path / "later" / f"{CONTROL_PREFIX}2026-09-from-2026-09-30.csv")
    assert restated, "the held-out day touches some control keys"
    # Every key the day touches is restated at the whole month's count; the others were
    # already complete before it landed.
    assert all(month[key] == count for key, count in restated.items())
    assert {**before, **restated} == month
    assert any(before.get(key) != count for key, count in restated.items())


def test_the_full_build_runs_at_the_last_days_dawn_and_the_daily_run_at_its_end():
    assert step_as_of("build", date(2026, 9, 1)) == "2026-09-30T00:00:00Z"
    # The rebuild settles what the full build finalized, at the same clock, before the day
    # lands: the daily run then costs what a steady day costs.
    assert step_as_of("rebuild", date(2026, 9, 1)) == "2026-09-30T00:00:00Z"
    assert step_as_of("daily", date(2026, 9, 1)) == "2026-09-30T23:59:59Z"
    assert step_as_of("reference", date(2027, 2, 1)) == "2027-02-28T23:59:59Z"
    # Six months of history: the sixth month's last day, the five before it closed.
    assert step_as_of("build", date(2026, 9, 1), months=6) == "2027-02-28T00:00:00Z"
    assert step_as_of("daily", date(2026, 9, 1), months=6) == "2027-02-28T23:59:59Z"


def test_a_longer_history_ends_in_the_same_month_as_a_one_month_run():
    # Ingest stamps files with the wall clock: a history running past today would date its
    # events after their files were loaded. Six months end in September, as one month does.
    assert history_start(date(2026, 9, 1), 1) == date(2026, 9, 1)
    assert history_start(date(2026, 9, 1), 6) == date(2026, 4, 1)
    assert step_as_of("daily", history_start(date(2026, 9, 1), 6), months=6) == (
        "2026-09-30T23:59:59Z"
    )


def test_a_one_cent_difference_is_a_disagreement():
    key = ("cust_0001", date(2026, 9, 1), "api_calls", "USD")
    other = ("cust_0002", date(2026, 9, 1), "api_calls", "USD")
    project = {key: Decimal("4.0000"), other: Decimal("1.5000")}
    reference = {key: Decimal("4.0100"), other: Decimal("1.5000")}
    compared = compare_usage(project, reference)
    assert compared["usage_lines"] == 2
    assert compared["differing_lines"] == 1
    assert compared["first_differences"] == [
        ["cust_0001", "2026-09-01", "api_calls", "USD", "4.0000", "4.0100"]
    ]
    assert compared["project_total"] == "5.5000"
    assert compared["reference_total"] == "5.5100"
    assert compare_usage(project, dict(project))["differing_lines"] == 0


def test_a_month_without_usage_lines_is_no_pass():
    assert verdict_of(compare_usage({}, {})) == "empty"
    key = ("cust_0001", date(2026, 9, 1), "api_calls", "USD")
    assert verdict_of(compare_usage({key: Decimal("1")}, {key: Decimal("1")})) == "agree"
    assert verdict_of(compare_usage({key: Decimal("1")}, {})) == "disagree"


def test_the_reference_refuses_a_rate_card_it_does_not_implement(tmp_path):
    seeds = tmp_path / "seeds"
    shutil.copytree(DEFAULT_SEEDS_DIR, seeds)
    assert reference_gaps(seeds) == []
    charges = seeds / "rate_cards" / "plan_charges.csv"
    text = charges.read_text(encoding="utf-8")
    charges.write_text(
        text.replace(
            "enterprise_api_calls,enterprise_usd,api_calls,,standard,",
            "enterprise_api_calls,enterprise_usd,api_calls,,percentage,",
        ),
        encoding="utf-8",
    )
    assert reference_gaps(seeds) == ["enterprise_api_calls: charge model percentage"]


def test_peak_memory_is_read_from_the_status_high_water_mark():
    status = "Name:\tpython\nVmPeak:\t 9999999 kB\nVmHWM:\t 2097152 kB\nVmRSS:\t 1024 kB\n"
    assert peak_rss_gb(status) == 2.0


def test_a_step_does_not_report_the_memory_its_parent_held():
    """ru_maxrss would: Linux hands the parent's resident size to the child at exec."""
    held = bytearray(600 * 1024 * 1024)
    held[::4096] = b"x" * len(held[::4096])
    child = subprocess.run(
        [sys.executable, "-c", "from billing.bench import peak_rss_gb; print(peak_rss_gb())"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert peak_rss_gb() > 0.55
    assert float(child.stdout) < 0.4
    del held


def test_the_slowest_nodes_come_first_and_ties_by_name():
    timings = [("model.a", 1.004), ("test.b", 7.5), ("model.c", 7.5), ("seed.d", 0.2)]
    assert slowest_nodes(timings, count=3) == [["model.c", 7.5], ["test.b", 7.5], ["model.a", 1.0]]
    assert slowest_nodes([]) == []


def test_the_table_shows_where_each_build_spent_its_time():
    figures = {"seconds": 10.0, "peak_rss_gb": 1.0}
    reference = {**figures, "seconds": 2.0, "usage_lines": 3, "differing_lines": 0}
    reference |= {"project_total": "9.00", "reference_total": "9.00"}
    steps = {
        "build": {**figures, "phases": {"dbt": 8.04, "gates": 1.5, "ledger": 0.06, "publish": 0.4}},
        "daily": {**figures, "seconds": 1.0, "phases": {"dbt": 0.7, "gates": 0.3}},
        "reference": reference,
    }
    lines = table(1_000, 100, steps)
    assert lines[2].endswith("5.0x the reference; dbt 8.0s, gates 1.5s, ledger 0.1s, publish 0.4s")
    assert lines[3].endswith("10% of the full build; dbt 0.7s, gates 0.3s")
    assert lines[4].endswith("bench/reference.sql")
    assert lines[5] == (
        "  usage lines: project and reference agree on 3 lines (0 differ; totals 9.00 / 9.00)"
    )


def test_a_failed_step_says_which_and_shows_its_output(tmp_path):
    with pytest.raises(StepFailed, match=r"^bench step nonsense failed \(exit 1\)"):
        in_subprocess("nonsense", tmp_path, "2026-09-30T00:00:00Z")
