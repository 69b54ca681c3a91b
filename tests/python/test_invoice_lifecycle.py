"""Finality, late usage and reversals, over five builds of one small account.

Once final, an invoice and its lines never change, whatever later builds see: a corrected
rate card, late events, reversals, re-ingesting every file or a full refresh. Corrections
reach the next open invoice as `adjustment` lines: the corrected period rated now minus the
period as its finalized invoice saw it, both with today's rate card.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal as D

import pytest
from conftest import query, write_seeds

from billing.landing import ingest_files
from billing.warehouse.build import build
from billing.warehouse.dbt import PRODUCTION_BUILD_ARGS, prepare_run, run_dbt
from billing.warehouse.publish import publish
from billing.warehouse.run_context import run_context_for


def seeds(tier_2_price: str, net_terms_days: str = "") -> dict:
    return {
        "currencies": [["USD", "2"]],
        "customers": [["l_api", "Lifecycle Co", "USD", "0.1", "", "UTC", net_terms_days]],
        "meters": [["api_calls", "api_call", "count", "", "", "call", "API calls"]],
        "plans": [["p_api", "API", "USD", "10.00", ""]],
        "plan_charges": [
            ["c_api", "p_api", "api_calls", "", "graduated"]
            + [""] * 4
            + ["none"]
            + [""] * 3
            + ["API calls"]
        ],
        "plan_charge_tiers": [
            ["c_api", "1", "1000", "0", "0"],
            ["c_api", "2", "5000", tier_2_price, "0"],
            ["c_api", "3", "", "0.005", "0"],
        ],
        "subscriptions": [["s_api", "l_api", "p_api", "2026-01-01", ""]],
        "subscription_overrides": [],
        "credit_grants": [],
        "discounts": [],
    }


def calls(prefix: str, count: int, timestamp: str) -> list[str]:
    return [
        json.dumps(
            {
                "event_id": f"{prefix}-{n}",
                "customer_id": "l_api",
                "event_type": "api_call",
                "timestamp": timestamp,
            }
        )
        for n in range(count)
    ]


def reversals(originals: list[str], timestamp: str) -> list[str]:
    return [
        json.dumps(
            {
                "event_id": f"rev-{original}",
                "customer_id": "l_api",
                "event_type": "api_call",
                "timestamp": timestamp,
                "reverses_event_id": original,
            }
        )
        for original in originals
    ]


def land(settings, name: str, lines: list[str]) -> None:
    settings.landing_dir.mkdir(parents=True, exist_ok=True)
    (settings.landing_dir / name).write_text("\n".join(lines) + "\n")
    ingest_files(settings.warehouse, [settings.landing_dir], settings.landing_dir)


def invoice(settings, period: str) -> tuple:
    [row] = query(
        settings.published_warehouse,
        "select * from fct_invoices where billing_period_start = ?",
        [period],
    )
    return row


def invoice_lines(settings, period: str) -> list[tuple]:
    return query(
        settings.published_warehouse,
        "select * from fct_invoice_line_items where billing_period_start = ? "
        "order by line_order, charge_id, tier",
        [period],
    )


def summary(settings, period: str) -> tuple:
    return query(
        settings.published_warehouse,
        "select invoice_number, status, subtotal_amount, tax_amount, total_amount "
        "from fct_invoices where billing_period_start = ?",
        [period],
    )[0]


def payment_terms(settings, period: str) -> tuple:
    return query(
        settings.published_warehouse,
        "select issued_on, net_terms_days, due_on from fct_invoices where billing_period_start = ?",
        [period],
    )[0]


def lines(settings, period: str) -> list[tuple]:
    return query(
        settings.published_warehouse,
        "select line_type, tier, source_period_start, quantity, amount "
        "from fct_invoice_line_items where billing_period_start = ? "
        "order by line_order, tier",
        [period],
    )


@pytest.fixture(scope="module")
def history(workspace):
    """Runs the five builds once; each test reads the state it needs from `states`."""
    states: dict[str, dict] = {}

    def remember(step: str) -> None:
        states[step] = {
            period: (invoice(workspace, period), invoice_lines(workspace, period))
            for period in ("2026-09-01", "2026-10-01")
        }
        states[step]["lines"] = {
            period: lines(workspace, period)
            for period in ("2026-09-01", "2026-10-01", "2026-11-01")
        }
        states[step]["summary"] = {
            period: summary(workspace, period) for period in ("2026-09-01", "2026-10-01")
        }
        states[step]["terms"] = {
            period: payment_terms(workspace, period) for period in ("2026-09-01", "2026-10-01")
        }

    # 1. 4,500 September calls; on Oct 10 September is final (Oct 1 + 72 h).
    write_seeds(workspace.seeds_dir, seeds("0.01"))
    land(workspace, "day-1.jsonl", calls("sep", 4500, "2026-09-15T12:00:00Z"))
    build(workspace, "2026-10-10T00:00:00Z")
    remember("finalized")

    # 2. The rate card is corrected (tier 2: 0.01 -> 0.02), the customer moves to net 15
    # and 1,000 late September calls land.
    write_seeds(workspace.seeds_dir, seeds("0.02", net_terms_days="15"))
    land(workspace, "day-2.jsonl", calls("late", 1000, "2026-09-29T23:00:00Z"))
    build(workspace, "2026-10-20T00:00:00Z")
    remember("late_usage")

    # 3. Nothing new; on Nov 10 October is final, with its adjustment.
    build(workspace, "2026-11-10T00:00:00Z")
    remember("october_final")

    # 4. Ten September calls are reversed after both invoices are final.
    land(
        workspace, "day-3.jsonl", reversals([f"sep-{n}" for n in range(10)], "2026-11-12T09:00:00Z")
    )
    build(workspace, "2026-11-20T00:00:00Z")
    remember("reversed")

    # 5. Every file re-ingested (a no-op) and a full refresh of every model.
    ingest_files(workspace.warehouse, [workspace.landing_dir], workspace.landing_dir)
    prepare_run(workspace, run_context_for("2026-11-20T00:00:00Z"))
    run_dbt(["build", "--full-refresh", *PRODUCTION_BUILD_ARGS], workspace)
    publish(workspace)
    remember("full_refresh")
    return states


def test_september_is_final_with_a_number(history):
    # 4,500 calls: tier 1 1,000 x 0 = 0.00; tier 2 3,500 x 0.01 = 35.00; base 10.00
    # subtotal 45.00, tax 10 % 4.50, total 49.50
    assert history["finalized"]["summary"]["2026-09-01"] == (
        "INV-2026-09-000001",
        "finalized",
        D("45.00"),
        D("4.50"),
        D("49.50"),
    )
    assert history["finalized"]["lines"]["2026-09-01"] == [
        ("base_fee", None, None, D("1"), D("10.00")),
        ("usage", 1, None, D("1000"), D("0.00")),
        ("usage", 2, None, D("3500"), D("35.00")),
    ]
    assert history["finalized"]["summary"]["2026-10-01"][:2] == (None, "draft")


def test_finalized_invoices_never_change(history):
    first = history["finalized"]["2026-09-01"]
    for step in ("late_usage", "october_final", "reversed", "full_refresh"):
        assert history[step]["2026-09-01"] == first, step
    october = history["october_final"]["2026-10-01"]
    for step in ("reversed", "full_refresh"):
        assert history[step]["2026-10-01"] == october, step


def test_payment_terms_are_frozen_when_the_invoice_is_issued(history):
    # September is issued when it becomes final, Oct 1 + 72 h = Oct 4, at the default net
    # 30: due Nov 3. Its draft had no dates.
    september = (date(2026, 10, 4), 30, date(2026, 11, 3))
    assert history["finalized"]["terms"]["2026-09-01"] == september
    assert history["finalized"]["terms"]["2026-10-01"] == (None, None, None)
    # The customer moves to net 15 after September was issued: September keeps net 30 in
    # every later build; October, issued Nov 4, is due Nov 19.
    for step in ("late_usage", "october_final", "reversed", "full_refresh"):
        assert history[step]["terms"]["2026-09-01"] == september, step
    assert history["late_usage"]["terms"]["2026-10-01"] == (None, None, None)
    for step in ("october_final", "reversed", "full_refresh"):
        assert history[step]["terms"]["2026-10-01"] == (
            date(2026, 11, 4),
            15,
            date(2026, 11, 19),
        ), step


def test_late_usage_is_an_adjustment_rated_with_and_without_it(history):
    # September now: 5,500 calls at the corrected card: tier 2 4,000 x 0.02 = 80.00,
    #   tier 3 500 x 0.005 = 2.50 -> 82.50
    # September as its invoice saw it (4,500 calls), same card: 3,500 x 0.02 = 70.00
    # adjustment = 82.50 - 70.00 = +12.50 for +1,000 calls. (Rating the 1,000 late calls
    # alone would put them in tier 1 at 0.00: the tiers are not linear.)
    assert history["late_usage"]["lines"]["2026-10-01"] == [
        ("base_fee", None, None, D("1"), D("10.00")),
        ("usage", 1, None, D("0"), D("0.00")),
        ("adjustment", None, date(2026, 9, 1), D("1000"), D("12.50")),
    ]


def test_october_is_finalized_with_its_adjustment(history):
    # 10.00 + 0.00 + 12.50 = 22.50; tax 2.25; total 24.75
    assert history["october_final"]["summary"]["2026-10-01"] == (
        "INV-2026-10-000001",
        "finalized",
        D("22.50"),
        D("2.25"),
        D("24.75"),
    )


def test_a_reversal_against_a_final_period_is_a_negative_adjustment(history):
    # September now: 5,490 calls -> 80.00 + 490 x 0.005 = 2.45 -> 82.45
    # as last billed (October saw 5,500 calls): 82.50 -> adjustment -0.05 for -10 calls
    assert history["reversed"]["lines"]["2026-11-01"] == [
        ("base_fee", None, None, D("1"), D("10.00")),
        ("usage", 1, None, D("0"), D("0.00")),
        ("adjustment", None, date(2026, 9, 1), D("-10"), D("-0.05")),
    ]


def test_full_refresh_and_reingest_change_nothing(history):
    assert history["full_refresh"]["lines"] == history["reversed"]["lines"]
    assert history["full_refresh"]["summary"] == history["reversed"]["summary"]


def test_rate_card_history_is_kept(workspace, history):
    versions = query(
        workspace.warehouse,
        "select unit_price, dbt_valid_to is null from audit.snap_plan_charge_tiers "
        "where charge_id = 'c_api' and tier = 2 order by dbt_valid_from",
    )
    assert versions == [(D("0.01"), False), (D("0.02"), True)]
