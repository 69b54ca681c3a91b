"""Waiting for a held warehouse (D70): bounded, said once, then one line; no stale lock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from billing.settings import PROJECT_DIR
from billing.warehouse import lock

BILLING = [sys.executable, "-m", "billing.cli"]
LOCK_ERROR = (
    'IO Error: Could not set lock on file "/data/w.duckdb": Conflicting lock is held in '
    "/usr/bin/python3.11 (PID 4242) by user root. See also "
    "https://duckdb.org/docs/stable/connect/concurrency"
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(None, 300.0), ("", 300.0), ("  ", 300.0), ("0", 0.0), ("2.5", 2.5), ("3600", 3600.0)],
)
def test_the_wait_is_five_minutes_unless_set(text, seconds):
    environment = {} if text is None else {"BILLING_LOCK_TIMEOUT": text}
    assert lock.lock_timeout(environment) == seconds


@pytest.mark.parametrize("text", ["abc", "-1", "inf", "nan", "5s"])
def test_a_wait_that_is_not_seconds_is_one_line(text):
    with pytest.raises(lock.WarehouseBusy) as refused:
        lock.lock_timeout({"BILLING_LOCK_TIMEOUT": text})
    assert str(refused.value) == (
        f"BILLING_LOCK_TIMEOUT must be a number of seconds, 0 or more, got {text!r}"
    )


def test_attempts_back_off_to_two_seconds():
    waits = lock.pauses()
    assert [next(waits) for _ in range(8)] == [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0]


class FakeTime:
    """A clock that moves only when slept on, so waits are checked without waiting."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def held_for(attempts: int):
    """An open that finds the file held `attempts` times, then opens it."""
    calls = {"n": 0}

    def open_file() -> str:
        calls["n"] += 1
        if calls["n"] <= attempts:
            raise duckdb.IOException(LOCK_ERROR)
        return "connection"

    return open_file, calls


def test_a_held_file_is_waited_for_and_the_wait_said_once():
    fake, said = FakeTime(), []
    open_file, calls = held_for(3)
    opened = lock.wait_for_file(
        open_file,
        Path("/data/w.duckdb"),
        timeout=60,
        say=said.append,
        clock=fake.clock,
        sleep=fake.sleep,
    )
    assert (opened, calls["n"], fake.slept) == ("connection", 4, [0.1, 0.2, 0.4])
    assert said == [
        "waiting for the warehouse /data/w.duckdb: held by PID 4242 (a build or another run); "
        "up to 60 s (BILLING_LOCK_TIMEOUT)"
    ]


def test_a_file_held_past_the_wait_is_one_line_naming_the_holder():
    fake, said = FakeTime(), []
    open_file, calls = held_for(1000)
    with pytest.raises(lock.WarehouseBusy) as busy:
        lock.wait_for_file(
            open_file,
            Path("/data/w.duckdb"),
            timeout=5,
            say=said.append,
            clock=fake.clock,
            sleep=fake.sleep,
        )
    assert str(busy.value) == (
        "the warehouse /data/w.duckdb is held by PID 4242 (a build or another run) and was "
        "not released within 5 s (BILLING_LOCK_TIMEOUT); try again when it has finished"
    )
    # 0.1 + 0.2 + 0.4 + 0.8 + 1.6 = 3.1 s slept; the next 2 s pause would pass 5 s.
    assert (fake.slept, calls["n"], len(said)) == ([0.1, 0.2, 0.4, 0.8, 1.6], 6, 1)


def test_no_wait_means_one_attempt_and_no_waiting_line():
    fake, said = FakeTime(), []
    open_file, calls = held_for(1)
    with pytest.raises(lock.WarehouseBusy):
        lock.wait_for_file(
            open_file, Path("/w"), timeout=0, say=said.append, clock=fake.clock, sleep=fake.sleep
        )
    assert (calls["n"], fake.slept, said) == (1, [], [])


def test_any_other_open_error_is_raised_at_once():
    fake = FakeTime()

    def corrupt() -> None:
        raise duckdb.IOException('IO Error: The file "/w" exists, but it is not a valid file')

    with pytest.raises(duckdb.IOException, match="not a valid file"):
        lock.wait_for_file(corrupt, Path("/w"), timeout=60, clock=fake.clock, sleep=fake.sleep)
    assert fake.slept == []


