"""Ingest keeps every line verbatim, loads a file's content once, and each file on its own.

A file lands whole or not at all; an unreadable one is rejected (recorded, named) while the
others land. Paths and names are bound, never spliced into SQL; a Parquet file is read
exactly, whatever its name, and in UTC whatever the host's time zone; a BOM and CR or CRLF
line ends are normalized and recorded. A landed file can be withdrawn.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb
import pytest
from conftest import query

from billing import landing as ingest
from billing.landing import (
    IngestError,
    IngestResult,
    finalized_invoices_touching,
    glob_escaped,
    ingest_files,
    normalize_line_endings,
    rejected_file_alerts,
    split_lines,
    withdraw_file,
)
from billing.settings import PROJECT_DIR

GOOD = (
    '{"event_id": "e1", "customer_id": "c1", "event_type": "api_call", '
    '"timestamp": "2026-09-01T00:00:00Z"}'
)
BILLING = [sys.executable, "-m", "billing.cli"]


def event(event_id: str) -> str:
    return GOOD.replace('"e1"', f'"{event_id}"')


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def write_parquet(path: Path, select_sql: str) -> Path:
    """A Parquet file at any path: DuckDB's COPY cannot bind its target, so write it under a
    plain name in a fresh folder, then move it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        staged = Path(folder) / "staged.parquet"
        with duckdb.connect() as con:
            con.execute(f"copy ({select_sql}) to '{staged.as_posix()}' (format parquet)")
        shutil.move(staged, path)
    return path


def event_parquet(path: Path, event_id: str) -> Path:
    return write_parquet(
        path,
        f"select '{event_id}' as event_id, 'c1' as customer_id, 'api_call' as event_type, "
        "'2026-09-01T00:00:00Z' as \"timestamp\"",
    )


def raw_rows(warehouse: Path) -> list[tuple]:
    return query(
        warehouse,
        "select file_name, line_number, raw_line, has_encoding_error "
        "from raw.raw_events order by file_id, line_number",
    )


def run_billing(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*BILLING, *args],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
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


def test_an_unreadable_file_is_rejected_and_the_others_land(tmp_path):
    landing = tmp_path / "landing"
    warehouse = tmp_path / "w.duckdb"
    write(landing / "a.jsonl", event("a1") + "\n" + event("a2") + "\n")
    truncated = gzip.compress((event("b1") + "\n" + event("b2") + "\n").encode())[:-12]
    (landing / "b.jsonl.gz").write_bytes(truncated)
    (landing / "c.parquet").write_bytes(b"PAR1 but not really parquet")
    write(landing / "d.jsonl", event("d1") + "\n")

    first = ingest_files(warehouse, [landing], landing)

    assert first.loaded_files == ["a.jsonl", "d.jsonl"]
    assert first.loaded_rows == 3
    assert [name for name, _ in first.rejected_files] == ["b.jsonl.gz", "c.parquet"]
    assert first.rejected_files[0][1].startswith("not a complete gzip file")
    assert query(warehouse, "select file_name, raw_row_count from raw.landed_files") == [
        ("a.jsonl", 2),
        ("d.jsonl", 1),
    ]
    assert query(
        warehouse,
        "select rejection_id, file_name, content_hash, file_format, byte_size "
        "from raw.rejected_files order by rejection_id",
    ) == [
        (1, "b.jsonl.gz", hashlib.sha256(truncated).hexdigest(), "jsonl.gz", len(truncated)),
        (2, "c.parquet", hashlib.sha256(b"PAR1 but not really parquet").hexdigest(), "parquet", 27),
    ]

    # Still broken on the next run: named again, recorded once.
    second = ingest_files(warehouse, [landing], landing)
    assert [name for name, _ in second.rejected_files] == ["b.jsonl.gz", "c.parquet"]
    assert query(warehouse, "select count(*) from raw.rejected_files") == [(2,)]

    # The producer resends b fixed (another hash): it lands.
    (landing / "b.jsonl.gz").write_bytes(
        gzip.compress((event("b1") + "\n" + event("b2") + "\n").encode())
    )
    (landing / "c.parquet").unlink()
    third = ingest_files(warehouse, [landing], landing)
    assert (third.loaded_files, third.loaded_rows, third.rejected_files) == (
        ["b.jsonl.gz"],
        2,
        [],
    )
    assert query(warehouse, "select count(*) from raw.raw_events") == [(5,)]


