"""The Great Expectations gates and the alerts they raise, against real HTTP and SMTP receivers.

A clean generated dataset passes every gate. Each broken dataset (a copy of the clean
warehouse, broken one way) fails exactly the gate that guards against it and raises exactly
one alert, which arrives once at the webhook and once by e-mail, and never again; a negative
usage day only warns; a scope without rows is NO DATA, never PASS. Sinks: a misconfigured
webhook is one line without its secret, and an SMTP password never travels without TLS.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import threading
from datetime import date
from decimal import Decimal
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, HTTPServer

import duckdb
import pandas as pd
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from conftest import copy_scenario, free_port, query

from billing.alerts import alerts_from_report, raise_alerts, redact, redact_url, webhook_problem
from billing.landing import ingest_files
from billing.quality import (
    SUITES,
    QualityReport,
    connect_warehouse,
    data_range,
    gate_runner,
    read_chunks,
    read_frame,
    run_quality,
    spec_query,
)
from billing.rules.calendar import Window
from billing.sample.generate import GenerateOptions
from billing.settings import PROJECT_DIR, Settings
from billing.warehouse.build import build
from billing.warehouse.dbt import BuildError
from billing.warehouse.gate_passes import after_batch_for, rules_fingerprint

AS_OF = "2026-11-05T00:00:00Z"
OPTIONS = GenerateOptions(
    events=6_000, customers=10, months=2, first_month=date(2026, 9, 1), seed=5, spikes=1
)
SEPTEMBER = Window.period(date(2026, 9, 1))
# The alerts a test raises itself: the build that made the warehouse may have stored the
# clean data's usage anomaly already.
RAISED_HERE = "where alert_kind in ('quality_gate', 'quality_warning')"


@pytest.fixture(scope="module")
def clean(workspace, built_scenarios):
    """The generated two months, built once per pytest run (test_orchestration compares its
    jobs with the same build) and copied here, where tests write alerts into it."""
    origin, record = built_scenarios(OPTIONS, AS_OF)
    copy_scenario(origin, workspace)
    return record


class Receivers:
    """A webhook receiver and an SMTP server on 127.0.0.1, recording what they get.

    With `tls_context` the SMTP server offers STARTTLS; with `accept_login` it accepts
    AUTH LOGIN/PLAIN from anyone (recording the credentials), with or without TLS.
    """

    def __init__(self, tls_context=None, accept_login: bool = False) -> None:
        self.posts: list[dict] = []
        self.mails: list = []
        self.logins: list[tuple[str, str]] = []
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

        logins = self.logins

        def authenticator(server, session, envelope, mechanism, auth_data):
            logins.append((auth_data.login.decode(), auth_data.password.decode()))
            return AuthResult(success=True)

        self.smtp_port = free_port()
        self.smtp = Controller(
            Mailbox(),
            hostname="127.0.0.1",
            port=self.smtp_port,
            tls_context=tls_context,
            authenticator=authenticator if accept_login else None,
            auth_require_tls=tls_context is not None,
        )
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
    assert scope.kind == "range"  # every day and every period gate
    for report in (
        run_quality(workspace.warehouse, scope),
        run_quality(workspace.warehouse, SEPTEMBER),
        run_quality(workspace.warehouse, Window.day(date(2026, 10, 7))),
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
    assert query(copy, "select times_seen, delivered_to from ops.alerts " + RAISED_HERE) == [
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


FLOOD_DUPLICATES = 90


@pytest.fixture(scope="module")
def flooded(clean, workspace, tmp_path_factory):
    """The clean data plus a file on one day that is a quarter bad (90 harmless resends of
    the day's events, 25 lines of an unknown customer, 5 of an unknown event type) and a
    wrong producer count on another day, rebuilt in a copy of the warehouse."""
    root = tmp_path_factory.mktemp("flooded")
    settings = Settings(root / "warehouse.duckdb", root / "landing", workspace.seeds_dir)
    shutil.copyfile(workspace.warehouse, settings.warehouse)
    settings.landing_dir.mkdir()
    resent = query(
        workspace.warehouse,
        "select parsed.raw_line from staging.stg_events__routed_events as routed "
        "join staging.stg_events__parsed_events as parsed using (raw_row_id) "
        "where routed.event_status = 'accepted' and routed.event_date = '2026-10-07' "
        "order by routed.event_id limit ?",
        [FLOOD_DUPLICATES],
    )
    assert len(resent) == FLOOD_DUPLICATES
    bad = [
        {
            "event_id": f"flood_{n}",
            "customer_id": "cust_unknown" if n < 25 else "cust_0001",
            "event_type": "api_call" if n < 25 else "api_cal",
            "timestamp": f"2026-10-07T{n % 24:02d}:00:00Z",
        }
        for n in range(30)
    ]
    flood = settings.landing_dir / "events-flood.jsonl"
    flood.write_text(
        "".join(line + "\n" for (line,) in resent)
        + "".join(json.dumps(event) + "\n" for event in bad)
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
    try:
        build(settings, AS_OF)
    except BuildError as error:
        # A build that applies the blocking gates stops here, after dbt built the marts.
        assert str(error).startswith("quality gates failed"), error
    return settings, customer_id


def test_a_quarantine_flood_names_its_quarantined_lines_share_and_reasons(flooded, receivers):
    settings, _ = flooded
    report = run_quality(settings.warehouse, Window.day(date(2026, 10, 7)))
    assert failed_suites(report) == ["staged_events"]
    assert failed_rules(report) == ["expect_column_values_to_be_between(file_quarantine_share"]
    (failure,) = [f for result in report.results for f in result.failures]
    staged = query(
        settings.warehouse,
        "select count(*) from staging.stg_events__routed_events "
        "where coalesce(event_date, cast(loaded_at as date)) = '2026-10-07'",
    )[0][0]
    # Exactly the file's quarantined lines fail: not its 90 good lines, not other files.
    assert (failure.unexpected_count, failure.element_count) == (30, staged)
    assert failure.rows == [
        {
            "reconciliation_date": "2026-10-07",
            "file_name": "events-flood.jsonl",
            "line_number": line,
            "customer_id": "cust_unknown",
            "quarantine_reason": "unknown_customer",
        }
        for line in range(FLOOD_DUPLICATES + 1, FLOOD_DUPLICATES + 21)
    ]
    note = (
        "events-flood.jsonl: 30 of 120 lines quarantined (25.0%, more than 5%); "
        "reasons: unknown_customer 25, unknown_event_type 5"
    )
    assert failure.notes == [note]
    raised = raise_alerts(settings.warehouse, alerts_from_report(report), receivers.environment())
    (alert,) = raised.new
    assert (alert.check_name, alert.severity, alert.scope, alert.affected_rows) == (
        "staged_events",
        "error",
        "2026-10-07",
        30,
    )
    assert alert.summary == (
        "quality gate staged_events failed for 2026-10-07: quarantined lines in a landed "
        f"file over the 5% quarantine limit (30 of {staged:,} rows); {note}"
    )
    assert alert.details[1] == note
    assert (len(receivers.posts), len(receivers.mails)) == (1, 1)
    assert receivers.posts[0]["text"] == f"[ERROR] {alert.summary}"


def test_a_suite_read_in_chunks_reports_what_it_reports_read_at_once(flooded):
    """The staged-events gate streams its rows (D62): the flood's 30 failing lines spread
    over five chunks of seven still count 30 of the day's rows, list the same first 20 and
    carry the same file note, assembled from the chunks that hold the file's lines."""
    settings, _ = flooded
    spec = next(spec for spec in SUITES if spec.name == "staged_events")
    day = Window.day(date(2026, 10, 7))
    with connect_warehouse(settings.warehouse) as con:
        sql, more = spec_query(spec)
        frame = read_frame(con, sql, day, more)
    flood_rows = frame.index[frame["file_name"] == "events-flood.jsonl"]
    start = flood_rows.min() + FLOOD_DUPLICATES - 3
    pieces = [frame.iloc[:start]]
    pieces += [frame.iloc[at : at + 7] for at in range(start, start + 35, 7)]
    pieces.append(frame.iloc[start + 35 :])
    assert sum(len(piece) for piece in pieces) == len(frame)
    whole = gate_runner().run(spec, day, [frame])
    chunked = gate_runner().run(spec, day, pieces)
    assert chunked.row_count == whole.row_count == len(frame)
    assert chunked.failures == whole.failures
    (failure,) = chunked.failures
    assert (failure.unexpected_count, len(failure.rows)) == (30, 20)
    assert failure.notes == [
        "events-flood.jsonl: 30 of 120 lines quarantined (25.0%, more than 5%); "
        "reasons: unknown_customer 25, unknown_event_type 5"
    ]


def test_rows_are_streamed_in_chunks_and_an_empty_result_still_has_its_columns():
    con = duckdb.connect()
    con.execute("create table checks_rows as select range as n, 'x' as s from range(5000)")
    sql = "select * from checks_rows where n >= $1 and n < $2 order by n"
    chunks = list(read_chunks(con, sql, Window("daily", 0, 5000), (), 2048))
    assert [len(chunk) for chunk in chunks] == [2048, 2048, 904]
    assert pd.concat(chunks)["n"].tolist() == list(range(5000))
    (empty,) = read_chunks(con, sql, Window("daily", 6000, 7000), (), 2048)
    assert (len(empty), list(empty.columns)) == (0, ["n", "s"])


def test_a_producer_count_that_does_not_match_fails_reconciliation(flooded, receivers):
    settings, customer_id = flooded
    report = run_quality(settings.warehouse, Window.day(date(2026, 10, 8)))
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


def test_rows_a_failed_gate_read_are_read_again_by_the_next_build(flooded, workspace, tmp_path):
    # A build's staged-events gate reads only the rows routed since the last build whose
    # gates passed (D59). The flooded build failed, so its flood is still unpassed: a build
    # that lands one clean event fails on the flood again, it does not check the event alone.
    flooded_settings, _ = flooded
    settings = Settings(tmp_path / "warehouse.duckdb", tmp_path / "landing", workspace.seeds_dir)
    shutil.copyfile(flooded_settings.warehouse, settings.warehouse)
    settings.landing_dir.mkdir()
    (settings.landing_dir / "events-late.jsonl").write_text(
        json.dumps(
            {
                "event_id": "late_1",
                "customer_id": "cust_0001",
                "event_type": "api_call",
                "timestamp": "2026-10-20T00:00:00Z",
            }
        )
        + "\n"
    )
    ingest_files(settings.warehouse, [settings.landing_dir], settings.landing_dir)
    with pytest.raises(BuildError, match=r"quality gates failed \(reconciliation, staged_events\)"):
        build(settings, AS_OF)


def test_alerts_are_stored_but_sent_nowhere_without_sinks(clean, workspace, tmp_path):
    copy = broken_copy(workspace, tmp_path, ["update marts.fct_invoices set discount_amount = -1"])
    report = run_quality(copy, SEPTEMBER)
    raised = raise_alerts(copy, alerts_from_report(report), environment={})
    assert ([a.check_name for a in raised.new], raised.delivery_errors) == (["invoices"], [])
    assert query(copy, "select delivered_to, delivery_errors from ops.alerts " + RAISED_HERE) == [
        ([], [])
    ]


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
    stored = query(copy, "select delivered_to, len(delivery_errors) from ops.alerts " + RAISED_HERE)
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


def test_a_negative_usage_day_is_a_warning_not_a_failed_gate(clean, workspace, tmp_path, receivers):
    day = date(2026, 10, 7)
    assert clean["spikes"][0]["date"] != day.isoformat()
    customer_id, meter_id = query(
        workspace.warehouse,
        "select customer_id, meter_id from marts.fct_usage_daily where usage_date = ? "
        "order by customer_id, meter_id limit 1",
        [day],
    )[0]
    # A producer's corrections larger than the day's usage (architecture §6.3).
    copy = broken_copy(
        workspace,
        tmp_path,
        [
            f"update marts.fct_usage_daily set quantity = -3 where usage_date = '{day}' "
            f"and customer_id = '{customer_id}' and meter_id = '{meter_id}'"
        ],
    )
    (day_rows,) = query(
        copy, "select count(*) from marts.fct_usage_daily where usage_date = ?", [day]
    )[0]
    report = run_quality(copy, Window.day(day))
    assert report.passed, report.describe()
    (usage,) = [result for result in report.results if result.suite == "daily_usage"]
    assert (usage.status(), usage.failures, len(usage.warnings)) == ("PASS", [], 1)
    assert usage.warnings[0].rows == [
        {"usage_date": day.isoformat(), "customer_id": customer_id, "meter_id": meter_id}
    ]
    assert usage.describe().splitlines()[0] == (
        f"PASS daily_usage 2026-10-07 (6 expectations, {day_rows} rows, 1 warning)"
    )
    alerts = alerts_from_report(report)
    assert [(a.alert_kind, a.check_name, a.severity, a.customers, a.scope) for a in alerts] == [
        ("quality_warning", "daily_usage", "warning", (customer_id,), "2026-10-07")
    ]
    summary = (
        "quality warning from daily_usage for 2026-10-07: negative net usage on a day "
        "(corrections larger than the usage; a period that ends negative is billed as 0) "
        f"(1 of {day_rows} rows)"
    )
    assert alerts[0].summary == summary
    raised = raise_alerts(copy, alerts, receivers.environment())
    assert (len(raised.new), raised.delivery_errors) == (1, [])
    assert [post["text"] for post in receivers.posts] == [f"[WARNING] {summary}"]
    assert query(copy, "select alert_kind, severity, summary from ops.alerts " + RAISED_HERE) == [
        ("quality_warning", "warning", summary)
    ]


def test_a_scope_without_data_is_no_data_not_a_pass(clean, workspace):
    report = run_quality(workspace.warehouse, Window.period(date(2030, 1, 1)))
    assert (report.passed, report.found_data, report.checked_rows) == (True, False, 0)
    assert report.empty_suites == ["invoices", "usage_tie_out"]
    assert report.describe() == (
        "NO DATA invoices 2030-01: no invoices or active subscriptions to check\n"
        "NO DATA usage_tie_out 2030-01: no period tie-out rows to check"
    )
    assert run_quality(workspace.warehouse, SEPTEMBER).found_data

    result = subprocess.run(
        [sys.executable, "-m", "billing.cli", "quality", "--period", "2030-01"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        env={**os.environ, "BILLING_WAREHOUSE": str(workspace.warehouse)},
        timeout=600,
    )
    assert result.returncode == 2
    assert result.stdout == report.describe() + "\n"
    assert result.stderr.splitlines() == [
        "billing quality: error: nothing to check for 2030-01: no invoices or active "
        "subscriptions, no period tie-out rows (is the scope right, and built?)"
    ]


def test_a_flat_history_spike_says_no_spread_not_nan():
    spike = pd.DataFrame(
        {
            "usage_date": [pd.Timestamp("2026-10-07")],
            "customer_id": ["cust_0001"],
            "meter_id": ["api_calls"],
            "anomaly_rule": ["spike: >= 3x trailing mean and robust score >= 3.5"],
            "observed_quantity": [Decimal("100")],
            "baseline_mean": [Decimal("10")],
            "ratio_to_mean": [10.0],
            "robust_score": [None],
        }
    )
    report = QualityReport(results=[], anomalies=spike)
    assert report.describe().splitlines()[1] == (
        "    2026-10-07 cust_0001 api_calls: 100 vs trailing mean 10.0 "
        "(10.0x, no spread: every trailing day was the same)"
    )
    (alert,) = alerts_from_report(report)
    assert (
        alert.summary == "usage spike: cust_0001 api_calls on 2026-10-07, 10.0x its trailing mean"
    )
    assert alert.details == (
        "100 vs trailing mean 10.0 (10.0x, no spread: every trailing day was the same); "
        "rule: spike: >= 3x trailing mean and robust score >= 3.5",
    )


BAD_WEBHOOK = "hooks.example.com/T000/SECRET"


def test_a_webhook_url_without_a_scheme_is_a_one_line_configuration_error(
    clean, workspace, tmp_path, receivers
):
    copy = broken_copy(workspace, tmp_path, ["update marts.fct_invoices set tax_amount = -1"])
    result = subprocess.run(
        [sys.executable, "-m", "billing.cli", "quality", "--period", "2026-09"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            **receivers.environment(),
            "BILLING_WAREHOUSE": str(copy),
            "BILLING_ALERT_WEBHOOK_URL": BAD_WEBHOOK,
        },
        timeout=600,
    )
    assert result.returncode == 1
    error = (
        "webhook: configuration error: BILLING_ALERT_WEBHOOK_URL must be an http:// or "
        "https:// URL (got hooks.example.com/***)"
    )
    # Stored first, sent by e-mail all the same, and the secret never printed.
    ((alert_id, check, delivered, errors),) = query(
        copy,
        "select alert_id, check_name, delivered_to, delivery_errors from ops.alerts " + RAISED_HERE,
    )
    assert (check, delivered, errors) == ("invoices", ["email"], [error])
    assert result.stderr.splitlines() == [
        f"alert {alert_id} not delivered: {error}",
        "quality gates failed: invoices",
    ]
    for secret in ("SECRET", "T000"):
        assert secret not in result.stdout + result.stderr
    assert (len(receivers.posts), len(receivers.mails)) == (0, 1)


def test_sink_errors_never_carry_secrets():
    environment = {
        "BILLING_ALERT_WEBHOOK_URL": "https://bot:pw1234@hooks.example.com/services/T000/B000/"
        "SECRET?token=abcd",
        "BILLING_ALERT_SMTP_PASSWORD": "hunter22",
    }
    message = (
        "urlopen error for https://bot:pw1234@hooks.example.com/services/T000/B000/SECRET"
        "?token=abcd; path /services/T000/B000/SECRET?token=abcd; AUTH hunter22 refused;\n"
        "see https://example.org/some/page"
    )
    assert redact(message, environment) == (
        "urlopen error for https://hooks.example.com/***; path ***; AUTH *** refused; "
        "see https://example.org/***"
    )
    assert redact_url(BAD_WEBHOOK) == "hooks.example.com/***"
    assert webhook_problem("https://hooks.example.com/services/T000") is None
    assert webhook_problem("ftp://hooks.example.com/T000") == (
        "configuration error: BILLING_ALERT_WEBHOOK_URL must be an http:// or https:// URL "
        "(got ftp://hooks.example.com/***)"
    )


def mail_environment(receivers, **extra) -> dict:
    """The receivers' e-mail sink only, with SMTP credentials."""
    environment = receivers.environment()
    del environment["BILLING_ALERT_WEBHOOK_URL"]
    return {
        **environment,
        "BILLING_ALERT_SMTP_USER": "billing",
        "BILLING_ALERT_SMTP_PASSWORD": "hunter22",
        **extra,
    }


@pytest.fixture
def login_receivers():
    """Receivers whose SMTP server accepts a login without TLS, as a careless relay does."""
    running = Receivers(accept_login=True)
    yield running
    running.stop()


def test_a_smtp_password_is_never_sent_without_tls(clean, workspace, tmp_path, login_receivers):
    copy = broken_copy(workspace, tmp_path, ["update marts.fct_invoices set tax_amount = -1"])
    report = run_quality(copy, SEPTEMBER)
    raised = raise_alerts(copy, alerts_from_report(report), mail_environment(login_receivers))
    assert raised.delivery_errors == [
        "email: the SMTP server does not offer STARTTLS, and a password is never sent in "
        "plain text (set BILLING_ALERT_SMTP_ALLOW_PLAINTEXT=1 to allow it)"
    ]
    assert (login_receivers.logins, login_receivers.mails) == ([], [])
    assert query(copy, "select delivered_to, delivery_errors from ops.alerts " + RAISED_HERE) == [
        ([], raised.delivery_errors)
    ]


def test_a_smtp_password_goes_in_plain_text_only_when_allowed(
    clean, workspace, tmp_path, login_receivers
):
    copy = broken_copy(workspace, tmp_path, ["update marts.fct_invoices set tax_amount = -1"])
    report = run_quality(copy, SEPTEMBER)
    environment = mail_environment(login_receivers, BILLING_ALERT_SMTP_ALLOW_PLAINTEXT="1")
    raised = raise_alerts(copy, alerts_from_report(report), environment)
    assert raised.delivery_errors == []
    assert login_receivers.logins == [("billing", "hunter22")]
    assert len(login_receivers.mails) == 1


def self_signed_localhost(folder) -> tuple[str, str]:
    """A certificate and key for 127.0.0.1, its own trust anchor."""
    import ipaddress
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "smtp.pem", folder / "smtp.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


def test_a_smtp_password_goes_over_verified_starttls(clean, workspace, tmp_path, monkeypatch):
    cert_file, key_file = self_signed_localhost(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_file, key_file)
    # The client trusts the test's certificate the way an operator trusts a private CA.
    monkeypatch.setenv("SSL_CERT_FILE", cert_file)
    receivers = Receivers(tls_context=server_context, accept_login=True)
    try:
        copy = broken_copy(workspace, tmp_path, ["update marts.fct_invoices set tax_amount = -1"])
        report = run_quality(copy, SEPTEMBER)
        raised = raise_alerts(copy, alerts_from_report(report), mail_environment(receivers))
    finally:
        receivers.stop()
    assert raised.delivery_errors == []
    assert receivers.logins == [("billing", "hunter22")]
    assert len(receivers.mails) == 1


def test_a_gate_reads_every_staged_row_unless_a_pass_with_the_same_rules_is_recorded():
    fingerprint = rules_fingerprint("select 1", [])
    # No pass yet: every row.
    assert after_batch_for(None, 50, fingerprint) is None
    # A pass through batch 40 with the same rules: the rows of batches above 40.
    assert after_batch_for((40, fingerprint), 50, fingerprint) == 40
    assert after_batch_for((50, fingerprint), 50, fingerprint) == 50
    # A rule changed since (another view or expectation): every row again.
    changed = rules_fingerprint("select 2", [])
    assert changed != fingerprint
    assert after_batch_for((40, fingerprint), 50, changed) is None
    # Batches below the last pass: routing rebuilt with the clock set back; every row.
    assert after_batch_for((40, fingerprint), 30, fingerprint) is None
