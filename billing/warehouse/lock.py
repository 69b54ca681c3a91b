"""Waiting for the warehouse file instead of failing at once (DECISIONLOG D70).

DuckDB lets one process write a database file, or several read it, never both: a second
process gets "Could not set lock on file" immediately. A cron job that lands files during
the nightly build, or `billing quality` started while a build runs, would lose its run. Every
command that opens the warehouse does so through `connect`, which waits for the holder to
finish for up to `BILLING_LOCK_TIMEOUT` seconds (default 300), says once that it is waiting
and for whom, then gives up with one line.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TypeVar

import duckdb

T = TypeVar("T")

LOCK_TIMEOUT_ENV = "BILLING_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 300.0
# First retry soon (a publish or an ingest of one file holds the lock for a moment), then
# back off so a long build is not polled many times a second.
FIRST_PAUSE = 0.1
LONGEST_PAUSE = 2.0


class WarehouseBusy(Exception):
    """The warehouse stayed held by another process for the whole wait, or the wait's
    setting is not a number of seconds; the message is one line for the user."""


def lock_timeout(environment: Mapping[str, str] = os.environ) -> float:
    """Seconds to wait for the warehouse: `BILLING_LOCK_TIMEOUT`, else 300; 0 fails at once.

    A wrong setting is a one-line error, never a silent default: an operator who set 3600
    for a long build must not get five minutes.
    """
    text = environment.get(LOCK_TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_LOCK_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds >= 0 or seconds == float("inf"):
        raise WarehouseBusy(
            f"{LOCK_TIMEOUT_ENV} must be a number of seconds, 0 or more, got {text!r}"
        )
    return seconds


def is_lock_conflict(error: BaseException) -> bool:
    """Whether DuckDB refused the file because another process holds it (and only that:
    a corrupt file or a missing folder must fail at once, not after a wait)."""
    return isinstance(error, duckdb.Error) and "Could not set lock on file" in str(error)


def lock_holder(error: BaseException) -> str:
    """Who holds the file, as DuckDB names it ("PID 4242"), for the waiting message."""
    found = re.search(r"\(PID (\d+)\)", str(error))
    return f"PID {found.group(1)}" if found else "another process"


def pauses(first: float = FIRST_PAUSE, longest: float = LONGEST_PAUSE):
    """The waits between attempts: doubling from `first`, never more than `longest`."""
    pause = first
    while True:
        yield pause
        pause = min(pause * 2, longest)


class _Held(Exception):
    """One attempt found the warehouse held; `holder` says by whom."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


def _retry(
    attempt: Callable[[], T],
    warehouse: Path,
    *,
    timeout: float | None = None,
    say: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`attempt()` until it does not raise `_Held` or the wait runs out.

    `say` hears the one waiting line (stderr by default); `clock` and `sleep` are there so
    the wait can be tested without waiting.
    """
    limit = lock_timeout() if timeout is None else timeout
    say = say or (lambda text: print(text, file=sys.stderr, flush=True))
    deadline = clock() + limit
    waits = pauses()
    waiting = False
    while True:
        try:
            return attempt()
        except _Held as held:
            remaining = deadline - clock()
            if remaining <= 0:
                raise WarehouseBusy(
                    f"the warehouse {warehouse} is held by {held.holder} and was not "
                    f"released within {limit:g} s ({LOCK_TIMEOUT_ENV}); try again when it "
                    "has finished"
                ) from None
            if not waiting:
                say(
                    f"waiting for the warehouse {warehouse}: held by {held.holder}; "
                    f"up to {limit:g} s ({LOCK_TIMEOUT_ENV})"
                )
                waiting = True
        # Never sleep past the deadline: the last attempt is at it, not a pause early.
        sleep(min(next(waits), remaining))


def retry_while_held(
    attempt: Callable[[], T], warehouse: Path, held_by: Callable[[T], str | None], **wait
) -> T:
    """`attempt()` again while `held_by(its result)` names a holder (a dbt run that could
    not open the file reports it in its result, not by raising)."""

    def once() -> T:
        result = attempt()
        holder = held_by(result)
        if holder:
            raise _Held(holder)
        return result

    return _retry(once, warehouse, **wait)


def lock_conflict_holder(text: str) -> str | None:
    """The holder named by a DuckDB lock refusal somewhere in `text`, else None."""
    if "Could not set lock on file" not in text:
        return None
    return f"{lock_holder(Exception(text))} (a build or another run)"


def wait_for_file(open_file: Callable[[], T], warehouse: Path, **wait) -> T:
    """`open_file()` (a connect, or an ATTACH of the warehouse), again while another process
    holds the file, until the wait runs out; any other error as DuckDB gave it."""

    def attempt() -> T:
        try:
            return open_file()
        except duckdb.Error as error:
            if is_lock_conflict(error):
                raise _Held(f"{lock_holder(error)} (a build or another run)") from error
            raise

    return _retry(attempt, warehouse, **wait)


def connect(warehouse: Path, read_only: bool = False, **wait) -> duckdb.DuckDBPyConnection:
    """`duckdb.connect` to the warehouse, waiting while another process holds it."""
    return wait_for_file(
        lambda: duckdb.connect(str(warehouse), read_only=read_only), warehouse, **wait
    )


# The run locks this process holds (exclusive_run is not re-entrant).
_HELD: set[Path] = set()


def run_lock_path(warehouse: Path) -> Path:
    """The file builds lock, beside the warehouse (the warehouse's own lock is DuckDB's)."""
    return warehouse.with_name(f"{warehouse.name}.run.lock")


@contextlib.contextmanager
def exclusive_run(warehouse: Path, command: str, **wait) -> Iterator[None]:
    """One build at a time on a warehouse, across processes, for the whole build.

    DuckDB's own lock is taken and released at each step (dbt, the gates, the ledger,
    publish); a second build slipping in between would rebuild the marts under the first
    one's gates. An advisory `flock` on a file beside the warehouse spans them all; the
    kernel drops it when the holder exits, so a build killed with -9 leaves no stale lock.
    The file names its holder for the waiting line.
    """
    path = run_lock_path(warehouse)
    if path in _HELD:
        # flock is per open file: taking it again in this process would wait on itself.
        raise RuntimeError(f"{command}: this process already holds the run lock {path}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a+", encoding="utf-8")
    except OSError as error:
        raise WarehouseBusy(f"cannot open the run lock {path}: {error.strerror}") from error
    try:

        def attempt() -> None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                raise _Held(handle.read().strip() or "another build") from None

        _retry(attempt, warehouse, **wait)
        handle.seek(0)
        handle.truncate()
        handle.write(f"{command} (PID {os.getpid()})\n")
        handle.flush()
        _HELD.add(path)
        try:
            yield
        finally:
            _HELD.discard(path)
    finally:
        handle.close()  # closing the file releases the flock
