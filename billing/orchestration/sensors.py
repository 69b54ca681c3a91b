"""A failed run of either job raises a run_failure alert."""

import dagster as dg

from billing.alerts import raise_alerts, run_failure_alert
from billing.orchestration.backfill import failed_run_window
from billing.orchestration.jobs import daily_reconciliation_job, monthly_invoicing_job
from billing.settings import load_settings


@dg.run_failure_sensor(
    monitored_jobs=[daily_reconciliation_job, monthly_invoicing_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def alert_on_run_failure(context: dg.RunFailureSensorContext) -> None:
    """A failed run (a failed gate included) raises a run_failure alert to the sinks."""
    run = context.dagster_run
    kind = "daily" if run.job_name == daily_reconciliation_job.name else "monthly"
    scope = failed_run_window(kind, run.tags)
    message = context.failure_event.message or "the run failed"
    raise_alerts(load_settings().warehouse, [run_failure_alert(run.job_name, scope, message)])
