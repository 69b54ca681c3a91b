"""Credit grants spent on open invoices: one row per invoice and grant that paid it.

The allocation is sequential (orchestration.credits.allocate_credits); this model only
feeds it exact decimals from the warehouse and returns amounts as text, so no float ever
touches money. What finalized invoices already spent is read from the ledger as previous
builds left it.
"""

from decimal import Decimal

import pandas as pd

from orchestration.credits import Grant, OpenInvoice, allocate_credits

LEDGER_TABLE = "fct_credit_applications_finalized"


def spent_by_finalized_invoices(session) -> dict:
    exists = session.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = 'ledger' and table_name = ?",
        [LEDGER_TABLE],
    ).fetchone()[0]
    if not exists:
        return {}
    rows = session.execute(
        f"select grant_id, sum(applied_amount) from ledger.{LEDGER_TABLE} group by grant_id"
    ).fetchall()
    return {grant_id: Decimal(amount) for grant_id, amount in rows}


def model(dbt, session):
    dbt.config(materialized="table")
    grants = [
        Grant(row[0], row[1], row[2], Decimal(row[3]), row[4], row[5], int(row[6] or 0))
        for row in dbt.ref("credit_grants")
        .project(
            "grant_id, customer_id, currency, round(amount, 4), granted_on, expires_on, priority"
        )
        .fetchall()
    ]
    invoices = [
        OpenInvoice(row[0], row[1], row[2], row[3], row[4], Decimal(row[5]))
        for row in dbt.ref("int_invoices_calculated")
        .project(
            "invoice_id, customer_id, currency, billing_period_start, billing_period_end, "
            "subtotal_amount - discount_amount + tax_amount"
        )
        .fetchall()
    ]
    applications = allocate_credits(grants, spent_by_finalized_invoices(session), invoices)
    frame = pd.DataFrame(
        {
            "invoice_id": [a.invoice_id for a in applications],
            "grant_id": [a.grant_id for a in applications],
            "applied_amount_text": [str(a.applied_amount) for a in applications],
            "balance_after_text": [str(a.balance_after) for a in applications],
        },
        dtype="string",
    )
    # Typed even when empty: every column is text.
    return session.from_df(frame).project(
        "invoice_id::varchar as invoice_id, grant_id::varchar as grant_id, "
        "applied_amount_text::varchar as applied_amount_text, "
        "balance_after_text::varchar as balance_after_text"
    )
