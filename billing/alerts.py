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
  BILLING_ALERT_SMTP_STARTTLS=1: send an e-mail. With a password, STARTTLS is required
  unless BILLING_ALERT_SMTP_ALLOW_PLAINTEXT=1.

An alert is stored before it is sent. A sink that cannot be reached or is misconfigured never
stops the pipeline: its error is stored with the alert and printed, with every secret (the
webhook URL's path and query, the SMTP password) redacted.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import smtplib
import ssl
import sys
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

import duckdb

from billing.quality import (
    QualityReport,
    anomaly_statistics,
    clean_value,
    threshold_amount,
    threshold_reached,
)
from billing.rules.calendar import Window
from billing.warehouse import lock

WEBHOOK_URL = "BILLING_ALERT_WEBHOOK_URL"
SMTP_PASSWORD = "BILLING_ALERT_SMTP_PASSWORD"
SMTP_ALLOW_PLAINTEXT = "BILLING_ALERT_SMTP_ALLOW_PLAINTEXT"
REDACTED = "***"
# Any URL in a message: its path and query may be a credential (a Slack webhook's is).
URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>;,()]+")


class SinkError(Exception):
    """A sink refused on purpose (misconfigured, or it would leak a secret); one line."""


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

    alert_kind: str  # quality_gate, quality_warning, usage_anomaly, usage_threshold, run_failure
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


class AlertStoreError(Exception):
    """The stored alerts cannot be read (no warehouse, or another process holds it)."""


def suite_alert(result, failures, kind: str, severity: str, verb: str) -> Alert:
    """One alert for a suite's failures (or warnings) in one scope; the summary says in
    words what broke, since the expectation names only mean something to their author."""
    return Alert(
        alert_kind=kind,
        check_name=result.suite,
        severity=severity,
        scope=result.scope.label,
        period_start=result.scope.start,
        period_end=result.scope.end,
        customers=tuple(result.customers(failures)),
        affected_rows=result.affected_rows(failures),
        summary=f"{verb} for {result.scope.label}: "
        + "; ".join(failure.summary() for failure in failures),
        details=tuple(
            line for failure in failures for line in (failure.describe(), *failure.notes)
        ),
    )


def alerts_from_report(report: QualityReport) -> list[Alert]:
    """One alert per failed suite and scope, one per suite with warnings (non-blocking, so a
    severity of warning), one per usage anomaly (its own day) and one per usage threshold a
    draft reached (its period)."""
    alerts = []
    for result in report.results:
        if result.failures:
            alerts.append(
                suite_alert(
                    result,
                    result.failures,
                    "quality_gate",
                    result.severity,
                    f"quality gate {result.suite} failed",
                )
            )
        if result.warnings:
            alerts.append(
                suite_alert(
                    result,
                    result.warnings,
                    "quality_warning",
                    "warning",
                    f"quality warning from {result.suite}",
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
                summary=f"usage spike: {row.customer_id} {row.meter_id} on {day.isoformat()}, "
                f"{row.ratio_to_mean:.1f}x its trailing mean",
                details=(f"{anomaly_statistics(row)}; rule: {row.anomaly_rule}",),
            )
        )
    thresholds = report.thresholds
    for row in thresholds.itertuples() if thresholds is not None else ():
        alerts.append(threshold_alert(row))
    return alerts


def threshold_alert(row) -> Alert:
    """A customer's running draft reached one of their thresholds (D78). Its fingerprint is
    the threshold, its level and the period, not the value: the value keeps growing through
    the month, and the alert is raised once, the first time a build sees it reached (a
    threshold raised mid-month is a new level, alerted again when reached)."""
    start = date.fromisoformat(str(clean_value(row.billing_period_start)))
    end = date.fromisoformat(str(clean_value(row.billing_period_end)))
    period = start.isoformat()[:7]
    return Alert(
        alert_kind="usage_threshold",
        check_name="fct_threshold_crossings",
        severity="warning",
        scope=period,
        period_start=start,
        period_end=end,
        customers=(row.customer_id,),
        affected_rows=1,
        summary=threshold_reached(row),
        details=(
            f"threshold {row.threshold_id} of {threshold_amount(row, row.threshold)} "
            f"reached in {period}",
        ),
    )


def run_failure_alert(job: str, scope: Window | None, reason: str) -> Alert:
    """A failed orchestration run: the pipeline stopped and nothing past it ran.

    The run-failure sensor and `billing backfill` both build it from the run's job, window
    and failure message, so one failed run seen by both has one fingerprint and alerts once.
    """
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


