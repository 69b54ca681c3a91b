"""Golden invoices: a handful of customers whose invoices were computed by hand.

Seeds and landing files are written here, built end to end (ingest, dbt build, publish),
and every line and total must match the arithmetic in the comments to the cent (to the yen).
"""

from __future__ import annotations

import json
import os
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import query, write_seeds

from billing.alerts import alerts_from_report, raise_alerts
from billing.landing import ingest_files
from billing.quality import run_quality
from billing.rules.calendar import Window
from billing.warehouse.build import build

AS_OF = "2026-10-10T00:00:00Z"  # September is final (Oct 1 + 72 h), October is a draft

# charge_id,plan_id,meter_id,dimension_value,charge_model,unit_price,package_size,free_units,
# quantity_divisor,quantity_rounding,quantity_precision,min_amount,max_amount,display_name,
# rate_percent,fixed_fee_per_event,free_events,free_amount,min_fee_per_event,max_fee_per_event
# (write_seeds leaves the trailing columns a row omits blank)
PLAN_CHARGES_CSV = """\
c_api,p_api,api_calls,,graduated,,,,,none,,,,API
c_gb,p_api,storage_gb,,volume,,,,1,up,0,,,GB
c_img,p_api,images,,package,2.50,10,5,,none,,,,Img
c_ent_api,p_ent,api_calls,,standard,0.02,,,,none,,,,API
c_seats,p_ent,seats,,staircase,,,,,none,,,,Seats
c_gpt4,p_jpy,tokens,gpt-4,standard,9,,,1000,up,0,,,GPT-4
c_tok,p_jpy,tokens,,standard,3,,,1000,up,0,,,Other
c_mid_api,p_mid,api_calls,,standard,0.1,,,,none,,,,API
gpu_a100,gpu_usd,gpu_seconds,a100,graduated,,,,3600,up,0,,,A100 hours
gpu_other,gpu_usd,gpu_seconds,,standard,1.50,,,3600,up,0,,,Other GPU hours
c_disc_api,p_disc,api_calls,,standard,0.10,,,,none,,,50.00,API
c_disc_img,p_disc,images,,standard,1.00,,,,none,,30.00,,Images
c_cred_api,p_cred,api_calls,,standard,1,,,,none,,,,API calls
c_cred_gb,p_cred,storage_gb,,standard,5,,,,none,,,,Storage GB
c_card,p_pay,payments,card,percentage,,,,,,,,,Card payments,2.9,0.30,2,150,0.50,10.00
c_bank,p_pay,payments,,graduated_percentage,,,,,,,,,Other payments"""

