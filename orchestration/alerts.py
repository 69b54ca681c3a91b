"""Alerts: every failed gate, anomaly or failed run becomes a row in `ops.alerts` and a message.

An alert's id is a fingerprint of what failed (the check, the scope, the failed rules and the
rows they named), so the same failure seen again only bumps `times_seen` and is never sent
twice, while a changed failure is a new alert. Sinks are configured by environment variables
and are silent when unset:

- BILLING_ALERT_WEBHOOK_URL: POST a Slack-compatible JSON payload (`text` and `blocks`, plus
  the alert's fields under `alert`).
- BILLING_ALERT_SMTP_HOST (with BILLING_ALERT_SMTP_PORT, default 25), BILLING_ALERT_EMAIL_TO
  (comma-separated), BILLING_ALERT_EMAIL_FROM (default billing-alerts@localhost), and
  optionally BILLING_ALERT_SMTP_USER / BILLING_ALERT_SMTP_PASSWORD and
  BILLING_ALERT_SMTP_STARTTLS=1: send an e-mail.

A sink that cannot be reached never stops the pipeline: its error is stored with the alert
and printed.
"""

from __future__ import annotations

import hashlib
import json
import os
import smtplib
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path

import duckdb

from orchestration.quality import QualityReport, Scope, clean_value

ALERTS_SCHEMA_SQL = """
create schema if not exists ops;
create table if not exists ops.alerts (
    alert_id varchar primary key,
    alert_kind varchar not null,
    check_name varchar not null,
    severity varchar not null,
    scope varchar not null,
    period_start date,
    period_end date,
    customers varchar[] not null,
    affected_rows bigint not null,
    summary varchar not null,
    details varchar not null,
    first_seen_at timestamp not null,
    last_seen_at timestamp not null,
    times_seen integer not null,
    delivered_to varchar[] not null,
    delivery_errors varchar[] not null
);
"""


@dataclass(frozen=True)
class Alert:
    """One failure, ready to be stored and sent."""

    alert_kind: str  # quality_gate, usage_anomaly, run_failure
    check_name: str
    severity: str  # critical, error, warning
    scope: str
    period_start: date | None
    period_end: date | None
    customers: tuple[str, ...]
    affected_rows: int
    summary: str
    details: tuple[str, ...] = field(default_factory=tuple)

    @property
    def alert_id(self) -> str:
        """The fingerprint of the failure: equal failures share it, so they alert once."""
        basis = json.dumps(
            [self.alert_kind, self.check_name, self.scope, self.customers, self.details]
        )
        return hashlib.sha256(basis.encode()).hexdigest()[:20]

    def text(self) -> str:
        customers = ", ".join(self.customers[:10]) or "-"
        if len(self.customers) > 10:
            customers += f" and {len(self.customers) - 10} more"
        lines = [
            f"[{self.severity.upper()}] {self.summary}",
            f"check: {self.check_name} ({self.alert_kind}), scope: {self.scope}",
            f"customers: {customers}; rows: {self.affected_rows:,}",
            *(f"- {detail}" for detail in self.details),
        ]
        return "\n".join(lines)


@dataclass
class RaisedAlerts:
    """What one raise did: new alerts (sent), and repeats (stored, not sent again)."""

    new: list[Alert] = field(default_factory=list)
    repeated: list[Alert] = field(default_factory=list)
    delivery_errors: list[str] = field(default_factory=list)


def alerts_from_report(report: QualityReport) -> list[Alert]:
    """One alert per failed suite and scope, and one per usage anomaly (its own day)."""
    alerts = []
    for result in report.results:
        if result.passed:
            continue
        failed = ", ".join(failure.expectation.split("(")[0] for failure in result.failures)
        alerts.append(
            Alert(
                alert_kind="quality_gate",
                check_name=result.suite,
                severity=result.severity,
                scope=result.scope.label,
                period_start=result.scope.start,
                period_end=result.scope.end,
                customers=tuple(result.customers()),
                affected_rows=result.affected_rows(),
                summary=f"quality gate {result.suite} failed for {result.scope.label}: {failed}",
                details=tuple(failure.describe() for failure in result.failures),
            )
        )
    anomalies = report.anomalies
    for row in anomalies.itertuples() if anomalies is not None else ():
        day = date.fromisoformat(str(clean_value(row.usage_date)))
        alerts.append(
            Alert(
                alert_kind="usage_anomaly",
                check_name="fct_usage_anomalies",
                severity="warning",
                scope=day.isoformat(),
                period_start=day,
                period_end=date.fromordinal(day.toordinal() + 1),
                customers=(row.customer_id,),
                affected_rows=1,
                summary=f"usage spike: {row.customer_id} {row.meter_id} on {day.isoformat()}",
                details=(
                    f"{float(row.observed_quantity):,.0f} vs trailing mean "
                    f"{float(row.baseline_mean):,.1f} ({row.ratio_to_mean:.1f}x, "
                    f"robust score {row.robust_score:.1f}); rule: {row.anomaly_rule}",
                ),
            )
        )
    return alerts


def run_failure_alert(job: str, scope: Scope | None, reason: str) -> Alert:
    """A failed orchestration run: the pipeline stopped and nothing past it ran."""
    return Alert(
        alert_kind="run_failure",
        check_name=job,
        severity="critical",
        scope=scope.label if scope else "",
        period_start=scope.start if scope else None,
        period_end=scope.end if scope else None,
        customers=(),
        affected_rows=0,
        summary=f"run {job} failed" + (f" for {scope.label}" if scope else ""),
        details=(reason,),
    )


