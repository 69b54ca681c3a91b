"""Fault injection (D72): a run killed with -9 at each point it can die, then a normal run,
gives every mart, the ledger and the published copy an uninterrupted run gives, and
leaves nothing unfinished behind.

Each kill happens in its own process, inside the real `billing` code path (`build`,
`ingest_files`), by `os._exit(137)`: no commit, no cleanup, no flush, as `kill -9`. One case
runs in every `make test`; the rest are marked `faults` (CI=true or `make test-faults`).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest
from conftest import query

from billing.landing import ingest_files
from billing.sample.generate import GenerateOptions, generate
from billing.settings import Settings
from billing.warehouse.build import build
from billing.warehouse.lock import run_lock_path
from billing.warehouse.publish import PUBLISHED_VERSIONS_KEPT

AS_OF = "2026-11-05T00:00:00Z"  # September and October finalize, November stays a draft
LOADED_AT = datetime(2026, 11, 1, 6, 0, 0)  # every ingest here lands at the same instant
OPTIONS = GenerateOptions(
    events=3_000, customers=6, months=2, first_month=date(2026, 9, 1), seed=17, spikes=0
)
# Columns that say when or by which process a row was written, not what it says.
RUN_STAMPS = {"recorded_at", "build_id"}

KILLER = """
import os, sys
from datetime import datetime
from pathlib import Path
from billing.settings import Settings

point, warehouse, landing, seeds, as_of, loaded_at = sys.argv[1:]
settings = Settings(Path(warehouse), Path(landing), Path(seeds))
kind, _, arg = point.partition(":")

def die(*_args, **_kwargs):
    os._exit(137)  # as kill -9: no commit, no cleanup, no flush

class Dying:
    \"\"\"A DuckDB connection that dies right after its n-th call of `method` matching `text`.\"\"\"
    def __init__(self, con, method, text, n):
        self._con, self._method, self._text, self._left = con, method, text, n
    def __getattr__(self, name):
        attribute = getattr(self._con, name)
        if name != self._method:
            return attribute
        def counted(*args, **kwargs):
            if self._text in (str(args[0]) if args else ""):
                self._left -= 1
                if self._left == 0 and self._method == "commit":
                    die()
            result = attribute(*args, **kwargs)
            if self._left == 0:
                die()
            return result
        return counted

if kind == "node":  # right after dbt finished the node `arg`
    import dbt.cli.main as dbt_main
    def kill(event):
        if event.info.name == "NodeFinished" and event.data.node_info.node_name == arg:
            die()
    class Killing(dbt_main.dbtRunner):
        def __init__(self, manifest=None, callbacks=None):
            super().__init__(manifest=manifest, callbacks=[*(callbacks or []), kill])
    dbt_main.dbtRunner = Killing
elif kind == "gates":  # while the quality gates run
    import billing.quality
    billing.quality.run_quality = die
elif kind == "ledger":  # after the n-th of the three ledger inserts, before the commit
    import billing.warehouse.build as build_module
    finalize = build_module.finalize
    build_module.finalize = lambda con, build_id: finalize(
        Dying(con, "execute", "insert into", int(arg)), build_id
    )
elif kind == "publish":  # after the ledger committed, before publish
    import billing.warehouse.build as build_module
    build_module.publish = die
elif kind == "copy":  # publish, after `arg` marts were copied to the new version
    import billing.warehouse.publish as publish_module
    quote = publish_module.sql_string
    calls = {"n": 0}
    def counting(text):
        calls["n"] += 1
        if calls["n"] == 3 + int(arg):  # two ATTACHes, then one Parquet path per mart
            die()
        return quote(text)
    publish_module.sql_string = counting
elif kind == "swap":  # publish, the new version complete, the pointer not yet moved
    import billing.warehouse.publish as publish_module
    publish_module.swap_pointer = die
elif kind == "ingest":  # ingest, at the n-th file's commit (its rows inserted)
    import billing.landing as landing_module
    connect = landing_module.connect_warehouse
    landing_module.connect_warehouse = lambda path: Dying(connect(path), "commit", "", int(arg))

if kind == "ingest":
    from billing.landing import ingest_files
    ingest_files(settings.warehouse, [settings.landing_dir], settings.landing_dir,
                 loaded_at=datetime.fromisoformat(loaded_at))