SEEDS = {
    "currencies": [["USD", "2"], ["JPY", "0"], ["CREDITS", "0"]],
    "customers": [
        ["g_api", "Graduated Co", "USD", "0.1", "", "UTC"],
        ["g_ent", "Enterprise Co", "USD", "0", "", "UTC", "45"],
        ["g_jpy", "Yen KK", "JPY", "0.1", "", "Asia/Tokyo"],
        ["g_mid", "Midmonth Inc", "USD", "0.2", "", "UTC"],
        ["g_gpu", "GPU Startup", "USD", "0", "", "UTC"],
        ["g_disc", "Discounted Ltd", "USD", "0.2", "", "UTC"],
        ["g_cred", "Prepaid Co", "CREDITS", "0", "", "UTC"],
        ["g_chg", "Upgrader Inc", "USD", "0", "", "UTC"],
        ["g_pay", "Marketplace Co", "USD", "0", "", "UTC"],
        ["g_ovr", "Contract Co", "USD", "0", "", "UTC"],
        ["g_trial", "Trial Co", "USD", "0", "", "UTC"],
        ["g_trial2", "Long Trial Co", "USD", "0", "", "UTC"],
    ],
    "meters": [
        ["api_calls", "api_call", "count", "", "", "call", "API calls"],
        ["storage_gb", "storage_snapshot", "max", "gb", "", "GB", "Peak storage"],
        ["images", "image_generation", "count", "", "", "image", "Images"],
        ["seats", "user_activity", "unique_count", "user_id", "", "user", "Active users"],
        ["tokens", "llm_tokens", "sum", "tokens", "model", "token", "Tokens"],
        # The README's "adding a meter and a plan with seeds alone" example, verbatim.
        ["gpu_seconds", "gpu_job", "sum", "gpu_seconds", "gpu", "second", "GPU time used"],
        ["payments", "payment", "sum", "amount", "method", "USD", "Payment volume"],
    ],
    "plans": [
        ["p_api", "API", "USD", "10.00", ""],
        ["p_ent", "Enterprise", "USD", "100.00", "1000.00"],
        ["p_jpy", "Tokens JP", "JPY", "1000", ""],
        ["p_mid", "Mid", "USD", "49.99", "300.00"],
        ["gpu_usd", "GPU Cloud", "USD", "99.00", ""],
        ["p_disc", "Limits", "USD", "20.00", ""],
        ["p_cred", "Credits", "CREDITS", "", ""],
        ["p_pay", "Marketplace", "USD", "10.00", ""],
    ],
    "plan_charges": [row.split(",") for row in PLAN_CHARGES_CSV.splitlines()],
    "plan_charge_tiers": [
        ["c_api", "1", "1000", "0", "0"],
        ["c_api", "2", "5000", "0.01", "0"],
        ["c_api", "3", "", "0.005", "0"],
        ["c_gb", "1", "10", "1.00", "0"],
        ["c_gb", "2", "", "0.80", "0"],
        ["c_seats", "1", "3", "0", "0"],
        ["c_seats", "2", "10", "0", "50"],
        ["c_seats", "3", "", "0", "120"],
        ["gpu_a100", "1", "10", "0", "0"],
        ["gpu_a100", "2", "", "4.00", "0"],
        # graduated_percentage: 1 % up to 1,000; 0.5 % + 5.00 up to 5,000; 0.25 % above.
        ["c_bank", "1", "1000", "", "0", "1"],
        ["c_bank", "2", "5000", "", "5.00", "0.5"],
        ["c_bank", "3", "", "", "0", "0.25"],
    ],
    "subscriptions": [
        ["s_api", "g_api", "p_api", "2026-01-01", ""],
        ["s_ent", "g_ent", "p_ent", "2026-01-01", ""],
        ["s_jpy", "g_jpy", "p_jpy", "2026-01-01", ""],
        ["s_mid", "g_mid", "p_mid", "2026-09-16", ""],
        ["s_gpu", "g_gpu", "gpu_usd", "2026-09-01", ""],
        ["s_disc", "g_disc", "p_disc", "2026-01-01", ""],
        ["s_cred", "g_cred", "p_cred", "2026-01-01", ""],
        # g_chg moves from p_mid to p_api on September 16.
        ["s_chg1", "g_chg", "p_mid", "2026-01-01", "2026-09-16"],
        ["s_chg2", "g_chg", "p_api", "2026-09-16", ""],
        ["s_pay", "g_pay", "p_pay", "2026-01-01", ""],
        ["s_ovr", "g_ovr", "p_api", "2026-01-01", ""],
        # Trials (D82): 14 days from Sep 10 (through Sep 23); 30 days from Sep 20 (through
        # Oct 19), across the month end.
        ["s_trial", "g_trial", "p_mid", "2026-09-10", "", "14"],
        ["s_trial2", "g_trial2", "p_mid", "2026-09-20", "", "30", "free"],
    ],
    # subscription_id,charge_id,price_multiplier,override_id,unit_price,base_fee,
    # minimum_commitment,starts_on,ends_on
    "subscription_overrides": [
        # 20 % off every charge of s_disc, but images at half price (a charge's own row wins).
        ["s_disc", "", "0.8"],
        ["s_disc", "c_disc_img", "0.5"],
        # s_ovr's contract on p_api (D77): September's base fee 5.00 and commitment 200.00,
        # then the plan's fee and 10 % off every charge from October; API calls on tiers of
        # its own from September; images at 2.00 a package instead of 2.50, always.
        ["s_ovr", "", "", "", "", "5.00", "200.00", "2026-09-01", "2026-10-01"],
        ["s_ovr", "", "0.9", "", "", "", "", "2026-10-01", ""],
        ["s_ovr", "c_api", "", "o_ovr_api", "", "", "", "2026-09-01", ""],
        ["s_ovr", "c_img", "", "", "2.00"],
    ],
    "subscription_override_tiers": [
        ["o_ovr_api", "1", "2000", "0", "0"],
        ["o_ovr_api", "2", "", "0.004", "0"],
    ],
    # g_ovr's thresholds (D78): spend of 19.00 (October's draft reaches it exactly) and of
    # 205.01 (one cent above September's), 2,500 API calls, 37 images (never reached).
    "usage_thresholds": [
        ["t_spend", "g_ovr", "", "19.00"],
        ["t_spend_high", "g_ovr", "", "205.01"],
        ["t_calls", "g_ovr", "api_calls", "2500"],
        ["t_images", "g_ovr", "images", "37"],
    ],
    "credit_grants": [["grant-1", "g_cred", "10000", "CREDITS", "2026-09-01", "", "1"]],
    # 10 % off September only, and 5.00 off every month from September on.
    "discounts": [
        ["d1", "g_disc", "percentage", "0.1", "2026-09-01", "2026-10-01"],
        ["d2", "g_disc", "fixed_amount", "5.00", "2026-09-01", ""],
    ],
}


def event(event_id: str, customer: str, event_type: str, timestamp: str, **properties) -> str:
    return json.dumps(
        {
            "event_id": event_id,
            "customer_id": customer,
            "event_type": event_type,
            "timestamp": timestamp,
            "properties": properties,
        }
    )


