"""Ordinary inputs that used to stop billing for everyone, over one small account history.

Each step below failed on the old pipeline: a 1,000.00 seat price overflowed rating, one
customer's huge usage overflowed the build, a correction larger than the next invoice made
its total negative, a crash between ledger writes lost credit, a bad seed or a failed gate
was found only after finalization, and a warehouse path with an apostrophe broke publish.
"""

from __future__ import annotations

import contextlib
import io
import json
import uuid
from decimal import Decimal as D

import duckdb
import pytest
from conftest import TEST_SEEDS_ROOT, query, write_seeds

from billing import cli
from billing.landing import ingest_files
from billing.settings import Settings, dbt_target_dir
from billing.warehouse import ledger
from billing.warehouse.build import build
from billing.warehouse.dbt import PRODUCTION_BUILD_ARGS, BuildError, prepare_run, run_dbt
from billing.warehouse.publish import publish
from billing.warehouse.run_context import run_context_for


def standard(charge: str, plan: str, meter: str, price: str) -> list[str]:
    return [charge, plan, meter, "", "standard", price, "", "", "", "none", "", "", "", charge]


def percentage(charge: str, meter: str, model: str = "percentage", price: str = "") -> list[str]:
    """A charge of plan p_tok up to its display name; percentage columns follow."""
    return [charge, "p_tok", meter, "", model, price, "", "", "", "", "", "", "", charge]


def seeds(**changes) -> dict:
    rows = {
        "currencies": [["USD", "2"]],
        "customers": [
            ["e_huge", "Huge Co", "USD", "0", "", "UTC", changes.get("huge_terms", "")],
            ["e_refund", "Refund Co", "USD", changes.get("refund_tax", "0"), "", "UTC"],
            ["e_seat", "Seats Co", "USD", "0", "", "UTC"],
        ],
        "meters": [
            ["seats", "seat", "count", "", "", "seat", "Seats"],
            ["calls", "api_call", "count", "", "", "call", "API calls"],
            ["tokens", "tokens", "sum", "tokens", "", "token", "Tokens"],
            *changes.get("extra_meters", []),
        ],
        "plans": [
            ["p_seat", "Seats", "USD", "", ""],
            ["p_api", "API", "USD", "", ""],
            ["p_tok", "Tokens", "USD", "", ""],
        ],
        "plan_charges": [
            standard("c_seat", "p_seat", "seats", changes.get("seat_price", "1000.00")),
            standard("c_api", "p_api", "calls", "1.00"),
            standard("c_tok", "p_tok", "tokens", "0.000001"),
            *changes.get("extra_charges", []),
        ],
        "plan_charge_tiers": changes.get("tiers", []),
        "subscriptions": [
            ["s_seat", "e_seat", "p_seat", "2026-09-01", ""],
            ["s_ref", "e_refund", "p_api", "2026-09-01", ""],
            ["s_huge", "e_huge", "p_tok", "2026-09-01", "", *changes.get("huge_trial", [])],
            *changes.get("extra_subscriptions", []),
        ],
        "subscription_overrides": [["s_seat", "", "0.8"], *changes.get("extra_overrides", [])],
        "subscription_override_tiers": changes.get("override_tiers", []),
        "credit_grants": changes.get("credit_grants", []),
        "discounts": [],
        "usage_thresholds": changes.get("usage_thresholds", []),
    }
    return rows


def event(event_id: str, customer: str, event_type: str, timestamp: str, **extra) -> str:
    body = {"event_id": event_id, "customer_id": customer, "event_type": event_type}
    body["timestamp"] = timestamp
    return json.dumps({**body, **extra})


def land(settings: Settings, name: str, lines: list[str]) -> None:
    settings.landing_dir.mkdir(parents=True, exist_ok=True)
    (settings.landing_dir / name).write_text("\n".join(lines) + "\n")
    ingest_files(settings.warehouse, [settings.landing_dir], settings.landing_dir)


