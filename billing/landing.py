"""Land event files verbatim in the warehouse's raw tables (architecture §2 and §3).

Ingest never interprets an event: it keeps each line exactly as it arrived, with its file,
line number and load time, so that staging can decide and re-decide what every line means.

Each file is its own unit (DECISIONLOG D36): it lands whole, in its own transaction, or not
at all. A file that cannot be read is recorded in `raw.rejected_files` with its name, hash and
reason, and the other files still land. A landed file can later be withdrawn (`billing
withdraw`): it is recorded in `raw.withdrawn_files` and staging routes its rows to
`withdrawn`; nothing is ever deleted.

Producers' control totals (architecture §3) land beside the events in files named
`control-totals*.csv` or `control-totals*.jsonl`; they go to their own raw tables, so that the
event conservation checks keep counting events only.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
from tqdm import tqdm

from billing.warehouse import lock

EVENT_FILE_SUFFIXES = (".jsonl", ".jsonl.gz", ".parquet")
CONTROL_FILE_PREFIX = "control-totals"
CONTROL_FORMATS = {"control.csv", "control.jsonl"}
UTF8_BOM = b"\xef\xbb\xbf"
# DuckDB expands these in any file name it is given (read_parquet, read_csv).
GLOB_CHARACTERS = re.compile(r"([\[*?])")
# Errors after which the connection cannot be trusted for the next file: stop the whole call.
FATAL_DUCKDB_ERRORS = (duckdb.FatalException, duckdb.InternalException)
MAX_REASON_LENGTH = 500

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
create table if not exists raw.rejected_files (
    rejection_id bigint primary key,
    file_name varchar not null,
    content_hash varchar,
    file_format varchar not null,
    byte_size bigint,
    reason varchar not null,
    rejected_at timestamp not null
);
create table if not exists raw.withdrawn_files (
    file_id bigint primary key,
    file_name varchar not null,
    content_hash varchar not null,
    reason varchar not null,
    withdrawn_at timestamp not null
);
alter table raw.landed_files add column if not exists normalizations varchar default '';
alter table raw.landed_control_files add column if not exists normalizations varchar default '';
"""

LEDGER_INVOICES = ("ledger", "fct_invoices_finalized")
LEDGER_VOIDS = ("ledger", "fct_invoice_voids")
ROUTED_EVENTS = ("staging", "stg_events__routed_events")


class IngestError(Exception):
    """A user-facing ingest failure; its message is the one line the CLI prints."""