def september_events() -> list[str]:
    lines = []
    # g_api: 6,500 calls, one of them written in +02:00 (still September in UTC).
    lines += [event(f"api-{n}", "g_api", "api_call", "2026-09-05T10:00:00Z") for n in range(6499)]
    lines.append(event("api-6499", "g_api", "api_call", "2026-10-01T01:30:00+02:00"))
    lines.append(lines[0])  # an exact re-delivery: a duplicate, not a 6,501st call
    # A 6,501st call, reversed while September is still open: it simply stops counting.
    lines.append(event("api-extra", "g_api", "api_call", "2026-09-06T10:00:00Z"))
    lines.append(
        json.dumps(
            {
                "event_id": "api-extra-reversal",
                "customer_id": "g_api",
                "event_type": "api_call",
                "timestamp": "2026-09-07T10:00:00Z",
                "reverses_event_id": "api-extra",
            }
        )
    )
    lines += [
        event(f"gb-{n}", "g_api", "storage_snapshot", f"2026-09-{10 + n}T00:00:00Z", gb=gb)
        for n, gb in enumerate([3.2, 12.4, 9.9])
    ]
    lines += [
        event(f"img-{n}", "g_api", "image_generation", "2026-09-07T08:00:00Z") for n in range(26)
    ]
    # g_ent: 30,000 calls and 7 distinct users (9 activity events).
    lines += [event(f"ent-{n}", "g_ent", "api_call", "2026-09-12T12:00:00Z") for n in range(30000)]
    users = ["u1", "u2", "u3", "u4", "u5", "u6", "u7", "u1", "u2"]
    lines += [
        event(f"seat-{n}", "g_ent", "user_activity", "2026-09-13T09:00:00Z", user_id=user)
        for n, user in enumerate(users)
    ]
    # g_jpy: gpt-4 tokens 1,500 + 1,500 + 1; other models 999 + 1,000; no model 500.
    tokens = [("gpt-4", 1500), ("gpt-4", 1500), ("gpt-4", 1), ("llama", 999), ("llama", 1000)]
    lines += [
        event(f"tok-{n}", "g_jpy", "llm_tokens", "2026-09-20T00:00:00+09:00", model=m, tokens=t)
        for n, (m, t) in enumerate(tokens)
    ]
    lines.append(event("tok-nomodel", "g_jpy", "llm_tokens", "2026-09-21T00:00:00Z", tokens=500))
    # g_mid: 5 calls before the subscription starts (unbilled), 1,234 after.
    lines += [event(f"early-{n}", "g_mid", "api_call", "2026-09-10T00:00:00Z") for n in range(5)]
    lines += [event(f"mid-{n}", "g_mid", "api_call", "2026-09-16T00:00:00Z") for n in range(1234)]
    # g_gpu: a100 5,400 + 36,000 + 1 s; t4 7,200 s; one job without a gpu, 100 s.
    gpu_jobs = [("a100", 5400), ("a100", 36000), ("a100", 1), ("t4", 7200)]
    lines += [
        event(f"gpu-{n}", "g_gpu", "gpu_job", "2026-09-08T00:00:00Z", gpu=gpu, gpu_seconds=s)
        for n, (gpu, s) in enumerate(gpu_jobs)
    ]
    lines.append(event("gpu-bare", "g_gpu", "gpu_job", "2026-09-09T00:00:00Z", gpu_seconds=100))
    # g_disc: 1,000 calls and 10 images.
    lines += [event(f"disc-{n}", "g_disc", "api_call", "2026-09-03T00:00:00Z") for n in range(1000)]
    lines += [
        event(f"disc-img-{n}", "g_disc", "image_generation", "2026-09-04T00:00:00Z")
        for n in range(10)
    ]
    # g_cred: 5,000 calls and storage peaking at 200 GB.
    lines += [event(f"cred-{n}", "g_cred", "api_call", "2026-09-05T00:00:00Z") for n in range(5000)]
    lines += [
        event(f"cred-gb-{n}", "g_cred", "storage_snapshot", "2026-09-06T00:00:00Z", gb=gb)
        for n, gb in enumerate([120, 200, 150])
    ]
    # g_chg: 100 calls under the old plan (Sep 10), 2,000 under the new one (Sep 20).
    lines += [event(f"chg-a-{n}", "g_chg", "api_call", "2026-09-10T00:00:00Z") for n in range(100)]
    lines += [event(f"chg-b-{n}", "g_chg", "api_call", "2026-09-20T00:00:00Z") for n in range(2000)]
    # g_pay: card payments 100, 80, 5, 1,000, 200.50 and a -50 refund (listed out of time
    # order: rating follows the timestamps); bank 600 and 2,400; 3,000 with no method.
    card = [("pay-4", 5, 1000), ("pay-1", 2, 100), ("pay-3", 4, 5), ("pay-2", 3, 80)]
    card += [("pay-5", 6, 200.5), ("pay-6", 7, -50)]
    lines += [
        event(pay, "g_pay", "payment", f"2026-09-0{day}T12:00:00Z", method="card", amount=amount)
        for pay, day, amount in card
    ]
    lines += [
        event(f"bank-{n}", "g_pay", "payment", f"2026-09-1{n}T00:00:00Z", method="bank", amount=a)
        for n, a in [(1, 600), (2, 2400)]
    ]
    lines.append(event("bank-3", "g_pay", "payment", "2026-09-13T00:00:00Z", amount=3000))
    # g_ovr: 3,000 calls and 26 images in September; 2,500 calls and 36 images in October.
    for month, calls, images in [("09", 3000, 26), ("10", 2500, 36)]:
        stamp = f"2026-{month}-05T00:00:00Z"
        lines += [event(f"ovr-{month}-{n}", "g_ovr", "api_call", stamp) for n in range(calls)]
        lines += [
            event(f"ovr-img-{month}-{n}", "g_ovr", "image_generation", stamp) for n in range(images)
        ]
    # g_trial: 300 calls inside its trial (Sep 12), 200 after it (Sep 25), all billed;
    # g_trial2: 100 calls inside its free-usage trial (Sep 25), and 40 more (Oct 5).
    lines += [
        event(f"trial-a-{n}", "g_trial", "api_call", "2026-09-12T00:00:00Z") for n in range(300)
    ]
    lines += [
        event(f"trial-b-{n}", "g_trial", "api_call", "2026-09-25T00:00:00Z") for n in range(200)
    ]
    lines += [
        event(f"trial2-{n}", "g_trial2", "api_call", "2026-09-25T00:00:00Z") for n in range(100)
    ]
    lines += [
        event(f"trial2-oct-{n}", "g_trial2", "api_call", "2026-10-05T00:00:00Z") for n in range(40)
    ]
    return lines


@pytest.fixture(scope="module")
def golden(workspace):
    write_seeds(workspace.seeds_dir, SEEDS)
    landing: Path = workspace.landing_dir
    landing.mkdir(parents=True, exist_ok=True)
    (landing / "golden.jsonl").write_text("\n".join(september_events()) + "\n")
    ingest_files(workspace.warehouse, [landing], landing)
    build(workspace, AS_OF)
    return workspace


def invoices(settings, period: str) -> dict[str, tuple]:
    rows = query(
        settings.published_warehouse,
        "select customer_id, subtotal_amount, tax_amount, total_amount, currency, status, "
        "line_item_count from fct_invoices where billing_period_start = ?",
        [period],
    )
    return {row[0]: row[1:] for row in rows}


