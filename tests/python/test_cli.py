"""The `billing` command: help everywhere, one-line errors, never a traceback for bad input."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import uuid
from datetime import date

import duckdb
import pytest
from conftest import TEST_SEEDS_ROOT

from billing.alerts import Alert, raise_alerts
from billing.settings import PROJECT_DIR, Settings
from billing.warehouse.build import parse_as_of
from billing.warehouse.dbt import BuildError
from billing.warehouse.publish import publish

BILLING = [sys.executable, "-m", "billing.cli"]


def run(*args: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    # The bound only keeps a hung command from hanging the suite; nothing is timed.
    return subprocess.run(
        [*BILLING, *args],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


def subcommands() -> list[str]:
    """Every subcommand the parser has, so a new one is checked without editing a list."""
    import argparse

    from billing.cli import build_parser

    [action] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(action.choices)


def test_the_subcommands_are_the_documented_ones():
    assert subcommands() == [
        "alerts",
        "backfill",
        "build",
        "docs",
        "generate",
        "ingest",
        "invoice-pdf",
        "invoices",
        "quality",
        "void",
        "withdraw",
    ]
    # Each has its row in the README's command table.
    readme = (PROJECT_DIR / "README.md").read_text()
    assert [c for c in subcommands() if f"| `billing {c} " not in readme] == []


@pytest.mark.parametrize("command", subcommands())
def test_every_subcommand_has_help(command):
    result = run(command, "--help")
    assert result.returncode == 0
    assert f"usage: billing {command}" in result.stdout


def test_missing_landing_folder_is_one_line_without_traceback(tmp_path):
    result = run(
        "ingest", str(tmp_path / "nowhere"), env={"BILLING_WAREHOUSE": str(tmp_path / "w.duckdb")}
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"billing ingest: error: landing path does not exist: {tmp_path / 'nowhere'}"
    ]


def test_bad_as_of_is_one_line_without_traceback(tmp_path):
    result = run(
        "build", "--as-of", "next tuesday", env={"BILLING_WAREHOUSE": str(tmp_path / "w.duckdb")}
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "--as-of must be an ISO 8601 date or timestamp" in result.stderr


def test_seeds_outside_the_project_are_refused(tmp_path):
    result = run(
        "build",
        env={"BILLING_WAREHOUSE": str(tmp_path / "w.duckdb"), "BILLING_SEEDS_DIR": str(tmp_path)},
    )
    assert result.returncode == 2
    assert "BILLING_SEEDS_DIR must be a folder inside the project" in result.stderr


def test_bad_event_count_is_rejected_by_the_parser():
    result = run("generate", "--events", "many")
    assert result.returncode == 2
    assert "expected a whole number" in result.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-05", "2026-11-05T00:00:00Z"),
        ("2026-11-05T10:30:00+02:00", "2026-11-05T08:30:00Z"),
        ("2026-11-05T10:30:00Z", "2026-11-05T10:30:00Z"),
        ("2026-11-05 23:59:59.999", "2026-11-05T23:59:59Z"),
    ],
)
def test_as_of_is_normalized_to_utc(text, expected):
    assert parse_as_of(text) == expected


def test_as_of_rejects_nonsense():
    with pytest.raises(BuildError):
        parse_as_of("soon")


def test_a_locked_warehouse_is_one_line_without_traceback(tmp_path):
    warehouse = tmp_path / "w.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(warehouse)!r}); "
            "print('ready', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        # No wait (D70): the first refusal is the answer, in one line.
        result = run(
            "build", env={"BILLING_WAREHOUSE": str(warehouse), "BILLING_LOCK_TIMEOUT": "0"}
        )
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"billing build: error: nothing was built: the warehouse {warehouse} is held by "
        f"PID {holder.pid} (a build or another run) and was not released within 0 s "
        "(BILLING_LOCK_TIMEOUT); try again when it has finished"
    ]


def test_quality_without_a_warehouse_is_one_line(tmp_path):
    result = run("quality", env={"BILLING_WAREHOUSE": str(tmp_path / "w.duckdb")})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"billing quality: error: no warehouse at {tmp_path / 'w.duckdb'}: "
        "run `billing build` first"
    ]


def test_quality_rejects_a_bad_day():
    result = run("quality", "--day", "2026-02-30")
    assert result.returncode == 2
    assert "expected YYYY-MM-DD, got '2026-02-30'" in result.stderr


def test_backfill_rejects_a_backward_range_in_one_line():
    result = run("backfill", "daily", "2026-09-02", "2026-09-01")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "billing backfill: error: the range ends (2026-09-01) before it starts (2026-09-02)"
    ]


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Settings:
    """A warehouse whose marts are two literal invoices, published as a build publishes."""
    root = tmp_path_factory.mktemp("published")
    settings = Settings(root / "warehouse.duckdb", root / "landing", PROJECT_DIR / "seeds")
    with duckdb.connect(str(settings.warehouse)) as con:
        con.execute("create schema marts")
        con.execute(
            """
            create table marts.fct_invoices as
            select
                invoice_id, invoice_number, customer_id, customer_name,
                billing_period_start::date as billing_period_start, status, currency,
                currency_minor_units::integer as currency_minor_units,
                subtotal_amount::decimal(38, 4) as subtotal_amount,
                discount_amount::decimal(38, 4) as discount_amount,
                tax_amount::decimal(38, 4) as tax_amount,
                credits_applied_amount::decimal(38, 4) as credits_applied_amount,
                total_amount::decimal(38, 4) as total_amount
            from (values
                ('inv_a', 'INV-2026-09-000001', 'cust_0001', 'Acme Labs', '2026-09-01',
                    'finalized', 'USD', 2, 1250.00, 50.00, 105.00, 20.00, 1285.00),
                ('inv_b', null, 'cust_0002', 'Globex Kabushiki Kaisha', '2026-09-01',
                    'draft', 'JPY', 0, 98000, 0, 9800, 0, 107800)
            ) as invoices(invoice_id, invoice_number, customer_id, customer_name,
                billing_period_start, status, currency, currency_minor_units, subtotal_amount,
                discount_amount, tax_amount, credits_applied_amount, total_amount)
            """
        )
        con.execute(
            """
            create table marts.fct_invoice_line_items as
            select
                invoice_line_item_id, invoice_id, subscription_id, charge_id, line_type,
                tier::integer as tier, description, quantity::decimal(38, 9) as quantity,
                unit_price::decimal(18, 9) as unit_price, amount::decimal(38, 4) as amount,
                source_period_start::date as source_period_start,
                line_order::integer as line_order
            from (values
                ('l2', 'inv_a', 's1', 'calls', 'usage', 1, 'API calls (tier 1)', 12500.5,
                    0.08, 1000.04, null, 2),
                ('l1', 'inv_a', 's1', null, 'base_fee', null, 'Pro base fee', 1, 249.96,
                    249.96, null, 1),
                ('l3', 'inv_b', 's2', null, 'base_fee', null, 'Pro base fee', 1, 98000,
                    98000, null, 1)
            ) as lines(invoice_line_item_id, invoice_id, subscription_id, charge_id,
                line_type, tier, description, quantity, unit_price, amount,
                source_period_start, line_order)
            """
        )
    publish(settings)
    return settings


def test_the_invoice_table_shows_every_amount_of_the_total(published):
    result = run(
        "invoices", "--period", "2026-09", env={"BILLING_WAREHOUSE": str(published.warehouse)}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:6] == [
        "",
        "Invoices for 2026-09",
        "  invoice            customer   name              status          subtotal"
        "    discount         tax     credits         total  cur",
        "  INV-2026-09-000001 cust_0001  Acme Labs         finalized       1,250.00"
        "       50.00      105.00       20.00      1,285.00  USD",
        "  (not yet)          cust_0002  Globex Kabushiki  draft             98,000"
        "           0       9,800           0       107,800  JPY",
        "",
    ]


INVOICE_A = [
    "Invoice INV-2026-09-000001, finalized (invoice_id inv_a)",
    "  customer cust_0001 Acme Labs, period 2026-09, USD",
    "",
    "  line                description                                         quantity"
    "    unit price        amount",
    "  base_fee            Pro base fee                                               1"
    "        249.96        249.96",
    "  usage               API calls (tier 1)                                  12,500.5"
    "          0.08      1,000.04",
    "",
    "                                                                                        "
    "subtotal      1,250.00",
    "                                                                                        "
    "discount         50.00",
    "                                                                                        "
    "     tax        105.00",
    "                                                                                        "
    " credits         20.00",
    "                                                                                        "
    "   total      1,285.00",
    "  2 lines",
]


@pytest.mark.parametrize("invoice", ["INV-2026-09-000001", "inv_a"])
def test_one_invoice_prints_its_lines_by_number_or_id(published, invoice):
    result = run(
        "invoices", "--invoice", invoice, env={"BILLING_WAREHOUSE": str(published.warehouse)}
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == INVOICE_A


def test_an_unknown_invoice_is_one_line(published):
    result = run(
        "invoices",
        "--invoice",
        "INV-1999-01-000001",
        env={"BILLING_WAREHOUSE": str(published.warehouse)},
    )
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        "billing invoices: error: no invoice 'INV-1999-01-000001' in the published marts "
        "(give an invoice_id or an invoice number such as INV-2026-09-000001)"
    ]


def test_invoices_into_a_closed_pipe_exit_quietly(published):
    """`billing invoices | head`: the reader is gone before the command writes."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        result = subprocess.run(
            [*BILLING, "invoices"],
            cwd=PROJECT_DIR,
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "BILLING_WAREHOUSE": str(published.warehouse)},
            timeout=120,
        )
    finally:
        os.close(writer)
    assert (result.returncode, result.stderr) == (1, "")


