"""End to end over two builds: exact values, strict events, rejected and withdrawn files.

First ingest and build: a file of hostile and exact events (values past the double's digits,
values out of range, impossible offsets, non-string and blank ids, a duplicate key), a BOM
with CRLF and a CR-only file, a truncated gzip, and a replay that is later withdrawn. Then
`billing withdraw`, a resend and the fixed gzip, and a second build. Every count is exact.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import query

from billing.landing import ingest_files
from billing.settings import PROJECT_DIR
from billing.warehouse.build import build

AS_OF = "2026-10-20T00:00:00Z"
FIRST_LOAD = datetime(2026, 10, 6)
SECOND_LOAD = datetime(2026, 10, 7)
CUSTOMER = "cust_0003"  # growth_usd: api calls and per-model tokens
BILLING = [sys.executable, "-m", "billing.cli"]


def line(event_id, event_type: str = "api_call", timestamp: str = "2026-10-03T00:00:00Z", **kw):
    """One event line for CUSTOMER, in the producers' format; extra fields as given."""
    fields = {
        "event_id": event_id,
        "customer_id": CUSTOMER,
        "event_type": event_type,
        "timestamp": timestamp,
        **kw,
    }
    return json.dumps(fields)


def tokens(event_id: str, tokens_input: str, tokens_output: str = "1") -> str:
    """A token event whose numbers are written as the given JSON text (no float on the way)."""
    return (
        f'{{"event_id": "{event_id}", "customer_id": "{CUSTOMER}", "event_type": "llm_tokens", '
        f'"timestamp": "2026-10-02T10:00:00Z", "properties": {{"model": "gpt-4", '
        f'"tokens_input": {tokens_input}, "tokens_output": {tokens_output}}}}}'
    )


GOOD_LINES = [
    tokens("e-exact", "123456789.123456789", "12345678901234.56789"),
    tokens("e-huge", "100000000000000000000"),
    tokens("e-noise", "0.0000000004", "0.00000000060000"),
    line("e-offset-24", timestamp="2026-10-02T10:00:00+24:00"),
    line("e-offset-99", timestamp="2026-10-02T10:00:00+99:59"),
    line("e-hour-24", timestamp="2026-10-02T24:00:00Z"),
    line(123),
    line("  "),
    line("e-dup").replace(f'"{CUSTOMER}"', f'"{CUSTOMER}", "customer_id": "cust_0001"', 1),
    line("w1"),
]
REPLAY_LINES = [
    line("w1"),
    line("w2", timestamp="2026-10-03T01:00:00Z"),
    line("w3", timestamp="2026-10-03T02:00:00Z"),
    "not json",
]


def landed(warehouse: Path) -> dict:
    return {
        row[0]: row[1:]
        for row in query(
            warehouse,
            "select file_name, raw_row_count, accepted_count, duplicate_count, "
            "quarantined_count, withdrawn_count, is_withdrawn, withdrawal_reason, "
            "normalizations from marts.fct_landed_files",
        )
    }


def api_calls_per_day(warehouse: Path) -> dict:
    return dict(
        query(
            warehouse,
            "select usage_date::varchar, quantity from marts.fct_usage_daily "
            "where customer_id = ? and meter_id = 'api_calls' order by 1",
            [CUSTOMER],
        )
    )


def snapshot(warehouse: Path) -> dict:
    """Everything the tests assert on, read once after a build."""
    return {
        "landed": landed(warehouse),
        "api_calls": api_calls_per_day(warehouse),
        "token_usage": dict(
            query(
                warehouse,
                "select meter_id, quantity from marts.fct_usage_daily "
                "where customer_id = ? and meter_id in ('input_tokens', 'output_tokens')",
                [CUSTOMER],
            )
        ),
        "good_reasons": query(
            warehouse,
            "select line_number, reason from marts.fct_quarantined_events "
            "where file_name = 'good.jsonl' order by 1",
        ),
        "rejected": query(
            warehouse,
            "select rejection_id, file_name, file_format, is_resolved, resolved_by_file_id "
            "from marts.fct_rejected_files",
        ),
        "received_on_the_3rd": query(
            warehouse,
            "select received_count, accepted_count, duplicate_count, quarantined_count, "
            "routing_delta "
            "from marts.fct_reconciliation_daily where reconciliation_date = '2026-10-03' "
            "and customer_id = ? and event_type = 'api_call'",
            [CUSTOMER],
        ),
        "conservation": query(
            warehouse,
            "select sum(raw_row_count), sum(accepted_count + duplicate_count + "
            "quarantined_count + withdrawn_count) from marts.fct_landed_files",
        ),
        "file_ids": dict(query(warehouse, "select file_name, file_id from raw.landed_files")),
        "rounded": query(
            warehouse,
            "select event_id from staging.stg_events__parsed_events where has_rounded_value",
        ),
    }