def lines(settings, customer: str, period: str) -> list[tuple]:
    return query(
        settings.published_warehouse,
        "select line_type, charge_id, tier, quantity, amount from fct_invoice_line_items "
        "where customer_id = ? and billing_period_start = ? "
        "order by line_order, charge_id, tier",
        [customer, period],
    )


D = Decimal


def test_graduated_volume_and_package_lines(golden):
    # api 6,500 calls, graduated 1,000 @ 0 / 5,000 @ 0.01 / open @ 0.005:
    #   tier 1: 1,000 x 0 = 0.00; tier 2: 4,000 x 0.01 = 40.00; tier 3: 1,500 x 0.005 = 7.50
    # storage max(3.2, 12.4, 9.9) = 12.4 GB, rounded up to 13, volume 13 > 10 -> 13 x 0.80 = 10.40
    # images 26, 5 free, packages of 10: ceil(21 / 10) = 3 x 2.50 = 7.50
    assert lines(golden, "g_api", "2026-09-01") == [
        ("base_fee", None, None, D("1"), D("10.00")),
        ("usage", "c_api", 1, D("1000"), D("0.00")),
        ("usage", "c_api", 2, D("4000"), D("40.00")),
        ("usage", "c_api", 3, D("1500"), D("7.50")),
        ("usage", "c_gb", 2, D("13"), D("10.40")),
        ("usage", "c_img", None, D("26"), D("7.50")),
    ]
    # subtotal 10 + 40 + 7.50 + 10.40 + 7.50 = 75.40; tax 10 % = 7.54; total 82.94
    assert invoices(golden, "2026-09-01")["g_api"] == (
        D("75.40"),
        D("7.54"),
        D("82.94"),
        "USD",
        "finalized",
        6,
    )


def test_minimum_commitment_true_up(golden):
    # api 30,000 x 0.02 = 600.00; 7 distinct users -> staircase step 2 (3 < 7 <= 10) = 50.00
    # usage 650.00 under the 1,000.00 commitment -> true-up 350.00
    assert lines(golden, "g_ent", "2026-09-01") == [
        ("base_fee", None, None, D("1"), D("100.00")),
        ("usage", "c_ent_api", None, D("30000"), D("600.00")),
        ("usage", "c_seats", 2, D("7"), D("50.00")),
        ("minimum_commitment", None, None, D("1"), D("350.00")),
    ]
    # subtotal 100 + 600 + 50 + 350 = 1,100.00; tax 0
    assert invoices(golden, "2026-09-01")["g_ent"] == (
        D("1100.00"),
        D("0.00"),
        D("1100.00"),
        "USD",
        "finalized",
        4,
    )


def test_dimension_prices_and_yen_rounding(golden):
    # gpt-4: 3,001 tokens / 1,000 = 3.001, rounded up = 4 x 9 = 36 JPY
    # default price takes every unclaimed token: llama 1,999 + no model 500 = 2,499
    #   -> 2.499 up = 3 x 3 = 9 JPY
    assert lines(golden, "g_jpy", "2026-09-01") == [
        ("base_fee", None, None, D("1"), D("1000")),
        ("usage", "c_gpt4", None, D("4"), D("36")),
        ("usage", "c_tok", None, D("3"), D("9")),
    ]
    # subtotal 1,045; tax 10 % = 104.5 -> 105 (half away from zero, 0 minor units); total 1,150
    assert invoices(golden, "2026-09-01")["g_jpy"] == (
        D("1045"),
        D("105"),
        D("1150"),
        "JPY",
        "finalized",
        3,
    )


def test_mid_month_start_prorates_base_fee_and_commitment(golden):
    # active Sep 16-30: 15 of 30 days. base 49.99 x 15/30 = 24.995 -> 25.00
    # calls before the start are not billed: 1,234 x 0.1 = 123.40
    # commitment 300 x 15/30 = 150.00 -> true-up 150.00 - 123.40 = 26.60
    assert lines(golden, "g_mid", "2026-09-01") == [
        ("base_fee", None, None, D("0.5"), D("25.00")),
        ("usage", "c_mid_api", None, D("1234"), D("123.40")),
        ("minimum_commitment", None, None, D("0.5"), D("26.60")),
    ]
    # subtotal 175.00; tax 20 % = 35.00; total 210.00
    assert invoices(golden, "2026-09-01")["g_mid"] == (
        D("175.00"),
        D("35.00"),
        D("210.00"),
        "USD",
        "finalized",
        3,
    )