LONG_SUMMARY = (
    "quality gate staged_events failed for 2026-10-07: quarantined lines in a landed file "
    "over the 5% quarantine limit (30 of 220 rows); events-flood.jsonl: 30 of 120 lines "
    "quarantined (25.0%, more than 5%); reasons: unknown_customer 25, unknown_event_type 5"
)


def test_alerts_show_the_whole_summary(tmp_path):
    warehouse = tmp_path / "w.duckdb"
    alert = Alert(
        alert_kind="quality_gate",
        check_name="staged_events",
        severity="error",
        scope="2026-10-07",
        period_start=date(2026, 10, 7),
        period_end=date(2026, 10, 8),
        customers=("cust_unknown",),
        affected_rows=30,
        summary=LONG_SUMMARY,
        details=("expect_column_values_to_be_between(file_quarantine_share): 30 of 220 rows",),
    )
    raise_alerts(warehouse, [alert], environment={})
    result = run("alerts", env={"BILLING_WAREHOUSE": str(warehouse)})
    assert (result.returncode, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    assert lines[0].endswith(
        " UTC  ERROR  quality_gate staged_events  scope 2026-10-07  30 rows  seen 1x  "
        "sent to no sink"
    )
    assert lines[1:] == [
        f"    {LONG_SUMMARY}",
        "    - expect_column_values_to_be_between(file_quarantine_share): 30 of 220 rows",
    ]


def test_alerts_on_a_held_warehouse_are_one_line(tmp_path):
    warehouse = tmp_path / "w.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(warehouse)!r}); "
            "print('ready', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        result = run(
            "alerts", env={"BILLING_WAREHOUSE": str(warehouse), "BILLING_LOCK_TIMEOUT": "0"}
        )
    finally:
        holder.kill()
        holder.wait()
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        f"billing alerts: error: cannot read alerts: the warehouse {warehouse} is held by "
        f"PID {holder.pid} (a build or another run) and was not released within 0 s "
        "(BILLING_LOCK_TIMEOUT); try again when it has finished"
    ]