LEDGER_COUNTS = (
    "select (select count(*) from ledger.fct_invoices_finalized), "
    "(select count(*) from ledger.fct_invoice_line_items_finalized), "
    "(select count(*) from ledger.fct_credit_applications_finalized)"
)


def invoices(settings: Settings) -> list[tuple]:
    return query(
        settings.published_warehouse,
        "select customer_id, strftime(billing_period_start, '%Y-%m'), status, subtotal_amount, "
        "credits_applied_amount, total_amount, hold_reason from fct_invoices "
        "order by customer_id, billing_period_start",
    )


def rate_card_problems(settings: Settings) -> list[tuple]:
    """Run the compiled rate-card and account tests against the warehouse: the rows they
    failed on."""
    compiled = dbt_target_dir() / "compiled/billing/tests/reference"
    rows = []
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        for test in ("assert_rate_cards_are_well_formed", "assert_accounts_are_well_formed"):
            rows += con.execute((compiled / f"{test}.sql").read_text()).fetchall()
    return sorted(rows)


@pytest.fixture(scope="module")
def history(tmp_path_factory, monkeypatch_module):
    """The account's builds, run once; each test reads the state it needs."""
    root = tmp_path_factory.mktemp("edges") / "o'brien"
    settings = Settings(
        warehouse=root / "warehouse.duckdb",
        landing_dir=root / "landing's",
        seeds_dir=TEST_SEEDS_ROOT / uuid.uuid4().hex[:12],
    )
    monkeypatch_module.setenv("BILLING_WAREHOUSE", str(settings.warehouse))
    monkeypatch_module.setenv("BILLING_LANDING_DIR", str(settings.landing_dir))
    monkeypatch_module.setenv("BILLING_SEEDS_DIR", str(settings.seeds_dir))
    states: dict[str, object] = {"settings": settings}

    # 1. September: 3 seats at 1,000.00 x 0.8; 2 API calls; 2 x 9 x 10^14 tokens (each
    #    event in range, their sum not). On Oct 10 September is due.
    write_seeds(settings.seeds_dir, seeds())
    land(
        settings,
        "sep.jsonl",
        [event(f"seat-{n}", "e_seat", "seat", "2026-09-10T10:00:00Z") for n in range(3)]
        + [event(f"ref-{n}", "e_refund", "api_call", "2026-09-11T10:00:00Z") for n in range(2)]
        + [
            event(
                f"tok-{n}", "e_huge", "tokens", "2026-09-12T10:00:00Z", properties={"tokens": 9e14}
            )
            for n in range(2)
        ],
    )
    build(settings, "2026-10-10T00:00:00Z")
    states["september"] = invoices(settings)
    states["ledger_after_september"] = query(settings.warehouse, LEDGER_COUNTS)

    # 2. A reversal of a finalized September call lands in October (nothing else is used in
    #    October), then 3 November calls. First a finalization that crashes half way.
    land(
        settings,
        "oct.jsonl",
        [
            event(
                "rev-ref-0",
                "e_refund",
                "api_call",
                "2026-10-15T10:00:00Z",
                reverses_event_id="ref-0",
            )
        ]
        + [event(f"nov-{n}", "e_refund", "api_call", "2026-11-05T10:00:00Z") for n in range(3)],
    )
    prepare_run(settings, run_context_for("2026-11-10T00:00:00Z"))
    run_dbt(["build", *PRODUCTION_BUILD_ARGS], settings, verbose=False)
    crashing = (*ledger.LEDGER_TABLES[:2], ("fct_invoices_finalized", "no_such_model"))
    with duckdb.connect(str(settings.warehouse)) as con:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(ledger, "LEDGER_TABLES", crashing)
            with pytest.raises(duckdb.CatalogException):
                ledger.finalize(con, "")
        states["ledger_after_crash"] = con.execute(LEDGER_COUNTS).fetchone()
    build(settings, "2026-11-10T00:00:00Z")
    states["november"] = invoices(settings)
    states["credit_notes"] = query(
        settings.published_warehouse,
        "select credit_note_id, customer_id, strftime(billing_period_start, '%Y-%m'), "
        "is_finalized, credit_note_amount, applied_amount, remaining_amount from fct_credit_notes",
    )
    states["october_lines"] = query(
        settings.published_warehouse,
        "select line_type, amount, description from fct_invoice_line_items "
        "where customer_id = 'e_refund' and billing_period_start = '2026-10-01' "
        "order by line_order",
    )
    states["ledger_after_november"] = query(settings.warehouse, LEDGER_COUNTS)

    # 3. A grant not in whole cents, an overlapping subscription, percentage charges that
    #    cannot be priced (D76), tiers on a standard charge, subscription overrides that
    #    cannot apply (D77), thresholds that cannot be reached (D78) and payment terms of
    #    more than a year (D79), trials out of range or free without days (D82): refused
    #    before any finalization, so fixing the seed is enough.
    write_seeds(
        settings.seeds_dir,
        seeds(
            credit_grants=[["g_bad", "e_seat", "10.005", "USD", "2026-09-01", "", "1"]],
            extra_subscriptions=[
                ["s_seat_2", "e_seat", "p_seat", "2026-10-15", ""],
                # A free-usage trial without trial days (D82).
                ["s_free", "e_refund", "p_tok", "2026-12-01", "", "", "free"],
            ],
            extra_charges=[
                [*percentage("x_high", "tokens"), "150", "", "", "", "", ""],
                [*percentage("x_count", "calls"), "1", "", "", "", "", ""],
                [*percentage("x_limits", "tokens"), "1", "0.30", "", "", "5", "2"],
                [*percentage("x_stray", "tokens", "standard", "0.1"), "1", "", "", "", "", ""],
                percentage("x_tiers", "tokens", "graduated_percentage"),
            ],
            tiers=[
                ["c_tok", "1", "", "1", "0"],
                ["x_tiers", "1", "100", "", "0", "1"],
                ["x_tiers", "2", "", "0.5", "0", ""],
            ],
            # subscription_id,charge_id,price_multiplier,override_id,unit_price,base_fee,
            # minimum_commitment,starts_on,ends_on
            extra_overrides=[
                ["s_seat", "", "", "", "", "20.00", "", "2026-10-01", ""],
                ["s_seat", "c_nope", "0.5"],
                ["s_ref", "c_api", "", "o_bad", "", "", "", "2026-09-01", "2026-10-01"],
                ["s_ref", "c_api", "", "", "", "5.00", "", "2026-10-01", ""],
                ["s_huge", "", "0.5", "", "", "", "", "2026-09-15", ""],
                ["s_huge", "c_tok", "", "", "", "", "", "2026-09-01", ""],
                ["s_nobody", "", "0.5"],
                ["s_huge", "x_tiers", "", "", "0.5"],
                ["s_huge", "x_limits", "150"],
                ["s_ref", "", "", "o_plan", "", "", "", "2026-09-01", "2026-10-01"],
                ["s_ref", "", "", "", "", "5.00", "", "2026-11-01", "2026-10-01"],
            ],
            override_tiers=[["o_bad", "1", "", "1", "0"], ["o_plan", "1", "", "1", "0"]],
            extra_meters=[
                ["users", "user_seen", "unique_count", "user_id", "region", "user", "Users"]
            ],
            usage_thresholds=[
                ["th_cents", "e_seat", "", "10.005"],
                ["th_users", "e_seat", "users", "5"],
                ["th_meter", "e_seat", "nope", "10"],
                ["th_zero", "e_seat", "", "0"],
            ],
            huge_terms="400",
            huge_trial=["-3", "gratis"],
        ),
    )
    with pytest.raises(BuildError) as refused:
        build(settings, "2026-12-10T00:00:00Z")
    states["bad_seed_error"] = str(refused.value)
    states["bad_seed_problems"] = rate_card_problems(settings)
    states["ledger_after_bad_seed"] = query(settings.warehouse, LEDGER_COUNTS)
    states["published_after_bad_seed"] = invoices(settings)

    # 4. A negative tax rate passes dbt's tests but fails the invoice candidates gate.
    write_seeds(settings.seeds_dir, seeds(refund_tax="-0.1"))
    with pytest.raises(BuildError) as gated:
        build(settings, "2026-12-10T00:00:00Z")
    states["gate_error"] = str(gated.value)
    # The marts now show that build's pending invoices as finalized: no later publish (the
    # daily job's) may hand them to finance, and no other run may finalize them unchecked.
    with pytest.raises(BuildError) as unpublished:
        publish(settings)
    states["publish_refusal"] = str(unpublished.value)
    with (
        duckdb.connect(str(settings.warehouse)) as con,
        pytest.raises(ledger.LedgerError) as foreign,
    ):
        ledger.finalize(con, "build-someone-else")
    states["foreign_refusal"] = str(foreign.value)
    states["ledger_after_gate"] = query(settings.warehouse, LEDGER_COUNTS)
    states["gate_alerts"] = query(
        settings.warehouse,
        "select check_name, customers from ops.alerts where alert_kind = 'quality_gate'",
    )

    # 5. Seeds fixed: December 10 finalizes November, which spends the credit note.
    write_seeds(settings.seeds_dir, seeds())
    build(settings, "2026-12-10T00:00:00Z")
    states["december"] = invoices(settings)
    states["credit_ledger"] = query(
        settings.warehouse,
        "select grant_id, strftime(billing_period_start, '%Y-%m'), applied_amount "
        "from ledger.fct_credit_applications_finalized order by billing_period_start",
    )

    # 6. A ledger hurt anyway (here: a credit row an old version wrote without its invoice
    #    applying it, the crash of issue 17) fails every build; so does nothing else. The
    #    seat price was also wrong (900.00, not 1,000.00). Recovery: fix the seeds, void the
    #    customer's invoices newest first, build: the periods are reissued and checked.
    write_seeds(
        settings.seeds_dir,
        seeds(
            seat_price="900.00",
            credit_grants=[["g_seat", "e_seat", "100.00", "USD", "2026-09-01", "", "1"]],
        ),
    )
    with duckdb.connect(str(settings.warehouse)) as con:
        con.execute(
            "insert into ledger.fct_credit_applications_finalized (invoice_id, grant_id, "
            "customer_id, currency, applied_amount, balance_after, billing_period_start) "
            "select invoice_id, 'g_seat', customer_id, currency, 100.00, 0.00, "
            "billing_period_start from ledger.fct_invoices_finalized "
            "where customer_id = 'e_seat' and billing_period_start = '2026-09-01'"
        )
    with pytest.raises(BuildError) as hurt:
        build(settings, "2026-12-10T00:00:00Z")
    states["hurt_ledger_error"] = str(hurt.value)
    states["void_out_of_order"] = void(["INV-2026-09-000002"])
    states["void"] = void(
        ["INV-2026-11-000002", "INV-2026-10-000002", "INV-2026-09-000002", "INV-2026-11-000001"],
    )
    states["void_again"] = void(["INV-2026-11-000001"])
    states["void_unknown"] = void(["INV-2026-11-000099"])
    build(settings, "2026-12-10T00:00:00Z")
    states["reissued"] = query(
        settings.published_warehouse,
        "select customer_id, strftime(billing_period_start, '%Y-%m'), invoice_number, status, "
        "subtotal_amount, credits_applied_amount, total_amount, replaces_invoice_number "
        "from fct_invoices where customer_id in ('e_refund', 'e_seat') "
        "and billing_period_start < '2026-12-01' order by customer_id, billing_period_start",
    )
    states["voided"] = query(
        settings.published_warehouse,
        "select invoice_number, total_amount, void_reason, replaced_by_invoice_number, "
        "replaced_by_status from fct_voided_invoices order by invoice_number",
    )
    states["voided_lines"] = query(
        settings.published_warehouse,
        "select invoice_number, line_type, count(*), sum(amount) "
        "from fct_voided_invoice_line_items group by all order by all",
    )
    states["credit_notes_after_void"] = query(
        settings.published_warehouse,
        "select customer_id, credit_note_amount, applied_amount, remaining_amount "
        "from fct_credit_notes",
    )
    # A void recorded while a build runs (after its dbt run) makes its finalization refuse.
    with duckdb.connect(str(settings.warehouse)) as con:
        con.execute(
            "insert into ledger.fct_invoice_voids values "
            "('inv_voided_meanwhile', 'INV-X', 'e_seat', '2026-11-01', 'race', now())"
        )
        with pytest.raises(ledger.LedgerError) as stale:
            ledger.finalize(con, "")
        states["stale_refusal"] = str(stale.value)
        con.execute(
            "delete from ledger.fct_invoice_voids where invoice_id = 'inv_voided_meanwhile'"
        )
    states["ledger_after_void"] = query(
        settings.warehouse,
        "select (select count(*) from ledger.fct_invoices_finalized), "
        "(select count(*) from ledger.fct_invoice_voids)",
    )
    return states