def test_a_trial_waives_the_fees_of_its_days_and_shows_as_a_zero_line(golden):
    # g_trial, Mid from Sep 10 with 14 trial days: active 21 of 30 days, 14 in the trial
    # (Sep 10-23), 7 paid. Base 49.99 x 7/30 = 11.6643 -> 11.66; 500 calls x 0.1 = 50.00
    # (the 300 inside the trial too); commitment 300 x 7/30 = 70.00 -> true-up 20.00.
    assert lines(golden, "g_trial", "2026-09-01") == [
        ("trial", None, None, D("14"), D("0.00")),
        ("base_fee", None, None, D("0.233333333"), D("11.66")),
        ("usage", "c_mid_api", None, D("500"), D("50.00")),
        ("minimum_commitment", None, None, D("0.233333333"), D("20.00")),
    ]
    assert invoices(golden, "2026-09-01")["g_trial"] == (
        D("81.66"),
        D("0.00"),
        D("81.66"),
        "USD",
        "finalized",
        4,
    )
    # g_trial2, from Sep 20 with 30 trial days (through Oct 19), usage free: September is
    # all trial, so no base fee, a commitment of 0.00 (no true-up line), and its 100 calls
    # are metered but not priced: 0.00.
    assert lines(golden, "g_trial2", "2026-09-01") == [
        ("trial", None, None, D("11"), D("0.00")),
        ("usage", "c_mid_api", None, D("0"), D("0.00")),
    ]
    assert invoices(golden, "2026-09-01")["g_trial2"][:3] == (D("0.00"), D("0.00"), D("0.00"))
    # October (the draft): 19 trial days (the 40 calls of Oct 5 in them, free), 12 paid of
    # 31. Base 49.99 x 12/31 = 19.3510 -> 19.35; commitment 300 x 12/31 = 116.1290 ->
    # 116.13, all of it a true-up.
    assert lines(golden, "g_trial2", "2026-10-01") == [
        ("trial", None, None, D("19"), D("0.00")),
        ("base_fee", None, None, D("0.387096774"), D("19.35")),
        ("usage", "c_mid_api", None, D("0"), D("0.00")),
        ("minimum_commitment", None, None, D("0.387096774"), D("116.13")),
    ]
    descriptions = query(
        golden.published_warehouse,
        "select description from fct_invoice_line_items where customer_id = 'g_trial2' "
        "and line_type in ('trial', 'base_fee') order by billing_period_start, line_order",
    )
    assert descriptions == [
        ("Mid free trial (11 of 30 days, through 2026-09-30)",),
        ("Mid free trial (19 of 31 days, through 2026-10-19)",),
        ("Mid base fee (12 of 31 days)",),
    ]
    # The free calls are reconciled, not lost: accepted, counted as not invoiced (a
    # subscription, no priced period), each day ok; the period tie-out explains all 100
    # of September as unpriced.
    assert query(
        golden.published_warehouse,
        "select accepted_count, billed_count, not_invoiced_count, status "
        "from fct_reconciliation_daily where customer_id = 'g_trial2' "
        "order by reconciliation_date",
    ) == [(100, 0, 100, "ok"), (40, 0, 40, "ok")]
    assert query(
        golden.published_warehouse,
        "select aggregated_quantity, invoiced_quantity, unpriced_quantity, status "
        "from fct_reconciliation_periods where customer_id = 'g_trial2' "
        "and billing_period_start = '2026-09-01'",
    ) == [(D("100"), D("0"), D("100"), "ok")]


def test_a_meter_and_plan_added_with_seeds_alone(golden):
    # a100: 41,401 s / 3,600 = 11.50... h, rounded up = 12 h: 10 free + 2 x 4.00 = 8.00
    # other GPUs (t4 7,200 s + 100 s without a gpu) = 7,300 s = 2.03 h -> 3 h x 1.50 = 4.50
    assert lines(golden, "g_gpu", "2026-09-01") == [
        ("base_fee", None, None, D("1"), D("99.00")),
        ("usage", "gpu_a100", 1, D("10"), D("0.00")),
        ("usage", "gpu_a100", 2, D("2"), D("8.00")),
        ("usage", "gpu_other", None, D("3"), D("4.50")),
    ]
    # subtotal 99 + 8 + 4.50 = 111.50, no tax
    assert invoices(golden, "2026-09-01")["g_gpu"] == (
        D("111.50"),
        D("0.00"),
        D("111.50"),
        "USD",
        "finalized",
        4,
    )


def test_multipliers_charge_limits_and_discounts(golden):
    # api: 1,000 x 0.10 = 100.00 x 0.8 = 80.00, capped at 50.00 -> charge_maximum -30.00
    # images: 10 x 1.00 x 0.5 (the charge's own override) = 5.00, raised to the 30.00 minimum
    #   -> charge_minimum +25.00
    assert lines(golden, "g_disc", "2026-09-01") == [
        ("base_fee", None, None, D("1"), D("20.00")),
        ("usage", "c_disc_api", None, D("1000"), D("80.00")),
        ("usage", "c_disc_img", None, D("10"), D("5.00")),
        ("charge_maximum", "c_disc_api", None, None, D("-30.00")),
        ("charge_minimum", "c_disc_img", None, None, D("25.00")),
    ]
    # subtotal 20 + 80 - 30 + 5 + 25 = 100.00; discounts 10 % (10.00) + 5.00 = 15.00
    # tax 20 % of 85.00 = 17.00; total 100 - 15 + 17 = 102.00
    assert invoices(golden, "2026-09-01")["g_disc"] == (
        D("100.00"),
        D("17.00"),
        D("102.00"),
        "USD",
        "finalized",
        5,
    )
    assert query(
        golden.published_warehouse,
        "select billing_period_start, discount_amount from fct_invoices "
        "where customer_id = 'g_disc' order by 1",
    ) == [(date(2026, 9, 1), D("15.00")), (date(2026, 10, 1), D("5.00"))]


def test_custom_pricing_unit_paid_with_credits(golden):
    # architecture §6.3: 5,000 calls at 1 + 200 GB at 5 = 6,000 CREDITS; a 10,000 grant pays
    # 6,000 and 4,000 are left. No base fee (blank), no tax.
    assert lines(golden, "g_cred", "2026-09-01") == [
        ("usage", "c_cred_api", None, D("5000"), D("5000")),
        ("usage", "c_cred_gb", None, D("200"), D("1000")),
    ]
    assert query(
        golden.published_warehouse,
        "select subtotal_amount, credits_applied_amount, total_amount from fct_invoices "
        "where customer_id = 'g_cred' order by billing_period_start",
    ) == [(D("6000"), D("6000"), D("0")), (D("0"), D("0"), D("0"))]
    assert query(
        golden.published_warehouse,
        "select grant_id, billing_period_start, applied_amount, balance_after, is_finalized "
        "from fct_credit_balances",
    ) == [("grant-1", date(2026, 9, 1), D("6000"), D("4000"), True)]


