"""Land event files verbatim in the warehouse's raw tables (DESIGN sections 2 and 3).

Ingest never interprets an event: it keeps each line exactly as it arrived, with its file,
line number and load time, so that staging can decide and re-decide what every line means.

Producers' control totals (DESIGN 3) land beside the events in files named
`control-totals*.csv` or `control-totals*.jsonl`; they go to their own raw tables, so that the
event conservation checks keep counting events only.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
from tqdm import tqdm

EVENT_FILE_SUFFIXES = (".jsonl", ".jsonl.gz", ".parquet")
CONTROL_FILE_PREFIX = "control-totals"
CONTROL_FORMATS = {"control.csv", "control.jsonl"}

RAW_SCHEMA_SQL = """
create schema if not exists raw;
create table if not exists raw.landed_files (
    file_id bigint primary key,
    file_name varchar not null,
    content_hash varchar not null unique,
    file_format varchar not null,
    byte_size bigint not null,
    raw_row_count bigint not null,
    loaded_at timestamp not null
);
create table if not exists raw.raw_events (
    file_id bigint not null,
    file_name varchar not null,
    line_number bigint not null,
    raw_line varchar not null,
    has_encoding_error boolean not null,
    loaded_at timestamp not null
);
create table if not exists raw.landed_control_files (
    file_id bigint primary key,
    file_name varchar not null,
    content_hash varchar not null unique,
    file_format varchar not null,
    raw_row_count bigint not null,
    loaded_at timestamp not null
);
create table if not exists raw.raw_control_totals (
    file_id bigint not null,
    file_name varchar not null,
    line_number bigint not null,
    raw_line varchar not null,
    loaded_at timestamp not null
);
"""


class IngestError(Exception):
    """A user-facing ingest failure; its message is the one line the CLI prints."""


@dataclass
class IngestResult:
    """What one ingest did, for the CLI summary and for orchestration."""

    loaded_files: list[str] = field(default_factory=list)
    skipped_files: list[str] = field(default_factory=list)
    loaded_rows: int = 0
    control_rows: int = 0


def file_format(path: Path) -> str | None:
    """The landing format a file name announces, or None for files ingest leaves alone."""
    name = path.name.lower()
    if name.startswith(CONTROL_FILE_PREFIX):
        if name.endswith(".csv"):
            return "control.csv"
        if name.endswith(".jsonl"):
            return "control.jsonl"
        return None
    if name.endswith(".jsonl.gz"):
        return "jsonl.gz"
    if name.endswith(".jsonl"):
        return "jsonl"
    if name.endswith(".parquet"):
        return "parquet"
    return None


def discover_files(paths: Sequence[Path]) -> list[Path]:
    """Every event file under the given files and folders, in name order.

    Name order is the arrival order inside one load, which decides which copy of an event
    "arrived first" when a batch holds both.
    """
    found: set[Path] = set()
    for path in paths:
        if not path.exists():
            raise IngestError(f"landing path does not exist: {path}")
        if path.is_dir():
            try:
                children = [child for child in path.rglob("*") if child.is_file()]
            except OSError as error:
                raise IngestError(f"cannot read landing folder {path}: {error}") from error
            found.update(child for child in children if file_format(child))
        elif file_format(path):
            found.add(path)
        else:
            raise IngestError(
                f"not an event file (expected {', '.join(EVENT_FILE_SUFFIXES)}, or "
                f"{CONTROL_FILE_PREFIX}*.csv / *.jsonl for control totals): {path}"
            )
    return sorted(found)


def split_lines(content: bytes) -> tuple[list[str], list[bool]]:
    """Lines of a JSON Lines payload, verbatim, and whether each failed to decode as UTF-8.

    A final newline ends the last line rather than starting an empty one; every other line,
    blank or broken, is kept so that staging can quarantine it instead of it vanishing.
    """
    if content.endswith(b"\n"):
        content = content[:-1]
    if not content:
        return [], []
    try:
        lines = content.decode("utf-8").split("\n")
        return lines, [False] * len(lines)
    except UnicodeDecodeError:
        lines, errors = [], []
        for raw in content.split(b"\n"):
            try:
                lines.append(raw.decode("utf-8"))
                errors.append(False)
            except UnicodeDecodeError:
                lines.append(raw.decode("utf-8", errors="replace"))
                errors.append(True)
        return lines, errors


def read_jsonl_bytes(path: Path, fmt: str) -> bytes:
    """The decompressed bytes of a JSON Lines file; the hash is taken over these."""
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if fmt == "jsonl.gz" else raw
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise IngestError(f"cannot read {path}: {error}") from error


def file_hash(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def display_name(path: Path, landing_dir: Path | None) -> str:
    """Files are named relative to the landing folder, so the name survives moving the folder."""
    if landing_dir is not None:
        try:
            return path.resolve().relative_to(landing_dir.resolve()).as_posix()
        except ValueError:
            pass
    return path.resolve().as_posix()


def _insert_jsonl(
    con: duckdb.DuckDBPyConnection, file_id: int, name: str, content: bytes, loaded_at: datetime
) -> int:
    lines, errors = split_lines(content)
    frame = pd.DataFrame(
        {
            "line_number": range(1, len(lines) + 1),
            "raw_line": lines,
            "has_encoding_error": errors,
        }
    )
    con.register("landing_frame", frame)
    con.execute(
        """
        insert into raw.raw_events
        select ?, ?, line_number, raw_line, has_encoding_error, ?
        from landing_frame
        """,
        [file_id, name, loaded_at],
    )
    con.unregister("landing_frame")
    return len(lines)


def _parquet_row_as_json(con: duckdb.DuckDBPyConnection, path: Path) -> str:
    """SQL that renders each Parquet row as the JSON object a producer would have sent.

    Timestamp-typed columns become RFC 3339 UTC strings (Parquet timestamps are UTC); every
    other column is carried as it is, so staging applies one set of rules to both formats.
    """
    columns = con.execute(
        "select column_name, column_type from (describe select * from read_parquet(?))",
        [str(path)],
    ).fetchall()
    parts = []
    for name, column_type in columns:
        quoted = '"' + name.replace('"', '""') + '"'
        key = "'" + name.replace("'", "''") + "'"
        if column_type.startswith("TIMESTAMP"):
            value = f"strftime(timezone('UTC', {quoted}::timestamptz), '%Y-%m-%dT%H:%M:%S.%fZ')"
        else:
            value = quoted
        parts.append(f"{key}, {value}")
    return f"json_object({', '.join(parts)})::varchar"


def _insert_parquet(
    con: duckdb.DuckDBPyConnection, file_id: int, name: str, path: Path, loaded_at: datetime
) -> int:
    row_json = _parquet_row_as_json(con, path)
    before = con.execute("select count(*) from raw.raw_events").fetchone()[0]
    con.execute(
        f"""
        insert into raw.raw_events
        select ?, ?, file_row_number + 1, {row_json}, false, ?
        from read_parquet(?, file_row_number = true)
        """,
        [file_id, name, loaded_at, str(path)],
    )
    return con.execute("select count(*) from raw.raw_events").fetchone()[0] - before


def _insert_control_totals(
    con: duckdb.DuckDBPyConnection,
    file_id: int,
    name: str,
    path: Path,
    fmt: str,
    content: bytes,
    loaded_at: datetime,
) -> int:
    """Land control-total rows as JSON text, one per data row; staging validates them.

    A CSV row becomes the JSON object of its header's columns, all as text, so a bad count
    ("12x") survives to be reported instead of failing the load.
    """
    if fmt == "control.jsonl":
        lines, _ = split_lines(content)
        frame = pd.DataFrame({"line_number": range(1, len(lines) + 1), "raw_line": lines})
        con.register("control_frame", frame)
        select = "select ?, ?, line_number, raw_line, ? from control_frame"
    else:
        try:
            con.execute(
                "create or replace temp table control_frame as select row_number() over () "
                "as line_number, to_json(csv)::varchar as raw_line from read_csv(?, "
                "header = true, all_varchar = true, auto_detect = true) as csv",
                [str(path)],
            )
        except duckdb.Error as error:
            raise IngestError(f"cannot read control totals {path}: {error}") from error
        select = "select ?, ?, line_number, raw_line, ? from control_frame"
    before = con.execute("select count(*) from raw.raw_control_totals").fetchone()[0]
    con.execute(f"insert into raw.raw_control_totals {select}", [file_id, name, loaded_at])
    if fmt == "control.jsonl":
        con.unregister("control_frame")
    else:
        con.execute("drop table control_frame")
    return con.execute("select count(*) from raw.raw_control_totals").fetchone()[0] - before


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(RAW_SCHEMA_SQL)


def ingest_files(
    warehouse: Path,
    paths: Iterable[Path],
    landing_dir: Path | None = None,
    loaded_at: datetime | None = None,
    show_progress: bool = False,
) -> IngestResult:
    """Load every event file not loaded before, all in one transaction.

    A file whose content hash is already in `raw.landed_files` adds nothing, whatever its
    name. Any failure rolls the whole load back, so a crash never leaves half a file behind.
    """
    files = discover_files(list(paths))
    loaded_at = loaded_at or datetime.now(UTC).replace(tzinfo=None)
    result = IngestResult()
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(warehouse))
    except duckdb.Error as error:
        raise IngestError(f"cannot open warehouse {warehouse}: {error}") from error
    try:
        ensure_raw_schema(con)
        con.begin()
        known_hashes = {
            row[0] for row in con.execute("select content_hash from raw.landed_files").fetchall()
        }
        known_hashes |= {
            row[0]
            for row in con.execute("select content_hash from raw.landed_control_files").fetchall()
        }
        next_id = con.execute("select coalesce(max(file_id), 0) + 1 from raw.landed_files")
        file_id = next_id.fetchone()[0]
        next_control = con.execute(
            "select coalesce(max(file_id), 0) + 1 from raw.landed_control_files"
        )
        control_id = next_control.fetchone()[0]
        for path in tqdm(files, desc="ingest", unit="file", disable=not show_progress):
            fmt = file_format(path)
            name = display_name(path, landing_dir)
            content = read_jsonl_bytes(path, fmt) if fmt.startswith("jsonl") else _read_bytes(path)
            content_hash = file_hash(content)
            if content_hash in known_hashes:
                result.skipped_files.append(name)
                continue
            if fmt in CONTROL_FORMATS:
                rows = _insert_control_totals(con, control_id, name, path, fmt, content, loaded_at)
                con.execute(
                    "insert into raw.landed_control_files values (?, ?, ?, ?, ?, ?)",
                    [control_id, name, content_hash, fmt, rows, loaded_at],
                )
                known_hashes.add(content_hash)
                result.loaded_files.append(name)
                result.control_rows += rows
                control_id += 1
                continue
            if fmt == "parquet":
                rows = _insert_parquet(con, file_id, name, path, loaded_at)
            else:
                rows = _insert_jsonl(con, file_id, name, content, loaded_at)
            con.execute(
                "insert into raw.landed_files values (?, ?, ?, ?, ?, ?, ?)",
                [file_id, name, content_hash, fmt, len(content), rows, loaded_at],
            )
            known_hashes.add(content_hash)
            result.loaded_files.append(name)
            result.loaded_rows += rows
            file_id += 1
        con.commit()
    except duckdb.Error as error:
        _rollback_quietly(con)
        raise IngestError(f"ingest failed, nothing was loaded: {error}") from error
    except IngestError:
        _rollback_quietly(con)
        raise
    finally:
        con.close()
    return result


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise IngestError(f"cannot read {path}: {error}") from error


def _rollback_quietly(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back if a transaction is open; the error that got us here is the one to report."""
    with contextlib.suppress(duckdb.Error):
        con.rollback()
