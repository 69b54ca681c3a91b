"""The append-only ledger of finalized invoices, written in one transaction (DECISIONLOG D34).

A build computes, in dbt, exactly the ledger rows that finalization will add (the
`int_*_finalizing` models: lines, credit spend and numbered headers of the invoices due at
`as_of`). Only after every dbt test and every blocking gate has passed does `finalize`
copy them into the three ledger tables, all in one DuckDB transaction, and check that the
ledger still adds up before it commits. A crash or a failed check leaves the ledger as it
was, so credit spend can never be recorded without the invoice that spent it.

A finalized invoice found wrong is voided, never edited (`void_invoices`, DECISIONLOG
D48): the void is one more appended row, and the next build reissues the period.

The tables are created here, up front, because dbt reads them as the source `ledger` ("the
ledger as the previous build left it"); dbt never writes them.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from decimal import Decimal

import duckdb

LEDGER_SCHEMA = "ledger"
CANDIDATES_SCHEMA = "intermediate"

# Each ledger table and the dbt model holding the rows this build adds to it, in the order
# they are written (lines before headers: a header is made from its lines).
LEDGER_TABLES = (
    ("fct_invoice_line_items_finalized", "int_invoice_lines_finalizing"),
    ("fct_credit_applications_finalized", "int_credit_applications_finalizing"),
    ("fct_invoices_finalized", "int_invoices_finalizing"),
)

LEDGER_SCHEMA_SQL = """
create schema if not exists ledger;
create table if not exists ledger.fct_invoice_line_items_finalized (
    invoice_line_item_id varchar not null,
    invoice_id varchar,
    customer_id varchar,
    subscription_id varchar,
    plan_id varchar,
    charge_id varchar,
    meter_id varchar,
    dimension_value varchar,
    line_type varchar,
    charge_model varchar,
    tier integer,
    description varchar,
    currency varchar,
    quantity decimal(38, 9),
    unit_price decimal(38, 13),
    amount decimal(38, 4),
    event_count bigint,
    billing_period_start date,
    billing_period_end date,
    source_period_start date,
    line_order integer,
    invoice_discount_amount decimal(38, 4),
    invoice_tax_amount decimal(38, 4),
    invoice_credits_applied_amount decimal(38, 4),
    invoice_finalized_at timestamp,
    billed_through_file_id bigint,
    recorded_at timestamp,
    build_id varchar
);
create table if not exists ledger.fct_credit_applications_finalized (
    invoice_id varchar not null,
    grant_id varchar not null,
    customer_id varchar,
    currency varchar,
    applied_amount decimal(38, 4),
    balance_after decimal(38, 4),
    billing_period_start date,
    recorded_at timestamp,
    build_id varchar
);
create table if not exists ledger.fct_invoices_finalized (
    invoice_id varchar not null,
    invoice_number varchar,
    customer_id varchar,
    customer_name varchar,
    billing_period_start date,
    billing_period_end date,
    currency varchar,
    currency_minor_units integer,
    subtotal_amount decimal(38, 4),
    discount_amount decimal(38, 4),
    tax_amount decimal(38, 4),
    credits_applied_amount decimal(38, 4),
    tax_rate decimal(9, 6),
    finalized_at timestamp,
    recorded_at timestamp,
    billed_through_file_id bigint,
    invoice_sequence bigint,
    line_item_count bigint,
    total_amount decimal(38, 4),
    build_id varchar,
    issued_on date,
    net_terms_days integer,
    due_on date
);
create table if not exists ledger.fct_invoice_voids (
    invoice_id varchar not null,
    invoice_number varchar,
    customer_id varchar,
    billing_period_start date,
    void_reason varchar not null,
    voided_at timestamp not null
);
"""

# Ledgers written before D33/D34 lack the build id and stored unit prices as
# decimal(18, 9), and those before D79 lack the payment terms; adding a column and widening
# are exact, so an old warehouse migrates in place. Invoices finalized before D79 keep null
# terms: the ledger is never updated, so no due date is invented for them afterwards.
MIGRATIONS = (
    *(
        (
            table,
            "build_id",
            "VARCHAR",
            f"alter table ledger.{table} add column if not exists build_id varchar",
        )
        for table, _ in LEDGER_TABLES
    ),
    (
        "fct_invoice_line_items_finalized",
        "unit_price",
        "DECIMAL(38,13)",
        "alter table ledger.fct_invoice_line_items_finalized alter unit_price type decimal(38, 13)",
    ),
    *(
        (
            "fct_invoices_finalized",
            column,
            wanted,
            f"alter table ledger.fct_invoices_finalized add column if not exists {column} {wanted}",
        )
        for column, wanted in (
            ("issued_on", "DATE"),
            ("net_terms_days", "INTEGER"),
            ("due_on", "DATE"),
        )
    ),
)

# Whatever finalization adds must leave every finalized invoice adding up: its lines sum to
# its subtotal, its credits equal what the credit ledger says it spent, its total follows.
LEDGER_PROBLEMS_SQL = """
with lines as (
    select invoice_id, sum(amount) as lines_amount, count(*) as line_count
    from ledger.fct_invoice_line_items_finalized group by invoice_id
),
credits as (
    select invoice_id, sum(applied_amount) as applied_amount
    from ledger.fct_credit_applications_finalized group by invoice_id
),
checked as (
select
    invoices.invoice_id,
    case
        when lines.invoice_id is null then 'has no ledger lines'
        when lines.lines_amount != invoices.subtotal_amount
            then 'lines sum to ' || lines.lines_amount || ', subtotal is '
                || invoices.subtotal_amount
        when coalesce(credits.applied_amount, 0) != invoices.credits_applied_amount
            then 'credit ledger records ' || coalesce(credits.applied_amount, 0)
                || ' spent, invoice applies ' || invoices.credits_applied_amount
        when invoices.total_amount != invoices.subtotal_amount - invoices.discount_amount
            + invoices.tax_amount - invoices.credits_applied_amount
            then 'total does not follow from its parts'
        when invoices.total_amount < 0 then 'total is negative'
    end as problem
from ledger.fct_invoices_finalized as invoices
left join lines on invoices.invoice_id = lines.invoice_id
left join credits on invoices.invoice_id = credits.invoice_id
where invoices.invoice_id in (select invoice_id from {candidates})
)
select * from checked where problem is not null
union all
select distinct credits.invoice_id, 'credit spent by an invoice that is not in the ledger'
from ledger.fct_credit_applications_finalized as credits
where credits.invoice_id not in (select invoice_id from ledger.fct_invoices_finalized)
union all
select distinct lines.invoice_id, 'ledger lines of an invoice that is not in the ledger'
from ledger.fct_invoice_line_items_finalized as lines
where lines.invoice_id not in (select invoice_id from ledger.fct_invoices_finalized)
union all
select any_value(invoice_id), 'line ' || invoice_line_item_id || ' is in the ledger twice'
from ledger.fct_invoice_line_items_finalized
group by invoice_line_item_id having count(*) > 1
union all
select any_value(invoice_id), 'invoice number ' || invoice_number || ' is used twice'
from ledger.fct_invoices_finalized
group by invoice_number having count(*) > 1
union all
select any_value(invoice_id), 'two finalized invoices in force for one customer and period'
from ledger.fct_invoices_finalized
where invoice_id not in (select invoice_id from ledger.fct_invoice_voids)
group by customer_id, billing_period_start having count(*) > 1
union all
select invoice_id, 'grant ' || grant_id || ' overspent (balance ' || balance_after || ')'
from ledger.fct_credit_applications_finalized
where balance_after < 0
"""

# Finalization copies only rows of the one dbt run whose tests and gates passed.
PENDING_PROBLEMS_SQL = """
select '{table}' as pending_table, count(*) filter (where build_id is distinct from $1),
    count(*) filter (where invoice_id not in (select invoice_id from {headers}))