def test_percentage_and_graduated_percentage_charges(golden):
    # Card payments, 2.9 % + 0.30 each, the first 2 payments and the first 150.00 free,
    # every charged payment's fee held between 0.50 and 10.00 (D76), in time order:
    #   pay-1 100 (running 100: free) -> 0
    #   pay-2 80 (running 180: crosses 150, rates the 30 above it) 0.87 + 0.30 -> 1.17
    #   pay-3 5: 0.145 + 0.30 = 0.445 -> the 0.50 minimum
    #   pay-4 1,000: 29.00 + 0.30 = 29.30 -> the 10.00 maximum
    #   pay-5 200.50: 5.8145 + 0.30 -> 6.1145
    #   pay-6 -50, a refund: no fee and no fee back
    #   sum 17.7845 -> 17.78; the line shows the summed value 1,335.50
    # Other payments 600 + 2,400 + 3,000 = 6,000, graduated_percentage:
    #   tier 1: 1,000 x 1 % = 10.00; tier 2: 4,000 x 0.5 % + 5.00 = 25.00;
    #   tier 3: 1,000 x 0.25 % = 2.50
    assert lines(golden, "g_pay", "2026-09-01") == [
        ("base_fee", None, None, D("1"), D("10.00")),
        ("usage", "c_bank", 1, D("1000"), D("10.00")),
        ("usage", "c_bank", 2, D("4000"), D("25.00")),
        ("usage", "c_bank", 3, D("1000"), D("2.50")),
        ("usage", "c_card", None, D("1335.50"), D("17.78")),
    ]
    # 10.00 + 37.50 + 17.78 = 65.28, no tax
    assert invoices(golden, "2026-09-01")["g_pay"][:3] == (D("65.28"), D("0.00"), D("65.28"))
    unit_prices = query(
        golden.published_warehouse,
        "select charge_id, tier, unit_price from fct_invoice_line_items "
        "where customer_id = 'g_pay' and billing_period_start = '2026-09-01' "
        "and line_type = 'usage' order by charge_id, tier",
    )
    assert unit_prices == [
        ("c_bank", 1, D("0.01")),
        ("c_bank", 2, D("0.005")),
        ("c_bank", 3, D("0.0025")),
        ("c_card", None, D("0.029")),
    ]


def test_a_subscription_contract_overrides_prices_for_its_periods(golden):
    # September, s_ovr's own base fee 5.00 and API tiers (2,000 at 0, then 0.004):
    #   tier 1: 2,000 x 0 = 0.00; tier 2: 1,000 x 0.004 = 4.00
    # storage unused: volume tier 1, 0.00 (the plan's tiers: no override)
    # images 26, 5 free, packages of 10: 3 x 2.00 (its own price) = 6.00
    # usage 10.00 under its own 200.00 commitment -> true-up 190.00
    assert lines(golden, "g_ovr", "2026-09-01") == [
        ("base_fee", None, None, D("1"), D("5.00")),
        ("usage", "c_api", 1, D("2000"), D("0.00")),
        ("usage", "c_api", 2, D("1000"), D("4.00")),
        ("usage", "c_gb", 1, D("0"), D("0.00")),
        ("usage", "c_img", None, D("26"), D("6.00")),
        ("minimum_commitment", None, None, D("1"), D("190.00")),
    ]
    # 5.00 + 4.00 + 6.00 + 190.00 = 205.00, no tax
    assert invoices(golden, "2026-09-01")["g_ovr"] == (
        D("205.00"),
        D("0.00"),
        D("205.00"),
        "USD",
        "finalized",
        6,
    )
    # October (a draft): the September fee and commitment have ended, so the plan's 10.00
    # and none; the API tiers go on; 10 % off every charge from October:
    #   tier 1: 2,000 x 0 = 0.00; tier 2: 500 x 0.004 x 0.9 = 1.80
    #   images 36, 5 free: 4 packages x 2.00 x 0.9 = 7.20
    assert lines(golden, "g_ovr", "2026-10-01") == [
        ("base_fee", None, None, D("1"), D("10.00")),
        ("usage", "c_api", 1, D("2000"), D("0.00")),
        ("usage", "c_api", 2, D("500"), D("1.80")),
        ("usage", "c_gb", 1, D("0"), D("0.00")),
        ("usage", "c_img", None, D("36"), D("7.20")),
    ]
    # 10.00 + 1.80 + 7.20 = 19.00
    assert invoices(golden, "2026-10-01")["g_ovr"][:3] == (D("19.00"), D("0.00"), D("19.00"))


