"""Ingest keeps every line verbatim, loads a file's content once, and is all or nothing."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import duckdb
import pytest
from conftest import query

from orchestration.ingest import IngestError, ingest_files, split_lines

GOOD = (
    '{"event_id": "e1", "customer_id": "c1", "event_type": "api_call", '
    '"timestamp": "2026-09-01T00:00:00Z"}'
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def raw_rows(warehouse: Path) -> list[tuple]:
    return query(
        warehouse,
        "select file_name, line_number, raw_line, has_encoding_error "
        "from raw.raw_events order by file_id, line_number",
    )


def test_lines_are_kept_verbatim_with_their_numbers(tmp_path):
    landing = tmp_path / "landing"
    write(landing / "a.jsonl", f"{GOOD}\nnot json at all\n\n  {GOOD}  \n")
    result = ingest_files(tmp_path / "w.duckdb", [landing], landing)
    assert result.loaded_rows == 4
    assert raw_rows(tmp_path / "w.duckdb") == [
        ("a.jsonl", 1, GOOD, False),
        ("a.jsonl", 2, "not json at all", False),
        ("a.jsonl", 3, "", False),
        ("a.jsonl", 4, f"  {GOOD}  ", False),
    ]


def test_same_content_under_another_name_or_gzipped_is_not_loaded_again(tmp_path):
    landing = tmp_path / "landing"
    write(landing / "day1.jsonl", GOOD + "\n")
    first = ingest_files(tmp_path / "w.duckdb", [landing], landing)
    write(landing / "copy-of-day1.jsonl", GOOD + "\n")
    (landing / "day1-again.jsonl.gz").write_bytes(gzip.compress((GOOD + "\n").encode()))
    second = ingest_files(tmp_path / "w.duckdb", [landing], landing)
    assert first.loaded_files == ["day1.jsonl"]
    assert second.loaded_files == []
    assert sorted(second.skipped_files) == [
        "copy-of-day1.jsonl",
        "day1-again.jsonl.gz",
        "day1.jsonl",
    ]
    assert len(raw_rows(tmp_path / "w.duckdb")) == 1


def test_a_failure_half_way_leaves_nothing_behind(tmp_path):
    landing = tmp_path / "landing"
    write(landing / "a.jsonl", GOOD + "\n")
    (landing / "b.jsonl.gz").write_bytes(b"this is not gzip")
    with pytest.raises(IngestError, match=r"b\.jsonl\.gz"):
        ingest_files(tmp_path / "w.duckdb", [landing], landing)
    assert query(tmp_path / "w.duckdb", "select count(*) from raw.raw_events") == [(0,)]
    assert query(tmp_path / "w.duckdb", "select count(*) from raw.landed_files") == [(0,)]


def test_invalid_utf8_is_kept_and_flagged(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "a.jsonl").write_bytes(GOOD.encode() + b'\n{"event_id": "\xff"}\n')
    ingest_files(tmp_path / "w.duckdb", [landing], landing)
    rows = raw_rows(tmp_path / "w.duckdb")
    assert [(r[1], r[3]) for r in rows] == [(1, False), (2, True)]


def test_parquet_rows_land_as_json_objects(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    with duckdb.connect() as con:
        con.execute(
            f"""
            copy (
                select * from (values
                    ('p1', 'c1', 'api_call', '2026-09-01T00:00:00Z', '{{"region": "eu"}}'),
                    ('p2', 'c1', 'api_call', '2026-09-02T00:00:00Z', null)
                ) as t(event_id, customer_id, event_type, "timestamp", properties)
            ) to '{(landing / "bulk.parquet").as_posix()}' (format parquet)
            """
        )
    result = ingest_files(tmp_path / "w.duckdb", [landing], landing)
    rows = raw_rows(tmp_path / "w.duckdb")
    assert result.loaded_rows == 2
    assert [r[1] for r in rows] == [1, 2]
    first = json.loads(rows[0][2])
    assert first["event_id"] == "p1"
    assert first["timestamp"] == "2026-09-01T00:00:00Z"
    assert json.loads(first["properties"]) == {"region": "eu"}


def test_missing_landing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(IngestError, match="landing path does not exist"):
        ingest_files(tmp_path / "w.duckdb", [tmp_path / "nowhere"])


def test_a_final_newline_does_not_make_an_extra_line():
    assert split_lines(b"a\nb\n") == (["a", "b"], [False, False])
    assert split_lines(b"a\n\nb") == (["a", "", "b"], [False, False, False])
    assert split_lines(b"") == ([], [])


def control_rows(warehouse: Path) -> list[tuple]:
    return query(
        warehouse,
        "select file_name, line_number, raw_line from raw.raw_control_totals "
        "order by file_id, line_number",
    )


def test_control_totals_land_beside_events_as_json_rows(tmp_path):
    landing = tmp_path / "landing"
    write(
        landing / "control-totals-2026-09.csv",
        "report_date,customer_id,event_type,event_count\n2026-09-01,c1,api_call,12x\n",
    )
    write(
        landing / "control-totals-2026-10.jsonl",
        '{"report_date": "2026-10-01", "customer_id": "c1", "event_type": "api_call", '
        '"event_count": 3}\n',
    )
    write(landing / "notes.csv", "not,control,totals\n")
    write(landing / "day1.jsonl", GOOD + "\n")
    warehouse = tmp_path / "w.duckdb"
    result = ingest_files(warehouse, [landing], landing)
    assert (result.loaded_rows, result.control_rows) == (1, 2)
    rows = control_rows(warehouse)
    assert [(name, line) for name, line, _ in rows] == [
        ("control-totals-2026-09.csv", 1),
        ("control-totals-2026-10.jsonl", 1),
    ]
    # A CSV row keeps every field as text, so a bad count reaches staging to be reported.
    assert json.loads(rows[0][2]) == {
        "report_date": "2026-09-01",
        "customer_id": "c1",
        "event_type": "api_call",
        "event_count": "12x",
    }
    # Control files do not count as event files, and landing them again adds nothing.
    assert query(warehouse, "select count(*) from raw.landed_files") == [(1,)]
    again = ingest_files(warehouse, [landing], landing)
    assert (again.loaded_files, again.control_rows, len(again.skipped_files)) == ([], 0, 3)