def webhook_payload(alert: Alert) -> dict:
    """Slack's incoming-webhook shape (`text` + `blocks`), with the raw fields beside it."""
    return {
        "text": f"[{alert.severity.upper()}] {alert.summary}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{alert.summary}*"}},
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "```" + alert.text() + "```"},
            },
        ],
        "alert": {
            "alert_id": alert.alert_id,
            "alert_kind": alert.alert_kind,
            "check_name": alert.check_name,
            "severity": alert.severity,
            "scope": alert.scope,
            "customers": list(alert.customers),
            "affected_rows": alert.affected_rows,
            "details": list(alert.details),
        },
    }


def send_webhook(url: str, alert: Alert) -> None:
    body = json.dumps(webhook_payload(alert)).encode()
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        if response.status >= 300:
            raise OSError(f"webhook answered HTTP {response.status}")


def send_email(environment: dict, alert: Alert) -> None:
    message = EmailMessage()
    message["Subject"] = f"[billing {alert.severity}] {alert.summary}"
    message["From"] = environment.get("BILLING_ALERT_EMAIL_FROM", "billing-alerts@localhost")
    message["To"] = environment["BILLING_ALERT_EMAIL_TO"]
    message["X-Billing-Alert-Id"] = alert.alert_id
    message.set_content(alert.text() + "\n")
    port = int(environment.get("BILLING_ALERT_SMTP_PORT", "25"))
    with smtplib.SMTP(environment["BILLING_ALERT_SMTP_HOST"], port, timeout=10) as smtp:
        if environment.get("BILLING_ALERT_SMTP_STARTTLS") == "1":
            smtp.starttls()
        if environment.get("BILLING_ALERT_SMTP_USER"):
            smtp.login(
                environment["BILLING_ALERT_SMTP_USER"],
                environment.get("BILLING_ALERT_SMTP_PASSWORD", ""),
            )
        smtp.send_message(message)


def configured_sinks(environment: dict) -> list[str]:
    """The sinks the environment configures; none means alerts are only stored."""
    sinks = []
    if environment.get("BILLING_ALERT_WEBHOOK_URL"):
        sinks.append("webhook")
    if environment.get("BILLING_ALERT_SMTP_HOST") and environment.get("BILLING_ALERT_EMAIL_TO"):
        sinks.append("email")
    return sinks


def deliver(alert: Alert, environment: dict) -> tuple[list[str], list[str]]:
    """Send to every configured sink; returns (delivered to, errors). Never raises."""
    delivered, errors = [], []
    for sink in configured_sinks(environment):
        try:
            if sink == "webhook":
                send_webhook(environment["BILLING_ALERT_WEBHOOK_URL"], alert)
            else:
                send_email(environment, alert)
            delivered.append(sink)
        except (OSError, smtplib.SMTPException, urllib.error.URLError) as error:
            errors.append(f"{sink}: {error}")
    return delivered, errors


def raise_alerts(
    warehouse: Path, alerts: list[Alert], environment: dict | None = None
) -> RaisedAlerts:
    """Store each alert once and send the new ones; a repeat only updates `last_seen_at`.

    When the warehouse cannot be opened (another run holds DuckDB's write lock), the alerts
    are still sent, unstored: a failure must reach someone even when it cannot be recorded,
    at the cost of a possible repeat later.
    """
    environment = dict(os.environ) if environment is None else environment
    outcome = RaisedAlerts()
    if not alerts:
        return outcome
    now = datetime.now(UTC).replace(tzinfo=None)
    try:
        con = duckdb.connect(str(warehouse))
    except duckdb.Error as error:
        print(f"alerts not stored, warehouse unavailable: {error}", file=sys.stderr)
        for alert in alerts:
            outcome.delivery_errors += deliver(alert, environment)[1]
            outcome.new.append(alert)
        return outcome
    with con:
        con.execute(ALERTS_SCHEMA_SQL)
        for alert in alerts:
            seen = con.execute(
                "update ops.alerts set last_seen_at = ?, times_seen = times_seen + 1 "
                "where alert_id = ? returning alert_id",
                [now, alert.alert_id],
            ).fetchall()
            if seen:
                outcome.repeated.append(alert)
                continue
            delivered, errors = deliver(alert, environment)
            for error in errors:
                print(f"alert {alert.alert_id} not delivered: {error}", file=sys.stderr)
            outcome.delivery_errors += errors
            con.execute(
                "insert into ops.alerts values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
                [
                    alert.alert_id,
                    alert.alert_kind,
                    alert.check_name,
                    alert.severity,
                    alert.scope,
                    alert.period_start,
                    alert.period_end,
                    list(alert.customers),
                    alert.affected_rows,
                    alert.summary,
                    json.dumps(list(alert.details)),
                    now,
                    now,
                    delivered,
                    errors,
                ],
            )
            outcome.new.append(alert)
    return outcome


def recent_alerts(warehouse: Path, limit: int = 20) -> str:
    """The latest alerts as a table, read with a short-lived read-only connection."""
    if not warehouse.exists():
        raise FileNotFoundError(f"no warehouse at {warehouse}")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        exists = con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'ops' and table_name = 'alerts'"
        ).fetchone()[0]
        if not exists:
            return "no alerts raised yet"
        return str(
            con.sql(
                "select first_seen_at, severity, alert_kind, check_name, scope, affected_rows, "
                "times_seen, summary from ops.alerts order by last_seen_at desc limit ?",
                params=[limit],
            )
        )