from {pending}
"""


class LedgerError(Exception):
    """Finalization refused; the ledger is unchanged. Its message is one line for the CLI."""


@dataclass(frozen=True)
class FinalizeResult:
    """What one finalization added to the ledger."""

    invoices: int
    lines: int
    credit_applications: int

    def describe(self) -> str:
        if not self.invoices:
            return "finalized no invoices (none due, or all already in the ledger)"
        return (
            f"finalized {self.invoices} invoices ({self.lines} lines, "
            f"{self.credit_applications} credit applications) in one transaction"
        )


def ensure_ledger_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ledger tables if missing and widen old column types in place."""
    con.execute(LEDGER_SCHEMA_SQL)
    for table, column, wanted, statement in MIGRATIONS:
        found = con.execute(
            "select data_type from information_schema.columns "
            "where table_schema = ? and table_name = ? and column_name = ?",
            [LEDGER_SCHEMA, table, column],
        ).fetchone()
        if found is None or found[0].replace(" ", "") != wanted:
            con.execute(statement)


def quoted(*parts: str) -> str:
    """A dotted SQL identifier with every part quoted."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in parts)


def pending_invoice_count(con: duckdb.DuckDBPyConnection) -> int:
    """Invoices the last invoicing build computed for finalization that the ledger lacks
    (its gate or ledger check failed); 0 before any invoicing build."""
    try:
        return con.execute(
            f"select count(*) from {quoted(CANDIDATES_SCHEMA, 'int_invoices_finalizing')} "
            "where invoice_id not in (select invoice_id from "
            f"{quoted(LEDGER_SCHEMA, 'fct_invoices_finalized')})"
        ).fetchone()[0]
    except duckdb.CatalogException:
        return 0


def finalize(con: duckdb.DuckDBPyConnection, build_id: str) -> FinalizeResult:
    """Append the rows the dbt run `build_id` computed to the ledger, all or nothing.

    Refused when any pending row comes from another run (a partial build, another
    `as_of`) or belongs to no pending header, so only what that run's tests and gates
    checked is ever written. Rows already in the ledger are skipped, so finalizing twice
    (a retry after a crash that happened after the commit) adds nothing.
    """
    # A void recorded after this build's dbt run changed what it should have computed
    # (the period to reissue, credit given back): its rows are stale (D48).
    unseen = con.execute(
        f"select count(*) from {quoted(LEDGER_SCHEMA, 'fct_invoice_voids')} where invoice_id "
        f"not in (select invoice_id from {quoted(CANDIDATES_SCHEMA, 'int_invoices_voided')})"
    ).fetchone()[0]
    if unseen:
        raise LedgerError(
            f"finalization refused, the ledger is unchanged: {unseen} invoice(s) were voided "
            "after this build computed its invoices; run `billing build` again"
        )
    headers = quoted(CANDIDATES_SCHEMA, "int_invoices_finalizing")
    for table, model in LEDGER_TABLES:
        pending = quoted(CANDIDATES_SCHEMA, model)
        _, foreign, orphaned = con.execute(
            PENDING_PROBLEMS_SQL.format(table=table, pending=pending, headers=headers), [build_id]
        ).fetchone()
        if foreign or orphaned:
            raise LedgerError(
                f"finalization refused, the ledger is unchanged: {model} holds {foreign} "
                f"row(s) not computed by this build and {orphaned} of no pending invoice; "
                "run a whole `billing build`"
            )
    counts: dict[str, int] = {}
    con.begin()
    try:
        for table, model in LEDGER_TABLES:
            target = quoted(LEDGER_SCHEMA, table)
            before = con.execute(f"select count(*) from {target}").fetchone()[0]
            con.execute(
                f"insert into {target} by name select * from "
                f"{quoted(CANDIDATES_SCHEMA, model)} as pending where pending.invoice_id not in "
                f"(select invoice_id from {quoted(LEDGER_SCHEMA, 'fct_invoices_finalized')})"
            )
            counts[table] = con.execute(f"select count(*) from {target}").fetchone()[0] - before
        problems = con.execute(LEDGER_PROBLEMS_SQL.format(candidates=headers)).fetchall()
        if problems:
            listed = "; ".join(f"{invoice}: {problem}" for invoice, problem in problems[:5])
            raise LedgerError(
                f"finalization refused, the ledger is unchanged: {len(problems)} problem(s) "
                f"({listed})"
            )
        con.commit()
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.rollback()
        raise
    return FinalizeResult(
        invoices=counts["fct_invoices_finalized"],
        lines=counts["fct_invoice_line_items_finalized"],
        credit_applications=counts["fct_credit_applications_finalized"],
    )


@dataclass(frozen=True)
class VoidedInvoice:
    """One invoice `void_invoices` recorded as void."""

    invoice_id: str
    invoice_number: str
    customer_id: str
    billing_period_start: object
    total_amount: object
    currency: str

    def describe(self) -> str:
        return (
            f"voided {self.invoice_number} ({self.invoice_id}, customer {self.customer_id}, "
            f"{self.billing_period_start:%Y-%m}, {self.total_amount} {self.currency})"
        )


# The invoices in force (finalized, not voided) that the given ones name, by id or number.
INVOICES_TO_VOID_SQL = """
select
    invoices.invoice_id, invoices.invoice_number, invoices.customer_id,
    invoices.billing_period_start, invoices.total_amount, invoices.currency_minor_units,
    invoices.currency, voids.invoice_id is not null as is_voided
