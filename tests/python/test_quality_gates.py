"""The Great Expectations gates and the alerts they raise, against real HTTP and SMTP receivers.

A clean generated dataset passes every gate. Each broken dataset (a copy of the clean
warehouse, broken one way) fails exactly the gate that guards against it and raises exactly
one alert, which arrives once at the webhook and once by e-mail, and never again.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from datetime import date
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, HTTPServer

import duckdb
import pytest
from aiosmtpd.controller import Controller
from conftest import free_port, generate_and_build, query

from orchestration.alerts import alerts_from_report, raise_alerts
from orchestration.build import build
from orchestration.generate import GenerateOptions
from orchestration.ingest import ingest_files
from orchestration.quality import Scope, data_range, run_quality
from orchestration.settings import Settings

AS_OF = "2026-11-05T00:00:00Z"
OPTIONS = GenerateOptions(
    events=6_000, customers=10, months=2, first_month=date(2026, 9, 1), seed=5, spikes=1
)
SEPTEMBER = Scope.period(date(2026, 9, 1))


@pytest.fixture(scope="module")
def clean(workspace, tmp_path_factory):
    return generate_and_build(workspace, OPTIONS, AS_OF, tmp_path_factory.mktemp("record"))


class Receivers:
    """A webhook receiver and an SMTP server on 127.0.0.1, recording what they get."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        self.mails: list = []
        received = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.http = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        mails = self.mails

        class Mailbox:
            async def handle_DATA(self, server, session, envelope):
                mails.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
                return "250 OK"

        self.smtp_port = free_port()
        self.smtp = Controller(Mailbox(), hostname="127.0.0.1", port=self.smtp_port)
        self.smtp.start()

    def environment(self) -> dict:
        return {
            "BILLING_ALERT_WEBHOOK_URL": f"http://127.0.0.1:{self.http.server_port}/hooks/billing",
            "BILLING_ALERT_SMTP_HOST": "127.0.0.1",
            "BILLING_ALERT_SMTP_PORT": str(self.smtp_port),
            "BILLING_ALERT_EMAIL_TO": "oncall@example.com, finance@example.com",
            "BILLING_ALERT_EMAIL_FROM": "billing@example.com",
        }

    def stop(self) -> None:
        self.http.shutdown()
        self.smtp.stop()


@pytest.fixture
def receivers():
    running = Receivers()
    yield running
    running.stop()


def broken_copy(workspace, tmp_path, statements: list[str]):
    """A copy of the clean warehouse with some rows broken, as a bad build would leave it."""
    copy = tmp_path / "broken.duckdb"
    shutil.copyfile(workspace.warehouse, copy)
    with duckdb.connect(str(copy)) as con:
        for statement in statements:
            con.execute(statement)
    return copy


def failed_suites(report) -> list[str]:
    return [result.suite for result in report.results if not result.passed]


def failed_rules(report) -> list[str]:
    return [
        failure.expectation.split("(")[0] + "(" + failure.expectation.split("(")[1].split(",")[0]
        for result in report.results
        for failure in result.failures
    ]


def a_usd_invoice(warehouse) -> tuple[str, str]:
    return query(
        warehouse,
        "select invoice_id, customer_id from marts.fct_invoices where currency = 'USD' "
        "and billing_period_start = '2026-09-01' and total_amount > 0 "
        "order by invoice_id limit 1",
    )[0]


def test_a_clean_dataset_passes_every_gate(clean, workspace, receivers):
    scope = data_range(workspace.warehouse)
    assert (scope.start, scope.end) == (date(2026, 9, 1), date(2026, 12, 1))  # Nov drafts
    for report in (
        run_quality(workspace.warehouse, scope),
        run_quality(workspace.warehouse, SEPTEMBER),
        run_quality(workspace.warehouse, Scope.day(date(2026, 10, 7))),
    ):
        assert report.passed, report.describe()
    report = run_quality(workspace.warehouse, scope)
    assert [r.suite for r in report.results] == [
        "staged_events",
        "daily_usage",
        "reconciliation",
        "invoices",
        "usage_tie_out",
    ]
    assert report.reconciliation["fail"] == 0
    # The only alert on clean data is the injected spike, a warning.
    spike = clean["spikes"][0]
    alerts = alerts_from_report(report)
    assert [(a.alert_kind, a.severity, a.customers, a.scope) for a in alerts] == [
        ("usage_anomaly", "warning", (spike["customer_id"],), spike["date"])
    ]