def test_usage_thresholds_reached_are_recorded_and_alerted_once(golden):
    # September (finalized): 205.00 spend >= 19.00, 3,000 calls >= 2,500; 205.00 < 205.01
    # and 26 images < 37. October (the draft): 19.00 >= 19.00 and 2,500 >= 2,500, 36 < 37.
    assert query(
        golden.published_warehouse,
        "select threshold_crossing_id, threshold_kind, threshold_unit, observed_value, "
        "invoice_status from fct_threshold_crossings order by 1",
    ) == [
        ("t_calls:2026-09", "usage", "call", D("3000"), "finalized"),
        ("t_calls:2026-10", "usage", "call", D("2500"), "draft"),
        ("t_spend:2026-09", "spend", "USD", D("205.00"), "finalized"),
        ("t_spend:2026-10", "spend", "USD", D("19.00"), "draft"),
    ]
    # Only the running draft's crossings alert, one each, with the value exactly.
    alerts_sql = (
        "select scope, customers, summary, details, times_seen from ops.alerts "
        "where alert_kind = 'usage_threshold' order by summary"
    )
    assert query(golden.warehouse, alerts_sql) == [
        (
            "2026-10",
            ["g_ovr"],
            "g_ovr reached spend threshold t_spend in 2026-10: 19.00 USD >= 19.00 USD",
            '["threshold t_spend of 19.00 USD reached in 2026-10"]',
            1,
        ),
        (
            "2026-10",
            ["g_ovr"],
            "g_ovr reached usage threshold t_calls (api_calls) in 2026-10: 2500 call >= 2500 call",
            '["threshold t_calls of 2500 call reached in 2026-10"]',
            1,
        ),
    ]
    # The next day's run sees them again (a day sees its open month) and sends nothing new.
    report = run_quality(golden.warehouse, Window.day(date(2026, 10, 9)))
    raised = raise_alerts(golden.warehouse, alerts_from_report(report), environment={})
    assert [a.alert_kind for a in raised.repeated if a.alert_kind == "usage_threshold"] == [
        "usage_threshold",
        "usage_threshold",
    ]
    assert [a for a in raised.new if a.alert_kind == "usage_threshold"] == []
    assert [row[4] for row in query(golden.warehouse, alerts_sql)] == [2, 2]


def test_payment_terms_give_each_finalized_invoice_its_issue_and_due_dates(golden):
    # September becomes final Oct 1 + 72 h = Oct 4, its issue date. g_api has blank terms,
    # the default net 30: due Nov 3. g_ent is on net 45: due Nov 18.
    terms = query(
        golden.published_warehouse,
        "select customer_id, status, issued_on, net_terms_days, due_on from fct_invoices "
        "where customer_id in ('g_api', 'g_ent') order by billing_period_start, customer_id",
    )
    assert terms == [
        ("g_api", "finalized", date(2026, 10, 4), 30, date(2026, 11, 3)),
        ("g_ent", "finalized", date(2026, 10, 4), 45, date(2026, 11, 18)),
        # October is a draft: it is issued, with the terms then in force, when it is final.
        ("g_api", "draft", None, None, None),
        ("g_ent", "draft", None, None, None),
    ]


GOLDEN_DOCUMENT = Path(__file__).parent / "golden" / "INV-2026-09-000001.html"
DOCUMENT_SELLER = """\
name = "Golden Seller Ltd"
address = ["1 Ledger Lane", "London EC1A 1AA", "United Kingdom"]
email = "billing@golden.test"
tax_id = "GB000000000"
payment_instructions = "Pay within the terms, quoting the invoice number."
"""


def test_an_invoice_document_groups_tiers_under_their_charge(golden, tmp_path):
    import duckdb

    from billing.documents.invoice import Row, Section, load_document, load_seller
    from billing.documents.render import render_html

    with duckdb.connect(str(golden.published_warehouse), read_only=True) as con:
        api, disc, cred = (
            load_document(con, number)
            for number in ("INV-2026-09-000001", "INV-2026-09-000004", "INV-2026-09-000003")
        )
    # g_api (numbers follow customer order: g_api, g_chg, g_cred, g_disc, ...), as worked
    # out in test_graduated_volume_and_package_lines: each tiered charge is a heading with
    # its total (API 0.00 + 40.00 + 7.50 = 47.50) and a row per tier.
    assert (api.customer_name, api.period, api.issued_on, api.due_on, api.net_terms_days) == (
        "Graduated Co",
        "1 September 2026 \N{EN DASH} 30 September 2026",
        "4 October 2026",
        "3 November 2026",
        30,
    )
    assert api.sections == (
        Section("Subscription", (Row("API base fee", "1", "10", "10.00"),)),
        Section(
            "Usage",
            (
                Row("API", "", "", "47.50"),
                Row("Tier 1", "1,000", "0", "0.00", detail=True),
                Row("Tier 2", "4,000", "0.01", "40.00", detail=True),
                Row("Tier 3", "1,500", "0.005", "7.50", detail=True),
                Row("GB", "", "", "10.40"),
                Row("Tier 2, all units", "13", "0.8", "10.40", detail=True),
                Row("Img", "26", "2.5", "7.50"),
            ),
        ),
    )
    assert (api.totals, api.credits, api.amount_due) == (
        (("Subtotal", "75.40"), ("Tax (10 %)", "7.54")),
        (),
        "82.94",
    )
    # g_disc: the caps are their own section; 15.00 of discounts, 20 % tax on 85.00.
    assert disc.sections[-1] == Section(
        "Charge limits",
        (
            Row("API: capped at its maximum of 50.00", "", "", "-30.00"),
            Row("Images: raised to its minimum of 30.00", "", "", "25.00"),
        ),
    )
    assert (disc.totals, disc.amount_due) == (
        (("Subtotal", "100.00"), ("Discount", "-15.00"), ("Tax (20 %)", "17.00")),
        "102.00",
    )
    # g_cred pays 6,000 CREDITS from grant-1, which keeps 4,000; nothing is due.
    assert (cred.totals, cred.credits, cred.amount_due) == (
        (("Subtotal", "6,000"), ("Tax (0 %)", "0"), ("Credits applied", "-6,000")),
        (("grant-1", "-6,000", "4,000"),),
        "0",
    )
    # The whole page, byte for byte (UPDATE_GOLDEN=1 rewrites it after a deliberate change).
    seller_file = tmp_path / "seller.toml"
    seller_file.write_text(DOCUMENT_SELLER)
    html = render_html(api, load_seller(seller_file))
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN_DOCUMENT.parent.mkdir(exist_ok=True)
        GOLDEN_DOCUMENT.write_text(html, encoding="utf-8")
    assert html == GOLDEN_DOCUMENT.read_text(encoding="utf-8")