def test_a_file_that_fails_while_loading_leaves_nothing_of_itself(tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    warehouse = tmp_path / "w.duckdb"
    write(landing / "a.jsonl", event("a1") + "\n")
    write(landing / "b.jsonl", event("b1") + "\n" + event("b2") + "\n")
    write(landing / "c.jsonl", event("c1") + "\n")
    insert = ingest._insert_jsonl

    def fail_after_inserting_b(con, file_id, name, content, loaded_at):
        rows = insert(con, file_id, name, content, loaded_at)
        if name == "b.jsonl":
            raise duckdb.IOException("disk went away half way through b.jsonl")
        return rows

    monkeypatch.setattr(ingest, "_insert_jsonl", fail_after_inserting_b)
    result = ingest_files(warehouse, [landing], landing)

    assert result.loaded_files == ["a.jsonl", "c.jsonl"]
    assert result.rejected_files == [("b.jsonl", "disk went away half way through b.jsonl")]
    assert query(
        warehouse, "select file_name, count(*) from raw.raw_events group by 1 order by 1"
    ) == [
        ("a.jsonl", 1),
        ("c.jsonl", 1),
    ]
    assert query(warehouse, "select file_id, file_name from raw.landed_files order by 1") == [
        (1, "a.jsonl"),
        (2, "c.jsonl"),
    ]


def test_rejected_files_become_alert_data():
    result = IngestResult(rejected_files=[("b.jsonl.gz", "not a complete gzip file")])
    assert rejected_file_alerts(result) == [
        {
            "alert_kind": "ingest_rejection",
            "check_name": "rejected_files",
            "severity": "error",
            "scope": "ingest",
            "period_start": None,
            "period_end": None,
            "customers": (),
            "affected_rows": 1,
            "summary": "ingest could not land b.jsonl.gz: not a complete gzip file",
            "details": ("b.jsonl.gz: not a complete gzip file",),
        }
    ]
    assert rejected_file_alerts(IngestResult()) == []


def test_billing_ingest_exits_1_naming_the_rejected_files(tmp_path):
    landing = tmp_path / "landing"
    write(landing / "a.jsonl", GOOD + "\n")
    (landing / "b.jsonl.gz").write_bytes(b"this is not gzip")
    result = run_billing(
        "ingest",
        env={"BILLING_WAREHOUSE": str(tmp_path / "w.duckdb"), "BILLING_LANDING_DIR": str(landing)},
    )
    assert result.returncode == 1
    assert "ingested 1 new files (1 event rows" in result.stdout
    assert "rejected 1," in result.stdout
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-2:] == [
        "  rejected b.jsonl.gz: not a complete gzip file: Not a gzipped file (b'th')",
        "billing ingest: 1 file(s) not landed (fix and resend them; see raw.rejected_files): "
        "b.jsonl.gz",
    ]


def test_paths_with_apostrophes_and_quotes_are_bound_not_spliced(tmp_path):
    root = tmp_path / "o'brien" / 'say "when"'
    landing = root / "landing"
    warehouse = root / "warehouse's.duckdb"
    write(landing / "it's a day.jsonl", event("j1") + "\n" + event("j2") + "\n")
    event_parquet(landing / "bulk o'hara.parquet", "p1")
    write(
        landing / "control-totals-o'neil.csv",
        "report_date,customer_id,event_type,event_count\n2026-09-01,c1,api_call,3\n",
    )
    result = ingest_files(warehouse, [landing], landing)
    assert (result.loaded_rows, result.control_rows, result.rejected_files) == (3, 1, [])
    assert query(warehouse, "select file_name, raw_row_count from raw.landed_files order by 1") == [
        ("bulk o'hara.parquet", 1),
        ("it's a day.jsonl", 2),
    ]
    assert json.loads(raw_rows(warehouse)[0][2])["event_id"] == "p1"


