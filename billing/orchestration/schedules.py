"""When the jobs run (UTC): each tick asks for the previous day or month."""

import dagster as dg

from billing.orchestration.jobs import daily_reconciliation_job, monthly_invoicing_job
from billing.orchestration.partitions import previous_day_key, previous_month_key


def previous_partition_schedule(name: str, cron: str, job, partition_key, description: str):
    """A UTC schedule that runs `job` for the partition `partition_key` picks for its tick."""

    @dg.schedule(
        name=name,
        cron_schedule=cron,
        job=job,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=description,
    )
    def _schedule(context: dg.ScheduleEvaluationContext):
        key = partition_key(context.scheduled_execution_time)
        return dg.RunRequest(run_key=key, partition_key=key)

    return _schedule


daily_reconciliation_schedule = previous_partition_schedule(
    "daily_reconciliation_schedule",
    "15 0 * * *",
    daily_reconciliation_job,
    previous_day_key,
    "00:15 UTC: reconcile the previous UTC day.",
)
monthly_invoicing_schedule = previous_partition_schedule(
    "monthly_invoicing_schedule",
    "0 6 4 * *",
    monthly_invoicing_job,
    previous_month_key,
    "The 4th at 06:00 UTC, after the default 72-hour grace: invoice the previous month.",
)