class FileRejected(Exception):
    """One file cannot be landed; the others still can. Carries what is known of its bytes."""

    def __init__(self, reason: str, content: bytes | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.content = content


@dataclass
class IngestResult:
    """What one ingest did, for the CLI summary and for orchestration."""

    loaded_files: list[str] = field(default_factory=list)
    skipped_files: list[str] = field(default_factory=list)
    rejected_files: list[tuple[str, str]] = field(default_factory=list)  # name, reason
    loaded_rows: int = 0
    control_rows: int = 0


@dataclass(frozen=True)
class Withdrawal:
    """A landed file retired by `billing withdraw`."""

    file_id: int
    file_name: str
    content_hash: str
    raw_row_count: int
    reason: str


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


def normalize_line_endings(content: bytes) -> tuple[bytes, tuple[str, ...]]:
    """The content with a leading UTF-8 BOM removed and CRLF or CR line ends made LF.

    A BOM is an editor's mark, not part of the first event, and a file written with CR or
    CRLF line ends is still one event per line; left alone, the first would quarantine a
    valid event and the second would make a whole file one broken row. Returns what was
    done, so the landed file records it; nothing else about a line is changed.
    """
    done = []
    if content.startswith(UTF8_BOM):
        content = content[len(UTF8_BOM) :]
        done.append("bom_stripped")
    if b"\r" in content:
        crlf = content.count(b"\r\n")
        if crlf:
            done.append("crlf_line_endings")
        if content.count(b"\r") > crlf:
            done.append("cr_line_endings")
        content = content.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return content, tuple(done)


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


def read_content(path: Path, fmt: str) -> bytes:
    """The bytes a file lands as (decompressed for `.jsonl.gz`); the hash is taken over these.

    Raises FileRejected with the raw bytes when they were read but cannot be decompressed,
    so the rejection still records which delivery it was.
    """
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise FileRejected(f"cannot read the file: {error.strerror or error}") from error
    if fmt != "jsonl.gz":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise FileRejected(f"not a complete gzip file: {error}", raw) from error


def file_hash(content: bytes) -> str:
    """SHA-256 of a file's content: a file is known by what it holds, not by its name."""
    return hashlib.sha256(content).hexdigest()


def display_name(path: Path, landing_dir: Path | None) -> str:
    """Files are named relative to the landing folder, so the name survives moving the folder."""
    if landing_dir is not None:
        try:
            return path.resolve().relative_to(landing_dir.resolve()).as_posix()
        except ValueError:
            pass
    return path.resolve().as_posix()


def glob_escaped(path: Path) -> str:
    """The path as a DuckDB file pattern that matches exactly this file.

    DuckDB's readers expand `*`, `?` and `[...]` in any name they are given, so
    `fz-glob-?.parquet` would also read `fz-glob-a.parquet`. A bracket around each such
    character makes it match only itself.
    """
    return GLOB_CHARACTERS.sub(r"[\1]", path.resolve().as_posix())


def sql_identifier(name: str) -> str:
    """A column name from a producer's file, quoted so it can never end the identifier."""
    return '"' + name.replace('"', '""') + '"'


def rejection_reason(error: BaseException) -> str:
    """The first line of an error, bounded: what the rejected-files table and the CLI show."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:MAX_REASON_LENGTH]


def rejected_file_alerts(result: IngestResult) -> list[dict]:
    """One alert's fields per rejected file (the keyword arguments of `alerts.Alert`).

    Data only, so ingest does not depend on the alert sinks; the fingerprint of an alert
    includes its details, so the same file rejected again for the same reason alerts once.
    """
    return [
        {
            "alert_kind": "ingest_rejection",
            "check_name": "rejected_files",
            "severity": "error",
            "scope": "ingest",
            "period_start": None,
            "period_end": None,
            "customers": (),
            "affected_rows": 1,
            "summary": f"ingest could not land {name}: {reason}",
            "details": (f"{name}: {reason}",),
        }
        for name, reason in result.rejected_files
    ]


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
    try:
        con.execute(
            """
            insert into raw.raw_events
            select ?, ?, line_number, raw_line, has_encoding_error, ?
            from landing_frame
            """,
            [file_id, name, loaded_at],
        )
    finally:
        con.unregister("landing_frame")
    return len(lines)


def _parquet_row_as_json(con: duckdb.DuckDBPyConnection, pattern: str) -> tuple[str, list[str]]:
    """SQL that renders each Parquet row as the JSON object a producer would have sent.

    Timestamp-typed columns become RFC 3339 UTC strings (Parquet timestamps are UTC, and the
    session time zone is UTC); every other column is carried as it is, so staging applies one
    set of rules to both formats. Column names are quoted as identifiers and bound as the
    JSON keys; returns the SQL and the keys to bind, in order.
    """
    columns = con.execute(
        "select column_name, column_type from (describe select * from read_parquet(?))",
        [pattern],
    ).fetchall()
    parts, keys = [], []
    for name, column_type in columns:
        quoted = sql_identifier(name)
        if column_type.startswith("TIMESTAMP"):
            value = f"strftime(timezone('UTC', {quoted}::timestamptz), '%Y-%m-%dT%H:%M:%S.%fZ')"
        else:
            value = quoted
        parts.append(f"?, {value}")
        keys.append(name)
    return f"json_object({', '.join(parts)})::varchar", keys


def _insert_parquet(
    con: duckdb.DuckDBPyConnection, file_id: int, name: str, path: Path, loaded_at: datetime
) -> int:
    pattern = glob_escaped(path)
    row_json, keys = _parquet_row_as_json(con, pattern)
    before = con.execute("select count(*) from raw.raw_events").fetchone()[0]
    con.execute(
        f"""
        insert into raw.raw_events
        select ?, ?, file_row_number + 1, {row_json}, false, ?
        from read_parquet(?, file_row_number = true)
        """,
        [file_id, name, *keys, loaded_at, pattern],
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
    else:
        con.execute(
            "create or replace temp table control_frame as select row_number() over () "
            "as line_number, to_json(csv)::varchar as raw_line from read_csv(?, "
            "header = true, all_varchar = true, auto_detect = true) as csv",
            [glob_escaped(path)],
        )
    try:
        con.execute(
            "insert into raw.raw_control_totals "
            "select ?, ?, line_number, raw_line, ? from control_frame",
            [file_id, name, loaded_at],
        )
        return con.execute("select count(*) from control_frame").fetchone()[0]
    finally:
        if fmt == "control.jsonl":
            con.unregister("control_frame")
        else:
            con.execute("drop table if exists control_frame")


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw tables, and add columns later releases introduced to existing ones."""
    con.execute(RAW_SCHEMA_SQL)


def connect_warehouse(warehouse: Path) -> duckdb.DuckDBPyConnection:
    """A writing connection in UTC with the raw tables in place.

    The session time zone is UTC whatever the host's TZ: casting a Parquet TIMESTAMP to an
    instant otherwise uses the host's zone and moves events across days and months.
    """
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = lock.connect(warehouse)
    except lock.WarehouseBusy as error:
        raise IngestError(f"nothing landed: {error}") from error
    except duckdb.Error as error:
        raise IngestError(f"cannot open warehouse {warehouse}: {error}") from error
    try:
        con.execute("set TimeZone = 'UTC'")
        ensure_raw_schema(con)
    except duckdb.Error as error:
        con.close()
        raise IngestError(f"cannot prepare warehouse {warehouse}: {error}") from error
    return con


def _land_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    fmt: str,
    name: str,
    content: bytes,
    loaded_at: datetime,
) -> tuple[int, bool]:
    """Land one file in its own transaction: all its rows and its file row, or nothing.

    Returns the rows landed and whether they were control totals.
    """
    content_hash = file_hash(content)
    done: tuple[str, ...] = ()
    con.begin()
    try:
        if fmt in CONTROL_FORMATS:
            normalized, done = normalize_line_endings(content)
            control_id = con.execute(
                "select coalesce(max(file_id), 0) + 1 from raw.landed_control_files"
            ).fetchone()[0]
            rows = _insert_control_totals(con, control_id, name, path, fmt, normalized, loaded_at)
            con.execute(
                "insert into raw.landed_control_files (file_id, file_name, content_hash, "
                "file_format, raw_row_count, loaded_at, normalizations) "
                "values (?, ?, ?, ?, ?, ?, ?)",
                [control_id, name, content_hash, fmt, rows, loaded_at, ",".join(done)],
            )
        else:
            file_id = con.execute(
                "select coalesce(max(file_id), 0) + 1 from raw.landed_files"
            ).fetchone()[0]
            if fmt == "parquet":
                rows = _insert_parquet(con, file_id, name, path, loaded_at)
            else:
                normalized, done = normalize_line_endings(content)
                rows = _insert_jsonl(con, file_id, name, normalized, loaded_at)
            con.execute(
                "insert into raw.landed_files (file_id, file_name, content_hash, file_format, "
                "byte_size, raw_row_count, loaded_at, normalizations) "
                "values (?, ?, ?, ?, ?, ?, ?, ?)",
                [file_id, name, content_hash, fmt, len(content), rows, loaded_at, ",".join(done)],
            )
        con.commit()
    except BaseException:
        _rollback_quietly(con)
        raise
    return rows, fmt in CONTROL_FORMATS