def test_plan_change_inside_a_period(golden):
    # Old plan (p_mid) Sep 1-15: 15 of 30 days. base 49.99 x 15/30 = 25.00; 100 calls x 0.1
    #   = 10.00; commitment 300 x 15/30 = 150.00 -> true-up 140.00
    # New plan (p_api) Sep 16-30: base 10.00 x 15/30 = 5.00; 2,000 calls graduated:
    #   tier 1 1,000 x 0 = 0.00, tier 2 1,000 x 0.01 = 10.00; storage and images unused: 0.00
    rows = query(
        golden.published_warehouse,
        "select subscription_id, line_type, charge_id, tier, quantity, amount "
        "from fct_invoice_line_items where customer_id = 'g_chg' "
        "and billing_period_start = '2026-09-01' "
        "order by subscription_id, line_order, charge_id, tier",
    )
    assert rows == [
        ("s_chg1", "base_fee", None, None, D("0.5"), D("25.00")),
        ("s_chg1", "usage", "c_mid_api", None, D("100"), D("10.00")),
        ("s_chg1", "minimum_commitment", None, None, D("0.5"), D("140.00")),
        ("s_chg2", "base_fee", None, None, D("0.5"), D("5.00")),
        ("s_chg2", "usage", "c_api", 1, D("1000"), D("0.00")),
        ("s_chg2", "usage", "c_api", 2, D("1000"), D("10.00")),
        ("s_chg2", "usage", "c_gb", 1, D("0"), D("0.00")),
        ("s_chg2", "usage", "c_img", None, D("0"), D("0.00")),
    ]
    # one invoice: 25 + 10 + 140 + 5 + 0 + 10 + 0 + 0 = 190.00, no tax
    assert invoices(golden, "2026-09-01")["g_chg"] == (
        D("190.00"),
        D("0.00"),
        D("190.00"),
        "USD",
        "finalized",
        8,
    )


def test_open_period_is_a_draft_with_zero_usage_lines(golden):
    # October has no usage but g_ovr's: base fees, every charge at quantity 0, commitments in full.
    #   g_api: 10.00 + tier-1 API 0 + storage tier 1 0 + images 0 = 10.00; tax 1.00
    #   g_ent: 100.00 + 0 + seats step 1 (0) + true-up 1,000.00 = 1,100.00
    #   g_jpy: 1,000 + 0 + 0 = 1,000; tax 100
    #   g_mid: 49.99 + 0 + true-up 300.00 = 349.99; tax 20 % = 69.998 -> 70.00
    #   g_gpu: 99.00 + a100 tier 1 (0) + other 0 = 99.00
    #   g_chg: only the new plan: 10.00 + 0 + 0 + 0 = 10.00
    #   g_disc: 20.00 + 0 + 0 + images minimum 30.00 = 50.00; discount 5.00;
    #     tax 20 % of 45.00 = 9.00; total 50 - 5 + 9 = 54.00
    assert invoices(golden, "2026-10-01") == {
        "g_api": (D("10.00"), D("1.00"), D("11.00"), "USD", "draft", 4),
        "g_ent": (D("1100.00"), D("0.00"), D("1100.00"), "USD", "draft", 4),
        "g_jpy": (D("1000"), D("100"), D("1100"), "JPY", "draft", 3),
        "g_mid": (D("349.99"), D("70.00"), D("419.99"), "USD", "draft", 3),
        "g_gpu": (D("99.00"), D("0.00"), D("99.00"), "USD", "draft", 3),
        "g_disc": (D("50.00"), D("9.00"), D("54.00"), "USD", "draft", 4),
        "g_cred": (D("0"), D("0"), D("0"), "CREDITS", "draft", 2),
        "g_chg": (D("10.00"), D("0.00"), D("10.00"), "USD", "draft", 4),
        # g_pay: 10.00 + card 0 (no events, no fee) + bank tier 1 (0) = 10.00
        "g_pay": (D("10.00"), D("0.00"), D("10.00"), "USD", "draft", 3),
        # g_ovr has October usage: test_a_subscription_contract_overrides_prices_for_its_periods
        "g_ovr": (D("19.00"), D("0.00"), D("19.00"), "USD", "draft", 5),
        # g_trial, past its trial: as g_mid without tax. g_trial2: 19 trial days, then
        # 19.35 + 0 + true-up 116.13 (test_a_trial_waives_the_fees_of_its_days_...).
        "g_trial": (D("349.99"), D("0.00"), D("349.99"), "USD", "draft", 3),
        "g_trial2": (D("135.48"), D("0.00"), D("135.48"), "USD", "draft", 4),
    }


def test_ids_are_deterministic_across_rebuilds(golden):
    before = query(
        golden.warehouse, "select invoice_line_item_id from marts.fct_invoice_line_items order by 1"
    )
    build(golden, AS_OF)
    after = query(
        golden.warehouse, "select invoice_line_item_id from marts.fct_invoice_line_items order by 1"
    )
    assert before == after
    # September lines (46, and the trials' 4 + 2) + October lines (35, and 3 + 4)
    assert len(before) == 52 + 42


def test_the_invoices_command_prints_every_period(golden):
    import duckdb

    from billing.warehouse.summary import invoice_tables

    with duckdb.connect(str(golden.published_warehouse), read_only=True) as con:
        text = invoice_tables(con)
        october = invoice_tables(con, "2026-10")
    assert "Invoices for 2026-09" in text and "Invoices for 2026-10" in text
    # Drafts have no number yet; yen shows no decimals; totals per currency.
    assert "(not yet)" in october and "INV-2026-10" not in october
    assert "INV-2026-09-000007 g_jpy      Yen KK" in text
    assert "1,150  JPY" in text
    assert "Invoices for 2026-09" not in october