else:
    from billing.warehouse.build import build
    build(settings, as_of, verbose=False)
sys.exit(3)  # the kill point was never reached: the test must fail
"""


def killed(settings: Settings, point: str) -> subprocess.CompletedProcess:
    """Run `point`'s step in its own process and kill it there (exit status 137)."""
    paths = [str(settings.warehouse), str(settings.landing_dir), str(settings.seeds_dir)]
    return subprocess.run(
        [sys.executable, "-c", KILLER, point, *paths, AS_OF, LOADED_AT.isoformat()],
        check=False,
        capture_output=True,
        text=True,
    )


def ingest(settings: Settings) -> None:
    ingest_files(settings.warehouse, [settings.landing_dir], settings.landing_dir, LOADED_AT)


def stamped_columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> str:
    """`* exclude (...)` of the run stamps a table has, or `*`."""
    columns = {
        name
        for (name,) in con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchall()
    }
    stamps = sorted(columns & RUN_STAMPS)
    return f"* exclude ({', '.join(stamps)})" if stamps else "*"


def rows_of(path: Path, schemas: tuple[str, ...]) -> dict:
    """Every row of every table in `schemas`, in a stable order, without run stamps."""
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables "
            f"where table_schema in ({', '.join('?' for _ in schemas)}) order by all",
            list(schemas),
        ).fetchall()
        return {
            f"{schema}.{table}": con.execute(
                f'select {stamped_columns(con, schema, table)} from "{schema}"."{table}" '
                "order by all"
            ).fetchall()
            for schema, table in tables
        }


def parquet_rows(folder: Path) -> dict:
    """Every row of every published Parquet file, by file name, without run stamps."""
    with duckdb.connect() as con:
        found = {}
        for path in sorted(folder.glob("*")):
            source = f"read_parquet('{path.as_posix()}')"
            columns = {row[0] for row in con.execute(f"describe select * from {source}").fetchall()}
            stamps = sorted(columns & RUN_STAMPS)
            picked = f"* exclude ({', '.join(stamps)})" if stamps else "*"
            found[path.name] = con.execute(f"select {picked} from {source} order by all").fetchall()
        return found


def state(settings: Settings) -> dict:
    """What a run leaves: raw, marts and the ledger, the published marts, and the files
    beside the warehouse (unfinished versions, temporary files, a left-over WAL)."""
    root = settings.warehouse.parent
    published = settings.published_warehouse
    return {
        "warehouse": rows_of(settings.warehouse, ("raw", "marts", "ledger")),
        "published": rows_of(published, ("main",)) if published.exists() else None,
        "parquet": parquet_rows(settings.published_dir / "parquet"),
        "unfinished": sorted(
            str(p.relative_to(root))
            for p in root.rglob("*")
            if p.suffix in {".partial", ".tmp", ".wal"} or p.name.endswith(".duckdb.tmp")
        ),
    }


def differences(left: dict, right: dict) -> dict:
    """Where two states differ: per table, a few rows only one side has; {} when equal."""
    found = {}
    for part in left.keys() | right.keys():
        one, other = left.get(part), right.get(part)
        if isinstance(one, dict) and isinstance(other, dict):
            for table in one.keys() | other.keys():
                mine, theirs = one.get(table, []), other.get(table, [])
                if mine != theirs:
                    found[f"{part}:{table}"] = (
                        [row for row in mine if row not in theirs][:3],
                        [row for row in theirs if row not in mine][:3],
                    )
        elif one != other:
            found[part] = (one, other)
    return found


def fresh_copy(origin: Settings, root: Path, with_warehouse: bool) -> Settings:
    """A new folder with the scenario's landing files and seeds, and (`with_warehouse`)
    the landed but unbuilt warehouse."""
    root.mkdir(parents=True)
    copy = Settings(root / "warehouse.duckdb", origin.landing_dir, origin.seeds_dir)
    if with_warehouse:
        shutil.copyfile(origin.warehouse, copy.warehouse)
    return copy