def _record_rejection(
    con: duckdb.DuckDBPyConnection,
    name: str,
    fmt: str,
    rejection: FileRejected,
    rejected_at: datetime,
) -> None:
    """Keep a rejected file's name, hash and reason; the same rejection is recorded once."""
    content = rejection.content
    content_hash = file_hash(content) if content is not None else None
    byte_size = len(content) if content is not None else None
    try:
        con.execute(
            """
            insert into raw.rejected_files
            select
                (select coalesce(max(rejection_id), 0) + 1 from raw.rejected_files),
                $name, $hash, $fmt, $size, $reason, $at
            where not exists (
                select 1 from raw.rejected_files
                where file_name = $name and content_hash is not distinct from $hash
                    and reason = $reason
            )
            """,
            {
                "name": name,
                "hash": content_hash,
                "fmt": fmt,
                "size": byte_size,
                "reason": rejection.reason,
                "at": rejected_at,
            },
        )
    except duckdb.Error as error:
        raise IngestError(f"cannot record the rejection of {name}: {error}") from error


def ingest_files(
    warehouse: Path,
    paths: Iterable[Path],
    landing_dir: Path | None = None,
    loaded_at: datetime | None = None,
    show_progress: bool = False,
) -> IngestResult:
    """Load every event file not loaded before, each file in its own transaction.

    A file whose content hash is already in `raw.landed_files` adds nothing, whatever its
    name. A file that cannot be read or loaded leaves nothing behind, is recorded in
    `raw.rejected_files` and listed in the result; the other files still land.
    """
    files = discover_files(list(paths))
    loaded_at = loaded_at or datetime.now(UTC).replace(tzinfo=None)
    # A build reads raw rows in several steps; an ingest waits for the whole build, not
    # only for its current step (D70).
    try:
        with lock.exclusive_run(warehouse, "billing ingest"):
            con = connect_warehouse(warehouse)
            try:
                return _ingest_each(con, files, landing_dir, loaded_at, show_progress)
            except duckdb.Error as error:
                raise IngestError(f"ingest failed: {rejection_reason(error)}") from error
            finally:
                con.close()
    except lock.WarehouseBusy as error:
        raise IngestError(f"nothing landed: {error}") from error