@pytest.fixture
def broken_seeds():
    """The project's seeds with a tax rate that is not a number: the seed load fails."""
    seeds = TEST_SEEDS_ROOT / uuid.uuid4().hex[:12]
    shutil.copytree(PROJECT_DIR / "seeds", seeds)
    rows = list(csv.reader((seeds / "accounts" / "customers.csv").open()))
    rows[1][rows[0].index("tax_rate")] = "eight percent"
    with (seeds / "accounts" / "customers.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    yield seeds
    shutil.rmtree(seeds, ignore_errors=True)


def test_a_failed_backfill_raises_its_run_failure_alert(tmp_path, broken_seeds):
    warehouse, landing = tmp_path / "w.duckdb", tmp_path / "landing"
    landing.mkdir()
    result = run(
        "backfill",
        "daily",
        "2026-09-01",
        "2026-09-01",
        env={
            "BILLING_WAREHOUSE": str(warehouse),
            "BILLING_LANDING_DIR": str(landing),
            "BILLING_SEEDS_DIR": str(broken_seeds),
            "DAGSTER_HOME": str(tmp_path / "dagster"),
        },
        timeout=900,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    ((run_id,),) = [
        (line.split("(run ")[1].split(")")[0],)
        for line in result.stderr.splitlines()
        if line.startswith("backfill stopped: ")
    ]
    assert result.stderr.splitlines()[-1] == (
        f"backfill stopped: daily_reconciliation 2026-09-01..2026-09-01 (run {run_id}); "
        "a run_failure alert was raised (see `billing alerts`)"
    )
    with duckdb.connect(str(warehouse), read_only=True) as con:
        alerts = con.execute(
            "select alert_kind, check_name, severity, scope, summary, details from ops.alerts"
        ).fetchall()
    assert alerts == [
        (
            "run_failure",
            "daily_reconciliation",
            "critical",
            "2026-09-01",
            "run daily_reconciliation failed for 2026-09-01",
            json.dumps(
                [
                    'Execution of run for "daily_reconciliation" failed. '
                    "Steps failed: ['dbt_staging']."
                ]
            ),
        )
    ]