from ledger.fct_invoices_finalized as invoices
left join ledger.fct_invoice_voids as voids on invoices.invoice_id = voids.invoice_id
where invoices.invoice_id = $1 or invoices.invoice_number = $1
"""

# A customer's later invoices in force depend on an earlier one (adjustments it carried,
# credit left over, credit notes), so invoices are voided newest first.
LATER_INVOICES_SQL = """
select invoice_number from ledger.fct_invoices_finalized
where customer_id = $1 and billing_period_start > $2
    and invoice_id not in (select invoice_id from ledger.fct_invoice_voids)
order by billing_period_start
"""


def reissuable(con: duckdb.DuckDBPyConnection, invoice: VoidedInvoice) -> bool:
    """Whether builds still invoice the voided invoice's period (int_billing_periods, as the
    last build left it); true before any build has made that table."""
    try:
        found = con.execute(
            f"select count(*) from {quoted(CANDIDATES_SCHEMA, 'int_billing_periods')} "
            "where billing_period_start = $1",
            [invoice.billing_period_start],
        ).fetchone()[0]
    except duckdb.CatalogException:
        return True
    return found > 0


def void_invoices(
    con: duckdb.DuckDBPyConnection, references: list[str], reason: str, voided_at: object
) -> list[VoidedInvoice]:
    """Record finalized invoices as void, all or nothing (DECISIONLOG D48).

    The ledger rows of a voided invoice stay as they were; one row per invoice is appended
    to `ledger.fct_invoice_voids`. From the next build on, its period is open again (so it
    is reissued, with a new number, through every test and gate), the credit it spent is
    available again, and the marts list it in `fct_voided_invoices` instead of
    `fct_invoices`. Refused, with nothing written, for an unknown or already voided
    invoice, an empty reason, or a customer's invoice while a later one of theirs is still
    in force and not voided with it.
    """
    reason = " ".join(reason.split())
    if not reason:
        raise LedgerError("a void needs a reason (--reason), kept in the ledger")
    if not references:
        raise LedgerError("name at least one finalized invoice (its id or number) to void")
    chosen: dict[str, VoidedInvoice] = {}
    for reference in references:
        rows = con.execute(INVOICES_TO_VOID_SQL, [reference]).fetchall()
        if not rows:
            raise LedgerError(f"no finalized invoice has the id or number {reference!r}")
        invoice_id, number, customer_id, period, total, units, currency, is_voided = rows[0]
        if is_voided:
            raise LedgerError(f"invoice {number} ({invoice_id}) is already void")
        total = total.quantize(Decimal(1).scaleb(-units))
        chosen[invoice_id] = VoidedInvoice(invoice_id, number, customer_id, period, total, currency)
    for invoice in chosen.values():
        if not reissuable(con, invoice):
            raise LedgerError(
                f"cannot void {invoice.invoice_number}: its period "
                f"{invoice.billing_period_start:%Y-%m} is outside the periods builds invoice "
                "(var max_backfill_months), so it would never be reissued; nothing was written"
            )
    numbers = {invoice.invoice_number for invoice in chosen.values()}
    for invoice in chosen.values():
        later = [
            row[0]
            for row in con.execute(
                LATER_INVOICES_SQL, [invoice.customer_id, invoice.billing_period_start]
            ).fetchall()
            if row[0] not in numbers
        ]
        if later:
            raise LedgerError(
                f"cannot void {invoice.invoice_number}: customer {invoice.customer_id} has later "
                f"invoices in force that depend on it ({', '.join(later)}); void them with it "
                "(newest first is the rule), nothing was written"
            )
    con.begin()
    try:
        for invoice in chosen.values():
            con.execute(
                "insert into ledger.fct_invoice_voids values ($1, $2, $3, $4, $5, $6)",
                [
                    invoice.invoice_id,
                    invoice.invoice_number,
                    invoice.customer_id,
                    invoice.billing_period_start,
                    reason,
                    voided_at,
                ],
            )
        con.commit()
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.rollback()
        raise
    return sorted(chosen.values(), key=lambda invoice: invoice.invoice_number)