def test_a_duplicated_invoice_fails_the_invoice_gate(clean, workspace, tmp_path, receivers):
    invoice_id, customer_id = a_usd_invoice(workspace.warehouse)
    copy = broken_copy(
        workspace,
        tmp_path,
        [
            f"insert into marts.fct_invoices select * from marts.fct_invoices "
            f"where invoice_id = '{invoice_id}'"
        ],
    )
    report = run_quality(copy, SEPTEMBER)
    assert failed_suites(report) == ["invoices"]
    assert failed_rules(report) == ["expect_compound_columns_to_be_unique(customer_id"]
    (failure,) = [f for result in report.results for f in result.failures]
    assert failure.unexpected_count == 2
    assert {row["invoice_id"] for row in failure.rows} == {invoice_id}

    raised = raise_alerts(copy, alerts_from_report(report), receivers.environment())
    assert [(a.check_name, a.severity, a.customers) for a in raised.new] == [
        ("invoices", "critical", (customer_id,))
    ]
    assert raised.delivery_errors == []
    (post,) = receivers.posts
    assert post["text"].startswith("[CRITICAL] quality gate invoices failed for 2026-09")
    assert post["blocks"][0]["type"] == "section"
    assert post["alert"]["customers"] == [customer_id]
    assert post["alert"]["affected_rows"] == 2
    ((recipients, mail),) = receivers.mails
    assert recipients == ["oncall@example.com", "finance@example.com"]
    assert mail["Subject"].startswith("[billing critical] quality gate invoices failed")
    assert invoice_id in mail.get_payload()

    # The same failure, checked again: stored once more as seen, never sent twice.
    again = raise_alerts(
        copy, alerts_from_report(run_quality(copy, SEPTEMBER)), receivers.environment()
    )
    assert (len(again.new), len(again.repeated)) == (0, 1)
    assert (len(receivers.posts), len(receivers.mails)) == (1, 1)
    assert query(copy, "select times_seen, delivered_to from ops.alerts") == [
        (2, ["webhook", "email"])
    ]


def test_a_wrong_total_fails_the_invoice_gate(clean, workspace, tmp_path, receivers):
    invoice_id, customer_id = a_usd_invoice(workspace.warehouse)
    copy = broken_copy(
        workspace,
        tmp_path,
        [
            f"update marts.fct_invoices set total_amount = total_amount + 1 "
            f"where invoice_id = '{invoice_id}'"
        ],
    )
    report = run_quality(copy, SEPTEMBER)
    assert failed_suites(report) == ["invoices"]
    assert failed_rules(report) == ["expect_column_values_to_be_between(total_difference"]
    raised = raise_alerts(copy, alerts_from_report(report), receivers.environment())
    assert [(a.check_name, a.customers, a.affected_rows) for a in raised.new] == [
        ("invoices", (customer_id,), 1)
    ]
    assert (len(receivers.posts), len(receivers.mails)) == (1, 1)


def test_an_invoice_in_the_wrong_currency_fails_the_invoice_gate(
    clean, workspace, tmp_path, receivers
):
    invoice_id, customer_id = a_usd_invoice(workspace.warehouse)
    copy = broken_copy(
        workspace,
        tmp_path,
        [f"update marts.fct_invoices set currency = 'EUR' where invoice_id = '{invoice_id}'"],
    )
    report = run_quality(copy, SEPTEMBER)
    assert failed_suites(report) == ["invoices"]
    assert failed_rules(report) == ["expect_column_pair_values_to_be_equal(currency"]
    raised = raise_alerts(copy, alerts_from_report(report), receivers.environment())
    assert [(a.check_name, a.customers) for a in raised.new] == [("invoices", (customer_id,))]
    assert "currency" in receivers.posts[0]["alert"]["details"][0]


@pytest.fixture(scope="module")
def flooded(clean, workspace, tmp_path_factory):
    """The clean data plus a flood of bad lines on one day and a wrong producer count on
    another, rebuilt in a copy of the warehouse."""
    root = tmp_path_factory.mktemp("flooded")
    settings = Settings(root / "warehouse.duckdb", root / "landing", workspace.seeds_dir)
    shutil.copyfile(workspace.warehouse, settings.warehouse)
    settings.landing_dir.mkdir()
    flood = settings.landing_dir / "events-flood.jsonl"
    flood.write_text(
        "".join(
            json.dumps(
                {
                    "event_id": f"flood_{n}",
                    "customer_id": "cust_unknown",
                    "event_type": "api_call",
                    "timestamp": f"2026-10-07T{n % 24:02d}:00:00Z",
                }
            )
            + "\n"
            for n in range(400)
        )
    )
    (customer_id, event_type, reported) = query(
        workspace.warehouse,
        "select customer_id, event_type, reported_count from staging.stg_events__control_totals "
        "where report_date = '2026-10-08' order by reported_count desc, customer_id limit 1",
    )[0]
    correction = settings.landing_dir / "control-totals-2026-10-08-resend.csv"
    correction.write_text(
        "report_date,customer_id,event_type,event_count\n"
        f"2026-10-08,{customer_id},{event_type},{reported + 7}\n"
    )
    ingest_files(settings.warehouse, [settings.landing_dir], settings.landing_dir)
    build(settings, AS_OF)
    return settings, customer_id


