"""Incremental staging (DECISIONLOG D57): a landed file is parsed once, and batches behave
as one history.

Two builds over twelve files. The second build brings a duplicate and a conflicting copy of
events of the first batch, a reversal of one of them, a customer and a meter the first
build did not know, a later `as_of` that makes a future-dated event of the first batch
current, and two first-batch files withdrawn, one of them resent. Every row must end where
one build over all the files would put it; a line no change touches is not parsed again;
routing and usage events are rewritten only for the event ids a batch changed (DECISIONLOG
D58), metering, pricing and daily usage only for those ids and their days (D61, with a
third build whose seeds do not change), and period usage only for their customer months
(D64); and a full refresh of every model, or a build
killed after any of several models and run again, gives the same marts row for row.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from decimal import Decimal as D
from pathlib import Path

import duckdb
import pytest
from conftest import query, write_seeds

from billing.landing import ingest_files, withdraw_file
from billing.settings import Settings
from billing.warehouse.build import build
from billing.warehouse.dbt import BuildError

FIRST_AS_OF = "2026-09-10T00:00:00Z"
SECOND_AS_OF = "2026-09-20T00:00:00Z"


def seeds(second_batch: bool) -> dict:
    """c1 on a plan pricing calls at 0.01 and stored GB at 0.50; c2 and the storage meter
    only arrive with the second batch."""
    customers = [["c1", "One Co", "USD", "0", "", "UTC"]]
    meters = [["api_calls", "api_call", "count", "", "", "call", "API calls"]]
    charges = [["ch_calls", "p1", "api_calls", "", "standard", "0.01"] + [""] * 3 + ["none"]]
    subscriptions = [["s1", "c1", "p1", "2026-01-01", ""]]
    if second_batch:
        customers.append(["c2", "Two Co", "USD", "0", "", "UTC"])
        meters.append(["storage_gb", "storage", "sum", "gb", "", "GB", "Stored GB"])
        charges.append(["ch_gb", "p1", "storage_gb", "", "standard", "0.50"] + [""] * 3 + ["none"])
        subscriptions.append(["s2", "c2", "p1", "2026-01-01", ""])
    return {
        "currencies": [["USD", "2"]],
        "customers": customers,
        "meters": meters,
        "plans": [["p1", "Plan", "USD", "0", ""]],
        "plan_charges": [[*row, "", "", "", row[0]] for row in charges],
        "plan_charge_tiers": [],
        "subscriptions": subscriptions,
        "subscription_overrides": [],
        "credit_grants": [],
        "discounts": [],
    }


def event(event_id: str, day: str, customer: str = "c1", kind: str = "api_call", **extra) -> str:
    return json.dumps(
        {
            "event_id": event_id,
            "customer_id": customer,
            "event_type": kind,
            "timestamp": f"2026-09-{day}Z",
            **extra,
        }
    )


# Ten files no later change touches, one event each: parsed by the first build only. Ten,
# so the files parsed again have two-digit ids.
CLEAN_IDS = [1, 2, 3, 4, 5, 7, 8, 9, 10, 11]
CLEAN_FILES = {
    f"day-05-{n:02d}.jsonl": [event(f"e{n}", "05T10:00:00", properties={"region": "eu"})]
    for n in CLEAN_IDS
}
# A file of rows the first build cannot accept yet: each is judged again by the second,
# alone; e12 and r7, accepted at once, are not parsed again.
PENDING_FILE = [
    event("f1", "12T00:00:00"),  # 2 days past the first as_of: future_timestamp, then current
    event("u1", "06T00:00:00", customer="c2"),  # unknown_customer until c2 is in the seeds
    event("g1", "06T00:00:00", kind="storage", properties={"gb": "7"}),  # no meter yet
    event("e12", "06T00:00:00"),
    event("x1", "06T25:00:00", customer="c2"),  # invalid_timestamp, read again with c2 known
    event("r7", "06T00:00:00", reverses_event_id="e7"),  # accepted at once: e7 bills nothing
]
SECOND_FILE = [
    event("e1", "05T10:00:00", properties={"region": "eu"}),  # duplicate of the first batch
    event("e2", "05T10:00:00", properties={"region": "us"}),  # idempotency_conflict
    event("r3", "15T00:00:00", reverses_event_id="e3"),  # reverses a first-batch event
    event("r9", "15T00:00:00", reverses_event_id="e99"),  # reversal_of_unknown_event
    event("e6", "16T00:00:00"),
    event("e5", "05T10:00:00", properties={"region": "eu"}),  # resend of a withdrawn file
    event("x7", "15T00:00:00", reverses_event_id="r7"),  # a reversal of a reversal: unknown
]
# Withdrawn before the second build: e4 is billed no more; e5 is billed from its resend.
WITHDRAWN_FILES = ["day-05-04.jsonl", "day-05-05.jsonl"]

EXPECTED_ROUTING = {
    **{(name, 1): ("accepted", None) for name in CLEAN_FILES},
    **{(name, 1): ("withdrawn", None) for name in WITHDRAWN_FILES},
    ("day-06.jsonl", 1): ("accepted", None),
    ("day-06.jsonl", 2): ("accepted", None),
    ("day-06.jsonl", 3): ("accepted", None),
    ("day-06.jsonl", 4): ("accepted", None),
    ("day-06.jsonl", 5): ("quarantined", "invalid_timestamp"),
    ("day-06.jsonl", 6): ("accepted", None),
    ("day-15.jsonl", 1): ("duplicate", None),
    ("day-15.jsonl", 2): ("quarantined", "idempotency_conflict"),
    ("day-15.jsonl", 3): ("accepted", None),
    ("day-15.jsonl", 4): ("quarantined", "reversal_of_unknown_event"),
    ("day-15.jsonl", 5): ("accepted", None),
    ("day-15.jsonl", 6): ("accepted", None),
    ("day-15.jsonl", 7): ("quarantined", "reversal_of_unknown_event"),
}


def land(settings: Settings, name: str, lines: list[str]) -> None:
    settings.landing_dir.mkdir(parents=True, exist_ok=True)
    (settings.landing_dir / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    ingest_files(settings.warehouse, [settings.landing_dir], settings.landing_dir)


def routing(warehouse: Path) -> dict:
    return {
        (name, line): (status, reason)
        for name, line, status, reason in query(
            warehouse,
            "select file_name, line_number, event_status, quarantine_reason "
            "from staging.stg_events__routed_events",
        )
    }


def parsed_as_of(warehouse: Path) -> dict:
    """Per file, the `as_of` of the run that last parsed each of its lines, in line order."""
    return {
        name: tuple(values)
        for name, values in query(
            warehouse,
            "select file_name, list(parsed_as_of::varchar order by line_number) "
            "from staging.stg_events__parsed_events group by file_name",
        )
    }


def marts(warehouse: Path) -> dict:
    """Every row of every mart, in a stable order."""
    tables = [
        name
        for (name,) in query(
            warehouse,
            "select table_name from information_schema.tables where table_schema = 'marts' "
            "order by table_name",
        )
    ]
    return {
        table: query(warehouse, f"select * from marts.{table} order by all") for table in tables
    }


def parsed_rows(warehouse: Path) -> list[tuple]:
    """Every parsed row but the lineage columns `parsed_as_of` and `parse_batch`."""
    return query(
        warehouse,
        "select * exclude (parsed_as_of, parse_batch) from staging.stg_events__parsed_events "
        "order by all",
    )


def staged_rows(warehouse: Path) -> dict:
    """Every routed row and every usage event, but the batch bookkeeping (D58, D68)."""
    return {
        "routed": query(
            warehouse,
            "select * exclude (parsed_through_batch, routed_batch) "
            "from staging.stg_events__routed_events order by all",
        ),
        "usage": query(
            warehouse,
            "select * exclude (routed_through_batch, written_batch) "
            "from staging.stg_events__usage_events order by all",
        ),
        "metered": query(
            warehouse,
            "select * exclude (routed_through_batch, written_batch) "
            "from intermediate.int_events_metered order by all",
        ),
        "priced": query(
            warehouse,
            "select * exclude (routed_through_batch, written_batch) "
            "from intermediate.int_events_priced order by all",
        ),
        "days": query(
            warehouse,
            "select * exclude (routed_through_batch) "
            "from intermediate.int_usage_aggregated_to_days order by all",
        ),
        "counted": query(
            warehouse,
            "select * exclude (routed_through_batch) "
            "from intermediate.int_events_counted_to_days order by all",
        ),
        "periods": query(
            warehouse,
            "select * exclude (routed_through_batch) "
            "from intermediate.int_usage_aggregated_to_periods order by all",
        ),
        "charges": query(
            warehouse,
            "select * exclude (routed_through_batch) "
            "from intermediate.int_usage_aggregated_to_charges order by all",
        ),
        "tied_out": query(
            warehouse,
            "select * exclude (routed_through_batch) "
            "from intermediate.int_usage_tied_out_to_periods order by all",
        ),
    }


def rows_written_since(warehouse: Path, batch: int) -> dict:
    """The routed rows and usage events a build after routed batch `batch` wrote."""
    return {
        "routed": {
            (name, line)
            for name, line in query(
                warehouse,
                "select file_name, line_number from staging.stg_events__routed_events "
                "where routed_batch > ?",
                [batch],
            )
        },
        "usage": {
            event_id
            for (event_id,) in query(
                warehouse,
                "select event_id from staging.stg_events__usage_events "
                "where routed_through_batch > ?",
                [batch],
            )
        },
        "metered": {
            event_id
            for (event_id,) in query(
                warehouse,
                "select event_id from intermediate.int_events_metered "
                "where routed_through_batch > ?",
                [batch],
            )
        },
        "priced": {
            event_id
            for (event_id,) in query(
                warehouse,
                "select event_id from intermediate.int_events_priced "
                "where routed_through_batch > ?",
                [batch],
            )
        },
        "days": {
            (customer, str(day), meter)
            for customer, day, meter in query(
                warehouse,
                "select customer_id, event_date, meter_id "
                "from intermediate.int_usage_aggregated_to_days where routed_through_batch > ?",
                [batch],
            )
        },
        "counted": {
            (str(day), customer, kind)
            for day, customer, kind in query(
                warehouse,
                "select reconciliation_date, customer_id, event_type "
                "from intermediate.int_events_counted_to_days where routed_through_batch > ?",
                [batch],
            )
        },
        **{
            name: {
                (customer, str(period), meter_or_charge)
                for customer, period, meter_or_charge in query(
                    warehouse,
                    f"select customer_id, billing_period_start, {column} "
                    f"from intermediate.{model} where routed_through_batch > ?",
                    [batch],
                )
            }
            for name, model, column in [
                ("periods", "int_usage_aggregated_to_periods", "meter_id"),
                ("charges", "int_usage_aggregated_to_charges", "charge_id"),
                ("tied_out", "int_usage_tied_out_to_periods", "meter_id"),
            ]
        },
    }


def invoice_totals(warehouse: Path) -> list[tuple]:
    return query(
        warehouse,
        "select customer_id, billing_period_start::varchar, status, total_amount "
        "from marts.fct_invoices order by all",
    )


def copy_warehouse(origin: Settings, root: Path) -> Settings:
    root.mkdir(parents=True)
    copy = Settings(root / "warehouse.duckdb", origin.landing_dir, origin.seeds_dir)
    shutil.copyfile(origin.warehouse, copy.warehouse)
    return copy


KILLER = """
import os, sys
from pathlib import Path
from dbt.cli.main import dbtRunner
from billing.settings import PROJECT_DIR, Settings
from billing.warehouse.dbt import PRODUCTION_BUILD_ARGS, dbt_environment, prepare_run
from billing.warehouse.run_context import run_context_for