def holder(*code: str) -> subprocess.Popen:
    """A process that holds something on the warehouse until its stdin closes."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "\n".join([*code, "import sys", "print('ready', flush=True)", "sys.stdin.read()"]),
        ],
        cwd=PROJECT_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "ready"
    return process


def duckdb_holder(warehouse: Path) -> subprocess.Popen:
    return holder("import duckdb", f"con = duckdb.connect({str(warehouse)!r})")


def billing(*args: str, env: dict, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [*BILLING, *args],
        cwd=PROJECT_DIR,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


@pytest.fixture
def landing(tmp_path) -> dict:
    """A warehouse path and a landing folder with one file of two events."""
    folder = tmp_path / "landing"
    folder.mkdir()
    lines = [
        {
            "event_id": f"e{n}",
            "customer_id": "cus_1",
            "event_type": "api_call",
            "timestamp": "2026-10-01T10:00:00Z",
            "properties": {"endpoint": "/v1/x"},
        }
        for n in (1, 2)
    ]
    (folder / "events.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    warehouse = tmp_path / "w.duckdb"
    return {
        "warehouse": warehouse,
        "env": {"BILLING_WAREHOUSE": str(warehouse), "BILLING_LANDING_DIR": str(folder)},
    }


def landed_rows(warehouse: Path) -> int:
    """Raw event rows in the warehouse; 0 when ingest never got to create the table."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'raw' and table_name = 'raw_events'"
        ).fetchone()[0]
        return con.execute("select count(*) from raw.raw_events").fetchone()[0] if tables else 0


def test_an_ingest_during_a_held_warehouse_waits_then_lands(landing):
    held = duckdb_holder(landing["warehouse"])
    try:
        ingest = billing("ingest", env={**landing["env"], "BILLING_LOCK_TIMEOUT": "600"})
        # Released only once the ingest says it is waiting: nothing here depends on timing.
        waiting = ingest.stderr.readline()
        assert waiting.startswith(f"waiting for the warehouse {landing['warehouse']}: held by PID ")
        assert f"PID {held.pid} (a build or another run); up to 600 s" in waiting
    finally:
        held.communicate("")
    _, err = ingest.communicate(timeout=600)
    assert ingest.returncode == 0, err
    assert landed_rows(landing["warehouse"]) == 2


def test_an_ingest_that_waited_too_long_fails_in_one_line_and_lands_nothing(landing):
    held = duckdb_holder(landing["warehouse"])
    try:
        ingest = billing("ingest", env={**landing["env"], "BILLING_LOCK_TIMEOUT": "1"})
        _, err = ingest.communicate(timeout=600)
    finally:
        held.communicate("")
    assert ingest.returncode == 2
    lines = err.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in err
    assert lines[0].startswith("waiting for the warehouse")
    assert lines[1] == (
        f"billing ingest: error: nothing landed: the warehouse {landing['warehouse']} is held "
        f"by PID {held.pid} (a build or another run) and was not released within 1 s "
        "(BILLING_LOCK_TIMEOUT); try again when it has finished"
    )
    assert landed_rows(landing["warehouse"]) == 0


def test_an_ingest_waits_for_a_whole_build_and_a_killed_build_leaves_no_lock(landing):
    # A build between two steps holds no DuckDB lock, only the run lock beside the file.
    warehouse = landing["warehouse"]
    build = holder(
        "from pathlib import Path",
        "from billing.warehouse.lock import exclusive_run",
        f"run = exclusive_run(Path({str(warehouse)!r}), 'billing build')",
        "run.__enter__()",
    )
    ingest = billing("ingest", env={**landing["env"], "BILLING_LOCK_TIMEOUT": "0"})
    _, err = ingest.communicate(timeout=600)
    assert ingest.returncode == 2
    assert err.strip().splitlines() == [
        f"billing ingest: error: nothing landed: the warehouse {warehouse} is held by "
        f"billing build (PID {build.pid}) and was not released within 0 s "
        "(BILLING_LOCK_TIMEOUT); try again when it has finished"
    ]
    # kill -9: the kernel drops the flock with the process, so nothing stale remains.
    os.kill(build.pid, signal.SIGKILL)
    build.wait()
    ingest = billing("ingest", env={**landing["env"], "BILLING_LOCK_TIMEOUT": "0"})
    _, err = ingest.communicate(timeout=600)
    assert ingest.returncode == 0, err
    assert "waiting" not in err
    assert landed_rows(warehouse) == 2
    assert lock.run_lock_path(warehouse).read_text() == f"billing ingest (PID {ingest.pid})\n"


def test_quality_waits_for_a_writer_and_says_so_in_one_line(landing):
    ingest = billing("ingest", env=landing["env"])
    ingest.communicate(timeout=600)
    assert ingest.returncode == 0
    held = duckdb_holder(landing["warehouse"])
    try:
        quality = billing("quality", env={**landing["env"], "BILLING_LOCK_TIMEOUT": "0"})
        _, err = quality.communicate(timeout=600)
    finally:
        held.communicate("")
    assert quality.returncode == 2
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith(
            f"billing quality: error: nothing checked: the warehouse {landing['warehouse']} is "
            f"held by PID {held.pid}"
        )
    )
