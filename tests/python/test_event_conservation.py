"""End to end on generated data: every injected line ends where the generator says it must.

The generator records the fate it gave each line; the pipeline must reproduce those counts
exactly, per file and per quarantine reason, and re-ingesting or rebuilding changes nothing.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from conftest import query

from billing.landing import ingest_files
from billing.sample.generate import GenerateOptions, generate
from billing.warehouse.build import build

AS_OF = "2026-11-05T00:00:00Z"
OPTIONS = GenerateOptions(
    events=6_000, customers=12, months=2, first_month=date(2026, 9, 1), seed=7
)


def routing_counts(warehouse: Path) -> dict:
    """Counts per (status, reason) and per file, straight from the warehouse."""
    by_reason = dict(
        query(
            warehouse,
            "select coalesce(quarantine_reason, event_status), count(*) "
            "from staging.stg_events__routed_events group by 1",
        )
    )
    per_file = {
        name: (raw, accepted, duplicate, quarantined)
        for name, raw, accepted, duplicate, quarantined in query(
            warehouse,
            "select file_name, raw_row_count, accepted_count, duplicate_count, "
            "quarantined_count from marts.fct_landed_files",
        )
    }
    return {"by_reason": by_reason, "per_file": per_file}


@pytest.fixture(scope="module")
def pipeline(workspace, tmp_path_factory):
    record = generate(
        OPTIONS,
        workspace.landing_dir,
        workspace.seeds_dir,
        tmp_path_factory.mktemp("record") / "record.json",
    )
    first = ingest_files(workspace.warehouse, [workspace.landing_dir], workspace.landing_dir)
    second = ingest_files(workspace.warehouse, [workspace.landing_dir], workspace.landing_dir)
    build(workspace, AS_OF)
    counts = routing_counts(workspace.warehouse)
    return {"record": record, "first": first, "second": second, "counts": counts}


def test_second_ingest_of_the_same_files_adds_nothing(pipeline):
    record = pipeline["record"]
    # 61 days of events, and control totals for two months plus the two months the
    # producer's future-dated (typo'd) events claim.
    assert record["control_files"] == [
        "control-totals-2026-09.csv",
        "control-totals-2026-10.jsonl",
        "control-totals-2036-09.jsonl",
        "control-totals-2036-10.jsonl",
    ]
    assert len(pipeline["first"].loaded_files) == 61 + 4
    assert pipeline["first"].loaded_rows == record["raw_rows"]
    assert pipeline["second"].loaded_files == []
    assert pipeline["second"].loaded_rows == 0
    assert pipeline["second"].control_rows == 0
    assert len(pipeline["second"].skipped_files) == 61 + 4


def test_every_category_and_reason_matches_what_was_injected(pipeline):
    record = pipeline["record"]
    expected = {"accepted": record["accepted"], "duplicate": record["duplicate"]}
    expected.update(record["quarantined_by_reason"])
    assert pipeline["counts"]["by_reason"] == expected
    # The generator injects every reason it knows, so none of them can silently vanish.
    assert len(record["quarantined_by_reason"]) == 16
    assert min(record["quarantined_by_reason"].values()) >= 1


def test_valid_reversals_cancel_exactly_their_originals(pipeline, workspace):
    [(reversed_events, distinct_reversals)] = query(
        workspace.warehouse,
        "select count(*), count(distinct reversed_by_event_id) "
        "from staging.stg_events__usage_events where reversed_by_event_id is not null",
    )
    assert reversed_events == distinct_reversals == pipeline["record"]["reversals"] > 0


def test_each_file_routes_exactly_its_injected_lines(pipeline):
    for name, outcomes in pipeline["record"]["files"].items():
        raw, accepted, duplicate, quarantined = pipeline["counts"]["per_file"][name]
        assert raw == sum(outcomes.values()), name
        assert accepted == outcomes.get("accepted", 0), name
        assert duplicate == outcomes.get("duplicate", 0), name
        assert quarantined == raw - accepted - duplicate, name


def test_timestamps_with_offsets_are_accepted_in_utc(pipeline, workspace):
    [(offset_events, converted)] = query(
        workspace.warehouse,
        """
        select
            count(*),
            count_if(parsed.event_at = timezone('UTC', parsed.timestamp_text::timestamptz))
        from staging.stg_events__parsed_events as parsed
        inner join staging.stg_events__routed_events as routed
            on parsed.raw_row_id = routed.raw_row_id
        where routed.event_status = 'accepted' and not parsed.timestamp_text like '%Z'
        """,
    )
    assert offset_events == pipeline["record"]["offset_timestamps"] > 0
    assert converted == offset_events


def test_quarantined_rows_keep_their_payload_file_and_line(workspace):
    rows = query(
        workspace.warehouse,
        "select count(*), count(raw_payload), count(file_name), count(line_number), "
        "count(loaded_at) from marts.fct_quarantined_events",
    )
    total = rows[0][0]
    assert total > 0
    assert rows[0] == (total, total, total, total, total)


def test_rebuilding_and_reingesting_change_no_count(pipeline, workspace):
    ingest_files(workspace.warehouse, [workspace.landing_dir], workspace.landing_dir)
    build(workspace, AS_OF)
    assert routing_counts(workspace.warehouse) == pipeline["counts"]


def test_published_copy_matches_the_warehouse(workspace):
    published = query(
        workspace.published_warehouse,
        "select sum(raw_row_count), sum(accepted_count) from fct_landed_files",
    )
    built = query(
        workspace.warehouse,
        "select sum(raw_row_count), sum(accepted_count) from marts.fct_landed_files",
    )
    assert published == built
    assert (workspace.published_dir / "parquet" / "fct_landed_files.parquet").exists()