@pytest.fixture(scope="module")
def runs(workspace):
    shutil.copytree(PROJECT_DIR / "seeds", workspace.seeds_dir)
    landing = workspace.landing_dir
    landing.mkdir(parents=True)
    (landing / "good.jsonl").write_text("\n".join(GOOD_LINES) + "\n", encoding="utf-8")
    (landing / "bad-replay.jsonl").write_text("\n".join(REPLAY_LINES) + "\n", encoding="utf-8")
    (landing / "endings.jsonl").write_bytes(
        b"\xef\xbb\xbf"
        + f"{line('x1', timestamp='2026-10-04T00:00:00Z')}\r\n"
        f"{line('x2', timestamp='2026-10-04T00:00:00Z')}\r\n".encode()
    )
    (landing / "cr.jsonl").write_bytes(
        f"{line('y1', timestamp='2026-10-04T00:00:00Z')}\r"
        f"{line('y2', timestamp='2026-10-04T00:00:00Z')}\r".encode()
    )
    fixed = gzip.compress((line("z1", timestamp="2026-10-05T00:00:00Z") + "\n").encode())
    (landing / "broken.jsonl.gz").write_bytes(fixed[:-9])

    first_ingest = ingest_files(workspace.warehouse, [landing], landing, loaded_at=FIRST_LOAD)
    build(workspace, AS_OF, verbose=False)
    first = snapshot(workspace.warehouse)

    withdraw = subprocess.run(
        [*BILLING, "withdraw", "bad-replay.jsonl", "--reason", "replayed by mistake"],
        cwd=PROJECT_DIR,
        env={**os.environ, "BILLING_WAREHOUSE": str(workspace.warehouse)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    (landing / "resend.jsonl").write_text(
        line("w2", timestamp="2026-10-03T01:00:00Z")
        + "\n"
        + line("w4", timestamp="2026-10-05T00:00:00Z")
        + "\n",
        encoding="utf-8",
    )
    (landing / "broken.jsonl.gz").write_bytes(fixed)
    second_ingest = ingest_files(workspace.warehouse, [landing], landing, loaded_at=SECOND_LOAD)
    build(workspace, AS_OF, verbose=False)
    second = snapshot(workspace.warehouse)
    return {
        "first_ingest": first_ingest,
        "first": first,
        "withdraw": withdraw,
        "second_ingest": second_ingest,
        "second": second,
    }


def test_a_truncated_gzip_is_rejected_while_the_rest_lands(runs):
    assert runs["first_ingest"].loaded_files == [
        "bad-replay.jsonl",
        "cr.jsonl",
        "endings.jsonl",
        "good.jsonl",
    ]
    assert [name for name, _ in runs["first_ingest"].rejected_files] == ["broken.jsonl.gz"]
    assert runs["first"]["rejected"] == [(1, "broken.jsonl.gz", "jsonl.gz", False, None)]
    # The fixed resend lands and resolves the rejection.
    assert runs["second_ingest"].loaded_files == ["broken.jsonl.gz", "resend.jsonl"]
    broken_id = runs["second"]["file_ids"]["broken.jsonl.gz"]
    assert runs["second"]["rejected"] == [(1, "broken.jsonl.gz", "jsonl.gz", True, broken_id)]


def test_hostile_events_are_quarantined_with_their_reasons(runs):
    assert runs["first"]["good_reasons"] == [
        (2, "value_out_of_range"),
        (4, "invalid_timestamp"),
        (5, "invalid_timestamp"),
        (6, "invalid_timestamp"),
        (7, "invalid_event_id"),
        (8, "missing_event_id"),
        (9, "duplicate_key"),
    ]


def test_values_reach_usage_exactly_from_their_json_text(runs):
    # Through a double these were 123456789.123456790 and 12345678901234.568. The noise
    # event's 10th decimals round half away from zero: 0.0000000004 -> 0, 0.0000000006 ->
    # 0.000000001.
    assert runs["first"]["token_usage"] == {
        "input_tokens": Decimal("123456789.123456789"),
        "output_tokens": Decimal("12345678901234.567890001"),
    }
    assert runs["first"]["rounded"] == [("e-noise",)]


def test_bom_crlf_and_cr_files_split_into_their_events(runs):
    landed = runs["first"]["landed"]
    assert landed["endings.jsonl"] == (2, 2, 0, 0, 0, False, None, "bom_stripped,crlf_line_endings")
    assert landed["cr.jsonl"] == (2, 2, 0, 0, 0, False, None, "cr_line_endings")
    assert runs["first"]["api_calls"]["2026-10-04"] == 4


def test_before_the_withdrawal_the_replay_counts(runs):
    landed = runs["first"]["landed"]
    # The replay landed first (name order), so its w1 is accepted and good.jsonl's copy is
    # a duplicate.
    assert landed["good.jsonl"] == (10, 2, 1, 7, 0, False, None, "")
    assert landed["bad-replay.jsonl"] == (4, 3, 0, 1, 0, False, None, "")
    assert runs["first"]["api_calls"] == {"2026-10-03": 3, "2026-10-04": 4}
    # good.jsonl's id-less, number-id and duplicate-key lines are dated the 3rd too.
    assert runs["first"]["received_on_the_3rd"] == [(7, 3, 1, 3, 0)]


def test_a_withdrawn_file_keeps_its_rows_and_stops_counting(runs):
    withdraw = runs["withdraw"]
    assert withdraw.returncode == 0, withdraw.stderr
    assert withdraw.stdout.startswith(
        "withdrew bad-replay.jsonl (file_id 1, 4 rows): replayed by mistake"
    )
    landed = runs["second"]["landed"]
    assert landed["bad-replay.jsonl"] == (4, 0, 0, 0, 4, True, "replayed by mistake", "")
    # Withdrawn copies claim no event_id: good.jsonl's w1 (a duplicate before) is accepted,
    # and so is the resend of w2.
    assert landed["good.jsonl"] == (10, 3, 0, 7, 0, False, None, "")
    assert landed["resend.jsonl"] == (2, 2, 0, 0, 0, False, None, "")
    # w3 existed only in the withdrawn file: 2026-10-03 has w1 and w2 now.
    assert runs["second"]["api_calls"] == {"2026-10-03": 2, "2026-10-04": 4, "2026-10-05": 2}
    # Withdrawn rows count as never received in the daily reconciliation.
    assert runs["second"]["received_on_the_3rd"] == [(5, 2, 0, 3, 0)]


def test_every_row_is_accounted_for_in_both_builds(runs):
    assert runs["first"]["conservation"] == [(18, 18)]
    assert runs["second"]["conservation"] == [(21, 21)]
