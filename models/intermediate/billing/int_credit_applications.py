"""Credit grants and customer balances spent on open invoices: one row per invoice and
grant (or credit note) that paid it.

The allocation is sequential (billing.rules.credits.allocate_credits); this model only
feeds it exact decimals from the warehouse and returns amounts as text, so no float ever
touches money. What finalized invoices already spent is read from the ledger as the
previous build left it (source `ledger`), less what voided invoices spent (D48). Credit
notes (DECISIONLOG D35) become balance grants of their invoice's customer, spent before any
grant, from the next period on.
"""

from decimal import Decimal

import pandas as pd

from billing.rules.credits import Grant, OpenInvoice, allocate_credits, credit_note_grant


def voided_invoice_ids(dbt) -> set:
    """Voided invoices (DECISIONLOG D48): the credit they spent is available again."""
    voids = dbt.source("ledger", "fct_invoice_voids")
    return {row[0] for row in voids.project("invoice_id").fetchall()}


def spent_by_finalized_invoices(dbt, voided: set) -> dict:
    rows = (
        dbt.source("ledger", "fct_credit_applications_finalized")
        .project("invoice_id, grant_id, applied_amount")
        .fetchall()
    )
    spent: dict = {}
    for invoice_id, grant_id, amount in rows:
        if invoice_id not in voided:
            spent[grant_id] = spent.get(grant_id, Decimal(0)) + Decimal(amount)
    return spent


def credit_notes(dbt, voided: set) -> list:
    """Credit-note lines of finalized invoices in force (the ledger) and of open ones."""
    columns = "invoice_id, customer_id, currency, amount, billing_period_end"
    finalized = [
        row
        for row in dbt.source("ledger", "fct_invoice_line_items_finalized")
        .filter("line_type = 'credit_note'")
        .project(columns)
        .fetchall()
        if row[0] not in voided
    ]
    finalized_ids = {row[0] for row in finalized}
    open_notes = [
        row
        for row in dbt.ref("int_invoice_lines_assembled")
        .filter("line_type = 'credit_note'")
        .project(columns)
        .fetchall()
        if row[0] not in finalized_ids
    ]
    return [
        credit_note_grant(invoice_id, customer_id, currency, Decimal(amount), period_end)
        for invoice_id, customer_id, currency, amount, period_end in finalized + open_notes
    ]


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
    voided = voided_invoice_ids(dbt)
    grants += credit_notes(dbt, voided)
    invoices = [
        OpenInvoice(row[0], row[1], row[2], row[3], row[4], Decimal(row[5]))
        for row in dbt.ref("int_invoices_calculated")
        .project(
            "invoice_id, customer_id, currency, billing_period_start, billing_period_end, "
            "subtotal_amount - discount_amount + tax_amount"
        )
        .fetchall()
    ]
    applications = allocate_credits(grants, spent_by_finalized_invoices(dbt, voided), invoices)
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