def money(subtotal: str, credits: str, total: str) -> tuple[D, D, D]:
    return D(subtotal), D(credits), D(total)


def void(invoices: list[str]) -> tuple[int, str]:
    """`billing void` as an operator runs it: the exit status and what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        status = cli.main(
            ["void", *invoices, "--reason", "seat price was 1,000.00, contract says 900.00"]
        )
    return status, printed.getvalue().strip()


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_a_thousand_dollar_seat_price_bills(history):
    # 3 seats x 1,000.00 x 0.8 = 2,400.00 (the old types overflowed: DECIMAL(18) product).
    assert ("e_seat", "2026-09", "finalized", D("2400.00"), D("0.00"), D("2400.00"), None) in (
        history["september"]
    )


def test_usage_beyond_the_range_holds_only_that_customer(history):
    # 2 x 9 x 10^14 tokens = 1.8 x 10^15 > the supported 10^15: held, never finalized,
    # while everyone else is billed.
    held = [row for row in history["december"] if row[0] == "e_huge"]
    assert {row[2] for row in held} == {"draft"}
    assert {row[6] for row in held} == {"beyond the supported range: charge c_tok in 2026-09"}
    finalized = {(row[0], row[1]) for row in history["december"] if row[2] == "finalized"}
    assert finalized == {
        ("e_refund", "2026-09"),
        ("e_refund", "2026-10"),
        ("e_refund", "2026-11"),
        ("e_seat", "2026-09"),
        ("e_seat", "2026-10"),
        ("e_seat", "2026-11"),
    }


def test_a_correction_larger_than_the_invoice_becomes_a_credit_note(history):
    # October: -1.00 for the reversed September call, +1.00 credit note: total 0.00.
    assert history["october_lines"] == [
        ("usage", D("0.00"), "c_api"),
        ("adjustment", D("-1.00"), "c_api: correction to 2026-09 (late usage or reversals)"),
        ("credit_note", D("1.00"), "Credit note: 1.00 USD carried to the customer balance"),
    ]
    refund = {row[1]: row for row in history["november"] if row[0] == "e_refund"}
    assert refund["2026-10"] == (
        "e_refund",
        "2026-10",
        "finalized",
        D("0.00"),
        D("0.00"),
        D("0.00"),
        None,
    )
    # November: 3 calls = 3.00, of which 1.00 is paid from the balance.
    assert refund["2026-11"] == (
        "e_refund",
        "2026-11",
        "draft",
        D("3.00"),
        D("1.00"),
        D("2.00"),
        None,
    )
    [note] = history["credit_notes"]
    assert note[1:] == ("e_refund", "2026-10", True, D("1.00"), D("1.00"), D("0.00"))


def test_a_crash_inside_finalization_leaves_the_ledger_as_it_was(history):
    # September's 3 invoices (e_huge held) and their 3 lines, no credit: the crashed
    # transaction (lines and credits written, headers failed) left nothing behind.
    assert history["ledger_after_september"] == [(2, 2, 0)]
    assert history["ledger_after_crash"] == (2, 2, 0)
    # The real build after it finalized October for both customers, exactly once.
    assert history["ledger_after_november"] == [(4, 6, 0)]


STRAY_TIERS = "tiers are read by graduated, volume, staircase and graduated_percentage charges only"


def test_a_bad_seed_is_refused_before_finalization(history):
    assert "assert_rate_cards_are_well_formed" in history["bad_seed_error"]
    assert "assert_accounts_are_well_formed" in history["bad_seed_error"]
    assert history["bad_seed_problems"] == [
        ("c_api override o_bad", STRAY_TIERS),
        ("c_tok", STRAY_TIERS),
        (
            "e_huge",
            "net_terms_days 400 is outside 0 to 365",
        ),
        (
            "g_bad",
            "credit grant amount 10.005000000 USD must be above 0, below 10^15 and in whole "
            "minor units (2), with a priority above -10^9",
        ),
        ("s_free", "trial_usage free needs trial_days"),
        ("s_huge", "trial_days -3 is outside 0 to 365"),
        ("s_huge", "trial_usage gratis is neither billed nor free"),
        ("s_huge:*", "starts_on and ends_on must be the first day of a billing period"),
        ("s_huge:c_tok", "the override changes nothing"),
        (
            "s_huge:x_limits",
            "price_multiplier 150.000000000 must lie in [0, 100] with at most 4 decimals",
        ),
        ("s_huge:x_tiers", "unit_price is overridden on standard and package charges only"),
        ("s_nobody:*", "no subscription s_nobody"),
        ("s_ref:*", "ends_on must be after starts_on"),
        ("s_ref:*", "override tiers need the charge they price"),
        (
            "s_ref:c_api",
            "base_fee and minimum_commitment override the plan: leave charge_id blank",
        ),
        (
            "s_seat,s_seat_2",
            "subscriptions s_seat and s_seat_2 of customer e_seat to plan p_seat overlap",
        ),
        ("s_seat:*", "overrides [start, open) and [2026-10-01, open) are in force at once"),
        ("s_seat:c_nope", "charge c_nope is not on plan p_seat"),
        ("th_cents", "spend threshold 10.005000000 must be in whole minor units of USD (2)"),
        ("th_meter", "no meter nope"),
        ("th_users", "a unique_count meter grouped by region has no customer total to watch"),
        ("th_zero", "threshold 0.000000000 must lie in (0, 10^15)"),
        ("x_count", "percentage charge needs a sum meter, not count"),
        ("x_high", "rate_percent 150.000000000 must lie in [0, 100] with at most 4 decimals"),
        ("x_limits", "min_fee_per_event must not exceed max_fee_per_event"),
        (
            "x_stray",
            "rate_percent, fixed_fee_per_event, free_events, free_amount, min_fee_per_event "
            "and max_fee_per_event are read by percentage charges only",
        ),
        ("x_tiers", "tier 2: a graduated_percentage tier takes a rate_percent and no unit_price"),
    ]
    assert history["ledger_after_bad_seed"] == history["ledger_after_november"]
    assert history["published_after_bad_seed"] == history["november"]


def test_a_failed_gate_stops_billing_build_before_the_ledger(history):
    # The negative tax fails the invoices gate (over the marts that show what would be
    # finalized): nothing reaches the ledger, and the alert names the customer.
    assert history["gate_error"] == (
        "quality gates failed (invoices) for 2026-09-01..2027-01-01: nothing was finalized "
        "or published; see `billing quality` and `billing alerts`"
    )
    assert history["ledger_after_gate"] == history["ledger_after_november"]
    assert ("invoices", ["e_refund"]) in history["gate_alerts"]
    assert history["publish_refusal"] == (
        "not published: 2 invoice(s) of the last invoicing build were never finalized (a "
        "gate or the ledger check failed); run `billing build` or the monthly job again once "
        "it passes"
    )
    assert history["foreign_refusal"] == (
        "finalization refused, the ledger is unchanged: int_invoice_lines_finalizing holds "
        "2 row(s) not computed by this build and 0 of no pending invoice; run a whole "
        "`billing build`"
    )


def test_after_the_fix_november_spends_the_credit_note_in_the_ledger(history):
    refund = {row[1]: row for row in history["december"] if row[0] == "e_refund"}
    assert refund["2026-11"][2:6] == ("finalized", D("3.00"), D("1.00"), D("2.00"))
    [(grant, period, applied)] = history["credit_ledger"]
    assert (grant.startswith("cn_inv_"), period, applied) == (True, "2026-11", D("1.00"))


def test_a_hurt_ledger_fails_every_build_until_its_invoices_are_voided(history):
    assert "assert_invoice_credits_match_credit_ledger" in history["hurt_ledger_error"]
    assert history["void_out_of_order"] == (
        2,
        "billing void: error: cannot void INV-2026-09-000002: customer e_seat has later "
        "invoices in force that depend on it (INV-2026-10-000002, INV-2026-11-000002); void "
        "them with it (newest first is the rule), nothing was written",
    )
    status, printed = history["void"]
    assert status == 0
    assert [line.split(" (")[0] for line in printed.splitlines()[:4]] == [
        "voided INV-2026-09-000002",
        "voided INV-2026-10-000002",
        "voided INV-2026-11-000001",
        "voided INV-2026-11-000002",
    ]
    assert "customer e_seat, 2026-09, 2400.00 USD)" in printed.splitlines()[0]
    assert history["void_again"][0] == 2
    assert history["void_again"][1].startswith(
        "billing void: error: invoice INV-2026-11-000001 (inv_"
    )
    assert history["void_again"][1].endswith(") is already void")
    assert history["void_unknown"] == (
        2,
        "billing void: error: no finalized invoice has the id or number 'INV-2026-11-000099'",
    )


def test_voided_periods_are_reissued_with_new_numbers_and_their_credit_back(history):
    # e_seat September: 3 seats x 900.00 x 0.8 = 2,160.00, less the 100.00 grant the voided
    # invoice's stray credit row had claimed: 2,060.00. Numbers continue after the ledger's.
    reason = "seat price was 1,000.00, contract says 900.00"
    assert history["reissued"] == [
        ("e_refund", "2026-09", "INV-2026-09-000001", "finalized", *money("2", "0", "2"), None),
        ("e_refund", "2026-10", "INV-2026-10-000001", "finalized", *money("0", "0", "0"), None),
        # November again spends the 1.00 credit note its voided invoice had spent.
        (
            "e_refund",
            "2026-11",
            "INV-2026-11-000003",
            "finalized",
            D("3.00"),
            D("1.00"),
            D("2.00"),
            "INV-2026-11-000001",
        ),
        (
            "e_seat",
            "2026-09",
            "INV-2026-09-000003",
            "finalized",
            D("2160.00"),
            D("100.00"),
            D("2060.00"),
            "INV-2026-09-000002",
        ),
        (
            "e_seat",
            "2026-10",
            "INV-2026-10-000003",
            "finalized",
            D("0.00"),
            D("0.00"),
            D("0.00"),
            "INV-2026-10-000002",
        ),
        (
            "e_seat",
            "2026-11",
            "INV-2026-11-000004",
            "finalized",
            D("0.00"),
            D("0.00"),
            D("0.00"),
            "INV-2026-11-000002",
        ),
    ]
    assert history["voided"] == [
        ("INV-2026-09-000002", D("2400.00"), reason, "INV-2026-09-000003", "finalized"),
        ("INV-2026-10-000002", D("0.00"), reason, "INV-2026-10-000003", "finalized"),
        ("INV-2026-11-000001", D("2.00"), reason, "INV-2026-11-000003", "finalized"),
        ("INV-2026-11-000002", D("0.00"), reason, "INV-2026-11-000004", "finalized"),
    ]
    # Their lines stay readable as finalized: September's one usage line, 3 seats x 1,000.00
    # x 0.8; November's e_refund line 3.00, less the 1.00 credit note it spent = 2.00 due.
    assert history["voided_lines"] == [
        ("INV-2026-09-000002", "usage", 1, D("2400.00")),
        ("INV-2026-10-000002", "usage", 1, D("0.00")),
        ("INV-2026-11-000001", "usage", 1, D("3.00")),
        ("INV-2026-11-000002", "usage", 1, D("0.00")),
    ]
    # The note is spent once, by the invoice in force, never twice.
    assert history["credit_notes_after_void"] == [("e_refund", D("1.00"), D("1.00"), D("0.00"))]
    assert history["stale_refusal"] == (
        "finalization refused, the ledger is unchanged: 1 invoice(s) were voided after this "
        "build computed its invoices; run `billing build` again"
    )
    # Nothing in the ledger was changed or removed: 6 invoices, 4 voids, 4 reissues.
    assert history["ledger_after_void"] == [(10, 4)]


def test_a_partial_build_never_publishes_and_an_empty_selection_fails(history):
    settings = history["settings"]
    published = settings.published_warehouse.stat().st_mtime_ns
    outcome = build(settings, "2026-12-10T00:00:00Z", select="fct_invoices", verbose=False)
    assert (outcome.published, outcome.finalized) == (False, None)
    assert settings.published_warehouse.stat().st_mtime_ns == published
    with pytest.raises(BuildError, match="dbt selected nothing for --select 'no_such_model'"):
        build(settings, "2026-12-10T00:00:00Z", select="no_such_model", verbose=False)


def test_an_old_ledger_migrates_in_place():
    """A ledger made by the dbt models of before D34 gains the build id and wider prices."""
    con = duckdb.connect()
    con.execute("create schema ledger")
    con.execute(
        "create table ledger.fct_invoice_line_items_finalized "
        "(invoice_line_item_id varchar, invoice_id varchar, unit_price decimal(18, 9))"
    )
    con.execute("insert into ledger.fct_invoice_line_items_finalized values ('l1', 'i1', 0.5)")
    con.execute("create table ledger.fct_invoices_finalized (invoice_id varchar)")
    con.execute("create table ledger.fct_credit_applications_finalized (invoice_id varchar)")
    ledger.ensure_ledger_schema(con)
    ledger.ensure_ledger_schema(con)  # a second run changes nothing
    columns = con.execute(
        "select table_name, column_name, data_type from information_schema.columns "
        "where table_schema = 'ledger' and column_name in ('unit_price', 'build_id') "
        "order by 1, 2"
    ).fetchall()
    assert columns == [
        ("fct_credit_applications_finalized", "build_id", "VARCHAR"),
        ("fct_invoice_line_items_finalized", "build_id", "VARCHAR"),
        ("fct_invoice_line_items_finalized", "unit_price", "DECIMAL(38,13)"),
        ("fct_invoices_finalized", "build_id", "VARCHAR"),
    ]
    assert con.execute(
        "select unit_price, build_id from ledger.fct_invoice_line_items_finalized"
    ).fetchall() == [(D("0.5"), None)]