@pytest.fixture(scope="module")
def scenario(workspace, tmp_path_factory):
    """Two generated months landed once (the template every case starts from), and the
    state an uninterrupted build of them leaves."""
    root = tmp_path_factory.mktemp("faults")
    generate(OPTIONS, workspace.landing_dir, workspace.seeds_dir, root / "record.json")
    ingest(workspace)
    landed = state(workspace)
    reference = fresh_copy(workspace, root / "reference", with_warehouse=True)
    outcome = build(reference, AS_OF, verbose=False)
    assert outcome.finalized.invoices > 0 and outcome.finalized.lines > 0
    return {"root": root, "template": workspace, "landed": landed, "built": state(reference)}


def test_the_reference_run_finalizes_both_months_and_leaves_nothing_unfinished(scenario):
    built = scenario["built"]
    periods = query(
        scenario["root"] / "reference" / "warehouse.duckdb",
        "select distinct strftime(billing_period_start, '%Y-%m') "
        "from ledger.fct_invoices_finalized order by 1",
    )
    assert periods == [("2026-09",), ("2026-10",)]
    assert built["unfinished"] == []
    assert built["published"]["main.fct_invoices"] == built["warehouse"]["marts.fct_invoices"]


BUILD_KILLS = [
    "node:customers",  # a seed
    "node:stg_events__parsed_events",  # staging
    "node:int_events_metered",  # metering
    "node:int_invoices_credited",  # rating and invoice assembly
    "node:snap_invoices",  # an audit snapshot
    "gates",  # the Great Expectations gates
    "ledger:1",  # between the ledger's first and second writes
    "ledger:2",  # between the second and third
    "ledger:3",  # after the third, before the commit
    "publish",  # after the commit, before publish
    "copy:1",  # publish, one mart copied
    "swap",  # publish, the new version written, the pointer not moved
]
# Kill points after the ledger's transaction committed.
AFTER_COMMIT = {"publish", "copy:1", "swap"}
INVOICE_TABLES = (
    "marts.fct_invoices",
    "marts.fct_invoice_line_items",
    "ledger.fct_invoices_finalized",
    "ledger.fct_invoice_line_items_finalized",
    "ledger.fct_credit_applications_finalized",
)


def built_twice(scenario: dict) -> dict:
    """The state an uninterrupted build leaves after one more build with nothing new
    (built once per module, on first use)."""
    if "built_twice" not in scenario:
        settings = fresh_copy(scenario["template"], scenario["root"] / "built-twice", False)
        shutil.copyfile(scenario["root"] / "reference" / "warehouse.duckdb", settings.warehouse)
        build(settings, AS_OF, verbose=False)
        scenario["built_twice"] = state(settings)
    return scenario["built_twice"]


# The one case every `make test` runs: the ledger's own transaction, killed between writes.
LOCAL = "ledger:1"


@pytest.mark.parametrize(
    "point",
    [
        pytest.param(point, marks=() if point == LOCAL else pytest.mark.faults)
        for point in BUILD_KILLS
    ],
)
def test_a_build_killed_then_run_again_leaves_what_an_uninterrupted_build_leaves(scenario, point):
    settings = fresh_copy(scenario["template"], scenario["root"] / point, with_warehouse=True)
    died = killed(settings, point)
    assert died.returncode == 137, died.stdout[-2000:] + died.stderr[-2000:]
    if point.startswith("ledger:"):
        # The transaction never committed: the ledger is as empty as before the build.
        ledger = rows_of(settings.warehouse, ("ledger",))
        assert {table: rows for table, rows in ledger.items() if rows} == {}
    build(settings, AS_OF, verbose=False)
    after = state(settings)
    if point in AFTER_COMMIT:
        # The killed build's ledger transaction committed: that build finalized September
        # and October, and the run after it is their next build. The period tie-out says a
        # month is finalized from the build after the one that finalized it (its
        # `is_finalized`, `billed_through_file_id`, D67), so the state to match is an
        # uninterrupted build's next build; the invoices, lines and ledger match the
        # uninterrupted build itself.
        assert differences(after, built_twice(scenario)) == {}
        for table in INVOICE_TABLES:
            assert after["warehouse"][table] == scenario["built"]["warehouse"][table], table
    else:
        assert differences(after, scenario["built"]) == {}
    versions = [p for p in (settings.warehouse.parent / "published.versions").iterdir()]
    assert len(versions) <= PUBLISHED_VERSIONS_KEPT
    assert os.path.realpath(settings.published_dir) == str(max(versions))