warehouse, landing, seeds, as_of, victim = sys.argv[1:]
settings = Settings(Path(warehouse), Path(landing), Path(seeds))
prepare_run(settings, run_context_for(as_of, "build-killed"))
dbt_environment(settings)

def kill(event):
    if event.info.name == "NodeFinished" and event.data.node_info.node_name == victim:
        os._exit(137)  # as kill -9: no commit, no cleanup, no flush

dbtRunner(callbacks=[kill]).invoke(
    ["build", *PRODUCTION_BUILD_ARGS, "--project-dir", str(PROJECT_DIR),
     "--profiles-dir", str(PROJECT_DIR)]
)
sys.exit(3)  # the victim never finished: the test must fail
"""


def killed_build(settings: Settings, as_of: str, victim: str) -> int:
    """A build killed (os._exit, no cleanup) right after dbt finished the node `victim`:
    every model commits on its own, so this is each state a kill -9 can leave."""
    paths = [str(settings.warehouse), str(settings.landing_dir), str(settings.seeds_dir)]
    completed = subprocess.run(
        [sys.executable, "-c", KILLER, *paths, as_of, victim],
        check=False,
        capture_output=True,
        text=True,
    )
    return completed.returncode


@pytest.fixture(scope="module")
def batches(workspace, tmp_path_factory):
    root = tmp_path_factory.mktemp("incremental")
    write_seeds(workspace.seeds_dir, seeds(second_batch=False))
    for name, lines in CLEAN_FILES.items():
        land(workspace, name, lines)
    land(workspace, "day-06.jsonl", PENDING_FILE)  # file_id 11
    first_gates = build(workspace, FIRST_AS_OF).gates
    first = {
        "gates": first_gates,
        "routing": routing(workspace.warehouse),
        "parsed": parsed_as_of(workspace.warehouse),
        "routed_batch": query(
            workspace.warehouse, "select max(routed_batch) from staging.stg_events__routed_events"
        )[0][0],
    }

    write_seeds(workspace.seeds_dir, seeds(second_batch=True))
    land(workspace, "day-15.jsonl", SECOND_FILE)
    for name in WITHDRAWN_FILES:
        withdraw_file(workspace.warehouse, name, "sent by mistake")
    before_second = copy_warehouse(workspace, root / "before-second")
    second_gates = build(workspace, SECOND_AS_OF).gates
    second = {
        "gates": second_gates,
        "routing": routing(workspace.warehouse),
        "parsed": parsed_as_of(workspace.warehouse),
        "marts": marts(workspace.warehouse),
        "parsed_rows": parsed_rows(workspace.warehouse),
        "staged_rows": staged_rows(workspace.warehouse),
        "written": rows_written_since(workspace.warehouse, first["routed_batch"]),
        "counted_keys": rows_written_since(workspace.warehouse, 0)["counted"],
        "invoices": invoice_totals(workspace.warehouse),
    }
    return {"first": first, "second": second, "before_second": before_second, "root": root}


def test_the_first_build_holds_back_what_it_cannot_judge_yet(batches):
    assert batches["first"]["routing"][("day-06.jsonl", 1)] == ("quarantined", "future_timestamp")
    assert batches["first"]["routing"][("day-06.jsonl", 2)] == ("quarantined", "unknown_customer")
    assert batches["first"]["routing"][("day-06.jsonl", 3)] == (
        "quarantined",
        "unknown_event_type",
    )


def test_batches_route_as_one_history(batches):
    assert batches["second"]["routing"] == EXPECTED_ROUTING


def test_a_line_is_parsed_once_unless_it_would_be_judged_differently(batches):
    first, second = "2026-09-10 00:00:00", "2026-09-20 00:00:00"
    assert batches["first"]["parsed"] == {
        **dict.fromkeys(CLEAN_FILES, (first,)),
        "day-06.jsonl": (first,) * 6,
    }
    assert batches["second"]["parsed"] == {
        **dict.fromkeys(CLEAN_FILES, (first,)),  # not parsed again
        "day-06.jsonl": (second, second, second, first, second, first),  # four judged again
        "day-15.jsonl": (second,) * 7,
    }


def test_routing_and_usage_events_touch_only_the_event_ids_a_batch_changed(batches):
    # Changed: the lines parsed again (day-06 but e12), every line of day-15 and the two
    # withdrawn files. Routed again: every copy of their ids (e1, e2 of the first batch) and
    # e3, which r3 reverses; e7 to e11, e12 and r7 (which x7 names, but which is a reversal
    # itself, checked against e7) are left as they were.
    assert batches["second"]["written"]["routed"] == {
        *((f"day-05-{n:02d}.jsonl", 1) for n in (1, 2, 3, 4, 5)),
        *(("day-06.jsonl", line) for line in (1, 2, 3, 5)),
        *(("day-15.jsonl", line) for line in range(1, 8)),
    }
    # Usage events of those ids still accepted; e4 (withdrawn) is gone, not rewritten.
    assert batches["second"]["written"]["usage"] == {"e1", "e2", "e3", "e5", "e6", "f1", "g1", "u1"}


def test_metering_and_pricing_touch_only_the_event_ids_a_batch_changed(batches):
    # Metering rewrites the usage events' ids (D61). The second batch also brings c2's
    # subscription and the storage charge, so pricing matches every event again.
    written = batches["second"]["written"]
    assert written["metered"] == written["usage"]
    priced = {row[0] for row in batches["second"]["staged_rows"]["priced"]}
    assert written["priced"] == priced
    assert len(priced) == 14  # e1 e2 e3 e5 e7 to e11 (e4 withdrawn), f1 u1 g1 e12, e6
    # The new subscription changes who is billed, so every reconciliation key is counted
    # again (D63): the seven dated keys, and x1 (no readable timestamp) on its load day.
    assert written["counted"] == batches["second"]["counted_keys"]
    dated = {key for key in written["counted"] if key[0].startswith("2026-09")}
    assert dated == {
        ("2026-09-05", "c1", "api_call"),
        ("2026-09-06", "c1", "api_call"),
        ("2026-09-06", "c1", "storage"),
        ("2026-09-06", "c2", "api_call"),
        ("2026-09-12", "c1", "api_call"),
        ("2026-09-15", "c1", "api_call"),
        ("2026-09-16", "c1", "api_call"),
    }
    assert [key[1:] for key in written["counted"] - dated] == [("c2", "api_call")]
    # Both customers' September changed (D64): every period and every charge recomputed.
    assert written["periods"] == {
        ("c1", "2026-09-01", "api_calls"),
        ("c1", "2026-09-01", "storage_gb"),
        ("c2", "2026-09-01", "api_calls"),
    }
    assert written["charges"] == {
        ("c1", "2026-09-01", "ch_calls"),
        ("c1", "2026-09-01", "ch_gb"),
        ("c2", "2026-09-01", "ch_calls"),
    }
    # The period tie-out (D67): the new matching rules tie out every month again, each
    # meter a plan charges for (c2's storage has a charge and no usage).
    assert written["tied_out"] == {
        ("c1", "2026-09-01", "api_calls"),
        ("c1", "2026-09-01", "storage_gb"),
        ("c2", "2026-09-01", "api_calls"),
        ("c2", "2026-09-01", "storage_gb"),
    }


# A third batch with the seeds unchanged: a new call, a reversal of a first-batch event, a
# stored-GB reading, and a first-batch file withdrawn.
THIRD_FILE = [
    event("n1", "17T00:00:00"),
    event("r8", "17T00:00:00", reverses_event_id="e8"),
    event("g2", "17T00:00:00", kind="storage", properties={"gb": "3"}),
]
THIRD_AS_OF = "2026-09-25T00:00:00Z"


@pytest.fixture(scope="module")
def third_batch(workspace, batches):
    copied = copy_warehouse(workspace, batches["root"] / "third")
    third = Settings(copied.warehouse, batches["root"] / "third" / "landing", copied.seeds_dir)
    routed_before = query(
        third.warehouse, "select max(routed_batch) from staging.stg_events__routed_events"
    )[0][0]
    land(third, "day-17.jsonl", THIRD_FILE)
    withdraw_file(third.warehouse, "day-05-10.jsonl", "sent by mistake")
    build(third, THIRD_AS_OF)
    return {
        "settings": third,
        "written": rows_written_since(third.warehouse, routed_before),
        "staged_rows": staged_rows(third.warehouse),
        "marts": marts(third.warehouse),
        "invoices": invoice_totals(third.warehouse),
    }


def test_with_the_seeds_unchanged_pricing_matches_only_the_changed_events(third_batch):
    # n1 and g2 are new, e8 is now reversed; e10 (withdrawn) is deleted, not rewritten,
    # and r8, a reversal, has no reading (D61).
    assert third_batch["written"]["metered"] == {"n1", "e8", "g2"}
    assert third_batch["written"]["priced"] == {"n1", "e8", "g2"}
    metered = {row[0] for row in third_batch["staged_rows"]["metered"]}
    priced = {row[0] for row in third_batch["staged_rows"]["priced"]}
    # Days: c1's 5th (e8, e10 out) and 17th (n1, g2) recomputed; the 6th, 15th, 16th kept.
    assert third_batch["written"]["days"] == {
        ("c1", "2026-09-05", "api_calls"),
        ("c1", "2026-09-17", "api_calls"),
        ("c1", "2026-09-17", "storage_gb"),
    }
    # Reconciliation counts (D63): the 17th's calls (n1, r8) and storage (g2), and the
    # 5th's calls (e8 now reversed, e10's file withdrawn); the other days are kept.
    assert third_batch["written"]["counted"] == {
        ("2026-09-17", "c1", "api_call"),
        ("2026-09-17", "c1", "storage"),
        ("2026-09-05", "c1", "api_call"),
    }
    # Periods (D64): only c1's September, from all its events; c2's is kept as it was.
    assert third_batch["written"]["periods"] == {
        ("c1", "2026-09-01", "api_calls"),
        ("c1", "2026-09-01", "storage_gb"),
    }
    assert third_batch["written"]["charges"] == {
        ("c1", "2026-09-01", "ch_calls"),
        ("c1", "2026-09-01", "ch_gb"),
    }
    kept = {(row[1], str(row[3]), row[4]) for row in third_batch["staged_rows"]["charges"]}
    assert ("c2", "2026-09-01", "ch_calls") in kept
    # The period tie-out (D67): c1's September tied out again, c2's kept.
    assert third_batch["written"]["tied_out"] == {
        ("c1", "2026-09-01", "api_calls"),
        ("c1", "2026-09-01", "storage_gb"),
    }
    tied_out = query(
        third_batch["settings"].warehouse,
        "select customer_id, billing_period_start::varchar, meter_id "
        "from intermediate.int_usage_tied_out_to_periods order by all",
    )
    assert ("c2", "2026-09-01", "api_calls") in tied_out
    assert "e10" not in metered | priced
    assert metered == priced
    assert len(priced) == 15  # the second batch's 14, n1 and g2 in, e10 out
    # c1: the second batch's 10 calls, n1 in, e8 (reversed) and e10 out: 9 x 0.01 = 0.09;
    # 7 + 3 GB x 0.50 = 5.00 -> 5.09. c2 unchanged.
    assert third_batch["invoices"] == [
        ("c1", "2026-09-01", "draft", D("5.09")),
        ("c2", "2026-09-01", "draft", D("0.01")),
    ]


def test_a_full_refresh_after_the_third_batch_gives_the_same_rows(third_batch, batches):
    refreshed = copy_warehouse(third_batch["settings"], batches["root"] / "third-refreshed")
    build(refreshed, THIRD_AS_OF, full_refresh=True)
    assert staged_rows(refreshed.warehouse) == third_batch["staged_rows"]
    assert marts(refreshed.warehouse) == third_batch["marts"]


def test_a_build_gates_only_the_staged_rows_routed_since_the_last_passed_gate(batches):
    # The gates check the months with data, and x1 (day-06 line 5, no readable timestamp)
    # counts on the day its file was loaded, today, outside them. The first build checks
    # the other 15 lines it routed; the second only the rows it routed (again): 5
    # first-batch rows, 3 of day-06 (x1 aside), the 7 lines of day-15 (D59).
    assert batches["first"]["gates"].endswith("(15 staged rows checked)")
    assert batches["second"]["gates"].endswith(
        "(15 staged rows checked, those routed since the last passed gate)"
    )


def test_invoices_count_each_event_once(batches):
    # c1: e1, e2, e5 (its resend), e8 to e12 (e3 reversed by r3, e7 by r7, e4 withdrawn),
    # f1 and e6: 10 calls x 0.01 = 0.10; c2: u1, one call = 0.01; g1's 7 GB belong to c1:
    # 7 x 0.50 = 3.50 -> c1 3.60
    assert batches["second"]["invoices"] == [
        ("c1", "2026-09-01", "draft", D("3.60")),
        ("c2", "2026-09-01", "draft", D("0.01")),
    ]


def test_a_full_refresh_gives_every_mart_row_the_incremental_build_gave(workspace, batches):
    refreshed = copy_warehouse(workspace, batches["root"] / "full-refresh")
    build(refreshed, SECOND_AS_OF, full_refresh=True)  # `billing build --full-refresh`
    assert parsed_as_of(refreshed.warehouse) == {
        **dict.fromkeys(CLEAN_FILES, ("2026-09-20 00:00:00",)),
        "day-06.jsonl": ("2026-09-20 00:00:00",) * 6,
        "day-15.jsonl": ("2026-09-20 00:00:00",) * 7,
    }
    assert routing(refreshed.warehouse) == EXPECTED_ROUTING
    assert parsed_rows(refreshed.warehouse) == batches["second"]["parsed_rows"]
    assert staged_rows(refreshed.warehouse) == batches["second"]["staged_rows"]
    assert marts(refreshed.warehouse) == batches["second"]["marts"]


def write(warehouse: Path, sql: str) -> None:
    """A change no build would make, to see what the data tests catch."""
    with duckdb.connect(str(warehouse)) as con:
        con.execute(sql)


def scoped_passes(warehouse: Path) -> dict:
    """Each scoped data test's latest recorded pass (D68), by the test's short name."""
    rows = query(
        warehouse,
        "select test_id, max(passed_through_batch) from ops.data_test_passes group by test_id",
    )
    return {test_id.split(".")[2]: batch for test_id, batch in rows}


def test_event_table_tests_read_the_rows_written_since_they_last_passed(workspace, batches):
    copy = copy_warehouse(workspace, batches["root"] / "scoped-tests")
    usage = "staging.stg_events__usage_events"
    written = query(copy.warehouse, f"select max(written_batch) from {usage}")[0][0]
    passes = scoped_passes(copy.warehouse)
    # Every row and key test of the event tables recorded the batch it read up to; the
    # relationships tests read every row and record nothing.
    assert passes["primary_key_stg_events__usage_events_event_id"] == written
    assert passes["not_null_stg_events__usage_events_customer_id"] == written
    assert not [name for name in passes if name.startswith("relationships_")]
    assert len(passes) == 21

    def copy_of_e1(batch_sql: str, customer_sql: str = "customer_id", replaced: str = "") -> None:
        write(
            copy.warehouse,
            f"insert into {usage} select * replace ({customer_sql} as customer_id, "
            f"{batch_sql} as written_batch{replaced}) from {usage} where event_id = 'e1'",
        )

    # A row left by an earlier, passed batch is not read again: a second copy of e1 marked
    # as written before the last pass goes unseen by the selection's tests.
    copy_of_e1(f"{written} - 1")
    build(copy, SECOND_AS_OF, select="stg_events__usage_events")
    # The same copy written after the pass shares its keys (event and raw row) with the old
    # row: both are read and the key tests fail, and a null customer in a new row fails its
    # not_null.
    write(copy.warehouse, f"delete from {usage} where written_batch = {written} - 1")
    copy_of_e1(f"{written} + 1", customer_sql="null")
    with pytest.raises(BuildError) as failed:
        build(copy, SECOND_AS_OF, select="stg_events__usage_events")
    assert "primary_key_stg_events__usage_events_event_id" in str(failed.value)
    assert "not_null_stg_events__usage_events_customer_id" in str(failed.value)
    # A failed test records no pass: the next build reads the bad row again.
    key_test = "primary_key_stg_events__usage_events_event_id"
    assert scoped_passes(copy.warehouse)[key_test] == written
    # A new row without a key fails the key's test alone (D75): a null matches no key, so
    # the scoped primary_key test reads the new null-key rows as well.
    write(copy.warehouse, f"delete from {usage} where written_batch = {written} + 1")
    copy_of_e1(f"{written} + 1", replaced=", null as event_id, 'null-key:1' as raw_row_id")
    with pytest.raises(BuildError) as failed:
        build(copy, SECOND_AS_OF, select="stg_events__usage_events")
    assert str(failed.value).endswith(f"failed: {key_test}")


# Every incremental model is a victim once. Locally one case runs (the day counts: it reads
# the staged rows and feeds every usage aggregate); the other eight are fault injection,
# run with CI=true or `make test-faults` (25 s each: a killed build, then a whole build).
FAULT_VICTIMS = (
    "stg_events__parsed_events",
    "stg_events__routed_events",
    "stg_events__usage_events",
    "int_events_metered",
    "int_events_priced",
    "int_usage_aggregated_to_periods",
    "int_usage_aggregated_to_charges",
    "int_usage_tied_out_to_periods",
)


@pytest.mark.parametrize(
    "victim",
    [
        "int_events_counted_to_days",
        *(pytest.param(victim, marks=pytest.mark.faults) for victim in FAULT_VICTIMS),
    ],
)
def test_a_build_killed_after_a_model_then_run_again_gives_the_same_marts(batches, victim):
    crashed = copy_warehouse(batches["before_second"], batches["root"] / f"killed-{victim}")
    assert killed_build(crashed, SECOND_AS_OF, victim) == 137
    build(crashed, SECOND_AS_OF)
    assert routing(crashed.warehouse) == EXPECTED_ROUTING
    assert staged_rows(crashed.warehouse) == batches["second"]["staged_rows"]
    assert marts(crashed.warehouse) == batches["second"]["marts"]
