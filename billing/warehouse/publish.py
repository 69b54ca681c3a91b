"""Publish: the marts copied to a read-only version for readers, behind one atomic pointer."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from billing.settings import Settings
from billing.warehouse import lock
from billing.warehouse.dbt import BuildError
from billing.warehouse.ledger import pending_invoice_count

PUBLISHED_SCHEMA = "marts"


def sql_string(text: str) -> str:
    """A SQL string literal: paths go into ATTACH and COPY, which take no parameters."""
    return "'" + text.replace("'", "''") + "'"


def sql_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


PUBLISHED_VERSIONS_KEPT = 3


def publish(settings: Settings) -> Path:
    """Write every mart to a new version folder, then swap one pointer to it (D47).

    A version is a read-only DuckDB file and a Parquet file per mart; `published` is a
    symlink to the current version, replaced by one atomic rename. A reader opens either
    the old set or the new one, never a mix, and a publish killed half way leaves only an
    unfinished version folder nobody points to. Readers never open the file builds write
    (DuckDB allows one writer), and a failed build never reaches this point.
    """
    pointer = settings.published_dir
    versions = pointer.parent / "published.versions"
    refuse_pending_finalization(settings.warehouse)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    partial = versions / f"{stamp}.partial"
    parquet_dir = partial / "parquet"
    parquet_dir.mkdir(parents=True)
    con = duckdb.connect()
    try:
        attach = f"attach {sql_string(settings.warehouse.as_posix())} as warehouse (read_only)"
        _waiting(lambda: con.execute(attach), settings.warehouse)
        con.execute(f"attach {sql_string((partial / 'marts.duckdb').as_posix())} as published")
        tables = [
            row[0]
            for row in con.execute(
                "select table_name from information_schema.tables "
                "where table_catalog = 'warehouse' and table_schema = ? order by table_name",
                [PUBLISHED_SCHEMA],
            ).fetchall()
        ]
        for table in tables:
            source = f"warehouse.{sql_identifier(PUBLISHED_SCHEMA)}.{sql_identifier(table)}"
            con.execute(
                f"create table published.main.{sql_identifier(table)} as select * from {source}"
            )
            parquet = sql_string((parquet_dir / f"{table}.parquet").as_posix())
            con.execute(f"copy {source} to {parquet} (format parquet)")
        con.execute("detach published")
    finally:
        con.close()
    link_invoice_documents(partial, settings)
    version = versions / stamp
    partial.rename(version)
    previous = pointer.resolve() if pointer.is_symlink() else None
    swap_pointer(pointer, version)
    prune_versions(versions, keep={version, previous})
    return version


def link_invoice_documents(version: Path, settings: Settings) -> None:
    """`invoices/` in a version is a relative link to the documents folder, which outlives
    every version: a document rendered once stays where finance found it (D80)."""
    documents = settings.invoice_documents_dir
    documents.mkdir(parents=True, exist_ok=True)
    target = Path(os.path.relpath(documents, version))
    (version / "invoices").symlink_to(target, target_is_directory=True)


def refuse_pending_finalization(warehouse: Path) -> None:
    """Never publish invoices the marts show as finalized before the ledger committed them.

    After a failed gate or ledger refusal the marts still show that build's pending
    invoices as finalized (macro ledger_after_this_build); a later publish (the daily
    job's, say) must not hand those to finance.
    """
    with _waiting(lambda: duckdb.connect(str(warehouse), read_only=True), warehouse) as con:
        pending = pending_invoice_count(con)
    if pending:
        raise BuildError(
            f"not published: {pending} invoice(s) of the last invoicing build were never "
            "finalized (a gate or the ledger check failed); run `billing build` or the "
            "monthly job again once it passes"
        )


def _waiting(open_file, warehouse: Path):
    """`open_file()`, waiting while another process writes the warehouse (D70)."""
    try:
        return lock.wait_for_file(open_file, warehouse)
    except lock.WarehouseBusy as error:
        raise BuildError(f"not published: {error}") from error


def swap_pointer(pointer: Path, version: Path) -> None:
    """Point `published` at `version` with one rename; a pre-pointer folder moves aside once."""
    if pointer.exists() and not pointer.is_symlink():
        pointer.rename(pointer.with_name(f"published.before-{datetime.now(UTC):%Y%m%dT%H%M%S}"))
    staged = pointer.with_name("published.next")
    staged.unlink(missing_ok=True)
    staged.symlink_to(version.relative_to(pointer.parent), target_is_directory=True)
    os.replace(staged, pointer)


def prune_versions(versions: Path, keep: set) -> None:
    """Keep the newest complete versions, always the current and the previous one (a
    reader may still hold it open); unfinished `.partial` folders of killed publishes go."""
    complete = sorted(p for p in versions.iterdir() if p.is_dir() and p.suffix != ".partial")
    newest = set(complete[-PUBLISHED_VERSIONS_KEPT:])
    for folder in versions.iterdir():
        if folder.is_dir() and folder not in newest and folder not in keep:
            shutil.rmtree(folder, ignore_errors=True)


def connect_published(settings: Settings) -> duckdb.DuckDBPyConnection:
    """A short-lived read-only connection to the published marts."""
    if not settings.published_warehouse.exists():
        raise BuildError(
            f"no published warehouse at {settings.published_warehouse}: run `billing build` first"
        )
    return duckdb.connect(str(settings.published_warehouse), read_only=True)