def test_a_quarantine_flood_fails_the_staged_events_gate(flooded, receivers):
    settings, _ = flooded
    report = run_quality(settings.warehouse, Scope.day(date(2026, 10, 7)))
    assert failed_suites(report) == ["staged_events"]
    assert failed_rules(report) == ["expect_column_values_to_be_between(file_quarantine_share"]
    (failure,) = [f for result in report.results for f in result.failures]
    # Exactly the flood file's rows fail: the day's ordinary files are fine.
    assert failure.unexpected_count == 400
    assert {row["file_name"] for row in failure.rows} == {"events-flood.jsonl"}
    raised = raise_alerts(settings.warehouse, alerts_from_report(report), receivers.environment())
    assert [(a.check_name, a.severity, a.scope) for a in raised.new] == [
        ("staged_events", "error", "2026-10-07")
    ]
    assert (len(receivers.posts), len(receivers.mails)) == (1, 1)


def test_a_producer_count_that_does_not_match_fails_reconciliation(flooded, receivers):
    settings, customer_id = flooded
    report = run_quality(settings.warehouse, Scope.day(date(2026, 10, 8)))
    assert failed_suites(report) == ["reconciliation"]
    assert failed_rules(report) == ["expect_column_values_to_not_be_in_set(status"]
    (failure,) = [f for result in report.results for f in result.failures]
    assert failure.unexpected_count == 1
    assert failure.rows[0]["customer_id"] == customer_id
    raised = raise_alerts(settings.warehouse, alerts_from_report(report), receivers.environment())
    assert [(a.check_name, a.customers) for a in raised.new] == [("reconciliation", (customer_id,))]
    delta = query(
        settings.warehouse,
        "select producer_delta, status_reason from marts.fct_reconciliation_daily "
        "where reconciliation_date = '2026-10-08' and status = 'fail'",
    )
    assert delta == [(-7, "producer count differs beyond tolerance")]


def test_alerts_are_stored_but_sent_nowhere_without_sinks(clean, workspace, tmp_path):
    copy = broken_copy(workspace, tmp_path, ["update marts.fct_invoices set discount_amount = -1"])
    report = run_quality(copy, SEPTEMBER)
    raised = raise_alerts(copy, alerts_from_report(report), environment={})
    assert ([a.check_name for a in raised.new], raised.delivery_errors) == (["invoices"], [])
    assert query(copy, "select delivered_to, delivery_errors from ops.alerts") == [([], [])]


def test_an_unreachable_sink_is_reported_not_fatal(clean, workspace, tmp_path):
    copy = broken_copy(workspace, tmp_path, ["update marts.fct_invoices set tax_amount = -1"])
    report = run_quality(copy, SEPTEMBER)
    closed = HTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = closed.server_port
    closed.server_close()
    raised = raise_alerts(
        copy,
        alerts_from_report(report),
        {"BILLING_ALERT_WEBHOOK_URL": f"http://127.0.0.1:{port}/"},
    )
    assert len(raised.new) == 1
    assert len(raised.delivery_errors) == 1 and raised.delivery_errors[0].startswith("webhook:")
    stored = query(copy, "select delivered_to, len(delivery_errors) from ops.alerts")
    assert stored == [([], 1)]


def test_alerts_are_still_sent_when_the_warehouse_is_locked(clean, workspace, tmp_path, receivers):
    copy = broken_copy(workspace, tmp_path, ["update marts.fct_invoices set tax_amount = -1"])
    report = run_quality(copy, SEPTEMBER)
    # Another process holds the write lock, as a running build would.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(copy)!r}); "
            "print('locked', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        raised = raise_alerts(copy, alerts_from_report(report), receivers.environment())
    finally:
        holder.kill()
        holder.wait()
    assert [a.check_name for a in raised.new] == ["invoices"]
    assert (len(receivers.posts), len(receivers.mails)) == (1, 1)