@pytest.mark.parametrize(
    "name",
    ["fz-glob-?.parquet", "fz-glob-*.parquet", "fz-glob-[ab].parquet", "fz 'glob' \"b\".parquet"],
)
def test_a_parquet_file_with_glob_characters_reads_exactly_that_file(tmp_path, name):
    landing = tmp_path / "landing"
    # Siblings its name would match as a pattern: fz-glob-a, fz-glob-b.
    event_parquet(landing / "fz-glob-a.parquet", "sibling-a")
    event_parquet(landing / "fz-glob-b.parquet", "sibling-b")
    target = event_parquet(landing / name, "the-named-file")
    warehouse = tmp_path / "w.duckdb"
    result = ingest_files(warehouse, [target], landing)
    assert (result.loaded_files, result.loaded_rows) == ([name], 1)
    assert [json.loads(row[2])["event_id"] for row in raw_rows(warehouse)] == ["the-named-file"]


def test_glob_characters_are_escaped_one_by_one():
    assert glob_escaped(Path("/l/fz-[x]*?.parquet")) == "/l/fz-[[]x][*][?].parquet"
    assert glob_escaped(Path("/l/plain name's.parquet")) == "/l/plain name's.parquet"


def test_a_control_file_with_glob_characters_reads_exactly_that_file(tmp_path):
    landing = tmp_path / "landing"
    header = "report_date,customer_id,event_type,event_count\n"
    write(landing / "control-totals-1.csv", header + "2026-09-01,c1,api_call,1\n")
    write(landing / "control-totals-[1].csv", header + "2026-09-01,c1,api_call,7\n")
    warehouse = tmp_path / "w.duckdb"
    result = ingest_files(warehouse, [landing / "control-totals-[1].csv"], landing)
    assert result.control_rows == 1
    assert [
        json.loads(line)["event_count"]
        for (line,) in query(warehouse, "select raw_line from raw.raw_control_totals")
    ] == ["7"]