@pytest.mark.faults
@pytest.mark.parametrize("point", ["ingest:1", "ingest:3"])
def test_an_ingest_killed_mid_file_or_mid_batch_then_run_again_lands_everything_once(
    scenario, point
):
    """ingest:1 dies with the first file's rows inserted and not committed (mid-file);
    ingest:3 with two files landed and the third's rows not committed (mid-batch)."""
    settings = fresh_copy(scenario["template"], scenario["root"] / point, with_warehouse=False)
    died = killed(settings, point)
    assert died.returncode == 137, died.stdout[-2000:] + died.stderr[-2000:]
    files = (
        "select (select count(*) from raw.landed_files) "
        "+ (select count(*) from raw.landed_control_files)"
    )
    assert query(settings.warehouse, files) == [(int(point.split(":")[1]) - 1,)]
    ingest(settings)
    assert state(settings)["warehouse"] == scenario["landed"]["warehouse"]
    build(settings, AS_OF, verbose=False)
    assert state(settings) == scenario["built"]


def routed_counts(warehouse: Path) -> dict:
    return dict(
        query(
            warehouse,
            "select event_status, count(*) from staging.stg_events__routed_events group by all",
        )
    )


def test_replayed_files_change_no_invoice_and_no_accepted_count(scenario, tmp_path):
    """After September and October are finalized, a producer sends again: the same files
    under their names and other names, gzipped and un-gzipped, and one day's accepted
    events re-split into two other files in another order. Copies of a landed file add no
    row (same content); the re-split lines land and each is a duplicate; nothing is billed
    twice and the ledger gains nothing."""
    settings = fresh_copy(scenario["template"], scenario["root"] / "replay", with_warehouse=False)
    shutil.copyfile(scenario["root"] / "reference" / "warehouse.duckdb", settings.warehouse)
    landing = settings.landing_dir
    resent = tmp_path / "resent"
    resent.mkdir()
    shutil.copyfile(landing / "events-2026-09-01.jsonl", resent / "events-2026-09-01.jsonl")
    shutil.copyfile(landing / "events-2026-09-01.jsonl", resent / "copy-of-sept-first.jsonl")
    (resent / "events-2026-09-02.jsonl.gz").write_bytes(
        gzip.compress((landing / "events-2026-09-02.jsonl").read_bytes())
    )
    first_gz = sorted(landing.glob("events-*.jsonl.gz"))[0]
    (resent / first_gz.name.removesuffix(".gz")).write_bytes(gzip.decompress(first_gz.read_bytes()))
    accepted = [
        line
        for (line,) in query(
            settings.warehouse,
            "select raw.raw_line from raw.raw_events as raw "
            "inner join staging.stg_events__routed_events as routed "
            "on raw.file_name = routed.file_name and raw.line_number = routed.line_number "
            "where raw.file_name = 'events-2026-09-03.jsonl' and routed.event_status = 'accepted' "
            "order by raw.line_number desc",
        )
    ]
    half = len(accepted) // 2
    (resent / "resplit-a.jsonl").write_text("".join(line + "\n" for line in accepted[:half]))
    (resent / "resplit-b.jsonl").write_text("".join(line + "\n" for line in accepted[half:]))
    before = routed_counts(settings.warehouse)
    raw = "select count(*) from raw.raw_events"
    raw_before = query(settings.warehouse, raw)[0][0]

    ingest_files(settings.warehouse, [resent], resent, LOADED_AT)
    build(settings, AS_OF, verbose=False)

    assert len(accepted) > 20
    assert query(settings.warehouse, raw)[0][0] == raw_before + len(accepted)
    after = routed_counts(settings.warehouse)
    assert after == {**before, "duplicate": before["duplicate"] + len(accepted)}
    built = state(settings)["warehouse"]
    reference = scenario["built"]["warehouse"]
    for table in INVOICE_TABLES:
        assert built[table] == reference[table], table