def mrkdwn_escaped(text: str) -> str:
    """Text as Slack mrkdwn shows it literally: `&`, `<` and `>` as entities (Slack's rule).

    Alerts carry event-derived text (customer ids, file names, quarantine reasons); left
    raw, `<!channel>` in a file name pings a whole channel and `<https://x|invoice>` is a
    disguised link (D71).
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# Slack refuses a block whose text is longer than this, and then delivers nothing.
SLACK_TEXT_LIMIT = 3000
TRUNCATED = "\n… (cut to fit Slack; billing alerts shows the whole alert)"


def fit_slack(text: str, room: int = SLACK_TEXT_LIMIT) -> str:
    """`text` cut to `room` characters with a note saying so, never inside an entity."""
    if len(text) <= room:
        return text
    cut = text[: room - len(TRUNCATED)]
    entity = cut.rfind("&")
    if entity != -1 and ";" not in cut[entity:]:
        cut = cut[:entity]
    return cut + TRUNCATED


def code_block(text: str) -> str:
    """`text` in a mrkdwn code block that nothing in it can close: every backtick is kept,
    with a zero-width space after it, so no three of them in a row end the fence early (nor
    join the opening one: the block starts on its own line). Cut to Slack's limit."""
    body = mrkdwn_escaped(text).replace("`", "`\u200b")
    return "```\n" + fit_slack(body, SLACK_TEXT_LIMIT - 8) + "\n```"


