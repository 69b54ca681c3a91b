"""Daily reconciliation, the period tie-out and anomaly detection on generated data.

The generator records what it sent (control totals, reversals, spikes); the marts must tie
every event from arrival to the invoice and flag exactly the injected spikes.
"""

from __future__ import annotations

import json
from datetime import date

import pytest
from conftest import generate_and_build, query

from billing.landing import ingest_files
from billing.sample.generate import GenerateOptions
from billing.warehouse.build import build
from billing.warehouse.dbt import BuildError

FIRST_AS_OF = "2026-11-05T00:00:00Z"  # September and October are finalized by this build
SECOND_AS_OF = "2026-11-06T00:00:00Z"
OPTIONS = GenerateOptions(
    events=8_000, customers=12, months=2, first_month=date(2026, 9, 1), seed=11, spikes=2
)


@pytest.fixture(scope="module")
def reconciled(workspace, tmp_path_factory):
    return generate_and_build(workspace, OPTIONS, FIRST_AS_OF, tmp_path_factory.mktemp("record"))


def reported_by_producer(landing_dir, names) -> dict:
    """The control totals as the generator wrote them, read back from its files."""
    totals = {}
    for name in names:
        path = landing_dir / name
        if name.endswith(".csv"):
            rows = [line.split(",") for line in path.read_text().splitlines()[1:]]
        else:
            rows = [list(json.loads(line).values()) for line in path.read_text().splitlines()]
        for report_date, customer_id, event_type, count in rows:
            totals[(report_date, customer_id, event_type)] = int(count)
    return totals


def test_daily_reconciliation_accounts_for_every_raw_row(reconciled, workspace):
    record = reconciled
    (totals,) = query(
        workspace.warehouse,
        "select sum(received_count), sum(accepted_count), sum(duplicate_count), "
        "sum(quarantined_count), sum(reversal_count), sum(reversed_count), "
        "count(*) filter (where routing_delta != 0 or billing_delta != 0) "
        "from marts.fct_reconciliation_daily",
    )
    assert totals == (
        record["raw_rows"],
        record["accepted"],
        record["duplicate"],
        record["quarantined"],
        record["reversals"],
        record["reversals"],  # each accepted reversal cancels one usage event
        0,
    )


def test_producer_control_totals_tie_out_on_every_key(reconciled, workspace):
    expected = reported_by_producer(workspace.landing_dir, reconciled["control_files"])
    rows = query(
        workspace.warehouse,
        "select strftime(reconciliation_date, '%Y-%m-%d'), customer_id, event_type, "
        "producer_reported_count, producer_delta from marts.fct_reconciliation_daily "
        "where producer_reported_count is not null",
    )
    assert {(d, c, t): n for d, c, t, n, _ in rows} == expected
    assert {delta for *_, delta in rows} == {0}
    statuses = dict(
        query(
            workspace.warehouse,
            "select status, count(*) from marts.fct_reconciliation_daily group by status",
        )
    )
    assert set(statuses) == {"ok"}


def test_injected_spikes_are_exactly_the_anomalies(reconciled, workspace):
    assert len(reconciled["spikes"]) == 2
    flagged = query(
        workspace.warehouse,
        "select customer_id, meter_id, strftime(usage_date, '%Y-%m-%d'), history_days >= 7, "
        "ratio_to_mean >= 3, robust_score >= 3.5 from marts.fct_usage_anomalies",
    )
    expected = {(s["customer_id"], "api_calls", s["date"]) for s in reconciled["spikes"]}
    assert {row[:3] for row in flagged} == expected
    assert all(row[3:] == (True, True, True) for row in flagged)


def test_period_tie_out_explains_late_usage_and_reversals(reconciled, workspace):
    (before,) = query(
        workspace.warehouse,
        "select count(*) filter (where status != 'ok'), count(*) filter (where explained_by "
        "is not null), count(*) from marts.fct_reconciliation_periods",
    )
    assert before[:2] == (0, 0) and before[2] > 0
    # A September API call the finalized invoice counted, and its customer.
    (event_id, customer_id) = query(
        workspace.warehouse,
        "select event_id, customer_id from staging.stg_events__usage_events "
        "where event_type = 'api_call' and event_date = '2026-09-20' "
        "and reversed_by_event_id is null order by event_id limit 1",
    )[0]
    late = workspace.landing_dir / "events-late-2026-09.jsonl"
    lines = [
        {
            "event_id": f"late_{n}",
            "customer_id": customer_id,
            "event_type": "api_call",
            "timestamp": "2026-09-20T10:00:00Z",
        }
        for n in range(3)
    ]
    lines.append(
        {
            "event_id": "late_reversal",
            "customer_id": customer_id,
            "event_type": "api_call",
            "timestamp": "2026-11-05T10:00:00Z",
            "reverses_event_id": event_id,
        }
    )
    late.write_text("".join(json.dumps(line) + "\n" for line in lines))
    ingest_files(workspace.warehouse, [late], workspace.landing_dir)
    # The producer never reports the late events, so the day fails reconciliation (asserted
    # below) and the blocking gate stops the build before the ledger and publish; the
    # warehouse's marts still show what the build computed.
    with pytest.raises(BuildError, match=r"quality gates failed \(reconciliation\)"):
        build(workspace, SECOND_AS_OF)

    row = query(
        workspace.warehouse,
        "select status, explained_by, is_finalized, late_usage_quantity, "
        "reversed_after_invoice_quantity, unexplained_quantity, "
        "aggregated_quantity - invoiced_quantity from marts.fct_reconciliation_periods "
        "where customer_id = ? and meter_id = 'api_calls' and billing_period_start = "
        "'2026-09-01'",
        [customer_id],
    )
    assert row == [
        ("ok", "late usage (adjustment); reversed after invoice (adjustment)", True, 3, 1, 0, 2)
    ]
    (day,) = query(
        workspace.warehouse,
        "select status, billed_count, reversed_count, accepted_count, producer_delta "
        "from marts.fct_reconciliation_daily where customer_id = ? and event_type = 'api_call' "
        "and reconciliation_date = '2026-09-20'",
        [customer_id],
    )
    # The three late events are billed (as an adjustment), the reversed one is not; the
    # producer never reported the late ones: we hold three more events than it says it sent
    # for the day, more than 1 % of its count.
    assert day[0] == "fail"
    assert day[1] + day[2] == day[3]
    assert day[2] == 1
    assert day[4] == 3