def cli_build(settings: Settings, log: Path) -> subprocess.Popen:
    """`billing build` in its own process on `settings`' files; its output in `log`.out/err
    (files, not pipes: two builds' progress bars must never block on a full pipe)."""
    with log.with_suffix(".out").open("w") as out, log.with_suffix(".err").open("w") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "billing.cli", "build", "--as-of", AS_OF],
            env={
                **os.environ,
                "BILLING_WAREHOUSE": str(settings.warehouse),
                "BILLING_LANDING_DIR": str(settings.landing_dir),
                "BILLING_SEEDS_DIR": str(settings.seeds_dir),
                "BILLING_LOCK_TIMEOUT": "900",
            },
            stdout=out,
            stderr=err,
            text=True,
        )


@pytest.mark.faults
def test_two_builds_at_once_run_one_after_the_other_and_bill_once(scenario):
    settings = fresh_copy(scenario["template"], scenario["root"] / "two-builds", True)
    logs = settings.warehouse.parent
    first = cli_build(settings, logs / "first")
    lock_file = run_lock_path(settings.warehouse)
    # The second starts once the first holds the run lock (a state, not a time).
    while not (lock_file.exists() and f"(PID {first.pid})" in lock_file.read_text()):
        assert first.poll() is None, (logs / "first.err").read_text()
        time.sleep(0.2)
    second = cli_build(settings, logs / "second")
    assert (second.wait(timeout=1800), first.wait(timeout=1800)) == (0, 0), (
        logs / "first.err"
    ).read_text() + (logs / "second.err").read_text()
    waited = (logs / "second.err").read_text()
    assert f"held by billing build (PID {first.pid}); up to 900 s" in waited
    assert "finalized no invoices" in (logs / "second.out").read_text()  # the first did
    after = state(settings)
    assert differences(after, built_twice(scenario)) == {}  # two builds, one after the other
    for table in INVOICE_TABLES:
        assert after["warehouse"][table] == scenario["built"]["warehouse"][table], table


def published_view(path_or_con) -> tuple:
    """What a finance reader sees: the invoices and the landed files."""
    sql = (
        "select (select list((invoice_id, total_amount) order by invoice_id) from fct_invoices), "
        "(select list(file_name order by file_name) from fct_landed_files)"
    )
    if isinstance(path_or_con, Path):
        return query(path_or_con, sql)[0]
    return path_or_con.execute(sql).fetchone()


@pytest.mark.faults
def test_a_reader_holding_the_published_copy_keeps_one_whole_build_during_a_publish(scenario):
    origin = scenario["root"] / "reference"
    settings = fresh_copy(scenario["template"], scenario["root"] / "reader", False)
    shutil.copyfile(origin / "warehouse.duckdb", settings.warehouse)
    shutil.copytree(origin / "published.versions", settings.warehouse.parent / "published.versions")
    settings.published_dir.symlink_to((origin / "published").readlink())
    old_version = settings.published_warehouse.resolve()
    before = published_view(settings.published_warehouse)
    # One more file, so the next build publishes other numbers.
    line = query(
        settings.warehouse,
        "select raw.raw_line from raw.raw_events as raw "
        "inner join staging.stg_events__routed_events as routed "
        "on raw.file_name = routed.file_name and raw.line_number = routed.line_number "
        "where routed.event_status = 'accepted' order by all limit 1",
    )[0][0]
    event = json.loads(line)
    event.update(event_id="late-reader-1", timestamp="2026-11-02T10:00:00Z")
    extra = scenario["root"] / "reader-landing"
    extra.mkdir()
    (extra / "events-2026-11-02-late.jsonl").write_text(json.dumps(event) + "\n")
    ingest_files(settings.warehouse, [extra], extra, datetime(2026, 11, 3))  # after the event

    reader = duckdb.connect(str(settings.published_warehouse), read_only=True)
    try:
        build(settings, AS_OF, verbose=False)
        # The open reader still sees the whole build it opened, nothing of the new one.
        assert published_view(reader) == before
    finally:
        reader.close()
    after = published_view(settings.published_warehouse)
    assert settings.published_warehouse.resolve() != old_version and old_version.exists()
    assert after[1] == sorted([*before[1], "events-2026-11-02-late.jsonl"])
    assert published_view(old_version) == before