def webhook_payload(alert: Alert) -> dict:
    """Slack's incoming-webhook shape (`text` + `blocks`), with the raw fields beside it.

    The summary goes out as `plain_text` (Slack renders it as is, no markup, no mentions)
    and the fallback `text` and the details as escaped mrkdwn (D71); the `alert` fields
    beside them are data, raw as stored.
    """
    return {
        "text": mrkdwn_escaped(f"[{alert.severity.upper()}] {alert.summary}"),
        "blocks": [
            {
                "type": "section",
                "text": {"type": "plain_text", "text": fit_slack(alert.summary), "emoji": False},
            },
            {
                "type": "section",
                # verbatim: no automatic links, channel names or mentions in the details
                "text": {"type": "mrkdwn", "text": code_block(alert.text()), "verbatim": True},
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


def redact_url(url: str) -> str:
    """A URL as it may be shown: scheme and host only.

    A webhook URL's path and query are its credential (Slack's `/services/T…/B…/<token>`),
    and a user:password may sit before the host; a value without a scheme shows only what
    looks like its host.
    """
    text = url.strip()
    try:
        parts = urlsplit(text)
        host, port = parts.hostname, parts.port
    except ValueError:
        return REDACTED
    if parts.scheme and host:
        netloc = host + (f":{port}" if port else "")
        rest = parts.path.strip("/") or parts.query or parts.fragment
        return f"{parts.scheme}://{netloc}" + (f"/{REDACTED}" if rest else "")
    head = text.split("/", 1)[0]
    if re.fullmatch(r"[A-Za-z0-9.-]+\.[A-Za-z0-9.-]+(:[0-9]+)?", head):
        return head + (f"/{REDACTED}" if "/" in text else "")
    return REDACTED


def secrets_of(environment: Mapping[str, str]) -> list[str]:
    """Every configured string that must never reach a message, log or stored error: the
    webhook URL's path, query, path segments and password, and the SMTP password."""
    secrets = []
    url = environment.get(WEBHOOK_URL, "").strip()
    if url:
        try:
            parts = urlsplit(url)
            password = parts.password
        except ValueError:
            parts, password = None, None
        if parts is not None:
            segments = parts.path.strip("/").split("/")
            if not parts.scheme:
                segments = segments[1:]  # the first is the host, shown on purpose
            secrets += [f"{parts.path}?{parts.query}", parts.path, parts.query, parts.fragment]
            secrets += [password or "", *segments]
    secrets.append(environment.get(SMTP_PASSWORD, ""))
    # Very short strings would blank out ordinary words; no real token is that short.
    return sorted({secret for secret in secrets if len(secret) >= 4}, key=len, reverse=True)


def redact(text: str, environment: Mapping[str, str]) -> str:
    """`text` on one line with every secret of the environment and every URL path removed.

    Libraries quote what they were given (urllib: "unknown url type: 'hooks…/SECRET'"),
    so an error message is scrubbed before it is printed or stored.
    """
    url = environment.get(WEBHOOK_URL, "").strip()
    if url:
        text = text.replace(url, redact_url(url))
    for secret in secrets_of(environment):
        text = text.replace(secret, REDACTED)
    text = URL_IN_TEXT.sub(lambda match: redact_url(match.group()), text)
    return " ".join(text.split())


def webhook_problem(url: str) -> str | None:
    """Why the webhook URL cannot be used, in one line without its secret; None if usable."""
    try:
        parts = urlsplit(url.strip())
        usable = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        usable = False
    if usable:
        return None
    return (
        f"configuration error: {WEBHOOK_URL} must be an http:// or https:// URL "
        f"(got {redact_url(url)})"
    )


def send_webhook(url: str, alert: Alert) -> None:
    problem = webhook_problem(url)
    if problem:
        raise SinkError(problem)
    body = json.dumps(webhook_payload(alert)).encode()
    request = urllib.request.Request(
        url.strip(), data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        if response.status >= 300:
            raise OSError(f"webhook answered HTTP {response.status}")


def smtp_requires_tls(environment: Mapping[str, str]) -> bool:
    """STARTTLS when asked for, and always before a password is sent: credentials never
    travel in plain text unless the operator says so (a relay on the same trusted host)."""
    if environment.get("BILLING_ALERT_SMTP_STARTTLS") == "1":
        return True
    return bool(environment.get(SMTP_PASSWORD)) and environment.get(SMTP_ALLOW_PLAINTEXT) != "1"


def smtp_port(environment: Mapping[str, str]) -> int:
    """The SMTP port; a value that is not one is a configuration error, not a traceback."""
    text = environment.get("BILLING_ALERT_SMTP_PORT", "25").strip()
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise SinkError(
            f"configuration error: BILLING_ALERT_SMTP_PORT must be a port number (got {text!r})"
        )
    return int(text)


def one_line_header(text: str) -> str:
    """A mail header value from event-derived text: control characters (a CR or LF from a
    file name would end the header, or fail the send) become spaces (D71)."""
    return " ".join("".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in text).split())


def send_email(environment: Mapping[str, str], alert: Alert) -> None:
    message = EmailMessage()
    message["Subject"] = one_line_header(f"[billing {alert.severity}] {alert.summary}")
    message["From"] = environment.get("BILLING_ALERT_EMAIL_FROM", "billing-alerts@localhost")
    message["To"] = environment["BILLING_ALERT_EMAIL_TO"]
    message["X-Billing-Alert-Id"] = alert.alert_id
    message.set_content(alert.text() + "\n")
    port = smtp_port(environment)
    with smtplib.SMTP(environment["BILLING_ALERT_SMTP_HOST"], port, timeout=10) as smtp:
        if smtp_requires_tls(environment):
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                raise SinkError(
                    "the SMTP server does not offer STARTTLS, and a password is never sent "
                    f"in plain text (set {SMTP_ALLOW_PLAINTEXT}=1 to allow it)"
                    if environment.get(SMTP_PASSWORD)
                    else "the SMTP server does not offer STARTTLS "
                    "(BILLING_ALERT_SMTP_STARTTLS=1 asks for it)"
                )
            smtp.starttls(context=ssl.create_default_context())
        if environment.get("BILLING_ALERT_SMTP_USER"):
            smtp.login(
                environment["BILLING_ALERT_SMTP_USER"],
                environment.get(SMTP_PASSWORD, ""),
            )
        smtp.send_message(message)


def configured_sinks(environment: Mapping[str, str]) -> list[str]:
    """The sinks the environment configures; none means alerts are only stored."""
    sinks = []
    if environment.get(WEBHOOK_URL, "").strip():
        sinks.append("webhook")
    if environment.get("BILLING_ALERT_SMTP_HOST") and environment.get("BILLING_ALERT_EMAIL_TO"):
        sinks.append("email")
    return sinks


def deliver(alert: Alert, environment: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """Send to every configured sink; returns (delivered to, errors), each error one line
    with its secrets redacted. Never raises: a broken sink must neither stop the run nor
    keep the alert from the other sinks."""
    delivered, errors = [], []
    for sink in configured_sinks(environment):
        try:
            if sink == "webhook":
                send_webhook(environment[WEBHOOK_URL], alert)
            else:
                send_email(environment, alert)
            delivered.append(sink)
        except SinkError as error:
            errors.append(f"{sink}: {redact(str(error), environment)}")
        except Exception as error:  # every sink failure is recorded, never raised
            errors.append(f"{sink}: {redact(f'{type(error).__name__}: {error}', environment)}")
    return delivered, errors


INSERT_ALERT_SQL = (
    "insert into ops.alerts values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, [], [])"
)


def raise_alerts(
    warehouse: Path, alerts: list[Alert], environment: Mapping[str, str] | None = None
) -> RaisedAlerts:
    """Store each alert once, then send the new ones; a repeat only updates `last_seen_at`.

    An alert is stored before any sink is tried, so a sink that hangs or fails cannot lose
    it; what the sinks did is recorded afterwards. When the warehouse cannot be opened
    (another run holds DuckDB's write lock), the alerts are still sent, unstored: a failure
    must reach someone even when it cannot be recorded, at the cost of a possible repeat.
    """
    environment = dict(os.environ) if environment is None else environment
    outcome = RaisedAlerts()
    if not alerts:
        return outcome
    now = datetime.now(UTC).replace(tzinfo=None)
    try:
        con = duckdb.connect(str(warehouse))
    except duckdb.Error as error:
        print(f"alerts not stored, warehouse unavailable: {one_line(error)}", file=sys.stderr)
        for alert in alerts:
            errors = deliver(alert, environment)[1]
            report_delivery_errors(alert, errors)
            outcome.delivery_errors += errors
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
            con.execute(
                INSERT_ALERT_SQL,
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
                ],
            )
            outcome.new.append(alert)
        for alert in outcome.new:
            delivered, errors = deliver(alert, environment)
            report_delivery_errors(alert, errors)
            outcome.delivery_errors += errors
            con.execute(
                "update ops.alerts set delivered_to = ?, delivery_errors = ? where alert_id = ?",
                [delivered, errors, alert.alert_id],
            )
    return outcome


def report_delivery_errors(alert: Alert, errors: list[str]) -> None:
    """Print each (already redacted) sink error: a run's log must show that no one heard."""
    for error in errors:
        print(f"alert {alert.alert_id} not delivered: {error}", file=sys.stderr)


def one_line(error: object) -> str:
    """An error as one line: DuckDB and SMTP servers answer over several."""
    return " ".join(str(error).split())


RECENT_ALERTS_SQL = """
select last_seen_at, severity, alert_kind, check_name, scope, affected_rows, times_seen,
    summary, details, delivered_to, delivery_errors
from ops.alerts
order by last_seen_at desc, first_seen_at desc, alert_id
limit ?
"""


def alert_listing(rows: list[tuple]) -> str:
    """Stored alerts for a terminal: each with its whole summary, its details and where it
    was sent. A table would cut the summary at the column width, and the summary is what
    the on-call acts on."""
    blocks = []
    for (
        last_seen,
        severity,
        kind,
        check,
        scope,
        affected,
        times_seen,
        summary,
        details,
        delivered,
        errors,
    ) in rows:
        sent = ", ".join(delivered) if delivered else "no sink"
        blocks.append(
            "\n".join(
                [
                    f"{last_seen:%Y-%m-%d %H:%M:%S} UTC  {severity.upper()}  {kind} {check}  "
                    f"scope {scope or '-'}  {affected:,} row{'s' * (affected != 1)}  "
                    f"seen {times_seen}x  "
                    f"sent to {sent}",
                    f"    {summary}",
                    *(f"    - {detail}" for detail in json.loads(details)),
                    *(f"    not delivered: {error}" for error in errors),
                ]
            )
        )
    return "\n\n".join(blocks) if blocks else "no alerts raised yet"


def recent_alerts(warehouse: Path, limit: int = 20) -> str:
    """The latest alerts, read with a short-lived read-only connection."""
    if not warehouse.exists():
        raise AlertStoreError(f"no warehouse at {warehouse}")
    try:
        con = lock.connect(warehouse, read_only=True)
    except lock.WarehouseBusy as error:
        raise AlertStoreError(f"cannot read alerts: {error}") from error
    except duckdb.Error as error:
        raise AlertStoreError(f"cannot read alerts from {warehouse}: {one_line(error)}") from error
    with con:
        exists = con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'ops' and table_name = 'alerts'"
        ).fetchone()[0]
        if not exists:
            return "no alerts raised yet"
        return alert_listing(con.execute(RECENT_ALERTS_SQL, [limit]).fetchall())


def raise_rejected_file_alerts(warehouse: Path, result) -> RaisedAlerts:
    """Store and send one alert per file ingest rejected (ingest.rejected_file_alerts).

    Ingest itself knows nothing of sinks; the CLI and the Dagster ingest asset call this.
    """
    from billing.landing import rejected_file_alerts

    return raise_alerts(warehouse, [Alert(**fields) for fields in rejected_file_alerts(result)])