def _ingest_each(
    con: duckdb.DuckDBPyConnection,
    files: list[Path],
    landing_dir: Path | None,
    loaded_at: datetime,
    show_progress: bool,
) -> IngestResult:
    """The per-file loop of `ingest_files`: skip, land or reject each file in name order."""
    result = IngestResult()
    known_hashes = {
        row[0] for row in con.execute("select content_hash from raw.landed_files").fetchall()
    }
    known_hashes |= {
        row[0]
        for row in con.execute("select content_hash from raw.landed_control_files").fetchall()
    }
    for path in tqdm(files, desc="ingest", unit="file", disable=not show_progress):
        fmt = file_format(path)
        name = display_name(path, landing_dir)
        try:
            content = read_content(path, fmt)
            content_hash = file_hash(content)
            if content_hash in known_hashes:
                result.skipped_files.append(name)
                continue
            try:
                rows, is_control = _land_file(con, path, fmt, name, content, loaded_at)
            except FATAL_DUCKDB_ERRORS as error:
                raise IngestError(
                    f"ingest stopped at {name} (files before it were landed): "
                    f"{rejection_reason(error)}"
                ) from error
            except duckdb.Error as error:
                raise FileRejected(rejection_reason(error), content) from error
        except FileRejected as rejection:
            _record_rejection(con, name, fmt, rejection, loaded_at)
            result.rejected_files.append((name, rejection.reason))
            continue
        known_hashes.add(content_hash)
        result.loaded_files.append(name)
        if is_control:
            result.control_rows += rows
        else:
            result.loaded_rows += rows
    return result


def _table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    """Whether a build has created the table yet: before the first build there is none."""
    return bool(
        con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchone()[0]
    )


def finalized_invoices_touching(con: duckdb.DuckDBPyConnection, file_id: int) -> list[str]:
    """Finalized invoices that may have billed a landed file's accepted rows.

    An invoice is final forever (architecture §6.5): withdrawing events it billed would leave the
    ledger disagreeing with the events and the tie-out failing every build. Conservatively,
    any finalized invoice of a customer with accepted rows in the file, finalized by a build
    that had seen the file, counts, unless it was voided (DECISIONLOG D48): a voided invoice
    bills nothing any more and its period's reissue is counted on its own, so a void followed
    by a withdrawal is how a file billed by mistake is taken back. Empty before the first
    build.
    """
    if not (_table_exists(con, *LEDGER_INVOICES) and _table_exists(con, *ROUTED_EVENTS)):
        return []
    not_voided = (
        "and invoices.invoice_id not in (select invoice_id from ledger.fct_invoice_voids)"
        if _table_exists(con, *LEDGER_VOIDS)
        else ""
    )
    rows = con.execute(
        f"""
        select distinct
            coalesce(invoices.invoice_number, invoices.invoice_id) || ' (' || invoices.customer_id
            || ', ' || strftime(invoices.billing_period_start, '%Y-%m') || ')'
        from ledger.fct_invoices_finalized as invoices
        where
            invoices.billed_through_file_id >= $file_id
            {not_voided}
            and invoices.customer_id in (
                select routed.customer_id
                from staging.stg_events__routed_events as routed
                where routed.file_id = $file_id and routed.event_status = 'accepted'
            )
        order by 1
        """,
        {"file_id": file_id},
    ).fetchall()
    return [row[0] for row in rows]


