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
    # 0.1 + 0.2 + 0.4 + 0.8 + 1.6 = 3.1 s, then only the 1.9 s left: the last attempt is
    # at the deadline, and then it gives up.
    assert [round(pause, 6) for pause in fake.slept] == [0.1, 0.2, 0.4, 0.8, 1.6, 1.9]
    assert (fake.now, calls["n"], len(said)) == (5.0, 7, 1)


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


def run_lock_holder(warehouse: Path) -> subprocess.Popen:
    """A process holding the run lock as a build between two steps does: no DuckDB lock."""
    return holder(
        "from pathlib import Path",
        "from billing.warehouse.lock import exclusive_run",
        f"run = exclusive_run(Path({str(warehouse)!r}), 'billing build')",
        "run.__enter__()",
    )


@pytest.mark.parametrize("held_by", ["a DuckDB connection", "a build's run lock"])
def test_an_ingest_meeting_a_held_warehouse_waits_then_lands(landing, held_by):
    warehouse = landing["warehouse"]
    if held_by == "a DuckDB connection":
        held = duckdb_holder(warehouse)
        holder_text = f"PID {held.pid} (a build or another run)"
    else:
        held = run_lock_holder(warehouse)
        holder_text = f"billing build (PID {held.pid})"
    try:
        ingest = billing("ingest", env={**landing["env"], "BILLING_LOCK_TIMEOUT": "600"})
        # Released only once the ingest says it is waiting: nothing here depends on timing.
        assert ingest.stderr.readline() == (
            f"waiting for the warehouse {warehouse}: held by {holder_text}; "
            "up to 600 s (BILLING_LOCK_TIMEOUT)\n"
        )
    finally:
        held.communicate("")
    _, err = ingest.communicate(timeout=600)
    assert ingest.returncode == 0, err
    assert landed_rows(warehouse) == 2


def test_an_ingest_refused_by_a_build_lands_at_once_after_that_build_is_killed(landing):
    warehouse = landing["warehouse"]
    build = run_lock_holder(warehouse)
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
    assert err.strip().splitlines() == [
        f"billing quality: error: nothing checked: the warehouse {landing['warehouse']} is "
        f"held by PID {held.pid} (a build or another run) and was not released within 0 s "
        "(BILLING_LOCK_TIMEOUT); try again when it has finished"
    ]


def test_the_run_lock_is_not_taken_twice_by_one_process(tmp_path):
    warehouse = tmp_path / "w.duckdb"
    with (
        lock.exclusive_run(warehouse, "billing build"),
        pytest.raises(RuntimeError, match="already holds the run lock"),
        lock.exclusive_run(warehouse, "billing ingest"),
    ):
        pass
    with lock.exclusive_run(warehouse, "billing ingest"):  # released: taken again at once
        pass


def test_a_run_lock_that_cannot_be_opened_is_one_line(tmp_path):
    folder = tmp_path / "w.duckdb.run.lock"
    folder.mkdir()  # a directory where the lock file should be
    with (
        pytest.raises(lock.WarehouseBusy) as refused,
        lock.exclusive_run(tmp_path / "w.duckdb", "billing build"),
    ):
        pass
    assert str(refused.value) == f"cannot open the run lock {folder}: Is a directory"


class FakeRun:
    """What dbtRunner.invoke returns, as run_dbt reads it."""

    def __init__(self, success: bool, messages=()):
        self.success, self.exception = success, None
        self.result = type("Results", (), {"results": [FakeNode(m) for m in messages]})()


class FakeNode:
    def __init__(self, message: str):
        self.message, self.status = message, "error"
        self.node = type("Node", (), {"name": "customers", "resource_type": "seed"})()


def fake_dbt(monkeypatch, runs: list) -> list:
    """dbtRunner replaced by one returning `runs` in turn; returns the invocations."""
    import dbt.cli.main

    invoked: list = []

    class Runner:
        def __init__(self, callbacks=None):
            pass

        def invoke(self, args):
            invoked.append(args)
            return runs[len(invoked) - 1]

    monkeypatch.setattr(dbt.cli.main, "dbtRunner", Runner)
    return invoked


def test_a_dbt_run_that_could_not_open_the_warehouse_waits_and_runs_again(
    monkeypatch, tmp_path, capsys
):
    """A reader taking the file between prepare_run and dbt's own open fails dbt at its
    first node, before anything ran; run_dbt says it waits and runs dbt again (D70)."""
    from billing.settings import Settings
    from billing.warehouse.dbt import run_dbt

    invoked = fake_dbt(
        monkeypatch, [FakeRun(False, [f"Runtime Error\n  {LOCK_ERROR}"]), FakeRun(True)]
    )
    monkeypatch.setenv("BILLING_LOCK_TIMEOUT", "60")
    settings = Settings(tmp_path / "w.duckdb", tmp_path / "landing", PROJECT_DIR / "seeds")
    assert run_dbt(["build"], settings) == []
    assert len(invoked) == 2
    assert "held by PID 4242 (a build or another run); up to 60 s" in capsys.readouterr().err


def test_a_dbt_failure_that_is_not_a_lock_is_not_run_again(monkeypatch, tmp_path):
    from billing.settings import Settings
    from billing.warehouse.dbt import BuildError, run_dbt

    invoked = fake_dbt(monkeypatch, [FakeRun(False, ["Binder Error: column x does not exist"])])
    settings = Settings(tmp_path / "w.duckdb", tmp_path / "landing", PROJECT_DIR / "seeds")
    with pytest.raises(BuildError, match="dbt build failed: customers"):
        run_dbt(["build"], settings)
    assert len(invoked) == 1
