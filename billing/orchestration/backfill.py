"""Run the Dagster jobs from the command line: `billing backfill daily|monthly FIRST LAST`.

Runs execute in this process against the project's Dagster instance, so they appear in the
UI beside scheduled runs. A range of days is one run (the daily assets backfill in a single
run); months run one at a time, in order, because each finalizes its own month.
"""

from __future__ import annotations

from datetime import date

from billing.orchestration.partitions import (
    AS_OF_TAG,
    PARTITION_TAG,
    RANGE_END_TAG,
    RANGE_START_TAG,
    window_of_run,
)
from billing.rules.calendar import Window, add_months
from billing.settings import dagster_home


class BackfillError(Exception):
    """A bad range; one line for the CLI."""


def parse_partition(kind: str, text: str) -> date:
    """A day (YYYY-MM-DD) or a month (YYYY-MM, or any day in it) as its partition start."""
    try:
        if kind == "monthly":
            return date.fromisoformat(f"{text[:7]}-01")
        return date.fromisoformat(text)
    except ValueError as error:
        expected = "YYYY-MM" if kind == "monthly" else "YYYY-MM-DD"
        raise BackfillError(f"expected {expected}, got {text!r}") from error


def backfill_runs(kind: str, first: date, last: date, as_of: str | None) -> list[dict]:
    """The tags of each run a backfill launches, in order."""
    if last < first:
        raise BackfillError(f"the range ends ({last}) before it starts ({first})")
    base = {AS_OF_TAG: as_of} if as_of else {}
    if kind == "daily":
        return [{**base, RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()}]
    runs, month = [], first
    while month <= last:
        runs.append({**base, PARTITION_TAG: month.isoformat()})
        month = add_months(month, 1)
    return runs


def failed_run_window(kind: str, tags: dict) -> Window | None:
    """The window a failed run covered, as the alert's scope; None for an unpartitioned run."""
    try:
        return window_of_run(tags, kind)
    except ValueError:
        return None


def alert_failed_run(job_name: str, kind: str, result) -> None:
    """Raise the run_failure alert the run-failure sensor raises under the daemon.

    A backfill runs in this process, where no sensor watches, so a failed backfill would
    otherwise reach no one. The alert is built as the sensor builds it (job, window, the
    run's failure message): when a daemon also sees the run, both give one fingerprint and
    the alert is sent once.
    """
    from billing.alerts import raise_alerts, run_failure_alert
    from billing.settings import load_settings

    message = result.get_run_failure_event().message or "the run failed"
    scope = failed_run_window(kind, result.dagster_run.tags)
    raise_alerts(load_settings().warehouse, [run_failure_alert(job_name, scope, message)])


def backfill(kind: str, first_text: str, last_text: str, as_of: str | None = None) -> str | None:
    """Run the job over the range; returns None, or which run failed."""
    first, last = parse_partition(kind, first_text), parse_partition(kind, last_text)
    runs = backfill_runs(kind, first, last, as_of)
    dagster_home()
    import dagster as dg

    from billing.orchestration.definitions import (
        daily_reconciliation_job,
        defs,
        monthly_invoicing_job,
    )

    job_name = daily_reconciliation_job.name if kind == "daily" else monthly_invoicing_job.name
    job = defs.get_job_def(job_name)
    with dg.DagsterInstance.get() as instance:
        for tags in runs:
            partition = tags.get(PARTITION_TAG)
            result = job.execute_in_process(
                instance=instance,
                partition_key=partition,
                tags={k: v for k, v in tags.items() if k != PARTITION_TAG},
                raise_on_error=False,
            )
            label = partition or f"{tags[RANGE_START_TAG]}..{tags[RANGE_END_TAG]}"
            if not result.success:
                alert_failed_run(job_name, kind, result)
                return f"{job_name} {label} (run {result.run_id})"
            print(f"{job_name} {label}: success (run {result.run_id})")
    return None