def test_parquet_timestamps_land_in_utc_whatever_the_host_time_zone(tmp_path):
    landing = tmp_path / "landing"
    write_parquet(
        landing / "bulk.parquet",
        "select 'p1' as event_id, 'c1' as customer_id, 'api_call' as event_type, "
        "timestamp '2026-09-30 23:30:00' as \"timestamp\", "
        "timestamptz '2026-09-30 23:45:00+00' as sent_at",
    )
    warehouse = tmp_path / "w.duckdb"
    script = (
        "import sys; from pathlib import Path; from billing.landing import ingest_files; "
        "ingest_files(Path(sys.argv[1]), [Path(sys.argv[2])], Path(sys.argv[2]))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script, str(warehouse), str(landing)],
        cwd=PROJECT_DIR,
        env={**os.environ, "TZ": "America/New_York"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    row = json.loads(raw_rows(warehouse)[0][2])
    assert (row["timestamp"], row["sent_at"]) == (
        "2026-09-30T23:30:00.000000Z",
        "2026-09-30T23:45:00.000000Z",
    )


def test_parquet_rows_land_as_json_objects(tmp_path):
    landing = tmp_path / "landing"
    write_parquet(
        landing / "bulk.parquet",
        """
        select * from (values
            ('p1', 'c1', 'api_call', '2026-09-01T00:00:00Z', '{"region": "eu"}'),
            ('p2', 'c1', 'api_call', '2026-09-02T00:00:00Z', null)
        ) as t(event_id, customer_id, event_type, "timestamp", properties)
        """,
    )
    result = ingest_files(tmp_path / "w.duckdb", [landing], landing)
    rows = raw_rows(tmp_path / "w.duckdb")
    assert result.loaded_rows == 2
    assert [r[1] for r in rows] == [1, 2]
    first = json.loads(rows[0][2])
    assert first["event_id"] == "p1"
    assert first["timestamp"] == "2026-09-01T00:00:00Z"
    assert json.loads(first["properties"]) == {"region": "eu"}


def test_a_bom_is_stripped_and_cr_or_crlf_line_ends_split_lines(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + f"{GOOD}\n{event('e2')}\n".encode())
    (landing / "crlf.jsonl").write_bytes(f"{event('f1')}\r\n\r\n{event('f2')}\r\n".encode())
    (landing / "cr.jsonl").write_bytes(f"{event('g1')}\r{event('g2')}\r{event('g3')}".encode())
    (landing / "both.jsonl.gz").write_bytes(
        gzip.compress(b"\xef\xbb\xbf" + f"{event('h1')}\r\n{event('h2')}\r".encode())
    )
    (landing / "plain.jsonl").write_bytes(f"{event('i1')}\n".encode())
    warehouse = tmp_path / "w.duckdb"
    result = ingest_files(warehouse, [landing], landing)
    assert result.loaded_rows == 2 + 3 + 3 + 2 + 1
    assert query(
        warehouse,
        "select file_name, raw_row_count, normalizations from raw.landed_files order by file_name",
    ) == [
        ("bom.jsonl", 2, "bom_stripped"),
        ("both.jsonl.gz", 2, "bom_stripped,crlf_line_endings,cr_line_endings"),
        ("cr.jsonl", 3, "cr_line_endings"),
        ("crlf.jsonl", 3, "crlf_line_endings"),
        ("plain.jsonl", 1, ""),
    ]
    lines = {(name, number): line for name, number, line, _ in raw_rows(warehouse)}
    assert lines[("bom.jsonl", 1)] == GOOD
    assert lines[("crlf.jsonl", 2)] == ""
    assert [lines[("cr.jsonl", n)] for n in (1, 2, 3)] == [event("g1"), event("g2"), event("g3")]
    assert lines[("both.jsonl.gz", 2)] == event("h2")
    # The hash is of the bytes as received: a resend without the BOM is another delivery.
    assert query(
        warehouse, "select content_hash from raw.landed_files where file_name = 'bom.jsonl'"
    ) == [(hashlib.sha256(b"\xef\xbb\xbf" + f"{GOOD}\n{event('e2')}\n".encode()).hexdigest(),)]


def test_line_end_normalization_is_recorded():
    assert normalize_line_endings(b"a\nb\n") == (b"a\nb\n", ())
    assert normalize_line_endings(b"\xef\xbb\xbfa\r\nb") == (
        b"a\nb",
        ("bom_stripped", "crlf_line_endings"),
    )
    assert normalize_line_endings(b"a\rb\r\nc") == (
        b"a\nb\nc",
        ("crlf_line_endings", "cr_line_endings"),
    )
    # Only a leading BOM is the editor's: one later in the file is data, kept.
    assert normalize_line_endings(b"a\n\xef\xbb\xbfb") == (b"a\n\xef\xbb\xbfb", ())


def test_invalid_utf8_is_kept_and_flagged(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "a.jsonl").write_bytes(GOOD.encode() + b'\n{"event_id": "\xff"}\n')
    ingest_files(tmp_path / "w.duckdb", [landing], landing)
    rows = raw_rows(tmp_path / "w.duckdb")
    assert [(r[1], r[3]) for r in rows] == [(1, False), (2, True)]


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


def test_an_existing_warehouse_gains_the_new_columns_and_tables(tmp_path):
    warehouse = tmp_path / "w.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "create schema raw; create table raw.landed_files (file_id bigint primary key, "
            "file_name varchar not null, content_hash varchar not null unique, "
            "file_format varchar not null, byte_size bigint not null, "
            "raw_row_count bigint not null, loaded_at timestamp not null); "
            "insert into raw.landed_files values "
            "(1, 'old.jsonl', 'h', 'jsonl', 10, 1, '2026-09-01')"
        )
    landing = tmp_path / "landing"
    write(landing / "new.jsonl", GOOD + "\n")
    ingest_files(warehouse, [landing], landing)
    assert query(
        warehouse, "select file_id, file_name, normalizations from raw.landed_files order by 1"
    ) == [(1, "old.jsonl", ""), (2, "new.jsonl", "")]
    assert query(warehouse, "select count(*) from raw.withdrawn_files") == [(0,)]
    assert query(warehouse, "select count(*) from raw.rejected_files") == [(0,)]


def test_withdraw_refuses_bad_requests_with_one_line_reasons(tmp_path):
    landing = tmp_path / "landing"
    warehouse = tmp_path / "w.duckdb"
    write(landing / "a.jsonl", event("a1") + "\n")
    ingest_files(warehouse, [landing], landing)
    write(landing / "a.jsonl", event("a2") + "\n")  # same name, new content
    ingest_files(warehouse, [landing], landing)

    with pytest.raises(IngestError, match="needs a reason"):
        withdraw_file(warehouse, "a.jsonl", "  ")
    with pytest.raises(IngestError, match=r"no landed event file named 'nope\.jsonl'"):
        withdraw_file(warehouse, "nope.jsonl", "typo")
    with pytest.raises(IngestError, match=r"2 landed files are named 'a.jsonl' \(file_id 1, 2\)"):
        withdraw_file(warehouse, "a.jsonl", "replayed")
    withdrawal = withdraw_file(warehouse, "a.jsonl", " replayed ", file_id=1)
    assert (withdrawal.file_id, withdrawal.raw_row_count, withdrawal.reason) == (1, 1, "replayed")
    with pytest.raises(IngestError, match="already withdrawn"):
        withdraw_file(warehouse, "a.jsonl", "again", file_id=1)
    assert query(warehouse, "select file_id, file_name, reason from raw.withdrawn_files") == [
        (1, "a.jsonl", "replayed")
    ]


def test_withdraw_refuses_a_file_a_finalized_invoice_may_have_billed(tmp_path):
    landing = tmp_path / "landing"
    warehouse = tmp_path / "w.duckdb"
    write(landing / "a.jsonl", event("a1") + "\n")
    write(landing / "b.jsonl", event("b1") + "\n")
    ingest_files(warehouse, [landing], landing)
    with duckdb.connect(str(warehouse)) as con:
        # What a build leaves: a.jsonl (file 1) accepted for c1, then an invoice of c1
        # finalized by a build that had seen files up to 1; b.jsonl (2) landed later.
        con.execute(
            "create schema staging; create table staging.stg_events__routed_events as "
            "select * from (values (1, 'c1', 'accepted'), (2, 'c1', 'accepted')) "
            "as t(file_id, customer_id, event_status); "
            "create schema ledger; create table ledger.fct_invoices_finalized as "
            "select 'inv_1' as invoice_id, 'INV-2026-09-000001' as invoice_number, "
            "'c1' as customer_id, date '2026-09-01' as billing_period_start, "
            "1 as billed_through_file_id"
        )
        assert finalized_invoices_touching(con, 1) == ["INV-2026-09-000001 (c1, 2026-09)"]
        assert finalized_invoices_touching(con, 2) == []
    with pytest.raises(IngestError, match=r"cannot withdraw a.jsonl: finalized invoices .*"):
        withdraw_file(warehouse, "a.jsonl", "replayed")
    assert withdraw_file(warehouse, "b.jsonl", "replayed").file_id == 2
    # Voided, the invoice bills nothing any more: the file can be taken back, and the next
    # build's reissue of September leaves its events out.
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "create table ledger.fct_invoice_voids as select 'inv_1' as invoice_id, "
            "'INV-2026-09-000001' as invoice_number, 'c1' as customer_id, "
            "date '2026-09-01' as billing_period_start, 'test file' as void_reason, "
            "timestamp '2026-10-05 00:00:00' as voided_at"
        )
        assert finalized_invoices_touching(con, 1) == []
    assert withdraw_file(warehouse, "a.jsonl", "replayed").file_id == 1


def test_billing_withdraw_has_help_and_one_line_errors(tmp_path):
    assert run_billing("withdraw", "--help", env={}).returncode == 0
    result = run_billing(
        "withdraw", "nope.jsonl", "--reason", "typo",
        env={"BILLING_WAREHOUSE": str(tmp_path / "w.duckdb")},
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "billing withdraw: error: no landed event file named 'nope.jsonl'"
    ]