def withdraw_file(
    warehouse: Path,
    file_name: str,
    reason: str,
    file_id: int | None = None,
    withdrawn_at: datetime | None = None,
) -> Withdrawal:
    """Record a landed event file as withdrawn; the next build routes its rows to `withdrawn`.

    Its raw rows stay (nothing is deleted), so conservation still holds and the withdrawal
    can be audited. Refused when the name is ambiguous, the file is already withdrawn, or a
    finalized invoice may have billed its events (those are corrected with reversals).
    """
    reason = reason.strip()
    if not reason:
        raise IngestError("a withdrawal needs a reason (--reason TEXT)")
    withdrawn_at = withdrawn_at or datetime.now(UTC).replace(tzinfo=None)
    # A withdrawal between a build's rating and its ledger write would let that build
    # finalize invoices billing the withdrawn file: it waits for a running build (D70).
    try:
        with lock.exclusive_run(warehouse, "billing withdraw"):
            return _withdraw(warehouse, file_name, reason, file_id, withdrawn_at)
    except lock.WarehouseBusy as error:
        raise IngestError(f"nothing was withdrawn: {error}") from error


def _withdraw(
    warehouse: Path, file_name: str, reason: str, file_id: int | None, withdrawn_at: datetime
) -> Withdrawal:
    """`withdraw_file`'s checks and its one write, under the run lock."""
    con = connect_warehouse(warehouse)
    try:
        candidates = con.execute(
            "select file_id, file_name, content_hash, raw_row_count from raw.landed_files "
            "where file_name = ? and (? is null or file_id = ?) order by file_id",
            [file_name, file_id, file_id],
        ).fetchall()
        if not candidates:
            which = f" with file_id {file_id}" if file_id is not None else ""
            raise IngestError(f"no landed event file named {file_name!r}{which}")
        if len(candidates) > 1:
            ids = ", ".join(str(row[0]) for row in candidates)
            raise IngestError(
                f"{len(candidates)} landed files are named {file_name!r} (file_id {ids}): "
                "choose one with --file-id"
            )
        landed_id, name, content_hash, row_count = candidates[0]
        earlier = con.execute(
            "select withdrawn_at, reason from raw.withdrawn_files where file_id = ?",
            [landed_id],
        ).fetchone()
        if earlier:
            raise IngestError(
                f"{name} (file_id {landed_id}) was already withdrawn at {earlier[0]}: {earlier[1]}"
            )
        billed = finalized_invoices_touching(con, landed_id)
        if billed:
            listed = ", ".join(billed[:5]) + (
                f" and {len(billed) - 5} more" if len(billed) > 5 else ""
            )
            raise IngestError(
                f"cannot withdraw {name}: finalized invoices may have billed its events "
                f"({listed}); correct them with reversal events instead"
            )
        con.execute(
            "insert into raw.withdrawn_files (file_id, file_name, content_hash, reason, "
            "withdrawn_at) values (?, ?, ?, ?, ?)",
            [landed_id, name, content_hash, reason, withdrawn_at],
        )
    except duckdb.Error as error:
        raise IngestError(f"cannot withdraw {file_name}: {error}") from error
    finally:
        con.close()
    return Withdrawal(landed_id, name, content_hash, row_count, reason)


def _rollback_quietly(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back if a transaction is open; the error that got us here is the one to report."""
    with contextlib.suppress(duckdb.Error):
        con.rollback()
